#!/usr/bin/env bash
# fresh-check: the guard that keeps README's Quick start true on a new machine.
#
# It builds a fresh Debian 12 root (debootstrap --variant=minbase from the same
# Debian archive apt uses here), clones what is committed in this checkout into
# it, and runs README's two commands there as root, exactly as a new user would:
#   1. bash scripts/quickstart.sh   until its first file-open record appears
#                                   (it then gets SIGTERM, as from Ctrl-C, and
#                                   must stop cleanly);
#   2. bash scripts/test.sh         the whole suite, with CI=true.
# A package that the project uses but does not install makes one of them fail,
# here and in CI (.ci/run runs this after the main suite).
#
#   sudo bash scripts/fresh-check.sh [--quickstart-only] [--keep]
#
# The pristine debootstrap result is cached in $IG_FRESH_CACHE (default
# /var/cache/ingrain/fresh-bookworm) and copied for every run; the copy is
# removed afterwards (--keep leaves it, and says where). What makes a chroot
# behave like a machine: its root is a mount point (ip netns needs one), /proc,
# /sys, /dev, bpffs, tracefs and the cgroup trees are the host's, and the
# package clients' system-wide configuration (DNS resolver, CA certificates,
# npm/pip registries) is copied in.
set -euo pipefail
quick_only=0
keep=0
for a in "$@"; do
	case "$a" in
	--quickstart-only) quick_only=1 ;;
	--keep) keep=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "fresh-check: unknown option '$a' (try --help)" >&2
		exit 2
		;;
	esac
done
[ "$(id -u)" -eq 0 ] || {
	echo "fresh-check: run as root (debootstrap, chroot, mounts)" >&2
	exit 1
}
src=$(cd "$(dirname "$0")/.." && pwd)
cache=${IG_FRESH_CACHE:-/var/cache/ingrain/fresh-bookworm}
t_all=$(date +%s)
say() { echo "fresh-check: $*"; }
since() { echo "$(($(date +%s) - $1)) s"; }

# The archive apt uses on this machine (deb822 or one-line sources).
mirror=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | head -n 1 || true)
if [ -z "$mirror" ]; then
	mirror=$(grep -h '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '{for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' | head -n 1 || true)
fi
[ -n "$mirror" ] || {
	echo "fresh-check: cannot find the Debian archive apt uses (/etc/apt/sources.list*)" >&2
	exit 1
}

if [ ! -x "$cache/usr/bin/apt-get" ]; then
	command -v debootstrap >/dev/null || {
		echo "fresh-check: debootstrap is missing (scripts/install-deps.sh --test installs it)" >&2
		exit 1
	}
	t=$(date +%s)
	say "debootstrap bookworm from $mirror into $cache (once; cached)"
	rm -rf "$cache.tmp"
	mkdir -p "$(dirname "$cache")"
	if ! debootstrap --variant=minbase --include=ca-certificates,git bookworm "$cache.tmp" "$mirror" \
		>/tmp/ingrain-debootstrap.log 2>&1; then
		tail -n 20 /tmp/ingrain-debootstrap.log >&2
		echo "fresh-check: debootstrap failed (log: /tmp/ingrain-debootstrap.log)" >&2
		exit 1
	fi
	mv "$cache.tmp" "$cache"
	say "base root ready ($(since "$t"))"
fi

root=$(mktemp -d /var/tmp/ingrain-fresh.XXXXXX)
mounts=()
cleanup() {
	local rc=$?
	# Nothing started in the root may outlive the check.
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -KILL "${p#/proc/}" 2>/dev/null
	done
	sleep 0.2
	grep " $root/run/netns" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -R -l "${mounts[$i]}" 2>/dev/null || true; done
	if [ "$keep" -eq 1 ]; then
		say "kept the root at $root"
	elif ! grep -q " $root" /proc/mounts; then
		rm -rf "$root"
	else
		say "left $root: something is still mounted under it" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT

t=$(date +%s)
cp -a "$cache/." "$root/"
git clone -q "$src" "$root/src"
say "fresh root $root with a clone of $(git -C "$src" rev-parse --short HEAD) ($(since "$t"))"
[ -z "$(git -C "$src" status --porcelain --untracked-files=no)" ] ||
	say "note: uncommitted changes in $src are not part of the check (it clones what is committed)"
# The package clients' system-wide configuration of this machine.
for f in /etc/resolv.conf /etc/npmrc /usr/etc/npmrc /etc/pip.conf /etc/ssl/certs/ca-certificates.crt \
	/etc/apt/apt.conf.d/*proxy* /etc/apt/sources.list /etc/apt/sources.list.d/*; do
	[ -f "$f" ] || continue
	mkdir -p "$root$(dirname "$f")"
	cp -L "$f" "$root$f"
done
[ -d /usr/local/share/ca-certificates ] &&
	mkdir -p "$root/usr/local/share/ca-certificates" &&
	cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
mount --bind "$root" "$root"
mounts+=("$root")
for m in proc sys dev dev/pts sys/fs/cgroup sys/fs/bpf sys/kernel/tracing; do
	mountpoint -q "/$m" || continue
	mkdir -p "$root/$m"
	mount --rbind "/$m" "$root/$m"
	mounts+=("$root/$m")
done

env_root=(env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	CI=true TERM=dumb LANG=C.UTF-8)
in_root() { chroot "$root" "${env_root[@]}" "$@"; }

# 1. The quick start, until its first record appears.
t=$(date +%s)
qlog=/tmp/ingrain-fresh-quickstart.log
say "README command 1: bash scripts/quickstart.sh (output: $qlog)"
# Not through a function: $! must be the quick start itself (chroot, env and
# bash exec one another), so that SIGTERM reaches its Ctrl-C handler.
chroot "$root" "${env_root[@]}" bash -c 'cd /src && exec bash scripts/quickstart.sh' >"$qlog" 2>&1 </dev/null &
qpid=$!
deadline=$((SECONDS + 1200))
until grep -q ' file.open ' "$qlog"; do
	if ! kill -0 "$qpid" 2>/dev/null; then
		tail -n 40 "$qlog" >&2
		echo "fresh-check: FAIL: the quick start exited before showing a record" >&2
		exit 1
	fi
	if [ "$SECONDS" -ge "$deadline" ]; then
		tail -n 40 "$qlog" >&2
		echo "fresh-check: FAIL: no record from the quick start within 20 minutes" >&2
		exit 1
	fi
	# What a person would type in another terminal, once the agent runs.
	grep -q 'running (' "$qlog" && in_root cat /etc/hostname >/dev/null
	sleep 1
done
say "quick start showed its first record after $(since "$t"):"
grep ' file.open ' "$qlog" | head -n 3 | sed 's/^/    /'
grep -q 'path=/etc/ld.so.cache' "$qlog" && {
	echo "fresh-check: FAIL: the quick start shows the loader's /etc/ld.so.cache opens" >&2
	exit 1
}
kill -TERM "$qpid"
rc=0
wait "$qpid" || rc=$?
[ "$rc" -eq 0 ] || {
	tail -n 20 "$qlog" >&2
	echo "fresh-check: FAIL: the quick start exited with $rc after SIGTERM (Ctrl-C)" >&2
	exit 1
}
grep -q 'ingrain: stopped' "$qlog" || {
	echo "fresh-check: FAIL: the quick start did not say it stopped" >&2
	exit 1
}
say "README command 1 passed ($(since "$t"))"
[ "$quick_only" -eq 1 ] && {
	say "done in $(since "$t_all")"
	exit 0
}

# 2. The whole test suite, as CI runs it.
t=$(date +%s)
say "README command 2: bash scripts/test.sh (CI=true)"
in_root bash -c 'cd /src && exec bash scripts/test.sh' </dev/null
say "README command 2 passed ($(since "$t"))"
say "both README commands passed in a fresh Debian 12 root in $(since "$t_all")"
