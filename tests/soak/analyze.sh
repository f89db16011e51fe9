#!/bin/sh
# tests/soak/analyze.sh WORK_DIR: the soak's checks and figures, from what
# the soak collected outside the service (soak.sh): the receivers' records,
# the event, email and dead-letter topics, the group's committed offsets,
# the failure windows in Redis, the webhooks as the admin API shows them,
# the operator's log of disables and re-enables, the fault log, VmRSS and
# used_memory samples. Can be run again on a kept work directory.
#
# Checks (each prints FAIL and the run fails):
#   - every (event, webhook) pair delivered: a 2xx at the receiver for the
#     healthy and slow webhooks; an attempt at the receiver for the failing
#     and flapping ones unless the webhook was disabled by the rule at or
#     after the event was produced (or re-enabled less than 2 s before: a
#     replica's cache sees a change within a second, README "Cache"); for
#     every promotion's final state (not
#     deleted) each period webhook of its company got its StartingInPeriod
#     and EndingInPeriod delivery with the final dates;
#   - every disable justified: at least THRESHOLD failing answers (non-2xx
#     or a dropped connection) the receiver gave that webhook within the
#     window before it; only failing and flapping webhooks disabled;
#   - no attempt counted twice: every failure the service counted (in the
#     notices, and the failure windows left in Redis) is matched to a
#     distinct failing answer of the receiver (one to one, the answer
#     arriving within -1 s..+5 s of the failure's time);
#   - exactly one notice per disable, and none without one;
#   - lag 0 on every partition; every SIGTERM exit 0, every kill -9 exit
#     137 (no replica died by itself); every invalid message on the
#     dead-letter topic;
#   - each replica's VmRSS within the README's bound computed from the
#     settings, Redis' used_memory within REDIS_BOUND_BYTES.
# Figures: WORK_DIR/soak.json, and printed.
set -eu
W=$1
. "$W/settings.env"

# ---- compact inputs (one JSON object a line)

for f in "$W"/recv/*.jsonl; do
	name=$(basename "$f" .jsonl)
	jq -c --arg r "$name" '(.body | try fromjson catch {}) as $b |
		{r: $r, path, st: (if .dropped then null else .status end), at: .at_ms,
		 mid: (.headers["webhook-id"] // null), wh: ($b.webhookId // null), ev: ($b.event // null),
		 eid: ($b.data.eventId // null), pid: ($b.data.promotionId // null),
		 sd: ($b.data.startDate // null), ed: ($b.data.endDate // null)}' "$f"
done >"$W/a.recs.jsonl"

jq -c '(.payload | try fromjson catch null) as $e |
	if ($e | type) == "object" and ($e.id | type) == "string" then
		{id: $e.id, c: $e.companyid, t: $e.type, ts: .ts, time: $e.time,
		 pid: ($e.data.promotionId // null), sd: ($e.data.startDate // null), ed: ($e.data.endDate // null)}
	else {invalid: .key} end' "$W/events.json" >"$W/a.events.jsonl"

jq -c '{key, v: (.payload | try fromjson catch null)}' "$W/notices.json" >"$W/a.notices.jsonl"
jq -c '{key, size: ((.headers // []) as $h | [range(0; $h | length; 2) | select($h[.] == "x-original-size") | $h[. + 1]] | first)}' \
	"$W/dead-letters.json" >"$W/a.dlq.jsonl"

awk -F'\t' '{ printf "{\"id\":\"%s\",\"c\":\"%s\",\"ev\":\"%s\",\"cls\":\"%s\"}\n", $1, $2, $3, $4 }' \
	"$W/hooks.tsv" >"$W/a.hooks.jsonl"
awk -F'\t' '{ printf "{\"kind\":\"%s\",\"s\":%s,\"e\":%s,\"detail\":\"%s\"}\n", $1, $2, $3, $4 }' \
	"$W/faults.tsv" >"$W/a.faults.jsonl"
awk '{ printf "{\"op\":\"%s\",\"id\":\"%s\",\"at\":\"%s\",\"ms\":%s}\n", $1, $2, $3, $4 }' \
	"$W/disables.tsv" >"$W/a.ops.jsonl"
# The failure windows left in Redis: "<webhook id>\t<member>".
awk -F'\t' '$2 != "" { printf "{\"wh\":\"%s\",\"m\":%s}\n", $1, $2 }' "$W/final-failures.tsv" >"$W/a.fwin.jsonl"
# Rebalances the replicas saw (times).
cat "$W"/svc/*.log | jq -c -R 'try fromjson catch empty |
	select(.msg == "kafka partitions revoked, draining" or .msg == "kafka partitions lost") | .ts' \
	>"$W/a.rebalances.jsonl"
awk '$2 == "rss" { printf "{\"r\":\"%s\",\"kb\":%s}\n", $3, $4 } $2 == "redis" { printf "{\"redis\":%s}\n", $4 }' \
	"$W/samples.tsv" >"$W/a.samples.jsonl"
awk '{ printf "{\"p\":%s,\"committed\":%s,\"hw\":%s}\n", $1, $2, $3 }' "$W/final-offsets" >"$W/a.offsets.jsonl"

# README, "Backpressure": 64 MiB + MAX_IN_FLIGHT x (2 E + 16 KiB) +
# queued.max.messages.kbytes + fetch.max.bytes, E the largest event
# message: the invalid ~1 MB ones, so E = 1 MiB (the broker's limit).
RSS_BOUND_KB=$((64 * 1024 + MAX_IN_FLIGHT * (2 * 1024 + 16) + PREFETCH_KB + FETCH_MAX / 1024))

# What the service's own logs say (figures only, not checks).
logcount() {
	cat "$W"/svc/*.log | grep -c "$1" || true
}
LOGS=$(jq -cn --argjson stale "$(logcount '"retry outcome under a stale claim dropped"')" \
	--argjson twice "$(logcount '"retry claimed again while its attempt runs here')" \
	--argjson occ "$(logcount '"period occurrence dropped')" \
	--argjson unacked "$(logcount '"published notice not removed from the outbox"')" \
	--argjson errors "$(logcount '"level":"error"')" \
	'{stale_retry_outcomes_dropped: $stale, retries_not_started_twice: $twice,
	  period_occurrences_dropped: $occ, notices_not_removed: $unacked, error_lines: $errors}')

jq -n \
	--slurpfile recs "$W/a.recs.jsonl" --slurpfile events "$W/a.events.jsonl" \
	--slurpfile notices "$W/a.notices.jsonl" --slurpfile dlq "$W/a.dlq.jsonl" \
	--slurpfile hooks "$W/a.hooks.jsonl" --slurpfile faults "$W/a.faults.jsonl" \
	--slurpfile ops "$W/a.ops.jsonl" --slurpfile fwin "$W/a.fwin.jsonl" \
	--slurpfile final "$W/final-hooks.jsonl" --slurpfile rebal "$W/a.rebalances.jsonl" \
	--slurpfile samples "$W/a.samples.jsonl" --slurpfile offsets "$W/a.offsets.jsonl" \
	--argjson threshold "$THRESHOLD" --argjson window_ms "$((WINDOW_S * 1000))" \
	--argjson rss_bound_kb "$RSS_BOUND_KB" --argjson redis_bound "$REDIS_BOUND_BYTES" \
	--argjson duration "$DURATION" --argjson rate "$RATE" --argjson logs "$LOGS" '
# ISO 8601 (UTC, optional fraction) to ms.
def ms: capture("^(?<s>[^.Z]+)(\\.(?<f>[0-9]+))?Z$") |
	((.s + "Z") | fromdate) * 1000 + (((.f // "0") + "000")[0:3] | tonumber);
def ok: . != null and . >= 200 and . < 300;
def failing: . == null or . < 200 or . >= 300;

($hooks | map({key: .id, value: .}) | from_entries) as $H |
($events | map(select(.id)) | unique_by(.id)) as $ev |
($events | map(select(.invalid) | .invalid)) as $invalid |
# Disables: every one the operator saw, and those left at the end.
(([$ops[] | select(.op == "disabled") | {id, at}]
  + [$final[] | select(.enabled == false) | {id, at: .disabledAt}]) | unique) as $dis0 |
($ops | map(select(.op == "enabled")) | map({key: (.id + " " + .at), value: .ms}) | from_entries) as $reen |
($dis0 | map(. + {ms: (.at | ms), re: $reen[.id + " " + .at]})) as $dis |
($dis | group_by(.id) | map({key: .[0].id, value: .}) | from_entries) as $disby |
# Receiver records by (webhook, event) and by webhook.
($recs | map(select(.wh != null and .eid != null)) |
	reduce .[] as $r ({}; .[$r.wh + "|" + $r.eid] |= ((. // {any: 0, ok: 0}) |
		.any += 1 | if ($r.st | ok) then .ok += 1 else . end))) as $pair |
($recs | map(select(.wh != null)) | group_by(.wh) | map({key: .[0].wh, value: .}) | from_entries) as $bywh |

# 1. every (event, webhook) pair
([ $ev[] as $e | $hooks[] | select(.c == $e.c and .ev == $e.t) as $h |
   ($pair[$h.id + "|" + $e.id] // {any: 0, ok: 0}) as $p |
   if ($h.cls == "healthy" or $h.cls == "slow") then
     (if $p.ok == 0 then {event: $e.id, webhook: $h.id, cls: $h.cls, why: "no 2xx delivery"} else empty end)
   elif $p.any > 0 then empty
   elif any(($disby[$h.id] // [])[]; .re == null or .re >= $e.ts - 2000) then empty
   else {event: $e.id, webhook: $h.id, cls: $h.cls, why: "no attempt and not disabled"} end ]) as $missing |
([ $ev[] as $e | $hooks[] | select(.c == $e.c and .ev == $e.t) ] | length) as $pairs_expected |
([ $ev[] as $e | $hooks[] | select(.c == $e.c and .ev == $e.t and (.cls == "failing" or .cls == "flapping")) |
   select((($pair[.id + "|" + $e.id] // {any: 0}).any) == 0) ] | length) as $excused |

# 2. period occurrences of every promotion'"'"'s final state
($ev | map(select(.t | startswith("Promotion."))) | group_by(.c + "/" + .pid) |
	map(max_by(.time)) | map(select(.t != "Promotion.Deleted"))) as $promos |
([ $promos[] as $x | $hooks[] | select(.c == $x.c and .cls == "period") as $h |
   (if $h.ev == "Promotion.StartingInPeriod" then {f: "sd", v: $x.sd} else {f: "ed", v: $x.ed} end) as $want |
   select($want.v != null) |
   if any($bywh[$h.id][]?; .ev == $h.ev and .pid == $x.pid and .[$want.f] == $want.v and (.st | ok))
   then empty else {promotion: $x.pid, webhook: $h.id, event: $h.ev, date: $want.v, why: "no occurrence delivered"} end ]) as $period_missing |
([ $promos[] as $x | $hooks[] | select(.c == $x.c and .cls == "period") ] | length) as $period_expected |

# 3. disables justified, and only of failing or flapping webhooks
([ $dis[] | . as $d | ($H[$d.id].cls) as $cls |
   ([ $bywh[$d.id][]? | select((.st | failing) and .at >= $d.ms - $window_ms and .at <= $d.ms + 1000) ] | length) as $n |
   if ($cls != "failing" and $cls != "flapping") then {webhook: $d.id, cls: $cls, disabledAt: $d.at, why: "a webhook that never failed was disabled"}
   elif $n < $threshold then {webhook: $d.id, disabledAt: $d.at, failing_answers: $n, why: "disabled with fewer failing answers than the threshold"}
   else empty end ]) as $unjustified |

# 4. no attempt counted twice: the counted failures (notices, and the
# windows in Redis of webhooks enabled at the end) matched one to one to
# failing answers.
($final | map(select(.enabled == true) | .id) | map({key: ., value: true}) | from_entries) as $enabled_end |
(($notices | map(select(.v != null) | {wh: .key, at: (.v.failures[]?.at)}))
 + ($fwin | map(select($enabled_end[.wh]) | {wh, at: .m.at}))) as $counted |
([ $counted | group_by(.wh)[] | . as $fs | ($fs[0].wh) as $w |
   ($fs | map(.at | ms) | sort) as $f |
   ([ $bywh[$w][]? | select(.st | failing) | .at ] | sort) as $r |
   (reduce $f[] as $x ({j: 0, bad: []};
      until(.j >= ($r | length) or $r[.j] >= $x - 1000; .j += 1) |
      if .j < ($r | length) and $r[.j] <= $x + 5000 then .j += 1
      else .bad += [$x] end)) |
   .bad[] | {webhook: $w, failure_at: (. / 1000 | todate), why: "a counted failure without its own failing answer (counted twice?)"} ]) as $double |

# 5. one notice per disable
($notices | map(select(.v != null) | {id: .key, at: .v.disabledAt}) | group_by(.id + " " + .at) |
	map({key: (.[0].id + " " + .[0].at), value: length}) | from_entries) as $ncount |
([ $dis[] | ($ncount[.id + " " + .at] // 0) as $n | select($n != 1) |
   {webhook: .id, disabledAt: .at, notices: $n, why: "want exactly one notice"} ]
 + [ $ncount | keys[] as $k | select(any($dis[]; (.id + " " + .at) == $k) | not) |
   {notice: $k, why: "a notice without a disable"} ]) as $notice_bad |

# 6. lag, exits, dead letters
([ $offsets[] | select(.hw != 0 and .committed != .hw) | {partition: .p, committed, hw, why: "lag"} ]) as $lag |
([ $faults[] | select((.kind == "sigterm" or .kind == "final_stop") and (.detail | test("exit=0$") | not)) |
   {fault: .kind, detail, why: "SIGTERM exit not 0"} ]
 + [ $faults[] | select(.kind == "kill9" and (.detail | test("exit=137$") | not)) |
   {fault: .kind, detail, why: "the replica was not alive when killed"} ]) as $exits |
([ $invalid[] | select(. as $k | any($dlq[]; .key == $k) | not) | {key: ., why: "invalid message not on the dead-letter topic"} ]
 + [ $dlq[] | select(.key | startswith("perm-big-")) | select(.size == null) | {key, why: "no x-original-size on a big copy"} ]) as $dead |

# 7. memory
($samples | map(select(.r)) | group_by(.r) | map({key: .[0].r, value: (map(.kb) | max)}) | from_entries) as $rss |
([ $samples[] | .redis // empty ] | max // 0) as $redis_max |
([ $rss | to_entries[] | select(.value > $rss_bound_kb) | {replica: .key, kb: .value, bound_kb: $rss_bound_kb, why: "resident memory over the bound"} ]
 + (if $redis_max > $redis_bound then [{redis_used_memory: $redis_max, bound: $redis_bound, why: "Redis memory over the bound"}] else [] end)
 + (if ($rss | length) == 0 or $redis_max == 0 then [{why: "no memory samples"}] else [] end)) as $mem |

# Duplicates: a further 2xx of a (event, webhook) pair (same webhook-id),
# caused by the first fault (or else rebalance) between 5 s before the
# earlier delivery and this one.
($rebal | map(ms)) as $rb |
([ $recs | map(select(.mid != null and (.st | ok))) | group_by(.mid)[] | select(length > 1) |
   sort_by(.at) | . as $d | range(1; length) as $i | {t1: $d[$i - 1].at, t2: $d[$i].at} ] |
   map(. as $x | ([ $faults[] | select(.kind != "final_stop" and .s >= $x.t1 - 5000 and .s <= $x.t2) ] | min_by(.s) | .kind) //
       (if any($rb[]; . >= $x.t1 - 5000 and . <= $x.t2) then "rebalance" else "unattributed" end))) as $dupcauses |

{
  settings: {seconds: $duration, events_per_second: $rate, threshold: $threshold, window_s: ($window_ms / 1000)},
  events: ($ev | length),
  invalid_messages: ($invalid | length),
  webhooks: ($hooks | length),
  pairs_expected: $pairs_expected,
  pairs_excused_by_disable: $excused,
  period_occurrences_expected: ([ $promos[] as $x | $hooks[] | select(.c == $x.c and .cls == "period") |
     select((if .ev == "Promotion.StartingInPeriod" then $x.sd else $x.ed end) != null) ] | length),
  deliveries: ($recs | length),
  deliveries_2xx: ($recs | map(select(.st | ok)) | length),
  failing_answers: ($recs | map(select(.st | failing)) | length),
  failures_counted: ($counted | length),
  duplicates: ($dupcauses | length),
  duplicates_by_cause: ($dupcauses | group_by(.) | map({key: .[0], value: length}) | from_entries),
  faults: ($faults | map(select(.kind != "final_stop")) | group_by(.kind) | map({key: .[0].kind, value: length}) | from_entries),
  faults_total: ($faults | map(select(.kind != "final_stop")) | length),
  rebalances_seen: ($rb | length),
  disables: ($dis | length),
  notices: ($notices | length),
  dead_letters: ($dlq | length),
  max_rss_kb: $rss,
  rss_bound_kb: $rss_bound_kb,
  max_redis_used_memory: $redis_max,
  redis_bound: $redis_bound,
  lag: ([ $offsets[] | if .hw == 0 then 0 else .hw - .committed end ] | add),
  service_logs: $logs,
  problems: {
    missing_pairs: ($missing | length), missing_period: ($period_missing | length),
    unjustified_disables: ($unjustified | length), counted_twice: ($double | length),
    notices: ($notice_bad | length), lag: ($lag | length), exits: ($exits | length),
    dead_letters: ($dead | length), memory: ($mem | length)},
  examples: (($missing[:5]) + ($period_missing[:5]) + ($unjustified[:5]) + ($double[:5])
    + ($notice_bad[:5]) + $lag + $exits + ($dead[:5]) + $mem)
}' >"$W/soak.json"

jq . "$W/soak.json"
n=$(jq '[.problems[]] | add' "$W/soak.json")
[ "$(jq '.events' "$W/soak.json")" -gt 0 ] || { echo "FAIL: no event was produced" >&2; exit 1; }
[ "$(jq '.disables' "$W/soak.json")" -gt 0 ] || { echo "FAIL: no webhook was disabled: the rule was not exercised" >&2; exit 1; }
if [ "$n" -ne 0 ]; then
	echo "FAIL: $n problems (see .examples above; figures in $W/soak.json)" >&2
	exit 1
fi
echo "PASS: soak figures in $W/soak.json"
