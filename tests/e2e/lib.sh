# lib.sh: shared steps of the end-to-end tests (sourced, POSIX sh).
#
# The CTest fixtures have started Kafka and Redis and exported
# KAFKA_BOOTSTRAP and REDIS_PORT; CTest sets PW_BIN, PW_RECEIVER,
# PW_KAFKA_ADMIN, PW_SCRIPTS and PW_TEST_TMP. Every wait below polls a
# condition with a deadline; none sleeps in place of a condition.

set -eu

: "${KAFKA_BOOTSTRAP:?the kafka fixture did not run}"
: "${REDIS_PORT:?the redis fixture did not run}"
: "${PW_BIN:?}" "${PW_RECEIVER:?}" "${PW_KAFKA_ADMIN:?}" "${PW_TEST_TMP:?}"

TOKEN=test-admin-token
rm -rf "$PW_TEST_TMP"
mkdir -p "$PW_TEST_TMP"
T=$PW_TEST_TMP
PIDS=""

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

info() {
	echo "--- $*" >&2
}

cleanup() {
	for pid in $PIDS; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $PIDS; do
		wait "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT INT TERM

# wait_for SECONDS DESCRIPTION CMD...: polls CMD every 0.1 s until it
# succeeds, or fails the test after SECONDS.
wait_for() {
	limit=$1
	what=$2
	shift 2
	deadline=$(($(date +%s) + limit))
	while ! "$@"; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			fail "timed out after ${limit}s waiting for: $what"
		fi
		sleep 0.1
	done
}

# create_topics NAME:PARTITIONS...
create_topics() {
	"$PW_KAFKA_ADMIN" -b "$KAFKA_BOOTSTRAP" create "$@" >/dev/null
}

# start_receiver NAME [RECEIVER ARGS...]: starts pw-receiver; sets
# RECV_PORT, RECV_LOG.
start_receiver() {
	name=$1
	shift
	RECV_LOG=$T/$name.jsonl
	: >"$RECV_LOG"
	rm -f "$T/$name.port"
	"$PW_RECEIVER" --listen 127.0.0.1:0 --record "$RECV_LOG" \
		--port-file "$T/$name.port" "$@" 2>"$T/$name.err" &
	PIDS="$PIDS $!"
	wait_for 10 "receiver $name listening" test -s "$T/$name.port"
	RECV_PORT=$(cat "$T/$name.port")
}

# service_env: the environment every service instance of a test shares;
# tests set TOPIC, GROUP, REDIS_DB first.
service_env() {
	export PROMO_WEBHOOKS_KAFKA_BROKERS="$KAFKA_BOOTSTRAP"
	export PROMO_WEBHOOKS_KAFKA_GROUP="$GROUP"
	export PROMO_WEBHOOKS_EVENT_TOPICS="$TOPIC"
	export PROMO_WEBHOOKS_DEAD_LETTER_TOPIC="$TOPIC.dead-letter"
	export PROMO_WEBHOOKS_EMAIL_TOPIC="$TOPIC.email"
	export PROMO_WEBHOOKS_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/$REDIS_DB"
	export PROMO_WEBHOOKS_HTTP_LISTEN=127.0.0.1:0
	export PROMO_WEBHOOKS_ADMIN_TOKEN=$TOKEN
	export PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS=1
	export PROMO_WEBHOOKS_LOG_LEVEL=info
	# A killed member is evicted after this, not after the 45 s default.
	export PROMO_WEBHOOKS_RDKAFKA_SESSION_TIMEOUT_MS=6000
}

# start_service NAME: starts one service instance; sets SVC_PID, API.
start_service() {
	SVC_LOG=$T/$1.log
	"$PW_BIN" 2>>"$SVC_LOG" &
	SVC_PID=$!
	PIDS="$PIDS $SVC_PID"
	wait_for 20 "service $1 to listen" grep -q '"promo-webhooks started"' "$SVC_LOG"
	port=$(grep '"promo-webhooks started"' "$SVC_LOG" | tail -n 1 | jq -r .http_port)
	API=http://127.0.0.1:$port
	wait_for 60 "service $1 ready" ready_ok
}

ready_ok() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$API/readyz")" = 200 ]
}

# api METHOD PATH [BODY]: calls the admin API; sets HTTP_STATUS and leaves
# the response body in $T/resp (no command substitution, so that the
# status survives in this shell).
api() {
	if [ $# -ge 3 ]; then
		HTTP_STATUS=$(curl -s -o "$T/resp" -w '%{http_code}' -X "$1" \
			-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
			--data-binary "$3" "$API$2")
	else
		HTTP_STATUS=$(curl -s -o "$T/resp" -w '%{http_code}' -X "$1" \
			-H "Authorization: Bearer $TOKEN" "$API$2")
	fi
}

# create_webhook COMPANY EVENT TARGET [ENABLED]: creates a webhook and sets
# HOOK_ID.
create_webhook() {
	enabled=${4:-true}
	body=$(jq -cn --arg e "$2" --arg t "$3" --argjson en "$enabled" \
		'{event: $e, target: $t, enabled: $en}')
	api POST "/v1/companies/$1/webhooks" "$body"
	[ "$HTTP_STATUS" = 201 ] || fail "create webhook $1 $2: HTTP $HTTP_STATUS $(cat "$T/resp")"
	HOOK_ID=$(jq -r .id "$T/resp")
}

# metric NAME: the value of an unlabelled metric of the running service.
metric() {
	curl -s "$API/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

# produce_lines FILE: produces "key|value" lines to $TOPIC.
produce_lines() {
	kcat -P -q -b "$KAFKA_BOOTSTRAP" -t "$TOPIC" -K '|' <"$1"
}

# all_committed: every partition of $TOPIC has its committed offset of
# $GROUP at the high watermark (every event has its outcome recorded).
all_committed() {
	"$PW_KAFKA_ADMIN" -b "$KAFKA_BOOTSTRAP" group-offsets "$GROUP" "$TOPIC" >"$T/offsets" 2>/dev/null || return 1
	[ -s "$T/offsets" ] || return 1
	awk '$3 != 0 && $2 != $3 { bad = 1 } END { exit bad }' "$T/offsets"
}

# recorded [PATH]: how many requests the receiver recorded (for PATH).
recorded() {
	if [ $# -ge 1 ]; then
		jq -c --arg p "$1" 'select(.path == $p)' "$RECV_LOG" | wc -l
	else
		wc -l <"$RECV_LOG"
	fi
}

# stop_service: SIGTERM and wait; fails the test unless the exit is 0.
stop_service() {
	kill -TERM "$SVC_PID"
	if ! wait "$SVC_PID"; then
		fail "service exited non-zero after SIGTERM (log: $SVC_LOG)"
	fi
}
