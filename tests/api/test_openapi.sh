#!/bin/sh
# The OpenAPI description against the service that serves it:
#   * service/openapi.yaml is a valid OpenAPI 3.1 document
#     (openapi-spec-validator), and GET /openapi.yaml (no token) serves it
#     byte for byte as application/yaml;
#   * schemathesis, property-based, with every check (schema, status codes,
#     content types, headers, negative and positive data, methods not in
#     the document, auth, resources after create/delete), against the live
#     service on real Redis and Kafka, finds no response that breaks the
#     document and no 5xx (configuration: tests/api/schemathesis.toml).
# PW_API_EXAMPLES (default 40) bounds the examples per operation and phase;
# PW_API_SEED replays a run (schemathesis prints its seed).
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/pytools.sh"

TOPIC=api.openapi.$$
GROUP=api-openapi-$$
REDIS_DB=28
src=$(cd "$(dirname "$0")/../.." && pwd)

pytools_setup

info "service/openapi.yaml is valid OpenAPI 3.1"
openapi-spec-validator "$src/service/openapi.yaml" || fail "openapi-spec-validator refused service/openapi.yaml"
head -n 1 "$src/service/openapi.yaml" | grep -qx 'openapi: 3.1.0' || fail "not an OpenAPI 3.1.0 document"

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:1" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
service_env
# Generated targets are arbitrary hosts: refuse every private address, and
# no test send ever reaches one (see schemathesis.toml).
export PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS=0
export PROMO_WEBHOOKS_RETRY_SCHEDULE=
start_service api

info "GET /openapi.yaml serves the document without a token"
code=$(curl -s -o "$T/served.yaml" -D "$T/served.h" -w '%{http_code}' "$API/openapi.yaml")
[ "$code" = 200 ] || fail "GET /openapi.yaml: HTTP $code"
cmp -s "$T/served.yaml" "$src/service/openapi.yaml" || fail "the served document differs from service/openapi.yaml"
grep -qi '^content-type: application/yaml' "$T/served.h" || fail "content type: $(grep -i content-type "$T/served.h")"
openapi-spec-validator "$T/served.yaml" || fail "the served document does not validate"

info "schemathesis against $API (all checks)"
# The seed is printed, so a failure can be replayed with --seed.
if ! PYTHONPATH=$(cd "$(dirname "$0")" && pwd) SCHEMATHESIS_HOOKS=schemathesis_hooks \
	st --config-file "$(dirname "$0")/schemathesis.toml" run "$API/openapi.yaml" \
	-H "Authorization: Bearer $TOKEN" --checks all \
	--max-examples "${PW_API_EXAMPLES:-40}" ${PW_API_SEED:+--seed "$PW_API_SEED"} \
	--workers 2 --no-color \
	--report junit --report-dir "$T/schemathesis" >"$T/schemathesis.out" 2>&1; then
	cat "$T/schemathesis.out"
	fail "schemathesis found responses that break the document (see above)"
fi
tail -n 20 "$T/schemathesis.out"
grep -q 'Tested: 18' "$T/schemathesis.out" || fail "schemathesis did not test all 18 operations"
grep -Eq '[0-9]+ generated' "$T/schemathesis.out" || fail "schemathesis generated no test cases"
# The service survived it.
ready_ok || fail "the service is not ready after the run"
stop_service
echo "ok: the OpenAPI description validates and the service keeps it"
