#!/usr/bin/env bash
# smoke.sh checks a running bench target by hand: correctly signed requests
# get 200 and add exactly one stream entry each; a bad signature and an old
# timestamp get 401 and add nothing.
#
#   SLACK_SIGNING_SECRET=... bench/smoke.sh http://127.0.0.1:8091 '{bench}:bolt:jobs'
#   SLACK_SIGNING_SECRET=... bench/smoke.sh http://127.0.0.1:8090 '{bench}:floor:jobs'
#
# Needs curl, openssl, python3 and redis-cli; REDIS_URL defaults to db 15 on localhost.
set -euo pipefail

base=${1:?usage: smoke.sh BASE_URL STREAM}
stream=${2:?usage: smoke.sh BASE_URL STREAM}
secret=${SLACK_SIGNING_SECRET:?SLACK_SIGNING_SECRET is required}
redis_url=${REDIS_URL:-redis://127.0.0.1:6379/15}
fail=0

xlen() { redis-cli -u "$redis_url" XLEN "$stream"; }

# post PATH BODY SECRET TIMESTAMP WANT_STATUS WANT_NEW_ENTRIES
post() {
	local path=$1 body=$2 key=$3 ts=$4 want=$5 want_new=$6 sig before code after
	sig=v0=$(printf 'v0:%s:%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$key" -r | cut -d' ' -f1)
	before=$(xlen)
	code=$(curl -sS -o /tmp/smoke.$$.body -w '%{http_code}' -X POST "$base$path" \
		-H 'Content-Type: application/x-www-form-urlencoded' \
		-H "X-Slack-Request-Timestamp: $ts" -H "X-Slack-Signature: $sig" \
		--data-raw "$body")
	after=$(xlen)
	if [[ $code == "$want" && $((after - before)) == "$want_new" ]]; then
		echo "ok   $path status $code, +$((after - before)) entries: $(cat /tmp/smoke.$$.body)"
	else
		echo "FAIL $path status $code (want $want), +$((after - before)) entries (want +$want_new)"
		fail=1
	fi
	rm -f /tmp/smoke.$$.body
}

now=$(date +%s)
command='token=x&team_id=T1&user_id=U1&channel_id=C1&command=%2Fdeploy&text=build+api+main&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1%2F1%2Fx&trigger_id=1.2.3'
payload='{"type":"block_actions","user":{"id":"U2","team_id":"T1"},"team":{"id":"T1"},"api_app_id":"A1","token":"x","trigger_id":"1.2.4","response_url":"https://hooks.slack.com/actions/T1/1/x","actions":[{"type":"button","action_id":"retry","block_id":"b1","value":"job-1","action_ts":"1700000000.000100"}]}'
click="payload=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$payload")"

post /slack/commands "$command" "$secret" "$now" 200 1
post /slack/interactions "$click" "$secret" "$now" 200 1
post /slack/commands "$command" "not-the-secret" "$now" 401 0
post /slack/commands "$command" "$secret" $((now - 600)) 401 0
exit $fail
