#!/usr/bin/env bash
# bench_tls.sh: what mutual TLS costs the agent -> aggregator link, side by side.
#
# One aggregator per transport (console backend to /dev/null), the same
# workload for each, in R interleaved rounds (default 5): ig_send sends E
# envelopes of 512 records (default E=400, 204,800 records), one in flight at
# a time as the agent does. Reported: the median records/s, the aggregator's
# CPU per record, and the ratios TLS / plaintext. Also the handshake: the
# median wall time of a fresh connection + one envelope.
#
#   bench/bench_tls.sh [E] [ROUNDS]      (after building into build/)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
B=${IG_BUILD_DIR:-$here/build}
E=${1:-400}
R=${2:-5}
source "$here/tests/integration/lib.sh"
trap - EXIT
tmp=$IG_TMP
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

ig_tls_ca "$tmp/ca"
ig_tls_cert "$tmp/ca" "$tmp/agg" ingrain-aggregator "DNS:localhost,IP:127.0.0.1"
ig_tls_cert "$tmp/ca" "$tmp/agent" bench-node "DNS:bench-node"

declare -A url cpu_pid
for mode in plaintext tls; do
	port=$(ig_free_port)
	if [ "$mode" = tls ]; then
		url[$mode]="tls+tcp://127.0.0.1:$port"
		extra="  tls_dir: $tmp/agg
  tls_shared_names: [bench-node]"
	else
		url[$mode]="tcp://127.0.0.1:$port"
		extra="  plaintext: true"
	fi
	cat >"$tmp/$mode.yaml" <<YAML
aggregator:
  listen: ${url[$mode]}
$extra
  control: ""
  state_dir: ""
probes:
  files: {pipelines: [p]}
pipelines:
  p: {stages: [], backends: [null]}
backends:
  null: {type: console, format: json, output: /dev/null}
YAML
	"$B/aggregator/ingrain-aggregator" -c "$tmp/$mode.yaml" >"$tmp/$mode.log" 2>&1 &
	pids+=("$!")
	cpu_pid[$mode]=$!
	for _ in $(seq 100); do grep -q "aggregator listening" "$tmp/$mode.log" && break; sleep 0.1; done
done

cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
declare -A rates cpus hs
for r in $(seq "$R"); do
	for mode in plaintext tls; do
		c0=$(cpu "${cpu_pid[$mode]}")
		out=$(IG_SEND_TLS_DIR="$tmp/agent" IG_SEND_NODE=bench-node \
			"$B/tests/ig_send" "${url[$mode]}" --valid "$E" 512 "bench-node-$r")
		c1=$(cpu "${cpu_pid[$mode]}")
		rate=$(sed -n 's/.* records_per_s=\([0-9]*\).*/\1/p' <<<"$out")
		rates[$mode]+="$rate "
		cpus[$mode]+="$(awk -v c="$((c1 - c0))" -v k="$tck" -v n="$((E * 512))" 'BEGIN { printf "%.3f", 1e6 * c / k / n }') "
		t0=$(date +%s%N)
		IG_SEND_TLS_DIR="$tmp/agent" IG_SEND_NODE=bench-node \
			"$B/tests/ig_send" "${url[$mode]}" --valid 1 1 "bench-hs-$r" >/dev/null
		t1=$(date +%s%N)
		hs[$mode]+="$(((t1 - t0) / 1000)) "
	done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
printf '%-10s %14s %18s %22s\n' transport "records/s" "aggr CPU µs/rec" "connect+1 env (µs)"
for mode in plaintext tls; do
	printf '%-10s %14s %18s %22s\n' "$mode" "$(median <<<"${rates[$mode]}")" \
		"$(median <<<"${cpus[$mode]}")" "$(median <<<"${hs[$mode]}")"
done
awk -v a="$(median <<<"${rates[tls]}")" -v b="$(median <<<"${rates[plaintext]}")" \
	-v c="$(median <<<"${cpus[tls]}")" -v d="$(median <<<"${cpus[plaintext]}")" \
	'BEGIN { printf "ratio tls/plaintext: throughput %.2f, aggregator CPU per record %.2f\n", a / b, (d > 0 ? c / d : 0) }'
