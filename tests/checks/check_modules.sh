#!/bin/sh
# The module graph of service/ (STYLE.md): no include cycles, and no module
# over 1000 lines without a reason at its top.
#
# A module X is service/X.c with include/promo_webhooks/X.h. X depends on Y
# when X.c or X.h includes "promo_webhooks/Y.h" (Y other than X). The
# graph must be acyclic (tsort finds a loop otherwise); the header graph
# alone too. A module longer than 1000 lines must say why in its first 30
# lines, in a line beginning " * Size:". Prints every module's size.
set -eu
src=${PW_SOURCE_DIR:-.}
svc="$src/service"
inc="$src/include/promo_webhooks"
[ -d "$svc" ] && [ -d "$inc" ] || { echo "check_modules: no service/ or include/ under $src" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# Edges "X Y" of the module graph, and of the header graph.
: >"$tmp/modules"
: >"$tmp/headers"
for f in "$svc"/*.c "$inc"/*.h; do
    x=$(basename "$f")
    x=${x%.*}
    sed -n 's/^#include "promo_webhooks\/\([a-z_]*\)\.h".*/\1/p' "$f" | while read -r y; do
        [ "$y" = "$x" ] && continue
        echo "$x $y" >>"$tmp/modules"
        case "$f" in *.h) echo "$x $y" >>"$tmp/headers" ;; esac
    done
    echo "$x $x" >>"$tmp/modules"
done
for g in modules headers; do
    if ! tsort "$tmp/$g" >/dev/null 2>"$tmp/$g.err"; then
        echo "FAIL: the $g graph has a cycle:" >&2
        cat "$tmp/$g.err" >&2
        fail=1
    fi
done
echo "modules: $(sort -u "$tmp/modules" | awk '$1 != $2' | wc -l) dependencies, acyclic unless reported above"

echo "module sizes (lines of service/X.c):"
for f in "$svc"/*.c; do
    n=$(wc -l <"$f")
    name=$(basename "$f" .c)
    mark=""
    if [ "$n" -gt 1000 ]; then
        if head -n 30 "$f" | grep -q '^ \* Size:'; then
            mark=" (over 1000 lines: reason at its top)"
        else
            mark=" FAIL: over 1000 lines without a \" * Size:\" reason at its top"
            fail=1
        fi
    fi
    printf '  %5d %s%s\n' "$n" "$name" "$mark"
done | sort -n
# the loop above runs in a subshell: re-check for the exit status
for f in "$svc"/*.c; do
    if [ "$(wc -l <"$f")" -gt 1000 ] && ! head -n 30 "$f" | grep -q '^ \* Size:'; then
        fail=1
    fi
done
if [ "$fail" -ne 0 ]; then
    echo "check_modules: FAILED" >&2
    exit 1
fi
echo "check_modules: all checks passed"
