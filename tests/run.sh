#!/bin/sh
# tests/run.sh: every test of the project, as CI runs it.
# Installs what is missing (Debian packages, the Kafka jars), builds with
# warnings as errors, and runs CTest: unit tests, integration tests against
# a real redis-server, end-to-end tests against a real Kafka broker.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PW_BUILD_DIR:-$root/build}

sh "$root/tests/scripts/deps.sh"
sh "$root/tests/scripts/kafka.sh" fetch
cmake -S "$root" -B "$build" -DPW_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure "$@"
