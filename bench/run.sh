#!/usr/bin/env bash
# Runs the comparison in docs/performance.md on this machine, in one go:
# deploybot's responder, the floor and Bolt for JavaScript, one after the
# other, each with the same load-tool sweep against the same Redis; then
# deploybot with workers for enqueue->pickup and enqueue->done; then plots.
#
#   bench/run.sh                 # results in bench/results/, plot in docs/
#   RATES=500,1000 DURATION=5s bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RATES=${RATES:-250,500,1000,2000,4000,0}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-16}
PIPELINE_RATES=${PIPELINE_RATES:-25,50,100}
OUT=${OUT:-bench/results}
PLOT=${PLOT:-docs/performance-ack.svg}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/15}
SLACK_SIGNING_SECRET=bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
export SLACK_SIGNING_SECRET

mkdir -p "$OUT" "$(dirname "$PLOT")"
bin=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$bin"' EXIT
go build -o "$bin/deploybot" ./cmd/deploybot
go build -o "$bin/floor" ./bench/floor
(cd bench/bolt && npm ci --silent --no-audit --no-fund)

up() { # url: wait until it answers /healthz
  for _ in $(seq 100); do curl -fs "$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "bench: $1 did not come up" >&2; return 1
}

measure() { # label url pid extra-flags...
  local label=$1 url=$2 pid=$3; shift 3
  up "$url"
  sleep 2 # let it settle before the idle memory reading
  "$bin/deploybot" loadtest -target "$url" -pid "$pid" -rate "$RATES" -duration "$DURATION" -conns "$CONNS" \
    -label "$label" -json "$OUT/$label.json" "$@" | tee "$OUT/$label.txt"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "== deploybot responder (no workers), $(go version)"
"$bin/deploybot" loadtest -serve -workers 0 -listen 127.0.0.1:8089 >/dev/null &
measure deploybot http://127.0.0.1:8089 $! -drain 0

echo "== floor: signature check and one XADD"
"$bin/floor" -listen 127.0.0.1:8090 &
measure floor http://127.0.0.1:8090 $! -drain 0

echo "== Bolt for JavaScript $(node -p 'require("./bench/bolt/node_modules/@slack/bolt/package.json").version'), Node $(node --version)"
(cd bench/bolt && PORT=8091 exec node app.js) &
measure bolt http://127.0.0.1:8091 $! -drain 0

echo "== deploybot with 8 workers and the simulated backends"
"$bin/deploybot" loadtest -serve -workers 8 -listen 127.0.0.1:8088 >/dev/null &
RATES=$PIPELINE_RATES measure pipeline http://127.0.0.1:8088 $! -drain 2m

redis-cli -u "$REDIS_URL" DEL '{bench}:floor:jobs' '{bench}:bolt:jobs' >/dev/null
"$bin/deploybot" loadtest -from "$OUT/deploybot.json,$OUT/floor.json,$OUT/bolt.json" -plot "$PLOT"
echo "bench: results in $OUT, plot in $PLOT"
