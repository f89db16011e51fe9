#!/bin/sh
# tests/run.sh: every test of the project, as CI runs it.
#
#   1. installs what is missing (Debian packages, the Kafka jars);
#   2. builds with warnings as errors and runs CTest: unit tests,
#      integration tests against a real redis-server, end-to-end tests
#      against a real Kafka broker, static checks, and the container image
#      built and run with podman (label container; needs root and Debian's
#      mirror; `-LE container` leaves it out, docker/README.md);
#   3. builds again with AddressSanitizer + UndefinedBehaviorSanitizer and
#      runs the unit and integration tests and the end-to-end pipeline test
#      under them;
#   4. runs each libFuzzer target for PW_FUZZ_SECONDS (default 30).
#
# PW_QUICK=1 stops after step 2. Extra arguments go to the first ctest run
# (e.g. `sh tests/run.sh -L unit`).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PW_BUILD_DIR:-$root/build}
jobs=$(nproc)

sh "$root/tests/scripts/deps.sh"
sh "$root/tests/scripts/kafka.sh" fetch

echo "== build (warnings are errors) and every test"
cmake -S "$root" -B "$build" -DPW_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" -j"$jobs"
ctest --test-dir "$build" --output-on-failure "$@"

[ "${PW_QUICK:-0}" = 1 ] && exit 0

echo "== ASan + UBSan build: unit, integration, the pipeline end to end, the admin API under schemathesis"
asan=${PW_ASAN_BUILD_DIR:-$root/build-asan}
cmake -S "$root" -B "$asan" -DPW_WERROR=ON -DPW_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
cmake --build "$asan" -j"$jobs"
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir "$asan" --output-on-failure -L 'unit|integration'
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir "$asan" --output-on-failure -R 'e2e_(pipeline|retries|retry_share|failure_rule|testsend)|api_openapi'

echo "== fuzzing"
sh "$root/tests/fuzz/run.sh"
