#!/usr/bin/env bash
# Builds the ingrain image (deploy/Dockerfile) with podman, offline except for
# Debian's package archive: the base images debian:12 and debian:12-slim are
# made here with debootstrap and `podman import` when the local store lacks
# them (no container registry is needed), then `podman build --pull=never`.
#
#   scripts/build-image.sh                     # -> localhost/ingrain:<appVersion>
#   scripts/build-image.sh --tag ingrain:dev
#   scripts/build-image.sh --platform linux/arm64   # needs qemu-user-static + binfmt
#
# Options:
#   --tag NAME[:TAG]     image name (default ingrain:<Chart.yaml appVersion>)
#   --platform OS/ARCH   target platform (default: this machine's); the base
#                        images are debootstrapped for that architecture
#   --base-only          only make the base images
#   --print-conf         print the containers.conf this script uses and exit
# Env:
#   IG_IMAGE_CACHE   where the debootstrapped root file systems are kept
#                    (default /var/cache/ingrain-image; outside the source tree)
#   DEBIAN_MIRROR    debootstrap mirror (default http://deb.debian.org/debian)
#   CONTAINERS_CONF  when unset, a containers.conf in IG_IMAGE_CACHE selecting
#                    runc, the cgroupfs manager and lowered ulimits is used
#                    (crun fails on hybrid cgroup hosts; see docs/install.md)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${IG_IMAGE_CACHE:-/var/cache/ingrain-image}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
app_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$here/charts/ingrain/Chart.yaml")
tag="ingrain:$app_version"
platform=""
base_only=0
print_conf=0

while [ $# -gt 0 ]; do
	case "$1" in
	--tag)
		tag=$2
		shift 2
		;;
	--platform)
		platform=$2
		shift 2
		;;
	--base-only)
		base_only=1
		shift
		;;
	--print-conf)
		print_conf=1
		shift
		;;
	-h | --help)
		sed -n '2,24p' "$0"
		exit 0
		;;
	*)
		echo "build-image: unknown option '$1' (try --help)" >&2
		exit 2
		;;
	esac
done

log() { echo "build-image: $*" >&2; }
die() {
	echo "build-image: $*" >&2
	exit 1
}

mkdir -p "$cache"
if [ -z "${CONTAINERS_CONF:-}" ]; then
	export CONTAINERS_CONF=$cache/containers.conf
	cat >"$CONTAINERS_CONF" <<'EOF'
# Written by ingrain's scripts/build-image.sh. runc instead of crun (crun
# refuses hybrid cgroup v1+v2 hosts), cgroupfs instead of systemd, and ulimits
# a root without CAP_SYS_RESOURCE may set.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
fi
if [ "$print_conf" -eq 1 ]; then
	echo "$CONTAINERS_CONF"
	exit 0
fi

command -v podman >/dev/null || die "podman not found: apt-get install podman runc (or scripts/install-deps.sh --test)"

# Platform -> Debian architecture.
host_arch=$(dpkg --print-architecture)
arch=$host_arch
if [ -n "$platform" ]; then
	case "$platform" in
	linux/amd64) arch=amd64 ;;
	linux/arm64 | linux/arm64/v8) arch=arm64 ;;
	*) die "unsupported platform '$platform' (linux/amd64, linux/arm64)" ;;
	esac
fi
plat_args=()
[ -n "$platform" ] && plat_args=(--platform "$platform")

# --- base images ---------------------------------------------------------------
# debian:12 (build stage) and debian:12-slim (runtime stage) are the same
# minbase root here: the Dockerfile installs everything it needs on top.
# Pinned for the record by the debootstrap tarball's sha256 (an image label).
base_ref=debian:12
[ "$arch" != "$host_arch" ] && base_ref=debian:12-$arch
need_base=0
for t in "$base_ref" "${base_ref/debian:12/debian:12-slim}"; do
	podman image exists "$t" || need_base=1
done
if [ "$need_base" -eq 1 ]; then
	command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install debootstrap"
	tarball=$cache/bookworm-minbase-$arch.tar
	if [ ! -s "$tarball" ]; then
		root=$cache/rootfs-$arch.$$
		rm -rf "$root"
		log "debootstrap --variant=minbase bookworm ($arch) from $mirror (about a minute)"
		foreign=()
		[ "$arch" != "$host_arch" ] && foreign=(--foreign)
		debootstrap --variant=minbase --arch="$arch" "${foreign[@]}" bookworm "$root" "$mirror" \
			>"$cache/debootstrap-$arch.log" 2>&1 ||
			die "debootstrap failed; see $cache/debootstrap-$arch.log"
		rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
		tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
		mv "$tarball.tmp" "$tarball"
		rm -rf "$root"
	fi
	sum=$(sha256sum "$tarball" | cut -d' ' -f1)
	log "podman import $tarball -> $base_ref, ${base_ref/debian:12/debian:12-slim}"
	podman import --quiet --arch "$arch" \
		--change "LABEL org.opencontainers.image.base.name=debootstrap-bookworm-minbase-$arch" \
		--change "LABEL io.ingrain.rootfs.sha256=$sum" \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["/bin/bash"]' \
		"$tarball" "$base_ref" >/dev/null
	podman tag "$base_ref" "${base_ref/debian:12/debian:12-slim}"
fi
[ "$base_only" -eq 1 ] && exit 0

# --- the image -------------------------------------------------------------------
revision=$(git -C "$here" rev-parse HEAD 2>/dev/null || echo unknown)
dirty=""
git -C "$here" diff --quiet HEAD 2>/dev/null || dirty="-dirty"
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
base_args=()
if [ "$arch" != "$host_arch" ]; then
	base_args=(--build-arg "BUILD_IMAGE=$base_ref" --build-arg "RUNTIME_IMAGE=${base_ref/debian:12/debian:12-slim}")
fi
log "podman build --pull=never -f deploy/Dockerfile -t $tag ${platform:+--platform $platform}"
podman build --pull=never "${plat_args[@]}" "${base_args[@]}" \
	-f "$here/deploy/Dockerfile" --ignorefile "$here/deploy/Dockerfile.dockerignore" \
	--build-arg "VERSION=$app_version" \
	--build-arg "REVISION=$revision$dirty" \
	--build-arg "CREATED=$created" \
	-t "$tag" "$here"
log "built $tag ($(podman image inspect --format '{{.Id}}' "$tag" | cut -c1-12))"
