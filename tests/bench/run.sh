#!/bin/sh
# tests/bench/run.sh: the throughput benchmark of promo-webhooks (issue 7).
# Not part of the CTest run.
#
#   sh tests/bench/run.sh                  the full run (about 12 minutes)
#   PW_BENCH_QUICK=1 sh tests/bench/run.sh a quick run with small sizes
#
# On one machine it builds the service (Release), starts Kafka and Redis
# (tests/scripts), a fast HTTP receiver on loopback (pw-bench-receiver,
# epoll, one thread) and the service, registers webhooks through the admin
# API, and measures, each scenario with a fresh service and consumer group:
#
#   fanout1, fanout4  a preloaded backlog (PW_BENCH_EVENTS events, 150,000
#                     by default) delivered with 1 and 4 webhooks per event:
#                     deliveries/s (steady: between 5% and 95% of the backlog
#                     as the receiver saw it), the service's peak resident
#                     memory (VmHWM), CPU per delivery, Redis commands and
#                     Redis CPU per 1,000 deliveries; and THE LIMIT: the
#                     same receiver driven by pw-bench-curl-limit (a minimal
#                     libcurl multi client) with the same body, at its BEST:
#                     both its poll and its socket loop at each of
#                     PW_BENCH_LIMIT_CONCURRENCY in flight, all printed, the
#                     best counts.
#   nginx1, nginx4    the same backlogs against Debian's nginx (one worker,
#                     `return 204`, keep-alive, no access log; started by
#                     this script on loopback with its own config under the
#                     state directory), its rate from stub_status; the limit
#                     swept against nginx the same way.
#   latency1, latency4  events produced at a steady half of the fan-out's
#                     maximum rate, each stamped with its send time; the
#                     receiver computes event-to-delivery latency p50/p99/max.
#                     Kafka's own share is measured alongside: a plain
#                     consumer in the producer process gives produce-to-
#                     consume latency on the same topic at the same time.
#                     Both report the slowest of each 100 ms window of send
#                     time: the JSON's worst_windows sets the service's five
#                     worst beside Kafka's own in the same windows.
#   slow_50ms         every POST answered after 50 ms: thousands of deliveries
#                     in flight (PW_BENCH_SLOW_TARGETS x _PER_TARGET), the
#                     rate against the limit client at the same concurrency;
#                     slow_200ms the same with 200 ms.
#   isolation         10 targets (one company each); the rate of nine of them
#                     with all ten healthy, then with target 0 never answering
#                     (hangs until the delivery timeout).
#   scaleout          a live-produced backlog on PW_BENCH_PARTITIONS
#                     partitions with one replica, then two in one group;
#                     duplicate webhook-ids counted at the receiver.
#
# Every instance runs with PROMO_WEBHOOKS_FAILURE_THRESHOLD=1000 and no
# retries (the isolation run's hung target must not be disabled within the
# window), ALLOW_PRIVATE_TARGETS=1 (loopback), the default 10 s delivery
# timeout, and MAX_IN_FLIGHT 4096 unless a scenario says otherwise.
#
# Results: tests/bench/results/latest.json (with the machine) and a table.
# Kafka, Redis and the receiver share the machine with the service, as do
# any other processes running: the load average is recorded.
#
# Sizes and knobs (environment):
#   PW_BENCH_QUICK=1            small sizes, short windows
#   PW_BENCH_EVENTS             backlog events of fanout1/fanout4 and
#                               nginx1/nginx4 (150000)
#   PW_BENCH_SLOW_EVENTS        events of the slow run (100000)
#   PW_BENCH_ISO_EVENTS         events of each isolation run, at least
#                               (PW_BENCH_EVENTS; more when the fanout1 rate
#                               says the window needs more)
#   PW_BENCH_SCALE_EVENTS       events of each scale-out run (PW_BENCH_EVENTS)
#   PW_BENCH_PARTITIONS         partitions of every event topic (8)
#   PW_BENCH_PAD                filler bytes in each event's data (200: a
#                               body of about 500 bytes)
#   PW_BENCH_PER_TARGET         in-flight deliveries per target, fast runs (256)
#   PW_BENCH_SLOW_DELAYS        answer delays of the slow runs, ms ("50 200":
#                               at 50 ms, 2,000 waiting at the receiver take
#                               40,000 deliveries/s; 200 ms shows thousands
#                               in flight at rates this machine can reach)
#   PW_BENCH_SLOW_TARGETS       targets (and webhooks per event) of it (4)
#   PW_BENCH_SLOW_PER_TARGET    in flight per target there (640: 2,560 in all)
#   PW_BENCH_LIMIT_SECONDS      measuring time of each limit run (4)
#   PW_BENCH_LIMIT_CONCURRENCY  in flight of the limit sweep ("16 32 64 128 256")
#   PW_BENCH_LATENCY_SECONDS    measuring time of each latency run (15)
#   PW_BENCH_LATENCY_WARM_SECONDS  the same rate before it, not measured (10)
#   PW_BENCH_ISO_SECONDS        measuring window of each isolation run (10)
#   PW_BENCH_SCENARIOS          subset, e.g. "fanout1 fanout4 nginx1 nginx4
#                               latency slow isolation scaleout" (all)
#   PW_BENCH_LATENCY_MAX1, _MAX4  the maximum rate (deliveries/s) whose half the
#                               latency runs offer (default: the fanout runs')
#   PW_BENCH_KAFKA_JAVA_OPTS    the broker's JVM options (Kafka's own
#                               defaults: 1 GiB heap, G1, full JIT)
#   PW_BENCH_SERVICE_ENV        extra VAR=VALUE words for every service instance
#                               (after the scenario's own, so they win: e.g.
#                               PROMO_WEBHOOKS_MAX_IN_FLIGHT=256 with the
#                               callgrind wrapper, so that the slowed service
#                               never parks)
#   PW_BENCH_SERVICE_WRAP       a command the service runs under, e.g.
#                               "valgrind --tool=callgrind --callgrind-out-file=
#                               /tmp/cg.%p" for instruction counts per delivery
#                               on a fixed workload (independent of the load
#                               on the machine; compare two backlog sizes to
#                               take the start-up out); rates are then
#                               meaningless
#   PW_BENCH_BUILD              build directory (build-bench)
#   PW_BENCH_OUT                the JSON file (tests/bench/results/latest.json)
#   PW_BENCH_KEEP=1             keep the state directory (logs) afterwards
#   PW_BENCH_PERF=1             perf record the service in the backlog runs
#                               (profiles: tests/bench/results/perf-*.txt);
#                               =2 instead perf traces it for 2 s
#                               (syscalls-*.txt); the rates of such runs are
#                               not representative, and they overwrite the JSON
#                               unless PW_BENCH_OUT says otherwise
#   PW_BENCH_PERF_ARGS          perf record options (-F 999 -g; for call
#                               chains through libc and curl:
#                               "-F 499 --call-graph dwarf,16384")
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tests/bench
build=${PW_BENCH_BUILD:-$root/build-bench}
out=${PW_BENCH_OUT:-$here/results/latest.json}
quick=${PW_BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then
	d_events=30000 d_slow=20000 d_limit=2 d_lat=6 d_iso=5
else
	d_events=150000 d_slow=100000 d_limit=4 d_lat=15 d_iso=10
fi
EVENTS=${PW_BENCH_EVENTS:-$d_events}
SLOW_EVENTS=${PW_BENCH_SLOW_EVENTS:-$d_slow}
ISO_EVENTS=${PW_BENCH_ISO_EVENTS:-$EVENTS}
SCALE_EVENTS=${PW_BENCH_SCALE_EVENTS:-$EVENTS}
PARTS=${PW_BENCH_PARTITIONS:-8}
PAD=${PW_BENCH_PAD:-200}
PER_TARGET=${PW_BENCH_PER_TARGET:-256}
SLOW_DELAYS=${PW_BENCH_SLOW_DELAYS:-50 200}
SLOW_TARGETS=${PW_BENCH_SLOW_TARGETS:-4}
SLOW_PER_TARGET=${PW_BENCH_SLOW_PER_TARGET:-640}
SLOW_CONC=$((SLOW_TARGETS * SLOW_PER_TARGET))
SLOW_MAX_IN_FLIGHT=${PW_BENCH_SLOW_MAX_IN_FLIGHT:-$((SLOW_CONC * 2))}
LIMIT_SECONDS=${PW_BENCH_LIMIT_SECONDS:-$d_limit}
LIMIT_CONCURRENCY=${PW_BENCH_LIMIT_CONCURRENCY:-16 32 64 128 256}
LAT_SECONDS=${PW_BENCH_LATENCY_SECONDS:-$d_lat}
LAT_WARM=${PW_BENCH_LATENCY_WARM_SECONDS:-10}
# Kafka's own produce-to-consume time is measured by a plain consumer with
# the service's fetch settings (service/kafka.c, KAFKA_FETCH_WAIT_MS and
# KAFKA_FETCH_MIN_BYTES): a fetch's wait is Kafka's share of the latency.
CONSUMER_FETCH_X="-X fetch.wait.max.ms=10 -X fetch.min.bytes=262144"
ISO_SECONDS=${PW_BENCH_ISO_SECONDS:-$d_iso}
SCENARIOS=${PW_BENCH_SCENARIOS:-fanout1 fanout4 nginx1 nginx4 latency slow isolation scaleout}
SERVICE_ENV=${PW_BENCH_SERVICE_ENV:-}
SERVICE_WRAP=${PW_BENCH_SERVICE_WRAP:-}
TOKEN=bench-token
HZ=$(getconf CLK_TCK)

T=$(mktemp -d "${TMPDIR:-/tmp}/pw-bench.XXXXXX")
PIDS=""
KAFKA_STARTED=0
REDIS_STARTED=0
NGINX_PID=""

say() { echo "== $*" >&2; }
fail() {
	echo "bench: FAIL: $*" >&2
	exit 1
}

cleanup() {
	trap - EXIT INT TERM
	for pid in $PIDS; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $PIDS; do
		wait "$pid" 2>/dev/null || true
	done
	[ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
	[ "$KAFKA_STARTED" = 1 ] && sh "$root/tests/scripts/kafka.sh" stop "$T/kafka" >/dev/null 2>&1
	[ "$REDIS_STARTED" = 1 ] && sh "$root/tests/scripts/redis.sh" stop "$T/redis" >/dev/null 2>&1
	if [ "${PW_BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: state kept in $T" >&2
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

has_scenario() {
	case " $SCENARIOS " in *" $1 "*) return 0 ;; esac
	return 1
}

# ---------------------------------------------------------------- helpers

# calc EXPR: floating point arithmetic (awk).
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
calc_int() { awk "BEGIN { printf \"%d\", $1 }"; }
now_ms() { date +%s%3N; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
redis_cpu() { redis-cli -p "$REDIS_PORT" info cpu | tr -d '\r' | awk -F: '$1 == "used_cpu_sys" || $1 == "used_cpu_user" { s += $2 } END { printf "%.3f\n", s }'; }
redis_commands() { redis-cli -p "$REDIS_PORT" info stats | tr -d '\r' | awk -F: '$1 == "total_commands_processed" { print $2 }'; }

# wait_for SECONDS WHAT CMD...: polls CMD every 0.1 s.
wait_for() {
	wf_limit=$1 wf_what=$2
	shift 2
	wf_deadline=$(($(date +%s) + wf_limit))
	while ! "$@"; do
		[ "$(date +%s)" -lt "$wf_deadline" ] || fail "timed out after ${wf_limit}s waiting for: $wf_what"
		sleep 0.1
	done
}

# rcv PATH [CURL ARGS...]: a control request to the receiver.
rcv() {
	rc_path=$1
	shift
	curl -sf "$@" "http://127.0.0.1:$RCV_CTL$rc_path"
}
# rcv_wait PATH FILE: a long-polling /_wait, in the background so that a
# signal is handled at once (the shell runs traps only between commands).
rcv_wait() {
	curl -sf "http://127.0.0.1:$RCV_CTL$1" >"$2" &
	rw_pid=$!
	wait "$rw_pid"
}
port_of() { awk -v n="$1" '$1 == n { print $2 }' "$T/receiver.ports"; }
listener_stat() { rcv /_stats | jq -r --arg l "$1" ".listeners[\$l].$2"; }

# steady_rate LISTENER EXPECTED [FACTOR]: deliveries/s between 5% and 95%
# of EXPECTED, from the receiver's marks (every 1000th request of LISTENER),
# times FACTOR (listeners that share the load evenly).
steady_rate() {
	rcv "/_marks?listener=$1" >"$T/marks"
	steady_of "$T/marks" "$2" "${3:-1}"
}

# steady_of FILE EXPECTED FACTOR: the same from lines "count time_us".
steady_of() {
	awk -v e="$2" -v f="$3" '
		{ c[NR] = $1; t[NR] = $2; n = NR }
		END {
			lo = 0; hi = 0
			for (i = 1; i <= n; i++) {
				if (!lo && c[i] * f >= 0.05 * e) lo = i
				if (c[i] * f <= 0.95 * e) hi = i
			}
			if (!lo || hi <= lo) { lo = 1; hi = n }
			if (n < 2 || t[hi] == t[lo]) { print 0; exit }
			printf "%.0f\n", (c[hi] - c[lo]) * f / ((t[hi] - t[lo]) / 1e6)
		}' "$1"
}

# start_service NAME TOPIC GROUP [VAR=VALUE...]: starts one instance; sets
# SVC_PID and SVC_API, waits until it is ready (in its group).
start_service() {
	ss_name=$1 ss_topic=$2 ss_group=$3
	shift 3
	ss_log=$T/$ss_name.log
	: >"$ss_log"
	env PROMO_WEBHOOKS_KAFKA_BROKERS="$KAFKA_BOOTSTRAP" \
		PROMO_WEBHOOKS_KAFKA_GROUP="$ss_group" \
		PROMO_WEBHOOKS_EVENT_TOPICS="$ss_topic" \
		PROMO_WEBHOOKS_DEAD_LETTER_TOPIC=bench.dead-letter \
		PROMO_WEBHOOKS_EMAIL_TOPIC=bench.email \
		PROMO_WEBHOOKS_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
		PROMO_WEBHOOKS_HTTP_LISTEN=127.0.0.1:0 \
		PROMO_WEBHOOKS_ADMIN_TOKEN=$TOKEN \
		PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS=1 \
		PROMO_WEBHOOKS_LOG_LEVEL=info \
		PROMO_WEBHOOKS_SHUTDOWN_GRACE_MS=2000 \
		PROMO_WEBHOOKS_FAILURE_THRESHOLD=1000 \
		PROMO_WEBHOOKS_RETRY_SCHEDULE= \
		PROMO_WEBHOOKS_MAX_IN_FLIGHT_PER_TARGET="$PER_TARGET" \
		PROMO_WEBHOOKS_RDKAFKA_SESSION_TIMEOUT_MS=6000 \
		"$@" $SERVICE_ENV $SERVICE_WRAP "$build/promo-webhooks" 2>>"$ss_log" &
	SVC_PID=$!
	PIDS="$PIDS $SVC_PID"
	wait_for 30 "service $ss_name to start" grep -q '"promo-webhooks started"' "$ss_log"
	SVC_API=http://127.0.0.1:$(grep '"promo-webhooks started"' "$ss_log" | tail -n 1 | jq -r .http_port)
	wait_for 60 "service $ss_name ready" api_ready "$SVC_API"
}
api_ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/readyz")" = 200 ]; }

# stop_service PID: SIGTERM, SIGKILL after 15 s (300 s when wrapped).
stop_service() {
	kill -TERM "$1" 2>/dev/null || true
	sv_i=0
	# A wrapped service (valgrind) needs long to exit and write its data.
	sv_max=150
	[ -z "$SERVICE_WRAP" ] || sv_max=3000
	while kill -0 "$1" 2>/dev/null && [ "$sv_i" -lt "$sv_max" ]; do
		sleep 0.1
		sv_i=$((sv_i + 1))
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

metric() { curl -s "$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'; }
# successes API: successful deliveries counted by the service.
successes() { curl -s "$1/metrics" | awk '/^promo_webhooks_deliveries_total\{/ && /outcome="success"/ { s += $2 } END { print s + 0 }'; }
# assigned API TOPIC: partitions of TOPIC this replica holds.
assigned() { curl -s "$1/metrics" | grep -c "^promo_webhooks_oldest_unfinished_event_age_seconds{topic=\"$2\"" || true; }
assigned_all() { [ "$(assigned "$1" "$2")" -eq "$PARTS" ]; }
assigned_split() {
	as_a=$(assigned "$1" "$3")
	as_b=$(assigned "$2" "$3")
	[ "$as_a" -gt 0 ] && [ "$as_b" -gt 0 ] && [ $((as_a + as_b)) -eq "$PARTS" ]
}

# produce TOPIC COUNT COMPANIES PREFIX [ARGS...]: prints the producer's JSON.
produce() {
	pr_topic=$1 pr_n=$2 pr_comp=$3 pr_prefix=$4
	shift 4
	"$tools/pw-bench-produce" -b "$KAFKA_BOOTSTRAP" -t "$pr_topic" -n "$pr_n" \
		--companies "$pr_comp" --pad "$PAD" --prefix "$pr_prefix" "$@"
}

# limit NAME CONCURRENCY SAMPLE_LISTENER URL...: runs the minimal libcurl
# client in both loops with the body the service sent; writes
# $T/limit.NAME.json {poll:..., socket:..., rate: best}.
limit() {
	li_name=$1 li_conc=$2 li_sample=$3
	shift 3
	rcv "/_sample?listener=$li_sample" >"$T/body.$li_name" || fail "no sample body from $li_sample"
	li_urls=""
	for u in "$@"; do li_urls="$li_urls --url $u"; done
	rcv /_reset -X POST >/dev/null
	# shellcheck disable=SC2086
	"$tools/pw-bench-curl-limit" $li_urls --body-file "$T/body.$li_name" \
		--concurrency "$li_conc" --seconds "$LIMIT_SECONDS" --warmup 1 --mode poll >"$T/limit.poll"
	rcv /_reset -X POST >/dev/null
	# shellcheck disable=SC2086
	"$tools/pw-bench-curl-limit" $li_urls --body-file "$T/body.$li_name" \
		--concurrency "$li_conc" --seconds "$LIMIT_SECONDS" --warmup 1 --mode socket >"$T/limit.socket"
	li_pending=$(rcv /_stats | jq '[.listeners[] | .pending_max] | add')
	jq -n --slurpfile p "$T/limit.poll" --slurpfile s "$T/limit.socket" --argjson pm "$li_pending" \
		'{poll: $p[0], socket: $s[0], rate: ([$p[0].rate, $s[0].rate] | max),
		  receiver_pending_max_socket_run: $pm}' >"$T/limit.$li_name.json"
	say "limit $li_name (concurrency $li_conc): $(jq -c '{poll: .poll.rate, socket: .socket.rate}' "$T/limit.$li_name.json")"
}

# limit_sweep NAME BODY_FILE URL: the minimal client against URL at each of
# LIMIT_CONCURRENCY in flight, in both loops; writes $T/limit.NAME.json
# {runs: [...], best: the fastest run, rate: its rate}. The limit to beat
# is the best the client reaches, not its rate at the service's concurrency.
limit_sweep() {
	ls_name=$1 ls_body=$2 ls_url=$3
	: >"$T/limit.$ls_name.runs"
	for ls_c in $LIMIT_CONCURRENCY; do
		for ls_mode in poll socket; do
			"$tools/pw-bench-curl-limit" --url "$ls_url" --body-file "$ls_body" \
				--concurrency "$ls_c" --seconds "$LIMIT_SECONDS" --warmup 1 \
				--mode "$ls_mode" >>"$T/limit.$ls_name.runs" ||
				fail "limit $ls_name: the client failed at $ls_c ($ls_mode)"
		done
	done
	jq -s '{runs: ., best: (max_by(.rate)), rate: (max_by(.rate).rate)}' \
		"$T/limit.$ls_name.runs" >"$T/limit.$ls_name.json"
	say "limit $ls_name: $(jq -r '[.runs[] | "\(.concurrency)/\(.mode) \(.rate)"] | join(", ")' "$T/limit.$ls_name.json")"
	say "limit $ls_name: best $(jq -c '.best | {mode, concurrency, rate}' "$T/limit.$ls_name.json")"
}

# backlog_run NAME TOPIC EXPECTED MARK_LISTENER MARK_FACTOR [VAR=VALUE...]:
# a fresh service consumes a preloaded backlog; the receiver must see
# EXPECTED deliveries. Writes $T/run.NAME.json.
backlog_run() {
	br_name=$1 br_topic=$2 br_expected=$3 br_mark=$4 br_factor=$5
	shift 5
	rcv /_reset -X POST >/dev/null
	br_rcmd0=$(redis_commands)
	br_rcpu0=$(redis_cpu)
	br_k0=$(cpu_ticks "$KAFKA_PID")
	br_r0=$(cpu_ticks "$RCV_PID")
	br_t0=$(now_ms)
	start_service "$br_name" "$br_topic" "g-$br_name-$$" "$@"
	br_pid=$SVC_PID
	br_api=$SVC_API
	br_timeout=$((br_expected / 500 + 120))
	# Sample the service's in-flight gauge while it works.
	(
		while kill -0 "$br_pid" 2>/dev/null; do
			metric "$br_api" promo_webhooks_deliveries_in_flight
			sleep 1
		done
	) >"$T/inflight.$br_name" 2>/dev/null &
	br_sampler=$!
	br_perf=""
	if [ "${PW_BENCH_PERF:-}" = 1 ]; then
		# shellcheck disable=SC2086
		perf record ${PW_BENCH_PERF_ARGS:--F 999 -g} -p "$br_pid" -o "$T/perf.$br_name.data" >/dev/null 2>&1 &
		br_perf=$!
	elif [ "${PW_BENCH_PERF:-}" = 2 ]; then
		# Syscalls per delivery: a 2 s perf trace once 10% have arrived
		# (sendto is one per delivery; the receiver's count is only
		# approximate, perf takes a moment to attach).
		(
			rcv "/_wait?count=$((br_expected / 10))&timeout_ms=60000" >/dev/null
			tr_c0=$(rcv /_count)
			timeout -s INT 2 perf trace -s -p "$br_pid" -o "$T/trace.$br_name" >/dev/null 2>&1 || true
			tr_c1=$(rcv /_count)
			mkdir -p "$here/results"
			{
				echo "deliveries during the trace (approximate): $((tr_c1 - tr_c0))"
				cat "$T/trace.$br_name"
			} >"$here/results/syscalls-$br_name.txt"
		) &
	fi
	rcv_wait "/_wait?count=$br_expected&timeout_ms=$((br_timeout * 1000))" "$T/wait.$br_name"
	if [ -n "$br_perf" ]; then
		kill -INT "$br_perf" 2>/dev/null || true
		wait "$br_perf" 2>/dev/null || true
		mkdir -p "$here/results"
		{
			echo "# self time by library"
			perf report -i "$T/perf.$br_name.data" --stdio --no-children -g none --sort dso \
				2>/dev/null | grep '%' | head -12
			echo "# self time by symbol"
			perf report -i "$T/perf.$br_name.data" --stdio --no-children -g none --sort dso,symbol \
				--percent-limit 0.5 2>/dev/null | grep '%' | head -60
			echo "# inclusive time (with callees) of user-space symbols"
			perf report -i "$T/perf.$br_name.data" --stdio --children -g none --sort symbol \
				--percent-limit 0.5 2>/dev/null | grep '%' | grep -v '\[k\]' |
				grep -v '\] 0x0000' | head -70
		} | sed 's/[ -]*$//' >"$here/results/perf-$br_name.txt" || true
	fi
	br_t1=$(now_ms)
	br_cpu=$(cpu_ticks "$br_pid")
	br_hwm=$(hwm_kb "$br_pid")
	br_k1=$(cpu_ticks "$KAFKA_PID")
	br_r1=$(cpu_ticks "$RCV_PID")
	br_rcmd1=$(redis_commands)
	br_rcpu1=$(redis_cpu)
	br_ok=$(successes "$br_api")
	kill "$br_sampler" 2>/dev/null || true
	wait "$br_sampler" 2>/dev/null || true
	rcv /_stats >"$T/stats.$br_name"
	br_rate=$(steady_rate "$br_mark" "$br_expected" "$br_factor")
	stop_service "$br_pid"
	br_got=$(jq .requests "$T/stats.$br_name")
	[ "$(jq .reached "$T/wait.$br_name")" = true ] ||
		fail "$br_name: only $br_got of $br_expected deliveries arrived in ${br_timeout}s"
	jq -n --argjson stats "$(cat "$T/stats.$br_name")" \
		--argjson expected "$br_expected" --argjson rate "$br_rate" \
		--argjson cpu "$(calc "$br_cpu / $HZ")" --argjson hwm "$br_hwm" \
		--argjson kcpu "$(calc "($br_k1 - $br_k0) / $HZ")" \
		--argjson rcpu "$(calc "($br_r1 - $br_r0) / $HZ")" \
		--argjson rcmd "$((br_rcmd1 - br_rcmd0))" --argjson ok "$br_ok" \
		--argjson rediscpu "$(calc "$br_rcpu1 - $br_rcpu0")" \
		--argjson wall "$(calc "($br_t1 - $br_t0) / 1000")" \
		--argjson inflight "[$(grep -E '^[0-9]+$' "$T/inflight.$br_name" | paste -sd, -)]" '
		($stats.listeners | [.[] | select(.requests > 0)]) as $ls |
		($ls | map(.requests) | add) as $n |
		{deliveries: $n, expected: $expected, service_successes: $ok,
		 deliveries_per_s: $rate,
		 deliveries_per_s_first_to_last:
			(($n - 1) / ((($ls | map(.last_us) | max) - ($ls | map(.first_us) | min)) / 1e6) | floor),
		 wall_s_start_to_last: $wall,
		 body_bytes_avg: (($ls | map(.body_bytes) | add) / $n | floor),
		 service_cpu_s: $cpu,
		 service_cpu_s_per_1000: ($cpu / $n * 1000),
		 service_rss_peak_mb: ($hwm / 1024),
		 kafka_cpu_s: $kcpu, receiver_cpu_s: $rcpu,
		 receiver_cpu_s_per_1000: ($rcpu / $n * 1000),
		 redis_commands: $rcmd, redis_commands_per_1000: ($rcmd / $n * 1000),
		 redis_cpu_s: $rediscpu, redis_cpu_s_per_1000: ($rediscpu / $n * 1000),
		 receiver_pending_max: ($ls | map(.pending_max) | add),
		 receiver_connections_max: ($ls | map(.conns_max) | add),
		 receiver_pending_avg: ($ls | map(.pending_avg) | add),
		 service_in_flight_samples: $inflight}' >"$T/run.$br_name.json"
	say "$br_name: $(jq -c '{deliveries, deliveries_per_s, service_cpu_s_per_1000, service_rss_peak_mb}' "$T/run.$br_name.json")"
}

# nginx_requests: requests nginx has answered, from stub_status (each
# such poll is one of them).
nginx_requests() {
	curl -s "http://127.0.0.1:$NGINX_PORT/nginx_status" | awk 'NR == 3 { print $3 }'
}

# nginx_run NAME TOPIC EXPECTED [VAR=VALUE...]: backlog_run against nginx;
# progress polled from stub_status every 0.2 s (the polls subtracted).
# Writes $T/run.NAME.json.
nginx_run() {
	nr_name=$1 nr_topic=$2 nr_expected=$3
	shift 3
	nr_base=$(nginx_requests)
	nr_rcmd0=$(redis_commands)
	nr_rcpu0=$(redis_cpu)
	nr_worker=$(pgrep -P "$NGINX_PID" | head -n 1)
	nr_w0=$(cpu_ticks "$nr_worker")
	start_service "$nr_name" "$nr_topic" "g-$nr_name-$$" "$@"
	nr_pid=$SVC_PID
	nr_api=$SVC_API
	nr_deadline=$(($(now_ms) + (nr_expected / 500 + 120) * 1000))
	nr_polls=0
	: >"$T/progress.$nr_name"
	while :; do
		nr_polls=$((nr_polls + 1))
		nr_c=$(($(nginx_requests) - nr_base - nr_polls))
		echo "$nr_c $(($(now_ms) * 1000))" >>"$T/progress.$nr_name"
		[ "$nr_c" -lt "$nr_expected" ] || break
		[ "$(now_ms)" -lt "$nr_deadline" ] || break
		kill -0 "$nr_pid" 2>/dev/null || break
		sleep 0.2
	done
	nr_cpu=$(cpu_ticks "$nr_pid")
	nr_hwm=$(hwm_kb "$nr_pid")
	nr_w1=$(cpu_ticks "$nr_worker")
	nr_rcmd1=$(redis_commands)
	nr_rcpu1=$(redis_cpu)
	nr_ok=$(successes "$nr_api")
	nr_rate=$(steady_of "$T/progress.$nr_name" "$nr_expected" 1)
	stop_service "$nr_pid"
	[ "$nr_c" -ge "$nr_expected" ] ||
		fail "$nr_name: only $nr_c of $nr_expected deliveries reached nginx"
	jq -n --argjson n "$nr_c" --argjson expected "$nr_expected" --argjson rate "$nr_rate" \
		--argjson cpu "$(calc "$nr_cpu / $HZ")" --argjson hwm "$nr_hwm" \
		--argjson ncpu "$(calc "($nr_w1 - $nr_w0) / $HZ")" \
		--argjson rcmd "$((nr_rcmd1 - nr_rcmd0))" --argjson ok "$nr_ok" \
		--argjson rediscpu "$(calc "$nr_rcpu1 - $nr_rcpu0")" '
		{receiver: "nginx", deliveries: $n, expected: $expected, service_successes: $ok,
		 deliveries_per_s: $rate,
		 service_cpu_s: $cpu, service_cpu_s_per_1000: ($cpu / $n * 1000),
		 service_rss_peak_mb: ($hwm / 1024),
		 receiver_cpu_s: $ncpu, receiver_cpu_s_per_1000: ($ncpu / $n * 1000),
		 redis_commands: $rcmd, redis_commands_per_1000: ($rcmd / $n * 1000),
		 redis_cpu_s: $rediscpu, redis_cpu_s_per_1000: ($rediscpu / $n * 1000)}' >"$T/run.$nr_name.json"
	say "$nr_name: $(jq -c '{deliveries, deliveries_per_s, service_cpu_s_per_1000, service_rss_peak_mb}' "$T/run.$nr_name.json")"
}

# ---------------------------------------------------------------- build

say "build (Release) into $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target promo-webhooks pw-kafka-admin >/dev/null
tools=$build/bench-tools
mkdir -p "$tools"
CFLAGS_BENCH="-std=c11 -O2 -Wall -Wextra"
# shellcheck disable=SC2046,SC2086
cc $CFLAGS_BENCH -o "$tools/pw-bench-receiver" "$here/bench_receiver.c"
# shellcheck disable=SC2046,SC2086
cc $CFLAGS_BENCH -o "$tools/pw-bench-curl-limit" "$here/curl_limit.c" $(pkg-config --cflags --libs libcurl)
# shellcheck disable=SC2046,SC2086
cc $CFLAGS_BENCH -pthread -o "$tools/pw-bench-produce" "$here/bench_produce.c" $(pkg-config --cflags --libs rdkafka)

# What was measured: the commit, and a hash of the sources built (the
# working tree may differ from the commit).
COMMIT=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE_HASH=$(cat "$root"/service/*.c "$root"/include/promo_webhooks/*.h | sha256sum | cut -c1-16)

# ---------------------------------------------------------------- machine

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
say "machine: $(nproc) cpus, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), load $LOAD_START"

# ---------------------------------------------------------------- Kafka, Redis

say "starting Redis and Kafka in $T"
sh "$root/tests/scripts/redis.sh" start "$T/redis" 2>"$T/redis.start.log" || {
	cat "$T/redis.start.log" >&2
	fail "redis did not start"
}
REDIS_STARTED=1
KAFKA_STARTED=1
# The broker as Kafka's own kafka-server-start.sh runs it (1 GiB heap,
# kafka-run-class.sh's G1 settings, the full JIT), not as the tests run it
# (C1 only, for a fast start): with C1 only it took 85% of a core to take
# 12,000 events/s while the latency runs produced live, and its own p99
# was 0.8-0.9 s.
PW_KAFKA_JAVA_OPTS=${PW_BENCH_KAFKA_JAVA_OPTS:-"-Xms1g -Xmx1g -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true"} \
PW_KAFKA_ADMIN="$build/tests/pw-kafka-admin" sh "$root/tests/scripts/kafka.sh" start "$T/kafka" 2>"$T/kafka.start.log" || {
	cat "$T/kafka.start.log" >&2
	fail "kafka did not start"
}
. "$T/redis/redis.env"
. "$T/kafka/kafka.env"
KAFKA_PID=$(cat "$T/kafka/kafka.pid")

# ---------------------------------------------------------------- receiver

set -- --port-file "$T/receiver.ports" --listen ctl --listen fast
i=0
while [ "$i" -lt "$SLOW_TARGETS" ]; do
	set -- "$@" --listen "slow$i,delay_ms=50"
	i=$((i + 1))
done
i=0
while [ "$i" -lt 10 ]; do
	set -- "$@" --listen "iso$i"
	i=$((i + 1))
done
set -- "$@" --listen lat,latency --listen "sc1,ids=$T/ids.sc1" --listen "sc2,ids=$T/ids.sc2"
"$tools/pw-bench-receiver" "$@" 2>"$T/receiver.log" &
RCV_PID=$!
PIDS="$PIDS $RCV_PID"
wait_for 10 "the receiver to listen" test -s "$T/receiver.ports"
RCV_CTL=$(port_of ctl)
FAST=$(port_of fast)
LAT=$(port_of lat)

# ---------------------------------------------------------------- nginx

# Debian's nginx as a second receiver: one worker, 204 to everything,
# keep-alive without a request limit, no access log; its own config, pid
# and temp directories under $T. A port is tried until one is free.
nginx_up() { [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$NGINX_PORT/x")" = 204 ]; }
if has_scenario nginx1 || has_scenario nginx4; then
	NGINX=$(command -v nginx || echo /usr/sbin/nginx)
	[ -x "$NGINX" ] || fail "nginx is not installed (apt-get install nginx-light, see tests/scripts/deps.sh)"
	mkdir -p "$T/nginx/tmp"
	tries=0
	while :; do
		NGINX_PORT=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 30000))
		sed -e "s|@T@|$T|g" -e "s|@PORT@|$NGINX_PORT|g" "$here/nginx.conf.in" >"$T/nginx/nginx.conf"
		"$NGINX" -p "$T/nginx" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" 2>>"$T/nginx/start.log" &
		NGINX_PID=$!
		PIDS="$PIDS $NGINX_PID"
		i=0
		while [ "$i" -lt 50 ] && kill -0 "$NGINX_PID" 2>/dev/null && ! nginx_up; do
			sleep 0.1
			i=$((i + 1))
		done
		nginx_up && break
		kill "$NGINX_PID" 2>/dev/null || true
		wait "$NGINX_PID" 2>/dev/null || true
		NGINX_PID=""
		tries=$((tries + 1))
		[ "$tries" -lt 5 ] || fail "nginx did not start: $(tail -n 3 "$T/nginx/error.log" "$T/nginx/start.log" 2>/dev/null)"
	done
	say "nginx on 127.0.0.1:$NGINX_PORT (pid $NGINX_PID)"
fi

# ---------------------------------------------------------------- topics, webhooks

TOPICS="bench.f1 bench.f4 bench.n1 bench.n4 bench.slow bench.iso-ok bench.iso-hang bench.lat1 bench.lat4 bench.sc1 bench.sc2"
set --
for t in $TOPICS; do set -- "$@" "$t:$PARTS"; done
PW_KAFKA_ADMIN="$build/tests/pw-kafka-admin" sh "$root/tests/scripts/kafka.sh" create-topics "$T/kafka" \
	"$@" bench.setup:1 bench.dead-letter:1 bench.email:1 >/dev/null 2>"$T/topics.log" ||
	fail "topic creation failed: $(cat "$T/topics.log")"

say "registering webhooks"
start_service setup bench.setup g-setup-$$
SETUP_PID=$SVC_PID
API=$SVC_API
HOOKS=0
hook() { # COMPANY TARGET
	hk_status=$(curl -s -o "$T/resp" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
		-H 'Content-Type: application/json' \
		--data-binary "{\"event\":\"Product.ImportCompleted\",\"target\":\"$2\",\"enabled\":true}" \
		"$API/v1/companies/$1/webhooks")
	[ "$hk_status" = 201 ] || fail "create webhook for $1: HTTP $hk_status $(cat "$T/resp")"
	HOOKS=$((HOOKS + 1))
}
hook f1 "http://127.0.0.1:$FAST/f1"
for i in 0 1 2 3; do hook f4 "http://127.0.0.1:$FAST/f4-$i"; done
if [ -n "$NGINX_PID" ]; then
	hook n1 "http://127.0.0.1:$NGINX_PORT/n1"
	for i in 0 1 2 3; do hook n4 "http://127.0.0.1:$NGINX_PORT/n4-$i"; done
fi
i=0
while [ "$i" -lt "$SLOW_TARGETS" ]; do
	hook slow "http://127.0.0.1:$(port_of "slow$i")/slow"
	i=$((i + 1))
done
ISO_COMPANIES=""
for i in 0 1 2 3 4 5 6 7 8 9; do
	hook "iso$i" "http://127.0.0.1:$(port_of "iso$i")/iso"
	ISO_COMPANIES="$ISO_COMPANIES${ISO_COMPANIES:+,}iso$i"
done
hook lat1 "http://127.0.0.1:$LAT/lat1"
for i in 0 1 2 3; do hook lat4 "http://127.0.0.1:$LAT/lat4-$i"; done
hook sc1 "http://127.0.0.1:$(port_of sc1)/sc"
hook sc2 "http://127.0.0.1:$(port_of sc2)/sc"
registry_full() { [ "$(metric "$API" promo_webhooks_registry_webhooks)" = "$HOOKS" ]; }
wait_for 10 "the registry to hold $HOOKS webhooks" registry_full
stop_service "$SETUP_PID"

# ---------------------------------------------------------------- backlogs

say "producing backlogs"
PRODUCE_JSON='{}'
backlog() { # NAME TOPIC COUNT COMPANIES
	bl_out=$(produce "$2" "$3" "$4" "$1") || fail "producing $1 failed"
	PRODUCE_JSON=$(echo "$PRODUCE_JSON" | jq --arg n "$1" --argjson r "$bl_out" '. + {($n): $r}')
	say "backlog $1: $bl_out"
}
has_scenario fanout1 && backlog fanout1 bench.f1 "$EVENTS" f1
has_scenario fanout4 && backlog fanout4 bench.f4 "$EVENTS" f4
has_scenario nginx1 && backlog nginx1 bench.n1 "$EVENTS" n1
has_scenario nginx4 && backlog nginx4 bench.n4 "$EVENTS" n4
has_scenario slow && backlog slow bench.slow "$SLOW_EVENTS" slow

# ---------------------------------------------------------------- fan-out 1 and 4

fast_env="PROMO_WEBHOOKS_MAX_IN_FLIGHT=4096"
if has_scenario fanout1; then
	say "fanout1: $EVENTS events x 1 webhook, $PER_TARGET in flight"
	backlog_run fanout1 bench.f1 "$EVENTS" fast 1 $fast_env
fi
if has_scenario fanout4; then
	say "fanout4: $EVENTS events x 4 webhooks (one target), $PER_TARGET in flight"
	backlog_run fanout4 bench.f4 $((EVENTS * 4)) fast 1 $fast_env
fi
if has_scenario nginx1; then
	say "nginx1: $EVENTS events x 1 webhook to nginx, $PER_TARGET in flight"
	nginx_run nginx1 bench.n1 "$EVENTS" $fast_env
fi
if has_scenario nginx4; then
	say "nginx4: $EVENTS events x 4 webhooks to nginx (one target), $PER_TARGET in flight"
	nginx_run nginx4 bench.n4 $((EVENTS * 4)) $fast_env
fi
# The limits, swept once per receiver (the fan-outs' webhooks share one
# target, so both fan-outs are measured against the same limit), with a
# body the service sent.
if has_scenario fanout1 || has_scenario fanout4 || [ -n "$NGINX_PID" ]; then
	if ! has_scenario fanout1 && ! has_scenario fanout4; then
		rcv /_reset -X POST >/dev/null
		produce bench.f1 100 f1 sample >/dev/null
		start_service sample bench.f1 "g-sample-$$" $fast_env
		rcv_wait "/_wait?count=100&timeout_ms=30000" /dev/null
		stop_service "$SVC_PID"
	fi
	rcv "/_sample?listener=fast" >"$T/body.sample" || fail "no sample body from the receiver"
	if has_scenario fanout1 || has_scenario fanout4; then
		limit_sweep fast "$T/body.sample" "http://127.0.0.1:$FAST/limit"
	fi
	[ -z "$NGINX_PID" ] || limit_sweep nginx "$T/body.sample" "http://127.0.0.1:$NGINX_PORT/limit"
fi

# ---------------------------------------------------------------- latency

# latency_run NAME TOPIC COMPANY FANOUT MAX_DELIVERY_RATE
latency_run() {
	lr_name=$1 lr_topic=$2 lr_comp=$3 lr_fan=$4
	lr_rate=$(calc_int "$5 / 2 / $lr_fan")
	[ "$lr_rate" -gt 0 ] || lr_rate=1000
	say "$lr_name: $lr_rate events/s x $lr_fan webhooks for ${LAT_SECONDS}s (half the maximum)"
	rcv /_reset -X POST >/dev/null
	start_service "$lr_name" "$lr_topic" "g-$lr_name-$$" $fast_env
	lr_pid=$SVC_PID
	lr_api=$SVC_API
	wait_for 30 "$lr_name: every partition assigned" assigned_all "$lr_api" "$lr_topic"
	# Warm up connections, the consumer and the broker (its JIT: a broker
	# just started took 1.7 s at p99 for the first 10 s at 12,000/s, 33 ms
	# from the third), then measure from zero.
	lr_warm=$(produce "$lr_topic" 0 "$lr_comp" warm --rate "$lr_rate" --seconds "$LAT_WARM" | jq .produced)
	rcv_wait "/_wait?listener=lat&count=$((lr_warm * lr_fan))&timeout_ms=30000" /dev/null
	rcv /_reset -X POST >/dev/null
	lr_c0=$(cpu_ticks "$lr_pid")
	lr_k0=$(cpu_ticks "$KAFKA_PID")
	# What the service holds while it works: deliveries and events in flight.
	(
		while kill -0 "$lr_pid" 2>/dev/null; do
			curl -s "$lr_api/metrics" | awk '$1 == "promo_webhooks_deliveries_in_flight" { d = $2 }
				$1 == "promo_webhooks_events_in_flight" { e = $2 } END { if (d != "") print d, e }'
			sleep 1
		done
	) >"$T/inflight.$lr_name" 2>/dev/null &
	lr_sampler=$!
	lr_out=$(produce "$lr_topic" 0 "$lr_comp" m --rate "$lr_rate" --seconds "$LAT_SECONDS" --consume $CONSUMER_FETCH_X)
	lr_n=$(($(echo "$lr_out" | jq .produced) * lr_fan))
	rcv_wait "/_wait?listener=lat&count=$lr_n&timeout_ms=60000" "$T/wait.$lr_name"
	lr_c1=$(cpu_ticks "$lr_pid")
	lr_k1=$(cpu_ticks "$KAFKA_PID")
	kill "$lr_sampler" 2>/dev/null || true
	wait "$lr_sampler" 2>/dev/null || true
	rcv /_stats >"$T/stats.$lr_name"
	stop_service "$lr_pid"
	jq -n --argjson s "$(cat "$T/stats.$lr_name")" --argjson p "$lr_out" \
		--argjson rate "$lr_rate" --argjson fan "$lr_fan" --argjson n "$lr_n" \
		--argjson cpu "$(calc "($lr_c1 - $lr_c0) / $HZ")" \
		--argjson kcpu "$(calc "($lr_k1 - $lr_k0) / $HZ")" \
		--argjson dif "[$(awk '{ print $1 }' "$T/inflight.$lr_name" | paste -sd, -)]" \
		--argjson eif "[$(awk '{ print $2 }' "$T/inflight.$lr_name" | paste -sd, -)]" '
		# The five 100 ms windows (of send time) with the slowest
		# delivery, beside the slowest produce-to-consume of the same
		# window: a broker stall shows in both, the service in the gap.
		def worst_windows:
			if $s.latency.windows != null and $p.consume_windows != null then
				[range(0; $s.latency.windows.max_us | length) as $i
				 | ($s.latency.windows.first + $i) as $w
				 | ($w - $p.consume_windows.first) as $j
				 | select($j >= 0 and $j < ($p.consume_windows.max_us | length))
				 | {start_unix_ms: ($w * $s.latency.windows.width_us / 1000),
				    service_max_ms: ($s.latency.windows.max_us[$i] / 1000),
				    kafka_max_ms: ($p.consume_windows.max_us[$j] / 1000)}
				 | select(.service_max_ms > 0 and .kafka_max_ms > 0)
				 | . + {service_adds_ms: (((.service_max_ms - .kafka_max_ms) * 10 | round) / 10)}]
				| sort_by(-.service_max_ms) | .[:5]
			else null end;
		{offered_events_per_s: $rate, fanout: $fan,
		 offered_deliveries_per_s: ($rate * $fan), producer: ($p | del(.consume_windows)),
		 deliveries: $s.listeners.lat.requests, expected: $n,
		 latency_ms: ($s.latency | {samples,
			p50: (.p50_us / 1000), p90: (.p90_us / 1000), p99: (.p99_us / 1000),
			p999: (.p999_us / 1000), max: (.max_us / 1000), mean: (.mean_us / 1000),
			min: (.min_us / 1000)}),
		 worst_windows: worst_windows,
		 service_cpu_s: $cpu, kafka_cpu_s: $kcpu,
		 service_deliveries_in_flight_samples: $dif,
		 service_events_in_flight_samples: $eif,
		 service_cpu_s_per_1000: (if $s.listeners.lat.requests > 0
			then $cpu / $s.listeners.lat.requests * 1000 else null end)}' >"$T/run.$lr_name.json"
	say "$lr_name: $(jq -c '{deliveries, latency_ms, kafka_ack_ms: .producer.ack_ms, kafka_consume_ms: .producer.consume_ms}' "$T/run.$lr_name.json")"
	say "$lr_name: worst 100 ms windows, slowest delivery / slowest Kafka consume (ms): $(jq -r '[.worst_windows // [] | .[] | "\(.service_max_ms) / \(.kafka_max_ms)"] | join(", ")' "$T/run.$lr_name.json")"
}
if has_scenario latency; then
	r1=$( [ -f "$T/run.fanout1.json" ] && jq .deliveries_per_s "$T/run.fanout1.json" || echo 20000)
	r4=$( [ -f "$T/run.fanout4.json" ] && jq .deliveries_per_s "$T/run.fanout4.json" || echo 20000)
	# Overrides (deliveries/s taken as the maximum): PW_BENCH_LATENCY_MAX1/4.
	r1=${PW_BENCH_LATENCY_MAX1:-$r1}
	r4=${PW_BENCH_LATENCY_MAX4:-$r4}
	latency_run latency1 bench.lat1 lat1 1 "$r1"
	latency_run latency4 bench.lat4 lat4 4 "$r4"
fi

# ---------------------------------------------------------------- 50 ms receiver

if has_scenario slow; then
	for d in $SLOW_DELAYS; do
		i=0
		set --
		while [ "$i" -lt "$SLOW_TARGETS" ]; do
			rcv "/_control?listener=slow$i&delay_ms=$d" -X POST >/dev/null
			set -- "$@" "http://127.0.0.1:$(port_of "slow$i")/limit"
			i=$((i + 1))
		done
		say "slow_${d}ms: $SLOW_EVENTS events x $SLOW_TARGETS webhooks, answers after $d ms, $SLOW_CONC in flight"
		backlog_run "slow_${d}ms" bench.slow $((SLOW_EVENTS * SLOW_TARGETS)) slow0 "$SLOW_TARGETS" \
			PROMO_WEBHOOKS_MAX_IN_FLIGHT="$SLOW_MAX_IN_FLIGHT" \
			PROMO_WEBHOOKS_MAX_IN_FLIGHT_PER_TARGET="$SLOW_PER_TARGET"
		limit "slow_${d}ms" "$SLOW_CONC" slow0 "$@"
	done
fi

# ---------------------------------------------------------------- isolation

# nine_count: deliveries at iso1..iso9.
nine_count() {
	rcv /_stats | jq '[.listeners | to_entries[] | select(.key | test("^iso[1-9]$")) | .value.requests] | add'
}

# iso_run NAME TOPIC: the rate of iso1..iso9 over the window.
iso_run() {
	ir_name=$1 ir_topic=$2
	rcv /_reset -X POST >/dev/null
	start_service "$ir_name" "$ir_topic" "g-$ir_name-$$" $fast_env
	ir_pid=$SVC_PID
	ir_api=$SVC_API
	rcv_wait "/_wait?listener=iso1&count=1000&timeout_ms=60000" /dev/null
	sleep 2
	ir_c0=$(nine_count)
	ir_t0=$(now_ms)
	ir_end=$((ir_t0 + ISO_SECONDS * 1000))
	ir_stop=$((ISO_N * 9 / 10 * 9 / 10))
	ir_inflight=""
	while :; do
		sleep 1
		ir_c1=$(nine_count)
		ir_t1=$(now_ms)
		ir_v=$(metric "$ir_api" promo_webhooks_deliveries_in_flight)
		ir_inflight="$ir_inflight${ir_inflight:+,}${ir_v:-null}"
		[ "$ir_t1" -lt "$ir_end" ] && [ "$ir_c1" -lt "$ir_stop" ] || break
	done
	rcv /_stats >"$T/stats.$ir_name"
	stop_service "$ir_pid"
	jq -n --argjson s "$(cat "$T/stats.$ir_name")" --argjson c "$((ir_c1 - ir_c0))" --argjson n "$ISO_N" \
		--argjson secs "$(calc "($ir_t1 - $ir_t0) / 1000")" --argjson inflight "[$ir_inflight]" '
		{nine_deliveries: $c, seconds: $secs, nine_deliveries_per_s: ($c / $secs | floor),
		 events: $n, target0_requests: $s.listeners.iso0.requests,
		 target0_pending_max: $s.listeners.iso0.pending_max,
		 service_in_flight_samples: $inflight}' >"$T/run.$ir_name.json"
	say "$ir_name: $(jq -c '{nine_deliveries_per_s, target0_requests, target0_pending_max}' "$T/run.$ir_name.json")"
}
if has_scenario isolation; then
	# The backlog must outlast the window at the healthy rate.
	ir_max=$( [ -f "$T/run.fanout1.json" ] && jq .deliveries_per_s "$T/run.fanout1.json" || echo 25000)
	ISO_N=$(calc_int "$ir_max * ($ISO_SECONDS + 6) * 1.3")
	[ "$ISO_N" -ge "$ISO_EVENTS" ] || ISO_N=$ISO_EVENTS
	backlog iso-ok bench.iso-ok "$ISO_N" "$ISO_COMPANIES"
	backlog iso-hang bench.iso-hang "$ISO_N" "$ISO_COMPANIES"
	say "isolation: 10 targets (one company each), $PER_TARGET in flight per target, 4096 in all"
	rcv "/_control?listener=iso0&hang=0" -X POST >/dev/null
	iso_run iso-healthy bench.iso-ok
	rcv "/_control?listener=iso0&hang=1" -X POST >/dev/null
	iso_run iso-hang bench.iso-hang
	rcv "/_control?listener=iso0&hang=0" -X POST >/dev/null
fi

# ---------------------------------------------------------------- scale-out

# scale_run NAME TOPIC REPLICAS: replicas start on an empty topic, then the
# backlog is produced; duplicate webhook-ids are counted at the receiver.
scale_run() {
	sr_name=$1 sr_topic=$2 sr_n=$3
	rcv /_reset -X POST >/dev/null
	start_service "${sr_name}a" "$sr_topic" "g-$sr_name-$$" $fast_env
	sr_a=$SVC_PID
	sr_api_a=$SVC_API
	if [ "$sr_n" = 2 ]; then
		start_service "${sr_name}b" "$sr_topic" "g-$sr_name-$$" $fast_env
		sr_b=$SVC_PID
		sr_api_b=$SVC_API
		wait_for 60 "$sr_name: partitions split over two replicas" \
			assigned_split "$sr_api_a" "$sr_api_b" "$sr_topic"
	else
		wait_for 30 "$sr_name: every partition assigned" assigned_all "$sr_api_a" "$sr_topic"
	fi
	sr_ca0=$(cpu_ticks "$sr_a")
	[ "$sr_n" = 2 ] && sr_cb0=$(cpu_ticks "$sr_b")
	sr_prod=$(produce "$sr_topic" "$SCALE_EVENTS" "$sr_name" "$sr_name")
	rcv_wait "/_wait?listener=$sr_name&count=$SCALE_EVENTS&timeout_ms=$(((SCALE_EVENTS / 500 + 120) * 1000))" "$T/wait.$sr_name"
	sr_cpu=$(calc "($(cpu_ticks "$sr_a") - $sr_ca0) / $HZ")
	[ "$sr_n" = 2 ] && sr_cpu=$(calc "$sr_cpu + ($(cpu_ticks "$sr_b") - $sr_cb0) / $HZ")
	rcv /_stats >"$T/stats.$sr_name"
	sr_rate=$(steady_rate "$sr_name" "$SCALE_EVENTS" 1)
	stop_service "$sr_a"
	[ "$sr_n" = 2 ] && stop_service "$sr_b"
	sr_total=$(wc -l <"$T/ids.$sr_name")
	sr_distinct=$(sort -u "$T/ids.$sr_name" | wc -l)
	jq -n --argjson s "$(cat "$T/stats.$sr_name")" --arg l "$sr_name" --argjson p "$sr_prod" \
		--argjson rate "$sr_rate" --argjson n "$sr_n" --argjson cpu "$sr_cpu" \
		--argjson total "$sr_total" --argjson distinct "$sr_distinct" \
		--argjson expected "$SCALE_EVENTS" '
		{replicas: $n, producer: $p, deliveries: $total, expected: $expected,
		 distinct_webhook_ids: $distinct, duplicates: ($total - $distinct),
		 deliveries_per_s: $rate, service_cpu_s: $cpu,
		 service_cpu_s_per_1000: ($cpu / $total * 1000)}' >"$T/run.$sr_name.json"
	say "$sr_name: $(jq -c '{replicas, deliveries_per_s, duplicates}' "$T/run.$sr_name.json")"
}
if has_scenario scaleout; then
	say "scale-out: $SCALE_EVENTS events on $PARTS partitions, one replica then two"
	scale_run sc1 bench.sc1 1
	scale_run sc2 bench.sc2 2
fi

# ---------------------------------------------------------------- results

say "writing $out"
mkdir -p "$(dirname "$out")"
for f in run.fanout1 run.fanout4 run.nginx1 run.nginx4 run.latency1 run.latency4 \
	run.iso-healthy run.iso-hang run.sc1 run.sc2 limit.fast limit.nginx; do
	[ -f "$T/$f.json" ] || echo null >"$T/$f.json"
done
echo '{}' >"$T/slow.all.json"
for d in $SLOW_DELAYS; do
	[ -f "$T/run.slow_${d}ms.json" ] && [ -f "$T/limit.slow_${d}ms.json" ] || continue
	jq --arg k "slow_${d}ms" --argjson d "$d" --slurpfile r "$T/run.slow_${d}ms.json" \
		--slurpfile l "$T/limit.slow_${d}ms.json" '
		. + {($k): ($r[0] + {answer_delay_ms: $d, limit: $l[0],
			ratio_to_limit: ((($r[0].deliveries_per_s / $l[0].rate) * 1000 | round) / 1000)})}' \
		"$T/slow.all.json" >"$T/slow.all.tmp"
	mv "$T/slow.all.tmp" "$T/slow.all.json"
done
jq -n \
	--arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	--arg model "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
	--arg kernel "$(uname -sr)" --argjson nproc "$(nproc)" \
	--argjson memmb "$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)" \
	--arg load0 "$LOAD_START" --arg load1 "$(cut -d' ' -f1-3 /proc/loadavg)" \
	--arg commit "$COMMIT" --arg srchash "$SOURCE_HASH" --arg cmd "${PW_BENCH_QUICK:+PW_BENCH_QUICK=$PW_BENCH_QUICK }sh tests/bench/run.sh" \
	--arg curlv "$(pkg-config --modversion libcurl)" --arg rdkv "$(pkg-config --modversion rdkafka)" \
	--arg eventv "$(pkg-config --modversion libevent)" \
	--argjson events "$EVENTS" --argjson parts "$PARTS" --argjson per "$PER_TARGET" \
	--argjson slowc "$SLOW_CONC" --argjson slowmax "$SLOW_MAX_IN_FLIGHT" \
	--argjson produce "$PRODUCE_JSON" \
	--slurpfile f1 "$T/run.fanout1.json" --slurpfile f4 "$T/run.fanout4.json" \
	--slurpfile n1 "$T/run.nginx1.json" --slurpfile n4 "$T/run.nginx4.json" \
	--slurpfile lf "$T/limit.fast.json" --slurpfile ln "$T/limit.nginx.json" \
	--slurpfile lat1 "$T/run.latency1.json" --slurpfile lat4 "$T/run.latency4.json" \
	--slurpfile slow "$T/slow.all.json" \
	--slurpfile ih "$T/run.iso-healthy.json" --slurpfile ix "$T/run.iso-hang.json" \
	--slurpfile s1 "$T/run.sc1.json" --slurpfile s2 "$T/run.sc2.json" '
	def ratio(a; b): if a == null or b == null or b == 0 then null
		else ((a / b) * 1000 | round) / 1000 end;
	def run(r; l): if r == null then null else r + {
		limit: (if l == null then null else {rate: l.rate, mode: l.best.mode,
			concurrency: l.best.concurrency} end),
		ratio_to_limit: ratio(r.deliveries_per_s; l.rate),
		service_cpu_us_per_delivery: (r.service_cpu_s_per_1000 * 1000 * 10 | round / 10),
		limit_client_cpu_us_per_request: (if l == null then null
			else l.best.cpu_per_1000 * 1000 * 10 | round / 10 end)} end;
	def lat(x): if x == null then null else x + {
		service_adds_p99_ms: (((x.latency_ms.p99 - x.producer.consume_ms.p99) * 10 | round) / 10)} end;
	{machine: {nproc: $nproc, model_name: $model, kernel: $kernel, memory_mb: $memmb,
		   date: $date, loadavg_start: $load0, loadavg_end: $load1,
		   note: "Kafka, Redis, the receiver and the service share these CPUs; other processes on the machine add noise (see loadavg)"},
	 command: $cmd, commit: $commit, source_sha256_16: $srchash,
	 versions: {libcurl: $curlv, librdkafka: $rdkv, libevent: $eventv, kafka: "4.1.1"},
	 config: {events: $events, partitions: $parts, in_flight_per_target: $per,
		  slow_in_flight: $slowc, slow_max_in_flight: $slowmax},
	 produce: $produce,
	 limits: {fast: $lf[0], nginx: $ln[0]},
	 fanout1: run($f1[0]; $lf[0]), fanout4: run($f4[0]; $lf[0]),
	 nginx1: run($n1[0]; $ln[0]), nginx4: run($n4[0]; $ln[0]),
	 latency1: lat($lat1[0]), latency4: lat($lat4[0]),
	 isolation: {healthy: $ih[0], one_hung: $ix[0],
		      ratio: ratio($ix[0].nine_deliveries_per_s; $ih[0].nine_deliveries_per_s)},
	 scaleout: {one: $s1[0], two: $s2[0],
		    ratio: ratio($s2[0].deliveries_per_s; $s1[0].deliveries_per_s)}}
	+ $slow[0]
	| . + {targets: [
		(.fanout4, .nginx4 | select(. != null) | {what: "\(.receiver // "bench receiver"): fan-out 4 ratio to the limit", value: .ratio_to_limit, at_least: 0.6}),
		(.fanout1, .nginx1 | select(. != null) | {what: "\(.receiver // "bench receiver"): fan-out 1 ratio to the limit", value: .ratio_to_limit, at_least: 0.5}),
		(.fanout4, .nginx4 | select(. != null) | {what: "\(.receiver // "bench receiver"): fan-out 4 CPU us per delivery", value: .service_cpu_us_per_delivery, at_most: 30}),
		(.fanout1, .fanout4, .nginx1, .nginx4 | select(. != null) | {what: "\(.receiver // "bench receiver"): fan-out \(if .expected > $events then 4 else 1 end) peak RSS MiB", value: .service_rss_peak_mb, at_most: 64}),
		(.latency1, .latency4 | select(. != null) | {what: "fan-out \(.fanout) latency: p99 added to the Kafka produce-to-consume p99 (ms)", value: .service_adds_p99_ms, at_most: 20})
	  ] | map(. + {pass: (if .value == null then false elif .at_least then .value >= .at_least else .value <= .at_most end)})}
	| del(.. | nulls)' >"$out.tmp"
mv "$out.tmp" "$out"

# ---------------------------------------------------------------- table

jq -r '
	def n(x): if x == null then "-" else (x | tostring) end;
	def r(x): if x == null then "-" else ((x * 100 | round) / 100 | tostring) end;
	"machine: \(.machine.nproc) x \(.machine.model_name), \(.machine.kernel), \(.machine.date), load \(.machine.loadavg_start) -> \(.machine.loadavg_end)",
	"",
	"scenario\tdeliveries/s\tlimit/s\tratio\tcpu us/dlv\trss MB\tredis ms/1000\tconnections\twaiting at receiver avg/max",
	((keys_unsorted | map(select(test("^(fanout[14]|nginx[14]|slow_)"))) | .[]) as $k | .[$k] |
	 "\($k)\t\(n(.deliveries_per_s))\t\(n(.limit.rate))\t\(n(.ratio_to_limit))\t\(r(.service_cpu_s_per_1000 | if . then . * 1000 else null end))\t\(r(.service_rss_peak_mb))\t\(r(.redis_cpu_s_per_1000 | if . then . * 1000 else null end))\t\(n(.receiver_connections_max))\t\(r(.receiver_pending_avg))/\(n(.receiver_pending_max))"),
	"",
	(.limits | to_entries[] | select(.value != null) |
	 "limit \(.key) (minimal client, concurrency/loop rate): \([.value.runs[] | "\(.concurrency)/\(.mode) \(.rate)"] | join(", ")); best \(.value.best.concurrency)/\(.value.best.mode) \(.value.rate)"),
	"",
	"latency\toffered/s\tp50 ms\tp99 ms\tmax ms\tadds p99 ms\tKafka alone: produce->consume p50/p99/max ms",
	(["latency1", "latency4"][] as $k | .[$k] | select(. != null) |
	 "\($k)\t\(.offered_deliveries_per_s)\t\(r(.latency_ms.p50))\t\(r(.latency_ms.p99))\t\(r(.latency_ms.max))\t\(r(.service_adds_p99_ms))\t\(r(.producer.consume_ms.p50))/\(r(.producer.consume_ms.p99))/\(r(.producer.consume_ms.max))"),
	"",
	(.isolation | select(.healthy != null) |
	 "isolation: nine healthy targets \(.healthy.nine_deliveries_per_s)/s with all ten healthy, \(.one_hung.nine_deliveries_per_s)/s with one hung: ratio \(n(.ratio))"),
	(.scaleout | select(.one != null) |
	 "scale-out: one replica \(.one.deliveries_per_s)/s, two \(n(.two.deliveries_per_s))/s: ratio \(n(.ratio)); duplicates \(n(.two.duplicates)) (one replica: \(.one.duplicates))"),
	"",
	"targets (issue 16):",
	(.targets[] | "  \(if .pass then "ok  " else "MISS" end) \(.what): \(n(.value)) (\(if .at_least then "at least \(.at_least)" else "at most \(.at_most)" end))")
' "$out" | awk -F'\t' '{ if (NF > 1) { for (i = 1; i <= NF; i++) printf "%-14s", $i; printf "\n" } else print }'
echo "results: $out"
