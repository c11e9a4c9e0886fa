#!/usr/bin/env bash
# Benchmark: the modelcache mirror against nginx (sendfile on), serving the same 2 GiB blob on
# 127.0.0.1, fetched with `curl -o /dev/null` by 1 client and by 4 concurrent clients, RUNS runs each,
# alternating which server goes first. Also measures HEAD/metadata latency (p50, p99) over one
# keep-alive connection. Prints medians and mirror/nginx ratios (compare ratios, not absolute
# numbers: these machines are noisy).
#
# Usage: bench/mirror_vs_nginx.sh [path/to/modelcache]     (make bench does setup + build first)
# Env:   SIZE=2GiB RUNS=7 CLIENTS=4 HEADS=500
set -euo pipefail

MC=${1:-build/src/cli/modelcache}
MC=$(readlink -f "$MC")
SIZE=${SIZE:-2GiB}
RUNS=${RUNS:-7}
CLIENTS=${CLIENTS:-4}
HEADS=${HEADS:-500}
command -v nginx >/dev/null || { echo "nginx missing: run tools/setup-debian.sh --bench" >&2; exit 2; }
[[ -x $MC ]] || { echo "modelcache binary not found at $MC: run make build" >&2; exit 2; }

work=$(mktemp -d /tmp/mc-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "# preparing a $SIZE model in $work"
"$MC" fixture "$work/model" --size "$SIZE" >/dev/null
"$MC" import "$work/model" --repo bench/model --cache-dir "$work/cache" >/dev/null
blob=$(readlink -f "$("$MC" path bench/model model.safetensors --cache-dir "$work/cache")")
bytes=$(stat -c %s "$blob")
cat "$blob" >/dev/null  # warm the page cache for both servers

"$MC" serve --cache-dir "$work/cache" --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
mirror=$(sed -n 's/^listening on //p' "$work/serve.out")
[[ -n $mirror ]] || { echo "mirror did not start: $(cat "$work/serve.err")" >&2; exit 1; }

mkdir -p "$work/nginx"
user_line=""
[[ $(id -u) -eq 0 ]] && user_line="user root;"
for port in $(shuf -i 20000-45000 -n 20); do
  cat >"$work/nginx/nginx.conf" <<CONF
$user_line
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  types { application/octet-stream bin; }
  default_type application/octet-stream;
  server { listen 127.0.0.1:$port; root $(dirname "$blob"); }
}
CONF
  nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
  npid=$!
  sleep 0.5
  if kill -0 "$npid" 2>/dev/null && curl -sfI "http://127.0.0.1:$port/$(basename "$blob")" >/dev/null; then
    pids+=("$npid")
    break
  fi
  npid=""
done
[[ -n ${npid:-} ]] || { echo "nginx did not start: $(cat "$work/nginx/error.log")" >&2; exit 1; }
nginx_url="http://127.0.0.1:$port/$(basename "$blob")"
mirror_url="$mirror/bench/model/resolve/main/model.safetensors"

# One client: bytes/second as curl reports it.
one() { curl -sf -o /dev/null -w '%{speed_download}' "$1"; }
# N concurrent clients: total bytes / wall seconds.
many() {
  local start end c=()
  start=$(date +%s.%N)
  for _ in $(seq "$CLIENTS"); do
    curl -sf -o /dev/null "$1" &
    c+=($!)
  done
  wait "${c[@]}"
  end=$(date +%s.%N)
  echo "$bytes * $CLIENTS / ($end - $start)" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {printf "%.6f\n", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
gbps() { echo "scale=2; $1 / 1000000000" | bc -l; }

declare -A r
ratios1="" ratiosn=""
for run in $(seq "$RUNS"); do
  order=(mirror nginx)
  ((run % 2 == 0)) && order=(nginx mirror)
  declare -A this=()
  for s in "${order[@]}"; do
    url=$mirror_url
    [[ $s == nginx ]] && url=$nginx_url
    this[$s.1]=$(one "$url")
    this[$s.n]=$(many "$url")
    r[$s.1]+="${this[$s.1]} "
    r[$s.n]+="${this[$s.n]} "
  done
  # Paired ratios: both servers measured back to back, so slow drift of the machine cancels out.
  ratios1+="$(echo "${this[mirror.1]} / ${this[nginx.1]}" | bc -l) "
  ratiosn+="$(echo "${this[mirror.n]} / ${this[nginx.n]}" | bc -l) "
  echo "# run $run/$RUNS done"
done

# Latency over one keep-alive connection: curl reports time_total per transfer (the first, which
# includes the connect, is dropped). heads: HEAD requests; gets: GET requests (metadata JSON).
latency() {
  local method=$1 url=$2 args=()
  for _ in $(seq "$HEADS"); do args+=(-o /dev/null "$url"); done
  curl -s $method -w '%{time_total}\n' "${args[@]}" | grep -E '^[0-9.]+$' | tail -n +2 | sort -g |
    awk '{a[NR]=$1} END {printf "%.3f %.3f", a[int(NR*0.5)]*1000, a[int(NR*0.99)]*1000}'
}
read -r m_p50 m_p99 <<<"$(latency -I "$mirror_url")"
read -r n_p50 n_p99 <<<"$(latency -I "$nginx_url")"
read -r a_p50 a_p99 <<<"$(latency -G "$mirror/api/models/bench/model/revision/main")"
read -r t_p50 t_p99 <<<"$(latency -G "$mirror/api/models/bench/model/tree/main?recursive=true")"

m1=$(echo "${r[mirror.1]}" | tr ' ' '\n' | grep . | median)
n1=$(echo "${r[nginx.1]}" | tr ' ' '\n' | grep . | median)
mn=$(echo "${r[mirror.n]}" | tr ' ' '\n' | grep . | median)
nn=$(echo "${r[nginx.n]}" | tr ' ' '\n' | grep . | median)

echo
echo "blob: $bytes bytes; $RUNS runs each, alternating; medians; GB/s = 10^9 bytes/s"
echo
pr1=$(echo "$ratios1" | tr ' ' '\n' | grep . | median)
prn=$(echo "$ratiosn" | tr ' ' '\n' | grep . | median)
echo "| case | mirror GB/s | nginx GB/s | ratio of medians | median of paired ratios |"
echo "|---|---|---|---|---|"
printf '| 1 client | %s | %s | %.2f | %.2f |\n' "$(gbps "$m1")" "$(gbps "$n1")" \
  "$(echo "$m1 / $n1" | bc -l)" "$pr1"
printf '| %s clients | %s | %s | %.2f | %.2f |\n' "$CLIENTS" "$(gbps "$mn")" "$(gbps "$nn")" \
  "$(echo "$mn / $nn" | bc -l)" "$prn"
echo
echo "| request ($HEADS on one keep-alive connection) | p50 ms | p99 ms |"
echo "|---|---|---|"
echo "| mirror HEAD resolve/main/model.safetensors | $m_p50 | $m_p99 |"
echo "| nginx HEAD of the same file | $n_p50 | $n_p99 |"
echo "| mirror GET api/models/…/revision/main | $a_p50 | $a_p99 |"
echo "| mirror GET api/models/…/tree/main?recursive=true | $t_p50 | $t_p99 |"
