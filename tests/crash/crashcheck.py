#!/usr/bin/env python3
"""Power-loss crash-consistency checker for the modelcache cache (the method of ALICE and
CrashMonkey).

Each scenario runs one real command (`modelcache import`, `modelcache pull`, or `modelcache agent`
serving one ensure, then stopped) with the fstrace
LD_PRELOAD shim (fstrace.c), which logs every file-system operation under the traced directories.
The checker then replays that log on a model of the file system and, at every fsync boundary (just
before each fsync, and after the command exited), builds the states a power cut could leave:

  * Data: bytes written to a file are durable once that file is fsynced. Unsynced writes may be
    all lost, all kept, or torn (the first half kept, and the file size grown with zeros where
    the rest should be: ext4's "size on disk, data not" case).
  * Names (create, mkdir, symlink, link, rename, unlink, rmdir) are durable once the directory
    holding the new name is fsynced (a rename: the destination directory; it is atomic). An fsync
    of a file does NOT make its own name durable, and nothing orders names in different
    directories: a strict POSIX reading, stricter than ext4 (whose journal commits every earlier
    name with any fsync), so that what passes here passes on ext4, XFS and btrfs.
  * From the unsynced names the checker keeps: none; all; each one alone; all but each one; and
    every prefix in issue order (an ordered journal). A name whose parent directory is not there
    in that state is lost with it.

Each distinct state is written out to a directory and checked:
  * `modelcache verify` passes on it;
  * the official client's layout holds: every ref names a snapshot that exists and is complete,
    and equal to that snapshot either before the command or after it (old or new, never a mix);
    every snapshot symlink resolves to a blob; every blob's bytes hash to its name;
  * a ref the command did not touch is unchanged;
  * after the command exited successfully, the state with only durable operations is the new
    state (what the command reported done survives a power cut).
A sample of the states is then recovered: the command is run again on it (without the shim) and
must finish with the new state, verify passing.

Usage: crashcheck.py --modelcache BIN --shim LIBFSTRACE [--scenario import|pull|agent|all]
                     [--max-states-per-point N] [--recover N] [--json OUT]
Exit status 0 when no violation was found; the summary (states explored, violations) is printed.
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

# ---------------------------------------------------------------------------------------------
# The trace


class Op:
    __slots__ = ("kind", "args", "node", "parents", "index")

    def __init__(self, kind, args):
        self.kind = kind
        self.args = args
        self.node = None  # (ino, gen) the op acts on
        self.parents = ()  # directory nodes whose fsync makes a name op durable
        self.index = 0


class Trace:
    """The parsed log: ops with inode generations resolved (an inode number reused for a new file
    is a new node)."""

    def __init__(self, log_path, data_prefix, initial_inos):
        self.ops = []
        self.gen = {ino: 0 for ino in initial_inos}
        self.unsupported = []
        data_files = {}
        with open(log_path) as f:
            lines = [l.rstrip("\n").split("\t") for l in f if l.strip()]
        for fields in lines:
            kind, a = fields[0], fields[1:]
            op = Op(kind, a)
            if kind == "create" or kind == "mkdir":
                path, p, i = a[0], int(a[1]), int(a[2])
                op.parents = (self.cur(p),)
                op.node = self.new(i)
                op.args = (path,)
            elif kind == "symlink":
                target, path, p, i = a[0], a[1], int(a[2]), int(a[3])
                op.parents = (self.cur(p),)
                op.node = self.new(i)
                op.args = (target, path)
            elif kind == "link":
                op.parents = (self.cur(int(a[2])),)
                op.args = (a[0], a[1])
            elif kind == "rename":
                op.parents = (self.cur(int(a[3])),)
                op.node = self.cur(int(a[4]))
                op.args = (a[0], a[1])
            elif kind in ("unlink", "rmdir"):
                op.parents = (self.cur(int(a[1])),)
                op.args = (a[0],)
            elif kind == "trunc":
                op.node = self.cur(int(a[0]))
                op.args = (int(a[1]),)
            elif kind == "write":
                ino, off, n, pid, dataoff = int(a[0]), int(a[1]), int(a[2]), a[3], int(a[4])
                if pid not in data_files:
                    data_files[pid] = open(f"{data_prefix}.{pid}", "rb")
                df = data_files[pid]
                df.seek(dataoff)
                op.node = self.cur(ino)
                op.args = (off, df.read(n))
            elif kind == "fsync":
                op.node = self.cur(int(a[0]))
            elif kind == "sync":
                pass
            elif kind == "unsupported":
                self.unsupported.append("\t".join(a))
                continue
            else:
                raise ValueError(f"unknown trace line: {fields}")
            op.index = len(self.ops)
            self.ops.append(op)
        for df in data_files.values():
            df.close()

    def cur(self, ino):
        return (ino, self.gen.setdefault(ino, 0))

    def new(self, ino):
        self.gen[ino] = self.gen.get(ino, -1) + 1
        return (ino, self.gen[ino])


NAME_OPS = ("create", "mkdir", "symlink", "link", "rename", "unlink", "rmdir")
DATA_OPS = ("write", "trunc")


def durable_split(ops, k):
    """Indices of ops[:k] that are durable at a crash just before op k, and the volatile rest."""
    synced_nodes = set()  # nodes fsynced after the op (walking backwards)
    synced_all = False
    durable, volatile = [], []
    for i in range(k - 1, -1, -1):
        op = ops[i]
        if op.kind == "fsync":
            synced_nodes.add(op.node)
            continue
        if op.kind == "sync":
            synced_all = True
            continue
        if op.kind in NAME_OPS:
            ok = synced_all or any(p in synced_nodes for p in op.parents)
        else:
            ok = synced_all or op.node in synced_nodes
        (durable if ok else volatile).append(i)
    durable.reverse()
    volatile.reverse()
    return durable, volatile


# ---------------------------------------------------------------------------------------------
# The file-system model


class Model:
    """Directories, files and symlinks by node; the traced roots by absolute path."""

    def __init__(self):
        self.roots = {}  # abs path -> node
        self.dirs = {}  # node -> {name: node}
        self.files = {}  # node -> bytearray
        self.links = {}  # node -> target

    def copy(self):
        m = Model()
        m.roots = dict(self.roots)
        m.dirs = {k: dict(v) for k, v in self.dirs.items()}
        m.files = {k: bytearray(v) for k, v in self.files.items()}
        m.links = dict(self.links)
        return m

    @staticmethod
    def snapshot(roots):
        m = Model()
        for root in roots:
            st = os.lstat(root)
            m.roots[root] = (st.st_ino, 0)
            m._load(root, (st.st_ino, 0))
        return m

    def _load(self, path, node):
        self.dirs[node] = {}
        for name in sorted(os.listdir(path)):
            p = os.path.join(path, name)
            st = os.lstat(p)
            child = (st.st_ino, 0)
            self.dirs[node][name] = child
            if os.path.islink(p):
                self.links[child] = os.readlink(p)
            elif os.path.isdir(p):
                self._load(p, child)
            else:
                with open(p, "rb") as f:
                    self.files[child] = bytearray(f.read())

    def lookup_dir(self, path):
        """The directory node holding `path`'s last component, and that name (None if absent)."""
        for root, node in self.roots.items():
            if path == root or not path.startswith(root + "/"):
                continue
            parts = path[len(root) + 1:].split("/")
            for part in parts[:-1]:
                node = self.dirs.get(node, {}).get(part)
                if node is None or node not in self.dirs:
                    return None, None
            return node, parts[-1]
        return None, None

    def apply_name(self, op):
        """Applies a name op; an op whose parent is not in this state is lost (returns False)."""
        k = op.kind
        if k in ("create", "mkdir"):
            d, name = self.lookup_dir(op.args[0])
            if d is None:
                return False
            self.dirs[d][name] = op.node
        elif k == "symlink":
            d, name = self.lookup_dir(op.args[1])
            if d is None:
                return False
            self.dirs[d][name] = op.node
        elif k == "rename":
            # The renamed inode lands at the new name even when the create of its old name never
            # reached the disk (the journaled rename references the inode itself).
            sd, sname = self.lookup_dir(op.args[0])
            dd, dname = self.lookup_dir(op.args[1])
            if dd is None:
                return False
            if sd is not None and self.dirs[sd].get(sname) == op.node:
                del self.dirs[sd][sname]
            self.dirs[dd][dname] = op.node
        elif k == "link":
            sd, sname = self.lookup_dir(op.args[0])
            dd, dname = self.lookup_dir(op.args[1])
            if sd is None or dd is None or sname not in self.dirs[sd]:
                return False
            self.dirs[dd][dname] = self.dirs[sd][sname]
        elif k in ("unlink", "rmdir"):
            d, name = self.lookup_dir(op.args[0])
            if d is None or name not in self.dirs[d]:
                return False
            del self.dirs[d][name]
        return True

    def materialize(self, dest_for_root):
        for root, node in self.roots.items():
            self._write(dest_for_root[root], node, set())

    def _write(self, path, node, seen):
        os.makedirs(path, exist_ok=True)
        seen.add(node)
        for name, child in self.dirs[node].items():
            p = os.path.join(path, name)
            if child in self.dirs:
                if child not in seen:
                    self._write(p, child, seen)
            elif child in self.links:
                os.symlink(self.links[child], p)
            else:
                with open(p, "wb") as f:
                    f.write(self.files.get(child, b""))

    def fingerprint(self):
        h = hashlib.sha256()

        def walk(node, prefix, seen):
            seen.add(node)
            for name in sorted(self.dirs[node]):
                child = self.dirs[node][name]
                p = prefix + "/" + name
                if child in self.dirs:
                    h.update(b"d" + p.encode())
                    if child not in seen:
                        walk(child, p, seen)
                elif child in self.links:
                    h.update(b"l" + p.encode() + b"\0" + self.links[child].encode())
                else:
                    h.update(b"f" + p.encode() + b"\0" +
                             hashlib.sha256(self.files.get(child, b"")).digest())

        for root in sorted(self.roots):
            walk(self.roots[root], root, set())
        return h.hexdigest()


def apply_data(content, op):
    if op.kind == "trunc":
        size = op.args[0]
        if size < len(content):
            del content[size:]
        else:
            content.extend(b"\0" * (size - len(content)))
    else:
        off, data = op.args
        if len(content) < off:
            content.extend(b"\0" * (off - len(content)))
        content[off:off + len(data)] = data


def build_state(initial, ops, name_ops, data_ops_by_node, torn_node=None):
    """The state with `name_ops` applied (in order) and each node's content from its data ops."""
    m = initial.copy()
    # Inodes exist whether or not the name they were created under reached the disk: a rename
    # that did can carry them (a symlink made at a temp name and renamed into a snapshot).
    for op in ops:
        if op.kind == "symlink":
            m.links[op.node] = op.args[0]
        elif op.kind == "mkdir":
            m.dirs.setdefault(op.node, {})
        elif op.kind == "create":
            m.files.setdefault(op.node, bytearray())
    for op in name_ops:
        m.apply_name(op)
    for node, (durable, volatile) in data_ops_by_node.items():
        content = bytearray(initial.files.get(node, b""))  # a new node starts empty
        for op in durable:
            apply_data(content, op)
        if torn_node == node:
            # Half of the unsynced writes landed; the size already says all of them did.
            full = bytearray(content)
            for op in volatile:
                apply_data(full, op)
            half = volatile[: max(1, len(volatile) // 2)]
            for op in half:
                apply_data(content, op)
            if len(content) < len(full):
                content.extend(b"\0" * (len(full) - len(content)))
        else:
            for op in volatile:
                apply_data(content, op)
        m.files[node] = content
    return m


def crash_states(initial, ops, k, max_states, rng):
    """(label, Model) for the states a power cut just before op k can leave."""
    durable, volatile = durable_split(ops, k)
    d_names = [ops[i] for i in durable if ops[i].kind in NAME_OPS]
    v_names = [ops[i] for i in volatile if ops[i].kind in NAME_OPS]
    data_all, data_durable = {}, {}
    for i in durable:
        if ops[i].kind in DATA_OPS:
            data_all.setdefault(ops[i].node, ([], []))[0].append(ops[i])
            data_durable.setdefault(ops[i].node, ([], []))[0].append(ops[i])
    for i in volatile:
        if ops[i].kind in DATA_OPS:
            data_all.setdefault(ops[i].node, ([], []))[1].append(ops[i])
            data_durable.setdefault(ops[i].node, ([], []))
    torn_nodes = [n for n, (_, v) in data_all.items() if v]

    prefix = ops[:k]

    def merged(subset):
        chosen = set(o.index for o in subset)
        return sorted(d_names + [o for o in v_names if o.index in chosen], key=lambda o: o.index)

    name_variants = [("names:durable", d_names), ("names:all", merged(v_names))]
    for n in range(1, len(v_names)):
        name_variants.append((f"names:prefix{n}", merged(v_names[:n])))
    for o in v_names:
        name_variants.append((f"names:only+{o.index}", merged([o])))
        name_variants.append((f"names:all-{o.index}", merged([x for x in v_names if x is not o])))
    states = []
    for label, names in name_variants:
        states.append((label + "/data:durable", lambda n=names: build_state(initial, prefix, n, data_durable)))
        states.append((label + "/data:all", lambda n=names: build_state(initial, prefix, n, data_all)))
    for node in torn_nodes:
        for label, names in name_variants[:2]:
            states.append((f"{label}/data:torn{node[0]}",
                           lambda n=names, t=node: build_state(initial, prefix, n, data_all, t)))
    if max_states and len(states) > max_states:
        keep = states[:4] + rng.sample(states[4:], max_states - 4)
        states = keep
    return states


# ---------------------------------------------------------------------------------------------
# Checking one state


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def blob_ok(name, data):
    if len(name) == 64:
        return hashlib.sha256(data).hexdigest() == name
    if len(name) == 40:
        return git_blob_sha1(data) == name
    return True  # not a content-named blob (no-symlink copies are their own blob)


def read_snapshot(snap_dir):
    """{relative path: bytes} of a snapshot, following its links; None values for dangling ones."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(snap_dir):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, snap_dir)
            try:
                with open(p, "rb") as f:
                    out[rel] = f.read()
            except OSError:
                out[rel] = None
    return out


def cache_view(cache_dir):
    """{repo folder: {"refs": {name: commit}, "snapshots": {commit: {path: bytes}}}}"""
    view = {}
    if not os.path.isdir(cache_dir):
        return view
    for repo in sorted(os.listdir(cache_dir)):
        rdir = os.path.join(cache_dir, repo)
        if not repo.startswith(("models--", "datasets--", "spaces--")) or not os.path.isdir(rdir):
            continue
        refs = {}
        refs_dir = os.path.join(rdir, "refs")
        for dirpath, _, files in os.walk(refs_dir):
            for name in files:
                p = os.path.join(dirpath, name)
                with open(p, "rb") as f:
                    refs[os.path.relpath(p, refs_dir)] = f.read().decode(errors="replace")
        snaps = {}
        sdir = os.path.join(rdir, "snapshots")
        if os.path.isdir(sdir):
            for commit in os.listdir(sdir):
                snaps[commit] = read_snapshot(os.path.join(sdir, commit))
        view[repo] = {"refs": refs, "snapshots": snaps}
    return view


def layout_violations(cache_dir, old, new):
    """The official client's layout: old or new refs, complete snapshots, blobs named by hash."""
    bad = []
    view = cache_view(cache_dir)
    for repo, r in view.items():
        old_r = old.get(repo, {"refs": {}, "snapshots": {}})
        new_r = new.get(repo, {"refs": {}, "snapshots": {}})
        for ref, commit in r["refs"].items():
            allowed = {old_r["refs"].get(ref), new_r["refs"].get(ref)} - {None}
            if commit not in allowed:
                bad.append(f"{repo}: ref {ref} = {commit!r}, neither old nor new {sorted(allowed)}")
                continue
            snap = r["snapshots"].get(commit)
            if snap is None:
                bad.append(f"{repo}: ref {ref} names snapshot {commit} which does not exist")
                continue
            if snap != old_r["snapshots"].get(commit) and snap != new_r["snapshots"].get(commit):
                want = new_r["snapshots"].get(commit) or old_r["snapshots"].get(commit) or {}
                missing = sorted(set(want) - set(snap))
                wrong = sorted(p for p in snap if p in want and snap[p] != want[p])
                bad.append(f"{repo}: ref {ref} names an incomplete or mixed snapshot {commit}: "
                           f"missing {missing[:3]}, wrong {wrong[:3]}")
        for ref in old_r["refs"]:
            if ref not in r["refs"] and ref in new_r["refs"]:
                bad.append(f"{repo}: ref {ref} existed before and after, but not in this state")
        for commit, snap in r["snapshots"].items():
            for path, data in snap.items():
                if data is None:
                    bad.append(f"{repo}: snapshot {commit} link {path} is dangling")
        bdir = os.path.join(cache_dir, repo, "blobs")
        if os.path.isdir(bdir):
            for name in os.listdir(bdir):
                if "." in name:
                    continue  # temp files (.incomplete): not published
                with open(os.path.join(bdir, name), "rb") as f:
                    if not blob_ok(name, f.read()):
                        bad.append(f"{repo}: blob {name} does not match its hash")
    for repo in old:
        if repo not in view and repo in new:
            bad.append(f"{repo}: the repo existed before and after, but not in this state")
    return bad


def durable_final_violations(cache_dir, new):
    """After a successful exit, the durable state must be the new state."""
    view = cache_view(cache_dir)
    bad = []
    for repo, r in new.items():
        got = view.get(repo, {"refs": {}, "snapshots": {}})
        for ref, commit in r["refs"].items():
            if got["refs"].get(ref) != commit:
                bad.append(f"{repo}: after exit 0, ref {ref} is {got['refs'].get(ref)!r}, not "
                           f"{commit} (lost by a power cut)")
            elif got["snapshots"].get(commit) != r["snapshots"].get(commit):
                bad.append(f"{repo}: after exit 0, snapshot {commit} is not complete "
                           "(links lost by a power cut)")
    return bad


# ---------------------------------------------------------------------------------------------
# Scenarios


class Env:
    def __init__(self, args, work):
        self.mc = os.path.abspath(args.modelcache)
        self.shim = os.path.abspath(args.shim)
        self.work = work
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("HF_", "MODELCACHE_", "LD_PRELOAD", "MC_FSTRACE"))}
        self.env["HF_HOME"] = os.path.join(work, "hf-home")

    def environ(self, traced_roots=None):
        env = dict(self.env)
        if traced_roots:
            env["LD_PRELOAD"] = self.shim
            env["MC_FSTRACE_ROOTS"] = ":".join(traced_roots)
            env["MC_FSTRACE_LOG"] = os.path.join(self.work, "trace.log")
            env["MC_FSTRACE_DATA"] = os.path.join(self.work, "trace.data")
        return env

    def run(self, argv, traced_roots=None, check=True):
        env = self.environ(traced_roots)
        p = subprocess.run([self.mc] + argv, env=env, capture_output=True, text=True)
        if check and p.returncode != 0:
            raise RuntimeError(f"modelcache {' '.join(argv)} failed ({p.returncode}):\n{p.stderr}")
        return p


class Scenario:
    """One traced command: set up the initial state, run it, and know how to run it again."""

    name = ""

    def setup(self, env):
        raise NotImplementedError

    def command(self, roots_map):
        raise NotImplementedError

    def execute(self, env, roots_map, traced_roots=None):
        """Runs the command on roots_map (traced when traced_roots): returncode and stderr."""
        return env.run(self.command(roots_map), traced_roots=traced_roots, check=False)

    def teardown(self):
        pass


class ImportScenario(Scenario):
    """`modelcache import` of a new version of a model over an older one (main moves)."""

    name = "import"

    def setup(self, env):
        self.src_old = os.path.join(env.work, "src-old")
        self.src_new = os.path.join(env.work, "src-new")
        env.run(["fixture", self.src_old, "--size", "256KiB", "--shards", "2", "--seed", "1"])
        env.run(["fixture", self.src_new, "--size", "384KiB", "--shards", "2", "--seed", "2"])
        self.cache = os.path.realpath(os.path.join(env.work, "cache"))
        os.makedirs(self.cache)
        env.run(["import", self.src_old, "--repo", "crash/model", "--cache-dir", self.cache])
        return [self.cache]

    def command(self, roots_map):
        return ["import", self.src_new, "--repo", "crash/model", "--cache-dir",
                roots_map[self.cache]]


class PullScenario(Scenario):
    """`modelcache pull` from a local mirror into an empty cache (with its resume records)."""

    name = "pull"

    def setup(self, env):
        src = os.path.join(env.work, "src")
        env.run(["fixture", src, "--size", "512KiB", "--shards", "3", "--seed", "3"])
        self.upstream = os.path.join(env.work, "upstream")
        env.run(["import", src, "--repo", "crash/pulled", "--cache-dir", self.upstream])
        self.server = subprocess.Popen(
            [env.mc, "serve", "--cache-dir", self.upstream, "--listen", "127.0.0.1:0"],
            env=env.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.server.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError("mirror did not start: " + line)
        self.url = line.split()[-1]
        self.cache = os.path.realpath(os.path.join(env.work, "cache"))
        self.state = os.path.realpath(os.path.join(env.work, "state"))
        os.makedirs(self.cache)
        os.makedirs(self.state)
        return [self.cache, self.state]

    def command(self, roots_map):
        return ["pull", "crash/pulled", "--endpoint", self.url, "--cache-dir",
                roots_map[self.cache], "--state-dir", roots_map[self.state]]

    def teardown(self):
        if getattr(self, "server", None):
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()


class AgentScenario(PullScenario):
    """`modelcache agent` downloading a model for an ensure into an empty cache, with its state
    dir (state.db in WAL mode, resume records) traced too; then stopped with SIGTERM."""

    name = "agent"

    def setup(self, env):
        roots = PullScenario.setup(self, env)
        self.key_file = os.path.join(env.work, "api-key")
        with open(self.key_file, "w") as f:
            f.write("crashcheck-agent-key\n")
        return roots

    def execute(self, env, roots_map, traced_roots=None):
        log_path = os.path.join(env.work, "agent.log")
        with open(log_path, "wb") as log:
            agent = subprocess.Popen(
                [env.mc, "agent", "--cache-dir", roots_map[self.cache], "--state-dir",
                 roots_map[self.state], "--capacity", "1GiB", "--listen", "127.0.0.1:0",
                 "--upstream", self.url, "--api-key-file", self.key_file, "--runtime", "process",
                 "--maintenance-interval", "3600"],
                env=env.environ(traced_roots), stdout=subprocess.PIPE, stderr=log, text=True)
        failure = ""
        try:
            url = None
            for line in agent.stdout:
                if line.startswith("agent listening on "):
                    url = line.split()[-1]
                    break
            if url is None:
                failure = "the agent did not start"
            else:
                u = urllib.parse.urlsplit(url)
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=180)
                conn.request("POST", "/v1/ensure?wait=120", body=json.dumps({"model": "crash/pulled"}),
                             headers={"Authorization": "Bearer crashcheck-agent-key",
                                      "Content-Type": "application/json"})
                resp = conn.getresponse()
                body = resp.read().decode(errors="replace")
                conn.close()
                if resp.status != 200:
                    failure = f"ensure: HTTP {resp.status} {body[:300]}"
        except (OSError, http.client.HTTPException) as err:
            failure = f"ensure: {err}"
        finally:
            agent.send_signal(signal.SIGTERM)
            try:
                code = agent.wait(60)
            except subprocess.TimeoutExpired:
                agent.kill()
                code = agent.wait()
        if not failure and code != 0:
            failure = f"the agent exited {code} after SIGTERM"
        with open(log_path, errors="replace") as f:
            tail = f.read()[-600:]
        return subprocess.CompletedProcess([], 1 if failure else 0, "", failure + "\n" + tail)


def run_scenario(env, scenario, args, rng):
    roots = scenario.setup(env)
    cache = roots[0]
    initial = Model.snapshot(roots)
    old_view = cache_view(cache)
    for f in os.listdir(env.work):
        if f.startswith("trace."):
            os.remove(os.path.join(env.work, f))
    t0 = time.monotonic()
    p = scenario.execute(env, {r: r for r in roots}, traced_roots=roots)
    if p.returncode != 0:
        raise RuntimeError(f"{scenario.name}: the traced command failed ({p.returncode}):\n{p.stderr}")
    traced_seconds = time.monotonic() - t0
    new_view = cache_view(cache)
    trace = Trace(os.path.join(env.work, "trace.log"), os.path.join(env.work, "trace.data"),
                  [n[0] for n in initial.dirs] + [n[0] for n in initial.files] +
                  [n[0] for n in initial.links])
    result = {"scenario": scenario.name, "ops": len(trace.ops), "traced_seconds": traced_seconds,
              "crash_points": 0, "states": 0, "distinct_states": 0, "violations": [],
              "recovered": 0, "unsupported": trace.unsupported}
    if trace.unsupported:
        result["violations"].append(f"unsupported operations in the trace: {trace.unsupported[:3]}")
    ops = trace.ops
    points = [k for k, op in enumerate(ops) if op.kind in ("fsync", "sync")] + [len(ops)]
    result["crash_points"] = len(points)
    seen = {}
    scratch = os.path.join(env.work, "state-check")
    recover_pool = []
    for k in points:
        for label, make in crash_states(initial, ops, k, args.max_states_per_point, rng):
            result["states"] += 1
            model = make()
            fp = model.fingerprint()
            final_durable = k == len(ops) and label == "names:durable/data:durable"
            if fp in seen and not final_durable:
                continue
            bad = seen.get(fp)
            if bad is None:
                result["distinct_states"] += 1
                shutil.rmtree(scratch, ignore_errors=True)
                dest = {r: os.path.join(scratch, str(i)) for i, r in enumerate(roots)}
                model.materialize(dest)
                bad = layout_violations(dest[cache], old_view, new_view)
                v = env.run(["verify", "--cache-dir", dest[cache]], check=False)
                if v.returncode != 0:
                    bad.append("modelcache verify failed: " + (v.stdout + v.stderr).strip()[-400:])
                seen[fp] = bad
                if not bad:
                    recover_pool.append((k, label, model))
            if final_durable:
                shutil.rmtree(scratch, ignore_errors=True)
                dest = {r: os.path.join(scratch, str(i)) for i, r in enumerate(roots)}
                model.materialize(dest)
                bad = bad + durable_final_violations(dest[cache], new_view)
            for b in bad:
                result["violations"].append(f"crash before op {k} ({label}): {b}")
    # Recovery: run the command again on a sample of crash states; it must end in the new state.
    sample = recover_pool if args.recover < 0 else rng.sample(recover_pool,
                                                              min(args.recover, len(recover_pool)))
    for k, label, model in sample:
        shutil.rmtree(scratch, ignore_errors=True)
        dest = {r: os.path.join(scratch, str(i)) for i, r in enumerate(roots)}
        model.materialize(dest)
        rr = scenario.execute(env, dest)
        bad = []
        if rr.returncode != 0:
            bad.append(f"the command failed on it: {rr.stderr.strip()[-300:]}")
        else:
            got = cache_view(dest[cache])
            for repo, r in new_view.items():
                for ref, commit in r["refs"].items():
                    g = got.get(repo, {"refs": {}, "snapshots": {}})
                    if g["refs"].get(ref) != commit or g["snapshots"].get(commit) != r["snapshots"][commit]:
                        bad.append(f"{repo}: ref {ref} not the new complete snapshot after recovery")
            v = env.run(["verify", "--cache-dir", dest[cache]], check=False)
            if v.returncode != 0:
                bad.append("verify failed after recovery")
        result["recovered"] += 1
        for b in bad:
            result["violations"].append(f"recovery from crash before op {k} ({label}): {b}")
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modelcache", required=True, help="the modelcache binary")
    ap.add_argument("--shim", required=True, help="libfstrace.so (the LD_PRELOAD tracer)")
    ap.add_argument("--scenario", default="all",
                    help="import, pull, agent, a comma-separated list of them, or all (default)")
    ap.add_argument("--max-states-per-point", type=int, default=0,
                    help="sample at most this many crash states per fsync boundary (0: all)")
    ap.add_argument("--recover", type=int, default=3,
                    help="re-run the command on this many crash states (-1: every distinct one)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (printed)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    scenarios = {"import": ImportScenario, "pull": PullScenario, "agent": AgentScenario}
    names = list(scenarios) if args.scenario == "all" else args.scenario.split(",")
    unknown = [n for n in names if n not in scenarios]
    if unknown:
        ap.error(f"unknown scenario {unknown[0]!r}: choose from {', '.join(scenarios)} or all")
    results = []
    for name in names:
        work = tempfile.mkdtemp(prefix=f"crashcheck-{name}-")
        env = Env(args, work)
        scenario = scenarios[name]()
        try:
            results.append(run_scenario(env, scenario, args, rng))
        finally:
            scenario.teardown()
            if args.keep:
                print("work dir:", work)
            else:
                shutil.rmtree(work, ignore_errors=True)
    total_v = 0
    for r in results:
        print(f"{r['scenario']}: {r['ops']} operations traced, {r['crash_points']} crash points, "
              f"{r['states']} crash states ({r['distinct_states']} distinct) checked, "
              f"{r['recovered']} recovered by re-running, {len(r['violations'])} violations")
        for v in r["violations"][:20]:
            print("  VIOLATION", v)
        total_v += len(r["violations"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    print("violations:", total_v)
    return 1 if total_v else 0


if __name__ == "__main__":
    sys.exit(main())
