#!/usr/bin/env python3
"""Driver of bench/coldstart.sh (Python standard library only).

  coldstart.py hits URL KEY WORKER N      N cold starts that are cache hits: N endpoints on the
                                          demo model (already on the host), one /run each
  coldstart.py miss URL KEY WORKER MODEL TOKEN_FILE
                                          one cold start that must download MODEL first
  coldstart.py run URL KEY JOBS THREADS   /run throughput with keep-alive connections
  coldstart.py endpoint URL KEY           creates the /run target (no workers), prints its id
  coldstart.py drop URL KEY ENDPOINT      purges its queue and deletes it

Cold starts are measured as the job's delayTime (from /run to the worker's job-take that got
it: exactly "time from /run to the worker's first job-take" for a fresh worker), and split with
the controller's own record (GET /v1/coldstarts): queue (job waiting before placement), download
(placed → process exec'd: ensure + spawn) and start (exec'd → first take: the worker's boot).
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse


class Api:
    def __init__(self, url, key):
        u = urllib.parse.urlparse(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        self.key = key

    def call(self, method, path, body=None):
        headers = {"Authorization": "Bearer " + self.key}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        res = self.conn.getresponse()
        raw = res.read()
        return res.status, (json.loads(raw) if raw else None)


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))]


def wait_final(api, ep, job):
    while True:
        _, s = api.call("GET", f"/v2/{ep}/status-sync/{job}?wait=60000")
        if s["status"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"):
            return s


def cold_start(api, fields):
    status, ep = api.call("POST", "/v1/endpoints", fields)
    if status != 200:
        sys.exit(f"create endpoint: {status} {ep}")
    _, job = api.call("POST", f"/v2/{ep['id']}/run", {"input": {}})
    done = wait_final(api, ep["id"], job["id"])
    if done["status"] != "COMPLETED":
        sys.exit(f"job did not complete: {done}")
    _, cs = api.call("GET", f"/v1/coldstarts?endpoint={ep['id']}")
    api.call("DELETE", f"/v1/endpoints/{ep['id']}")
    return done["delayTime"], cs["coldStarts"][0]


def hits(url, key, worker, n):
    api = Api(url, key)
    delays, parts = [], {"queueMs": [], "downloadMs": [], "startMs": []}
    for i in range(n):
        delay, cs = cold_start(api, {"name": f"bench-{i}", "model": "demo/tiny-llama",
                                     "command": ["bash", worker], "gpuCount": 0,
                                     "workersMax": 1, "idleTimeout": 1})
        if not cs["cacheHit"]:
            sys.exit(f"cold start {i} was not a cache hit: {cs}")
        delays.append(delay)
        for k in parts:
            parts[k].append(cs[k])
    print(f"hit cold starts: {n}")
    print(f"  /run -> first job-take  p50 {pct(delays, 50)} ms  p90 {pct(delays, 90)} ms  "
          f"p99 {pct(delays, 99)} ms")
    for k, v in parts.items():
        print(f"  {k:<10} p50 {pct(v, 50)} ms  p99 {pct(v, 99)} ms")
    print(f"goal hit p50 <= 50 ms: {'PASS' if pct(delays, 50) <= 50 else 'MISS'}")
    print(f"goal hit p99 <= 200 ms: {'PASS' if pct(delays, 99) <= 200 else 'MISS'}")


def miss(url, key, worker, model, token_file):
    api = Api(url, key)
    token = open(token_file).read().strip()
    delay, cs = cold_start(api, {"name": "bench-miss", "model": model, "hfToken": token,
                                 "command": ["bash", worker], "gpuCount": 0, "idleTimeout": 1})
    if cs["cacheHit"]:
        sys.exit("the miss cold start was a cache hit")
    print(f"miss_ms {delay} download_ms {cs['downloadMs']} start_ms {cs['startMs']} "
          f"queue_ms {cs['queueMs']}")


def run(url, key, jobs, threads):
    api = Api(url, key)
    _, ep = api.call("POST", "/v1/endpoints", {"name": "bench-run", "model": "demo/tiny-llama",
                                               "command": ["true"], "workersMax": 0})
    path = f"/v2/{ep['id']}/run"
    lat = []
    lock = threading.Lock()

    def client(count):
        a = Api(url, key)
        mine = []
        for i in range(count):
            t = time.perf_counter()
            status, _ = a.call("POST", path, {"input": {"i": i}})
            mine.append((time.perf_counter() - t) * 1000)
            assert status == 200
        with lock:
            lat.extend(mine)

    ts = [threading.Thread(target=client, args=(jobs // threads,)) for _ in range(threads)]
    start = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - start
    api.call("POST", f"/v2/{ep['id']}/purge-queue")
    api.call("DELETE", f"/v1/endpoints/{ep['id']}")
    rate = len(lat) / wall
    print(f"/run: {len(lat)} jobs from {threads} connections in {wall:.2f} s = {rate:.0f} jobs/s; "
          f"latency p50 {pct(lat, 50):.2f} ms p99 {pct(lat, 99):.2f} ms")
    print(f"goal >= 2000 jobs/s: {'PASS' if rate >= 2000 else 'MISS'}; "
          f"goal p99 <= 20 ms: {'PASS' if pct(lat, 99) <= 20 else 'MISS'}")


def make_run_endpoint(url, key):
    _, ep = Api(url, key).call("POST", "/v1/endpoints", {
        "name": "bench-run", "model": "demo/tiny-llama", "command": ["true"], "workersMax": 0})
    print(ep["id"])


def drop(url, key, ep):
    api = Api(url, key)
    _, purged = api.call("POST", f"/v2/{ep}/purge-queue")
    api.call("DELETE", f"/v1/endpoints/{ep}")
    print(f"purged {purged['removed']} queued jobs")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "endpoint":
        make_run_endpoint(sys.argv[2], sys.argv[3])
    elif mode == "drop":
        drop(sys.argv[2], sys.argv[3], sys.argv[4])
    if mode == "hits":
        hits(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif mode == "miss":
        miss(*sys.argv[2:7])
    elif mode == "run":
        run(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
