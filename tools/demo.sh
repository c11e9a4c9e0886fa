#!/usr/bin/env bash
# The README's main job: generate a demo model, import it into a Hugging Face cache under
# ./demo-data, verify it, and serve it over the Hugging Face hub API until Ctrl-C.
# Usage: tools/demo.sh [path/to/modelcache] [--check]   (--check: exit after the self-test)
set -euo pipefail

MC=${1:-build/src/cli/modelcache}
CHECK=${2:-}
DATA=${DEMO_DATA:-demo-data}
LISTEN=${DEMO_LISTEN:-127.0.0.1:8765}
CACHE="$DATA/hub"

if [[ ! -d "$DATA/model" ]]; then
  echo "== Writing a generated 64 MiB model folder to $DATA/model"
  "$MC" fixture "$DATA/model" --size 64MiB --shards 2
fi
echo "== Importing it into the Hugging Face cache $CACHE as demo/tiny-llama@main"
"$MC" import "$DATA/model" --repo demo/tiny-llama --cache-dir "$CACHE"
echo
echo "== modelcache ls"
"$MC" ls --cache-dir "$CACHE"
echo
echo "== modelcache verify"
"$MC" verify --cache-dir "$CACHE"
echo
echo "== Serving $CACHE on http://$LISTEN (the Hugging Face hub API)"
"$MC" serve --cache-dir "$CACHE" --listen "$LISTEN" >"$DATA/serve.out" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q listening "$DATA/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$DATA/serve.out")
[[ -n $url ]] || { echo "the mirror did not start" >&2; exit 1; }
echo "\$ curl -sI $url/demo/tiny-llama/resolve/main/config.json"
curl -sI "$url/demo/tiny-llama/resolve/main/config.json"
echo "\$ curl -s $url/api/models/demo/tiny-llama/revision/main"
curl -s "$url/api/models/demo/tiny-llama/revision/main"
echo
echo
echo "Models load offline from the cache:  HF_HUB_CACHE=$PWD/$CACHE HF_HUB_OFFLINE=1 python ..."
echo "Or download through the mirror:      HF_ENDPOINT=$url hf download demo/tiny-llama"
echo "  or, verified and resumable:         $MC pull demo/tiny-llama --endpoint $url --cache-dir /tmp/hub"
[[ $CHECK == --check ]] && exit 0
echo "Serving until Ctrl-C."
wait $server
