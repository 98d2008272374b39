#!/usr/bin/env bash
# A Kafka-protocol broker for rivulet's Kafka tests: tansu 0.6.0 (crates.io), on loopback.
#
#   .ci/kafka.sh COMMAND [ARGS...]   start the broker, run COMMAND with
#                                    RIVULET_KAFKA_BROKERS=127.0.0.1:PORT (and
#                                    RIVULET_TANSU=<the binary>, for tests that start a
#                                    broker of their own), stop the broker, exit with
#                                    COMMAND's status
#   .ci/kafka.sh                     start the broker, print the export line, wait for
#                                    Ctrl-C (then stop it)
#
# The binary: $RIVULET_TANSU if set, else $TANSU_ROOT/bin/tansu (default
# ~/.cache/rivulet/tansu-0.6.0), installed there with cargo if missing. It is built with
# tansu's `libsql` feature: a default build of tansu has no storage engine except `null`
# (memory:// needs `dynostore`, sqlite:// needs `libsql`). Storage is a SQLite file in a
# temporary directory, removed on exit, so the broker keeps its data across a restart on
# the same directory. Its log is $KAFKA_LOG (default: that directory's tansu.log).
set -euo pipefail

TANSU_VERSION=0.6.0
TANSU_ROOT=${TANSU_ROOT:-$HOME/.cache/rivulet/tansu-$TANSU_VERSION}
tansu=${RIVULET_TANSU:-$TANSU_ROOT/bin/tansu}

if [ ! -x "$tansu" ]; then
    echo "kafka.sh: installing tansu $TANSU_VERSION (libsql) into $TANSU_ROOT" >&2
    cargo install tansu --version "$TANSU_VERSION" --locked --features libsql \
        --root "$TANSU_ROOT" >&2
    tansu=$TANSU_ROOT/bin/tansu
fi

# A free loopback port: the kernel picks one for a socket that is then closed.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

answers() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

data=$(mktemp -d -t rivulet-kafka.XXXXXX)
log=${KAFKA_LOG:-$data/tansu.log}
port=$(free_port)
pid=""

stop() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$data"
}
trap stop EXIT
trap 'exit 130' INT TERM

(
    cd "$data"
    exec "$tansu" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine "sqlite://tansu.db"
) >"$log" 2>&1 &
pid=$!

# Wait (at most 30 s) until the broker accepts connections.
for _ in $(seq 300); do
    if answers "$port"; then
        break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "kafka.sh: tansu exited at start; its log ($log):" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
done
if ! answers "$port"; then
    echo "kafka.sh: tansu does not answer on 127.0.0.1:$port after 30 s; its log:" >&2
    cat "$log" >&2
    exit 1
fi

export RIVULET_KAFKA_BROKERS=127.0.0.1:$port
export RIVULET_TANSU=$tansu
echo "kafka.sh: tansu $TANSU_VERSION on $RIVULET_KAFKA_BROKERS (pid $pid, data $data)" >&2

if [ "$#" -gt 0 ]; then
    status=0
    "$@" || status=$?
    exit "$status"
fi
echo "export RIVULET_KAFKA_BROKERS=$RIVULET_KAFKA_BROKERS RIVULET_TANSU=$RIVULET_TANSU"
echo "kafka.sh: Ctrl-C stops the broker" >&2
wait "$pid"
