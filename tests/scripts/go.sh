#!/bin/sh
# go.sh: prints the path of a Go toolchain new enough to build the
# project's Go-built test tools (kustomize, for check_manifests).
#
# Debian 12's golang-go is Go 1.19; the kustomize version the manifest check
# pins needs Go 1.26. When no Go of at least GO_MIN is on PATH, this fetches
# Go's own toolchain module (golang.org/toolchain, the zip that the `go`
# command itself downloads for GOTOOLCHAIN) from the Go module proxy once,
# checks its SHA-256 against the value pinned here, and unpacks it into
# ${PW_CACHE_DIR:-~/.cache/promo-webhooks}/go-$GO_VERSION.
#
# Usage: tests/scripts/go.sh            prints the path of the `go` binary
# Environment: GOPROXY (first entry used; default https://proxy.golang.org),
# PW_CACHE_DIR. Needs curl and unzip (tests/scripts/deps.sh installs both).
set -eu

GO_MIN=1.26.0
GO_VERSION=1.26.8
# sha256 of golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-<arch>.zip
GO_ZIP_SHA256_amd64=30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7

die() {
	echo "go.sh: $*" >&2
	exit 1
}

# True when Go version $1 (e.g. 1.26.8) is at least $2.
version_at_least() {
	[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]
}

installed=$(command -v go || true)
if [ -n "$installed" ]; then
	v=$("$installed" env GOVERSION 2>/dev/null | sed 's/^go//') || v=""
	if [ -n "$v" ] && version_at_least "$v" "$GO_MIN"; then
		echo "$installed"
		exit 0
	fi
fi

case "$(uname -m)" in
x86_64) arch=amd64 sha=$GO_ZIP_SHA256_amd64 ;;
*) die "no Go >= $GO_MIN on PATH and no pinned toolchain checksum for $(uname -m): install Go >= $GO_MIN" ;;
esac

cache=${PW_CACHE_DIR:-${HOME:-/tmp}/.cache/promo-webhooks}
dir=$cache/go-$GO_VERSION
mod=golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-$arch
bin=$dir/$mod/bin/go
if [ -x "$bin" ] && [ -f "$dir/.complete" ]; then
	echo "$bin"
	exit 0
fi

proxy=${GOPROXY:-https://proxy.golang.org}
proxy=${proxy%%[,|]*}
case "$proxy" in
http://* | https://*) ;;
*) die "GOPROXY's first entry ($proxy) is not a proxy URL: cannot fetch the Go toolchain" ;;
esac
command -v curl >/dev/null || die "curl not found (tests/scripts/deps.sh installs it)"
command -v unzip >/dev/null || die "unzip not found (tests/scripts/deps.sh installs it)"

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/go.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
url=$proxy/golang.org/toolchain/@v/v0.0.1-go$GO_VERSION.linux-$arch.zip
echo "go.sh: fetching Go $GO_VERSION ($url)" >&2
curl -fsS --retry 3 -o "$tmp/go.zip" "$url" || die "cannot fetch $url"
got=$(sha256sum "$tmp/go.zip" | cut -d' ' -f1)
[ "$got" = "$sha" ] || die "checksum mismatch for $url: got $got, want $sha"
unzip -q "$tmp/go.zip" -d "$tmp/unpacked" || die "cannot unpack $url"
rm -rf "$dir"
mv "$tmp/unpacked" "$dir"
touch "$dir/.complete"
"$bin" version >&2
echo "$bin"
