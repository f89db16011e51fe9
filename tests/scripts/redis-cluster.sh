#!/bin/sh
# A throwaway Redis Cluster on loopback: three redis-server masters, no
# replicas (for tests/integration/cluster_scripts.sh).
#
# Usage:
#   tests/scripts/redis-cluster.sh start STATE_DIR
#       Starts three nodes on free ports, joins them with
#       redis-cli --cluster create, waits for cluster_state:ok, writes
#       STATE_DIR/cluster.env: CLUSTER_PORTS="P1 P2 P3".
#   tests/scripts/redis-cluster.sh stop STATE_DIR
#       Stops the nodes by their recorded PIDs (TERM, KILL after 10 s).
# Only PIDs recorded in STATE_DIR/node-*.pid are ever signalled.
set -eu

die() {
    echo "redis-cluster.sh: $*" >&2
    exit 1
}

# A port below the ephemeral range that no socket uses.
free_port() {
    hi=32767
    if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
        eph=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range)
        if [ "$eph" -gt 20000 ]; then hi=$((eph - 1)); fi
    fi
    # A cluster node also listens on port + 10000: keep both free.
    hi=$((hi - 10000))
    tries=0
    while [ "$tries" -lt 200 ]; do
        tries=$((tries + 1))
        r=$(od -An -N4 -tu4 /dev/urandom | tr -d ' \n')
        p=$((10000 + r % (hi - 10000)))
        if ! in_use "$p" && ! in_use $((p + 10000)); then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

in_use() {
    hex=$(printf '%04X' "$1")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
        awk -v p=":$hex" 'NR > 1 && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }'
}

start() {
    state=$1
    mkdir -p -- "$state"
    state=$(CDPATH='' cd -- "$state" && pwd)
    server=$(command -v redis-server) || die "redis-server not found (run tests/scripts/deps.sh)"
    ports=""
    for i in 1 2 3; do
        port=$(free_port)
        case " $ports " in *" $port "*) port=$(free_port) ;; esac
        dir="$state/node-$i"
        rm -rf -- "$dir"
        mkdir -p -- "$dir"
        (
            cd "$dir"
            "$server" --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
                --cluster-config-file nodes.conf --dir "$dir" --save '' \
                --appendonly no --daemonize no --loglevel warning \
                </dev/null >>"$dir/redis.log" 2>&1 &
            echo "$!" >"$state/node-$i.pid"
        )
        ports="$ports $port"
    done
    ports=${ports# }
    for port in $ports; do
        waited=0
        until [ "$(redis-cli -p "$port" ping 2>/dev/null || true)" = PONG ]; do
            waited=$((waited + 1))
            [ "$waited" -lt 200 ] || die "node $port did not answer"
            sleep 0.1
        done
    done
    set --
    for port in $ports; do set -- "$@" "127.0.0.1:$port"; done
    redis-cli --cluster create "$@" --cluster-replicas 0 --cluster-yes \
        >"$state/create.log" 2>&1 || { cat "$state/create.log" >&2; die "cluster create failed"; }
    for port in $ports; do
        waited=0
        until redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; do
            waited=$((waited + 1))
            [ "$waited" -lt 300 ] || die "node $port: cluster_state not ok"
            sleep 0.1
        done
    done
    printf 'CLUSTER_PORTS="%s"\n' "$ports" >"$state/cluster.env"
    echo "redis-cluster.sh: cluster ready on $ports" >&2
}

stop() {
    state=$1
    [ -d "$state" ] || return 0
    for f in "$state"/node-*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        if kill -0 "$pid" 2>/dev/null &&
            tr '\000' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q redis-server; then
            kill -TERM "$pid" 2>/dev/null || true
            waited=0
            while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 100 ]; do
                sleep 0.1
                waited=$((waited + 1))
            done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f -- "$f"
    done
}

[ "$#" -eq 2 ] || { echo "usage: redis-cluster.sh start|stop STATE_DIR" >&2; exit 2; }
case "$1" in
    start) start "$2" ;;
    stop) stop "$2" ;;
    *) echo "usage: redis-cluster.sh start|stop STATE_DIR" >&2; exit 2 ;;
esac
