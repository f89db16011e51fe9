#!/bin/sh
# `promo-webhooks --healthcheck` answers at once (issue 17).
#   The Dockerfile's HEALTHCHECK runs it with --timeout=3s. It used to take
#   3.0-3.2 s every time (its loop waited on the kept-alive connection until
#   its own 3 s timeout), so containers turned unhealthy.
#   * against the running service: 5 runs, each exits 0 within 500 ms;
#   * against a server that keeps the connection alive and answers 200
#     (pw-receiver): exits 0 within 500 ms; answering 503: exits 1 within
#     500 ms;
#   * against a server that never answers (pw-receiver, 10 s delay): exits
#     non-zero within 2.5 s, below the HEALTHCHECK timeout;
#   * against the service's port once the service has stopped (nothing
#     listens): exits non-zero within 1 s.
. "$(dirname "$0")/lib.sh"

TOPIC=e2e.healthcheck.$$
GROUP=e2e-healthcheck-$$
REDIS_DB=11

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# healthcheck_run HOST:PORT: runs the health check against HOST:PORT; sets
# HC_RC (its exit status) and HC_MS (its wall time).
healthcheck_run() {
	t0=$(now_ms)
	HC_RC=0
	PROMO_WEBHOOKS_HTTP_LISTEN=$1 "$PW_BIN" --healthcheck 2>>"$T/healthcheck.err" || HC_RC=$?
	HC_MS=$(($(now_ms) - t0))
}

# expect_healthcheck HOST:PORT RC MAX_MS WHAT: the health check exits RC
# within MAX_MS ("nonzero" for any failure).
expect_healthcheck() {
	healthcheck_run "$1"
	info "$4: exit $HC_RC after $HC_MS ms"
	if [ "$2" = nonzero ]; then
		[ "$HC_RC" -ne 0 ] || fail "$4: --healthcheck exited 0"
	else
		[ "$HC_RC" -eq "$2" ] || fail "$4: --healthcheck exited $HC_RC, want $2"
	fi
	[ "$HC_MS" -lt "$3" ] || fail "$4: --healthcheck took $HC_MS ms, want < $3 ms"
}

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:1" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
service_env
start_service svc
svc_addr=${API#http://}

i=1
while [ "$i" -le 5 ]; do
	expect_healthcheck "$svc_addr" 0 500 "running service, run $i"
	i=$((i + 1))
done

start_receiver recv
expect_healthcheck "127.0.0.1:$RECV_PORT" 0 500 "keep-alive server answering 200"
set_rule "$RECV_PORT" /healthz 503
expect_healthcheck "127.0.0.1:$RECV_PORT" 1 500 "server answering 503"
set_rule "$RECV_PORT" /healthz 200 10000
expect_healthcheck "127.0.0.1:$RECV_PORT" nonzero 2500 "server that does not answer"

stop_service
expect_healthcheck "$svc_addr" nonzero 1000 "closed port (service stopped)"
echo "PASS"
