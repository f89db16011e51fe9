#!/bin/sh
# The test send (POST /v1/companies/{c}/webhooks/{id}/test) end to end:
#   * the webhook's sample payload reaches its target now, in its payload
#     data type, with a fresh webhook-id per send and a valid Standard
#     Webhooks signature; the answer carries status, duration, error and
#     the start of the receiver's answer;
#   * it is in the attempt log marked "test" (eventId "test");
#   * failing test sends, however many, never count toward the failure
#     rule (nothing in pw:failures, the webhook stays enabled), also for a
#     disabled webhook, which is tested but not enabled by it;
#   * the address policy applies: with private targets refused, a test to
#     loopback fails with "target address not allowed" and dials nothing;
#   * another company's webhook, an unknown id: 404; GET: 405.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.testsend.$$
GROUP=e2e-testsend-$$
REDIS_DB=27
SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:1" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver recv --rule /fail=500
service_env
export PROMO_WEBHOOKS_RETRY_SCHEDULE=
export PROMO_WEBHOOKS_FAILURE_THRESHOLD=3
start_service first

info "a test send delivers the sample payload, signed"
api POST /v1/companies/acme/webhooks "{\"event\":\"Promotion.StartingInPeriod\",\"target\":\"http://127.0.0.1:$RECV_PORT/ok\",\"notificationPeriod\":\"Hours\",\"notificationPeriodValue\":5,\"secret\":\"$SECRET\"}"
[ "$HTTP_STATUS" = 201 ] || fail "create: HTTP $HTTP_STATUS $(cat "$T/resp")"
OK=$(jq -r .id "$T/resp")
api POST "/v1/companies/acme/webhooks/$OK/test"
[ "$HTTP_STATUS" = 200 ] || fail "test: HTTP $HTTP_STATUS $(cat "$T/resp")"
cp "$T/resp" "$T/test1.json"
jq -e '.status == 200 and .error == null and (.durationMs | type) == "number"
	and (.messageId | test("^msg_[0-9a-f]{32}$")) and (.at | test("^[0-9]{4}-"))
	and has("responseBody")' "$T/test1.json" >/dev/null ||
	fail "test outcome: $(cat "$T/test1.json")"
[ "$(recorded /ok)" -eq 1 ] || fail "the receiver got $(recorded /ok) requests"
jq -c 'select(.path == "/ok")' "$RECV_LOG" >"$T/req.json"
jq -e --arg id "$OK" --slurpfile o "$T/test1.json" '
	.method == "POST" and .headers["content-type"] == "application/json"
	and .headers["webhook-id"] == $o[0].messageId
	and (.body | fromjson | .event == "Promotion.StartingInPeriod" and .webhookId == $id
		and .companyId == "acme" and .id == $o[0].messageId
		and .data.notificationPeriod == "Hours" and .data.notificationPeriodValue == 5
		and .data.promotionId == "PROMO-2025-SUMMER-20")' "$T/req.json" >/dev/null ||
	fail "the request is not the webhook's sample: $(cat "$T/req.json")"
# Standard Webhooks: v1,base64(HMAC-SHA256(key, id.timestamp.body)).
msgid=$(jq -r '.headers["webhook-id"]' "$T/req.json")
ts=$(jq -r '.headers["webhook-timestamp"]' "$T/req.json")
jq -j .body "$T/req.json" >"$T/body"
key=$(printf '%s' "${SECRET#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \n')
want=$({ printf '%s.%s.' "$msgid" "$ts"; cat "$T/body"; } |
	openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64)
[ "$(jq -r '.headers["webhook-signature"]' "$T/req.json")" = "v1,$want" ] ||
	fail "signature $(jq -r '.headers["webhook-signature"]' "$T/req.json") is not v1,$want"

info "each test send has a fresh webhook-id"
api POST "/v1/companies/acme/webhooks/$OK/test"
[ "$(jq -r .messageId "$T/resp")" != "$(jq -r .messageId "$T/test1.json")" ] ||
	fail "two test sends with one message id"

info "it is in the attempt log, marked as a test"
api GET "/v1/companies/acme/webhooks/$OK/attempts"
jq -e '(.items | length) == 2 and all(.items[]; .test == true and .eventId == "test"
	and .status == 200 and .error == null and .attempt == 1)' "$T/resp" >/dev/null ||
	fail "attempt log: $(cat "$T/resp")"

info "failing test sends never count toward the failure rule"
create_webhook acme Product.ImportCompleted "http://127.0.0.1:$RECV_PORT/fail"
FAIL=$HOOK_ID
for i in 1 2 3 4; do
	api POST "/v1/companies/acme/webhooks/$FAIL/test"
	[ "$HTTP_STATUS" = 200 ] || fail "test $i: HTTP $HTTP_STATUS"
	jq -e '.status == 500 and .error == "HTTP 500"
		and .responseBody == "{\"error\":\"pw-receiver answered 500\"}"' "$T/resp" >/dev/null ||
		fail "failed test outcome: $(cat "$T/resp")"
done
webhook_json acme "$FAIL" | jq -e '.enabled == true and .disabledAt == null' >/dev/null ||
	fail "test sends disabled the webhook: $(cat "$T/resp")"
# No failure set of any name: nothing was recorded for the failure rule.
[ -z "$(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" --scan --pattern '*failures*')" ] ||
	fail "test sends were recorded as failures: $(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" --scan --pattern '*failures*')"
api GET "/v1/companies/acme/webhooks/$FAIL/attempts"
jq -e '(.items | length) == 4 and all(.items[]; .test == true and .status == 500
	and .responseBody == "{\"error\":\"pw-receiver answered 500\"}")' "$T/resp" >/dev/null ||
	fail "attempt log of failed tests: $(cat "$T/resp")"

info "a disabled webhook can be tested and stays disabled"
api PATCH "/v1/companies/acme/webhooks/$OK" '{"enabled":false}'
[ "$HTTP_STATUS" = 200 ] || fail "disable: HTTP $HTTP_STATUS"
api POST "/v1/companies/acme/webhooks/$OK/test"
jq -e '.status == 200' "$T/resp" >/dev/null || fail "test of a disabled webhook: $(cat "$T/resp")"
webhook_json acme "$OK" | jq -e '.enabled == false' >/dev/null || fail "a test send enabled the webhook"

info "404 for another company's webhook or an unknown id, 405 for GET"
api POST "/v1/companies/globex/webhooks/$OK/test"
[ "$HTTP_STATUS" = 404 ] || fail "another company's webhook: HTTP $HTTP_STATUS"
api POST "/v1/companies/acme/webhooks/0123456789abcdef0123456789abcdef/test"
[ "$HTTP_STATUS" = 404 ] || fail "unknown id: HTTP $HTTP_STATUS"
api GET "/v1/companies/acme/webhooks/$OK/test"
[ "$HTTP_STATUS" = 405 ] || fail "GET test: HTTP $HTTP_STATUS"
stop_service

info "the address policy applies to test sends"
export PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS=0
before=$(recorded)
start_service strict
api POST "/v1/companies/acme/webhooks/$FAIL/test"
[ "$HTTP_STATUS" = 200 ] || fail "test: HTTP $HTTP_STATUS"
jq -e '.status == null and (.error | startswith("target address not allowed"))' "$T/resp" >/dev/null ||
	fail "a loopback target was not refused: $(cat "$T/resp")"
[ "$(recorded)" -eq "$before" ] || fail "the refused target was dialled"
stop_service
echo "ok: test sends"
