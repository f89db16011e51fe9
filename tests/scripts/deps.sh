#!/bin/sh
# Installs every Debian package promo-webhooks needs to build and test.
#
# Usage: tests/scripts/deps.sh [--build-only | --container]
#   --build-only  only what building the service needs (the Dockerfile's
#                 build stage), not the test components (Kafka's Java,
#                 Redis, kcat, jq, clang)
#   --container   only what the container test needs to build and run the
#                 image (tests/container/test_image.sh, which runs this
#                 itself): podman, buildah, runc, and debootstrap for the
#                 locally made base image. Not part of the default set: the
#                 other tests do not need a container engine.
#
# Idempotent and quick: when every package is already installed (checked with
# dpkg-query) it installs nothing and does not touch the network. Otherwise it
# runs `apt-get update` once and installs only the missing packages. Runs as
# root (CI is root); a non-root user needs sudo.
set -eu

BUILD_PACKAGES="build-essential cmake pkg-config librdkafka-dev libcurl4-openssl-dev
libhiredis-dev libyajl-dev libevent-dev libssl-dev libxml2-dev"
# Test components. On a minimal Debian 12 (debootstrap --variant=minbase, a
# CI image) nothing else is there: ca-certificates for TLS to the package
# registries (Maven Central, PyPI, the Go module proxy), libclang-rt-14-dev
# for libFuzzer (clang only recommends it), python3 + pip + venv for the
# Python validators and browser tests, unzip for the Go toolchain module
# (tests/scripts/go.sh), chromium and chromium-driver for the console's
# browser test (tests/api/test_console.sh), nginx-light for the benchmark's
# nginx receiver (tests/bench/run.sh).
TEST_PACKAGES="ca-certificates libxml2-utils redis-server kcat jq curl maven default-jdk-headless
clang libclang-rt-14-dev python3 python3-pip python3-venv unzip chromium chromium-driver nginx-light"
CONTAINER_PACKAGES="podman buildah runc debootstrap"

case "${1:-}" in
--build-only) PACKAGES=$BUILD_PACKAGES ;;
--container) PACKAGES=$CONTAINER_PACKAGES ;;
"") PACKAGES="$BUILD_PACKAGES $TEST_PACKAGES" ;;
*)
    echo "usage: deps.sh [--build-only | --container]" >&2
    exit 2
    ;;
esac

missing=""
for pkg in $PACKAGES; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "installed" ]; then
        missing="$missing $pkg"
    fi
done

if [ -z "$missing" ]; then
    echo "deps.sh: all packages present"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    set --
elif command -v sudo >/dev/null 2>&1; then
    set -- sudo
else
    echo "deps.sh: missing packages:$missing; not root and no sudo" >&2
    exit 1
fi

echo "deps.sh: installing:$missing"
"$@" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
# $missing is a list of package names: word splitting is wanted here.
# shellcheck disable=SC2086
"$@" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
    install -y -qq --no-install-recommends $missing

still=""
for pkg in $missing; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "installed" ]; then
        still="$still $pkg"
    fi
done
if [ -n "$still" ]; then
    echo "deps.sh: still missing after install:$still" >&2
    exit 1
fi
echo "deps.sh: done"
