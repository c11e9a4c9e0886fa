#!/usr/bin/env python3
"""Benchmark: origin bytes per pulled model (issue 17), ours against a baseline binary in one run.

A generated model (default one 64 MiB shard + small files) is served by `modelcache serve` behind
a byte-counting TCP proxy on 127.0.0.1: the proxy counts every byte the origin sends on the wire
(headers included), so bytes a client abandons mid-flight are counted as they are on a real link.
For each binary (ours, and BENCH_BASELINE if set) and each of ROUNDS rounds:
  pull      one `modelcache pull` into a fresh cache
  ensure16  one `modelcache agent` given 16 concurrent ensures of the model
prints origin bytes / model bytes per run and the worst per case; the goal is <= 1.01.

Usage: bench/origin_bytes.py [path/to/modelcache]
Env:   ROUNDS=3 BENCH_MODEL_MIB=64 BENCH_BASELINE=path/to/other/modelcache BENCH_DIR=/tmp
"""
import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


class CountingProxy:
    """Forwards 127.0.0.1:<port> to `target`; counts the bytes sent back to clients."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.sent = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.sock.accept()
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self.pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self.pipe, args=(upstream, client, True), daemon=True).start()

    def pipe(self, src, dst, count):
        try:
            while True:
                data = src.recv(1 << 20)
                if not data:
                    break
                dst.sendall(data)
                if count:
                    with self.lock:
                        self.sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def take(self):
        with self.lock:
            n, self.sent = self.sent, 0
        return n


def start(cmd, marker, out_path):
    out = open(out_path, "w")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    for _ in range(600):
        text = open(out_path).read()
        for line in text.splitlines():
            if marker in line:
                return proc, line.split(marker, 1)[1].strip()
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"origin_bytes: {' '.join(cmd[:2])} did not start: {open(out_path).read()[-2000:]}")


# The agent's API key (agents require one): in a file the agent reads, sent on every call.
AGENT_KEY = "bench-" + os.urandom(16).hex()


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + AGENT_KEY})
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.status, json.loads(r.read())


def main():
    mc = os.path.realpath(sys.argv[1] if len(sys.argv) > 1 else "build/src/cli/modelcache")
    rounds = int(os.environ.get("ROUNDS", "3"))
    mib = int(os.environ.get("BENCH_MODEL_MIB", "64"))
    binaries = [("ours", mc)]
    if os.environ.get("BENCH_BASELINE"):
        binaries.append(("base", os.path.realpath(os.environ["BENCH_BASELINE"])))
    work = tempfile.mkdtemp(prefix="mc-bench-origin.", dir=os.environ.get("BENCH_DIR", "/tmp"))
    procs = []
    try:
        env_clean = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env_clean["HF_HOME"] = os.path.join(work, "hf-home")
        model = os.path.join(work, "model")
        subprocess.run([mc, "fixture", model, "--size", f"{mib}MiB", "--shards", "1", "--seed", "7"],
                       check=True, stdout=subprocess.DEVNULL, env=env_clean)
        upstream = os.path.join(work, "upstream")
        subprocess.run([mc, "import", model, "--repo", "bench/model", "--cache-dir", upstream],
                       check=True, stdout=subprocess.DEVNULL, env=env_clean)
        model_bytes = sum(os.path.getsize(os.path.join(d, f))
                          for d, _, fs in os.walk(model) for f in fs)
        serve, url = start([mc, "serve", "--cache-dir", upstream, "--listen", "127.0.0.1:0"],
                           "listening on", os.path.join(work, "serve.out"))
        procs.append(serve)
        proxy = CountingProxy(int(url.rsplit(":", 1)[1]))
        origin = f"http://127.0.0.1:{proxy.port}"
        print(f"# model {model_bytes} bytes; origin {url} behind the counting proxy {origin}")
        results = {}
        for r in range(rounds):
            for name, binary in binaries:
                dest = os.path.join(work, f"{name}-{r}")
                proxy.take()
                subprocess.run([binary, "pull", "bench/model", "--endpoint", origin, "--cache-dir",
                                f"{dest}/pull/cache", "--state-dir", f"{dest}/pull/state"],
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=env_clean)
                results.setdefault((name, "pull"), []).append(proxy.take() / model_bytes)
                key_file = os.path.join(work, "agent-key")
                with open(key_file, "w") as f:
                    f.write(AGENT_KEY + "\n")
                os.chmod(key_file, 0o600)
                agent, agent_url = start(
                    [binary, "agent", "--cache-dir", f"{dest}/agent/cache", "--state-dir",
                     f"{dest}/agent/state", "--capacity", "10GB", "--listen", "127.0.0.1:0",
                     "--upstream", origin, "--runtime", "process", "--api-key-file", key_file],
                    "agent listening on", os.path.join(work, f"agent-{name}-{r}.out"))
                proxy.take()
                with concurrent.futures.ThreadPoolExecutor(16) as pool:
                    answers = list(pool.map(
                        lambda _: post(agent_url + "/v1/ensure?wait=600", {"model": "bench/model"}),
                        range(16)))
                agent.terminate()
                agent.wait()
                bad = [a for a in answers if a[0] != 200]
                if bad:
                    sys.exit(f"origin_bytes: an ensure failed: {bad[0]}")
                results.setdefault((name, "ensure16"), []).append(proxy.take() / model_bytes)
                shutil.rmtree(dest, ignore_errors=True)
        print(f"{'tool':6} {'case':9} {'worst':>7}  runs (origin bytes / model bytes)")
        for (name, case), ratios in sorted(results.items()):
            verdict = "PASS" if max(ratios) <= 1.01 else "MISS"
            print(f"{name:6} {case:9} {max(ratios):7.4f}  " +
                  " ".join(f"{x:.4f}" for x in ratios) + f"  {verdict} (goal <= 1.01)")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
