#!/usr/bin/env python3
"""Benchmark: the swarm (issue 17) on network namespaces with tbf-shaped links. Needs root.

Builds its own network: a switch namespace with a bridge, an origin namespace (`modelcache serve`
of a generated model behind a byte-counting TCP proxy) and HOSTS host namespaces, each running a
`modelcache agent`; every namespace hangs off the bridge by a veth pair shaped with `tc tbf` in
both directions: the origin's link at ORIGIN_MBS MB/s, each host's at HOST_MBS MB/s. The bench
itself talks to the agents from the switch namespace (br0 has an address).

  solo     one host alone ensures the model (T1)
  swarm    all hosts ensure it at once, each told the others (`swarm`); every host's time to
           verified and ready, the slowest is T8; origin bytes (HTTP bytes the origin sent)
  kill     all hosts again; one agent is SIGKILLed once the origin has sent a third of the model:
           the others must finish
Every cache is checked with `modelcache verify` afterwards. Prints T8/T1 (goal <= 1.3) and
origin bytes / model bytes (goal <= 1.05).

MEMBERS=nested (the default) gives host i only hosts 0..i-1: what the controller sends when it
places the workers one after another (each is told of the downloads placed before it; the first of
none), so members must learn of each other while they download. MEMBERS=full gives every host all
the others.

Namespaces are named mcsw<pid>-*; they and the processes are removed on exit, on SIGINT/SIGTERM,
and (for a run that was SIGKILLed) by the next run, which deletes those whose pid is gone.

Usage: bench/swarm_netns.py [path/to/modelcache]
Env:   HOSTS=8 BENCH_MODEL_MIB=512 ORIGIN_MBS=25 HOST_MBS=100 MEMBERS=nested|full PHASES=solo,swarm,kill
       BENCH_DIR=/work/tmp-swarm SHARDS=2 GOAL_TIME=1.3 GOAL_BYTES=1.05
       CHECK=1: exit 1 when a goal is missed (for tests); KEEP=1: keep the agents' logs
"""
import concurrent.futures
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

PREFIX = "mcsw"
NET = "10.77"
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1


def sh(*args, check=True):
    return subprocess.run(list(args), check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def die_with_parent():
    # Children die with the bench, even when it is SIGKILLed (ip netns exec execs the command).
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def sweep(own=False):
    """Deletes this run's namespaces (own), or those of earlier runs whose bench process is gone
    (SIGKILLed)."""
    for line in sh("ip", "netns", "list").stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(PREFIX) or "-" not in name:
            continue
        pid = name[len(PREFIX):].split("-", 1)[0]
        if not pid.isdigit():
            continue
        if (own and int(pid) == os.getpid()) or (not own and not os.path.exists(f"/proc/{pid}")):
            sh("ip", "netns", "del", name, check=False)


class Network:
    """The switch namespace (bridge), and one namespace per node linked to it by a shaped veth."""

    def __init__(self):
        self.tag = f"{PREFIX}{os.getpid()}"
        self.names = []
        self.switch = self.add_ns("sw")
        sh("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.switch, "addr", "add", f"{NET}.0.254/24", "dev", "br0")
        sh("ip", "-n", self.switch, "link", "set", "br0", "up")
        sh("ip", "-n", self.switch, "link", "set", "lo", "up")

    def add_ns(self, role):
        name = f"{self.tag}-{role}"
        sh("ip", "netns", "add", name)
        self.names.append(name)
        return name

    def add_node(self, role, last_octet, mbytes_per_second):
        """A namespace with eth0 = NET.0.<last_octet>, shaped both ways at the given rate."""
        ns = self.add_ns(role)
        port = f"v-{role}"
        sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port,
           "netns", self.switch)
        sh("ip", "-n", ns, "addr", "add", f"{NET}.0.{last_octet}/24", "dev", "eth0")
        for args in (["-n", ns, "link", "set", "lo", "up"], ["-n", ns, "link", "set", "eth0", "up"],
                     ["-n", self.switch, "link", "set", port, "master", "br0"],
                     ["-n", self.switch, "link", "set", port, "up"]):
            sh("ip", *args)
        rate = f"{int(mbytes_per_second * 8)}mbit"
        # Burst: at least two timer ticks' worth at the rate and a 64 KiB GSO packet.
        burst = str(max(256 << 10, int(mbytes_per_second * 1e6 / 100)))
        for where, dev in ((ns, "eth0"), (self.switch, port)):  # upload, download
            sh("ip", "netns", "exec", where, "tc", "qdisc", "add", "dev", dev, "root", "tbf",
               "rate", rate, "burst", burst, "latency", "100ms")
        return ns, f"{NET}.0.{last_octet}"

    def enter_switch(self):
        """Moves this process's network (threads started later inherit it) into the switch."""
        fd = os.open(f"/run/netns/{self.switch}", os.O_RDONLY)
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            sys.exit(f"swarm_netns: setns: {os.strerror(ctypes.get_errno())}")
        os.close(fd)

    def delete(self):
        for name in reversed(self.names):
            sh("ip", "netns", "del", name, check=False)
        self.names = []


class Procs:
    def __init__(self):
        self.all = []

    def start(self, ns, cmd, out_path, marker=None, env=None):
        out = open(out_path, "w")
        full = (["ip", "netns", "exec", ns] if ns else []) + cmd
        proc = subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT, env=env,
                                preexec_fn=die_with_parent)
        self.all.append(proc)
        if marker is None:
            return proc, None
        for _ in range(1200):
            for line in open(out_path).read().splitlines():
                if marker in line:
                    return proc, line.split(marker, 1)[1].strip()
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        sys.exit(f"swarm_netns: {' '.join(cmd[:2])} did not start: {open(out_path).read()[-2000:]}")

    def stop(self, proc, sig=signal.SIGTERM):
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self):
        for p in self.all:
            self.stop(p)


def proxy_main(listen_ip, listen_port, target_port, count_file):
    """Runs in the origin namespace: forwards to the serve, counts the bytes sent to clients."""
    sent = [0]
    lock = threading.Lock()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((listen_ip, int(listen_port)))
    srv.listen(512)

    def pipe(src, dst, count):
        try:
            while True:
                data = src.recv(1 << 20)
                if not data:
                    break
                dst.sendall(data)
                if count:
                    with lock:
                        sent[0] += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def accept():
        while True:
            client, _ = srv.accept()
            up = socket.create_connection(("127.0.0.1", int(target_port)))
            threading.Thread(target=pipe, args=(client, up, False), daemon=True).start()
            threading.Thread(target=pipe, args=(up, client, True), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    print("proxy listening", flush=True)
    while True:
        with lock:
            n = sent[0]
        with open(count_file + ".tmp", "w") as f:
            f.write(str(n))
        os.replace(count_file + ".tmp", count_file)
        time.sleep(0.05)


AGENT_KEY = "bench-" + os.urandom(16).hex()


def post(url, body, timeout=900):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + AGENT_KEY})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")[:500]
    except OSError as e:
        return 0, str(e)


class Bench:
    def __init__(self, mc, work):
        self.mc = mc
        self.work = work
        self.hosts = int(os.environ.get("HOSTS", "8"))
        self.mib = int(os.environ.get("BENCH_MODEL_MIB", "512"))
        self.origin_mbs = float(os.environ.get("ORIGIN_MBS", "25"))
        self.host_mbs = float(os.environ.get("HOST_MBS", "100"))
        self.members = os.environ.get("MEMBERS", "nested")
        self.shards = os.environ.get("SHARDS", "2")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        self.env["HF_HOME"] = os.path.join(work, "hf-home")
        self.procs = Procs()
        self.net = None
        self.agents = {}  # host index -> (proc, url, cache dir)
        self.round = 0

    def count(self):
        try:
            return int(open(self.count_file).read() or 0)
        except (OSError, ValueError):
            return 0

    def setup(self):
        model = os.path.join(self.work, "model")
        t0 = time.time()
        subprocess.run([self.mc, "fixture", model, "--size", f"{self.mib}MiB", "--shards",
                        self.shards, "--seed", "7"], check=True, stdout=subprocess.DEVNULL,
                       env=self.env)
        upstream = os.path.join(self.work, "upstream")
        subprocess.run([self.mc, "import", model, "--repo", "bench/model", "--cache-dir",
                        upstream], check=True, stdout=subprocess.DEVNULL, env=self.env)
        self.model_bytes = sum(os.path.getsize(os.path.join(d, f))
                               for d, _, fs in os.walk(model) for f in fs)
        shutil.rmtree(model)
        print(f"# model {self.model_bytes} bytes ({time.time() - t0:.0f} s to generate); "
              f"{self.hosts} hosts; links: origin {self.origin_mbs:g} MB/s, hosts "
              f"{self.host_mbs:g} MB/s (tbf, both ways); members {self.members}", flush=True)
        self.net = Network()
        origin_ns, origin_ip = self.net.add_node("o", 1, self.origin_mbs)
        self.host_ns = [self.net.add_node(f"h{i}", 10 + i, self.host_mbs) for i in range(self.hosts)]
        _, serve_url = self.procs.start(
            origin_ns, [self.mc, "serve", "--cache-dir", upstream, "--listen", "127.0.0.1:0"],
            os.path.join(self.work, "serve.out"), "listening on", env=self.env)
        self.count_file = os.path.join(self.work, "origin-bytes")
        self.procs.start(origin_ns, [sys.executable, os.path.abspath(__file__), "proxy", origin_ip,
                                     "8765", serve_url.rsplit(":", 1)[1], self.count_file],
                         os.path.join(self.work, "proxy.out"), "proxy listening")
        self.origin = f"http://{origin_ip}:8765"
        self.key_file = os.path.join(self.work, "agent-key")
        with open(self.key_file, "w") as f:
            f.write(AGENT_KEY + "\n")
        os.chmod(self.key_file, 0o600)
        self.net.enter_switch()

    def start_agents(self, indices):
        self.round += 1
        for i in indices:
            ns, ip = self.host_ns[i]
            d = os.path.join(self.work, f"r{self.round}-h{i}")
            proc, url = self.procs.start(
                ns, [self.mc, "agent", "--cache-dir", f"{d}/cache", "--state-dir", f"{d}/state",
                     "--capacity", f"{self.mib * 3}MiB", "--listen", f"{ip}:8766", "--upstream",
                     self.origin, "--runtime", "process", "--api-key-file", self.key_file,
                     # standalone agents (no controller hands them the fleet's peer key): one
                     # shared file opens their mirror routes to each other
                     "--peer-key-file", self.key_file, "--host-id", f"h{i}"],
                f"{d}.out", "agent listening on", env=self.env)
            self.agents[i] = (proc, url, f"{d}/cache")

    def stop_agents(self):
        for i, (proc, _, cache) in list(self.agents.items()):
            self.procs.stop(proc)
            shutil.rmtree(cache, ignore_errors=True)
        self.agents = {}

    def verify(self, indices):
        bad = []
        for i in indices:
            r = subprocess.run([self.mc, "verify", "--cache-dir", self.agents[i][2]],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=self.env)
            if r.returncode != 0 or "0 failed" not in r.stdout:
                bad.append(f"h{i}: {r.stdout.strip()[-300:]}")
        return bad

    def ensure_all(self, indices, on_progress=None):
        """Every host in `indices` ensures the model at the same instant; seconds per host."""
        urls = {i: self.agents[i][1] for i in indices}
        barrier = threading.Barrier(len(indices))
        t0 = [0.0]

        def one(i):
            if self.members == "nested":
                swarm = [urls[j] for j in indices if j < i]
            else:
                swarm = [urls[j] for j in indices if j != i]
            body = {"model": "bench/model"}
            if swarm:
                body["swarm"] = swarm
            if barrier.wait() == 0:
                t0[0] = time.time()
            start = time.time()
            status, answer = post(urls[i] + "/v1/ensure?wait=900", body)
            return i, status, answer, time.time() - start

        with concurrent.futures.ThreadPoolExecutor(len(indices) + 1) as pool:
            futures = [pool.submit(one, i) for i in indices]
            if on_progress:
                on_progress(futures)
            return [f.result() for f in futures]

    def run(self, phases):
        results = {}
        model = self.model_bytes
        if "solo" in phases:
            self.start_agents([0])
            before = self.count()
            [(_, status, answer, secs)] = self.ensure_all([0])
            time.sleep(0.2)
            if status != 200:
                sys.exit(f"swarm_netns: the solo ensure failed: {status} {answer}")
            results["T1"] = secs
            results["solo_origin"] = (self.count() - before) / model
            results["solo_bad"] = self.verify([0])
            print(f"solo: T1 {secs:.2f} s ({model / secs / 1e6:.1f} MB/s), origin "
                  f"{results['solo_origin']:.4f}x, verify {'ok' if not results['solo_bad'] else results['solo_bad']}",
                  flush=True)
            self.stop_agents()
        everyone = list(range(self.hosts))
        if "swarm" in phases:
            self.start_agents(everyone)
            before = self.count()
            samples = []  # (seconds, origin bytes): when the origin was done sending
            done = threading.Event()

            def sample():
                t0 = time.time()
                while not done.is_set():
                    samples.append((time.time() - t0, self.count() - before))
                    time.sleep(0.25)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            answers = self.ensure_all(everyone)
            time.sleep(0.2)
            done.set()
            sampler.join()
            final = samples[-1][1] if samples else 0
            half = next((t for t, n in samples if n >= final / 2), 0)
            most = next((t for t, n in samples if n >= final * 0.99), 0)
            print(f"swarm: the origin had sent half its bytes at {half:.1f} s, 99% at {most:.1f} s",
                  flush=True)
            failed = [a for a in answers if a[1] != 200]
            if failed:
                sys.exit(f"swarm_netns: an ensure failed: {failed[0][:3]}")
            times = sorted(a[3] for a in answers)
            results["T8"] = times[-1]
            results["swarm_origin"] = (self.count() - before) / model
            results["swarm_bad"] = self.verify(everyone)
            peer = sum(sum(v for k, v in a[2].get("bytes_by_source", {}).items() if k != "upstream")
                       for a in answers)
            used = [a[2].get("bytes_by_source", {}).get("upstream", 0) / model for a in answers]
            print("swarm: from the origin per host (x the model): " +
                  " ".join(f"h{a[0]} {u:.3f}" for a, u in zip(answers, used)) +
                  f"; sum {sum(used):.4f} (the rest of the origin's bytes were cut off on the wire)",
                  flush=True)
            print(f"swarm: T{self.hosts} {times[-1]:.2f} s (hosts " +
                  " ".join(f"{t:.1f}" for t in times) + f"), origin {results['swarm_origin']:.4f}x, "
                  f"peer bytes {peer / model:.2f}x the model, verify "
                  f"{'ok' if not results['swarm_bad'] else results['swarm_bad']}", flush=True)
            self.stop_agents()
        if "kill" in phases:
            self.start_agents(everyone)
            victim = self.hosts - 1
            before = self.count()

            def killer(_futures):
                while self.count() - before < model // 3:
                    time.sleep(0.02)
                os.kill(self.agents[victim][0].pid, signal.SIGKILL)
                print(f"kill: h{victim} SIGKILLed once the origin had sent "
                      f"{(self.count() - before) / model:.2f}x the model", flush=True)

            answers = self.ensure_all(everyone, on_progress=killer)
            time.sleep(0.2)
            survivors = [i for i in everyone if i != victim]
            failed = [a[:3] for a in answers if a[0] != victim and a[1] != 200]
            results["kill_failed"] = failed
            results["kill_bad"] = self.verify(survivors)
            times = sorted(a[3] for a in answers if a[0] != victim)
            results["kill_origin"] = (self.count() - before) / model
            print(f"kill: {len(survivors) - len(failed)}/{len(survivors)} survivors ready, slowest "
                  f"{times[-1]:.2f} s, origin {results['kill_origin']:.4f}x, verify "
                  f"{'ok' if not results['kill_bad'] else results['kill_bad']}"
                  + (f", failed: {failed}" if failed else ""), flush=True)
            del self.agents[victim]
            self.stop_agents()
        return results


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "proxy":
        return proxy_main(*sys.argv[2:6])
    if os.geteuid() != 0:
        sys.exit("swarm_netns: needs root (it creates network namespaces and tc qdiscs); "
                 "run it with sudo")
    if shutil.which("ip") is None or shutil.which("tc") is None:
        sys.exit("swarm_netns: needs iproute2 (ip, tc): apt-get install iproute2")
    mc = os.path.realpath(sys.argv[1] if len(sys.argv) > 1 else "build/src/cli/modelcache")
    phases = os.environ.get("PHASES", "solo,swarm,kill").split(",")
    base = os.environ.get("BENCH_DIR", "/work/tmp-swarm")
    os.makedirs(base, exist_ok=True)
    sweep()
    work = tempfile.mkdtemp(prefix="run.", dir=base)
    bench = Bench(mc, work)

    def on_signal(signum, _frame):
        raise SystemExit(f"swarm_netns: signal {signum}, cleaning up")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    ok = True
    try:
        print(f"# load: {open('/proc/loadavg').read().strip()}", flush=True)
        bench.setup()
        r = bench.run(phases)
        goal_t = float(os.environ.get("GOAL_TIME", "1.3"))
        goal_b = float(os.environ.get("GOAL_BYTES", "1.05"))
        if "T1" in r and "T8" in r:
            ratio = r["T8"] / r["T1"]
            verdict_t = "PASS" if ratio <= goal_t else "MISS"
            verdict_b = "PASS" if r["swarm_origin"] <= goal_b else "MISS"
            print(f"T{bench.hosts}/T1 = {ratio:.3f} {verdict_t} (goal <= {goal_t}); origin bytes / "
                  f"model = {r['swarm_origin']:.4f} {verdict_b} (goal <= {goal_b})")
            ok = ok and verdict_t == "PASS" and verdict_b == "PASS"
        for k in ("solo_bad", "swarm_bad", "kill_bad", "kill_failed"):
            if r.get(k):
                print(f"FAIL {k}: {r[k]}")
                ok = False
        print(f"# load: {open('/proc/loadavg').read().strip()}", flush=True)
    finally:
        bench.procs.stop_all()
        sweep(own=True)  # also those of a Network whose set-up a signal interrupted
        if os.environ.get("KEEP") == "1":
            print(f"# kept the logs in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if os.environ.get("CHECK") == "1" and not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
