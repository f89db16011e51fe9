#!/bin/sh
# Readiness follows Redis (issue 6), and nothing is lost while it is away.
#   /readyz 200 with Redis up; the fixture's Redis stopped: /readyz 503
#   ("redis": false) within a few seconds while /healthz stays 200.
#   Meanwhile 20 events for a webhook that answers 200 (all on partition 0)
#   are delivered and their offsets committed (the success path needs no
#   Redis), and 5 events for a webhook that answers 500 (partition 1) are
#   attempted but their offsets wait: a failure must be recorded in Redis
#   before the offset advances.
#   Redis back on the same port: /readyz 200 again, the 5 failures are
#   recorded (attempt log, failure set), every offset is committed, and
#   events produced afterwards are delivered too.
#
# This test stops the Redis that the CTest fixture shares with the other
# tests (they run serially). The EXIT trap starts it again on its port,
# whatever happens. Before stopping it, SAVE writes a snapshot into its
# data directory so that it comes back with its data, as a production Redis
# with persistence would (redis.sh runs it without persistence: an empty
# Redis would be a data loss, not an outage); the snapshot file is removed
# once Redis has loaded it.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.readiness.$$
GROUP=e2e-readiness-$$
REDIS_DB=10
TYPE=Product.ImportCompleted
REDIS_STATE=$PW_TEST_STATE/redis
REDIS_DOWN=0
RDB_FILE=

# redis_back: the fixture's Redis running again on its port, the snapshot
# removed.
redis_back() {
	if [ "$REDIS_DOWN" = 1 ]; then
		sh "$PW_SCRIPTS/redis.sh" restart-same-port "$REDIS_STATE" ||
			echo "FAIL: could not start the fixture's Redis again" >&2
		REDIS_DOWN=0
	fi
	if [ -n "$RDB_FILE" ]; then
		rm -f "$RDB_FILE"
	fi
}

on_exit() {
	cleanup
	redis_back
}
trap on_exit EXIT
trap 'exit 1' INT TERM

# readyz_is CODE [REDIS]: /readyz answers CODE (and its "redis" field is
# REDIS).
readyz_is() {
	[ "$(curl -s -o "$T/readyz" -w '%{http_code}' "$API/readyz")" = "$1" ] || return 1
	[ $# -lt 2 ] || jq -e --argjson r "$2" '.redis == $r' "$T/readyz" >/dev/null
}

healthz_ok() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$API/healthz")" = 200 ]
}

# partition_done P: partition P of $TOPIC has its committed offset at its
# high watermark.
partition_done() {
	"$PW_KAFKA_ADMIN" -b "$KAFKA_BOOTSTRAP" group-offsets "$GROUP" "$TOPIC" >"$T/offsets" 2>/dev/null || return 1
	awk -v p="$1" '$1 == p && $2 == $3 && $3 > 0 { f = 1 } END { exit !f }' "$T/offsets"
}

# produce_to PARTITION COMPANY PREFIX N: N events with ids PREFIX-1..N on
# one partition.
produce_to() {
	awk -v c="$2" -v pre="$3" -v n="$4" -v t=$TYPE 'BEGIN { for (i = 1; i <= n; i++)
		printf "%s|{\"specversion\":\"1.0\",\"id\":\"%s-%d\",\"source\":\"/promo\",\"type\":\"%s\",\"time\":\"2026-11-28T09:00:00Z\",\"companyid\":\"%s\",\"data\":{\"seq\":%d}}\n", c, pre, i, t, c, i }' |
		kcat -P -q -b "$KAFKA_BOOTSTRAP" -t "$TOPIC" -p "$1" -K '|'
}

distinct_ids() {
	jq -r --arg p "$1" 'select(.path == $p) | .headers["webhook-id"]' "$RECV_LOG" | sort -u | wc -l
}

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:2" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver recv --rule /ok=200 --rule /fail=500
service_env
# No retries, and no disabling: each failed event is exactly one attempt.
export PROMO_WEBHOOKS_RETRY_SCHEDULE=
export PROMO_WEBHOOKS_FAILURE_THRESHOLD=1000
start_service first
create_webhook acme $TYPE "http://127.0.0.1:$RECV_PORT/ok"
create_webhook globex $TYPE "http://127.0.0.1:$RECV_PORT/fail"
FAIL_ID=$HOOK_ID
wait_for 5 "the registry cache to hold 2 webhooks" metric_is promo_webhooks_registry_webhooks 2
readyz_is 200 true || fail "/readyz is not 200 with Redis up: $(cat "$T/readyz")"

info "stopping the fixture's Redis (port $REDIS_PORT)"
rdb_dir=$(redis-cli -p "$REDIS_PORT" config get dir | sed -n 2p)
rdb_name=$(redis-cli -p "$REDIS_PORT" config get dbfilename | sed -n 2p)
[ -n "$rdb_dir" ] && [ -n "$rdb_name" ] || fail "cannot read Redis' dir and dbfilename"
RDB_FILE=$rdb_dir/$rdb_name
[ "$(redis-cli -p "$REDIS_PORT" save)" = OK ] || fail "Redis SAVE failed"
REDIS_DOWN=1
sh "$PW_SCRIPTS/redis.sh" stop "$REDIS_STATE"
redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && fail "Redis still answers after redis.sh stop"
t0=$(date +%s%N)
wait_for 10 "/readyz 503 with redis false" readyz_is 503 false
info "/readyz 503 after $((($(date +%s%N) - t0) / 1000000)) ms: $(cat "$T/readyz")"
healthz_ok || fail "/healthz is not 200 while Redis is down"

info "events while Redis is down: 20 that succeed (partition 0), 5 that fail (partition 1)"
produce_to 0 acme ok 20
produce_to 1 globex fail 5
wait_for 30 "20 deliveries at /ok" recorded_at_least /ok 20
wait_for 30 "5 attempts at /fail" recorded_at_least /fail 5
wait_for 30 "partition 0 committed without Redis" partition_done 0
partition_done 1 && fail "partition 1 committed although its failures could not be recorded: $(cat "$T/offsets")"
healthz_ok || fail "/healthz is not 200 while Redis is down"
readyz_is 503 false || fail "/readyz is not 503 while Redis is down: $(cat "$T/readyz")"

info "starting Redis again on port $REDIS_PORT"
sh "$PW_SCRIPTS/redis.sh" restart-same-port "$REDIS_STATE"
REDIS_DOWN=0
rm -f "$RDB_FILE"
new_port=$(sed -n 's/^REDIS_PORT=//p' "$REDIS_STATE/redis.env")
[ "$new_port" = "$REDIS_PORT" ] || fail "Redis came back on port $new_port, not $REDIS_PORT"
t0=$(date +%s%N)
wait_for 30 "/readyz 200 again" readyz_is 200 true
info "/readyz 200 after $((($(date +%s%N) - t0) / 1000000)) ms"

wait_for 60 "all offsets of $GROUP committed" all_committed
zcard_is "{pw}:failures:$FAIL_ID" 5 ||
	fail "failure set of the 500 webhook has $(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" zcard "{pw}:failures:$FAIL_ID") entries, want 5"
api GET "/v1/companies/globex/webhooks/$FAIL_ID/attempts"
[ "$HTTP_STATUS" = 200 ] || fail "GET attempts: HTTP $HTTP_STATUS"
jq -e '(.items | length) == 5 and all(.items[]; .status == 500)
	and ([.items[].eventId] | sort) == ["fail-1", "fail-2", "fail-3", "fail-4", "fail-5"]' "$T/resp" >/dev/null ||
	fail "attempt log of the 500 webhook is not the 5 failures: $(cat "$T/resp")"

info "events after Redis is back"
produce_to 0 acme after 10
produce_to 1 globex after 2
wait_for 30 "30 deliveries at /ok" recorded_at_least /ok 30
wait_for 30 "7 attempts at /fail" recorded_at_least /fail 7
wait_for 60 "all offsets of $GROUP committed" all_committed

ok=$(distinct_ids /ok)
failed=$(distinct_ids /fail)
info "distinct webhook-ids: $ok at /ok, $failed at /fail"
[ "$ok" -eq 30 ] || fail "/ok got $ok distinct events, want 30"
[ "$failed" -eq 7 ] || fail "/fail got $failed distinct events, want 7"
healthz_ok || fail "/healthz is not 200"
stop_service
echo "PASS"
