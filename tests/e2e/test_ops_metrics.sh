#!/bin/sh
# /metrics end to end (issue 6): N events with the receiver slowed build a
# backlog.
#   While it drains: promo_webhooks_kafka_consumer_lag{topic,partition}
#   sums to more than 0 and promo_webhooks_oldest_unfinished_event_age_seconds
#   is above 0 for some partition.
#   After the drain: the lag is 0 and the age 0 for every partition (all 4
#   assigned partitions reported), nothing in flight, and the counters match
#   what the receiver saw: deliveries_total{outcome="success"} and the
#   duration histogram's _count equal the requests recorded, and no other
#   outcome was counted.
#   The output is valid Prometheus text (0.0.4) both during the backlog and
#   after it.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.opsmetrics.$$
GROUP=e2e-opsmetrics-$$
REDIS_DB=8
TYPE=Product.ImportCompleted
N=2000
PARTS=4

# prom_check FILE: fails the test unless FILE is valid Prometheus text:
# comments are "# HELP name text" or "# TYPE name type"; every other line is
# "name value" or "name{label="value",...} value" with a float value; each
# family has exactly one TYPE, given before its samples; histogram samples
# are name_bucket (with le), name_sum, name_count, the buckets cumulative
# and the +Inf bucket equal to _count; counters end in _total; every name
# starts with promo_webhooks_; no series appears twice.
prom_check() {
	awk '
	function bad(msg) { printf "line %d: %s: %s\n", NR, msg, $0; err = 1 }
	/^$/ { bad("empty line"); next }
	/^# HELP / { next }
	/^# TYPE / {
		if (NF != 4) { bad("malformed TYPE"); next }
		if ($4 !~ /^(counter|gauge|histogram|summary|untyped)$/) bad("unknown type")
		if ($3 in type) bad("second TYPE for " $3)
		type[$3] = $4
		if ($4 == "counter" && $3 !~ /_total$/) bad("counter without _total")
		next
	}
	/^#/ { bad("comment that is neither HELP nor TYPE"); next }
	{
		if (NF != 2) { bad("want \"series value\""); next }
		series = $1; value = $2
		if (value !~ /^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$/ &&
		    value !~ /^([-+]Inf|NaN)$/)
			bad("value is not a float")
		name = series; labels = ""
		b = index(series, "{")
		if (b) {
			name = substr(series, 1, b - 1); labels = substr(series, b)
			if (labels !~ /^\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\}$/)
				bad("malformed labels")
		}
		if (name !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) bad("malformed name")
		if (name !~ /^promo_webhooks_/) bad("name without the promo_webhooks_ prefix")
		if (series in seen) bad("duplicate series")
		seen[series] = 1
		fam = name
		if (!(fam in type)) {
			base = name
			sub(/_(bucket|sum|count)$/, "", base)
			if ((base in type) && type[base] == "histogram") fam = base
		}
		if (!(fam in type)) { bad("sample before or without a TYPE"); next }
		if (type[fam] != "histogram") next
		if (name == fam) { bad("histogram sample without a suffix"); next }
		# Histogram: one series key = the labels without le.
		key = labels
		if (name == fam "_bucket") {
			if (labels !~ /le="/) { bad("bucket without le"); next }
			le = labels; sub(/.*le="/, "", le); sub(/".*/, "", le)
			key = labels; sub(/,?le="[^"]*"/, "", key); sub(/^\{,/, "{", key)
			if (key == "{}") key = ""
			if ((fam key) in last && value + 0 < last[fam key]) bad("buckets not cumulative")
			last[fam key] = value + 0
			if (le == "+Inf") inf[fam key] = value
		} else if (name == fam "_count") {
			cnt[fam key] = value
		}
	}
	END {
		for (k in cnt) {
			if (!(k in inf)) { printf "histogram %s has no +Inf bucket\n", k; err = 1 }
			else if (inf[k] != cnt[k]) { printf "histogram %s: +Inf bucket %s != count %s\n", k, inf[k], cnt[k]; err = 1 }
		}
		for (k in inf) if (!(k in cnt)) { printf "histogram %s has no _count\n", k; err = 1 }
		exit err
	}' "$1" >"$T/prom_check.out" || fail "/metrics is not valid Prometheus text ($1): $(head -n 5 "$T/prom_check.out")"
}

# scrape FILE: /metrics into FILE; checks the status and the content type.
scrape() {
	ctype=$(curl -s -o "$1" -w '%{http_code} %{content_type}' "$API/metrics")
	case $ctype in
	"200 text/plain; version=0.0.4"*) ;;
	*) fail "GET /metrics answered \"$ctype\"" ;;
	esac
}

# lag_lines: the consumer lag series of $TOPIC ("partition value" lines).
lag_lines() {
	curl -s "$API/metrics" | awk -v t="$TOPIC" '
		index($1, "promo_webhooks_kafka_consumer_lag{") == 1 && index($1, "topic=\"" t "\"") {
			p = $1; sub(/.*partition="/, "", p); sub(/".*/, "", p); print p, $2 }'
}

# lag_backlog: the lag of $TOPIC sums to more than 0.
lag_backlog() {
	lag_lines | awk '{ s += $2 } END { exit !(s > 0) }'
}

# lag_zero: every one of the $PARTS partitions reports a lag of 0.
lag_zero() {
	lag_lines | awk -v n=$PARTS '$2 == 0 { z++ } END { exit !(NR == n && z == n) }'
}

# age_lines: the time lag series of $TOPIC ("partition value" lines).
age_lines() {
	curl -s "$API/metrics" | awk -v t="$TOPIC" '
		index($1, "promo_webhooks_oldest_unfinished_event_age_seconds{") == 1 && index($1, "topic=\"" t "\"") {
			p = $1; sub(/.*partition="/, "", p); sub(/".*/, "", p); print p, $2 }'
}

age_positive() {
	age_lines | awk '$2 > 0 { f = 1 } END { exit !f }'
}

age_zero() {
	age_lines | awk -v n=$PARTS '$2 == 0 { z++ } END { exit !(NR == n && z == n) }'
}

# series_value FILE SERIES: the value of one exact series in a scrape.
series_value() {
	awk -v s="$2" '$1 == s { print $2; f = 1 } END { if (!f) print "missing" }' "$1"
}

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:$PARTS" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
# 4 deliveries at a time, 25 ms each: about 160 a second, so the backlog of
# N events lasts over 10 s, several statistics intervals.
start_receiver recv --rule /m=200,delay_ms=25
service_env
export PROMO_WEBHOOKS_MAX_IN_FLIGHT_PER_TARGET=4
# The lag comes from librdkafka's statistics: every second, not every 5.
export PROMO_WEBHOOKS_RDKAFKA_STATISTICS_INTERVAL_MS=1000
start_service first
create_webhook acme $TYPE "http://127.0.0.1:$RECV_PORT/m"
wait_for 5 "the registry cache to hold the webhook" metric_is promo_webhooks_registry_webhooks 1
scrape "$T/idle.prom"
prom_check "$T/idle.prom"

info "producing $N events with the receiver slowed"
awk -v n=$N -v t=$TYPE 'BEGIN { for (i = 1; i <= n; i++)
	printf "acme-%d|{\"specversion\":\"1.0\",\"id\":\"ev-%d\",\"source\":\"/promo\",\"type\":\"%s\",\"time\":\"2026-11-28T09:00:00Z\",\"companyid\":\"acme\",\"data\":{\"seq\":%d}}\n", i, i, t, i }' >"$T/events.in"
produce_lines "$T/events.in"

wait_for 30 "the consumer lag gauge to show a backlog" lag_backlog
wait_for 10 "the oldest unfinished event age above 0" age_positive
lag_lines >"$T/lag.backlog"
info "lag during the backlog: $(tr '\n' ' ' <"$T/lag.backlog")"
scrape "$T/backlog.prom"
prom_check "$T/backlog.prom"
[ "$(recorded /m)" -lt "$N" ] || fail "the backlog drained before it was observed; nothing was tested"

info "draining"
wait_for 120 "all offsets of $GROUP committed" all_committed
wait_for 15 "the consumer lag back to 0 on all $PARTS partitions" lag_zero
wait_for 5 "the oldest unfinished event age back to 0" age_zero
wait_for 5 "nothing in flight" metric_is promo_webhooks_deliveries_in_flight 0

scrape "$T/drained.prom"
prom_check "$T/drained.prom"
got=$(recorded /m)
total=$(recorded)
distinct=$(jq -r '.headers["webhook-id"]' "$RECV_LOG" | sort -u | wc -l)
info "receiver: $got requests at /m, $total in all, $distinct distinct webhook-ids"
[ "$distinct" -eq "$N" ] || fail "distinct webhook-ids = $distinct, want $N"
[ "$total" -eq "$got" ] || fail "requests outside /m: $total in all, $got at /m"

success=$(series_value "$T/drained.prom" "promo_webhooks_deliveries_total{event=\"$TYPE\",outcome=\"success\"}")
[ "$success" = "$got" ] ||
	fail "deliveries_total{event=\"$TYPE\",outcome=\"success\"} = $success, the receiver recorded $got"
all_success=$(awk 'index($1, "promo_webhooks_deliveries_total{") == 1 && index($1, "outcome=\"success\"") { s += $2 } END { print s + 0 }' "$T/drained.prom")
[ "$all_success" = "$got" ] || fail "successes over all event types = $all_success, want $got"
others=$(awk 'index($1, "promo_webhooks_deliveries_total{") == 1 && !index($1, "outcome=\"success\"") { s += $2 } END { print s + 0 }' "$T/drained.prom")
[ "$others" = 0 ] || fail "$others deliveries counted with an outcome other than success"
count=$(series_value "$T/drained.prom" "promo_webhooks_delivery_duration_seconds_count{event=\"$TYPE\"}")
[ "$count" = "$got" ] || fail "delivery_duration_seconds_count = $count, want $got"
# Every attempt took at least the receiver's 25 ms.
sum=$(series_value "$T/drained.prom" "promo_webhooks_delivery_duration_seconds_sum{event=\"$TYPE\"}")
awk -v s="$sum" -v n="$got" 'BEGIN { exit !(s >= n * 0.025) }' ||
	fail "delivery_duration_seconds_sum = $sum, below $got x 25 ms"
consumed=$(series_value "$T/drained.prom" promo_webhooks_events_consumed_total)
[ "$consumed" -ge "$N" ] || fail "events_consumed_total = $consumed, want >= $N"
# The committed offsets sum to N (the partitions' ends).
committed=$(awk -v t="$TOPIC" 'index($1, "promo_webhooks_kafka_committed_offset{") == 1 && index($1, "topic=\"" t "\"") { s += $2; n++ }
	END { print n + 0, s + 0 }' "$T/drained.prom")
[ "$committed" = "$PARTS $N" ] || fail "committed offsets (partitions, sum) = $committed, want $PARTS $N"

# The README's metrics table is the one list of what /metrics exports: the
# same families, each with the same type and label names (le aside).
readme=$PW_SCRIPTS/../../README.md
awk -F'|' '$2 ~ /^ `promo_webhooks_[a-z0-9_]+` $/ {
	n = $2; gsub(/[ `]/, "", n); t = $3; gsub(/ /, "", t); l = $4; gsub(/ /, "", l)
	print n, t, (l == "" ? "-" : l) }' "$readme" | sort >"$T/metrics.readme"
[ -s "$T/metrics.readme" ] || fail "no metrics table (| \`promo_webhooks_...\` |) in $readme"
awk '/^# TYPE / { type[$3] = $4; next }
	/^#/ { next }
	{	name = $1; labels = ""
		b = index(name, "{")
		if (b) { labels = substr(name, b + 1); name = substr(name, 1, b - 1); sub(/}$/, "", labels) }
		if (!(name in type)) sub(/_(bucket|sum|count)$/, "", name)
		k = ""
		nl = split(labels, kv, /",/)
		for (i = 1; i <= nl; i++) { split(kv[i], p, "="); if (p[1] != "le") k = k (k == "" ? "" : ",") p[1] }
		if (!(name in lab)) lab[name] = k
	}
	END { for (n in type) print n, type[n], (lab[n] == "" ? "-" : lab[n]) }' "$T/drained.prom" | sort >"$T/metrics.scraped"
if ! diff "$T/metrics.readme" "$T/metrics.scraped" >"$T/metrics.diff"; then
	fail "README.md's metrics table (<) and /metrics (>) disagree: $(grep '^[<>]' "$T/metrics.diff" | tr '\n' ';')"
fi
info "README's metrics table matches /metrics: $(wc -l <"$T/metrics.scraped") families"
stop_service
echo "PASS"
