#!/bin/sh
# with-env.sh STATE_DIR CMD...: runs CMD with the addresses of the test
# components (the *.env files the start scripts wrote under STATE_DIR)
# exported into its environment.
set -eu
state=$1
shift
for f in "$state"/*/*.env; do
	[ -f "$f" ] || continue
	set -a
	. "$f"
	set +a
done
exec "$@"
