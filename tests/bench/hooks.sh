#!/bin/sh
# tests/bench/hooks.sh: webhook writes at scale (issue 14 part 3). Not part
# of the CTest run.
#
#   sh tests/bench/hooks.sh                      100,000 webhooks
#   PW_BENCH_HOOKS=15000 sh tests/bench/hooks.sh fewer
#
# Starts Redis and Kafka (tests/scripts) and two replicas of the service:
# A takes the admin API calls, B only follows the change feed as every
# other replica does. pw-bench-hooks creates PW_BENCH_HOOKS webhooks
# through A with PW_BENCH_CLIENTS clients in parallel (4) over
# PW_BENCH_COMPANIES companies (10,000), and prints webhooks/s overall and
# per tenth of the run, and the CPU of A, B and Redis meanwhile. Then:
#   - both replicas' caches must hold every webhook (the metric
#     promo_webhooks_registry_webhooks);
#   - one more write at that size: the time until B's cache shows it;
#   - the safety net, a full load at that size: a third replica started on
#     the data, the time and CPU until its "webhook cache loaded" line.
# PW_BIN picks the service binary (default build/promo-webhooks), so the
# same script measures another tree's build ("before"); the tools come from
# PW_BUILD (default build/).
set -eu

root=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)
build=${PW_BUILD:-$root/build}
bin=${PW_BIN:-$build/promo-webhooks}
N=${PW_BENCH_HOOKS:-100000}
CLIENTS=${PW_BENCH_CLIENTS:-4}
COMPANIES=${PW_BENCH_COMPANIES:-10000}
TOKEN=bench-admin-token
T=$(mktemp -d /tmp/pw-bench-hooks.XXXXXX)
PIDS=""

say() { echo "== $*" >&2; }
fail() {
	echo "hooks.sh: $*" >&2
	exit 1
}
cleanup() {
	[ -n "${PW_BENCH_KEEP_LOGS:-}" ] && cp "$T"/*.log "$PW_BENCH_KEEP_LOGS"/ 2>/dev/null
	for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
	for pid in $PIDS; do wait "$pid" 2>/dev/null || true; done
	sh "$root/tests/scripts/kafka.sh" stop "$T/kafka" >/dev/null 2>&1 || true
	sh "$root/tests/scripts/redis.sh" stop "$T/redis" >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

. "$root/tests/scripts/wait.sh"
now_ms() { date +%s%3N; }
cpu_s() { # PID: utime + stime in seconds
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); split($0, f, " "); printf "%.2f", (f[12] + f[13]) / hz }' "/proc/$1/stat"
}

[ -x "$bin" ] || fail "no service binary at $bin"
[ -x "$build/tests/bench/pw-bench-hooks" ] || fail "build pw-bench-hooks first (cmake --build $build)"

say "starting Redis and Kafka in $T"
sh "$root/tests/scripts/redis.sh" start "$T/redis" 2>"$T/redis.start.log" || fail "redis: $(cat "$T/redis.start.log")"
PW_KAFKA_ADMIN="$build/tests/pw-kafka-admin" sh "$root/tests/scripts/kafka.sh" start "$T/kafka" \
	2>"$T/kafka.start.log" || fail "kafka: $(cat "$T/kafka.start.log")"
. "$T/redis/redis.env"
. "$T/kafka/kafka.env"
REDIS_PID=$(cat "$T/redis/redis.pid")
PW_KAFKA_ADMIN="$build/tests/pw-kafka-admin" sh "$root/tests/scripts/kafka.sh" create-topics "$T/kafka" \
	hooks.events:1 hooks.dead-letter:1 hooks.email:1 >/dev/null 2>"$T/topics.log" ||
	fail "topics: $(cat "$T/topics.log")"

export PROMO_WEBHOOKS_KAFKA_BROKERS="$KAFKA_BOOTSTRAP"
export PROMO_WEBHOOKS_KAFKA_GROUP=bench-hooks
export PROMO_WEBHOOKS_EVENT_TOPICS=hooks.events
export PROMO_WEBHOOKS_DEAD_LETTER_TOPIC=hooks.dead-letter
export PROMO_WEBHOOKS_EMAIL_TOPIC=hooks.email
export PROMO_WEBHOOKS_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export PROMO_WEBHOOKS_HTTP_LISTEN=127.0.0.1:0
export PROMO_WEBHOOKS_ADMIN_TOKEN=$TOKEN
export PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS=1
export PROMO_WEBHOOKS_LOG_LEVEL=warn

# start_service NAME: sets SVC_PID and SVC_API (waits until it listens).
start_service() {
	PROMO_WEBHOOKS_LOG_LEVEL=${PW_BENCH_LOG_LEVEL:-info} "$bin" 2>"$T/$1.log" &
	SVC_PID=$!
	PIDS="$PIDS $SVC_PID"
	wait_for 30 "service $1 to listen" grep -q '"promo-webhooks started"' "$T/$1.log"
	SVC_API=http://127.0.0.1:$(grep '"promo-webhooks started"' "$T/$1.log" | jq -r .http_port)
}
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/readyz")" = 200 ]; }
cached() { # API: promo_webhooks_registry_webhooks
	curl -s "$1/metrics" | awk '$1 == "promo_webhooks_registry_webhooks" { print $2 }'
}
cached_is() { [ "$(cached "$1")" = "$2" ]; }

start_service a
A_PID=$SVC_PID A=$SVC_API
start_service b
B_PID=$SVC_PID B=$SVC_API
wait_for 60 "replica a ready" ready "$A"
wait_for 60 "replica b ready" ready "$B"

say "creating $N webhooks through replica a, $CLIENTS clients, $COMPANIES companies"
"$build/tests/bench/pw-bench-hooks" --api "$A" --token "$TOKEN" --count "$N" --clients "$CLIENTS" \
	--companies "$COMPANIES" --pid "replica-a=$A_PID" --pid "replica-b=$B_PID" --pid "redis=$REDIS_PID"
wait_for 120 "replica a's cache to hold $N webhooks" cached_is "$A" "$N"
wait_for 120 "replica b's cache to hold $N webhooks" cached_is "$B" "$N"
loads() { curl -s "$1/metrics" | awk '$1 == "promo_webhooks_registry_full_loads_total" { print $2 }'; }
echo "full loads of every webhook meanwhile: replica a $(loads "$A"), replica b $(loads "$B") (the first load included; empty on a build without the metric)"
say "both replicas hold $N webhooks; redis used_memory: $(redis-cli -p "$REDIS_PORT" info memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r') bytes"

say "one more write at $N webhooks"
t0=$(now_ms)
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
	-H 'Content-Type: application/json' \
	--data-binary '{"event":"CouponCodes.ImportCompleted","target":"http://127.0.0.1:9/one"}' \
	"$A/v1/companies/one-more/webhooks")
[ "$code" = 201 ] || fail "create: HTTP $code"
wait_for 30 "replica b to see it" cached_is "$B" $((N + 1))
echo "one write at $N webhooks: $(($(now_ms) - t0)) ms from the request to replica b's cache (metrics polled every 50 ms)"

say "the safety net: a full load of $((N + 1)) webhooks by a new replica"
t0=$(now_ms)
start_service c
C_PID=$SVC_PID
wait_for 120 "replica c's first load" grep -q '"webhook cache loaded"' "$T/c.log"
echo "full load of $((N + 1)) webhooks: $(($(now_ms) - t0)) ms from the start to 'webhook cache loaded', replica c's CPU $(cpu_s "$C_PID") s"
