#!/usr/bin/env python3
"""Chaos under load (issue 18; docs/reliability.md section 6). Python 3 standard library only.

Starts a whole fleet on loopback from the real binary: an origin hub (`modelcache serve` over a
cache holding two generated models), a controller (SQLite), two agents running the example Runpod
worker (examples/runpod_worker.py) as processes, and two endpoints. A Runpod-style client submits
jobs in rounds (plain, failing, streamed, some with a webhook to a receiver in this process) while
the harness SIGKILLs, at random moments (seeded RNG, the seed printed), one of: the controller, an
agent, a worker process, or a `modelcache pull` in flight; killed daemons are started again after a
random downtime. After each round, once the fleet has settled, it checks:

  - every job reached one final status (the expected one), and never changed it afterwards;
  - from the workers' own append-only log (EXAMPLE_WORKER_JOB_LOG, outside the system): a job was
    started at most retries + 1 times (a re-run is always a counted retry), retries <= --max-retries;
  - no ledger row is open for a worker whose process is gone (/v1/ledger, /v1/workers);
  - the webhook outbox is drained (the store's webhook_outbox is empty) and every job with a
    webhook was delivered with its final status;
  - every cache passes `modelcache verify` (agents' and the pull's);
  - no orphan process: every running worker process is a live worker of the controller;
  - no temp file (*.tmp, *.incomplete but resume partials) older than its agent's last start (the
    agent sweeps them when it starts).

Prints the figures (kills by kind, jobs by final status, retries, re-runs, violations) and exits 1
if there was any violation.

Usage: chaos.py --modelcache build/src/cli/modelcache [--kills N] [--seed S] [--keep]
  CHAOS_KILLS / CHAOS_SEED in the environment give the defaults (make test-chaos: 200 kills).
"""
import argparse
import ctypes
import http.client
import http.server
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
WORKER = os.path.join(SOURCE, "examples", "runpod_worker.py")
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")


def say(msg):
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def die_with_parent():
    """preexec_fn: the child gets SIGKILL if this harness dies (PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


def request(method, url, body=None, headers=None, timeout=30.0):
    """(status, parsed JSON or None). Status 0 when there was no answer."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    try:
        conn.request(method, u.path + ("?" + u.query if u.query else ""), body=data, headers=h)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, None
    except (OSError, http.client.HTTPException):
        return 0, None
    finally:
        conn.close()


class Daemon:
    """A modelcache process that prints '<prefix><url>' on stdout when ready."""

    def __init__(self, name, argv, prefix, log_path):
        self.name, self.argv, self.prefix, self.log_path = name, argv, prefix, log_path
        self.proc, self.url, self.started = None, None, 0.0

    def start(self, timeout=60.0):
        self.started = time.time()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent)
        log.close()
        box = []

        def read():
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace")
                if not box and self.prefix in line:
                    box.append(line.split(self.prefix, 1)[1].strip())
            # EOF: the process ended

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.time() + timeout
        while not box and time.time() < deadline and self.proc.poll() is None:
            time.sleep(0.02)
        if not box:
            raise RuntimeError(f"{self.name} did not start (exit {self.proc.poll()}); see {self.log_path}")
        self.url = box[0]
        return self.url

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(30)

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Receiver:
    """Webhook receiver: records every POSTed status object by job id."""

    def __init__(self):
        self.lock = threading.Lock()
        self.bodies = {}  # job id -> [status object, ...]
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw)
                    with outer.lock:
                        outer.bodies.setdefault(body.get("id"), []).append(body)
                except ValueError:
                    pass
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def get(self, job_id):
        with self.lock:
            return list(self.bodies.get(job_id, []))


class Fleet:
    def __init__(self, args, work, rng):
        self.args, self.work, self.rng = args, work, rng
        self.mc = os.path.abspath(args.modelcache)
        self.job_log = os.path.join(work, "jobs.log")
        self.db = os.path.join(work, "controller.db")
        self.key = None
        self.agents = []
        self.endpoints = {}  # name -> id
        self.jobs = {}  # id -> {"endpoint", "kind", "expect", "webhook", "final"}
        self.pull = None
        self.pull_cache = os.path.join(work, "pull-hub")
        self.kills = {"controller": 0, "agent": 0, "worker": 0, "pull": 0}
        self.violations = []

    def run(self, argv, check=True):
        p = subprocess.run([self.mc] + argv, capture_output=True, text=True)
        if check and p.returncode != 0:
            raise RuntimeError(f"modelcache {' '.join(argv)}: exit {p.returncode}: {p.stderr[-2000:]}")
        return p

    def auth(self):
        return {"Authorization": f"Bearer {self.key}"}

    def call(self, method, path, body=None, timeout=30.0):
        return request(method, self.controller_url + path, body, self.auth(), timeout)

    # ---------------------------------------------------------------- set-up
    def setup(self):
        w = self.work
        origin = os.path.join(w, "origin-hub")
        for repo, size, seed in (("chaos/small", "1MiB", "1"), ("chaos/big", "12MiB", "2")):
            src = os.path.join(w, "src", repo)
            self.run(["fixture", src, "--size", size, "--shards", "3", "--seed", seed])
            self.run(["import", src, "--repo", repo, "--cache-dir", origin])
        self.mirror = Daemon("mirror", [self.mc, "serve", "--cache-dir", origin, "--listen", "127.0.0.1:0",
                                        "--max-rate-per-answer", "4MB"],
                             "listening on ", os.path.join(w, "mirror.log"))
        self.origin = self.mirror.start()
        self.key = self.run(["keys", "create", "--db", "sqlite:" + self.db, "--name", "chaos"]).stdout.strip()
        self.key_file = os.path.join(w, "key")
        with open(self.key_file, "w") as f:
            f.write(self.key + "\n")
        port = free_port()
        self.controller = Daemon("controller", [
            self.mc, "controller", "--db", "sqlite:" + self.db, "--listen", f"127.0.0.1:{port}",
            "--upstream", self.origin, "--agent-key-file", self.key_file, "--requeue-after", "3",
            "--webhook-allow-private"], "controller listening on ", os.path.join(w, "controller.log"))
        self.controller_url = self.controller.start()
        for n in (1, 2):
            host = f"host-{n}"
            status, body = self.call("POST", "/v1/hosts/enroll", {"hostId": host})
            if status != 200:
                raise RuntimeError(f"enroll {host}: HTTP {status} {body}")
            cred = os.path.join(w, host + ".credential")
            with open(cred, "w") as f:
                f.write(body["credential"] + "\n")
            d = os.path.join(w, host)
            agent = Daemon(host, [
                self.mc, "agent", "--cache-dir", os.path.join(d, "hub"), "--state-dir", os.path.join(d, "state"),
                "--capacity", "1GiB", "--gpus", "2", "--gpu-type", "test-gpu", "--listen", "127.0.0.1:0",
                "--controller", self.controller_url, "--host-id", host, "--host-credential-file", cred,
                "--api-key-file", self.key_file, "--upstream", self.origin, "--runtime", "process",
                "--heartbeat-interval", "0.2"], "agent listening on ", os.path.join(w, host + ".log"))
            agent.cache = os.path.join(d, "hub")
            agent.start()
            self.agents.append(agent)
        self.receiver = Receiver()
        for name, model in (("small", "chaos/small"), ("big", "chaos/big")):
            status, body = self.call("POST", "/v1/endpoints", {
                "name": name, "model": model, "workersMax": 2, "scalerType": "REQUEST_COUNT",
                "scalerValue": 4, "env": {"EXAMPLE_WORKER_JOB_LOG": self.job_log},
                "command": ["python3", WORKER]})
            if status != 200 or not body or "id" not in body:
                raise RuntimeError(f"create endpoint {name}: HTTP {status} {body}")
            self.endpoints[name] = body["id"]

    # ---------------------------------------------------------------- load
    def submit(self, n):
        for _ in range(n):
            name = self.rng.choice(list(self.endpoints))
            ep = self.endpoints[name]
            roll = self.rng.random()
            inp = {"sleep": round(self.rng.uniform(0.0, 0.5), 2), "k": len(self.jobs)}
            kind, expect = "plain", "COMPLETED"
            if roll < 0.2:
                inp["stream"] = 3
                kind = "stream"
            elif roll < 0.3:
                inp["fail"] = "chaos says no"
                kind, expect = "fail", "FAILED"
            body = {"input": inp}
            webhook = self.rng.random() < 0.3
            if webhook:
                body["webhook"] = self.receiver.url
            for _ in range(100):  # the controller may be down: the client retries, as a client would
                status, reply = self.call("POST", f"/v2/{ep}/run", body, timeout=10)
                if status == 200 and reply and "id" in reply:
                    self.jobs[reply["id"]] = {"endpoint": ep, "kind": kind, "expect": expect,
                                              "webhook": webhook, "final": None, "input": inp}
                    break
                time.sleep(0.1)
            else:
                self.violate(f"could not submit a job for 10 s (last HTTP {status})")

    # ---------------------------------------------------------------- kills
    def worker_pids(self):
        """{pid: worker id} of the running example workers of this run (their environment names our log)."""
        out = {}
        needle = ("EXAMPLE_WORKER_JOB_LOG=" + self.job_log).encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    env = f.read().split(b"\0")
                with open(f"/proc/{entry}/stat", "rb") as f:
                    state = f.read().rsplit(b")", 1)[1].split()[0]
            except OSError:
                continue
            if needle in env and state != b"Z":
                pod = [e for e in env if e.startswith(b"RUNPOD_POD_ID=")]
                out[int(entry)] = pod[0].split(b"=", 1)[1].decode() if pod else ""
        return out

    def start_pull(self):
        self.pull = subprocess.Popen(
            [self.mc, "pull", "chaos/big", "--cache-dir", self.pull_cache, "--state-dir",
             os.path.join(self.work, "pull-state"), "--endpoint", self.origin, "--connections", "2"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.work, "pull.log"), "ab"),
            preexec_fn=die_with_parent)

    def kill_one(self):
        kinds = ["controller", "agent", "worker", "pull"]
        kind = self.rng.choices(kinds, weights=[3, 3, 3, 2])[0]
        if kind == "worker":
            pids = sorted(self.worker_pids())
            if not pids:
                kind = "controller"
            else:
                pid = self.rng.choice(pids)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    return self.kill_one()
                say(f"kill worker pid {pid}")
        if kind == "pull":
            if self.pull is None or self.pull.poll() is not None:
                self.start_pull()
                time.sleep(self.rng.uniform(0.05, 1.5))
            if self.pull.poll() is not None:  # it finished first: start over from an empty cache
                self.run(["rm", "chaos/big", "--cache-dir", self.pull_cache], check=False)
                self.start_pull()
                time.sleep(self.rng.uniform(0.05, 1.0))
            self.pull.kill()
            self.pull.wait()
            say("kill pull")
        if kind == "controller":
            self.controller.kill()
            say("kill controller")
            time.sleep(self.rng.uniform(0.0, 1.5))
            self.controller.start()
        if kind == "agent":
            agent = self.rng.choice(self.agents)
            agent.kill()
            say(f"kill {agent.name}")
            time.sleep(self.rng.uniform(0.0, 1.5))
            agent.start()
        self.kills[kind] += 1

    # ---------------------------------------------------------------- checks
    def violate(self, msg):
        if msg in self.violations:  # a round's checks see again what an earlier round found
            return
        say("VIOLATION " + msg)
        self.violations.append(msg)

    def settle(self, timeout=180.0):
        """Waits until every job is final; returns the ids that are not."""
        deadline = time.time() + timeout
        open_ids = [j for j, r in self.jobs.items() if r["final"] is None]
        while open_ids and time.time() < deadline:
            left = []
            for j in open_ids:
                r = self.jobs[j]
                status, body = self.call("GET", f"/v2/{r['endpoint']}/status/{j}", timeout=10)
                if status == 200 and body and body.get("status") in FINAL:
                    r["final"] = body
                    if r["kind"] == "stream":
                        self.call("GET", f"/v2/{r['endpoint']}/stream/{j}", timeout=10)
                else:
                    left.append(j)
            open_ids = left
            if open_ids:
                time.sleep(0.2)
        return open_ids

    def read_log(self):
        runs = {}
        try:
            with open(self.job_log) as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        self.violate(f"torn job log line: {line[:100]!r}")
                        continue
                    runs.setdefault(rec["job"], []).append(rec)
        except FileNotFoundError:
            pass
        return runs

    def eventually(self, what, check, timeout=30.0):
        """check() returns a list of problems; they must go away within timeout."""
        deadline = time.time() + timeout
        while True:
            problems = check()
            if not problems or time.time() > deadline:
                break
            time.sleep(0.3)
        for p in problems:
            self.violate(f"{what}: {p}")

    def check(self):
        stuck = self.settle()
        for j in stuck:
            self.violate(f"job {j} ({self.jobs[j]['kind']}) has no final status after 180 s")
        runs = self.read_log()
        for j, r in self.jobs.items():
            if r["final"] is None:
                continue
            status, now = self.call("GET", f"/v2/{r['endpoint']}/status/{j}", timeout=10)
            if status == 200 and now and now.get("status") != r["final"]["status"]:
                self.violate(f"job {j}: final status changed from {r['final']['status']} to {now.get('status')}")
            final = r["final"]
            if final["status"] != r["expect"]:
                self.violate(f"job {j} ({r['kind']}): {final['status']}, expected {r['expect']}: {json.dumps(final)[:300]}")
            retries = final.get("retries", 0)
            starts = [x for x in runs.get(j, []) if x["event"] == "start"]
            if final["status"] in ("COMPLETED", "FAILED") and not starts:
                self.violate(f"job {j}: {final['status']} but no worker's log shows it ran")
            if len(starts) > retries + 1:
                self.violate(f"job {j}: started {len(starts)} times, counted as {retries} retries")
            if retries > self.args.max_retries:
                self.violate(f"job {j}: {retries} retries (bound {self.args.max_retries})")
            if final.get("workerId") and starts and final["workerId"] not in {x["worker"] for x in starts}:
                self.violate(f"job {j}: final status names worker {final['workerId']}, which never started it")
        self.eventually("webhook", self.webhook_problems, 60.0)
        self.eventually("ledger/orphans", self.process_problems, 40.0)
        self.check_caches()

    def webhook_problems(self):
        problems = []
        try:
            db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
            left = db.execute("SELECT count(*) FROM webhook_outbox").fetchone()[0]
            db.close()
            if left:
                problems.append(f"the webhook outbox holds {left} deliveries")
        except sqlite3.Error as err:
            problems.append(f"read the outbox: {err}")
        for j, r in self.jobs.items():
            if not r["webhook"] or r["final"] is None:
                continue
            got = self.receiver.get(j)
            if not got:
                problems.append(f"job {j}: no webhook delivery")
            elif any(b.get("status") != r["final"]["status"] for b in got):
                problems.append(f"job {j}: a delivery says {[b.get('status') for b in got]}, final {r['final']['status']}")
        return problems

    def process_problems(self):
        problems = []
        live = set()
        for ep in self.endpoints.values():
            status, body = self.call("GET", f"/v1/workers?endpoint={ep}")
            if status != 200:
                return [f"/v1/workers: HTTP {status}"]
            live |= {w["id"] for w in body["workers"] if w["phase"] not in ("stopped", "failed")}
        procs = self.worker_pids()
        running = set(procs.values())
        for pid, wid in procs.items():
            if wid not in live:
                problems.append(f"orphan worker process {pid} ({wid}): not a live worker of the controller")
        for ep in self.endpoints.values():
            status, body = self.call("GET", f"/v1/ledger?endpoint={ep}")
            if status != 200:
                return [f"/v1/ledger: HTTP {status}"]
            for row in body["ledger"]:
                if row["end"] is None and row["workerId"] not in running:
                    problems.append(f"ledger row open for worker {row['workerId']}, whose process is gone")
        return problems

    def check_caches(self):
        caches = [(a.name, a.cache, a.started) for a in self.agents]
        if self.pull is None or self.pull.poll() is not None:
            caches.append(("pull", self.pull_cache, None))
        for name, cache, started in caches:
            if not os.path.isdir(cache):
                continue
            p = self.run(["verify", "--cache-dir", cache], check=False)
            if p.returncode != 0:
                self.violate(f"{name}: modelcache verify exit {p.returncode}: {(p.stdout + p.stderr)[-500:]}")
            if started is None:
                continue
            for dirpath, _, names in os.walk(cache):
                for n in names:
                    if not (n.endswith(".tmp") or n.endswith(".incomplete")) or n.endswith(".resume.incomplete"):
                        continue
                    path = os.path.join(dirpath, n)
                    try:
                        mtime = os.lstat(path).st_mtime
                    except FileNotFoundError:
                        continue
                    if mtime < started - 1.0:
                        self.violate(f"{name}: temp file {path} older than the agent's start (not swept)")

    # ---------------------------------------------------------------- tear-down
    def teardown(self):
        if self.pull is not None and self.pull.poll() is None:
            self.pull.kill()
            self.pull.wait()
        if self.controller.alive():
            for ep in self.endpoints.values():
                self.call("DELETE", f"/v1/endpoints/{ep}")
            deadline = time.time() + 30
            while self.worker_pids() and time.time() < deadline:
                time.sleep(0.2)
        for pid in self.worker_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for d in self.agents + [self.controller, self.mirror]:
            d.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--modelcache", default=os.path.join(SOURCE, "build", "src", "cli", "modelcache"),
                    help="the binary under test (default build/src/cli/modelcache)")
    ap.add_argument("--kills", type=int, default=int(os.environ.get("CHAOS_KILLS", "12")),
                    help="how many kills in all (default $CHAOS_KILLS, else 12; the full run is 200)")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CHAOS_SEED", "0")) or None,
                    help="the RNG seed (default $CHAOS_SEED, else random; printed either way)")
    ap.add_argument("--jobs-per-round", type=int, default=8, help="jobs submitted per round (default 8)")
    ap.add_argument("--max-retries", type=int, default=6, help="the bound on a job's retries (default 6)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs, caches, the database)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix="mc_chaos_")
    say(f"seed {seed} (rerun: CHAOS_SEED={seed}), {args.kills} kills, work dir {work}")
    fleet = Fleet(args, work, rng)
    started = time.time()
    rounds = 0
    try:
        fleet.setup()
        while sum(fleet.kills.values()) < args.kills:
            rounds += 1
            fleet.submit(args.jobs_per_round)
            for _ in range(min(rng.randint(1, 3), args.kills - sum(fleet.kills.values()))):
                time.sleep(rng.uniform(0.1, 1.5))
                fleet.kill_one()
            fleet.check()
            say(f"round {rounds}: {sum(fleet.kills.values())} kills, {len(fleet.jobs)} jobs, "
                f"{len(fleet.violations)} violations")
    except Exception as err:  # a harness failure is a failure, never a pass
        fleet.violate(f"harness: {type(err).__name__}: {err}")
    finally:
        try:
            fleet.teardown()
        except Exception as err:
            fleet.violate(f"tear-down: {type(err).__name__}: {err}")
    finals = {}
    for r in fleet.jobs.values():
        s = r["final"]["status"] if r["final"] else "none"
        finals[s] = finals.get(s, 0) + 1
    retries = sum((r["final"] or {}).get("retries", 0) for r in fleet.jobs.values())
    runs = fleet.read_log()
    reruns = sum(1 for j in fleet.jobs if sum(x["event"] == "start" for x in runs.get(j, [])) > 1)
    hooks = sum(1 for r in fleet.jobs.values() if r["webhook"])
    streams = sum(1 for r in fleet.jobs.values() if r["kind"] == "stream")
    print(f"chaos: seed {seed}, {rounds} rounds, {time.time() - started:.0f} s")
    print(f"chaos: kills {sum(fleet.kills.values())} ({', '.join(f'{k} {v}' for k, v in fleet.kills.items())})")
    print(f"chaos: jobs {len(fleet.jobs)} ({hooks} with webhooks, {streams} streamed); final statuses "
          f"{', '.join(f'{k} {v}' for k, v in sorted(finals.items()))}; retries {retries}; "
          f"jobs run more than once {reruns}")
    print(f"chaos: violations {len(fleet.violations)}")
    if fleet.violations or args.keep:
        print(f"chaos: work dir kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if fleet.violations else 0


if __name__ == "__main__":
    sys.exit(main())
