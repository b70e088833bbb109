#!/usr/bin/env bash
# bench_tcp.sh: the cost of ingrain's network probes on loopback traffic.
#
# iperf3 (client and server on 127.0.0.1) runs three workloads for T seconds
# (default 4) in R interleaved rounds (default 3) under each configuration;
# the table reports the median throughput, its ratio to "none", and the CPU
# iperf3 says its client and server used. Workloads:
#   stream    TCP, 128 KiB writes (iperf3's default): bytes per second
#   small     TCP, 1 KiB writes: per-call cost
#   udp       UDP, 64-byte datagrams, unlimited rate: per-packet cost
# Configurations:
#   none         nothing attached
#   sock_btf     ingrain agent+aggregator: tcp + traffic probes, traffic counted with
#                tp_btf programs on sock_send_length/sock_recv_length (the default)
#   sock_tp      the same with classic tracepoints (INGRAIN_{TCP,TRAFFIC}_VARIANT=tracepoint)
#   cgroup_skb   the same with probes.traffic.method: cgroup_skb
#   tcptop       libbpf-tools tcptop (kprobes/fentry: reported as unavailable where
#                the kernel refuses them)
#   bpftrace     a tcptop equivalent on the sock tracepoints: per-process byte sums
# The agent reads the traffic table every second (probes.traffic.interval: 1s);
# its CPU over the run is reported too.
#
# Throughput on a shared VM is noisy, so a second table reports the per-call
# cost that decides it: bench_sock_calls (bench/bench_sock_calls.c) sends and
# receives over loopback in one thread and reports thread CPU ns per
# send+receive pair (udp 64 B, tcp 1 KiB, tcp 128 KiB), under the same
# configurations, interleaved the same way.
#
#   sudo bench/bench_tcp.sh [SECONDS] [ROUNDS]      (after building into build/)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
B=${IG_BUILD_DIR:-$here/build}
T=${1:-4}
R=${2:-3}
[ "$(id -u)" -eq 0 ] || { echo "bench_tcp: run as root" >&2; exit 1; }
command -v iperf3 >/dev/null || { echo "bench_tcp: iperf3 missing (scripts/install-deps.sh --test)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/ingrain-bench-tcp.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(freeport)
iport=$(freeport)

mkconf() { # $1 = traffic method
	cat <<YAML
agent:
  aggregator: tcp://127.0.0.1:$port
  plaintext: true
  log_level: warn
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  control: ""
  state_dir: ""
  log_level: warn
probes:
  tcp:
    pipelines: [p]
  traffic:
    interval: 1s
    method: $1
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
mkconf auto >"$tmp/sock.yaml"
mkconf cgroup_skb >"$tmp/skb.yaml"

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

start_ingrain() { # $1 config, then env assignments
	local cfg=$1
	shift
	"$B/aggregator/ingrain-aggregator" -c "$cfg" 2>"$tmp/agg.log" &
	agg=$!
	pids+=("$agg")
	sleep 0.3
	env "$@" "$B/node-agent/ingrain-agent" -c "$cfg" -l info --buffer-dir "$tmp/agent-buffer" 2>"$tmp/agent.log" &
	agent=$!
	pids+=("$agent")
	for _ in $(seq 100); do grep -q "agent running" "$tmp/agent.log" && break; sleep 0.05; done
	grep -q "agent running" "$tmp/agent.log" || { cat "$tmp/agent.log" >&2; exit 1; }
	agent_c0=$(cpu_ticks "$agent")
}
stop_ingrain() {
	agent_cpu=$(( $(cpu_ticks "$agent") - agent_c0 ))
	kill -TERM "$agent"; wait "$agent" || true
	kill -TERM "$agg"; wait "$agg" || true
}

iperf3 -s -p "$iport" >/dev/null 2>&1 &
pids+=("$!")
sleep 0.5

# run WORKLOAD -> "bits_per_second client_cpu server_cpu"
run() {
	local args=()
	case "$1" in
	stream) args=() ;;
	small) args=(-l 1K) ;;
	udp) args=(-u -b 0 -l 64) ;;
	esac
	iperf3 -c 127.0.0.1 -p "$iport" -t "$T" -J "${args[@]}" >"$tmp/run.json" 2>/dev/null || { echo "0 0 0"; return; }
	python3 - "$tmp/run.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["end"]
bps = j["sum_received"]["bits_per_second"] if "sum_received" in j else j["sum"]["bits_per_second"]
c = j["cpu_utilization_percent"]
print("%.0f %.1f %.1f" % (bps, c["host_total"], c["remote_total"]))
PY
}

workloads=(stream small udp)
configs=(none sock_btf sock_tp cgroup_skb tcptop bpftrace)
declare -A bps ccpu scpu acpu
tcptop_note=""
calls=("udp 64 100000" "tcp 1024 100000" "tcp 131072 10000")
declare -A pc
measure() { # config
	for w in "${workloads[@]}"; do
		read -r b c s < <(run "$w")
		bps[$1.$w]+="$b "
		ccpu[$1.$w]+="$c "
		scpu[$1.$w]+="$s "
	done
	for k in "${calls[@]}"; do
		# shellcheck disable=SC2086
		v=$("$B/bench/bench_sock_calls" $k | sed -n 's/ns_per_op=//p')
		pc[$1.${k% *}]+="$v "
	done
}

for r in $(seq "$R"); do
	measure none

	start_ingrain "$tmp/sock.yaml"
	measure sock_btf
	stop_ingrain
	acpu[sock_btf]+="$agent_cpu "

	start_ingrain "$tmp/sock.yaml" INGRAIN_TCP_VARIANT=tracepoint INGRAIN_TRAFFIC_VARIANT=tracepoint
	measure sock_tp
	stop_ingrain
	acpu[sock_tp]+="$agent_cpu "

	start_ingrain "$tmp/skb.yaml"
	measure cgroup_skb
	stop_ingrain
	acpu[cgroup_skb]+="$agent_cpu "

	tcptop -C 1 >"$tmp/tcptop.out" 2>&1 &
	tt=$!
	pids+=("$tt")
	sleep 2
	if kill -0 "$tt" 2>/dev/null; then
		measure tcptop
		kill -INT "$tt"; wait "$tt" 2>/dev/null || true
	else
		tcptop_note=$(grep -m1 -i -e fail -e error "$tmp/tcptop.out" || echo "exited")
	fi

	bpftrace -e '
tracepoint:sock:sock_send_length /args->ret > 0/ { @tx[pid, comm] = sum(args->ret); }
tracepoint:sock:sock_recv_length /args->ret > 0 && !(args->flags & 2)/ { @rx[pid, comm] = sum(args->ret); }
interval:s:1 { print(@tx); print(@rx); clear(@tx); clear(@rx); }' >/dev/null 2>&1 &
	bt=$!
	pids+=("$bt")
	sleep 3
	measure bpftrace
	kill -INT "$bt"; wait "$bt" 2>/dev/null || true
	echo "round $r done" >&2
done

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : "")}'; }
hz=$(getconf CLK_TCK)
printf '\niperf3 over 127.0.0.1, %ss x %d rounds (median), kernel %s, %d CPUs\n' "$T" "$R" "$(uname -r)" "$(nproc)"
for w in "${workloads[@]}"; do
	base=$(echo "${bps[none.$w]}" | median)
	printf '\n%s\n%-11s %12s %7s %9s %9s %10s\n' "$w" config "Mbit/s" ratio "cli CPU%" "srv CPU%" "agent CPU%"
	for c in "${configs[@]}"; do
		m=$(echo "${bps[$c.$w]:-}" | median)
		if [ -z "$m" ]; then
			printf '%-11s %12s   (%s)\n' "$c" "-" "unavailable: ${tcptop_note:-not run}"
			continue
		fi
		a="-"
		if [ -n "${acpu[$c]:-}" ]; then
			# agent CPU over the three workloads of a round
			a=$(python3 -c "print('%.2f' % ($(echo "${acpu[$c]}" | median)/$hz*100/(3*$T)))")
		fi
		printf '%-11s %12.0f %7.3f %9s %9s %10s\n' "$c" "$(python3 -c "print($m/1e6)")" \
			"$(python3 -c "print($m/$base if $base else 0)")" \
			"$(echo "${ccpu[$c.$w]}" | median)" "$(echo "${scpu[$c.$w]}" | median)" "$a"
	done
done

printf '\nper call: thread CPU ns per send+receive pair over loopback (median of %d)\n' "$R"
printf '%-11s' config
for k in "${calls[@]}"; do printf ' %20s' "${k% *}"; done
printf '\n'
for c in "${configs[@]}"; do
	printf '%-11s' "$c"
	for k in "${calls[@]}"; do
		m=$(echo "${pc[$c.${k% *}]:-}" | median)
		b=$(echo "${pc[none.${k% *}]}" | median)
		if [ -z "$m" ]; then printf ' %20s' "-"; continue; fi
		printf ' %20s' "$(python3 -c "print('%.0f (%+.0f, %.2fx)' % ($m, $m-$b, $m/$b))")"
	done
	printf '\n'
done
