#!/bin/sh
# What the receiver sees (contract section 4), end to end:
#   an XML payload chosen by the company setting, well-formed per xmllint;
#   a JSON payload chosen by the webhook over the company setting, signed
#   with the webhook's secret, the signature recomputed independently with
#   openssl; the address policy: with private targets not allowed, a target
#   on 127.0.0.1 is never connected to and the attempt records why.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.view.$$
GROUP=e2e-view-$$
REDIS_DB=7
TYPE=Promotion.Created

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:4" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver recv
service_env
export PROMO_WEBHOOKS_RETRY_SCHEDULE=
start_service first

SECRET="whsec_$(openssl rand -base64 32)"
api PUT /v1/companies/acme/settings '{"webhookDisabledNotificationEmail":null,"webhookPayloadDataType":"Xml"}'
[ "$HTTP_STATUS" = 200 ] || fail "PUT settings: HTTP $HTTP_STATUS"
create_webhook acme $TYPE "http://127.0.0.1:$RECV_PORT/xml"
api POST /v1/companies/acme/webhooks "$(jq -cn --arg t "http://127.0.0.1:$RECV_PORT/signed" --arg s "$SECRET" \
	'{event: "Promotion.Created", target: $t, payloadDataType: "Json", secret: $s}')"
[ "$HTTP_STATUS" = 201 ] || fail "create signed webhook: HTTP $HTTP_STATUS $(cat "$T/resp")"
jq -e '.hasSecret == true and (has("secret") | not)' "$T/resp" >/dev/null || fail "the secret is not write-only: $(cat "$T/resp")"
wait_for 5 "the registry cache" metric_is promo_webhooks_registry_webhooks 2

info "one event, hostile data included"
event_line acme $TYPE v-1 '{"promotionId":"P-1","name":"<b>Tom & \"Jerry\"</b> ]]>","1st":true,"a b":[1,null,{"c:d":"\u0001x"}],"startDate":null}' >"$T/in"
produce_lines "$T/in"
wait_for 30 "both deliveries" sh -c "[ \$(wc -l <$RECV_LOG) -ge 2 ]"

info "XML by the company setting"
jq -c 'select(.path == "/xml")' "$RECV_LOG" >"$T/xml.req"
[ "$(jq -r '.headers["content-type"]' "$T/xml.req")" = application/xml ] || fail "XML content type: $(cat "$T/xml.req")"
jq -r .body "$T/xml.req" >"$T/body.xml"
xmllint --noout "$T/body.xml" || fail "the XML body is not well-formed: $(cat "$T/body.xml")"
[ "$(xmllint --xpath 'string(/WebhookEvent/Event)' "$T/body.xml")" = $TYPE ] || fail "XML Event"
[ "$(xmllint --xpath 'string(/WebhookEvent/CompanyId)' "$T/body.xml")" = acme ] || fail "XML CompanyId"
[ "$(xmllint --xpath 'string(/WebhookEvent/Id)' "$T/body.xml")" = "$(jq -r '.headers["webhook-id"]' "$T/xml.req")" ] || fail "XML Id"
[ "$(xmllint --xpath 'string(/WebhookEvent/Data/name)' "$T/body.xml")" = '<b>Tom & "Jerry"</b> ]]>' ] || fail "XML text escaping"
[ "$(xmllint --xpath 'count(/WebhookEvent/Data/a_b/Item)' "$T/body.xml")" = 3 ] || fail "XML arrays as Item: $(cat "$T/body.xml")"
[ "$(jq -r '.headers | has("webhook-signature")' "$T/xml.req")" = false ] || fail "an unsigned webhook sent a signature"

info "JSON by the webhook, signed; the signature recomputed with openssl"
jq -c 'select(.path == "/signed")' "$RECV_LOG" >"$T/signed.req"
[ "$(jq -r '.headers["content-type"]' "$T/signed.req")" = application/json ] || fail "JSON content type"
id=$(jq -r '.headers["webhook-id"]' "$T/signed.req")
ts=$(jq -r '.headers["webhook-timestamp"]' "$T/signed.req")
sig=$(jq -r '.headers["webhook-signature"]' "$T/signed.req")
jq -j .body "$T/signed.req" >"$T/signed.body"
key=$(printf '%s' "${SECRET#whsec_}" | openssl base64 -d -A | od -An -tx1 | tr -d ' \n')
want=$( { printf '%s.%s.' "$id" "$ts"; cat "$T/signed.body"; } |
	openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | openssl base64 -A)
[ "$sig" = "v1,$want" ] || fail "signature $sig, recomputed v1,$want"
now=$(date +%s)
[ $((now - ts)) -lt 60 ] && [ $((ts - now)) -lt 60 ] || fail "webhook-timestamp $ts is not now ($now)"
stop_service

info "address policy: 127.0.0.1 refused when private targets are not allowed"
export PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS=0
start_service second
before=$(wc -l <"$RECV_LOG")
event_line acme $TYPE v-2 '{"promotionId":"P-2"}' >"$T/in"
produce_lines "$T/in"
wait_for 30 "offsets committed" all_committed
[ "$(wc -l <"$RECV_LOG")" -eq "$before" ] || fail "a private target was connected to"
api GET "/v1/companies/acme/webhooks/$HOOK_ID/attempts"
jq -e '.items[0].eventId == "v-2" and .items[0].status == null
	and (.items[0].error | test("not allowed"))' "$T/resp" >/dev/null ||
	fail "the refused attempt is not recorded with its reason: $(cat "$T/resp")"
stop_service
echo "PASS"
