#!/bin/sh
# Builds the libFuzzer targets (tests/fuzz/*.c) in a build directory of
# their own, with clang and PW_FUZZ=ON (ASan + UBSan + libFuzzer), and runs
# each for a bounded time from its seed corpus. Exits non-zero when a build
# fails or any target finds a crash, a leak, a timeout or a failed check.
#
#   PW_FUZZ_SECONDS   seconds per target (default 30)
#   PW_FUZZ_BUILD     build directory (default <source>/build-fuzz)
#   PW_FUZZ_TARGETS   targets to run (default: all)
#   PW_FUZZ_JOBS      build parallelism (default 2)
#
# Inputs that crash are written to $PW_FUZZ_BUILD/artifacts/<target>/;
# reproduce with: $PW_FUZZ_BUILD/tests/fuzz/<target> <file>. Corpus growth
# stays in $PW_FUZZ_BUILD/corpus, never in the source tree.
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
build=${PW_FUZZ_BUILD:-$src/build-fuzz}
seconds=${PW_FUZZ_SECONDS:-30}
targets=${PW_FUZZ_TARGETS:-"fuzz_decode fuzz_render_json fuzz_render_xml fuzz_webhook_json fuzz_log fuzz_api"}
jobs=${PW_FUZZ_JOBS:-2}

cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER=clang -DPW_FUZZ=ON \
	-DCMAKE_BUILD_TYPE= >/dev/null
# shellcheck disable=SC2086 # targets is a list
cmake --build "$build" -j "$jobs" --target $targets

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=""
for t in $targets; do
	work="$build/corpus/$t"
	art="$build/artifacts/$t"
	mkdir -p "$work" "$art"
	echo "== $t: ${seconds}s"
	# The first corpus directory collects new inputs; the seeds are only
	# read. -timeout: one input taking longer than 10 s is a finding.
	if ! "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$art/" "$work" "$src/tests/fuzz/corpus/$t"; then
		failed="$failed $t"
	fi
done

if [ -n "$failed" ]; then
	echo "fuzzing failed:$failed (inputs in $build/artifacts)" >&2
	exit 1
fi
echo "fuzzing passed: $targets"
