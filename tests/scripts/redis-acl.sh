#!/bin/sh
# A throwaway Redis whose default user is switched off and whose only user
# is an ACL user, for the AUTH test (tests/integration/auth_acl.c).
#
# Usage: tests/scripts/redis-acl.sh start|stop STATE_DIR
#   start writes STATE_DIR/redis.conf (user default off; user pw-acl with
#   password acl-secret) and starts redis.sh on it; STATE_DIR/redis.env
#   then names its port. The user and password are the test's, nothing else.
set -eu
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
[ "$#" -eq 2 ] || { echo "usage: redis-acl.sh start|stop STATE_DIR" >&2; exit 2; }
case "$1" in
    start)
        mkdir -p -- "$2"
        printf '%s\n' 'user default off' 'user pw-acl on >acl-secret ~* &* +@all' >"$2/redis.conf"
        exec sh "$here/redis.sh" start "$2"
        ;;
    stop) exec sh "$here/redis.sh" stop "$2" ;;
    *) echo "usage: redis-acl.sh start|stop STATE_DIR" >&2; exit 2 ;;
esac
