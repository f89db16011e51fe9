#!/bin/sh
# fresh-root.sh: runs a command of this repository on a brand-new minimal
# Debian 12, so that a package installed by hand on the host can never hide
# a missing install step. CI runs the README's test command this way.
#
# Usage: tests/scripts/fresh-root.sh COMMAND [ARG...]
#   e.g. tests/scripts/fresh-root.sh sh tests/run.sh
#
# What it does, as root:
#   1. a pristine Debian 12 root: `debootstrap --variant=minbase bookworm`
#      from the host's first Debian mirror, kept as a tarball in
#      $PW_ROOT_CACHE (default /var/cache/promo-webhooks/fresh-root) so that
#      only the untouched base is reused between runs, never anything the
#      project installed;
#   2. copies in only what a machine needs to reach its package registries:
#      the host's apt sources (and apt.conf.d files that set Acquire::
#      options), the extra CA certificates the host trusts
#      (/usr/local/share/ca-certificates; they take effect when deps.sh
#      installs ca-certificates) and resolv.conf;
#   3. clones the repository's committed HEAD into /src of the root (what is
#      not committed is not tested), makes the root a mount point with the
#      host's /dev and /sys bound in, and runs COMMAND in /src in a mount
#      namespace of its own entered with pivot_root (so podman works inside,
#      see docker/README.md), with its own /proc and /dev/shm and a clean
#      environment (HOME, PATH, LANG, CI and the PW_* variables only);
#   4. copies /src/build/test-artifacts back to ./build/test-artifacts,
#      stops every process still running in that mount namespace (only
#      those), unmounts and removes the root.
#
# Exit status: COMMAND's. PW_KEEP_ROOT=1 keeps the root (printed) for a look.
set -eu

[ $# -gt 0 ] || {
	echo "usage: fresh-root.sh COMMAND [ARG...]" >&2
	exit 2
}
[ "$(id -u)" -eq 0 ] || {
	echo "fresh-root.sh: must run as root (debootstrap, mount, unshare)" >&2
	exit 2
}

repo=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)
cache=${PW_ROOT_CACHE:-/var/cache/promo-webhooks/fresh-root}
base=$cache/bookworm-minbase.tar

say() {
	echo "fresh-root: $*"
}
die() {
	echo "fresh-root: $*" >&2
	exit 1
}
now() {
	date +%s
}

# The first Debian mirror of the host's apt sources (deb822 or one-line).
host_mirror() {
	{
		sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null
		sed -n 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*\).*/\2/p' \
			/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
	} | grep -v security | grep -m 1 -i debian || echo http://deb.debian.org/debian
}

t0=$(now)
if [ ! -f "$base" ]; then
	if ! command -v debootstrap >/dev/null; then
		say "installing debootstrap on the host"
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends debootstrap
	fi
	mirror=$(host_mirror)
	say "debootstrap --variant=minbase bookworm from $mirror (cached afterwards as $base)"
	mkdir -p "$cache"
	work=$(mktemp -d "$cache/debootstrap.XXXXXX")
	if ! debootstrap --variant=minbase bookworm "$work/root" "$mirror" >"$work/log" 2>&1; then
		tail -n 20 "$work/log" >&2
		rm -rf "$work"
		die "debootstrap failed"
	fi
	tar -C "$work/root" -cf "$base.tmp" .
	mv "$base.tmp" "$base"
	rm -rf "$work"
fi

root=$(mktemp -d /var/tmp/pw-fresh-root.XXXXXX)
mounted=0
cleanup() {
	rc=$?
	trap - EXIT INT TERM
	# Processes left running in the root's mount namespace (a broker after
	# a failed test): only those.
	ns=$(cat "$root/.fresh-root.ns" 2>/dev/null || true)
	if [ -n "$ns" ]; then
		for p in /proc/[0-9]*; do
			if [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ]; then
				kill -9 "${p#/proc/}" 2>/dev/null || true
			fi
		done
	fi
	if [ "$mounted" = 1 ]; then
		umount -R "$root" 2>/dev/null || umount -R -l "$root" 2>/dev/null || true
	fi
	if [ "${PW_KEEP_ROOT:-0}" = 1 ]; then
		say "root kept in $root"
	elif grep -q " $root[ /]" /proc/mounts; then
		# Never remove through a mount that is still there (/dev!).
		say "something is still mounted under $root: not removing it"
	else
		rm -rf --one-file-system "$root"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tar -C "$root" -xf "$base"

# What a machine needs to reach its package registries, and nothing else.
mkdir -p "$root/etc/apt/sources.list.d" "$root/etc/apt/apt.conf.d" "$root/usr/local/share/ca-certificates"
rm -f "$root/etc/apt/sources.list"
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$root/etc/apt/"
for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
	[ -f "$f" ] && cp "$f" "$root/etc/apt/sources.list.d/"
done
for f in /etc/apt/apt.conf.d/*; do
	if [ -f "$f" ] && grep -q '^[[:space:]]*Acquire::' "$f"; then
		cp "$f" "$root/etc/apt/apt.conf.d/"
	fi
done
for f in /usr/local/share/ca-certificates/*; do
	[ -f "$f" ] && cp "$f" "$root/usr/local/share/ca-certificates/"
done
cp /etc/resolv.conf "$root/etc/resolv.conf"
[ -f /etc/hosts ] && cp /etc/hosts "$root/etc/hosts"

# The repository as committed.
git clone -q --no-hardlinks "$repo" "$root/src"

# The root as a mount point of its own, with the host's /dev and /sys
# (recursively: cgroups, devpts) as slaves, so unmounting them here never
# touches the host's. Podman's tests need all three (docker/README.md).
mount --bind "$root" "$root"
mounted=1
mount --make-private "$root"
mkdir -p "$root/dev" "$root/sys" "$root/proc"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
mount --rbind /sys "$root/sys"
mount --make-rslave "$root/sys"

# A clean environment: HOME, PATH, LANG, CI and the caller's PW_* settings.
{
	echo "export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb"
	[ -n "${CI:-}" ] && echo "export CI='$CI'"
	for v in $(env | sed -n 's/^\(PW_[A-Z0-9_]*\)=.*/\1/p'); do
		case $v in
		PW_ROOT_CACHE | PW_KEEP_ROOT) ;;
		*) printf "export %s='%s'\n" "$v" "$(printenv "$v" | sed "s/'/'\\\\''/g")" ;;
		esac
	done
} >"$root/fresh-root.env"

t1=$(now)
say "root ready in $((t1 - t0)) s: $root; running: $*"
rc=0
# A mount namespace of its own, entered with pivot_root rather than chroot
# (in a chroot, runc's pivot_root would swap the chroot's mount and
# `podman exec` would land on the host's root), with its own /proc and
# /dev/shm.
unshare --mount --propagation private /bin/sh -c '
	set -e
	root=$1
	shift
	readlink /proc/self/ns/mnt >"$root/.fresh-root.ns"
	mount -t proc proc "$root/proc"
	mount -t tmpfs -o mode=1777 shm "$root/dev/shm"
	cd "$root"
	mkdir -p .oldroot
	pivot_root . .oldroot
	cd /
	umount -l /.oldroot
	rmdir /.oldroot
	exec /usr/bin/env -i /bin/sh -c ". /fresh-root.env && cd /src && exec \"\$@\"" sh "$@"
' sh "$root" "$@" || rc=$?
t2=$(now)
say "command exited $rc after $((t2 - t1)) s (root set up in $((t1 - t0)) s)"

if [ -d "$root/src/build/test-artifacts" ]; then
	mkdir -p "$repo/build"
	rm -rf "$repo/build/test-artifacts"
	cp -a "$root/src/build/test-artifacts" "$repo/build/test-artifacts"
	say "test artifacts copied to $repo/build/test-artifacts"
fi
exit "$rc"
