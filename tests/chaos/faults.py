#!/usr/bin/env python3
"""Fault proxy between a downloader and its upstream (issue 18; docs/reliability.md section 8).
Python 3 standard library only.

A small HTTP proxy sits between `modelcache pull` or `modelcache agent` (one ensure; its /health
is polled meanwhile and must stay responsive) and an origin (`modelcache serve`). Each request is forwarded to the origin; a rule then
spoils the answer of the requests it matches (the API answers, HEAD answers, or file bodies),
either the first one only (a transient fault) or every one (a persistent fault):

  blackhole     the request is read and never answered (the connection stays open)
  reset         half the answer's body, then a TCP reset
  trickle       the answer at 1 byte a second
  truncate      the body cut in half, with a Content-Length that matches the cut (bad JSON)
  huge          a 200 of 8 GiB of JSON-looking bytes, streamed until the client hangs up
  long-length   Content-Length 1000 bytes longer than the body, then the connection closes
  short-length  Content-Length half the body, then the whole body (the rest is garbage)

Each case pulls a model into an empty cache through the proxy and checks the outcome it names:
"ok" (the pull succeeds; the cache verifies and has the model) or "error" (the pull fails with an
error message that names what went wrong, leaves no ref to an incomplete snapshot, and the cache
verifies). Every case must end within its time bound and the pull's peak memory (ru_maxrss) must
stay under --max-rss-mib. Prints one line per case and exits 1 if any case failed.

Usage: faults.py --modelcache build/src/cli/modelcache [--only NAME] [--quick] [--target pull|agent]
"""
import argparse
import http.client
import json
import os
import resource
import shutil
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time

MAX_BODY = 8 << 30  # the "huge" answer's announced size


def selector_matches(sel, method, path):
    if sel == "api":
        return path.startswith("/api/")
    if sel == "head":
        return method == "HEAD"
    if sel == "file":
        return method == "GET" and "/resolve/" in path
    return False


class Proxy:
    """Forwards to `upstream` (host, port); applies `rule` = (selector, fault, count)."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.rule = None
        self.lock = threading.Lock()
        self.hits = 0
        self.requests = []  # (method, path, fault or None)
        self.huge_sent = 0
        self.stop = threading.Event()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                outer.serve_connection(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set_rule(self, rule):
        with self.lock:
            self.rule, self.hits, self.requests, self.huge_sent = rule, 0, [], 0

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()

    # -- one client connection: requests one after the other (keep-alive)
    def serve_connection(self, sock):
        buf = b""
        sock.settimeout(120)
        try:
            while not self.stop.is_set():
                while b"\r\n\r\n" not in buf:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip()] = v.strip()
                n = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
                while len(buf) < n:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buf += data
                body, buf = buf[:n], buf[n:]
                fault = None
                with self.lock:
                    if self.rule and selector_matches(self.rule[0], method, target.split("?")[0]):
                        if self.rule[2] < 0 or self.hits < self.rule[2]:
                            fault = self.rule[1]
                        self.hits += 1
                    self.requests.append((method, target, fault))
                if not self.answer(sock, method, target, headers, body, fault):
                    return
        except OSError:
            return
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def forward(self, method, target, headers, body):
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        h = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection", "keep-alive")}
        conn.request(method, target, body=body or None, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        out = [(k, v) for k, v in resp.getheaders()
               if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length")]
        conn.close()
        length = resp.getheader("Content-Length") if method == "HEAD" else str(len(data))
        return resp.status, resp.reason, out, data, length

    @staticmethod
    def head_bytes(status, reason, headers, length, close=False):
        lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        if close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def answer(self, sock, method, target, headers, body, fault):
        """Sends the (spoiled) answer; returns whether the connection goes on."""
        if fault == "blackhole":
            sock.settimeout(1)
            while not self.stop.is_set():  # until the client gives up
                try:
                    if not sock.recv(65536):
                        return False
                except socket.timeout:
                    continue
            return False
        if fault == "huge":
            sock.sendall(self.head_bytes(200, "OK", [("Content-Type", "application/json")], MAX_BODY))
            chunk = b"[" + b"0," * 32767 + b"0"
            sent = 0
            try:
                while sent < MAX_BODY and not self.stop.is_set():
                    sock.sendall(chunk)
                    sent += len(chunk)
                    with self.lock:
                        self.huge_sent = sent
            except OSError:
                pass
            return False
        status, reason, out, data, length = self.forward(method, target, headers, body)
        if fault is None or method == "HEAD" and fault in ("reset", "truncate", "short-length"):
            if fault == "reset":  # a HEAD has no body to cut: reset before the answer
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return False
            sock.sendall(self.head_bytes(status, reason, out, length) + (b"" if method == "HEAD" else data))
            return True
        if fault == "reset":
            sock.sendall(self.head_bytes(status, reason, out, length) + data[: len(data) // 2])
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if fault == "trickle":
            payload = self.head_bytes(status, reason, out, length) + (b"" if method == "HEAD" else data)
            for i in range(len(payload)):
                if self.stop.wait(1.0):
                    break
                sock.sendall(payload[i:i + 1])
            return False
        if fault == "truncate":
            cut = data[: len(data) // 2]
            sock.sendall(self.head_bytes(status, reason, out, len(cut), close=True) + cut)
            return False
        if fault == "long-length":
            sock.sendall(self.head_bytes(status, reason, out, len(data) + 1000) + data)
            return False
        if fault == "short-length":
            sock.sendall(self.head_bytes(status, reason, out, len(data) // 2) + data)
            return False
        raise ValueError(f"unknown fault {fault}")


# (name, selector, fault, count, expect, seconds bound, slow). "either": success or a clear error.
# Slow cases wait out the client's own timeouts and retries (a metadata request: 10 s, tried twice,
# 6 attempts with back-off; a blob: 6 failed attempts in a row): minutes, so not in the quick run.
CASES = [
    ("api-reset-once", "api", "reset", 1, "ok", 60, False),
    ("api-truncate-once", "api", "truncate", 1, "either", 60, False),
    ("api-long-length-once", "api", "long-length", 1, "ok", 60, False),
    ("file-reset-once", "file", "reset", 1, "ok", 90, False),
    ("file-long-length-once", "file", "long-length", 1, "ok", 90, False),
    ("file-short-length-once", "file", "short-length", 1, "ok", 90, False),
    ("file-trickle-once", "file", "trickle", 1, "ok", 120, True),
    ("api-truncate", "api", "truncate", -1, "error", 60, False),
    ("api-huge", "api", "huge", -1, "error", 120, False),
    ("api-short-length", "api", "short-length", -1, "error", 60, False),
    ("api-reset", "api", "reset", -1, "error", 90, False),
    ("api-blackhole", "api", "blackhole", -1, "error", 300, True),
    ("api-trickle", "api", "trickle", -1, "error", 300, True),
    ("file-reset", "file", "reset", -1, "error", 300, True),
    ("file-short-length", "file", "short-length", -1, "error", 300, True),
]


def run(mc, argv, **kw):
    return subprocess.run([mc] + argv, capture_output=True, text=True, **kw)


def pull_with_rusage(mc, argv, timeout):
    """(exit code, stderr, seconds, peak RSS in MiB) of one pull."""
    t0 = time.monotonic()
    p = subprocess.Popen([mc] + argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = []
    reader = threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True)
    reader.start()
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            reader.join(5)
            code = os.waitstatus_to_exitcode(status)
            p.returncode = code
            return code, (err[0] if err else b"").decode(errors="replace"), time.monotonic() - t0, usage.ru_maxrss / 1024
        time.sleep(0.05)
    p.kill()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = -9
    reader.join(5)
    return None, (err[0] if err else b"").decode(errors="replace"), time.monotonic() - t0, usage.ru_maxrss / 1024


def vm_hwm_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def agent_ensure(mc, work, upstream, cache, state, bound):
    """A fresh `modelcache agent` on `upstream`, one POST /v1/ensure?wait= for the model, /health
    polled meanwhile. (0 or the HTTP status or None on no answer in time, the error text,
    seconds, peak RSS MiB, the slowest /health answer in seconds)."""
    key_file = os.path.join(work, "agent-key")
    with open(key_file, "w") as f:
        f.write("faults-agent-key\n")
    log = open(os.path.join(work, "agent.log"), "ab")
    agent = subprocess.Popen(
        [mc, "agent", "--cache-dir", cache, "--state-dir", state, "--capacity", "1GiB",
         "--listen", "127.0.0.1:0", "--upstream", upstream, "--api-key-file", key_file,
         "--runtime", "process"], stdout=subprocess.PIPE, stderr=log, text=True)
    log.close()
    url = None
    for line in agent.stdout:
        if line.startswith("agent listening on "):
            url = line.split()[-1]
            break
    if url is None:
        agent.kill()
        agent.wait()
        return 1, "error: the agent did not start", 0.0, 0.0, None
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    done = threading.Event()
    slowest = [0.0]

    def poll_health():
        while not done.wait(0.5):
            t = time.monotonic()
            try:
                c = http.client.HTTPConnection(host, int(port), timeout=30)
                c.request("GET", "/health")
                c.getresponse().read()
                c.close()
            except (OSError, http.client.HTTPException):
                pass
            slowest[0] = max(slowest[0], time.monotonic() - t)

    poller = threading.Thread(target=poll_health, daemon=True)
    poller.start()
    t0 = time.monotonic()
    code, err = None, ""
    try:
        c = http.client.HTTPConnection(host, int(port), timeout=bound + 10)
        c.request("POST", f"/v1/ensure?wait={min(bound, 300)}", body=b'{"model": "faults/model"}',
                  headers={"Authorization": "Bearer faults-agent-key", "Content-Type": "application/json"})
        resp = c.getresponse()
        text = resp.read().decode(errors="replace")
        c.close()
        if resp.status == 200:
            code = 0
        elif resp.status == 202:
            code, err = None, "still downloading"
        else:
            code = resp.status
            try:
                body = json.loads(text)
                err = f"error ({body.get('code')}): {body.get('error')}" if body.get("error") else text
            except ValueError:
                err = text
    except (OSError, http.client.HTTPException) as e:
        code, err = None, f"no answer: {e}"
    secs = time.monotonic() - t0
    done.set()
    poller.join(35)
    rss = vm_hwm_mib(agent.pid)
    agent.terminate()
    try:
        agent.wait(20)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait()
    return code, err, secs, rss, slowest[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--modelcache", required=True, help="the binary under test")
    ap.add_argument("--only", help="run only the cases whose name contains this")
    ap.add_argument("--quick", action="store_true",
                    help="skip the slow cases (those that wait out the client's timeouts)")
    ap.add_argument("--max-rss-mib", type=float, default=256.0, help="peak memory bound of a pull (MiB)")
    ap.add_argument("--target", default="pull,agent",
                    help="pull (modelcache pull), agent (modelcache agent, one ensure) or both "
                         "(default pull,agent)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    args = ap.parse_args()
    mc = os.path.abspath(args.modelcache)
    targets = args.target.split(",")
    if any(t not in ("pull", "agent") for t in targets):
        ap.error("--target: pull, agent or pull,agent")
    work = tempfile.mkdtemp(prefix="mc_faults_")
    origin = os.path.join(work, "origin")
    run(mc, ["fixture", os.path.join(work, "src"), "--size", "6MiB", "--shards", "2", "--seed", "5"], check=True)
    run(mc, ["import", os.path.join(work, "src"), "--repo", "faults/model", "--cache-dir", origin], check=True)
    server = subprocess.Popen([mc, "serve", "--cache-dir", origin, "--listen", "127.0.0.1:0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = server.stdout.readline()
    if not line.startswith("listening on "):
        print("faults: the origin did not start:", line)
        return 1
    port = int(line.split()[-1].rsplit(":", 1)[1].strip("/"))
    proxy = Proxy(("127.0.0.1", port))
    failures = 0
    try:
        for name, sel, fault, count, expect, bound, slow in CASES:
            if args.only and args.only not in name or args.quick and slow:
                continue
            for target in targets:
                cache = os.path.join(work, f"{target}-cache-{name}")
                state = os.path.join(work, f"{target}-state-{name}")
                proxy.set_rule((sel, fault, count))
                if target == "pull":
                    code, err, secs, rss = pull_with_rusage(
                        mc, ["pull", "faults/model", "--endpoint", proxy.url, "--cache-dir", cache,
                             "--state-dir", state], bound)
                    slowest = None
                else:
                    code, err, secs, rss, slowest = agent_ensure(mc, work, proxy.url, cache, state, bound)
                hits = sum(1 for r in proxy_requests_snapshot(proxy) if r[2])
                huge_mib = proxy.huge_sent >> 20
                proxy.set_rule(None)
                problems = []
                if code is None:
                    problems.append(f"still running after {bound} s (killed)")
                elif expect == "ok" and code != 0:
                    problems.append(f"failed ({code}) where it should have resumed: {err.strip()[-300:]}")
                elif expect == "error" and code == 0:
                    problems.append("succeeded through a persistent fault")
                if code not in (None, 0):
                    last = err.strip().splitlines()[-1] if err.strip() else ""
                    if "error" not in last.lower():
                        problems.append(f"no clear error message: {last[:200]!r}")
                if rss > args.max_rss_mib:
                    problems.append(f"peak memory {rss:.0f} MiB > {args.max_rss_mib:.0f} MiB")
                if slowest is not None and slowest > 2.0:
                    problems.append(f"the agent's /health took {slowest:.1f} s to answer during the fault")
                if os.path.isdir(cache):
                    v = run(mc, ["verify", "--cache-dir", cache])
                    if v.returncode != 0:
                        problems.append(f"verify failed: {(v.stdout + v.stderr).strip()[-300:]}")
                if code == 0:
                    ls = run(mc, ["verify", "--cache-dir", cache, "faults/model"])
                    if ls.returncode != 0:
                        problems.append("the model is not complete in the cache")
                outcome = "ok" if code == 0 else ("timeout" if code is None else f"{code}")
                msg = ""
                if code not in (None, 0):
                    msg = (err.strip().splitlines() or [""])[-1][:160]
                print(f"faults: {target} {name}: {outcome} in {secs:.1f} s, peak {rss:.0f} MiB, "
                      f"{hits} faulted answers"
                      + (f", /health at most {slowest:.2f} s" if slowest is not None else "")
                      + (f", huge bytes sent {huge_mib} MiB" if fault == "huge" else "")
                      + (f"; error: {msg}" if msg else "")
                      + ("" if not problems else "; FAILED: " + "; ".join(problems)), flush=True)
                failures += bool(problems)
    finally:
        proxy.close()
        server.terminate()
        server.wait(10)
        if args.keep or failures:
            print("faults: work dir:", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"faults: {failures} failed")
    return 1 if failures else 0


def proxy_requests_snapshot(proxy):
    with proxy.lock:
        return list(proxy.requests)


if __name__ == "__main__":
    sys.exit(main())
