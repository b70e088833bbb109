#!/usr/bin/env bash
# Quick start: install what the two binaries need, build them, and run an
# aggregator and an agent on this node with the embedded default configuration
# (ingrain-agent --print-default-config). Live records (which process, in which
# pod, opened what under /etc; which DNS names it asked for on any port, what
# came back, how fast; which TLS servers it talked to: SNI, version, cipher,
# JA4) print in this terminal until Ctrl-C.
#
#   sudo bash scripts/quickstart.sh           install, build, run
#   sudo bash scripts/quickstart.sh --help    this text
#
# What it does, in order (each step says how long it took):
#   1. scripts/install-deps.sh: Debian 12 packages for building and running
#      (compilers, cmake, clang for the BPF programs, bpftool, libbpf, nng,
#      msgpack-c, libyaml, libcurl, OpenSSL, json-c, PCRE2, zlib). No test tools.
#   2. cmake + build of ingrain-agent and ingrain-aggregator into build/ (the
#      build's own progress is shown).
#   3. starts ingrain-aggregator, then ingrain-agent (as root: it loads eBPF
#      programs and mounts tracefs/bpffs when missing). Their logs go to
#      build/quickstart/{aggregator,agent}.log; the records go to this terminal.
# Stop it with Ctrl-C: the agent hands over its last records, then both exit.
# The default pipeline drops the dynamic loader's /etc/ld.so.cache opens (one
# per exec) with a `filter` stage; see docs/pipelines.md to change it.
set -euo pipefail
case "${1:-}" in
-h | --help)
	sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
	exit 0
	;;
"") ;;
*)
	echo "quickstart: unknown option '$1' (try --help)" >&2
	exit 2
	;;
esac
if [ "$(id -u)" -ne 0 ]; then
	echo "quickstart: run as root (it installs packages and loads eBPF programs): sudo bash $0" >&2
	exit 1
fi
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
t_start=$(date +%s)
step() { echo "ingrain: [$1] $2"; }
since() { echo "$(($(date +%s) - $1)) s"; }

t=$(date +%s)
step 1/3 "installing build dependencies (scripts/install-deps.sh)"
bash scripts/install-deps.sh
step 1/3 "dependencies ready ($(since "$t"))"

t=$(date +%s)
step 2/3 "building ingrain-agent and ingrain-aggregator into build/"
mkdir -p build
if ! cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >build/cmake-configure.log 2>&1; then
	cat build/cmake-configure.log >&2
	echo "quickstart: cmake could not configure the build (above); scripts/install-deps.sh installs what it needs" >&2
	exit 1
fi
grep '^-- ingrain:' build/cmake-configure.log || true
cmake --build build -j"$(nproc)" --target ingrain-agent ingrain-aggregator
step 2/3 "built ($(since "$t"))"

logs=build/quickstart
mkdir -p "$logs"
: >"$logs/aggregator.log"
: >"$logs/agent.log"
step 3/3 "starting the aggregator, then the agent (logs in $logs/)"
# setsid: Ctrl-C reaches only this script, which then stops the agent first
# (so it can hand over its last records) and the aggregator second.
setsid ./build/aggregator/ingrain-aggregator 2>"$logs/aggregator.log" &
agg=$!
stop() {
	trap - INT TERM
	[ -n "${agent:-}" ] && kill -TERM "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
	kill -TERM "$agg" 2>/dev/null && wait "$agg" 2>/dev/null
	echo
	echo "ingrain: stopped. Agent summary:"
	grep -E 'msg="stats"|acknowledged' "$logs/agent.log" | tail -n 2 || true
	exit "${1:-0}"
}
trap stop INT TERM
for _ in $(seq 100); do
	grep -q "aggregator listening" "$logs/aggregator.log" 2>/dev/null && break
	if ! kill -0 "$agg" 2>/dev/null; then
		echo "ingrain: the aggregator failed to start:" >&2
		cat "$logs/aggregator.log" >&2
		exit 1
	fi
	sleep 0.1
done
setsid ./build/node-agent/ingrain-agent 2>"$logs/agent.log" &
agent=$!
for _ in $(seq 100); do
	grep -q "agent running" "$logs/agent.log" 2>/dev/null && break
	if ! kill -0 "$agent" 2>/dev/null; then
		echo "ingrain: the agent failed to start:" >&2
		cat "$logs/agent.log" >&2
		agent=
		stop 1
	fi
	sleep 0.1
done
step 3/3 "running ($(since "$t_start") since the start of the quick start); Ctrl-C to stop"
echo "ingrain: try in another terminal: cat /etc/hostname; sudo cat /etc/shadow; getent hosts deb.debian.org"
echo "ingrain: file opens under /etc, DNS exchanges and TLS handshakes follow:"
wait "$agg" || true
echo "ingrain: the aggregator exited; see $logs/aggregator.log" >&2
stop 1
