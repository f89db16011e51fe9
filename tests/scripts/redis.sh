#!/bin/sh
# A throwaway Redis (Debian's redis-server) on loopback for the tests.
#
# Usage:
#   tests/scripts/redis.sh start STATE_DIR
#       Start redis-server on a free 127.0.0.1 port (no persistence), wait
#       for PING, write STATE_DIR/redis.env:
#         REDIS_PORT=N
#         REDIS_URL=redis://127.0.0.1:N/0
#       Log: STATE_DIR/redis.log, PID: STATE_DIR/redis.pid.
#       When STATE_DIR/redis.conf exists, redis-server reads it first (e.g.
#       ACL users; the PING probe then accepts NOAUTH as "up").
#   tests/scripts/redis.sh stop STATE_DIR
#       Stop it by its recorded PID (TERM, KILL after 10 s). redis.env is
#       kept, so that restart-same-port can bring it back at that address.
#   tests/scripts/redis.sh restart-same-port STATE_DIR
#       Stop it if running, then start it again on the same port (empty:
#       nothing is persisted).
#
# Only PIDs recorded in STATE_DIR/redis.pid are ever signalled.
set -eu

START_TIMEOUT_S=20
STOP_TIMEOUT_S=10

die() {
    echo "redis.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: redis.sh start STATE_DIR | stop STATE_DIR | restart-same-port STATE_DIR" >&2
    exit 2
}

# Prints a random integer in [lo, hi].
rand_between() {
    r=$(od -An -N4 -tu4 /dev/urandom | tr -d ' \n')
    echo $(($1 + r % ($2 - $1 + 1)))
}

# True when a TCP socket (IPv4 or IPv6, any state) uses local port $1.
port_in_use() {
    hex=$(printf '%04X' "$1")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
        awk -v p=":$hex" 'NR > 1 && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }'
}

# Prints a loopback port that no socket uses, below the ephemeral range so
# that outgoing connections never take it.
free_port() {
    lo=15000
    hi=32767
    if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
        eph=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range)
        if [ "$eph" -gt 20000 ]; then hi=$((eph - 1)); fi
    fi
    tries=0
    while [ "$tries" -lt 200 ]; do
        tries=$((tries + 1))
        p=$(rand_between "$lo" "$hi")
        if ! port_in_use "$p"; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

abs_state_dir() {
    [ -n "${1:-}" ] || usage
    mkdir -p -- "$1"
    CDPATH='' cd -- "$1" && pwd
}

alive() {
    kill -0 "$1" 2>/dev/null
}

# True when PID $1 is alive and is a redis-server.
is_our_redis() {
    [ -n "$1" ] || return 1
    alive "$1" || return 1
    [ -r "/proc/$1/cmdline" ] || return 0
    tr '\000' ' ' <"/proc/$1/cmdline" | grep -q 'redis-server'
}

# Starts redis-server on port $2 for state dir $1 and waits for PING.
# Returns 0 when ready, 1 when it exited, 2 on timeout.
launch_and_wait() {
    state=$1
    port=$2
    log="$state/redis.log"
    rm -f -- "$state/redis.pid"
    mkdir -p "$state/redis-data"
    server=$(command -v redis-server) || die "redis-server not found (run tests/scripts/deps.sh)"
    conf=
    if [ -f "$state/redis.conf" ]; then conf="$state/redis.conf"; fi
    if command -v start-stop-daemon >/dev/null 2>&1; then
        # Detached, with no inherited descriptors (a caller's pipe stays
        # closeable); the pid file holds redis-server itself.
        start-stop-daemon --start --background --make-pidfile \
            --pidfile "$state/redis.pid" --output "$log" \
            --startas "$server" -- ${conf:+"$conf"} \
            --port "$port" --bind 127.0.0.1 --save '' --appendonly no --databases 32 \
            --daemonize no --dir "$state/redis-data" --loglevel warning ||
            die "start-stop-daemon failed to start redis-server"
        waited=0
        while [ ! -s "$state/redis.pid" ] && [ "$waited" -lt 50 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        pid=$(cat "$state/redis.pid" 2>/dev/null || true)
        [ -n "$pid" ] || die "no pid file written for redis-server"
    else
        (
            "$server" ${conf:+"$conf"} --port "$port" --bind 127.0.0.1 --save '' --appendonly no --databases 32 \
                --daemonize no --dir "$state/redis-data" --loglevel warning \
                </dev/null >>"$log" 2>&1 &
            echo "$!" >"$state/redis.pid"
        )
        pid=$(cat "$state/redis.pid")
    fi
    waited=0
    while [ "$waited" -lt $((START_TIMEOUT_S * 10)) ]; do
        if ! alive "$pid"; then
            rm -f -- "$state/redis.pid"
            return 1
        fi
        answer=$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)
        case "$answer" in
            PONG | NOAUTH*) return 0 ;;
        esac
        sleep 0.1
        waited=$((waited + 1))
    done
    return 2
}

write_env() {
    cat >"$1/redis.env.tmp" <<EOF
REDIS_PORT=$2
REDIS_URL=redis://127.0.0.1:$2/0
EOF
    mv -f -- "$1/redis.env.tmp" "$1/redis.env"
}

start_failed() {
    echo "redis.sh: redis-server did not become ready; tail of $1/redis.log:" >&2
    tail -n 30 "$1/redis.log" >&2 2>/dev/null || true
    stop_redis "$1"
    exit 1
}

refuse_if_running() {
    if [ -f "$1/redis.pid" ]; then
        pid=$(cat "$1/redis.pid")
        if is_our_redis "$pid"; then
            die "redis-server already running for $1 (pid $pid)"
        fi
        rm -f -- "$1/redis.pid"
    fi
}

start() {
    state=$(abs_state_dir "${1:-}")
    refuse_if_running "$state"
    command -v redis-cli >/dev/null 2>&1 || die "redis-cli not found (run tests/scripts/deps.sh)"
    : >"$state/redis.log"
    attempt=0
    while :; do
        attempt=$((attempt + 1))
        port=$(free_port)
        rc=0
        launch_and_wait "$state" "$port" || rc=$?
        if [ "$rc" -eq 0 ]; then
            break
        fi
        if [ "$rc" -eq 1 ] && [ "$attempt" -lt 3 ] &&
            grep -q -i 'address already in use' "$state/redis.log"; then
            echo "redis.sh: port $port in use, retrying with another" >&2
            continue
        fi
        start_failed "$state"
    done
    write_env "$state" "$port"
    echo "redis.sh: redis ready at 127.0.0.1:$port (pid $(cat "$state/redis.pid"))" >&2
}

stop_redis() {
    state=$1
    pidfile="$state/redis.pid"
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if is_our_redis "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        waited=0
        while alive "$pid" && [ "$waited" -lt $((STOP_TIMEOUT_S * 10)) ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        if alive "$pid"; then
            echo "redis.sh: redis-server $pid did not stop in ${STOP_TIMEOUT_S}s, killing" >&2
            kill -KILL "$pid" 2>/dev/null || true
            waited=0
            while alive "$pid" && [ "$waited" -lt 50 ]; do
                sleep 0.1
                waited=$((waited + 1))
            done
        fi
    fi
    rm -f -- "$pidfile"
}

stop() {
    [ -n "${1:-}" ] || usage
    [ -d "$1" ] || return 0
    state=$(abs_state_dir "$1")
    stop_redis "$state"
}

restart_same_port() {
    state=$(abs_state_dir "${1:-}")
    [ -f "$state/redis.env" ] || die "no $state/redis.env (never started?)"
    port=$(sed -n 's/^REDIS_PORT=//p' "$state/redis.env")
    [ -n "$port" ] || die "no REDIS_PORT in $state/redis.env"
    stop_redis "$state"
    # The port may briefly be held by a socket of the old server.
    attempt=0
    while :; do
        attempt=$((attempt + 1))
        rc=0
        launch_and_wait "$state" "$port" || rc=$?
        if [ "$rc" -eq 0 ]; then
            break
        fi
        if [ "$rc" -eq 1 ] && [ "$attempt" -lt 20 ]; then
            sleep 0.5
            continue
        fi
        start_failed "$state"
    done
    write_env "$state" "$port"
    echo "redis.sh: redis restarted at 127.0.0.1:$port (pid $(cat "$state/redis.pid"))" >&2
}

[ "$#" -ge 1 ] || usage
cmd=$1
shift
case "$cmd" in
    start) start "$@" ;;
    stop) stop "$@" ;;
    restart-same-port) restart_same_port "$@" ;;
    *) usage ;;
esac
