#!/usr/bin/env bash
# bench_files.sh: the cost of ingrain's file-access probe on open(2), side by side.
#
# An open/close storm (N ops, default 300000) is timed in R interleaved rounds
# (default 5) under each configuration; the table reports the median µs per
# open+close and its ratio to "no probe". Configurations:
#   none        nothing attached
#   filtered    ingrain agent+aggregator, opens outside monitor_dirs (dropped in kernel)
#   delivered   ingrain agent+aggregator, every open delivered to the aggregator
#               (console backend writing to /dev/null), wire format version 2
#   delivered_v1  the same with agent.wire_version: 1 (the previous format)
#   opensnoop   libbpf-tools opensnoop, output to /dev/null
#   bpftrace    bpftrace printing comm+filename per openat, to /dev/null
# For the delivered configurations it also reports agent and aggregator CPU
# per event (each, and their sum) and the events/s the pair sustained, with
# the loss counters the agent reported.
#
#   sudo bench/bench_files.sh [N] [ROUNDS]      (after building into build/)
set -euo pipefail
trap 'echo "bench_files: failed at line $LINENO (exit $?)" >&2' ERR
here=$(cd "$(dirname "$0")/.." && pwd)
B=${IG_BUILD_DIR:-$here/build}
N=${1:-300000}
R=${2:-5}
[ "$(id -u)" -eq 0 ] || { echo "bench_files: run as root" >&2; exit 1; }
tmp=$(mktemp -d /tmp/ingrain-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
mkdir -p "$tmp/mon" "$tmp/other"
touch "$tmp/mon/file" "$tmp/other/file"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

mkconf() { # $1 = monitored dir, $2 = wire version
	cat <<YAML
agent:
  aggregator: tcp://127.0.0.1:$port
  wire_version: ${2:-2}
  plaintext: true
  log_level: warn
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  state_dir: ""
  log_level: warn
probes:
  files:
    monitor_dirs: ["$1"]
    pipelines: [p]
pipelines:
  p:
    stages: []
    backends: [null]
backends:
  null:
    type: console
    format: text
    output: /dev/null
YAML
}
mkconf "$tmp/mon" >"$tmp/deliver.yaml"
mkconf "$tmp/mon" 1 >"$tmp/deliver_v1.yaml"
mkconf "$tmp/mon" >"$tmp/filter.yaml" # same probe; the storm opens $tmp/other instead

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

start_ingrain() {
	"$B/aggregator/ingrain-aggregator" -c "$1" 2>"$tmp/agg.log" &
	agg=$!
	pids+=("$agg")
	sleep 0.3
	"$B/node-agent/ingrain-agent" -c "$1" -l info --buffer-dir "$tmp/agent-buffer" 2>"$tmp/agent.log" &
	agent=$!
	pids+=("$agent")
	for _ in $(seq 100); do grep -q "agent running" "$tmp/agent.log" && break; sleep 0.05; done
}
stop_ingrain() {
	kill -TERM "$agent"; wait "$agent" || true
	kill -TERM "$agg"; wait "$agg" || true
}

run_storm() { "$B/bench/bench_open_storm" "$1" "$N" | sed -n 's/ns_per_op=\([0-9.]*\).*/\1/p'; }

load0=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A res cpu agent_cpu agg_cpu rates
# One delivered run: $1 = configuration name, $2 = its file.
run_delivered() {
	start_ingrain "$2"
	a0=$(cpu_ticks "$agent")
	g0=$(cpu_ticks "$agg")
	t0=$(date +%s.%N)
	ns=$(run_storm "$tmp/mon/file")
	# Wait until agent and aggregator are idle again (everything drained),
	# then take their CPU time: the cost of moving N events end to end.
	prev=-1
	while :; do
		a1=$(cpu_ticks "$agent")
		g1=$(cpu_ticks "$agg")
		[ "$((a1 + g1))" -eq "$prev" ] && break
		prev=$((a1 + g1))
		sleep 0.3
	done
	t1=$(date +%s.%N)
	stop_ingrain
	res[$1]+="$ns "
	hz=$(getconf CLK_TCK)
	agent_cpu[$1]+="$(python3 -c "print('%.2f' % (($a1-$a0)/$hz*1e6/$N))") "
	agg_cpu[$1]+="$(python3 -c "print('%.2f' % (($g1-$g0)/$hz*1e6/$N))") "
	cpu[$1]+="$(python3 -c "print('%.2f' % (($a1-$a0+$g1-$g0)/$hz*1e6/$N))") "
	rates[$1]+="$(python3 -c "print('%.0f' % ($N/($t1-$t0-0.3)))") "
	grep -o 'lost_[a-z_]*=[0-9]*' "$tmp/agent.log" | tail -n 5 | tr '\n' ' ' >"$tmp/lost_$1.txt" || true
}

for r in $(seq "$R"); do
	res[none]+="$(run_storm "$tmp/other/file") "

	start_ingrain "$tmp/filter.yaml"
	res[filtered]+="$(run_storm "$tmp/other/file") "
	stop_ingrain

	# the two wire versions in alternating order, so neither always runs first
	if [ $((r % 2)) -eq 1 ]; then
		run_delivered delivered_v1 "$tmp/deliver_v1.yaml"
		run_delivered delivered "$tmp/deliver.yaml"
	else
		run_delivered delivered "$tmp/deliver.yaml"
		run_delivered delivered_v1 "$tmp/deliver_v1.yaml"
	fi

	opensnoop >/dev/null 2>&1 &
	os=$!
	pids+=("$os")
	sleep 1.5
	res[opensnoop]+="$(run_storm "$tmp/other/file") "
	kill -INT "$os"; wait "$os" 2>/dev/null || true

	bpftrace -e 'tracepoint:syscalls:sys_enter_openat { printf("%s %s\n", comm, str(args->filename)); }' >/dev/null 2>&1 &
	bt=$!
	pids+=("$bt")
	sleep 3
	res[bpftrace]+="$(run_storm "$tmp/other/file") "
	kill -INT "$bt"; wait "$bt" 2>/dev/null || true
	echo "round $r done" >&2
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(echo "${res[none]}" | median)
printf '\nopen+close storm: %d ops x %d rounds (median), kernel %s, %d CPUs, load before: %s\n' "$N" "$R" "$(uname -r)" "$(nproc)" "$load0"
printf '%-12s %10s %8s   %s\n' config "us/op" ratio "rounds (ns/op)"
for c in none filtered delivered_v1 delivered opensnoop bpftrace; do
	m=$(echo "${res[$c]}" | median)
	printf '%-12s %10.3f %8.3f   %s\n' "$c" "$(python3 -c "print($m/1000)")" "$(python3 -c "print($m/$base)")" "${res[$c]}"
done
osn=$(echo "${res[opensnoop]}" | median)
for c in delivered_v1 delivered; do
	dlv=$(echo "${res[$c]}" | median)
	printf '\n%s adds %.3f us/op; opensnoop adds %.3f us/op; ratio of added costs %.3f\n' "$c" \
		"$(python3 -c "print(($dlv-$base)/1000)")" "$(python3 -c "print(($osn-$base)/1000)")" \
		"$(python3 -c "print(($dlv-$base)/max($osn-$base,1e-9))")"
	printf '  CPU per delivered event (us, median): agent %s + aggregator %s = %s; per round: %s\n' \
		"$(echo "${agent_cpu[$c]}" | median)" "$(echo "${agg_cpu[$c]}" | median)" \
		"$(echo "${cpu[$c]}" | median)" "${cpu[$c]}"
	printf '  events/s through agent -> aggregator (storm + drain), per round: %s\n' "${rates[$c]}"
	printf '  agent loss counters (last round): %s\n' "$(cat "$tmp/lost_$c.txt")"
done
v1=$(echo "${cpu[delivered_v1]}" | median)
v2=$(echo "${cpu[delivered]}" | median)
printf '\nagent+aggregator CPU per delivered event, v2/v1: %.3f\n' "$(python3 -c "print($v2/$v1)")"
