#!/bin/sh
# The container image, built and run for real (issue 17).
#
#   1. installs podman, buildah, runc and debootstrap if missing
#      (tests/scripts/deps.sh --container);
#   2. makes the Debian 12 base images the Dockerfile's FROM lines name
#      (debian:12, debian:12-slim) from a debootstrapped bookworm root
#      (tests/container/base_image.sh; the tarballs are cached in
#      ${PW_CACHE_DIR:-~/.cache/promo-webhooks}/debian-base), and imports them
#      into a podman storage of this run only, so nothing but them can be used;
#   3. builds the Dockerfile with
#      `podman build --pull=never --network host --isolation chroot --format docker`;
#   4. runs the image with --network host, --read-only (no writable tmpfs
#      either), --cap-drop ALL and no-new-privileges against the test Kafka
#      and Redis, and checks: /healthz and /readyz 200, a webhook delivery
#      reaches a pw-receiver on the host, the process runs as uid 10001 with
#      no capabilities, the root filesystem is read-only, the image's
#      HEALTHCHECK reports healthy (within its 3 s timeout), SIGTERM
#      (`podman stop`) with a delivery in flight drains it, commits and ends
#      with exit status 0 within the shutdown grace;
#   5. prints the image size and fails at 150 MB or more.
#
# Anything that cannot be done (no root, no package, no base, a failed
# build) fails the test: it never skips.
#
# Why these podman options (podman 4.3, buildah 1.28, runc 1.1 of Debian 12):
#   --isolation chroot  RUN steps without a runtime: the default isolation
#                       needs cgroups set up the way this host may not allow;
#   --format docker     the OCI image format has no HEALTHCHECK;
#   --runtime runc      the runtime Debian's podman uses, named so that an
#                       installed crun is not picked instead;
#   --ulimit ...        podman asks for nofile 1048576 and nproc 4194304 by
#                       default; without CAP_SYS_RESOURCE (not in this host's
#                       bounding set) runc cannot raise the limits, so the
#                       container gets the host's own hard nofile limit and
#                       an nproc limit below podman's own cap (32768);
#   --cgroup-manager cgroupfs, and a storage, run and tmp directory of this
#                       run: no systemd needed, nothing shared with other
#                       podman users of the machine. Without systemd podman
#                       logs that it cannot add health check timers; the
#                       test runs the health check itself.
. "$(dirname "$0")/../e2e/lib.sh"

: "${PW_SOURCE_DIR:?}" "${PW_SCRIPTS:?}"
CACHE=${PW_CACHE_DIR:-${HOME:-/root}/.cache/promo-webhooks}
TOPIC=container.image.$$
GROUP=container-image-$$
REDIS_DB=13
IMAGE=promo-webhooks:test
CTR=pw-image-test-$$
MAX_IMAGE_BYTES=150000000
# podman's storage for this run, beside (not inside) $T, which lib.sh
# empties at the start: overlay mounts left by a killed run are undone first.
PM_DIR=$PW_TEST_TMP.podman
# Its run and tmp directories: podman wants the run root under 50 characters.
PM_RUN=$(mktemp -d /tmp/pw-podman.XXXXXX)

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# unmount_below DIR: undoes every mount under DIR, deepest first.
unmount_below() {
	awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

pm() {
	podman --root "$PM_DIR/storage" --runroot "$PM_RUN/run" --tmpdir "$PM_RUN/tmp" \
		--cgroup-manager cgroupfs --runtime runc "$@"
}

pm_cleanup() {
	if [ -d "$PM_DIR" ]; then
		pm rm -f -t 0 "$CTR" $PROBES >/dev/null 2>&1 || true
		pm rmi -af >/dev/null 2>&1 || true
		unmount_below "$PM_DIR"
		rm -rf "$PM_DIR"
	fi
	rm -rf "$PM_RUN"
}

# exec_in_container NAME: `podman exec` (and so the HEALTHCHECK) runs in
# the container's root filesystem. It does not when podman itself runs in a
# plain chroot: runc's pivot_root then swaps the chroot's mount rather than
# the mount namespace's root, and an exec'd process lands on that root, the
# host's (see docker/README.md). Checked before anything is written, as the
# container's user, who may look at /proc/1/root (its PID 1's root).
exec_in_container() {
	pm exec "$1" /bin/sh -c '[ / -ef /proc/1/root ]' 2>"$T/exec.err" ||
		fail "podman exec does not run in the root filesystem of container $1 (podman in a chroot? enter the root with pivot_root in a mount namespace of its own, see docker/README.md) $(cat "$T/exec.err")"
}

PROBES=
PASSED=0
on_exit() {
	if [ "$PASSED" = 0 ] && [ -d "$PM_DIR" ] && pm container exists "$CTR" 2>/dev/null; then
		pm logs "$CTR" >"$T/container.log" 2>&1 || true
		echo "--- last lines of the container's log:" >&2
		tail -n 20 "$T/container.log" >&2
	fi
	pm_cleanup
	cleanup
}
trap on_exit EXIT
trap 'exit 1' INT TERM

[ "$(id -u)" -eq 0 ] || fail "needs root: debootstrap, and podman with overlay storage"
sh "$PW_SCRIPTS/deps.sh" --container || fail "cannot install podman, buildah, runc, debootstrap"
info "$(podman --version), $(buildah --version | cut -d' ' -f1-3), $(runc --version | head -n 1)"

# The base images the Dockerfile names, as base_image.sh makes them.
release=$(sed -n 's/^ARG DEBIAN_RELEASE=\([0-9]*\)$/\1/p' "$PW_SOURCE_DIR/Dockerfile")
froms=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' "$PW_SOURCE_DIR/Dockerfile" | sed "s/\${DEBIAN_RELEASE}/$release/" | sort -u | tr '\n' ' ')
[ "$froms" = "debian:12 debian:12-slim " ] ||
	fail "the Dockerfile's FROM lines name \"$froms\"; base_image.sh makes debian:12 and debian:12-slim"

nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
# A killed run's storage (podman would refuse it: its run root was another).
unmount_below "$PM_DIR"
rm -rf "$PM_DIR"
mkdir -p "$PM_DIR"
t0=$(now_ms)
sh "$PW_SOURCE_DIR/tests/container/base_image.sh" "$CACHE/debian-base" || fail "cannot make the Debian 12 base images"
for tag in 12 12-slim; do
	pm import --quiet --change 'CMD ["bash"]' "$CACHE/debian-base/debian-$tag.tar" \
		"docker.io/library/debian:$tag" >/dev/null ||
		fail "podman import of debian-$tag.tar (in a chroot, its root must be a mount point: mount --bind ROOT ROOT)"
done
info "base images ready after $((($(now_ms) - t0) / 1000)) s: $(pm images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | tr '\n' ';')"

# Before the long build: can a container run here, and does `podman exec`
# (the HEALTHCHECK's way in) enter its root filesystem? Not in a plain
# chroot: see exec_in_container above.
PROBES="$CTR-probe"
pm run -d --name "$CTR-probe" --network host --user 65534:65534 --read-only --cap-drop ALL \
	--ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096 \
	docker.io/library/debian:12-slim sleep 600 >/dev/null 2>"$T/probe.err" ||
	fail "podman run of the base image failed (in a chroot /sys must be bind-mounted with --rbind, for the cgroup mounts): $(grep -v systemd "$T/probe.err")"
exec_in_container "$CTR-probe"
pm rm -f -t 0 "$CTR-probe" >/dev/null 2>&1 || true
PROBES=

info "podman build (log: $T/build.log)"
t0=$(now_ms)
if ! pm build --pull=never --network host --isolation chroot --format docker \
	-t "$IMAGE" "$PW_SOURCE_DIR" >"$T/build.log" 2>&1; then
	tail -n 40 "$T/build.log" >&2
	fail "podman build failed"
fi
info "built in $((($(now_ms) - t0) / 1000)) s"
size=$(pm image inspect --format '{{.Size}}' "$IMAGE")
info "image size: $((size / 1000000)) MB ($size bytes; limit $((MAX_IMAGE_BYTES / 1000000)) MB)"

# --- run it against the test Kafka and Redis --------------------------------

redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
create_topics "$TOPIC:2" "$TOPIC.dead-letter:1" "$TOPIC.email:1"
start_receiver recv
service_env
# A port nothing listens on (curl: 7 = connection refused) for the admin
# API: with host networking the HEALTHCHECK must know it, so not port 0.
port=$((20000 + $$ % 20000))
while :; do
	rc=0
	curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/" || rc=$?
	[ "$rc" -eq 7 ] && break
	port=$((port + 1))
done
export PROMO_WEBHOOKS_HTTP_LISTEN=127.0.0.1:$port
API=http://127.0.0.1:$port

pm run -d --name "$CTR" --network host \
	--read-only --read-only-tmpfs=false --cap-drop ALL --security-opt no-new-privileges \
	--ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096 \
	-e PROMO_WEBHOOKS_KAFKA_BROKERS -e PROMO_WEBHOOKS_KAFKA_GROUP \
	-e PROMO_WEBHOOKS_EVENT_TOPICS -e PROMO_WEBHOOKS_DEAD_LETTER_TOPIC \
	-e PROMO_WEBHOOKS_EMAIL_TOPIC -e PROMO_WEBHOOKS_REDIS_URL \
	-e PROMO_WEBHOOKS_HTTP_LISTEN -e PROMO_WEBHOOKS_ADMIN_TOKEN \
	-e PROMO_WEBHOOKS_ALLOW_PRIVATE_TARGETS -e PROMO_WEBHOOKS_RDKAFKA_SESSION_TIMEOUT_MS \
	"$IMAGE" >"$T/run.out" 2>"$T/run.err" || {
	cat "$T/run.err" >&2
	fail "podman run failed"
}
info "container $CTR started, admin API on $API"

running() {
	[ "$(pm inspect --format '{{.State.Running}}' "$CTR")" = true ]
}
wait_for 60 "the container's /readyz 200" ready_ok
running || fail "the container is not running"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$API/healthz")" = 200 ] || fail "/healthz is not 200"

info "a delivery through the container"
create_webhook acme Product.ImportCompleted "http://127.0.0.1:$RECV_PORT/hooks/acme"
# For the SIGTERM check below: a delivery the receiver holds for 3 s.
set_rule "$RECV_PORT" /hooks/slow 200 3000
create_webhook globex Product.ImportCompleted "http://127.0.0.1:$RECV_PORT/hooks/slow"
wait_for 5 "the registry cache to hold the webhooks" metric_is promo_webhooks_registry_webhooks 2
produce_events acme Product.ImportCompleted img 3
wait_for 30 "3 deliveries at the receiver" recorded_at_least /hooks/acme 3
jq -e -s 'all(.[]; .method == "POST" and (.headers["webhook-id"] | startswith("msg_"))
	and (.body | fromjson | .event == "Product.ImportCompleted"))' "$RECV_LOG" >/dev/null ||
	fail "the deliveries are not the expected webhooks: $(head -c 600 "$RECV_LOG")"

info "non-root, no capabilities, read-only root filesystem"
pid=$(pm inspect --format '{{.State.Pid}}' "$CTR")
[ -n "$pid" ] && [ "$pid" -gt 0 ] || fail "no process id for the container"
uids=$(awk '$1 == "Uid:" { print $2, $3, $4, $5 }' "/proc/$pid/status")
[ "$uids" = "10001 10001 10001 10001" ] || fail "the service runs with uids $uids, want 10001"
gids=$(awk '$1 == "Gid:" { print $2, $3, $4, $5 }' "/proc/$pid/status")
[ "$gids" = "10001 10001 10001 10001" ] || fail "the service runs with gids $gids, want 10001"
capeff=$(awk '$1 == "CapEff:" { print $2 }' "/proc/$pid/status")
[ "$capeff" = 0000000000000000 ] || fail "the service has capabilities $capeff"
[ "$(awk '$1 == "NoNewPrivs:" { print $2 }' "/proc/$pid/status")" = 1 ] || fail "no_new_privs is not set"
[ "$(pm inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$CTR")" = true ] || fail "the root filesystem is not read-only"
exec_in_container "$CTR"
# As root inside the container: only a read-only filesystem refuses that.
for dir in /usr/local/bin /tmp /; do
	probe=${dir%/}/.pw-read-only-probe-$$
	if pm exec --user 0 "$CTR" /bin/sh -c "echo x >$probe" 2>"$T/exec.err"; then
		pm exec --user 0 "$CTR" rm -f "$probe" || true
		fail "$probe could be written in the container"
	fi
	grep -q 'Read-only file system' "$T/exec.err" ||
		fail "writing $probe failed otherwise than read-only: $(cat "$T/exec.err")"
done
running || fail "the container stopped"

info "the image's HEALTHCHECK"
[ "$(pm inspect --format '{{.Config.Healthcheck.Test}}' "$CTR")" = "[CMD /usr/local/bin/promo-webhooks --healthcheck]" ] ||
	fail "the container has no HEALTHCHECK running promo-webhooks --healthcheck: $(pm inspect --format '{{.Config.Healthcheck}}' "$CTR")"
i=1
while [ "$i" -le 3 ]; do
	t0=$(now_ms)
	rc=0
	pm healthcheck run "$CTR" >"$T/hc.out" 2>&1 || rc=$?
	ms=$(($(now_ms) - t0))
	info "podman healthcheck run: exit $rc after $ms ms"
	[ "$rc" -eq 0 ] || fail "the HEALTHCHECK failed (exit $rc): $(cat "$T/hc.out")"
	# Mostly podman's own exec; the check itself answers in milliseconds
	# (tests/e2e/test_healthcheck.sh).
	[ "$ms" -lt 3000 ] || fail "the HEALTHCHECK took $ms ms, beyond its 3 s timeout"
	i=$((i + 1))
done
status=$(pm inspect --format '{{.State.Health.Status}}' "$CTR")
[ "$status" = healthy ] || fail "health status is \"$status\", want healthy"

info "SIGTERM (podman stop) with a delivery in flight"
produce_events globex Product.ImportCompleted slow 1
wait_for 30 "the slow delivery to reach the receiver" recorded_at_least /hooks/slow 1
t0=$(now_ms)
pm stop -t 30 "$CTR" >/dev/null 2>"$T/stop.err" || fail "podman stop failed: $(cat "$T/stop.err")"
ms=$(($(now_ms) - t0))
code=$(pm inspect --format '{{.State.ExitCode}}' "$CTR")
info "stopped after $ms ms, exit status $code"
[ "$code" = 0 ] || fail "exit status $code after SIGTERM, want 0"
# Within the service's 20 s grace, and podman's 30 s never reached.
[ "$ms" -lt 20000 ] || fail "stopping took $ms ms, more than the 20 s shutdown grace"
pm logs "$CTR" >"$T/container.log" 2>&1
jq -e -s '[.[] | select(.msg == "draining in-flight deliveries")] | length == 1 and .[0].pending >= 1' \
	"$T/container.log" >/dev/null 2>&1 ||
	fail "the service did not drain a delivery in flight on SIGTERM: $(grep -i drain "$T/container.log")"
grep -q '"promo-webhooks stopped"' "$T/container.log" || fail "no orderly shutdown in the container's log"
# The drained delivery finished, and its offset was committed on the way out.
all_committed || fail "offsets not all committed after the shutdown: $(cat "$T/offsets")"

[ "$size" -lt "$MAX_IMAGE_BYTES" ] ||
	fail "the image is $((size / 1000000)) MB, at or above $((MAX_IMAGE_BYTES / 1000000)) MB"
echo "image $IMAGE: $((size / 1000000)) MB"
PASSED=1
echo "PASS"
