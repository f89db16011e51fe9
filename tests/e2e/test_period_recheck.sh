#!/bin/sh
# A period occurrence does not outlive its promotion (issue 12 part 5): a
# StartingInPeriod occurrence whose target fails keeps being retried (a
# 1 s schedule) until a Promotion.Deleted, or an update that moves S; the
# next attempt re-checks the promotion and is dropped, with its retry, and
# counted in promo_webhooks_period_occurrences_dropped_total.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.recheck.$$
GROUP=e2e-recheck-$$
REDIS_DB=13
START=Promotion.StartingInPeriod

now_ms() {
	date +%s%3N
}
iso() {
	printf '%s.%03dZ' "$(date -u -d "@$(($1 / 1000))" +%Y-%m-%dT%H:%M:%S)" $(($1 % 1000))
}
# promo_line TYPE EVENT_ID TIME_MS PROMOTION START_MS
promo_line() {
	printf 'acme|{"specversion":"1.0","id":"%s","source":"/promo/test","type":"%s","time":"%s","companyid":"acme","data":{"promotionId":"%s","startDate":"%s","endDate":null}}\n' \
		"$2" "$1" "$(iso "$3")" "$4" "$(iso "$5")"
}
attempts() {
	jq -c --arg x "$1" 'select(.path == "/p" and (.body | fromjson | .data.promotionId) == $x)' "$RECV_LOG" | wc -l
}
metric_at_least() {
	v=$(metric "$1")
	[ -n "$v" ] && [ "$v" -ge "$2" ]
}
attempts_at_least() {
	[ "$(attempts "$1")" -ge "$2" ]
}

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:1" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver recv
set_rule "$RECV_PORT" /p 500
service_env
export PROMO_WEBHOOKS_SCHEDULER_TICK_MS=200
export PROMO_WEBHOOKS_RETRY_SCHEDULE=1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1
export PROMO_WEBHOOKS_FAILURE_THRESHOLD=1000
start_service svc
api POST /v1/companies/acme/webhooks "$(jq -cn --arg t "http://127.0.0.1:$RECV_PORT/p" \
	'{event: "Promotion.StartingInPeriod", target: $t, notificationPeriod: "Minutes", notificationPeriodValue: 1}')"
[ "$HTTP_STATUS" = 201 ] || fail "create webhook: HTTP $HTTP_STATUS $(cat "$T/resp")"
wait_for 5 "the registry cache" metric_is promo_webhooks_registry_webhooks 1

t0=$(now_ms)
# Both inside the window at once (S 30 s away, P 1 minute).
promo_line Promotion.Created c-del "$t0" DEL $((t0 + 30000)) >"$T/ev.in"
promo_line Promotion.Created c-mov "$t0" MOV $((t0 + 30000)) >>"$T/ev.in"
produce_lines "$T/ev.in"
wait_for 30 "two failed attempts of DEL" attempts_at_least DEL 2
wait_for 30 "two failed attempts of MOV" attempts_at_least MOV 2

info "deleting DEL, moving MOV's start"
t1=$(now_ms)
promo_line Promotion.Deleted d-del "$t1" DEL $((t0 + 30000)) >"$T/ev2.in"
promo_line Promotion.Updated u-mov "$t1" MOV $((t0 + 50000)) >>"$T/ev2.in"
produce_lines "$T/ev2.in"
wait_for 30 "both old occurrences dropped" metric_at_least promo_webhooks_period_occurrences_dropped_total 2
n_del=$(attempts DEL)
old_s=$(iso $((t0 + 30000)))
new_s=$(iso $((t0 + 50000)))
old_mov() {
	jq -c --arg s "$old_s" 'select(.path == "/p" and (.body | fromjson | .data.startDate) == $s and (.body | fromjson | .data.promotionId) == "MOV")' "$RECV_LOG" | wc -l
}
new_mov_at_least() {
	[ "$(jq -c --arg s "$new_s" 'select(.path == "/p" and (.body | fromjson | .data.startDate) == $s)' "$RECV_LOG" | wc -l)" -ge "$1" ]
}
n_old=$(old_mov)
# Time passes with retries flowing: the new S's occurrence is attempted
# (and retried every second) three times meanwhile.
wait_for 30 "the moved occurrence attempted 3 times" new_mov_at_least 3
[ "$(attempts DEL)" -eq "$n_del" ] || fail "the deleted promotion's occurrence was attempted again ($n_del -> $(attempts DEL))"
[ "$(old_mov)" -eq "$n_old" ] || fail "the occurrence of the old S was attempted again ($n_old -> $(old_mov))"
# One retry left in Redis: the moved occurrence's.
[ "$(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" hlen {pw}:retry-jobs)" = 1 ] ||
	fail "want only the new occurrence's retry, got $(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" hlen {pw}:retry-jobs)"
stop_service
echo "PASS"
