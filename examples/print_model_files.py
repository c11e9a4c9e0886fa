#!/usr/bin/env python3
"""A minimal worker for `modelcache agent`: finds its model in the Hugging Face cache offline,
opens every file of the snapshot and prints its path and size.

It relies only on what the agent gives every worker:
  HF_HUB_CACHE    the hub cache (models--org--name/{blobs,refs,snapshots})
  HF_HUB_OFFLINE  "1": the network must not be used
  MODEL_NAME      org/name (or datasets/org/name)
  MODEL_REVISION  the commit the agent ensured (MODEL_PATH is its snapshot dir)
  CUDA_VISIBLE_DEVICES  the GPU slots given to this worker

It resolves the snapshot the way huggingface_hub does offline (refs/<name> or a commit sha) and
reads each file through the snapshot's symlinks. With --serve it then waits for SIGTERM, like a
real inference worker. Python standard library only.

Usage: print_model_files.py [--serve]
"""
import os
import signal
import sys


def snapshot_dir(cache, model, revision):
    kind, _, repo = model.partition("/") if model.startswith(("datasets/", "spaces/")) else ("models", "", model)
    folder = os.path.join(cache, kind + "--" + repo.replace("/", "--"))
    if len(revision) != 40:
        with open(os.path.join(folder, "refs", revision)) as ref:
            revision = ref.read().strip()
    return os.path.join(folder, "snapshots", revision)


def main():
    if os.environ.get("HF_HUB_OFFLINE") != "1":
        print("error: HF_HUB_OFFLINE is not 1", file=sys.stderr)
        return 2
    cache = os.environ["HF_HUB_CACHE"]
    model = os.environ["MODEL_NAME"]
    root = snapshot_dir(cache, model, os.environ.get("MODEL_REVISION", "main"))
    if os.path.realpath(root) != os.path.realpath(os.environ.get("MODEL_PATH", root)):
        print("error: MODEL_PATH does not match the cache", file=sys.stderr)
        return 2
    total = 0
    for dirpath, _, names in sorted(os.walk(root)):
        for name in sorted(names):
            path = os.path.join(dirpath, name)
            size = 0
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    size += len(chunk)
            total += size
            print(f"{os.path.relpath(path, root)} {size}")
    print(f"model {model} files ok, {total} bytes, gpus [{os.environ.get('CUDA_VISIBLE_DEVICES', '')}]")
    sys.stdout.flush()
    if "--serve" in sys.argv[1:]:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
