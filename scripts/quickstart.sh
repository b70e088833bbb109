#!/usr/bin/env bash
# Quick start: install dependencies, build, and run an aggregator and an agent
# on this node with the embedded default configuration. Live file-access
# records (which process, in which pod, opened what under /etc) and DNS
# exchanges (who asked for which name, what came back, how fast) print in this
# terminal until Ctrl-C. Logs go to build/quickstart/*.log.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target ingrain-agent ingrain-aggregator >/dev/null
logs=build/quickstart
mkdir -p "$logs"
echo "ingrain: starting aggregator and agent (logs in $logs/); Ctrl-C to stop."
echo "ingrain: try in another terminal: cat /etc/hostname; sudo cat /etc/shadow; getent hosts deb.debian.org"
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
	exit 0
}
trap stop INT TERM
for _ in $(seq 100); do
	grep -q "aggregator listening" "$logs/aggregator.log" 2>/dev/null && break
	kill -0 "$agg" 2>/dev/null || { cat "$logs/aggregator.log"; exit 1; }
	sleep 0.1
done
setsid ./build/node-agent/ingrain-agent 2>"$logs/agent.log" &
agent=$!
for _ in $(seq 100); do
	grep -q "agent running" "$logs/agent.log" 2>/dev/null && break
	kill -0 "$agent" 2>/dev/null || { cat "$logs/agent.log"; stop; }
	sleep 0.1
done
echo "ingrain: agent running; file opens under /etc and DNS exchanges follow:"
wait "$agg" || true
echo "ingrain: the aggregator exited; see $logs/aggregator.log" >&2
stop
