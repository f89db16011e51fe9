#!/bin/sh
# Every golden XML body (tests/golden/render/*.xml) is well-formed and
# namespace-well-formed as xmllint sees it: an independent reading of what
# test_render_xml checks with libxml2's API. Any message from xmllint, even
# a namespace warning with exit status 0, fails the check.
set -u

dir="${PW_SOURCE_DIR:?PW_SOURCE_DIR is not set}/tests/golden/render"
if ! command -v xmllint >/dev/null 2>&1; then
	echo "check_xml_golden: xmllint not found (Debian: libxml2-utils)" >&2
	exit 1
fi

n=0
bad=0
for f in "$dir"/*.xml; do
	[ -e "$f" ] || continue
	n=$((n + 1))
	if ! out=$(xmllint --noout --nonet "$f" 2>&1) || [ -n "$out" ]; then
		echo "check_xml_golden: $f:" >&2
		printf '%s\n' "$out" >&2
		bad=$((bad + 1))
	fi
done
if [ "$n" -eq 0 ]; then
	echo "check_xml_golden: no golden XML files in $dir" >&2
	exit 1
fi
echo "check_xml_golden: $n files, $bad failed"
[ "$bad" -eq 0 ]
