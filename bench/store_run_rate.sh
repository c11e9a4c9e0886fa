#!/usr/bin/env bash
# Benchmark: the saturated /run rate of one controller on SQLite beside the same controller on
# PostgreSQL (issue 16), in one run. Each round starts `modelcache up --demo` three times on a
# fresh data dir: on SQLite (the default), on PostgreSQL with synchronous_commit=off (the same
# promise as SQLite's synchronous=NORMAL: an OS crash may lose the last commits, never corrupts)
# and on PostgreSQL with the server default, synchronous_commit=on (every commit flushed to disk).
# Then wrk posts /run for 10 s over WRK_CONNECTIONS connections, as fast as answers come, to an
# endpoint without workers: every job is written to the store before its answer.
# The PostgreSQL server is a throwaway one in a temp dir, on a Unix socket there, run as the
# unprivileged user modelcache-test when this runs as root (PostgreSQL refuses root), stopped by
# the pid in its postmaster.pid.
# Usage: bench/store_run_rate.sh [path/to/modelcache]
# Env:   ROUNDS=2 WRK_CONNECTIONS=8 WRK_SECONDS=10
set -euo pipefail

MC=$(readlink -f "${1:-build/src/cli/modelcache}")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ROUNDS=${ROUNDS:-2}
CONNS=${WRK_CONNECTIONS:-8}
SECONDS_=${WRK_SECONDS:-10}
command -v wrk >/dev/null || { echo "wrk is missing: tools/setup-debian.sh --bench" >&2; exit 1; }
BINDIR=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x "$BINDIR/initdb" ]] || { echo "PostgreSQL is missing: tools/setup-debian.sh" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mc_store_rate.XXXXXX")
PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/mc_store_rate_pg.XXXXXX")
AS=()
if [[ $(id -u) -eq 0 ]]; then
  AS=(setpriv --reuid=modelcache-test --regid=modelcache-test --clear-groups)
  chown modelcache-test:modelcache-test "$PGDIR"
fi
UP_PID=""
stop_pg() {
  [[ -f "$PGDIR/data/postmaster.pid" ]] || return 0
  local pid
  pid=$(head -1 "$PGDIR/data/postmaster.pid")
  kill -INT "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}
cleanup() {
  [[ -n "$UP_PID" ]] && kill "$UP_PID" 2>/dev/null && wait "$UP_PID" 2>/dev/null
  stop_pg
  rm -rf "$WORK" "$PGDIR"
}
trap cleanup EXIT
cd "$ROOT"  # up's demo worker path is relative to the repository

"${AS[@]}" "$BINDIR/initdb" -D "$PGDIR/data" -U mc -A trust -E UTF8 --locale=C >/dev/null
start_pg() {  # $1: synchronous_commit
  "${AS[@]}" "$BINDIR/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w -o \
    "-k $PGDIR -c listen_addresses= -c synchronous_commit=$1" start >/dev/null
}
DBS=0
new_db() {  # sets DB to the URI of a new database
  DBS=$((DBS + 1))
  "$BINDIR/psql" -q -h "$PGDIR" -U mc -d postgres -c "CREATE DATABASE r$DBS" >/dev/null
  DB="postgresql:///r$DBS?host=$PGDIR&user=mc"
}

# One measurement: up --demo on the store $2 (empty: SQLite) in a fresh dir, wrk, stop.
# Sets RESULT to "jobs/s p99".
measure() {
  local dir=$WORK/$1 db=$2
  mkdir -p "$dir"
  "$MC" up --demo --data-dir "$dir" --listen 127.0.0.1:0 --agents 1 --gpus 1 \
    ${db:+--db "$db"} >"$dir.out" 2>"$dir.err" &
  UP_PID=$!
  for _ in $(seq 1 1200); do
    grep -q '^endpoint ' "$dir.out" 2>/dev/null && break
    kill -0 "$UP_PID" 2>/dev/null || { cat "$dir.err" >&2; exit 1; }
    sleep 0.1
  done
  local url key ep
  url=$(sed -n 's/^controller listening on //p' "$dir.out")
  key=$(cat "$dir/api-key")
  ep=$(python3 "$HERE/coldstart.py" endpoint "$url" "$key")
  cat >"$dir.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"input": {"prompt": "hi"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
LUA
  wrk -t2 -c"$CONNS" -d"${SECONDS_}s" --latency -s "$dir.lua" "$url/v2/$ep/run" >"$dir.wrk"
  python3 "$HERE/coldstart.py" drop "$url" "$key" "$ep" >/dev/null
  kill -TERM "$UP_PID"
  wait "$UP_PID" || true
  UP_PID=""
  RESULT="$(awk '/Requests\/sec/ {print int($2)}' "$dir.wrk") $(awk '$1 == "99%" {print $2}' "$dir.wrk")"
}

echo "== saturated /run, one controller: SQLite beside PostgreSQL (wrk -t2 -c$CONNS -d${SECONDS_}s, $ROUNDS rounds)"
printf '%-6s %-22s %-22s %-22s %-10s %-10s\n' round sqlite "postgres sync=off" "postgres sync=on" \
  "off/sqlite" "on/sqlite"
for r in $(seq 1 "$ROUNDS"); do
  measure "sqlite$r" ""
  read -r s_rate s_p99 <<<"$RESULT"
  start_pg off
  new_db
  measure "pgoff$r" "$DB"
  read -r off_rate off_p99 <<<"$RESULT"
  stop_pg
  start_pg on
  new_db
  measure "pgon$r" "$DB"
  read -r on_rate on_p99 <<<"$RESULT"
  stop_pg
  printf '%-6s %-22s %-22s %-22s %-10s %-10s\n' "$r" "$s_rate/s p99 $s_p99" \
    "$off_rate/s p99 $off_p99" "$on_rate/s p99 $on_p99" \
    "$(echo "scale=2; $off_rate / $s_rate" | bc)" "$(echo "scale=2; $on_rate / $s_rate" | bc)"
done
