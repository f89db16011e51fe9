#!/bin/sh
# base_image.sh: Debian 12 base images made locally, for building the
# Dockerfile where no image registry can be reached.
#
# Usage: tests/container/base_image.sh OUTDIR
#
# Writes OUTDIR/debian-12.tar and OUTDIR/debian-12-slim.tar (root
# filesystems, to be given to `podman import`), standing in for the official
# debian:12 and debian:12-slim images the Dockerfile's FROM lines name. Both
# are made the way the official images are (debuerreotype):
#   * `debootstrap --variant=minbase bookworm` from the host's Debian mirror
#     (its apt sources), the security mirror added to the image's
#     /etc/apt/sources.list.d/debian.sources;
#   * debuerreotype's minimizing configuration: /etc/apt/apt.conf.d/docker-clean
#     (no .deb or .bin caches kept after dpkg runs), docker-gzip-indexes,
#     docker-no-languages, docker-autoremove-suggests, and
#     /etc/dpkg/dpkg.cfg.d/docker-apt-speedup;
#   * apt lists, caches, logs and debootstrap's leftovers removed;
#   * slim only: /etc/dpkg/dpkg.cfg.d/docker, dpkg's path excludes for
#     documentation (copyright files kept), man and info pages, locales,
#     groff, lintian and linda data, and those files removed from the root,
#     so that a package installed later leaves them out too.
# So sizes mean what they mean on top of the official images: the slim base
# comes out at about 80 MB (the official debian:12-slim is about 75 MB).
#
# Existing tarballs are kept (PW_BASE_REFRESH=1 makes them again). Needs
# root and debootstrap; exits non-zero if anything fails. Concurrent runs
# wait for each other (flock on OUTDIR/.lock).
set -eu

out=${1:?usage: base_image.sh OUTDIR}
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

if [ "${PW_BASE_REFRESH:-0}" != 1 ] && [ -s "$out/debian-12.tar" ] && [ -s "$out/debian-12-slim.tar" ]; then
	echo "base_image.sh: using $out/debian-12.tar and $out/debian-12-slim.tar"
	exit 0
fi
[ "$(id -u)" -eq 0 ] || {
	echo "base_image.sh: debootstrap needs root" >&2
	exit 1
}
command -v debootstrap >/dev/null || {
	echo "base_image.sh: debootstrap is not installed (tests/scripts/deps.sh --container)" >&2
	exit 1
}

# host_uri SUITE: the first URI the host's apt sources give for SUITE
# (deb822 .sources files, then one-line .list files).
host_uri() {
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v s="$1" '
			/^[ \t]*$/ { if (uri != "" && hit && deb) { print uri; exit } uri = ""; hit = 0; deb = 0; next }
			/^URIs:/ { uri = $2 }
			/^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) hit = 1 }
			END { if (uri != "" && hit && deb) print uri }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk -v s="$1" '$1 == "deb" && $0 !~ /\[/ && $3 == s { print $2 }' "$f"
	done
}
mirror=$(host_uri bookworm | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}
security=$(host_uri bookworm-security | head -n 1)
security=${security:-http://deb.debian.org/debian-security}

work=$(mktemp -d "${TMPDIR:-/tmp}/pw-base.XXXXXX")
# A debootstrap that was interrupted may leave /proc or /sys mounted in the
# target: unmount below $work before removing it.
cleanup() {
	awk -v d="$work/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
root=$work/root

echo "base_image.sh: debootstrap --variant=minbase bookworm from $mirror"
if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
	tail -n 20 "$work/debootstrap.log" >&2
	echo "base_image.sh: debootstrap failed" >&2
	exit 1
fi

# What the official image's sources look like, with the host's mirrors.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# debuerreotype-minimizing-config
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
# As in the official Debian images: keep no package or index caches after
# dpkg or apt-get update ran (an image layer would keep them forever).
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };

Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
echo 'force-unsafe-io' >"$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"

# What debootstrap and dpkg leave behind and the official images do not have.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
	"$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/archives/partial/* \
	"$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
	"$root"/var/cache/ldconfig/aux-cache "$root/debootstrap"
find "$root/var/log" -type f -exec truncate -s 0 {} +
: >"$root/etc/machine-id"
rm -f "$root/etc/resolv.conf" "$root/etc/hostname"

# mktar DIR FILE: the root filesystem as a tarball, owners numeric.
mktar() {
	tar --numeric-owner --xattrs -C "$1" -cf "$2.tmp" . && mv "$2.tmp" "$2"
}
mktar "$root" "$out/debian-12.tar"

# debuerreotype-slimify
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# This is the "slim" variant of the Debian base image.
# Many files which are normally unnecessary in containers are excluded,
# and this configuration file keeps them that way.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
for d in groff info linda lintian/overrides locale man; do
	[ -d "$root/usr/share/$d" ] && find "$root/usr/share/$d" -mindepth 1 -delete
done
find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
mktar "$root" "$out/debian-12-slim.tar"

printf 'mirror=%s\nsecurity=%s\nmade=%s\n' "$mirror" "$security" "$(date -u +%Y-%m-%dT%H:%MZ)" >"$out/debian-12.info"
echo "base_image.sh: wrote $out/debian-12.tar ($(du -m "$out/debian-12.tar" | cut -f1) MB)" \
	"and $out/debian-12-slim.tar ($(du -m "$out/debian-12-slim.tar" | cut -f1) MB)"
