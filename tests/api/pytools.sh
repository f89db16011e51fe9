# pytools.sh: the Python tools of the api tests (sourced, POSIX sh).
#
# Installs, once, into a virtual environment under
# ${PW_CACHE_DIR:-~/.cache/promo-webhooks}: openapi-spec-validator,
# schemathesis and selenium from PyPI, pinned. Sets PYBIN to its python and
# PATH to include its bin/. A tool that cannot be installed fails the test
# (exit 1): these tests have nothing to check without them.
#
# Python, not shell, because these are the tools that do the checking:
# the reference OpenAPI validator, the property-based API tester, and the
# WebDriver client that drives Chromium.

PW_PY_REQUIREMENTS="openapi-spec-validator==0.9.0 schemathesis==4.32.5 selenium==4.51.0"

pytools_setup() {
	cache=${PW_CACHE_DIR:-${HOME:-/tmp}/.cache/promo-webhooks}
	python=$(command -v python3 || true)
	if [ -z "$python" ]; then
		echo "FAIL: python3 not found (tests/scripts/deps.sh installs it)" >&2
		exit 1
	fi
	pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	pykey=$(echo "$PW_PY_REQUIREMENTS" | cksum | cut -d' ' -f1)
	venv=$cache/api-venv-py$pyver-$pykey
	if [ ! -f "$venv/.complete" ]; then
		echo "installing $PW_PY_REQUIREMENTS into $venv ..." >&2
		mkdir -p "$cache"
		rm -rf "$venv"
		log=$cache/api-venv.$$.log
		# shellcheck disable=SC2086 # a list of requirements
		if ! { "$python" -m venv "$venv" &&
			"$venv/bin/python" -m pip install --disable-pip-version-check \
				--no-input $PW_PY_REQUIREMENTS; } >"$log" 2>&1; then
			cat "$log" >&2
			rm -rf "$venv" "$log"
			echo "FAIL: cannot install the Python test tools ($PW_PY_REQUIREMENTS)" >&2
			exit 1
		fi
		rm -f "$log"
		touch "$venv/.complete"
	fi
	PYBIN=$venv/bin/python
	PATH=$venv/bin:$PATH
	export PATH
}
