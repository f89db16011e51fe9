#!/bin/sh
# Period events (contract section 6), end to end on two replicas with a
# 200 ms scheduler tick and 1-minute periods, dates seconds away:
#   starting: S = now + 65 s gives one delivery about 5 s in, none later;
#   ending: the same with the end date; a date already inside the window
#   fires at once; moved dates fire for the new S only; a deleted promotion
#   never fires; another company's webhook never fires; a webhook created
#   inside the window fires within a tick; each occurrence is delivered
#   once across the two replicas; the body is the promotion's data plus
#   notificationPeriod/notificationPeriodValue, with webhook-id = body id.
# Then a replica killed right after a claim (exit-after-claim): after a
# restart the occurrence is delivered once, with the claimed webhook-id.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.periods.$$
GROUP=e2e-periods-$$
REDIS_DB=0
START=Promotion.StartingInPeriod
END=Promotion.EndingInPeriod

now_ms() {
	date +%s%3N
}

# iso MS: RFC 3339 UTC with milliseconds.
iso() {
	printf '%s.%03dZ' "$(date -u -d "@$(($1 / 1000))" +%Y-%m-%dT%H:%M:%S)" $(($1 % 1000))
}

# promo_line COMPANY TYPE EVENT_ID TIME_MS DATA: one structured event.
promo_line() {
	printf '%s|{"specversion":"1.0","id":"%s","source":"/promo/test","type":"%s","time":"%s","companyid":"%s","data":%s}\n' \
		"$1" "$3" "$2" "$(iso "$4")" "$1" "$5"
}

# promo_data ID START_MS|null END_MS|null [EXTRA JSON MEMBERS]
promo_data() {
	s=null
	e=null
	[ "$2" = null ] || s="\"$(iso "$2")\""
	[ "$3" = null ] || e="\"$(iso "$3")\""
	printf '{"promotionId":"%s","startDate":%s,"endDate":%s%s}' "$1" "$s" "$e" "${4:-}"
}

# period_webhook COMPANY EVENT PATH: a webhook with a 1-minute period.
period_webhook() {
	api POST "/v1/companies/$1/webhooks" "$(jq -cn --arg e "$2" --arg t "http://127.0.0.1:$RECV_PORT$3" \
		'{event: $e, target: $t, notificationPeriod: "Minutes", notificationPeriodValue: 1}')"
	[ "$HTTP_STATUS" = 201 ] || fail "create webhook $1 $2: HTTP $HTTP_STATUS $(cat "$T/resp")"
	HOOK_ID=$(jq -r .id "$T/resp")
}

# deliveries PATH PROMOTION: requests to PATH for that promotion.
deliveries() {
	jq -c --arg p "$1" --arg x "$2" 'select(.path == $p and (.body | fromjson | .data.promotionId) == $x)' "$RECV_LOG"
}

count() {
	deliveries "$1" "$2" | wc -l
}

delivered() {
	[ "$(count "$1" "$2")" -ge 1 ]
}

# arrival PATH PROMOTION: at_ms of the first delivery.
arrival() {
	deliveries "$1" "$2" | head -n 1 | jq -r .at_ms
}

# past MS: the clock is past MS.
past() {
	[ "$(now_ms)" -gt "$1" ]
}

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:4" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver recv
service_env
export PROMO_WEBHOOKS_SCHEDULER_TICK_MS=200
export PROMO_WEBHOOKS_RETRY_SCHEDULE=1,1
start_service one
PID_ONE=$SVC_PID
API_ONE=$API
start_service two
PID_TWO=$SVC_PID
API_TWO=$API
period_webhook acme $START /start
W_START=$HOOK_ID
period_webhook acme $END /end
period_webhook globex $START /other
for API in $API_ONE $API_TWO; do
	wait_for 5 "the registry cache of $API" metric_is promo_webhooks_registry_webhooks 3
done

info "promotions: starting in 65 s, ending in 63 s, inside the window, moved, deleted"
T0=$(now_ms)
S_START=$((T0 + 65000))
E_END=$((T0 + 63000))
S_MOVE_OLD=$((T0 + 90000))
S_MOVE=$((T0 + 70000))
S_DEL=$((T0 + 75000))
S_INSIDE=$((T0 + 30000))
S_LATE=$((T0 + 40000))
D_START=$(promo_data P-start "$S_START" $((T0 + 3600000)) ',"name":"Spring \"sale\"","tags":["a/b",null,1.5]')
: >"$T/batch1"
promo_line acme Promotion.Created c-start "$T0" "$D_START" >>"$T/batch1"
promo_line acme Promotion.Created c-end "$T0" "$(promo_data P-end $((T0 - 3600000)) "$E_END")" >>"$T/batch1"
promo_line acme Promotion.Created c-move "$T0" "$(promo_data P-move "$S_MOVE_OLD" null)" >>"$T/batch1"
promo_line acme Promotion.Created c-del "$T0" "$(promo_data P-del "$S_DEL" null)" >>"$T/batch1"
promo_line acme Promotion.Created c-inside "$T0" "$(promo_data P-inside "$S_INSIDE" null)" >>"$T/batch1"
promo_line initech Promotion.Created c-late "$T0" "$(promo_data P-late "$S_LATE" null)" >>"$T/batch1"
i=1
while [ $i -le 5 ]; do
	promo_line acme Promotion.Created "c-r$i" "$T0" "$(promo_data "P-r$i" $((T0 + 60000 + i * 300)) null)" >>"$T/batch1"
	i=$((i + 1))
done
produce_lines "$T/batch1"
wait_for 30 "the promotions stored" all_committed
wait_for 5 "P-inside (created inside its window) delivered" delivered /start P-inside

info "P-move gets a new start date, P-del is deleted"
promo_line acme Promotion.Updated u-move $((T0 + 1000)) "$(promo_data P-move "$S_MOVE" null)" >"$T/batch2"
promo_line acme Promotion.Deleted d-del $((T0 + 1000)) '{"promotionId":"P-del"}' >>"$T/batch2"
produce_lines "$T/batch2"
wait_for 30 "the changes stored" all_committed

info "a webhook created inside P-late's window fires within a tick"
CREATED=$(now_ms)
API=$API_ONE
period_webhook initech $START /late
wait_for 10 "P-late delivered" delivered /late P-late
took=$(($(arrival /late P-late) - CREATED))
info "P-late delivered $took ms after its webhook was created"
[ "$took" -le 2000 ] || fail "P-late delivered $took ms after the webhook was created"

info "the 1-minute windows open: P-r* about 1 s in, P-end 3 s, P-start 5 s"
wait_for 20 "P-end delivered" delivered /end P-end
wait_for 20 "P-start delivered" delivered /start P-start
for x in P-r1 P-r2 P-r3 P-r4 P-r5; do
	wait_for 5 "$x delivered" delivered /start "$x"
done
wait_for 20 "P-move delivered" delivered /start P-move

# Not before S - P, and within a second or so of it.
for pair in "/start P-start $S_START" "/end P-end $E_END" "/start P-move $S_MOVE"; do
	set -- $pair
	at=$(arrival "$1" "$2")
	late=$((at - ($3 - 60000)))
	info "$2 delivered $late ms after its window opened"
	[ "$late" -ge 0 ] || fail "$2 delivered ${late#-} ms before its window opened"
	[ "$late" -le 2000 ] || fail "$2 delivered $late ms after its window opened"
done

info "the body: the promotion's data plus the period; webhook-id = body id"
deliveries /start P-start >"$T/start.req"
jq -e --arg w "$W_START" --argjson d "$D_START" '
	(.body | fromjson) as $b
	| $b.event == "Promotion.StartingInPeriod" and $b.companyId == "acme"
	  and $b.webhookId == $w and $b.id == .headers["webhook-id"]
	  and ($b.id | test("^msg_[0-9a-f]{32}$"))
	  and $b.data == ($d + {notificationPeriod: "Minutes", notificationPeriodValue: 1})
	  and .headers["content-type"] == "application/json"' "$T/start.req" >/dev/null ||
	fail "P-start delivery: $(cat "$T/start.req")"
deliveries /end P-end | jq -e '(.body | fromjson) as $b | $b.event == "Promotion.EndingInPeriod"
	and $b.data.notificationPeriod == "Minutes" and $b.data.notificationPeriodValue == 1
	and $b.id == .headers["webhook-id"]' >/dev/null || fail "P-end delivery: $(deliveries /end P-end)"
# The moved promotion is delivered with its last known data.
deliveries /start P-move | jq -e --arg s "$(iso "$S_MOVE")" '(.body | fromjson).data.startDate == $s' >/dev/null ||
	fail "P-move delivered with stale data: $(deliveries /start P-move)"

info "waiting until every S has passed (and P-move's old window has opened)"
wait_for 90 "P-start's S to pass" past $((S_START + 500))
for x in P-start P-inside P-move P-r1 P-r2 P-r3 P-r4 P-r5; do
	[ "$(count /start "$x")" -eq 1 ] || fail "$x delivered $(count /start "$x") times at /start, want 1"
done
[ "$(count /end P-end)" -eq 1 ] || fail "P-end delivered $(count /end P-end) times, want 1"
[ "$(count /late P-late)" -eq 1 ] || fail "P-late delivered $(count /late P-late) times, want 1"
[ "$(count /start P-del)" -eq 0 ] || fail "the deleted P-del was delivered"
[ "$(jq -c 'select(.path == "/other")' "$RECV_LOG" | wc -l)" -eq 0 ] || fail "globex's webhook got acme's promotions"
[ "$(jq -c 'select(.path == "/end" and ((.body | fromjson).data.promotionId != "P-end"))' "$RECV_LOG" | wc -l)" -eq 0 ] ||
	fail "an unexpected ending delivery"
[ "$(wc -l <"$RECV_LOG")" -eq 10 ] || fail "want 10 deliveries in all, got $(wc -l <"$RECV_LOG")"
# One webhook-id per delivery: nothing was delivered twice.
[ "$(jq -r '.headers["webhook-id"]' "$RECV_LOG" | sort -u | wc -l)" -eq 10 ] || fail "a webhook-id repeats"
c1=$(API=$API_ONE metric promo_webhooks_period_occurrences_claimed_total)
c2=$(API=$API_TWO metric promo_webhooks_period_occurrences_claimed_total)
s1=$(API=$API_ONE metric promo_webhooks_scheduler_scans_total)
s2=$(API=$API_TWO metric promo_webhooks_scheduler_scans_total)
k1=$(API=$API_ONE metric promo_webhooks_scheduler_scans_skipped_total)
k2=$(API=$API_TWO metric promo_webhooks_scheduler_scans_skipped_total)
# Which replica scans a tick depends on the phase of their timers (the
# other one finds the lock held), so only the sums are asserted.
info "claims: replica one $c1, replica two $c2; passes: $s1 and $s2; skipped: $k1 and $k2"
[ $((c1 + c2)) -eq 10 ] || fail "the replicas claimed $((c1 + c2)) occurrences, want 10"
[ $((s1 + k1)) -gt 0 ] && [ $((s2 + k2)) -gt 0 ] || fail "a replica's scheduler never ticked"

info "a replica killed right after a claim"
SVC_PID=$PID_ONE
stop_service
SVC_PID=$PID_TWO
stop_service
export PROMO_WEBHOOKS_TEST_FAULT=exit-after-claim
start_service killed
PID_KILLED=$SVC_PID
T1=$(now_ms)
S_KILL=$((T1 + 62000))
promo_line acme Promotion.Created c-kill "$T1" "$(promo_data P-kill "$S_KILL" null)" >"$T/batch3"
produce_lines "$T/batch3"
wait_for 30 "the replica to claim P-kill and exit" grep -q '"test fault: exiting right after a claim"' "$T/killed.log"
set +e
wait "$PID_KILLED"
rc=$?
set -e
[ "$rc" -eq 137 ] || fail "the replica exited $rc, want 137 (exit-after-claim)"
[ "$(count /start P-kill)" -eq 0 ] || fail "P-kill was delivered before the replica died"
redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" hvals {pw}:retry-jobs |
	jq -e 'select(.promotionId == "P-kill")' >/dev/null ||
	fail "the claimed occurrence is not queued in Redis"
# msg_ + 32 hex of SHA-256(source NUL eventId NUL webhook NUL) (sign.c;
# source urn:promo-webhooks:period, eventId <promotion>:start:<S>)
MID=msg_$(printf 'urn:promo-webhooks:period\0%s\0%s\0' "P-kill:start:$S_KILL" "$W_START" |
	sha256sum | cut -c1-32)
unset PROMO_WEBHOOKS_TEST_FAULT
start_service restarted
wait_for 30 "P-kill delivered after the restart" delivered /start P-kill
[ "$(deliveries /start P-kill | jq -r '.headers["webhook-id"]')" = "$MID" ] ||
	fail "P-kill delivered with another webhook-id"
wait_for 10 "no retry pending" metric_is promo_webhooks_retries_pending 0
[ "$(count /start P-kill)" -eq 1 ] || fail "P-kill delivered $(count /start P-kill) times, want 1"
stop_service
echo "PASS"
