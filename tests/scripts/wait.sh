# wait.sh: wait_for, sourced by the shell tests, the soak and the benches
# (POSIX sh). The caller defines fail (print the reason, exit non-zero).
#
# wait_for SECONDS DESCRIPTION CMD...: runs CMD every 0.1 s until it
# succeeds; after SECONDS, fails with the description. A wait polls its
# condition with a deadline; none sleeps in place of one.
wait_for() {
	limit=$1
	what=$2
	shift 2
	deadline=$(($(date +%s) + limit))
	while ! "$@"; do
		[ "$(date +%s)" -lt "$deadline" ] ||
			fail "timed out after ${limit}s waiting for: $what"
		sleep 0.1
	done
}
