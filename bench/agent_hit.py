#!/usr/bin/env python3
"""Driver of bench/agent_hit.sh: latency of the agent's hot paths over one keep-alive connection.

  health   GET /health                      the floor: one HTTP round trip that does nothing
  ensure   POST /v1/ensure of a cached commit  (metadata only: no data is read)
  worker   POST /v1/workers on a cached commit with command ["true"]  (ensure hit → pin → exec)

Usage: agent_hit.py AGENT_URL MODELS_JSON [CALLS] [WORKERS]
MODELS_JSON is a list of {"model": ..., "commit": ...}. Prints percentiles and the goals of
issue 4 (ensure p50 <= 2 ms, p99 <= 20 ms; worker start p50 <= 20 ms) with PASS/MISS.
Python standard library only.
"""
import http.client
import json
import os
import sys
import time
import urllib.parse


def percentile(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1)))))
    return values[k]


def timed(conn, method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if os.environ.get("MC_AGENT_KEY"):  # the agent's API key (agents always require one)
        headers["Authorization"] = "Bearer " + os.environ["MC_AGENT_KEY"]
    start = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    res = conn.getresponse()
    data = res.read()
    elapsed = (time.perf_counter() - start) * 1000.0
    return res.status, data, elapsed


def main():
    url = urllib.parse.urlparse(sys.argv[1])
    models = json.load(open(sys.argv[2]))
    calls = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    workers = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    conn = http.client.HTTPConnection(url.hostname, url.port)
    results = {}

    lat = []
    for _ in range(calls):
        status, _, ms = timed(conn, "GET", "/health")
        assert status == 200
        lat.append(ms)
    results["health"] = lat

    lat = []
    for i in range(calls):
        m = models[i % len(models)]
        body = json.dumps({"model": m["model"], "revision": m["commit"]})
        status, data, ms = timed(conn, "POST", "/v1/ensure", body)
        reply = json.loads(data)
        if status != 200 or not reply.get("hit"):
            sys.exit(f"ensure of a cached commit was not a hit: {status} {data[:200]!r}")
        lat.append(ms)
    results["ensure"] = lat

    lat = []
    for i in range(workers):
        m = models[i % len(models)]
        body = json.dumps({"model": m["model"], "revision": m["commit"], "command": ["true"]})
        status, data, ms = timed(conn, "POST", "/v1/workers", body)
        reply = json.loads(data)
        if status != 202 or reply.get("state") not in ("running", "exited"):
            sys.exit(f"worker did not start at once: {status} {data[:300]!r}")
        lat.append(ms)
    results["worker"] = lat

    print(f"{'path':<8} {'calls':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, lat in results.items():
        print(f"{name:<8} {len(lat):>6} {percentile(lat, 50):>8.3f} {percentile(lat, 90):>8.3f} "
              f"{percentile(lat, 99):>8.3f} {max(lat):>8.3f}")
    e50, e99 = percentile(results["ensure"], 50), percentile(results["ensure"], 99)
    w50 = percentile(results["worker"], 50)
    h50 = percentile(results["health"], 50)
    print(f"ratio ensure/health p50: {e50 / h50:.2f}x   worker/health p50: {w50 / h50:.2f}x")
    goals = [("ensure p50 <= 2 ms", e50 <= 2.0), ("ensure p99 <= 20 ms", e99 <= 20.0),
             ("worker start p50 <= 20 ms", w50 <= 20.0)]
    for name, ok in goals:
        print(f"goal {name}: {'PASS' if ok else 'MISS'}")


if __name__ == "__main__":
    main()
