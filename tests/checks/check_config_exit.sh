#!/bin/sh
# A bad or missing setting stops the start with exit status 2 and one line
# naming the variable (contract section 8), before anything connects.
set -u
: "${PW_BIN:?}"
failed=0

# expect_exit2 VARIABLE [NAME=VALUE...]: runs the binary with only the given
# environment and checks the status and the one line of output.
expect_exit2() {
	var=$1
	shift
	out=$(env -i "$@" "$PW_BIN" 2>&1)
	rc=$?
	lines=$(printf '%s\n' "$out" | wc -l)
	if [ "$rc" -ne 2 ] || [ "$lines" -ne 1 ] || ! printf '%s' "$out" | grep -q "$var"; then
		echo "FAIL: $*: exit $rc, output: $out (want exit 2, one line naming $var)"
		failed=$((failed + 1))
	fi
}

expect_exit2 PROMO_WEBHOOKS_ADMIN_TOKEN
expect_exit2 PROMO_WEBHOOKS_ADMIN_TOKEN PROMO_WEBHOOKS_ADMIN_TOKEN=
expect_exit2 PROMO_WEBHOOKS_FAILURE_THRESHOLD PROMO_WEBHOOKS_ADMIN_TOKEN=t PROMO_WEBHOOKS_FAILURE_THRESHOLD=three
expect_exit2 PROMO_WEBHOOKS_FAILURE_WINDOW PROMO_WEBHOOKS_ADMIN_TOKEN=t PROMO_WEBHOOKS_FAILURE_WINDOW=0
expect_exit2 PROMO_WEBHOOKS_PROMOTION_RETENTION PROMO_WEBHOOKS_ADMIN_TOKEN=t PROMO_WEBHOOKS_PROMOTION_RETENTION=60
expect_exit2 PROMO_WEBHOOKS_RETRY_SCHEDULE PROMO_WEBHOOKS_ADMIN_TOKEN=t PROMO_WEBHOOKS_RETRY_SCHEDULE=60,x
expect_exit2 PROMO_WEBHOOKS_REDIS_URL PROMO_WEBHOOKS_ADMIN_TOKEN=t PROMO_WEBHOOKS_REDIS_URL=http://nope
expect_exit2 PROMO_WEBHOOKS_HTTP_LISTEN PROMO_WEBHOOKS_ADMIN_TOKEN=t PROMO_WEBHOOKS_HTTP_LISTEN=nohost
expect_exit2 PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS PROMO_WEBHOOKS_ADMIN_TOKEN=t PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS=maybe
expect_exit2 PROMO_WEBHOOKS_EVENT_TOPICS PROMO_WEBHOOKS_ADMIN_TOKEN=t PROMO_WEBHOOKS_EVENT_TOPICS=
expect_exit2 PROMO_WEBHOOKS_DELIVERY_TIMEOUT_MS PROMO_WEBHOOKS_ADMIN_TOKEN=t PROMO_WEBHOOKS_DELIVERY_TIMEOUT_MS=-5
expect_exit2 PROMO_WEBHOOKS_RDKAFKA_ENABLE_AUTO_COMMIT PROMO_WEBHOOKS_ADMIN_TOKEN=t PROMO_WEBHOOKS_RDKAFKA_ENABLE_AUTO_COMMIT=false
expect_exit2 PROMO_WEBHOOKS_RDKAFKA_PARTITION_ASSIGNMENT_STRATEGY PROMO_WEBHOOKS_ADMIN_TOKEN=t PROMO_WEBHOOKS_RDKAFKA_PARTITION_ASSIGNMENT_STRATEGY=roundrobin

expect_exit2 PROMO_WEBHOOKS_RDKAFKA_MESSAGE_TIMEOUT_MS PROMO_WEBHOOKS_ADMIN_TOKEN=t PROMO_WEBHOOKS_RDKAFKA_MESSAGE_TIMEOUT_MS=0

if [ "$failed" -ne 0 ]; then
	echo "$failed configuration checks failed"
	exit 1
fi
echo "configuration errors: all checks passed"
