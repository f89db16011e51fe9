#!/bin/sh
# tests/bench/capacity.sh: what each unit of work costs Redis, measured
# (issue 14 part 4; the figures of deploy/README.md's capacity plan). Not
# part of the CTest run; about three minutes.
#
#   sh tests/bench/capacity.sh           the default sizes
#   PW_CAP_SCALE=4 sh tests/bench/capacity.sh   four times the work per case
#
# Starts Redis and Kafka (tests/scripts), pw-receiver (--no-record) and one
# replica of the service (build/promo-webhooks, or PW_BIN), then drives
# each case and reads Redis' INFO commandstats, INFO cpu and used_memory
# before and after, less what the idle service costs over the same time
# (the version poll, retry and outbox claims, the scheduler's tick, the
# metrics' counts: measured first, for PW_CAP_IDLE_S seconds):
#
#   delivery    first attempts that succeed (events x webhooks)
#   failure     first attempts that fail (500): failure window, retry
#               scheduled, attempt log; the retries are due in an hour
#   retry       those retries, made due now, succeeding
#   promotion   Promotion.Created events, each a new promotion with start
#               and end dates, for a company with a period webhook
#   period      period webhooks created through the API, then the
#               scheduler's ticks over PW_CAP_TICK_S seconds
#
# Prints, per case, Redis commands per unit by command (a script's own
# commands are counted by Redis as well as the EVALSHA that ran them),
# Redis CPU per unit, used_memory per unit, and MEMORY USAGE of the keys
# the case leaves; then the deliveries per second one Redis core carries
# at 70% CPU, extrapolated from the delivery case. The other helpers'
# work changes these costs (success coalescing, promotion state): rerun
# on the commit you plan with, and note the commit (printed first).
set -eu

root=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)
build=${PW_BUILD:-$root/build}
bin=${PW_BIN:-$build/promo-webhooks}
SCALE=${PW_CAP_SCALE:-1}
EVENTS=$((1000 * SCALE))      # delivery: events, each to HOOKS webhooks
HOOKS=5
FAIL_EVENTS=$((200 * SCALE))  # failure, retry: events, each to FHOOKS webhooks
FHOOKS=10
PROMOS=$((2000 * SCALE))
PERIOD_HOOKS=$((2000 * SCALE))
IDLE_S=${PW_CAP_IDLE_S:-10}
TICK_S=${PW_CAP_TICK_S:-10}
TOKEN=cap-admin-token
T=$(mktemp -d /tmp/pw-capacity.XXXXXX)
PIDS=""

fail() {
	echo "capacity.sh: $*" >&2
	exit 1
}
say() { echo "== $*" >&2; }
cleanup() {
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
iso() { date -u -d "@$(($1 / 1000))" +%Y-%m-%dT%H:%M:%S.000Z; }

[ -x "$bin" ] || fail "no service binary at $bin"
for tool in tests/pw-receiver tests/pw-kafka-admin tests/bench/pw-bench-hooks; do
	[ -x "$build/$tool" ] || fail "build $tool first (cmake --build $build)"
done
echo "commit: $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- service include 2>/dev/null || echo ' (with uncommitted changes)')"
echo "machine: $(nproc) cpus, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), load $(cut -d' ' -f1-3 /proc/loadavg)"

say "starting Redis and Kafka in $T"
sh "$root/tests/scripts/redis.sh" start "$T/redis" 2>"$T/redis.start.log" || fail "redis: $(cat "$T/redis.start.log")"
PW_KAFKA_ADMIN="$build/tests/pw-kafka-admin" sh "$root/tests/scripts/kafka.sh" start "$T/kafka" \
	2>"$T/kafka.start.log" || fail "kafka: $(cat "$T/kafka.start.log")"
. "$T/redis/redis.env"
. "$T/kafka/kafka.env"
echo "redis: $(redis-server --version | cut -d' ' -f3)"
R="redis-cli -p $REDIS_PORT"
TOPIC=cap.events
PW_KAFKA_ADMIN="$build/tests/pw-kafka-admin" sh "$root/tests/scripts/kafka.sh" create-topics "$T/kafka" \
	"$TOPIC:4" cap.dead-letter:1 cap.email:1 >/dev/null 2>"$T/topics.log" ||
	fail "topics: $(cat "$T/topics.log")"

"$build/tests/pw-receiver" --listen 127.0.0.1:0 --no-record --port-file "$T/recv.port" 2>"$T/recv.err" &
PIDS="$PIDS $!"
wait_for 10 "the receiver" test -s "$T/recv.port"
RECV=http://127.0.0.1:$(cat "$T/recv.port")

export PROMO_WEBHOOKS_KAFKA_BROKERS="$KAFKA_BOOTSTRAP"
export PROMO_WEBHOOKS_KAFKA_GROUP=cap
export PROMO_WEBHOOKS_EVENT_TOPICS=$TOPIC
export PROMO_WEBHOOKS_DEAD_LETTER_TOPIC=cap.dead-letter
export PROMO_WEBHOOKS_EMAIL_TOPIC=cap.email
export PROMO_WEBHOOKS_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export PROMO_WEBHOOKS_HTTP_LISTEN=127.0.0.1:0
export PROMO_WEBHOOKS_ADMIN_TOKEN=$TOKEN
export PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS=1
export PROMO_WEBHOOKS_LOG_LEVEL=warn
# No webhook reaches the threshold; the first retry is an hour away.
export PROMO_WEBHOOKS_FAILURE_THRESHOLD=1000
export PROMO_WEBHOOKS_RETRY_SCHEDULE=3600
PROMO_WEBHOOKS_LOG_LEVEL=info "$bin" 2>"$T/svc.log" &
SVC_PID=$!
PIDS="$PIDS $SVC_PID"
wait_for 30 "the service to listen" grep -q '"promo-webhooks started"' "$T/svc.log"
API=http://127.0.0.1:$(grep '"promo-webhooks started"' "$T/svc.log" | jq -r .http_port)
wait_for 60 "the service ready" sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $API/readyz)\" = 200 ]"

metric() { curl -s "$API/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
settled() { # nothing in flight, every outcome recorded
	[ "$(metric promo_webhooks_events_in_flight)" = 0 ] &&
		[ "$(metric promo_webhooks_deliveries_in_flight)" = 0 ]
}
received() { curl -s "$RECV/_stats" | jq -r .requests; }
received_at_least() { [ "$(received)" -ge "$1" ]; }
hook() { # COMPANY EVENT TARGET [EXTRA JSON MEMBERS]
	code=$(curl -s -o "$T/resp" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
		-H 'Content-Type: application/json' \
		--data-binary "{\"event\":\"$2\",\"target\":\"$3\"${4:-}}" "$API/v1/companies/$1/webhooks")
	[ "$code" = 201 ] || fail "create webhook: HTTP $code $(cat "$T/resp")"
}

# snap NAME: INFO commandstats, cpu and used_memory into $T/NAME.
snap() {
	{
		echo "at_ms:$(now_ms)"
		$R info commandstats | tr -d '\r' | sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),.*/cmd_\1:\2/p'
		$R info cpu | tr -d '\r' | grep -E '^used_cpu_(sys|user):'
		$R info memory | tr -d '\r' | grep -E '^used_memory:'
	} >"$T/$1"
}
# rates FROM TO: per-second rates between two snaps (the idle baseline).
# report FROM TO UNITS WHAT: costs per unit, less the idle baseline.
report() {
	awk -F: -v units="$3" -v what="$4" -v idle="$T/idle.rates" -v from="$T/$1" '
		FILENAME == idle { base[$1] = $2; next }
		FILENAME == from { a[$1] = $2; next }
		{ b[$1] = $2 }
		END {
			secs = (b["at_ms"] - a["at_ms"]) / 1000
			total = 0; line = ""
			for (k in b) {
				if (k !~ /^cmd_/) continue
				d = b[k] - a[k] - base[k] * secs
				if (d / units < 0.005) continue
				total += d
				line = line sprintf(" %s=%.2f", substr(k, 5), d / units)
			}
			cpu = b["used_cpu_sys"] + b["used_cpu_user"] - a["used_cpu_sys"] - a["used_cpu_user"] - base["cpu"] * secs
			mem = b["used_memory"] - a["used_memory"]
			printf "%s: %d units in %.1f s\n", what, units, secs
			printf "  redis commands per unit: %.2f (%s )\n", total / units, line
			printf "  redis CPU per unit: %.1f us (per 1,000: %.1f ms)\n", cpu / units * 1e6, cpu / units * 1e6
			printf "  used_memory per unit: %.0f bytes\n", mem / units
			if (what == "delivery")
				printf "  => one Redis core at 70%% CPU: %.0f deliveries/s (extrapolated)\n", 0.7 / (cpu / units)
		}' "$T/idle.rates" "$T/$1" "$T/$2"
}
usage() { # KEY: MEMORY USAGE, 0 when absent
	v=$($R memory usage "$1" samples 0)
	echo "${v:-0}"
}

say "idle baseline over ${IDLE_S}s"
snap idle0
deadline=$(($(date +%s) + IDLE_S))
while [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.5; done
snap idle1
awk -F: 'FNR == NR { a[$1] = $2; next } { b[$1] = $2 }
	END {
		secs = (b["at_ms"] - a["at_ms"]) / 1000
		for (k in b) if (k ~ /^cmd_/) printf "%s:%.6f\n", k, (b[k] - a[k]) / secs
		printf "cpu:%.9f\n", (b["used_cpu_sys"] + b["used_cpu_user"] - a["used_cpu_sys"] - a["used_cpu_user"]) / secs
	}' "$T/idle0" "$T/idle1" >"$T/idle.rates"
printf 'idle service: %s Redis commands/s\n' "$(awk -F: '/^cmd_/ { s += $2 } END { printf "%.1f", s }' "$T/idle.rates")"

# produce FILE: "key|value" lines to the topic.
produce() { kcat -P -q -b "$KAFKA_BOOTSTRAP" -t "$TOPIC" -K '|' <"$1"; }
events() { # COMPANY TYPE PREFIX N
	i=1
	while [ "$i" -le "$4" ]; do
		printf '%s|{"specversion":"1.0","id":"%s-%d","source":"/cap","type":"%s","time":"2026-11-28T09:00:00Z","companyid":"%s","data":{"importId":"%s-%d","pad":"%0200d"}}\n' \
			"$1" "$3" "$i" "$2" "$1" "$3" "$i" 0
		i=$((i + 1))
	done
}

# ---- delivery
i=0
while [ "$i" -lt "$HOOKS" ]; do hook cap-ok CouponCodes.ImportCompleted "$RECV/ok$i"; i=$((i + 1)); done
events cap-ok CouponCodes.ImportCompleted ok "$EVENTS" >"$T/ok.in"
base=$(received)
snap d0
produce "$T/ok.in"
wait_for 300 "the deliveries" received_at_least $((base + EVENTS * HOOKS))
wait_for 60 "every outcome recorded" settled
snap d1
report d0 d1 $((EVENTS * HOOKS)) delivery
echo "  attempt log: $(usage "{pw}:attempts:$(curl -s -H "Authorization: Bearer $TOKEN" "$API/v1/companies/cap-ok/webhooks" | jq -r '.items[0].id')") bytes for one webhook's last 100 attempts (the cap: no growth past it)"

# ---- failure
i=0
while [ "$i" -lt "$FHOOKS" ]; do
	hook cap-fail CouponCodes.ImportCompleted "$RECV/fail$i"
	curl -sf -X PUT "$RECV/_control?path=/fail$i&status=500" >/dev/null
	i=$((i + 1))
done
events cap-fail CouponCodes.ImportCompleted fail "$FAIL_EVENTS" >"$T/fail.in"
base=$(received)
snap f0
produce "$T/fail.in"
wait_for 300 "the failed attempts" received_at_least $((base + FAIL_EVENTS * FHOOKS))
wait_for 60 "every outcome recorded" settled
wait_for 60 "every retry scheduled" sh -c "[ \"\$($R zcard '{pw}:retries')\" -ge $((FAIL_EVENTS * FHOOKS)) ]"
snap f1
report f0 f1 $((FAIL_EVENTS * FHOOKS)) failure
wid=$(curl -s -H "Authorization: Bearer $TOKEN" "$API/v1/companies/cap-fail/webhooks" | jq -r '.items[0].id')
echo "  keys: {pw}:failures:<id> $(usage "{pw}:failures:$wid") bytes for $($R zcard "{pw}:failures:$wid") failures (expires with the window);" \
	"{pw}:retry-jobs $(usage '{pw}:retry-jobs') and {pw}:retries $(usage '{pw}:retries') bytes for $($R zcard '{pw}:retries') retries"

# ---- retry: the same retries, due now, succeeding
i=0
while [ "$i" -lt "$FHOOKS" ]; do curl -sf -X PUT "$RECV/_control?path=/fail$i&status=200" >/dev/null; i=$((i + 1)); done
base=$(received)
snap r0
$R eval "for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do redis.call('ZADD', KEYS[1], 0, id) end return 1" 1 '{pw}:retries' >/dev/null
wait_for 300 "the retries" received_at_least $((base + FAIL_EVENTS * FHOOKS))
wait_for 60 "no retry pending" sh -c "[ \"\$($R zcard '{pw}:retries')\" = 0 ]"
wait_for 60 "every outcome recorded" settled
snap r1
# The script above (one EVAL, one ZRANGE, a ZADD per retry) is not the
# service's: counted into the starting snap.
awk -F: -v n=$((FAIL_EVENTS * FHOOKS)) 'BEGIN { OFS = ":" }
	$1 == "cmd_zadd" { $2 += n } $1 == "cmd_eval" || $1 == "cmd_zrange" { $2 += 1 } { print }' \
	"$T/r0" >"$T/r0.adj"
report r0.adj r1 $((FAIL_EVENTS * FHOOKS)) retry

# ---- promotion
hook cap-promo Promotion.StartingInPeriod "$RECV/period" ',"notificationPeriod":"Days","notificationPeriodValue":1'
now=$(now_ms)
s=$(iso $((now + 30 * 86400000)))
e=$(iso $((now + 60 * 86400000)))
i=1
while [ "$i" -le "$PROMOS" ]; do
	printf 'cap-promo|{"specversion":"1.0","id":"pc-%d","source":"/cap","type":"Promotion.Created","time":"2026-11-28T09:00:00Z","companyid":"cap-promo","data":{"promotionId":"promo-%08d","name":"Promotion %d","startDate":"%s","endDate":"%s","pad":"%0200d"}}\n' \
		"$i" "$i" "$i" "$s" "$e" 0
	i=$((i + 1))
done >"$T/promo.in"
consumed0=$(metric promo_webhooks_events_consumed_total)
snap p0
produce "$T/promo.in"
wait_for 300 "the promotion events" sh -c "[ \"\$(curl -s $API/metrics | awk '\$1 == \"promo_webhooks_events_consumed_total\" { print \$2 }')\" -ge $((consumed0 + PROMOS)) ]"
wait_for 60 "every state stored" settled
snap p1
report p0 p1 "$PROMOS" "promotion (a Promotion.Created of a new promotion; ~330-byte data)"
echo "  keys: {pw}:promo:cap-promo $(usage '{pw}:promo:cap-promo') bytes, {pw}:promo-start:cap-promo $(usage '{pw}:promo-start:cap-promo'), {pw}:promo-end:cap-promo $(usage '{pw}:promo-end:cap-promo'), {pw}:promo-fresh $(usage '{pw}:promo-fresh') for $PROMOS promotions"

# ---- period webhooks
snap w0
"$build/tests/bench/pw-bench-hooks" --api "$API" --token "$TOKEN" --count "$PERIOD_HOOKS" --clients 4 \
	--companies $((PERIOD_HOOKS / 10)) --prefix cap-period- --event Promotion.EndingInPeriod \
	--target "$RECV/period" --extra ',"notificationPeriod":"Days","notificationPeriodValue":1' >"$T/hooks.out"
wait_for 60 "the cache" sh -c "[ \"\$(curl -s $API/metrics | awk '\$1 == \"promo_webhooks_registry_webhooks\" { print \$2 }')\" -ge $PERIOD_HOOKS ]"
snap w1
report w0 w1 "$PERIOD_HOOKS" "period webhook, created through the API"
scans0=$(metric promo_webhooks_scheduler_scans_total)
snap t0
deadline=$(($(date +%s) + TICK_S))
while [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.5; done
snap t1
scans=$(($(metric promo_webhooks_scheduler_scans_total) - scans0))
echo "scheduler: $scans passes over $((PERIOD_HOOKS + 1)) period webhooks in ${TICK_S}s (last pass $(metric promo_webhooks_scheduler_scan_seconds) s)"
[ "$scans" -gt 0 ] && report t0 t1 $(((PERIOD_HOOKS + 1) * scans)) "period webhook per scheduler pass"
echo "redis used_memory at the end: $($R info memory | tr -d '\r' | awk -F: '/^used_memory:/ { print $2 }') bytes"
