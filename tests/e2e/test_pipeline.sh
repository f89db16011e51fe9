#!/bin/sh
# End to end on real Kafka, Redis and HTTP receivers: two companies with a
# webhook on every published event type each, one event of each type per
# company (acme in structured mode, globex in binary mode); each receiver
# gets exactly its deliveries with the contract's fields and headers, a
# disabled webhook and another company's webhook get none; invalid messages
# land on the dead-letter topic with their headers.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.pipeline.$$
GROUP=e2e-pipeline-$$
REDIS_DB=1
TYPES="AttributeValues.ImportCompleted CouponCodes.GenerateCompleted CouponCodes.ImportCompleted CouponCodes.ReservedActivated Product.ImportCompleted Promotion.Created Promotion.Deleted Promotion.Updated"

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:4" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver acme
ACME_PORT=$RECV_PORT
ACME_LOG=$RECV_LOG
start_receiver globex
GLOBEX_PORT=$RECV_PORT
GLOBEX_LOG=$RECV_LOG
service_env
start_service svc

info "registering webhooks"
: >"$T/hooks"
for c in acme globex; do
	if [ $c = acme ]; then port=$ACME_PORT; else port=$GLOBEX_PORT; fi
	for ty in $TYPES; do
		create_webhook $c "$ty" "http://127.0.0.1:$port/$c/$ty"
		echo "$c $ty $HOOK_ID" >>"$T/hooks"
	done
	create_webhook $c Promotion.Created "http://127.0.0.1:$port/$c/disabled" false
done
# A third company's webhook: no event of initech is ever produced.
create_webhook initech Promotion.Created "http://127.0.0.1:$ACME_PORT/initech"
wait_for 5 "the registry cache to hold 19 webhooks" \
	sh -c "[ \"\$(curl -s $API/metrics | awk '\$1 == \"promo_webhooks_registry_webhooks\" { print \$2 }')\" = 19 ]"

data_for() {
	case $1 in
	Promotion.*)
		# Written by hand: jq would print 12.50 as 12.5.
		printf '{"promotionId":"P-%s","name":"Summer sale","startDate":"2026-12-01T00:00:00Z","endDate":null,"discount":12.50,"tags":["a","b"],"nested":{"deep":[1,{"x":true}]}}\n' "$2" ;;
	*)
		jq -cn --arg c "$2" '{importId: ("I-" + $c), rows: 1200, failed: 0}' ;;
	esac
}

info "producing one event of each type per company"
: >"$T/acme.in"
i=0
for ty in $TYPES; do
	i=$((i + 1))
	data=$(data_for "$ty" acme)
	printf 'acme|{"specversion":"1.0","id":"acme-%s","source":"/promo/acme","type":"%s","time":"2026-11-28T10:00:00.250+01:00","companyid":"acme","data":%s}\n' \
		"$i" "$ty" "$data" >>"$T/acme.in"
done
produce_lines "$T/acme.in"
i=0
for ty in $TYPES; do
	i=$((i + 1))
	data_for "$ty" globex | kcat -P -q -b "$KAFKA_BOOTSTRAP" -t "$TOPIC" -k globex \
		-H ce_specversion=1.0 -H "ce_id=globex-$i" -H ce_source=/promo/globex \
		-H "ce_type=$ty" -H ce_time=2026-11-28T09:00:00Z -H ce_companyid=globex \
		-H content-type=application/json
done

info "producing invalid messages"
cat >"$T/bad.in" <<'EOF'
bad1|this is not json
bad2|{"specversion":"1.0","id":"x","source":"/s","type":"Promotion.Created","time":"2026-11-28T09:00:00Z","data":{"promotionId":"p"}}
bad3|{"specversion":"1.0","id":"x","source":"/s","type":"Promotion.Exploded","time":"2026-11-28T09:00:00Z","companyid":"acme","data":{}}
bad4|{"specversion":"1.0","id":"x","source":"/s","type":"Promotion.StartingInPeriod","time":"2026-11-28T09:00:00Z","companyid":"acme","data":{"promotionId":"p"}}
bad5|{"specversion":"1.0","id":"x","source":"/s","type":"Product.ImportCompleted","time":"2026-11-28T09:00:00Z","companyid":"acme","data":[1,2]}
bad6|{"specversion":"1.0","id":"x","source":"/s","type":"Product.ImportCompleted","time":"yesterday","companyid":"acme","data":{}}
EOF
produce_lines "$T/bad.in"
echo '{"importId":"I-x"}' | kcat -P -q -b "$KAFKA_BOOTSTRAP" -t "$TOPIC" -k bad7 \
	-H ce_specversion=1.0 -H ce_id=bad7 -H ce_source=/s -H ce_time=2026-11-28T09:00:00Z \
	-H ce_companyid=acme

info "waiting until every event has its outcome and its offset is committed"
wait_for 60 "all offsets of $GROUP committed" all_committed
wait_for 10 "8 deliveries at acme" sh -c "[ \$(wc -l <$ACME_LOG) -ge 8 ]"
wait_for 10 "8 deliveries at globex" sh -c "[ \$(wc -l <$GLOBEX_LOG) -ge 8 ]"

info "checking the deliveries"
[ "$(wc -l <"$ACME_LOG")" -eq 8 ] || fail "acme received $(wc -l <"$ACME_LOG") requests, want 8"
[ "$(wc -l <"$GLOBEX_LOG")" -eq 8 ] || fail "globex received $(wc -l <"$GLOBEX_LOG") requests, want 8"
for c in acme globex; do
	if [ $c = acme ]; then log=$ACME_LOG; else log=$GLOBEX_LOG; fi
	if [ $c = acme ]; then at=2026-11-28T10:00:00.250+01:00; else at=2026-11-28T09:00:00Z; fi
	grep "^$c " "$T/hooks" | while read -r _ ty id; do
		n=$(jq -c --arg p "/$c/$ty" 'select(.path == $p)' "$log" | wc -l)
		[ "$n" -eq 1 ] || fail "$c $ty: $n deliveries, want 1"
		req=$(jq -c --arg p "/$c/$ty" 'select(.path == $p)' "$log")
		body=$(printf '%s' "$req" | jq -r .body)
		want_data=$(data_for "$ty" $c)
		printf '%s' "$req" | jq -e --arg ty "$ty" --arg c $c --arg id "$id" --arg at "$at" \
			--argjson want "$want_data" --argjson body "$body" '
			.method == "POST"
			and .headers["content-type"] == "application/json"
			and (.headers["user-agent"] | startswith("promo-webhooks/"))
			and (.headers["webhook-id"] | test("^msg_[0-9a-f]{32}$"))
			and (.headers["webhook-timestamp"] | tonumber) > 1700000000
			and (.headers | has("webhook-signature") | not)
			and $body.id == .headers["webhook-id"]
			and $body.event == $ty
			and $body.companyId == $c
			and $body.webhookId == $id
			and $body.occurredAt == $at
			and $body.data == $want
			and ($body | keys_unsorted) == ["id", "event", "companyId", "webhookId", "occurredAt", "data"]
		' >/dev/null || fail "$c $ty: delivery does not match the contract: $req"
	done
done
[ "$(jq -c 'select(.path == "/initech" or (.path | endswith("/disabled")))' "$ACME_LOG" "$GLOBEX_LOG" | wc -l)" -eq 0 ] ||
	fail "a disabled webhook or another company's webhook received a delivery"
# The raw number text passes through untouched.
grep -q '12.50' "$ACME_LOG" || fail "data.discount was not passed through as 12.50"

info "checking the dead-letter topic"
# kcat -J lists headers as [name, value, ...]; turn them into an object.
kcat -C -q -b "$KAFKA_BOOTSTRAP" -t "$TOPIC.dead-letter" -e -J |
	jq -c '.headers = ((.headers // []) as $h | [range(0; $h | length; 2) | {($h[.]): $h[. + 1]}] | add)' >"$T/dlq.jsonl"
[ "$(wc -l <"$T/dlq.jsonl")" -eq 7 ] || fail "dead-letter topic has $(wc -l <"$T/dlq.jsonl") messages, want 7"
# dead_letter KEY: the one dead letter with that key (jq 1.6's -e judges only
# the last input, so every check below looks at a single message).
dead_letter() {
	jq -c --arg k "$1" 'select(.key == $k)' "$T/dlq.jsonl"
}
for k in bad1 bad2 bad3 bad4 bad5 bad6 bad7; do
	msg=$(dead_letter $k)
	[ -n "$msg" ] || fail "dead letter $k is missing"
	printf '%s\n' "$msg" | jq -e --arg t "$TOPIC" '
		(.headers["x-dead-letter-reason"] | length) > 0
		and .headers["x-original-topic"] == $t
		and (.headers["x-original-partition"] | test("^[0-9]+$"))
		and (.headers["x-original-offset"] | test("^[0-9]+$"))' >/dev/null ||
		fail "dead letter $k lacks its headers: $msg"
done
dead_letter bad7 | jq -e '.headers.ce_id == "bad7" and .payload == "{\"importId\":\"I-x\"}"' >/dev/null ||
	fail "dead letter bad7 lost its original headers or value"
dead_letter bad1 | jq -e '.payload == "this is not json"' >/dev/null ||
	fail "dead letter bad1 lost its original value"
reasons=$(jq -r '.headers["x-dead-letter-reason"]' "$T/dlq.jsonl" | sort -u | wc -l)
[ "$reasons" -eq 7 ] || fail "want 7 distinct dead-letter reasons, got $reasons"

info "SIGTERM: orderly exit 0"
stop_service
grep -q '"consumer closed"' "$SVC_LOG" || fail "the consumer did not close on SIGTERM"
echo "PASS"
