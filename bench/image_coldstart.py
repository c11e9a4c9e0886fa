#!/usr/bin/env python3
"""The measuring half of bench/image_coldstart.sh (which builds the images, the registry and the
upstream, and says what is measured). Standard library only."""
import argparse
import ctypes
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import select
import time
import urllib.request

LIBC = ctypes.CDLL(None, use_errno=True)
IN_MODIFY = 0x2

HIT_COMMAND = ["/bin/sh", "-c", "echo first"]


# The agents' API key (an agent always requires one): written to a file the agents read, sent
# on every call.
AGENT_KEY = "bench-" + os.urandom(16).hex()


def call(method, url, body=None, timeout=900):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + AGENT_KEY})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class Bench:
    def __init__(self, a):
        self.a = a
        self.procs = []
        self.inside = []  # the agent's own request -> spawn time of each hit, ms

    def store_flags(self, store):
        s = os.path.join(self.a.work, store)
        return ["--root", s + "/storage", "--runroot", s + "/run", "--tmpdir", s + "/tmp",
                "--runtime", self.a.oci_runtime]

    @staticmethod
    def ulimits():
        """What the agent gives its containers: its own limits, nproc at most pid_max."""
        with open("/proc/sys/kernel/pid_max") as f:
            pid_max = int(f.read())
        flags = []
        for name, res in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
            soft, hard = resource.getrlimit(res)
            if name == "nproc":
                hard = min(hard, pid_max)
                soft = min(soft, hard)
            flags += ["--ulimit", f"{name}={soft}:{hard}"]
        return flags

    def start_agent(self, name):
        d = os.path.join(self.a.work, name)
        os.makedirs(d, exist_ok=True)
        cmd = [self.a.mc, "agent", "--cache-dir", d + "/cache", "--state-dir", d + "/state",
               "--capacity", "20GB", "--listen", "127.0.0.1:0", "--upstream", self.a.upstream,
               "--runtime", "podman", "--oci-runtime", self.a.oci_runtime,
               "--engine-root", os.path.join(self.a.work, name + "-store"),
               "--insecure-registry", self.a.registry, "--stop-grace", "1",
               "--api-key-file", d + "/api-key"]
        with open(d + "/api-key", "w") as f:
            f.write(AGENT_KEY + "\n")
        os.chmod(d + "/api-key", 0o600)
        err = open(d + "/agent.err", "w")
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        self.procs.append(p)
        line = p.stdout.readline()
        if "http://" not in line:
            raise SystemExit("agent did not start: " + open(d + "/agent.err").read())
        return p, line.split()[-1]

    def stop_agent(self, p):
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)

    @staticmethod
    def first_line(path, deadline):
        """Blocks on inotify until the file holds a line (a busy poll would steal the CPU that
        the container start needs on a 2-core machine)."""
        fd = LIBC.inotify_init1(os.O_CLOEXEC)
        try:
            LIBC.inotify_add_watch(fd, path.encode(), IN_MODIFY)
            while True:
                with open(path, "rb") as f:
                    if b"\n" in f.read():
                        return True
                left = deadline - time.perf_counter()
                if left <= 0:
                    return False
                if select.select([fd], [], [], left)[0]:
                    os.read(fd, 4096)
        finally:
            os.close(fd)

    def agent_hit(self, url, image, worker_id):
        body = {"id": worker_id, "model": "bench/small", "image": image, "command": HIT_COMMAND}
        t0 = time.perf_counter()
        status, doc = call("POST", url + "/v1/workers", body)
        if status != 202:
            raise SystemExit(f"worker refused: {status} {doc}")
        if not self.first_line(doc["logs"]["stdout"], t0 + 60):
            raise SystemExit("the worker printed nothing: " + json.dumps(doc))
        elapsed = time.perf_counter() - t0
        _, done = call("GET", f"{url}/v1/workers/{worker_id}?wait=60&until=exited,failed")
        self.inside.append(done["cold_start"]["initializing_ms"])
        return elapsed

    def bare_hit(self, store, image):
        argv = (["podman"] + self.store_flags(store) +
                ["run", "--rm", "--network", "host", "--pull", "never", "--log-driver",
                 "passthrough"] + self.ulimits() + [image] + HIT_COMMAND)
        t0 = time.perf_counter()
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "USER")}
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env)
        p.stdout.readline()
        elapsed = time.perf_counter() - t0
        p.wait()
        return elapsed

    def hit(self):
        image = self.a.registry + "/bench/small:1"
        p, url = self.start_agent("hit")
        warm = call("POST", url + "/v1/workers",
                    {"id": "warm", "model": "bench/small", "image": image, "command": HIT_COMMAND})
        assert warm[0] == 202, warm
        call("GET", url + "/v1/workers/warm?wait=300&until=exited,failed")
        ours, bare = [], []
        for i in range(self.a.runs):
            if i % 2 == 0:
                ours.append(self.agent_hit(url, image, f"h{i}"))
                bare.append(self.bare_hit("hit-store", image))
            else:
                bare.append(self.bare_hit("hit-store", image))
                ours.append(self.agent_hit(url, image, f"h{i}"))
        self.stop_agent(p)
        a, b = statistics.median(ours), statistics.median(bare)
        print(f"hit: POST /v1/workers -> first output line, p50 of {self.a.runs}: "
              f"agent {a * 1000:.0f} ms, bare podman run {b * 1000:.0f} ms; "
              f"difference {(a - b) * 1000:+.0f} ms, ratio {a / b:.2f}x "
              f"({'PASS' if a - b <= 0.100 else 'MISS'}: goal within 100 ms)")
        print(f"     agent runs (ms): {' '.join(f'{x * 1000:.0f}' for x in ours)}")
        print(f"     bare runs (ms):  {' '.join(f'{x * 1000:.0f}' for x in bare)}")
        print(f"     inside the agent, request -> engine client spawned (ms): "
              f"{' '.join(str(x) for x in self.inside)}")

    def timed(self, argv, env=None):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, env=env)
        return time.perf_counter() - t0

    def miss(self):
        image = self.a.registry + "/bench/big:1"
        images, models, ours, cold = [], [], [], []
        for r in range(self.a.miss_runs):
            images.append(self.timed(["podman"] + self.store_flags(f"pull{r}-store") +
                                     ["pull", "-q", "--tls-verify=false", image]))
            cache = os.path.join(self.a.work, f"mpull{r}")
            models.append(self.timed([self.a.mc, "pull", "bench/big", "--cache-dir", cache,
                                      "--state-dir", cache + "-state",
                                      "--endpoint", self.a.upstream]))
            shutil.rmtree(cache, ignore_errors=True)
            p, url = self.start_agent(f"miss{r}")
            t0 = time.perf_counter()
            status, doc = call("POST", url + "/v1/workers",
                               {"id": "m", "model": "bench/big", "image": image,
                                "command": ["/bin/sh", "-c", "echo first; sleep 60"]})
            assert status == 202, doc
            status, doc = call("GET", url + "/v1/workers/m?wait=600&until=running,failed")
            ours.append(time.perf_counter() - t0)
            if doc["state"] != "running":
                raise SystemExit("miss worker failed: " + json.dumps(doc))
            cold.append(doc["cold_start"])
            call("DELETE", url + "/v1/workers/m?grace=0")
            call("GET", url + "/v1/workers/m?wait=60&until=exited")
            self.stop_agent(p)
            shutil.rmtree(os.path.join(self.a.work, f"miss{r}", "cache"), ignore_errors=True)
        i, m, a = statistics.median(images), statistics.median(models), statistics.median(ours)
        longer = max(i, m)
        print(f"miss: p50 of {self.a.miss_runs}: image pull alone {i:.2f} s, model pull alone "
              f"{m:.2f} s; agent POST -> running {a:.2f} s = {a / longer:.2f}x the longer pull "
              f"({'PASS' if a <= 1.1 * longer else 'MISS'}: goal <= 1.10x)")
        print(f"      image alone (s): {' '.join(f'{x:.2f}' for x in images)}")
        print(f"      model alone (s): {' '.join(f'{x:.2f}' for x in models)}")
        print(f"      agent (s):       {' '.join(f'{x:.2f}' for x in ours)}")
        print(f"      agent cold_start: {json.dumps(cold)}")


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--mc", "--work", "--registry", "--upstream", "--oci-runtime"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--miss-runs", type=int, default=3)
    a = ap.parse_args()
    b = Bench(a)
    try:
        b.hit()
        if a.miss_runs > 0:
            b.miss()
    finally:
        for p in b.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=60)


if __name__ == "__main__":
    main()
