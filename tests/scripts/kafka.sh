#!/bin/sh
# A real single-node Kafka 4.1.1 broker (KRaft, broker+controller) on
# loopback for the end-to-end tests, without Docker.
#
# Usage:
#   tests/scripts/kafka.sh fetch
#       Fetch the broker classpath with Maven (tests/kafka/pom.xml) into
#       ${PW_CACHE_DIR:-$HOME/.cache/promo-webhooks}/kafka-4.1.1/lib, once.
#   tests/scripts/kafka.sh start STATE_DIR
#       Fetch if needed, start a broker on two free loopback ports, wait until
#       metadata answers with one broker, write STATE_DIR/kafka.env:
#         KAFKA_BOOTSTRAP=127.0.0.1:PORT
#         KAFKA_PORT=PORT
#         KAFKA_CONTROLLER_PORT=CPORT
#       Log: STATE_DIR/kafka.log, PID: STATE_DIR/kafka.pid.
#   tests/scripts/kafka.sh create-topics STATE_DIR NAME:PARTITIONS ...
#       Create topics (replication factor 1) with pw-kafka-admin
#       ($PW_KAFKA_ADMIN, default build/tests/pw-kafka-admin under the repo
#       root) and wait until they are in the metadata with leaders.
#   tests/scripts/kafka.sh stop STATE_DIR
#       Stop the broker by its recorded PID (TERM, KILL after 15 s) and
#       remove its data directory.
#   tests/scripts/kafka.sh restart STATE_DIR
#       Stop the broker (keeping its data) and start it again on the same
#       ports: for tests where Kafka is briefly unavailable.
#
# Only PIDs recorded in STATE_DIR/kafka.pid are ever signalled.
set -eu

KAFKA_VERSION=4.1.1
MAVEN_DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
REPO_ROOT=$(CDPATH='' cd -- "$SCRIPT_DIR/../.." && pwd)
CACHE_DIR="${PW_CACHE_DIR:-$HOME/.cache/promo-webhooks}/kafka-$KAFKA_VERSION"
LIB_DIR="$CACHE_DIR/lib"
LIB_MARKER="$CACHE_DIR/lib.complete"
LOG4J_CONFIG="$REPO_ROOT/tests/kafka/log4j2.properties"
# Tests: a small heap and the C1 compiler only (a broker that starts fast).
# PW_KAFKA_JAVA_OPTS replaces them: the benchmark runs the broker as
# Kafka's own scripts do (full JIT, 1 GiB heap), the way users run it.
JAVA_OPTS=${PW_KAFKA_JAVA_OPTS:-"-Xms256m -Xmx512m -XX:+UseG1GC -XX:TieredStopAtLevel=1"}
START_TIMEOUT_S=90
STOP_TIMEOUT_S=15

die() {
    echo "kafka.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: kafka.sh fetch | start STATE_DIR | create-topics STATE_DIR NAME:PARTITIONS ... | stop STATE_DIR | restart STATE_DIR" >&2
    exit 2
}

# ---------------------------------------------------------------- helpers

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
# that outgoing connections never take it. Excludes the ports given.
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
        for ex in "$@"; do
            if [ "$p" = "$ex" ]; then p=""; fi
        done
        if [ -n "$p" ] && ! port_in_use "$p"; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# A 22-character URL-safe base64 cluster id (16 random bytes), not starting
# with '-' (it would be taken for an option, as Kafka's Uuid also avoids).
new_cluster_id() {
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)
        case "$id" in
            -*) ;;
            *) echo "$id"; return 0 ;;
        esac
    done
}

abs_state_dir() {
    [ -n "${1:-}" ] || usage
    mkdir -p -- "$1"
    CDPATH='' cd -- "$1" && pwd
}

# True when process $1 exists. The broker is never our child (it is started
# detached), so init reaps it and no zombie stays behind. (/proc/PID/stat
# shows Z for java as soon as its launcher thread exits: not a test.)
alive() {
    kill -0 "$1" 2>/dev/null
}

# True when PID $1 is alive and is the broker started with properties $2.
is_our_broker() {
    [ -n "$1" ] || return 1
    alive "$1" || return 1
    [ -r "/proc/$1/cmdline" ] || return 0
    tr '\000' ' ' <"/proc/$1/cmdline" | grep -F -q -- "$2"
}

# True when the broker at $1 answers metadata with exactly one broker.
metadata_ready() {
    out=$(kcat -b "$1" -L -t __none -m 2 2>/dev/null || true)
    printf '%s\n' "$out" | grep -q '^ *1 brokers:'
}

# ---------------------------------------------------------------- fetch

# The marker holds the checksum of the pom the classpath was fetched from:
# an edited pom means a new fetch.
pom_sum() {
    cksum <"$REPO_ROOT/tests/kafka/pom.xml" | awk '{ print $1 "-" $2 }'
}

fetch_complete() {
    [ -f "$LIB_MARKER" ] && [ -d "$LIB_DIR" ] &&
        [ "$(cat "$LIB_MARKER")" = "kafka-$KAFKA_VERSION pom-$(pom_sum)" ]
}

fetch() {
    if fetch_complete; then
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found (run tests/scripts/deps.sh)"
    mkdir -p "$CACHE_DIR"
    tmp="$CACHE_DIR/lib.tmp.$$"
    rm -rf -- "$tmp"
    echo "kafka.sh: fetching Kafka $KAFKA_VERSION classpath into $LIB_DIR" >&2
    if ! mvn -B -q -f "$REPO_ROOT/tests/kafka/pom.xml" \
        "$MAVEN_DEP_PLUGIN:copy-dependencies" \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >"$tmp.log" 2>&1; then
        cat "$tmp.log" >&2
        rm -rf -- "$tmp" "$tmp.log"
        die "maven failed to fetch the Kafka classpath"
    fi
    rm -f -- "$tmp.log"
    if ! ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1; then
        rm -rf -- "$tmp"
        die "kafka_2.13-$KAFKA_VERSION.jar missing after fetch"
    fi
    if fetch_complete; then
        # Another run completed the fetch meanwhile.
        rm -rf -- "$tmp"
        return 0
    fi
    rm -f -- "$LIB_MARKER"
    rm -rf -- "$LIB_DIR"
    mv -- "$tmp" "$LIB_DIR"
    echo "kafka-$KAFKA_VERSION pom-$(pom_sum)" >"$LIB_MARKER"
}

# ---------------------------------------------------------------- start

write_properties() {
    # $1 props file, $2 port, $3 controller port, $4 data dir
    cat >"$1" <<EOF
# Written by tests/scripts/kafka.sh: single-node KRaft test broker.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$3
listeners=PLAINTEXT://127.0.0.1:$2,CONTROLLER://127.0.0.1:$3
advertised.listeners=PLAINTEXT://127.0.0.1:$2
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$4
num.partitions=4
default.replication.factor=1
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
log.flush.interval.messages=9223372036854775807
log.segment.bytes=67108864
EOF
}

run_java() {
    # shellcheck disable=SC2086
    java $JAVA_OPTS "-Dlog4j2.configurationFile=$LOG4J_CONFIG" \
        -cp "$LIB_DIR/*" "$@"
}

# Starts the broker from $STATE/kafka-server.properties and waits for it.
# Returns 0 when ready, 1 when the process died, 2 on timeout.
launch_and_wait() {
    state=$1
    port=$2
    props="$state/kafka-server.properties"
    log="$state/kafka.log"
    rm -f -- "$state/kafka.pid"
    if command -v start-stop-daemon >/dev/null 2>&1; then
        # Detached (own session, stdin /dev/null, no inherited descriptors:
        # a pipe the caller holds, e.g. `kafka.sh start | tee`, is not kept
        # open by the broker). The pid file holds the java process itself.
        # shellcheck disable=SC2086
        start-stop-daemon --start --background --make-pidfile \
            --pidfile "$state/kafka.pid" --output "$log" \
            --startas "$(command -v java)" -- $JAVA_OPTS \
            "-Dlog4j2.configurationFile=$LOG4J_CONFIG" \
            -cp "$LIB_DIR/*" kafka.Kafka "$props" ||
            die "start-stop-daemon failed to start java"
        waited=0
        while [ ! -s "$state/kafka.pid" ] && [ "$waited" -lt 50 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        pid=$(cat "$state/kafka.pid" 2>/dev/null || true)
        [ -n "$pid" ] || die "no pid file written for the broker"
    else
        # A simple command (not a function) so that $! is java itself, in
        # a subshell that exits at once so that init reaps the broker.
        # shellcheck disable=SC2086
        (
            java $JAVA_OPTS "-Dlog4j2.configurationFile=$LOG4J_CONFIG" \
                -cp "$LIB_DIR/*" kafka.Kafka "$props" </dev/null >>"$log" 2>&1 &
            echo "$!" >"$state/kafka.pid"
        )
        pid=$(cat "$state/kafka.pid")
    fi
    waited=0
    while [ "$waited" -lt $((START_TIMEOUT_S * 2)) ]; do
        if ! alive "$pid"; then
            rm -f -- "$state/kafka.pid"
            return 1
        fi
        if metadata_ready "127.0.0.1:$port"; then
            return 0
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
    return 2
}

start_failed() {
    state=$1
    echo "kafka.sh: broker did not become ready; tail of $state/kafka.log:" >&2
    tail -n 60 "$state/kafka.log" >&2 2>/dev/null || true
    stop_broker "$state" keep-data
    exit 1
}

start() {
    state=$(abs_state_dir "${1:-}")
    if [ -f "$state/kafka.pid" ]; then
        pid=$(cat "$state/kafka.pid")
        if is_our_broker "$pid" "$state/kafka-server.properties"; then
            die "a broker is already running for $state (pid $pid)"
        fi
        rm -f -- "$state/kafka.pid"
    fi
    fetch
    command -v java >/dev/null 2>&1 || die "java not found (run tests/scripts/deps.sh)"
    command -v kcat >/dev/null 2>&1 || die "kcat not found (run tests/scripts/deps.sh)"
    [ -r "$LOG4J_CONFIG" ] || die "missing $LOG4J_CONFIG"

    attempt=0
    while :; do
        attempt=$((attempt + 1))
        port=$(free_port)
        cport=$(free_port "$port")
        data="$state/kafka-data"
        props="$state/kafka-server.properties"
        rm -rf -- "$data"
        mkdir -p "$data"
        : >"$state/kafka.log"
        write_properties "$props" "$port" "$cport" "$data"
        cluster_id=$(new_cluster_id)
        if ! run_java kafka.tools.StorageTool format -t "$cluster_id" -c "$props" \
            </dev/null >>"$state/kafka.log" 2>&1; then
            echo "kafka.sh: storage format failed:" >&2
            tail -n 40 "$state/kafka.log" >&2
            exit 1
        fi
        rc=0
        launch_and_wait "$state" "$port" || rc=$?
        if [ "$rc" -eq 0 ]; then
            break
        fi
        # A port taken between the check and the bind: try new ports.
        if [ "$rc" -eq 1 ] && [ "$attempt" -lt 3 ] &&
            grep -q -i 'address already in use' "$state/kafka.log"; then
            echo "kafka.sh: port in use, retrying with other ports" >&2
            continue
        fi
        start_failed "$state"
    done

    cat >"$state/kafka.env.tmp" <<EOF
KAFKA_BOOTSTRAP=127.0.0.1:$port
KAFKA_PORT=$port
KAFKA_CONTROLLER_PORT=$cport
EOF
    mv -f -- "$state/kafka.env.tmp" "$state/kafka.env"
    echo "kafka.sh: broker ready at 127.0.0.1:$port (pid $(cat "$state/kafka.pid"))" >&2
}

# Restart on the same ports with the same data (after stop ... keep-data).
restart() {
    state=$(abs_state_dir "${1:-}")
    props="$state/kafka-server.properties"
    [ -f "$props" ] || die "no broker configuration in $state"
    [ -d "$state/kafka-data" ] || die "no broker data in $state"
    port=$(sed -n 's/^KAFKA_PORT=//p' "$state/kafka.env")
    [ -n "$port" ] || die "no KAFKA_PORT in $state/kafka.env"
    stop_broker "$state" keep-data
    rc=0
    launch_and_wait "$state" "$port" || rc=$?
    if [ "$rc" -ne 0 ]; then
        start_failed "$state"
    fi
    echo "kafka.sh: broker restarted at 127.0.0.1:$port (pid $(cat "$state/kafka.pid"))" >&2
}

# ---------------------------------------------------------------- stop

# $1 state dir, $2 "keep-data" to keep the data directory.
stop_broker() {
    state=$1
    pidfile="$state/kafka.pid"
    if [ -f "$pidfile" ]; then
        pid=$(cat "$pidfile")
        if is_our_broker "$pid" "$state/kafka-server.properties"; then
            kill -TERM "$pid" 2>/dev/null || true
            waited=0
            while alive "$pid" && [ "$waited" -lt $((STOP_TIMEOUT_S * 5)) ]; do
                sleep 0.2
                waited=$((waited + 1))
            done
            if alive "$pid"; then
                echo "kafka.sh: broker $pid did not stop in ${STOP_TIMEOUT_S}s, killing" >&2
                kill -KILL "$pid" 2>/dev/null || true
                waited=0
                while alive "$pid" && [ "$waited" -lt 50 ]; do
                    sleep 0.2
                    waited=$((waited + 1))
                done
            fi
        fi
        rm -f -- "$pidfile"
    fi
    if [ "${2:-}" != "keep-data" ]; then
        rm -rf -- "$state/kafka-data"
    fi
}

stop() {
    [ -n "${1:-}" ] || usage
    [ -d "$1" ] || return 0
    state=$(abs_state_dir "$1")
    stop_broker "$state"
    rm -f -- "$state/kafka.env"
}

# ---------------------------------------------------------------- topics

create_topics() {
    state=$(abs_state_dir "${1:-}")
    shift
    [ "$#" -gt 0 ] || usage
    [ -f "$state/kafka.env" ] || die "no $state/kafka.env (broker not started?)"
    bootstrap=$(sed -n 's/^KAFKA_BOOTSTRAP=//p' "$state/kafka.env")
    admin="${PW_KAFKA_ADMIN:-$REPO_ROOT/build/tests/pw-kafka-admin}"
    [ -x "$admin" ] || die "pw-kafka-admin not found at $admin (build it or set PW_KAFKA_ADMIN)"
    for spec in "$@"; do
        case "$spec" in
            ?*:[0-9]*) ;;
            *) die "bad topic spec '$spec' (want NAME:PARTITIONS)" ;;
        esac
    done
    "$admin" -b "$bootstrap" create "$@" || die "topic creation failed"
    for spec in "$@"; do
        name=${spec%:*}
        parts=${spec##*:}
        waited=0
        while :; do
            out=$(kcat -b "$bootstrap" -L -t "$name" -m 5 2>/dev/null || true)
            if printf '%s\n' "$out" | grep -F -q "topic \"$name\" with $parts partitions:" &&
                ! printf '%s\n' "$out" | grep -q -i -E 'leader -1|error|not available'; then
                break
            fi
            waited=$((waited + 1))
            if [ "$waited" -gt 60 ]; then
                printf '%s\n' "$out" >&2
                die "topic $name did not appear with $parts partitions"
            fi
            sleep 0.5
        done
    done
}

# ---------------------------------------------------------------- main

[ "$#" -ge 1 ] || usage
cmd=$1
shift
case "$cmd" in
    fetch) fetch ;;
    start) start "$@" ;;
    create-topics) create_topics "$@" ;;
    stop) stop "$@" ;;
    restart) restart "$@" ;;
    *) usage ;;
esac
