#!/usr/bin/env bash
# Benchmark: `modelcache pull` against the tools people use to fetch a model, side by side in one
# run. Our mirror (`modelcache serve`) on 127.0.0.1 serves a generated model of 4 × 1 GiB shards +
# one 2 GiB file + ~20 small files; each round fetches all of it into fresh dirs with:
#   pull     modelcache pull (verification always on; default --connections)
#   pull16   modelcache pull --connections 16
#   aria2c   aria2c -x16 -s16 -j4 over the file list (resolve URLs of the commit, -d/out= per file)
#   curl     one curl process, one file after another (keep-alive), --create-dirs
#   js       the official @huggingface/hub client's snapshotDownload (version pinned in tests/js)
#   cp       cp -r of the blobs from the server's cache (the disk-write limit, not durable)
#   cpsync   cp -r + sync (durable like pull, which fsyncs every blob before publishing it)
#   base     with BENCH_BASELINE=path/to/another/modelcache: that binary's pull (default
#            connections), to measure a change of ours against the build before it in one run
# ROUNDS rounds, the order of the tools rotated each round; `sync` before every step so nobody
# pays for an earlier step's dirty pages; the server's blobs are warm in the page cache for every
# step (BENCH_COLD=1 drops the page cache before every step instead; needs root). Per tool: median
# wall time, MB/s (10^6 bytes/s), CPU core-seconds (user+sys of the tool and its children, from
# GNU time) per GB (10^9 bytes), peak RSS (max over rounds), the server's CPU; then pull's ratios
# against aria2c, the JS client and cp, and PASS/MISS for each goal of issue 3.
#
# Usage: bench/pull_vs_peers.sh [path/to/modelcache]      (make bench does setup + build first)
# Env:   ROUNDS=5 BENCH_SHARD_MIB=1024 BENCH_SHARDS=4 BENCH_BIG_MIB=2048 BENCH_SMALL_FILES=20
#        BENCH_TOOLS="pull pull16 aria2c curl js cp cpsync" BENCH_DIR=/tmp BENCH_COLD=0
#        BENCH_ARIA2_ALLOC=falloc (aria2c --file-allocation)
#        BENCH_BASELINE=path/to/older/modelcache (adds the tool "base")
#        BENCH_RATE_PER_ANSWER=RATE: the mirror paces each answer on its own at RATE (`serve
#          --max-rate-per-answer`, e.g. 40MB), like a CDN's per-connection limit or one TCP stream
#          over a long link, so tools that open several connections gain what they would there
#        Quick smoke run: BENCH_SHARD_MIB=64 BENCH_BIG_MIB=128 ROUNDS=2 bench/pull_vs_peers.sh
set -euo pipefail

MC=$(readlink -f "${1:-build/src/cli/modelcache}")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ROUNDS=${ROUNDS:-5}
SHARD_MIB=${BENCH_SHARD_MIB:-1024}
SHARDS=${BENCH_SHARDS:-4}
BIG_MIB=${BENCH_BIG_MIB:-2048}
SMALL=${BENCH_SMALL_FILES:-20}
read -r -a TOOLS <<<"${BENCH_TOOLS:-pull pull16 aria2c curl js cp cpsync}"
BASELINE=""
if [[ -n ${BENCH_BASELINE:-} ]]; then
  BASELINE=$(readlink -f "$BENCH_BASELINE")
  [[ -x $BASELINE ]] || { echo "pull_vs_peers: BENCH_BASELINE=$BENCH_BASELINE is not an executable" >&2; exit 2; }
  [[ " ${TOOLS[*]} " == *" base "* ]] || TOOLS+=(base)
fi
BENCH_DIR=${BENCH_DIR:-/tmp}
COLD=${BENCH_COLD:-0}
# aria2's default file allocation (prealloc) may write every file twice; falloc is what its manual
# recommends on ext4/xfs/btrfs: the peer gets its best setting.
ARIA2_ALLOC=${BENCH_ARIA2_ALLOC:-falloc}
REPO=bench/model

die() { echo "pull_vs_peers: $*" >&2; exit 2; }
[[ -x $MC ]] || die "modelcache binary not found at $MC: run make build"
for t in aria2c curl node npm bc; do
  command -v "$t" >/dev/null || die "$t missing: run tools/setup-debian.sh --bench"
done
/usr/bin/time -f %M true >/dev/null 2>&1 || die "GNU time (/usr/bin/time) missing: run tools/setup-debian.sh --bench"
have_pull=0
# (Not `--help | grep -q`: grep stops reading at the match and pipefail sees the writer's SIGPIPE.)
grep -qE "^ +pull +" <<<"$("$MC" --help 2>/dev/null)" && have_pull=1
if [[ $COLD == 1 ]] && ! sh -c 'sync; echo 1 >/proc/sys/vm/drop_caches' 2>/dev/null; then
  die "BENCH_COLD=1 needs to write /proc/sys/vm/drop_caches (root)"
fi

# The JS peer runs the client the compatibility tests pin (tests/js/package-lock.json).
if ! (cd "$ROOT/tests/js" && node -e '
  const want = require("./package.json").dependencies["@huggingface/hub"];
  const have = require("./node_modules/@huggingface/hub/package.json").version;
  process.exit(want === have ? 0 : 1);') 2>/dev/null; then
  (cd "$ROOT/tests/js" && npm ci --no-audit --no-fund >/dev/null)
fi
js_version=$(cd "$ROOT/tests/js" && node -p 'require("./node_modules/@huggingface/hub/package.json").version')

# Disk: the generated folder and the server's cache exist together during the import, then the
# server's cache and one tool's copy (each copy is removed right after its step).
model_mib=$((SHARD_MIB * SHARDS + BIG_MIB + 64))
need=$(((2 * model_mib + 2048) * 1024 * 1024))
avail=$(df -B1 --output=avail "$BENCH_DIR" | tail -1)
((avail >= need)) || die "needs $((need >> 30)) GiB free in $BENCH_DIR, has $((avail >> 30)) GiB (set BENCH_DIR or smaller BENCH_SHARD_MIB/BENCH_BIG_MIB)"

work=$(mktemp -d "$BENCH_DIR/mc-bench-pull.XXXXXX")
server=""
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Hermetic: no token, endpoint or cache location of the machine leaks into any tool.
unset HF_TOKEN HF_ENDPOINT HF_HUB_CACHE HUGGINGFACE_HUB_CACHE HF_HUB_OFFLINE HF_TOKEN_PATH
export HF_HOME="$work/hf-home"

# ---- the model: SHARDS shards + one big file + small files, imported into the server's cache ----
echo "# generating the model in $work (shards ${SHARDS}x${SHARD_MIB} MiB, big ${BIG_MIB} MiB, $SMALL small files)"
model="$work/model"
"$MC" fixture "$model" --size "$((SHARD_MIB * SHARDS))MiB" --shards "$SHARDS" --seed 1 >/dev/null
if ((BIG_MIB > 0)); then
  "$MC" fixture "$work/big" --size "${BIG_MIB}MiB" --shards 1 --seed 2 >/dev/null
  mv "$work/big/model.safetensors" "$model/consolidated.safetensors"
  rm -rf "$work/big"
fi
# Deterministic filler bytes: AES-CTR keystream of a per-file key (head ends the pipe early).
filler() (
  set +o pipefail
  openssl enc -aes-128-ctr -nosalt -pass "pass:$1" -pbkdf2 </dev/zero 2>/dev/null | head -c "$2"
)
small_names=(tokenizer_config.json special_tokens_map.json vocab.json merges.txt tokenizer.model
  added_tokens.json chat_template.jinja README.md LICENSE USE_POLICY.md preprocessor_config.json
  training_args.bin original/tokenizer.model original/README.md assets/figure.png)
small_sizes=(51200 414 1048576 456318 499723 2048 4096 12288 7801 4691 316 5432 2183982 3001 262144)
have_small=$(find "$model" -type f -size -1048576c | wc -l)
for ((i = 0; i < SMALL - have_small; i++)); do
  name=${small_names[$i]:-extra/small-$i.txt}
  size=${small_sizes[$i]:-$((1000 + 997 * i))}
  mkdir -p "$(dirname "$model/$name")"
  case $name in
    *.bin | *.model | *.png) filler "$name" "$size" >"$model/$name" ;;  # binary
    *) (set +o pipefail; filler "$name" "$size" | base64 -w 76 | head -c "$size" >"$model/$name") ;;  # text
  esac
done
upstream="$work/upstream"
"$MC" import "$model" --repo "$REPO" --cache-dir "$upstream" >/dev/null
rm -rf "$model"
snap=$("$MC" path "$REPO" --cache-dir "$upstream")
commit=$(basename "$snap")
blobs="$upstream/models--${REPO//\//--}/blobs"
mapfile -t files < <(cd "$snap" && find -L . -type f -printf '%P\n' | sort)
nfiles=${#files[@]}
bytes=$(cd "$snap" && find -L . -type f -printf '%s\n' | paste -sd+ | bc)
blob_bytes=$(find "$blobs" -type f -printf '%s\n' | paste -sd+ | bc)
((bytes == blob_bytes)) || die "the fixture has duplicate files ($bytes bytes of files, $blob_bytes of blobs)"
big_files=$(cd "$snap" && find -L . -type f -size +1048576c | wc -l)

serve_args=()
[[ -n ${BENCH_RATE_PER_ANSWER:-} ]] && serve_args=(--max-rate-per-answer "$BENCH_RATE_PER_ANSWER")
"$MC" serve --cache-dir "$upstream" --listen 127.0.0.1:0 "${serve_args[@]}" >"$work/serve.out" 2>"$work/serve.err" &
server=$!
for _ in $(seq 100); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/serve.out")
[[ -n $url ]] || { echo "the mirror did not start: $(cat "$work/serve.err")" >&2; exit 1; }

# The peers' inputs: every file's resolve URL at the commit, and where it goes.
: >"$work/aria2.in"
: >"$work/curl.cfg"
for f in "${files[@]}"; do
  printf '%s\n  out=%s\n' "$url/$REPO/resolve/$commit/$f" "$f" >>"$work/aria2.in"
  printf 'url = "%s"\noutput = "%s"\n' "$url/$REPO/resolve/$commit/$f" "$work/dest-curl/$f" >>"$work/curl.cfg"
done

# ---- the tools: tool_cmd sets cmd=(...), the command that writes into $work/dest-TOOL ----
tool_cmd() {
  local dest="$work/dest-$1"
  case $1 in
    pull) cmd=("$MC" pull "$REPO" --endpoint "$url" --cache-dir "$dest/cache" --state-dir "$dest/state") ;;
    pull16) cmd=("$MC" pull "$REPO" --endpoint "$url" --cache-dir "$dest/cache" --state-dir "$dest/state"
      --connections 16) ;;
    base) cmd=("$BASELINE" pull "$REPO" --endpoint "$url" --cache-dir "$dest/cache" --state-dir "$dest/state") ;;
    aria2c) cmd=(aria2c -x16 -s16 -j4 -i "$work/aria2.in" -d "$dest" --file-allocation="$ARIA2_ALLOC"
      --console-log-level=warn --summary-interval=0 --download-result=hide --allow-overwrite=true
      --auto-file-renaming=false) ;;
    curl) cmd=(curl -sSf --create-dirs -K "$work/curl.cfg") ;;
    js) cmd=(node "$HERE/js/snapshot_download.mjs" "$url" "$REPO" "$dest/cache") ;;
    cp) cmd=(cp -r "$blobs" "$dest/blobs") ;;
    cpsync) cmd=(sh -c 'cp -r "$0" "$1" && sync' "$blobs" "$dest/blobs") ;;
    *) die "unknown tool $1" ;;
  esac
}
# Where a tool's copy of the files is, to check it.
result_dir() {
  case $1 in
    pull | pull16 | base | js) echo "$2/cache/models--${REPO//\//--}/snapshots/$commit" ;;
    cp | cpsync) echo "$2/blobs" ;;
    *) echo "$2" ;;
  esac
}
is_pull() { [[ $1 == pull || $1 == pull16 || $1 == base ]]; }

clk=$(getconf CLK_TCK)
server_cpu() { awk -v t="$clk" '{printf "%.2f", ($14 + $15) / t}' "/proc/$server/stat"; }
prepare_source() {
  sync
  if [[ $COLD == 1 ]]; then
    echo 1 >/proc/sys/vm/drop_caches
  else
    cat "$blobs"/* >/dev/null
  fi
}

declare -A wall cpu sys rss srv
# One step: fresh dir, source ready, measured run, check of the result (every file, every byte
# count; in round 1 also every byte), removal.
step() {
  local tool=$1 round=$2 dest="$work/dest-$1" s e s0 s1 got
  rm -rf "$dest"
  mkdir -p "$dest"
  prepare_source
  s0=$(server_cpu)
  s=$(date +%s.%N)
  local cmd
  tool_cmd "$tool"
  if ! /usr/bin/time -f '%U %S %M' -o "$work/time.out" "${cmd[@]}" >"$work/$tool.out" 2>"$work/$tool.err"; then
    echo "$tool failed in round $round:" >&2
    tail -20 "$work/$tool.err" >&2
    exit 1
  fi
  e=$(date +%s.%N)
  s1=$(server_cpu)
  local rdir
  rdir=$(result_dir "$tool" "$dest")
  got=$(find -L "$rdir" -type f -printf '%s\n' | paste -sd+ | bc)
  [[ $got == "$bytes" ]] || { echo "$tool wrote $got bytes, want $bytes ($rdir)" >&2; exit 1; }
  if ((round == 1)); then
    if [[ $tool == cp || $tool == cpsync ]]; then
      diff -rq "$blobs" "$rdir" >/dev/null || { echo "$tool: bytes differ" >&2; exit 1; }
    else
      for f in "${files[@]}"; do
        cmp -s "$snap/$f" "$rdir/$f" || { echo "$tool: $f differs from the upstream" >&2; exit 1; }
      done
    fi
  fi
  if is_pull "$tool"; then  # stdout is the snapshot path
    [[ $(tail -1 "$work/$tool.out") == "$rdir" ]] ||
      { echo "$tool printed '$(tail -1 "$work/$tool.out")', want $rdir" >&2; exit 1; }
  fi
  local u sy m
  read -r u sy m < <(tail -1 "$work/time.out")
  wall[$tool]+="$(echo "$e - $s" | bc -l) "
  cpu[$tool]+="$(echo "$u + $sy" | bc -l) "
  sys[$tool]+="$sy "
  rss[$tool]+="$m "
  srv[$tool]+="$(echo "$s1 - $s0" | bc -l) "
  rm -rf "$dest"
}

nth() { echo "$1" | tr ' ' '\n' | grep . | sed -n "${2}p"; }
active=()
for t in "${TOOLS[@]}"; do
  if is_pull "$t" && ((!have_pull)); then continue; fi
  active+=("$t")
done
((have_pull)) || echo "# '$MC pull' does not exist yet: the pull rows are pending"
echo "# $nfiles files ($big_files > 1 MiB), $bytes bytes; mirror $url; commit $commit"
echo "# tools: ${active[*]}; $ROUNDS rounds, order rotated each round; page cache $([[ $COLD == 1 ]] && echo dropped before each step || echo warm for the source)"
[[ -n ${BENCH_RATE_PER_ANSWER:-} ]] && echo "# the mirror paces each answer at $BENCH_RATE_PER_ANSWER/s (--max-rate-per-answer)"
n=${#active[@]}
for round in $(seq "$ROUNDS"); do
  for i in $(seq 0 $((n - 1))); do
    step "${active[$(((i + round - 1) % n))]}" "$round"
  done
  line=""
  for t in "${active[@]}"; do line+=" $t $(printf %.2f "$(nth "${wall[$t]}" "$round")")"; done
  echo "# round $round/$ROUNDS, wall s:$line"
done

# ---- results ----
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {printf "%.6f\n", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
maxof() { tr ' ' '\n' | grep . | sort -g | tail -1; }
gb=$(echo "$bytes / 1000000000" | bc -l)
label() {
  case $1 in
    pull) echo "modelcache pull" ;;
    pull16) echo "modelcache pull --connections 16" ;;
    base) echo "baseline pull ($BENCH_BASELINE)" ;;
    aria2c) echo "aria2c -x16 -s16 -j4 --file-allocation=$ARIA2_ALLOC" ;;
    curl) echo "curl, one file at a time" ;;
    js) echo "@huggingface/hub $js_version snapshotDownload" ;;
    cp) echo "cp -r of the blobs" ;;
    cpsync) echo "cp -r + sync" ;;
  esac
}
declare -A mw
echo
echo "$nfiles files, $bytes bytes ($(printf %.2f "$gb") GB); $ROUNDS rounds; medians; MB/s = 10^6 bytes/s"
echo "$(nproc) CPUs, $(uname -r), $(df -T "$work" | awk 'NR==2{print $2}'); aria2 $(aria2c --version | awk 'NR==1{print $3}'), curl $(curl --version | awk 'NR==1{print $2}'), node $(node --version)"
echo
echo "| tool | wall s | MB/s | CPU core-s per GB | of which sys | peak RSS MiB | server CPU s |"
echo "|---|---|---|---|---|---|---|"
for t in "${active[@]}"; do
  mw[$t]=$(echo "${wall[$t]}" | median)
  c=$(echo "${cpu[$t]}" | median)
  printf '| %s | %.2f | %.0f | %.2f | %.0f%% | %.1f | %.2f |\n' "$(label "$t")" "${mw[$t]}" \
    "$(echo "$bytes / ${mw[$t]} / 1000000" | bc -l)" "$(echo "$c / $gb" | bc -l)" \
    "$(echo "100 * $(echo "${sys[$t]}" | median) / $c" | bc -l)" \
    "$(echo "$(echo "${rss[$t]}" | maxof) / 1024" | bc -l)" "$(echo "${srv[$t]}" | median)"
done
((have_pull)) || printf '| modelcache pull | pending | | | | | |\n'

# Ratios of pull against a peer: of the medians, and the median of the per-round (paired) ratios,
# which cancels slow drift of a shared machine. $3 = "time": pull/peer time; else peer/pull time
# (= pull's throughput / the peer's).
ratio() {
  local a=$1 b=$2 kind=$3 r paired=""
  for k in $(seq "$ROUNDS"); do
    if [[ $kind == time ]]; then
      paired+="$(echo "$(nth "${wall[$a]}" "$k") / $(nth "${wall[$b]}" "$k")" | bc -l) "
    else
      paired+="$(echo "$(nth "${wall[$b]}" "$k") / $(nth "${wall[$a]}" "$k")" | bc -l) "
    fi
  done
  if [[ $kind == time ]]; then r=$(echo "${mw[$a]} / ${mw[$b]}" | bc -l); else r=$(echo "${mw[$b]} / ${mw[$a]}" | bc -l); fi
  printf '%.2f %.2f' "$r" "$(echo "$paired" | median)"
}
verdict() { # value op goal
  if (($(echo "$1 $2 $3" | bc -l))); then echo PASS; else echo MISS; fi
}
has() { [[ " ${active[*]} " == *" $1 "* ]]; }
echo
echo "| goal (issue 3) | measured: ratio of medians | median of paired ratios | verdict |"
echo "|---|---|---|---|"
if ! has pull; then
  echo "| every pull goal | pending: no 'modelcache pull' in this build | | |"
  exit 0
fi
# One row comparing tools `a` and `b` (both must have run): LABEL, then the ratio of medians, the
# median of paired ratios and, when OP and GOAL are given, the verdict on the paired one.
row() { # a b throughput|time label [op goal]
  has "$1" && has "$2" || return 0
  local r p v=""
  read -r r p <<<"$(ratio "$1" "$2" "$3")"
  [[ $# -ge 6 ]] && v=$(verdict "$p" "$5" "$6")
  echo "| $4 | ${r}× | ${p}× | $v |"
}
row pull aria2c throughput "pull throughput ≥ 1.5× aria2c" '>=' 1.5
row pull js throughput "pull throughput ≥ 3× JS snapshotDownload" '>=' 3
row pull cp time "pull time ≤ 1.3× cp -r time" '<=' 1.3
row pull cpsync time "(durable peer) pull time ≤ 1.3× cp -r + sync time" '<=' 1.3
row pull curl throughput "(no goal) pull throughput vs curl"
row pull16 pull throughput "(no goal) pull --connections 16 throughput vs default"
row pull base throughput "(no goal) pull throughput vs the baseline build"
if has base; then
  printf '| (no goal) pull CPU vs the baseline build | %.2f× | | |\n' \
    "$(echo "$(echo "${cpu[pull]}" | median) / $(echo "${cpu[base]}" | median)" | bc -l)"
fi
c=$(echo "$(echo "${cpu[pull]}" | median) / $gb" | bc -l)
printf '| pull CPU ≤ 1 core-s per GB | %.2f (median) | | %s |\n' "$c" "$(verdict "$c" '<=' 1)"
m=$(echo "$(echo "${rss[pull]}" | maxof) / 1024" | bc -l)
printf '| pull peak RSS ≤ 64 MiB | %.1f MiB (max of rounds) | | %s |\n' "$m" "$(verdict "$m" '<=' 64)"
