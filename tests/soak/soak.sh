#!/bin/sh
# tests/soak/soak.sh: the fault soak (issue 12 part 6; README, "Fault soak").
#
# Everything on 127.0.0.1 and of its own, so that it can be restarted and
# paused without disturbing other tests: a Kafka broker (tests/scripts/
# kafka.sh), a redis-server that keeps its data across a restart (an RDB
# file written by SHUTDOWN SAVE, as a production Redis would persist it),
# three pw-receivers (healthy and period targets, a slow one, a failing and
# flapping one) and three replicas of the service in one consumer group.
#
# For PW_SOAK_SECONDS a producer writes PW_SOAK_RATE events a second of all
# eight published types for four companies, an operator loop re-enables
# webhooks the failure rule disabled (so disables keep happening) and
# flips the flapping target between 200, 503 and dropped connections, a
# sampler records every replica's VmRSS and Redis' used_memory each second,
# and faults are injected on a schedule (kill -9 and restart of a replica,
# SIGTERM under load and restart, Redis paused longer than the retry lease,
# Redis restarted, the broker paused and restarted, an invalid ~1 MB message).
# Then the soak stops producing, waits until the service has finished
# (lag 0, no retry or notice pending) and runs analyze.sh, which checks the
# guarantees from outside and writes the figures (soak.json).
#
# Environment: PW_BIN, PW_RECEIVER, PW_KAFKA_ADMIN, PW_SCRIPTS (CTest sets
# them; by default those of build/); PW_SOAK_DIR (work directory, emptied
# first; default build/soak); PW_SOAK_SECONDS
# (default 120); PW_SOAK_RATE (events a second, default 8);
# PW_SOAK_FAULT_EVERY (seconds between faults; default: the seven faults
# of the schedule spread over the run, at least 10 s apart); PW_SOAK_SCHEDULE
# (fault names, injected in turn and repeated; default kill9 redis_pause
# permanent broker_pause sigterm redis_restart broker_restart).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
: "${PW_BIN:=$ROOT/build/promo-webhooks}" "${PW_RECEIVER:=$ROOT/build/tests/pw-receiver}"
: "${PW_KAFKA_ADMIN:=$ROOT/build/tests/pw-kafka-admin}" "${PW_SCRIPTS:=$ROOT/tests/scripts}"
export PW_KAFKA_ADMIN
W=${PW_SOAK_DIR:-$ROOT/build/soak}
DURATION=${PW_SOAK_SECONDS:-120}
RATE=${PW_SOAK_RATE:-8}

COMPANIES="c1 c2 c3 c4"
REPLICAS="a b c"
TOPIC=soak.events
GROUP=soak
TOKEN=soak-admin-token
THRESHOLD=3
WINDOW_S=600
LEASE_MS=2000
REDIS_PAUSE_S=6
BROKER_PAUSE_S=10
SLOW_MS=1500
MAX_IN_FLIGHT=100
PREFETCH_KB=16384
FETCH_MAX=8388608
BIG=1040000
# Redis' bound, stated in the README: the soak's data set stays far below.
REDIS_BOUND_BYTES=$((64 * 1024 * 1024))

case $W in
/ | "$ROOT" | "$ROOT/")
	echo "soak: PW_SOAK_DIR=$W would be emptied: give a directory of its own" >&2
	exit 2
	;;
esac
rm -rf "$W"
mkdir -p "$W/svc" "$W/recv"
: >"$W/faults.tsv"
: >"$W/disables.tsv"
: >"$W/samples.tsv"
: >"$W/hooks.tsv"

now_ms() {
	date +%s%3N
}

log() {
	echo "soak $(date -u +%H:%M:%S) $*" >&2
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# wait_for SECONDS DESCRIPTION CMD... (tests/scripts/wait.sh)
. "$PW_SCRIPTS/wait.sh"

LOOPS=""
cleanup() {
	set +e
	touch "$W/stop"
	[ -f "$W/redis/redis.pid" ] && kill -CONT "$(cat "$W/redis/redis.pid")" 2>/dev/null
	[ -f "$W/kafka/kafka.pid" ] && kill -CONT "$(cat "$W/kafka/kafka.pid")" 2>/dev/null
	for r in $REPLICAS; do
		[ -f "$W/svc/$r.pid" ] && kill -TERM "$(cat "$W/svc/$r.pid")" 2>/dev/null
	done
	for p in $LOOPS $RECV_PIDS; do
		kill "$p" 2>/dev/null
	done
	for r in $REPLICAS; do
		[ -f "$W/svc/$r.pid" ] && wait "$(cat "$W/svc/$r.pid")" 2>/dev/null
	done
	for p in $LOOPS $RECV_PIDS; do
		wait "$p" 2>/dev/null
	done
	sh "$PW_SCRIPTS/kafka.sh" stop "$W/kafka" 2>/dev/null
	sh "$PW_SCRIPTS/redis.sh" stop "$W/redis" 2>/dev/null
}
RECV_PIDS=""
trap cleanup EXIT
trap 'exit 1' INT TERM

# ------------------------------------------------------------ components

log "starting Kafka and Redis in $W"
sh "$PW_SCRIPTS/kafka.sh" start "$W/kafka"
. "$W/kafka/kafka.env"
sh "$PW_SCRIPTS/redis.sh" start "$W/redis"
. "$W/redis/redis.env"
BOOT=$KAFKA_BOOTSTRAP
"$PW_KAFKA_ADMIN" -b "$BOOT" create "$TOPIC:6" "$TOPIC.dead-letter:1" "$TOPIC.email:1" >/dev/null

rcli() {
	timeout 5 redis-cli -p "$REDIS_PORT" "$@"
}

# start_receiver NAME ARGS...: sets RECV_PORT.
start_receiver() {
	name=$1
	shift
	"$PW_RECEIVER" --listen 127.0.0.1:0 --record "$W/recv/$name.jsonl" \
		--port-file "$W/recv/$name.port" "$@" 2>"$W/recv/$name.err" &
	RECV_PIDS="$RECV_PIDS $!"
	wait_for 10 "receiver $name" test -s "$W/recv/$name.port"
	RECV_PORT=$(cat "$W/recv/$name.port")
}
start_receiver main
MAIN=http://127.0.0.1:$RECV_PORT
start_receiver slow --rule "*=200,delay_ms=$SLOW_MS"
SLOW=http://127.0.0.1:$RECV_PORT
start_receiver bad --rule "/f=500"
BAD_PORT=$RECV_PORT
BAD=http://127.0.0.1:$RECV_PORT

export PROMO_WEBHOOKS_KAFKA_BROKERS="$BOOT"
export PROMO_WEBHOOKS_KAFKA_GROUP=$GROUP
export PROMO_WEBHOOKS_EVENT_TOPICS=$TOPIC
export PROMO_WEBHOOKS_DEAD_LETTER_TOPIC=$TOPIC.dead-letter
export PROMO_WEBHOOKS_EMAIL_TOPIC=$TOPIC.email
export PROMO_WEBHOOKS_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export PROMO_WEBHOOKS_HTTP_LISTEN=127.0.0.1:0
export PROMO_WEBHOOKS_ADMIN_TOKEN=$TOKEN
export PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS=1
export PROMO_WEBHOOKS_LOG_LEVEL=info
export PROMO_WEBHOOKS_FAILURE_THRESHOLD=$THRESHOLD
export PROMO_WEBHOOKS_FAILURE_WINDOW=$WINDOW_S
export PROMO_WEBHOOKS_RETRY_SCHEDULE=1,3
export PROMO_WEBHOOKS_RETRY_LEASE_MS=$LEASE_MS
export PROMO_WEBHOOKS_SHUTDOWN_GRACE_MS=5000
export PROMO_WEBHOOKS_MAX_IN_FLIGHT=$MAX_IN_FLIGHT
export PROMO_WEBHOOKS_RDKAFKA_QUEUED_MAX_MESSAGES_KBYTES=$PREFETCH_KB
export PROMO_WEBHOOKS_RDKAFKA_FETCH_MAX_BYTES=$FETCH_MAX
# A killed member is evicted after this, not after the 45 s default.
export PROMO_WEBHOOKS_RDKAFKA_SESSION_TIMEOUT_MS=6000
# The notice lease is this plus 30 s: a notice claimed by a replica that
# is then killed is published by another one a minute later (not 330 s).
export PROMO_WEBHOOKS_RDKAFKA_MESSAGE_TIMEOUT_MS=30000

# start_replica NAME: a new process of replica NAME (its log is
# svc/NAME.GENERATION.log); waits until it is ready.
start_replica() {
	r=$1
	gen=$(($(cat "$W/svc/$r.gen" 2>/dev/null || echo 0) + 1))
	echo "$gen" >"$W/svc/$r.gen"
	slog=$W/svc/$r.$gen.log
	: >"$slog"
	"$PW_BIN" 2>>"$slog" &
	echo "$!" >"$W/svc/$r.pid"
	wait_for 30 "replica $r to listen" grep -q '"promo-webhooks started"' "$slog"
	grep '"promo-webhooks started"' "$slog" | head -n 1 | jq -r .http_port >"$W/svc/$r.port"
	wait_for 90 "replica $r ready" replica_ready "$r"
}

replica_ready() {
	[ "$(curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(cat "$W/svc/$1.port")/readyz")" = 200 ]
}

# api METHOD PATH [BODY]: through the first replica that answers; leaves
# the body in $RESP and the status in HTTP_STATUS.
RESP=$W/resp
api() {
	HTTP_STATUS=000
	for r in $REPLICAS; do
		port=$(cat "$W/svc/$r.port" 2>/dev/null) || continue
		if [ $# -ge 3 ]; then
			HTTP_STATUS=$(curl -s -m 5 -o "$RESP.tmp" -w '%{http_code}' -X "$1" \
				-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
				--data-binary "$3" "http://127.0.0.1:$port$2") || HTTP_STATUS=000
		else
			HTTP_STATUS=$(curl -s -m 5 -o "$RESP.tmp" -w '%{http_code}' -X "$1" \
				-H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port$2") || HTTP_STATUS=000
		fi
		case $HTTP_STATUS in
		000 | 5??) ;;
		*) break ;;
		esac
	done
	mv -f "$RESP.tmp" "$RESP" 2>/dev/null || : >"$RESP"
}

log "starting replicas $REPLICAS"
for r in $REPLICAS; do
	start_replica "$r"
done

# hook COMPANY CLASS EVENT TARGET [PERIOD]: creates a webhook and notes it
# in hooks.tsv (id, company, event, class, target).
hook() {
	body=$(jq -cn --arg e "$3" --arg t "$4" '{event: $e, target: $t}')
	if [ $# -ge 5 ]; then
		body=$(echo "$body" | jq -c '. + {notificationPeriod: "Hours", notificationPeriodValue: 1}')
	fi
	api POST "/v1/companies/$1/webhooks" "$body"
	[ "$HTTP_STATUS" = 201 ] || fail "create webhook $1 $3: HTTP $HTTP_STATUS $(cat "$W/resp")"
	printf '%s\t%s\t%s\t%s\t%s\n' "$(jq -r .id "$W/resp")" "$1" "$3" "$2" "$4" >>"$W/hooks.tsv"
}

TYPES="AttributeValues.ImportCompleted CouponCodes.GenerateCompleted CouponCodes.ImportCompleted CouponCodes.ReservedActivated Product.ImportCompleted Promotion.Created Promotion.Deleted Promotion.Updated"
for c in $COMPANIES; do
	api PUT "/v1/companies/$c/settings" "{\"webhookDisabledNotificationEmail\":\"ops@$c.example\",\"webhookPayloadDataType\":\"Json\"}"
	[ "$HTTP_STATUS" = 200 ] || fail "settings of $c: HTTP $HTTP_STATUS"
	for t in $TYPES; do
		hook "$c" healthy "$t" "$MAIN/h/$c/$t"
	done
	hook "$c" slow Promotion.Updated "$SLOW/s/$c"
	hook "$c" slow CouponCodes.ImportCompleted "$SLOW/s/$c"
	hook "$c" failing Product.ImportCompleted "$BAD/f"
	hook "$c" flapping Promotion.Created "$BAD/flap"
	hook "$c" flapping AttributeValues.ImportCompleted "$BAD/flap"
	hook "$c" period Promotion.StartingInPeriod "$MAIN/p/$c" period
	hook "$c" period Promotion.EndingInPeriod "$MAIN/p/$c" period
done
NHOOKS=$(wc -l <"$W/hooks.tsv")
cache_full() {
	for r in $REPLICAS; do
		[ "$(curl -s -m 3 "http://127.0.0.1:$(cat "$W/svc/$r.port")/metrics" |
			awk '$1 == "promo_webhooks_registry_webhooks" { print $2 }')" = "$NHOOKS" ] || return 1
	done
}
wait_for 10 "every replica's cache to hold $NHOOKS webhooks" cache_full

cat >"$W/settings.env" <<EOF
TOPIC=$TOPIC
GROUP=$GROUP
THRESHOLD=$THRESHOLD
WINDOW_S=$WINDOW_S
MAX_IN_FLIGHT=$MAX_IN_FLIGHT
PREFETCH_KB=$PREFETCH_KB
FETCH_MAX=$FETCH_MAX
REDIS_BOUND_BYTES=$REDIS_BOUND_BYTES
DURATION=$DURATION
RATE=$RATE
REPLICAS="$REPLICAS"
EOF

# ------------------------------------------------------------ the loops

# The producer: RATE events a second, ids s-<n>, every event's data
# carrying its id (eventId) so that a receiver's record names its event.
# Promotion events use 20 promotion ids per company; Created and Updated
# give a start date 5 to 25 minutes ahead and an end date 5 to 15 minutes
# after it (within the period webhooks' hour, so their occurrences fire).
producer() {
	n=0
	while [ ! -f "$W/stop" ] && [ ! -f "$W/stop-producing" ]; do
		awk -v n0="$n" -v k="$RATE" -v now="$(date +%s)" -v seed="$n$$" -v types="$TYPES" -v comps="$COMPANIES" '
		function iso(t) { return strftime("%Y-%m-%dT%H:%M:%SZ", t, 1) }
		BEGIN {
			srand(seed); nt = split(types, T, " "); nc = split(comps, C, " ")
			for (i = 1; i <= k; i++) {
				id = "s-" (n0 + i); c = C[int(rand() * nc) + 1]; t = T[int(rand() * nt) + 1]
				at = strftime("%Y-%m-%dT%H:%M:%S", now, 1) sprintf(".%03dZ", i)
				if (t ~ /^Promotion\./) {
					p = c "-P" int(rand() * 20)
					if (t == "Promotion.Deleted")
						data = sprintf("{\"eventId\":\"%s\",\"promotionId\":\"%s\"}", id, p)
					else {
						s = now + 300 + int(rand() * 1200); e = s + 300 + int(rand() * 600)
						data = sprintf("{\"eventId\":\"%s\",\"promotionId\":\"%s\",\"name\":\"soak %s\",\"startDate\":\"%s\",\"endDate\":\"%s\"}", id, p, id, iso(s), iso(e))
					}
				} else
					data = sprintf("{\"eventId\":\"%s\",\"importId\":\"%s\",\"rows\":%d}", id, id, int(rand() * 10000))
				printf "%s|{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":\"/promo/soak\",\"type\":\"%s\",\"time\":\"%s\",\"companyid\":\"%s\",\"data\":%s}\n", c, id, t, at, c, data
			}
		}' >"$W/batch.in"
		kcat -P -q -b "$BOOT" -t "$TOPIC" -K '|' <"$W/batch.in" 2>>"$W/producer.err" || true
		n=$((n + RATE))
		sleep 1
	done
}

# The sampler: "ms rss <replica> <kB>" and "ms redis used_memory <bytes>".
sampler() {
	while [ ! -f "$W/stop" ]; do
		t=$(now_ms)
		for r in $REPLICAS; do
			pid=$(cat "$W/svc/$r.pid" 2>/dev/null) || continue
			v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || continue
			[ -n "$v" ] && echo "$t rss $r $v"
		done
		v=$(timeout 2 redis-cli -p "$REDIS_PORT" info memory 2>/dev/null | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }') || v=""
		[ -n "$v" ] && echo "$t redis used_memory $v"
		sleep 1
	done >>"$W/samples.tsv"
}

# The operator: flips the flapping target every 6 s (200, 503, 200, a
# dropped connection), notes every disable it sees through the API
# (disables.tsv: "disabled ID DISABLED_AT SEEN_MS") and re-enables a
# failing or flapping webhook 5 s after seeing it disabled ("enabled ID
# DISABLED_AT MS"), until stop-producing.
operator() {
	RESP=$W/op.resp
	phase=-1
	while [ ! -f "$W/stop" ] && [ ! -f "$W/stop-producing" ]; do
		p=$(($(date +%s) / 6 % 4))
		if [ "$p" != "$phase" ]; then
			phase=$p
			case $p in
			1) q='status=503' ;;
			3) q='drop=1' ;;
			*) q='status=200' ;;
			esac
			curl -s -m 3 -X PUT "http://127.0.0.1:$BAD_PORT/_control?path=/flap&$q" >/dev/null || true
		fi
		for c in $COMPANIES; do
			api GET "/v1/companies/$c/webhooks"
			[ "$HTTP_STATUS" = 200 ] || continue
			jq -r '.items[] | select(.enabled == false) | "\(.id) \(.disabledAt)"' "$RESP" >"$W/op.disabled" 2>/dev/null || continue
			while read -r id at; do
				grep -q "^disabled $id $at " "$W/disables.tsv" || echo "disabled $id $at $(now_ms)" >>"$W/disables.tsv"
				seen=$(awk -v i="$id" -v a="$at" '$1 == "disabled" && $2 == i && $3 == a { print $4; exit }' "$W/disables.tsv")
				[ $(($(now_ms) - seen)) -ge 5000 ] || continue
				grep -q -E "^$id	$c	[^	]*	(failing|flapping)	" "$W/hooks.tsv" || continue
				api PATCH "/v1/companies/$c/webhooks/$id" '{"enabled":true}'
				[ "$HTTP_STATUS" = 200 ] && echo "enabled $id $at $(now_ms)" >>"$W/disables.tsv"
			done <"$W/op.disabled"
		done
		sleep 1
	done
}

producer &
LOOPS="$LOOPS $!"
PRODUCER=$!
sampler &
LOOPS="$LOOPS $!"
SAMPLER=$!
operator &
LOOPS="$LOOPS $!"
OPERATOR=$!

# ------------------------------------------------------------ the faults

fault_begin() {
	FAULT_T0=$(now_ms)
	log "fault: $*"
}
# fault_end KIND DETAIL: faults.tsv "KIND START_MS END_MS DETAIL".
fault_end() {
	printf '%s\t%s\t%s\t%s\n' "$1" "$FAULT_T0" "$(now_ms)" "$2" >>"$W/faults.tsv"
}

pick=0
next_replica() {
	set -- $REPLICAS
	shift $((pick % $#))
	pick=$((pick + 1))
	VICTIM=$1
}

fault_kill9() {
	next_replica
	fault_begin "kill -9 replica $VICTIM"
	pid=$(cat "$W/svc/$VICTIM.pid")
	kill -KILL "$pid"
	rc=0
	wait "$pid" 2>/dev/null || rc=$?
	start_replica "$VICTIM"
	fault_end kill9 "$VICTIM exit=$rc"
}

fault_sigterm() {
	next_replica
	fault_begin "SIGTERM replica $VICTIM under load"
	pid=$(cat "$W/svc/$VICTIM.pid")
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	start_replica "$VICTIM"
	fault_end sigterm "$VICTIM exit=$rc"
}

fault_redis_pause() {
	fault_begin "Redis paused ${REDIS_PAUSE_S}s (lease ${LEASE_MS} ms)"
	rpid=$(cat "$W/redis/redis.pid")
	kill -STOP "$rpid"
	sleep "$REDIS_PAUSE_S"
	kill -CONT "$rpid"
	fault_end redis_pause "${REDIS_PAUSE_S}s"
}

fault_redis_restart() {
	fault_begin "Redis restarted (SHUTDOWN SAVE, started again on its port)"
	rcli shutdown save >/dev/null 2>&1 || true
	sh "$PW_SCRIPTS/redis.sh" restart-same-port "$W/redis" 2>>"$W/faults.err"
	# The restart is not lost data: the webhooks are still there.
	[ "$(rcli hlen '{pw}:webhooks')" = "$NHOOKS" ] || fail "Redis came back without its data"
	fault_end redis_restart ""
}

fault_broker_pause() {
	fault_begin "broker paused ${BROKER_PAUSE_S}s"
	kpid=$(cat "$W/kafka/kafka.pid")
	kill -STOP "$kpid"
	sleep "$BROKER_PAUSE_S"
	kill -CONT "$kpid"
	fault_end broker_pause "${BROKER_PAUSE_S}s"
}

fault_broker_restart() {
	fault_begin "broker restarted"
	sh "$PW_SCRIPTS/kafka.sh" restart "$W/kafka" 2>>"$W/faults.err"
	fault_end broker_restart ""
}

perm=0
fault_permanent() {
	perm=$((perm + 1))
	fault_begin "permanent errors: an invalid ~1 MB message and a small one"
	head -c "$BIG" /dev/zero | tr '\0' 'x' >"$W/big.value"
	kcat -P -q -b "$BOOT" -t "$TOPIC" -k "perm-big-$perm" -X message.max.bytes=2000000 "$W/big.value" ||
		fail "kcat could not produce the ~1 MB message"
	printf 'perm-small-%s|not an event at all\n' "$perm" |
		kcat -P -q -b "$BOOT" -t "$TOPIC" -K '|' || fail "kcat could not produce the invalid message"
	fault_end permanent "perm-big-$perm perm-small-$perm"
}

SCHEDULE=${PW_SOAK_SCHEDULE:-"kill9 redis_pause permanent broker_pause sigterm redis_restart broker_restart"}
EVERY=${PW_SOAK_FAULT_EVERY:-$((DURATION / 8))}
[ "$EVERY" -ge 10 ] || EVERY=10
T0=$(date +%s)
END=$((T0 + DURATION))
log "load for ${DURATION}s at $RATE events/s, a fault every ${EVERY}s: $SCHEDULE ..."
i=0
while :; do
	next=$((T0 + (i + 1) * EVERY))
	[ "$next" -lt "$END" ] || break
	while [ "$(date +%s)" -lt "$next" ]; do
		sleep 0.5
	done
	set -- $SCHEDULE
	shift $((i % $#))
	"fault_$1"
	i=$((i + 1))
done
while [ "$(date +%s)" -lt "$END" ]; do
	sleep 0.5
done

# ------------------------------------------------------------ the drain

log "load over: stopping the producer and the operator"
touch "$W/stop-producing"
wait "$PRODUCER" "$OPERATOR" || true
# The flapping target answers 200 from now on: its last retries end.
curl -s -m 3 -X PUT "http://127.0.0.1:$BAD_PORT/_control?path=/flap&status=200" >/dev/null

settled() {
	"$PW_KAFKA_ADMIN" -b "$BOOT" group-offsets "$GROUP" "$TOPIC" >"$W/offsets" 2>/dev/null || return 1
	[ -s "$W/offsets" ] || return 1
	awk '$3 != 0 && $2 != $3 { bad = 1 } END { exit bad }' "$W/offsets" || return 1
	[ "$(rcli zcard '{pw}:retries')" = 0 ] && [ "$(rcli zcard '{pw}:outbox')" = 0 ]
}
# Settled three times in a row, a second apart (a period occurrence is
# claimed on the scheduler's tick and then queued as a retry).
stable=0
deadline=$(($(date +%s) + 240))
while [ "$stable" -lt 3 ]; do
	if [ "$(date +%s)" -ge "$deadline" ]; then
		{
			echo "retries:"; rcli zrange '{pw}:retries' 0 -1 withscores
			echo "retry jobs:"; rcli hgetall '{pw}:retry-jobs'
			echo "retry claims:"; rcli hgetall '{pw}:retry-claims'
			echo "outbox:"; rcli zrange '{pw}:outbox' 0 -1 withscores
		} >"$W/stuck.txt" 2>&1
		fail "the service did not finish within 240 s of the load's end (offsets: $(tr '\n' ' ' <"$W/offsets" 2>/dev/null); retries $(rcli zcard '{pw}:retries'), outbox $(rcli zcard '{pw}:outbox'); $W/stuck.txt)"
	fi
	if settled; then stable=$((stable + 1)); else stable=0; fi
	sleep 1
done
log "settled: lag 0, no retry, no notice pending"

# The final state, from outside: webhooks, metrics, failure windows, topics.
: >"$W/final-hooks.jsonl"
for c in $COMPANIES; do
	api GET "/v1/companies/$c/webhooks"
	[ "$HTTP_STATUS" = 200 ] || fail "final webhook list of $c: HTTP $HTTP_STATUS"
	jq -c '.items[]' "$W/resp" >>"$W/final-hooks.jsonl"
done
for r in $REPLICAS; do
	curl -s -m 5 "http://127.0.0.1:$(cat "$W/svc/$r.port")/metrics" >"$W/svc/$r.metrics" || true
done
cut -f1 "$W/hooks.tsv" | while read -r id; do
	rcli zrange "{pw}:failures:$id" 0 -1 | sed "s/^/$id	/"
done >"$W/final-failures.tsv"
rcli info memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print "'"$(now_ms)"' redis used_memory " $2 }' >>"$W/samples.tsv"
cp "$W/offsets" "$W/final-offsets"
kcat -C -q -b "$BOOT" -t "$TOPIC" -e -J >"$W/events.json"
kcat -C -q -b "$BOOT" -t "$TOPIC.email" -e -J >"$W/notices.json"
kcat -C -q -b "$BOOT" -t "$TOPIC.dead-letter" -e -J >"$W/dead-letters.json"

log "stopping the replicas (SIGTERM, each must exit 0)"
for r in $REPLICAS; do
	pid=$(cat "$W/svc/$r.pid")
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	printf 'final_stop\t%s\t%s\t%s exit=%s\n' "$(now_ms)" "$(now_ms)" "$r" "$rc" >>"$W/faults.tsv"
	rm -f "$W/svc/$r.pid"
done
touch "$W/stop"
wait "$SAMPLER" || true

sh "$HERE/analyze.sh" "$W"
