#!/bin/sh
# The web console (service/console/) in headless Chromium, driven by
# Selenium (tests/api/console_test.py), against the service on real Redis
# and Kafka with pw-receiver as the webhooks' target: sign in, create a
# webhook through the form, validation messages next to their fields, the
# list, sample payloads in JSON and XML, settings, a webhook that fails
# three times shown disabled with its reason and enabled again, a test
# send, edit, delete, API values shown as text. Screenshots of every screen
# go to $PW_ARTIFACTS/console/ (build/test-artifacts/console).
#
# Before the browser: the console's files are served without a token with
# their content types and security headers (CSP default-src 'self', no
# inline script, frame-ancestors 'none', X-Frame-Options DENY), reference
# nothing outside the service, and the API behind them needs the token.
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/pytools.sh"

TOPIC=api.console.$$
GROUP=api-console-$$
REDIS_DB=29
src=$(cd "$(dirname "$0")/../.." && pwd)
shots=${PW_ARTIFACTS:?}/console

for tool in chromium chromedriver; do
	command -v "$tool" >/dev/null 2>&1 ||
		fail "$tool not found (Debian packages chromium and chromium-driver; tests/scripts/deps.sh)"
done
pytools_setup

info "the console's files reference nothing outside the service"
for f in "$src"/service/console/*; do
	if grep -Eq 'https?://|//[a-z0-9.-]+\.[a-z]{2,}/' "$f"; then
		# The only URLs allowed are the placeholders of input fields.
		grep -En 'https?://' "$f" | grep -v 'placeholder=' &&
			fail "$(basename "$f") references another origin"
	fi
done
grep -Eq '<script( [^>]*)?>[^<]' "$src/service/console/index.html" && fail "inline script in index.html"
grep -Eq ' (style|on[a-z]+)=' "$src/service/console/index.html" && fail "inline style or handler in index.html"
grep -q 'innerHTML\|outerHTML\|insertAdjacentHTML\|document.write\|eval(' "$src/service/console/app.js" &&
	fail "app.js writes HTML or evaluates strings"

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:2" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver recv --rule /fail=500
service_env
export PROMO_WEBHOOKS_RETRY_SCHEDULE=
export PROMO_WEBHOOKS_FAILURE_THRESHOLD=3
export PROMO_WEBHOOKS_FAILURE_WINDOW=3600
start_service console

info "the files: no token needed, content types, security headers"
# header FILE NAME: the value of header NAME in a curl -D dump.
header() {
	tr -d '\r' <"$1" | awk -v n="$2" 'BEGIN { n = tolower(n) }
		{ i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == n) { print substr($0, i + 2); exit } }'
}
for spec in "/console/|text/html; charset=utf-8|index.html" \
	"/console/index.html|text/html; charset=utf-8|index.html" \
	"/console/app.js|text/javascript; charset=utf-8|app.js" \
	"/console/style.css|text/css; charset=utf-8|style.css"; do
	path=${spec%%|*}
	rest=${spec#*|}
	ctype=${rest%%|*}
	file=${rest#*|}
	code=$(curl -s -o "$T/file" -D "$T/h" -w '%{http_code}' "$API$path")
	[ "$code" = 200 ] || fail "GET $path: HTTP $code"
	[ "$(header "$T/h" Content-Type)" = "$ctype" ] || fail "GET $path: Content-Type $(header "$T/h" Content-Type)"
	cmp -s "$T/file" "$src/service/console/$file" || fail "GET $path is not service/console/$file"
	csp=$(header "$T/h" Content-Security-Policy)
	case "$csp" in
	*"default-src 'self'"*"frame-ancestors 'none'"*) ;;
	*) fail "GET $path: Content-Security-Policy: $csp" ;;
	esac
	case "$csp" in
	*unsafe-inline* | *unsafe-eval* | *"*"*) fail "GET $path: a loose CSP: $csp" ;;
	esac
	[ "$(header "$T/h" X-Frame-Options)" = DENY ] || fail "GET $path: X-Frame-Options"
	[ "$(header "$T/h" X-Content-Type-Options)" = nosniff ] || fail "GET $path: X-Content-Type-Options"
done
code=$(curl -s -o /dev/null -D "$T/h" -w '%{http_code}' "$API/console")
[ "$code" = 301 ] && [ "$(header "$T/h" Location)" = /console/ ] || fail "GET /console: HTTP $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$API/console/nope.js")
[ "$code" = 404 ] || fail "GET /console/nope.js: HTTP $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$API/console/")
[ "$code" = 405 ] || fail "POST /console/: HTTP $code"
for path in /v1/event-types /v1/companies/acme/webhooks /v1/companies/acme/settings; do
	code=$(curl -s -o /dev/null -w '%{http_code}' "$API$path")
	[ "$code" = 401 ] || fail "GET $path without the token: HTTP $code"
done

# produce.sh COMPANY TYPE PREFIX N: N events for the browser test.
cat >"$T/produce.sh" <<EOS
#!/bin/sh
i=1
while [ "\$i" -le "\$4" ]; do
	printf '%s|{"specversion":"1.0","id":"%s-%s","source":"/promo/test","type":"%s","time":"2026-11-28T09:00:00Z","companyid":"%s","data":{"importId":"%s-%s"}}\n' \
		"\$1" "\$3" "\$i" "\$2" "\$1" "\$3" "\$i"
	i=\$((i + 1))
done | kcat -P -q -b "$KAFKA_BOOTSTRAP" -t "$TOPIC" -K '|'
EOS

rm -rf "$shots"
mkdir -p "$shots"
info "the console in headless Chromium"
PW_API=$API PW_TOKEN=$TOKEN PW_RECV_PORT=$RECV_PORT PW_RECV_LOG=$RECV_LOG \
	PW_PRODUCE="sh $T/produce.sh" PW_SHOTS=$shots SE_OFFLINE=true \
	PW_REDIS_CLI="redis-cli -p $REDIS_PORT -n $REDIS_DB" \
	PW_CHROMIUM=$(command -v chromium) PW_CHROMEDRIVER=$(command -v chromedriver) \
	"$PYBIN" "$(dirname "$0")/console_test.py" || fail "the console test failed (screenshots: $shots)"
n=$(find "$shots" -name '[0-9]*.png' | wc -l)
[ "$n" -ge 12 ] || fail "only $n screenshots in $shots"
stop_service
echo "ok: the console works in Chromium; screenshots in $shots"
