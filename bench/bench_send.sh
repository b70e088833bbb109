#!/usr/bin/env bash
# bench_send.sh: agent -> aggregator rate with the project's load client,
# wire format version 1 and version 2 side by side.
#
# `ig_send URL --valid N 512` (N envelopes of 512 file.open records, one in
# flight) against an aggregator whose only pipeline sends every record to a
# console backend (JSON, /dev/null); v1 and v2 alternately, 3 rounds. Prints
# records/s and the aggregator's CPU per record for each run.
#
#   bench/bench_send.sh [N]      (default 2000; after building into build/)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
B=${IG_BUILD_DIR:-$here/build}
N=${1:-2000}
tmp=$(mktemp -d /tmp/ingrain-bench-send.XXXXXX)
agg=
cleanup() { [ -n "$agg" ] && kill -KILL "$agg" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/c.yaml" <<YAML
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  state_dir: ""
  log_level: info
probes:
  files:
    pipelines: [p]
pipelines:
  p:
    stages: []
    backends: [null]
backends:
  null:
    type: console
    format: json
    output: /dev/null
YAML
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in 1 2 3; do
	for v in 1 2; do
		"$B/aggregator/ingrain-aggregator" -c "$tmp/c.yaml" 2>"$tmp/agg.log" &
		agg=$!
		for _ in $(seq 100); do grep -q "aggregator listening" "$tmp/agg.log" && break; sleep 0.05; done
		g0=$(cpu_ticks "$agg")
		t0=$(date +%s.%N)
		rc=0
		IG_SEND_WIRE_VERSION=$v "$B/tests/ig_send" "tcp://127.0.0.1:$port" --valid "$N" 512 "agent-$v" >"$tmp/out.txt" || rc=$?
		t1=$(date +%s.%N)
		g1=$(cpu_ticks "$agg")
		kill -TERM "$agg"
		wait "$agg" || true
		agg=
		python3 -c "n=$N*512; dt=$t1-$t0; print('v$v round $round: %d records in %.2f s = %.0f records/s; aggregator CPU %.2f us/record; ig_send exit %d (0 = every envelope acknowledged)' % (n, dt, n/dt, ($g1-$g0)/$(getconf CLK_TCK)*1e6/n, $rc))"
	done
done
