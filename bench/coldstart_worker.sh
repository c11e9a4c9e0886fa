#!/usr/bin/env bash
# A minimal Runpod-protocol worker for bench/coldstart.sh: bash and /dev/tcp only, so that its own
# start-up (a few ms) does not hide the platform's. It takes jobs exactly as runpod-python does
# (GET {RUNPOD_WEBHOOK_GET_JOB}&job_in_progress=0 with the raw key) and answers each with
# {"output": "ok"} on {RUNPOD_WEBHOOK_POST_OUTPUT}&isStream=false. Loops until SIGTERM.
set -u
split() {  # URL → host port path
  local rest=${1#http://}
  local hostport=${rest%%/*}
  echo "${hostport%:*} ${hostport##*:} /${rest#*/}"
}
request() {  # method url [body] → the response on stdout
  local host port path
  read -r host port path <<<"$(split "$2")"
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf '%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "$1" "$path" "$host:$port" "$RUNPOD_AI_API_KEY" "${#3}" "$3" >&3
  cat <&3
  exec 3<&-
}
trap 'exit 0' TERM INT
while true; do
  response=$(request GET "${RUNPOD_WEBHOOK_GET_JOB}&job_in_progress=0" "") || { sleep 0.2; continue; }
  id=$(grep -o '"id":"[^"]*"' <<<"$response" | head -n 1 | cut -d'"' -f4)
  [[ -z $id ]] && continue
  request POST "${RUNPOD_WEBHOOK_POST_OUTPUT//\$ID/$id}&isStream=false" '{"output": "ok"}' >/dev/null
done
