#!/usr/bin/env python3
"""Checks the deployment files in deploy/ without a cluster or a running systemd.

What it validates (one "ok"/"not ok" line per check, then "# pass N" and "# fail M"):

systemd (deploy/systemd/*.service), beside `systemd-analyze verify` that deploy/check.sh runs:
  - each unit runs as a dedicated non-root user, has a StateDirectory, Restart=on-failure and the
    hardening every unit must keep (ProtectSystem=strict, ProtectHome, PrivateTmp, ...;
    NoNewPrivileges on the controller: the agent's rootless podman needs setuid helpers);
  - secrets are credentials, never argv: every %d/NAME in ExecStart has a LoadCredential=NAME,
    and no flag on the command line carries a key, token or password itself;
  - every ${VAR} in ExecStart is set in the unit's env example, and the env examples hold no
    secret-looking variable;
  - every flag in ExecStart is one `modelcache <command> --help` lists (with --binary).

Kubernetes (deploy/k8s/*.yaml; no kubectl here, so no API-server validation):
  - every document parses, has apiVersion/kind/metadata.name, the apiVersion its kind expects, and
    the namespace "modelcache" (namespaced kinds);
  - kustomization.yaml lists every manifest but the Secret example, and only files that exist,
    and its images entry names the image every workload runs;
  - workloads: the selector matches the pod labels, every volumeMount names a volume, every
    ConfigMap key and Secret item referenced exists (Secret keys from secret.example.yaml),
    every $(VAR) in args is defined in env, probes name declared ports;
  - Services select a workload's pods and target a port it declares;
  - secrets only as files: no secretKeyRef in env, no secret-carrying flag, every *-file flag
    points into a mounted Secret item;
  - the controller Deployment runs replicas: 2 (several controllers on one database: a leader
    and a follower) with the RollingUpdate strategy, each pod advertising its own pod IP
    (--advertise-url), without root, privilege escalation or a writable root;
    the agent DaemonSet uses the host network and keeps its cache on a hostPath;
  - every flag in container args is one `modelcache <command> --help` lists (with --binary).

Usage: deploy/check_deploy.py [--binary PATH_TO_MODELCACHE]
"""
import argparse
import os
import re
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
NAMESPACE = "modelcache"
SECRET_FLAG = re.compile(r"^--[\w-]*(key|token|password|secret)(=|$)", re.I)
HARDENING_ALL = {
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
}
API_VERSIONS = {
    "Namespace": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "DaemonSet": "apps/v1",
}


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"ok - {what}")
        else:
            self.failed += 1
            print(f"not ok - {what}" + (f": {detail}" if detail else ""))
        return ok


# ---- flags the binary accepts ----

_help_cache = {}


def help_flags(binary, command):
    """The --flags `modelcache COMMAND --help` lists (a set), or None without a binary."""
    if not binary:
        return None
    if command not in _help_cache:
        out = subprocess.run([binary, command, "--help"], capture_output=True, text=True)
        _help_cache[command] = set(re.findall(r"(--[a-z][a-z0-9-]*)", out.stdout + out.stderr))
    return _help_cache[command]


def check_flags(report, binary, command, flags, where):
    known = help_flags(binary, command)
    if known is None:
        return
    unknown = sorted(f for f in flags if f not in known)
    report.check(not unknown, f"{where}: every flag is one `modelcache {command} --help` lists",
                 "unknown: " + ", ".join(unknown))


# ---- systemd ----

def parse_unit(path):
    """[(section, key, value)] of a unit file, continuation lines joined."""
    entries, section, pending = [], None, ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if pending:
                line = pending + " " + line.strip()
                pending = ""
            if line.endswith("\\"):
                pending = line[:-1].rstrip()
                continue
            stripped = line.strip()
            if not stripped or stripped[0] in "#;":
                continue
            if stripped.startswith("["):
                section = stripped.strip("[]")
                continue
            key, _, value = stripped.partition("=")
            entries.append((section, key.strip(), value.strip()))
    return entries


def parse_env_file(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                env[key.strip()] = value.strip()
    return env


def check_unit(report, binary, name, env_example, needs_no_new_privileges):
    entries = parse_unit(os.path.join(HERE, "systemd", name))
    service = {}
    for section, key, value in entries:
        if section == "Service":
            service.setdefault(key, []).append(value)

    def one(key):
        values = service.get(key, [])
        return values[-1] if values else None

    user = one("User")
    report.check(user not in (None, "", "root", "0") and one("DynamicUser") is None,
                 f"{name}: runs as a dedicated user", f"User={user}")
    report.check(bool(one("StateDirectory")), f"{name}: has a StateDirectory")
    report.check(one("Restart") == "on-failure", f"{name}: Restart=on-failure")
    required = dict(HARDENING_ALL)
    if needs_no_new_privileges:
        required.update({"NoNewPrivileges": "yes", "ProtectControlGroups": "yes",
                         "RestrictSUIDSGID": "yes", "PrivateDevices": "yes",
                         "CapabilityBoundingSet": ""})
    missing = [f"{k}={v}" for k, v in required.items() if one(k) != v]
    report.check(not missing, f"{name}: hardening present", "missing " + ", ".join(missing))

    exec_start = " ".join(service.get("ExecStart", []))
    argv = exec_start.split()
    report.check(bool(argv) and argv[0] == "/usr/local/bin/modelcache",
                 f"{name}: ExecStart runs /usr/local/bin/modelcache")
    secret_flags = [a for a in argv if SECRET_FLAG.match(a)]
    report.check(not secret_flags, f"{name}: no secret on the command line", str(secret_flags))
    credentials = {v.split(":", 1)[0] for v in service.get("LoadCredential", [])}
    used = set(re.findall(r"%d/([\w.-]+)", exec_start))
    report.check(used and used <= credentials,
                 f"{name}: every %d/NAME file in ExecStart is a LoadCredential",
                 f"used {sorted(used)}, loaded {sorted(credentials)}")
    for i, arg in enumerate(argv):
        if arg.endswith("-file") and arg.startswith("--"):
            value = argv[i + 1] if i + 1 < len(argv) else ""
            report.check(value.startswith("%d/"),
                         f"{name}: {arg} reads a credential file", value)

    env = parse_env_file(os.path.join(HERE, "systemd", env_example))
    variables = set(re.findall(r"\$\{?(\w+)\}?", exec_start))
    undefined = sorted(v for v in variables if v not in env)
    report.check(not undefined, f"{name}: every variable in ExecStart is set in {env_example}",
                 "unset: " + ", ".join(undefined))
    secretish = sorted(k for k in env if re.search(r"KEY|TOKEN|PASSWORD|SECRET", k))
    report.check(not secretish, f"{env_example}: holds no secret", ", ".join(secretish))
    env_files = service.get("EnvironmentFile", [])
    report.check(any(os.path.basename(f) == env_example.replace(".example", "")
                     for f in env_files),
                 f"{name}: reads the file {env_example} is the example of")
    command = argv[1] if len(argv) > 1 else ""
    check_flags(report, binary, command, {a.split("=")[0] for a in argv if a.startswith("--")},
                name)


# ---- Kubernetes ----

def load_k8s():
    docs = {}
    for name in sorted(os.listdir(os.path.join(HERE, "k8s"))):
        if name.endswith(".yaml"):
            with open(os.path.join(HERE, "k8s", name)) as f:
                docs[name] = [d for d in yaml.safe_load_all(f) if d is not None]
    return docs


def pod_spec(doc):
    return doc["spec"]["template"]["spec"]


def check_documents(report, docs):
    for name, items in docs.items():
        for d in items:
            kind = d.get("kind")
            label = f"{name}: {kind} {d.get('metadata', {}).get('name')}"
            if kind == "Kustomization":
                report.check(d.get("apiVersion", "").startswith("kustomize.config.k8s.io/"),
                             f"{label}: apiVersion")
                continue
            report.check(bool(d.get("metadata", {}).get("name")), f"{label}: has a name")
            report.check(d.get("apiVersion") == API_VERSIONS.get(kind),
                         f"{label}: apiVersion {API_VERSIONS.get(kind)}", d.get("apiVersion"))
            if kind != "Namespace":
                report.check(d["metadata"].get("namespace") == NAMESPACE,
                             f"{label}: namespace {NAMESPACE}")


def check_kustomization(report, docs):
    kustomization = docs.get("kustomization.yaml", [{}])[0]
    listed = set(kustomization.get("resources", []))
    expected = set(docs) - {"kustomization.yaml", "secret.example.yaml"}
    report.check(listed == expected, "kustomization.yaml lists every manifest but the Secret",
                 f"listed {sorted(listed)}, manifests {sorted(expected)}")
    named = {i.get("name") for i in kustomization.get("images", [])}
    used = {c["image"].split(":")[0] for items in docs.values() for d in items
            if d.get("kind") in ("Deployment", "DaemonSet") for c in pod_spec(d)["containers"]}
    report.check(bool(used) and used <= named,
                 "kustomization.yaml's images entry covers every workload's image",
                 f"images {sorted(named)}, used {sorted(used)}")


def check_workload(report, binary, doc, configmaps, secrets):
    name = f"{doc['kind']} {doc['metadata']['name']}"
    spec = pod_spec(doc)
    selector = doc["spec"]["selector"]["matchLabels"]
    labels = doc["spec"]["template"]["metadata"]["labels"]
    report.check(all(labels.get(k) == v for k, v in selector.items()),
                 f"{name}: the selector matches the pod labels")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    secret_files = {}  # mount path/item path → (secret, key)
    for c in spec["containers"]:
        cname = f"{name}/{c['name']}"
        report.check(bool(c.get("image")), f"{cname}: has an image")
        env_names = {e["name"] for e in c.get("env", [])}
        for e in c.get("env", []):
            source = e.get("valueFrom", {})
            report.check("secretKeyRef" not in source,
                         f"{cname}: env {e['name']} is not a secret (secrets are files)")
            ref = source.get("configMapKeyRef")
            if ref:
                report.check(ref["key"] in configmaps.get(ref["name"], {}),
                             f"{cname}: env {e['name']} names an existing ConfigMap key",
                             f"{ref['name']}/{ref['key']}")
        mounts = c.get("volumeMounts", [])
        for m in mounts:
            report.check(m["name"] in volumes, f"{cname}: mount {m['name']} is a volume")
            volume = volumes.get(m["name"], {})
            if "secret" in volume:
                secret = volume["secret"]["secretName"]
                report.check(secret in secrets, f"{cname}: Secret {secret} exists (example)")
                for item in volume["secret"].get("items", []):
                    report.check(item["key"] in secrets.get(secret, {}),
                                 f"{cname}: Secret key {item['key']} exists (example)")
                    secret_files[os.path.join(m["mountPath"], item["path"])] = item["key"]
        args = c.get("args", [])
        for a in args:
            for var in re.findall(r"\$\((\w+)\)", a):
                report.check(var in env_names, f"{cname}: $({var}) in args is defined in env")
        flags = [a.split("=", 1) for a in args if a.startswith("--")]
        secret_flags = [f for f, *_ in flags if SECRET_FLAG.match(f)]
        report.check(not secret_flags, f"{cname}: no secret on the command line",
                     str(secret_flags))
        for flag, *value in flags:
            if flag.endswith("-file"):
                path = value[0] if value else ""
                report.check(path in secret_files,
                             f"{cname}: {flag} reads a file of a mounted Secret", path)
        ports = {p.get("name") for p in c.get("ports", [])} | {
            p["containerPort"] for p in c.get("ports", [])}
        for probe in ("readinessProbe", "livenessProbe"):
            port = c.get(probe, {}).get("httpGet", {}).get("port")
            if port is not None:
                report.check(port in ports, f"{cname}: {probe} port {port} is declared")
        if args:
            check_flags(report, binary, args[0], {f for f, *_ in flags}, cname)
    return spec


def check_k8s(report, binary):
    docs = load_k8s()
    check_documents(report, docs)
    check_kustomization(report, docs)
    everything = [d for items in docs.values() for d in items]
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in everything
                  if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: {**d.get("data", {}), **d.get("stringData", {})}
               for d in everything if d["kind"] == "Secret"}
    workloads = [d for d in everything if d["kind"] in ("Deployment", "DaemonSet")]
    for w in workloads:
        check_workload(report, binary, w, configmaps, secrets)

    controllers = [w for w in workloads if w["kind"] == "Deployment"]
    agents = [w for w in workloads if w["kind"] == "DaemonSet"]
    report.check(len(controllers) == 1 and len(agents) == 1,
                 "one controller Deployment and one agent DaemonSet")
    for d in controllers:
        pod = pod_spec(d)
        report.check(d["spec"].get("replicas", 1) >= 2 and
                     d["spec"].get("strategy", {}).get("type") == "RollingUpdate" and
                     any(a.startswith("--advertise-url=")
                         for a in pod["containers"][0].get("args", [])),
                     "controller: replicas 2, RollingUpdate, each pod advertising its address")
        sc = pod["containers"][0].get("securityContext", {})
        report.check(pod.get("securityContext", {}).get("runAsNonRoot") is True and
                     sc.get("allowPrivilegeEscalation") is False and
                     sc.get("readOnlyRootFilesystem") is True and
                     sc.get("capabilities", {}).get("drop") == ["ALL"],
                     "controller: non-root, no privilege escalation, read-only root, no caps")
    for d in agents:
        pod = pod_spec(d)
        report.check(pod.get("hostNetwork") is True and
                     pod.get("dnsPolicy") == "ClusterFirstWithHostNet",
                     "agent: host network, resolving cluster names")
        host_paths = {v["name"] for v in pod.get("volumes", []) if "hostPath" in v}
        c = pod["containers"][0]
        cache = next((a.split("=", 1)[1] for a in c.get("args", [])
                      if a.startswith("--cache-dir=")), "")
        on_host = [m for m in c.get("volumeMounts", [])
                   if m["name"] in host_paths and cache.startswith(m["mountPath"] + "/")]
        report.check(bool(on_host), "agent: --cache-dir is on a hostPath volume", cache)
    for d in everything:
        if d["kind"] != "Service":
            continue
        selector = d["spec"].get("selector", {})
        targets = [w for w in workloads
                   if all(w["spec"]["template"]["metadata"]["labels"].get(k) == v
                          for k, v in selector.items())]
        report.check(bool(selector) and len(targets) == 1,
                     f"Service {d['metadata']['name']}: selects one workload's pods")
        for p in d["spec"].get("ports", []):
            declared = {q.get("name") for w in targets for c in pod_spec(w)["containers"]
                        for q in c.get("ports", [])}
            report.check(p.get("targetPort") in declared,
                         f"Service {d['metadata']['name']}: targetPort {p.get('targetPort')} "
                         "is a declared port")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", help="the modelcache binary, to check flags against --help")
    args = parser.parse_args()
    report = Report()
    check_unit(report, args.binary, "modelcache-controller.service", "controller.env.example",
               needs_no_new_privileges=True)
    check_unit(report, args.binary, "modelcache-agent.service", "agent.env.example",
               needs_no_new_privileges=False)
    check_k8s(report, args.binary)
    print(f"# pass {report.passed}")
    print(f"# fail {report.failed}")
    return 0 if report.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
