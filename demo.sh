#!/bin/sh
# demo.sh: the main job on one machine. Installs what is missing, builds,
# starts Kafka, Redis, the service and a sample receiver, registers a webhook
# for every published event type through the admin API, publishes one sample
# event of each type, and shows the deliveries as they arrive. Ctrl-C stops
# everything this script started.
set -eu
root=$(cd "$(dirname "$0")" && pwd)
build=${PW_BUILD_DIR:-$root/build}
state=${PW_DEMO_DIR:-$root/build/demo}
token=demo-token
pids=""

stop_all() {
	trap - EXIT INT TERM
	echo
	echo "stopping..."
	for pid in $pids; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $pids; do
		wait "$pid" 2>/dev/null || true
	done
	sh "$root/tests/scripts/kafka.sh" stop "$state/kafka" || true
	sh "$root/tests/scripts/redis.sh" stop "$state/redis" || true
}
trap stop_all EXIT INT TERM

sh "$root/tests/scripts/deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
rm -rf "$state"
mkdir -p "$state"

echo "starting Redis and Kafka (the first run downloads Kafka through Maven)..."
sh "$root/tests/scripts/redis.sh" start "$state/redis"
PW_KAFKA_ADMIN="$build/tests/pw-kafka-admin" sh "$root/tests/scripts/kafka.sh" start "$state/kafka"
. "$state/redis/redis.env"
. "$state/kafka/kafka.env"
"$build/tests/pw-kafka-admin" -b "$KAFKA_BOOTSTRAP" create promo.events:4 \
	promo.events.dead-letter:1 promo.email:1 >/dev/null

echo "starting the sample receiver and promo-webhooks..."
"$build/tests/pw-receiver" --listen 127.0.0.1:0 --port-file "$state/receiver.port" \
	--record "$state/deliveries.jsonl" 2>"$state/receiver.log" &
pids="$pids $!"
while [ ! -s "$state/receiver.port" ]; do sleep 0.1; done
recv_port=$(cat "$state/receiver.port")

PROMO_WEBHOOKS_KAFKA_BROKERS=$KAFKA_BOOTSTRAP \
PROMO_WEBHOOKS_REDIS_URL=$REDIS_URL \
PROMO_WEBHOOKS_HTTP_LISTEN=127.0.0.1:0 \
PROMO_WEBHOOKS_ADMIN_TOKEN=$token \
PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS=1 \
	"$build/promo-webhooks" 2>"$state/service.log" &
pids="$pids $!"
until grep -q '"promo-webhooks started"' "$state/service.log" 2>/dev/null; do sleep 0.1; done
api=http://127.0.0.1:$(grep '"promo-webhooks started"' "$state/service.log" | jq -r .http_port)
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$api/readyz")" = 200 ]; do sleep 0.2; done
echo "admin API at $api (token: $token); service log: $state/service.log"

types=$(curl -s -H "Authorization: Bearer $token" "$api/v1/event-types" |
	jq -r '.items[] | select(.requiresNotificationPeriod | not) | .name')
for ty in $types; do
	curl -s -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
		--data-binary "{\"event\":\"$ty\",\"target\":\"http://127.0.0.1:$recv_port/hooks/$ty\"}" \
		"$api/v1/companies/acme/webhooks" | jq -c '{id, event, target}'
done
# Wait until the service's webhook cache holds them (within a second).
n=$(printf '%s\n' $types | wc -l)
until curl -s "$api/metrics" | grep -qx "promo_webhooks_registry_webhooks_enabled $n"; do sleep 0.1; done

echo "publishing one sample event of each type..."
i=0
for ty in $types; do
	i=$((i + 1))
	data=$(curl -s -H "Authorization: Bearer $token" \
		"$api/v1/event-types/$ty/sample-payload?format=json" | jq -c .data)
	jq -cn --arg ty "$ty" --arg id "demo-$i" --argjson d "$data" \
		'{specversion: "1.0", id: $id, source: "/promo/demo", type: $ty,
		  time: (now | todate), companyid: "acme", data: $d}' |
		sed 's/^/acme|/' | kcat -P -q -b "$KAFKA_BOOTSTRAP" -t promo.events -K '|'
done

echo "deliveries as they arrive (Ctrl-C stops everything):"
tail -n +1 -f "$state/deliveries.jsonl" | jq -c '{path, "webhook-id": .headers["webhook-id"], body: (.body | fromjson)}'
