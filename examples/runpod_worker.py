#!/usr/bin/env python3
"""A Runpod Serverless worker that speaks the worker protocol the way runpod-python 1.12.0 does,
Python 3.11 standard library only (the real SDK cannot be installed here). It exists to test our
controller. The protocol is described in the project's Runpod notes, runpod-protocol.md §2 and §7.

Start-up: loads its model offline, once. It needs HF_HUB_OFFLINE=1 and finds the snapshot at
MODEL_PATH, or in HF_HUB_CACHE from MODEL_NAME and MODEL_REVISION (default main, a ref or a commit).
It then reads the header of every *.safetensors file (tensor name, dtype and shape). A missing
model, a bad header or HF_HUB_OFFLINE != 1 make it exit 1.

Production mode is used when RUNPOD_WEBHOOK_GET_JOB is set and --test_input is not given.
  take     GET {GET_JOB}&job_in_progress=0|1, one job at a time. 204, 400, a non-JSON body or an
           empty one mean no job and it asks again at once. 429 waits 5 s. Other errors wait 0.5 s.
  results  POST {POST_OUTPUT, $ID = job}&isStream=false|true. The body is JSON text labelled
           application/x-www-form-urlencoded, sent with X-Request-ID and charset headers. A 5xx
           is retried (3 tries, 2 s and then 3 s apart).
  stream   each chunk is POST {POST_STREAM}&isStream=false {"output": chunk}, then the final
           POST_OUTPUT &isStream=true {"output": []}
  ping     GET {PING}?job_id=a,b&runpod_version=1.12.0 every RUNPOD_PING_INTERVAL ms // 1000.
           It is sent only if RUNPOD_AI_API_KEY and RUNPOD_POD_ID are set.
  stop     GET {GET_JOB with /job-take/ -> /job-stop/} as a long poll. {"jobsToStop": [id]}
           abandons that job and no result is posted.
  Every call sends Authorization: <RUNPOD_AI_API_KEY>, raw, with no "Bearer". The key is never
  logged. SIGTERM or SIGINT: it stops taking jobs, finishes the running one and exits 0.
  Templates: POST_OUTPUT/POST_STREAM get $RUNPOD_POD_ID -> worker id, then $ID -> job id;
  GET_JOB gets $ID -> worker id; PING gets $RUNPOD_POD_ID. The worker id is RUNPOD_POD_ID
  (else a uuid4).

Job input (a dict), meant for tests:
  {}                      -> {"model", "revision", "tensors": {name: shape}, "echo": input}
  {"progress": "text"}    first POST_OUTPUT &isStream=false {"status": "IN_PROGRESS", "output": text}
  {"sleep": s}            sleeps s seconds first (after "progress"); a job-stop interrupts it
  {"busy": s}             blocks s seconds and ignores job-stop, as a synchronous SDK handler does
  {"fail": "msg"}         returns {"error": "msg"}      -> posted as {"error": "msg"}
  {"raise": "msg"}        raises -> {"error": "<JSON of error_type, error_message, ...>"}
  {"stream": N}           generator: N chunks {"i": k}; with "raise" it fails after them
  {"refresh_worker": true} result gets "stopPod": true; the worker keeps running (like the SDK)

Job log (for the reliability tests; off unless set):
  EXAMPLE_WORKER_JOB_LOG=/path  one JSON line per event, appended with O_APPEND in one write(2), so
           several workers (and restarts) share the file and a SIGKILL never tears a line:
           {"event": "start", "job", "attempt", "worker", "pid", "t"} before the handler runs
           (attempt: 1 + the start lines of that job already in the log), and
           {"event": "done", "job", "attempt", "worker", "pid", "t", "status": COMPLETED|FAILED,
           "posted": true|false} after the result post. The file is outside the system under test:
           it says how often each job really ran, whatever the controller believes.
Tests: MC_EXAMPLE_RETRY_CUT_POSTS=1 retries a result post whose connection failed (as a 5xx;
the SDK gives up on it). MC_EXAMPLE_JOB_LOG=PATH appends one line "<job id>" to PATH (O_APPEND, one write) each
time a job's handler has run to its end, before the result is posted: the worker's own count of
the jobs it executed, kept outside the controller (a job run twice shows twice).

Usage:
  runpod_worker.py                                   production mode (env above)
  runpod_worker.py --test_input '{"input": {...}}'   run once, print the result JSON; exit 0, or
                                                     1 on error (./test_input.json if no flag)
"""
import argparse
import collections
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.parse
import uuid

RUNPOD_VERSION = "1.12.0"
USER_AGENT = (f"RunPod-Python-SDK/{RUNPOD_VERSION} (modelcache example) "
              f"Language/Python {sys.version_info.major}.{sys.version_info.minor}")
TAKE_TIMEOUT = 90.0       # the SDK's asyncio.wait_for around a take
STOP_TIMEOUT = 90.0       # the same cap for the job-stop long poll
POST_TIMEOUT = 600.0      # the SDK session's total timeout
POST_RETRY_WAITS = (2, 3)  # 3 tries, retried on 5xx only
ERROR_PAUSE = 0.5         # after a take error; the SDK retries at once, we avoid a hot loop
# Tests only (MC_EXAMPLE_RETRY_CUT_POSTS=1): a result post whose connection failed or was cut is
# retried like a 5xx. runpod-python 1.12 does not retry it: a result in flight to a controller
# that dies is lost, and the job runs again after the controller's requeue grace.
RETRY_CUT_POSTS = os.environ.get("MC_EXAMPLE_RETRY_CUT_POSTS") == "1"


class JobLog:
    """The append-only job log (EXAMPLE_WORKER_JOB_LOG); does nothing when the variable is unset."""

    def __init__(self, path):
        self.path = path

    def attempt(self, job_id):
        """1 + the start lines of job_id already in the log (the log is small: a test's)."""
        n = 0
        try:
            with open(self.path, "rb") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    n += rec.get("event") == "start" and rec.get("job") == job_id
        except OSError:
            pass
        return n + 1

    def write(self, event, job_id, attempt, worker_id, **extra):
        if not self.path:
            return
        rec = {"event": event, "job": job_id, "attempt": attempt, "worker": worker_id,
               "pid": os.getpid(), "t": round(time.time(), 3)}
        rec.update(extra)
        line = (json.dumps(rec) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)  # one write: O_APPEND places it whole at the end
        finally:
            os.close(fd)


def log_executed(job_id):
    """MC_EXAMPLE_JOB_LOG: one appended line per job run to its end (tests count them)."""
    path = os.environ.get("MC_EXAMPLE_JOB_LOG")
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (job_id + "\n").encode())
    finally:
        os.close(fd)


def log(msg):
    """One line per event on stderr. Never pass the API key here."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
    print(f"{stamp} runpod_worker: {msg}", file=sys.stderr, flush=True)


class StartupError(Exception):
    pass


# ---------------------------------------------------------------- the model, loaded once

def hub_cache():
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface")
    return os.path.join(home, "hub")


def find_snapshot():
    """(model name, commit, snapshot dir), resolved offline like huggingface_hub does."""
    model = os.environ.get("MODEL_NAME", "")
    path = os.environ.get("MODEL_PATH", "")
    if path:
        if not os.path.isdir(path):
            raise StartupError(f"MODEL_PATH {path} is not a directory")
        return model or "unknown", os.path.basename(os.path.normpath(path)), path
    if not model:
        raise StartupError("neither MODEL_PATH nor MODEL_NAME is set")
    revision = os.environ.get("MODEL_REVISION") or "main"
    if model.startswith(("datasets/", "spaces/")):
        kind, _, repo = model.partition("/")
    else:
        kind, repo = "models", model
    folder = os.path.join(hub_cache(), kind + "--" + repo.replace("/", "--"))
    commit = revision
    if not (len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)):
        try:
            with open(os.path.join(folder, "refs", revision)) as ref:
                commit = ref.read().strip()
        except OSError:
            raise StartupError(f"model {model}@{revision} is not in the cache {hub_cache()}") from None
    snap = os.path.join(folder, "snapshots", commit)
    if not os.path.isdir(snap):
        raise StartupError(f"model {model}@{revision}: snapshot {commit} is not in the cache {hub_cache()}")
    return model, commit, snap


def read_safetensors_header(path):
    """{tensor name: {dtype, shape}} from the 8-byte little-endian length and the JSON header."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise StartupError(f"{path}: too short for a safetensors header")
        length = int.from_bytes(raw, "little")
        if length > min(size - 8, 100 << 20):
            raise StartupError(f"{path}: bad safetensors header length {length}")
        try:
            header = json.loads(f.read(length))
        except ValueError as err:
            raise StartupError(f"{path}: safetensors header is not JSON: {err}") from None
    if not isinstance(header, dict):
        raise StartupError(f"{path}: safetensors header is not a JSON object")
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            tensors[name] = {"dtype": info["dtype"], "shape": info["shape"]}
        except (KeyError, TypeError):
            raise StartupError(f"{path}: tensor {name} has no dtype/shape") from None
    return tensors


class Model:
    def __init__(self):
        if os.environ.get("HF_HUB_OFFLINE") != "1":
            raise StartupError("HF_HUB_OFFLINE is not 1: the model must be loaded offline")
        self.name, self.commit, self.path = find_snapshot()
        self.tensors = {}
        files = []
        for dirpath, dirnames, names in os.walk(self.path):
            dirnames.sort()
            files += [os.path.join(dirpath, n) for n in sorted(names) if n.endswith(".safetensors")]
        for path in files:
            self.tensors.update(read_safetensors_header(path))
        log(f"model {self.name}@{self.commit} loaded from {self.path}: "
            f"{len(files)} safetensors files, {len(self.tensors)} tensors")


# ---------------------------------------------------------------- the handler

class JobStopped(BaseException):
    """Raised inside a handler whose job was stopped (like asyncio.CancelledError in the SDK)."""


class Job:
    def __init__(self, job):
        self.job = job
        self.id = str(job["id"])
        self.stop = threading.Event()  # set by the job-stop channel (and nothing else)

    def sleep(self, seconds):
        if self.stop.wait(seconds):
            raise JobStopped()


def handler(model, job, ctl):
    """A plain handler: returns the value the SDK's run_job maps to the result."""
    inp = job["input"] if isinstance(job["input"], dict) else {}
    if "progress" in inp:
        ctl.progress_update(inp["progress"])
    if "sleep" in inp:
        ctl.sleep(float(inp["sleep"]))
    if "busy" in inp:
        time.sleep(float(inp["busy"]))
    if "raise" in inp:
        raise RuntimeError(str(inp["raise"]))
    if "fail" in inp:
        out = {"error": inp["fail"]}
    else:
        out = {"model": model.name, "revision": model.commit,
               "tensors": {name: t["shape"] for name, t in model.tensors.items()}, "echo": job["input"]}
    if inp.get("refresh_worker"):
        out["refresh_worker"] = True
    return out


def stream_handler(model, job, ctl):
    """A generator handler, used when the input has "stream"."""
    inp = job["input"]
    if "progress" in inp:
        ctl.progress_update(inp["progress"])
    if "sleep" in inp:
        ctl.sleep(float(inp["sleep"]))
    for k in range(int(inp["stream"])):
        yield {"i": k}
    if "raise" in inp:
        raise RuntimeError(str(inp["raise"]))


def is_stream_job(job):
    return isinstance(job.get("input"), dict) and "stream" in job["input"]


def run_job(model, job, ctl):
    """rp_job.py run_job: the handler's return value mapped to the result body."""
    run_result = {}
    try:
        job_output = handler(model, job, ctl)
        if isinstance(job_output, dict):
            error_msg = job_output.pop("error", None)
            refresh_worker = job_output.pop("refresh_worker", None)
            run_result["output"] = job_output
            if error_msg:
                run_result["error"] = error_msg
            if refresh_worker:
                run_result["stopPod"] = True
        else:
            run_result = {"output": job_output}
        if run_result.get("output") == {}:
            run_result.pop("output")
    except Exception as err:  # a JobStopped passes through
        error_info = {
            "error_type": str(type(err)),
            "error_message": str(err),
            "error_traceback": traceback.format_exc(),
            "hostname": os.environ.get("RUNPOD_POD_HOSTNAME", "unknown"),
            "worker_id": os.environ.get("RUNPOD_POD_ID", "unknown"),
            "runpod_version": RUNPOD_VERSION,
        }
        log(f"job {job['id']} handler raised {type(err).__name__}: {err}")
        run_result = {"error": json.dumps(error_info)}
    return run_result


def run_job_generator(model, job, ctl):
    """rp_job.py run_job_generator: {"output": chunk} per yield, {"error": ...} on an exception."""
    try:
        for partial in stream_handler(model, job, ctl):
            yield {"output": partial}
    except Exception as err:  # a JobStopped passes through
        log(f"job {job['id']} generator raised {type(err).__name__}: {err}")
        yield {"error": f"handler: {err} \ntraceback: {traceback.format_exc()}"}


# ---------------------------------------------------------------- HTTP (http.client, no redirects, no proxies)

class Slot:
    """Holds the connection of a long poll so that a signal handler can abort it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.conn = None
        self.aborted = False

    def set(self, conn):
        with self.lock:
            if self.aborted:
                raise ConnectionAbortedError("shutting down")
            self.conn = conn

    def clear(self):
        with self.lock:
            self.conn = None

    def abort(self):
        with self.lock:
            self.aborted = True
            if self.conn is not None and self.conn.sock is not None:
                try:
                    self.conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def http_request(method, url, headers, body=None, timeout=90.0, slot=None):
    """(status, lowercased headers, body bytes). Raises OSError / http.client.HTTPException."""
    u = urllib.parse.urlsplit(url)
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout)
    elif u.scheme == "http":
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    else:
        raise ValueError(f"unsupported URL scheme in {url!r}")
    target = (u.path or "/") + ("?" + u.query if u.query else "")
    try:
        conn.connect()
        if slot is not None:
            slot.set(conn)
        conn.request(method, target, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        if slot is not None:
            slot.clear()
        conn.close()


def dumps(value):
    """json.dumps as the SDK sends it (ensure_ascii=False, UTF-8). A lone surrogate cannot be UTF-8:
    then the \\u escapes of ensure_ascii=True are used instead, so the post still carries valid JSON."""
    try:
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value).encode("ascii")


def add_params(url, params):
    """Like requests' params=: '?' or '&' as needed, values form-encoded (',' -> %2C)."""
    u = urllib.parse.urlsplit(url)
    enc = urllib.parse.urlencode(params)
    query = f"{u.query}&{enc}" if u.query else enc
    return urllib.parse.urlunsplit((u.scheme, u.netloc, u.path, query, u.fragment))


# ---------------------------------------------------------------- the production worker

class Worker:
    def __init__(self, model):
        self.model = model
        self.worker_id = os.environ.get("RUNPOD_POD_ID") or str(uuid.uuid4())
        self.api_key = os.environ.get("RUNPOD_AI_API_KEY", "")
        get_job = os.environ["RUNPOD_WEBHOOK_GET_JOB"]
        self.take_url = get_job.replace("$ID", self.worker_id)
        done = os.environ.get("RUNPOD_WEBHOOK_POST_OUTPUT")
        if not done:
            raise StartupError("RUNPOD_WEBHOOK_POST_OUTPUT is not set")
        self.done_url = done.replace("$RUNPOD_POD_ID", self.worker_id)
        stream = os.environ.get("RUNPOD_WEBHOOK_POST_STREAM")
        self.stream_url = stream.replace("$RUNPOD_POD_ID", self.worker_id) if stream else None
        ping = os.environ.get("RUNPOD_WEBHOOK_PING")
        self.ping_url = ping.replace("$RUNPOD_POD_ID", self.worker_id) if ping else None
        try:
            self.ping_interval = int(os.environ.get("RUNPOD_PING_INTERVAL", 10000)) // 1000
        except ValueError:
            raise StartupError("RUNPOD_PING_INTERVAL is not an integer (ms)") from None
        self.stop_url = (self.take_url.replace("/job-take/", "/job-stop/")
                         if "/job-take/" in self.take_url else None)
        self.job_log = JobLog(os.environ.get("EXAMPLE_WORKER_JOB_LOG", ""))
        for name, url in (("RUNPOD_WEBHOOK_GET_JOB", self.take_url), ("RUNPOD_WEBHOOK_POST_OUTPUT", self.done_url),
                          ("RUNPOD_WEBHOOK_POST_STREAM", self.stream_url)):
            if url is not None and "?" not in url:
                log(f"warning: {name} has no '?'; the SDK appends '&...' to it literally, and so do we")

        self.shutdown = threading.Event()
        self.take_slot = Slot()
        self.lock = threading.Lock()
        self.in_progress = {}  # job id -> Job, in take order (the heartbeat's job_id list)
        # Stops for jobs not (yet) running here: a stop can overtake its job's take answer.
        self.early_stops = collections.deque(maxlen=256)
        self.current = None

    # -- headers
    def session_headers(self):
        # aiohttp session defaults of runpod.http_client.AsyncClientSession (sent on every call)
        return {"Content-Type": "application/json", "Authorization": self.api_key,
                "User-Agent": USER_AGENT, "Accept": "*/*"}

    # -- signals
    def request_shutdown(self, signum, _frame):
        if not self.shutdown.is_set():
            log(f"signal {signal.Signals(signum).name}: no more jobs are taken; the running job is finished")
        self.shutdown.set()
        with self.lock:
            idle = self.current is None
        if idle:
            self.take_slot.abort()

    # -- job take
    def take(self):
        """A list of jobs (normally one), [] for no job. Sleeps itself on 429 and errors."""
        with self.lock:
            job_in_progress = "1" if self.in_progress else "0"
        url = self.take_url + f"&job_in_progress={job_in_progress}"
        try:
            status, headers, body = http_request("GET", url, self.session_headers(), timeout=TAKE_TIMEOUT,
                                                 slot=self.take_slot)
        except (socket.timeout, TimeoutError):
            return []  # the SDK's wait_for gave up: ask again at once
        except (OSError, http.client.HTTPException, ValueError) as err:
            if not self.shutdown.is_set():
                log(f"job take failed: {type(err).__name__}: {err}")
                self.shutdown.wait(ERROR_PAUSE)
            return []
        if status in (204, 400):
            return []
        if status == 429:
            log("job take: 429 Too Many Requests, waiting 5 s")
            self.shutdown.wait(5)
            return []
        if status >= 300:
            log(f"job take failed: HTTP {status}")
            self.shutdown.wait(ERROR_PAUSE)
            return []
        mime = headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
        if mime != "application/json" or not body:
            return []
        try:
            jobs = json.loads(body)
        except ValueError as err:
            log(f"job take: the body is not JSON: {err}")
            self.shutdown.wait(ERROR_PAUSE)
            return []
        jobs = [jobs] if isinstance(jobs, dict) else jobs
        if not isinstance(jobs, list):
            log("job take: the answer is neither a job object nor a list")
            self.shutdown.wait(ERROR_PAUSE)
            return []
        good = []
        for job in jobs:
            missing = [k for k in ("id", "input") if not isinstance(job, dict) or job.get(k) is None]
            if missing:
                log(f"job take: job has missing field(s): {', '.join(missing)}")
            else:
                good.append(job)
        if len(good) < len(jobs):
            self.shutdown.wait(ERROR_PAUSE)
        return good

    # -- result posts
    def post(self, url, job_id, payload, what):
        """POST the JSON text as the SDK does. True if it was accepted (< 400)."""
        body = dumps(payload)
        headers = self.session_headers()
        headers.update({"X-Request-ID": job_id, "charset": "utf-8",
                        "Content-Type": "application/x-www-form-urlencoded"})
        for attempt in range(len(POST_RETRY_WAITS) + 1):
            try:
                status, _, _ = http_request("POST", url, headers, body=body, timeout=POST_TIMEOUT)
            except (OSError, http.client.HTTPException, ValueError) as err:
                if not RETRY_CUT_POSTS or attempt == len(POST_RETRY_WAITS):
                    log(f"job {job_id} {what} post failed: {type(err).__name__}: {err}")
                    return False
                log(f"job {job_id} {what} post failed: {type(err).__name__}: {err}, "
                    f"retrying in {POST_RETRY_WAITS[attempt]} s")
                time.sleep(POST_RETRY_WAITS[attempt])
                continue
            if status < 400:
                return True
            if status < 500 or attempt == len(POST_RETRY_WAITS):
                log(f"job {job_id} {what} post failed: HTTP {status}" + (" (after 3 tries)" if status >= 500 else ""))
                return False
            log(f"job {job_id} {what} post: HTTP {status}, retrying in {POST_RETRY_WAITS[attempt]} s")
            time.sleep(POST_RETRY_WAITS[attempt])
        return False

    def progress_update(self, job_id, progress):
        if self.post(self.done_url.replace("$ID", job_id) + "&isStream=false", job_id,
                     {"status": "IN_PROGRESS", "output": progress}, "progress"):
            log(f"job {job_id} progress posted")

    # -- one job
    def handle(self, job):
        job_id = job.id
        started = time.monotonic()
        attempt = self.job_log.attempt(job_id) if self.job_log.path else 0
        self.job_log.write("start", job_id, attempt, self.worker_id)

        class Ctl:
            sleep = staticmethod(job.sleep)
            progress_update = staticmethod(lambda p: self.progress_update(job_id, p))

        try:
            if is_stream_job(job.job):
                result = {"output": []}
                gen = run_job_generator(self.model, job.job, Ctl)
                try:
                    for part in gen:
                        if "error" in part:
                            result = part
                            break
                        if job.stop.is_set():
                            raise JobStopped()
                        if self.stream_url is None:
                            log(f"job {job_id}: RUNPOD_WEBHOOK_POST_STREAM is not set, stream chunk lost")
                        else:
                            self.post(self.stream_url.replace("$ID", job_id) + "&isStream=false", job_id, part,
                                      "stream chunk")
                finally:
                    gen.close()  # GeneratorExit in the handler, as the SDK does on a stop
                is_stream = "true"
            else:
                result = run_job(self.model, job.job, Ctl)
                is_stream = "false"
            if job.stop.is_set():
                raise JobStopped()
            log_executed(job_id)
            ok = self.post(self.done_url.replace("$ID", job_id) + f"&isStream={is_stream}", job_id, result, "result")
            kind = "FAILED" if result.get("error") else "COMPLETED"
            self.job_log.write("done", job_id, attempt, self.worker_id, status=kind, posted=ok)
            log(f"job {job_id} done: {kind}, result {'posted' if ok else 'LOST'}, "
                f"{time.monotonic() - started:.3f} s" + (", stopPod" if result.get("stopPod") else ""))
            if result.get("stopPod"):
                log("refresh_worker: the result asks to recycle this worker; it keeps running (like the SDK)")
        except JobStopped:
            log(f"job {job_id} stopped by the job-stop channel after {time.monotonic() - started:.3f} s; "
                "no result posted")

    # -- threads
    def take_loop(self):
        pending = []
        while True:
            if not pending:
                if self.shutdown.is_set():
                    return
                jobs = self.take()
                with self.lock:
                    for j in jobs:
                        job = Job(j)
                        if job.id in self.early_stops:  # stopped while its take was in flight
                            job.stop.set()
                        self.in_progress[job.id] = job
                        pending.append(job)
                for job in jobs:
                    log(f"job {job['id']} taken")
                continue
            job = pending.pop(0)
            with self.lock:
                self.current = job
            try:
                self.handle(job)
            except Exception as err:  # a bug here must not end the take loop
                log(f"job {job.id} internal error: {type(err).__name__}: {err}; no result posted")
            finally:
                with self.lock:
                    self.current = None
                    self.in_progress.pop(job.id, None)

    def stop_loop(self):
        while True:
            pause = 1.0
            try:
                status, headers, body = http_request("GET", self.stop_url, self.session_headers(),
                                                     timeout=STOP_TIMEOUT)
                mime = headers.get("content-type", "").split(";")[0].strip().lower()
                if status == 429:
                    pause = 5.0
                elif status >= 300:
                    log(f"job-stop poll failed: HTTP {status}")
                elif status == 200 and mime == "application/json" and body:
                    ids = json.loads(body).get("jobsToStop") or []
                    if ids:
                        pause = 0.0
                    for job_id in ids:
                        with self.lock:
                            job = self.in_progress.get(str(job_id))
                            if job is None:  # perhaps its take answer is still on its way
                                self.early_stops.append(str(job_id))
                        if job is None:
                            log(f"job-stop for {job_id}, which is not running here (yet): noted")
                        else:
                            log(f"job {job_id} stop requested")
                            job.stop.set()
            except (socket.timeout, TimeoutError):
                pass
            except (OSError, http.client.HTTPException, ValueError, AttributeError) as err:
                log(f"job-stop poll failed: {type(err).__name__}: {err}")
            if pause:
                time.sleep(pause)

    def ping_loop(self):
        interval = max(self.ping_interval, 1)
        headers = {"Authorization": self.api_key, "User-Agent": USER_AGENT, "Accept": "*/*"}
        while True:
            with self.lock:
                ids = ",".join(self.in_progress)
            params = {"job_id": ids} if ids else {}
            params["runpod_version"] = RUNPOD_VERSION
            try:
                http_request("GET", add_params(self.ping_url, params), headers, timeout=interval * 2)
            except (OSError, http.client.HTTPException, ValueError) as err:
                log(f"ping failed: {type(err).__name__}: {err}")
            time.sleep(interval)

    def run(self):
        log(f"worker {self.worker_id} (endpoint {os.environ.get('RUNPOD_ENDPOINT_ID', '?')}): production mode, "
            f"runpod-python {RUNPOD_VERSION} protocol, concurrency 1")
        if os.environ.get("RUNPOD_AI_API_KEY") is None or os.environ.get("RUNPOD_POD_ID") is None:
            log("heartbeat off: RUNPOD_AI_API_KEY or RUNPOD_POD_ID is not set")
        elif not self.ping_url:
            log("heartbeat off: RUNPOD_WEBHOOK_PING is not set")
        else:
            if self.ping_interval < 1:
                log("warning: RUNPOD_PING_INTERVAL < 1000 ms; pinging every 1 s")
            threading.Thread(target=self.ping_loop, name="ping", daemon=True).start()
            log(f"heartbeat every {max(self.ping_interval, 1)} s")
        if self.stop_url:
            threading.Thread(target=self.stop_loop, name="job-stop", daemon=True).start()
        else:
            log("job-stop channel off: RUNPOD_WEBHOOK_GET_JOB has no /job-take/ segment")
        taker = threading.Thread(target=self.take_loop, name="take")
        taker.start()
        while taker.is_alive():
            taker.join(0.5)  # signals are handled by the main thread in between
        log("worker stopped")
        return 0


# ---------------------------------------------------------------- local test mode

def run_local(model, test_input):
    if test_input is None:
        try:
            with open("test_input.json") as f:
                test_input = f.read()
        except OSError:
            log("test_input.json not found and no --test_input given, exiting")
            return 1
    try:
        test_input = json.loads(test_input)
    except ValueError as err:
        log(f"the test input is not JSON: {err}")
        return 1
    if not isinstance(test_input, dict) or test_input.get("input") is None:
        log("the test input has no 'input'")
        return 1
    job = Job({"id": test_input.get("id", "local_test"), "input": test_input["input"]})

    class Ctl:
        sleep = staticmethod(job.sleep)
        progress_update = staticmethod(lambda p: log(f"job {job.id} progress: {json.dumps(p)}"))

    log(f"job {job.id} local test")
    if is_stream_job(job.job):
        result = {"output": []}
        for part in run_job_generator(model, job.job, Ctl):
            if "error" in part:
                result = part
                break
            result["output"].append(part["output"])
    else:
        result = run_job(model, job.job, Ctl)
    sys.stdout.buffer.write(dumps(result) + b"\n")
    sys.stdout.flush()
    return 1 if result.get("error") else 0


def main():
    parser = argparse.ArgumentParser(description="Runpod worker example (runpod-python 1.12 protocol)")
    parser.add_argument("--test_input", default=None, help="run one job locally: '{\"input\": {...}}'")
    args, _ = parser.parse_known_args()
    local = args.test_input is not None or not os.environ.get("RUNPOD_WEBHOOK_GET_JOB")

    worker_box, signalled = [], []
    if not local:
        # Handle signals from the start: a SIGTERM during the model load exits 0 after it.
        def on_signal(signum, frame):
            if worker_box:
                worker_box[0].request_shutdown(signum, frame)
            else:
                signalled.append(signum)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    try:
        model = Model()
        if local:
            return run_local(model, args.test_input)
        worker = Worker(model)
    except StartupError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 1
    worker_box.append(worker)
    if signalled:
        log("signalled during start-up: exiting")
        return 0
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
