#!/usr/bin/env bash
# bench_dns.sh: what the dns probe (and the payload capture layer under it)
# costs, side by side in one run.
#
# Two network namespaces joined by a veth pair (10.200.14.0/24), so traffic
# crosses the cgroup_skb hooks twice as on a node (the sender's egress, the
# receiver's ingress). Part 1, iperf3 for T seconds (default 5) in R
# interleaved rounds (default 3), with the dns probe off (nothing attached)
# and on (agent + aggregator, dns probe only):
#   bulk   TCP, iperf3's default 128 KiB writes: bytes per second (target <= 1.02x)
#   small  UDP, 64-byte datagrams, unlimited rate: packets per second (target <= 1.10x)
# Because throughput on a shared VM is noisy, the per-call cost that decides
# it is measured too: bench_sock_calls' thread CPU per send+receive pair
# over loopback (tcp 128 KiB, udp 64 B), probe off, on, and on with
# server_side: false (no owner tracepoints on every send/recv), interleaved.
# Part 2, a DNS query storm: bench_dns_storm sends N queries (default 50000,
# 32 in flight) to dnsmasq; with the dns probe on it reports queries per
# second, the agent's CPU per exchange (each query is two exchanges: the
# client's socket and dnsmasq's), and the reconciliation
#   answered queries = client exchanges reported + events counted as lost;
# beside it the same storm under `tcpdump -w` on port 53 (the packets only,
# no parsing, no process, no pod) and with nothing attached.
#
#   sudo bench/bench_dns.sh [SECONDS] [ROUNDS] [QUERIES]    (after building into build/)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
B=${IG_BUILD_DIR:-$here/build}
T=${1:-5}
R=${2:-3}
N=${3:-50000}
[ "$(id -u)" -eq 0 ] || { echo "bench_dns: run as root" >&2; exit 1; }
for c in iperf3 dnsmasq tcpdump python3 ip; do
	command -v "$c" >/dev/null || { echo "bench_dns: $c missing (scripts/install-deps.sh --test)" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/ingrain-bench-dns.XXXXXX)
ns_s="igbd$$-s"
ns_c="igbd$$-c"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	sleep 0.2
	ip netns del "$ns_s" 2>/dev/null || true
	ip netns del "$ns_c" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(freeport)

ip netns add "$ns_s"
ip netns add "$ns_c"
ip -n "$ns_s" link add "vb$$s" type veth peer name "vb$$c" netns "$ns_c"
ip -n "$ns_s" addr add 10.200.14.1/24 dev "vb$$s"
ip -n "$ns_c" addr add 10.200.14.2/24 dev "vb$$c"
for ns in "$ns_s" "$ns_c"; do ip -n "$ns" link set lo up; done
ip -n "$ns_s" link set "vb$$s" up
ip -n "$ns_c" link set "vb$$c" up

ip netns exec "$ns_s" iperf3 -s -p 5201 >/dev/null 2>&1 &
pids+=("$!")
disown
ip netns exec "$ns_s" dnsmasq --no-daemon --port=53 --listen-address=10.200.14.1 --bind-interfaces \
	--no-resolv --no-hosts --address=/storm.test/10.9.9.9 --cache-size=0 --pid-file= \
	--user=root --group=root --log-facility=/dev/null >"$tmp/dnsmasq.log" 2>&1 &
pids+=("$!")
disown
sleep 0.5

cat >"$tmp/dns.yaml" <<YAML
agent:
  aggregator: tcp://127.0.0.1:$port
  log_level: info
aggregator:
  listen: tcp://127.0.0.1:$port
  control: ""
  state_dir: ""
  log_level: warn
probes:
  dns:
    pipelines: [p]
pipelines:
  p:
    stages: []
    backends: [out]
backends:
  out:
    type: console
    format: json
    output: $tmp/records.jsonl
YAML

sed 's/^    pipelines: \[p\]$/    server_side: false\n    pipelines: [p]/' "$tmp/dns.yaml" >"$tmp/dns-client.yaml"

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

start_ingrain() { # [config]
	local cfg=${1:-$tmp/dns.yaml}
	: >"$tmp/records.jsonl"
	"$B/aggregator/ingrain-aggregator" -c "$cfg" 2>"$tmp/agg.log" &
	agg=$!
	pids+=("$agg")
	sleep 0.3
	"$B/node-agent/ingrain-agent" -c "$cfg" 2>"$tmp/agent.log" &
	agent=$!
	pids+=("$agent")
	for _ in $(seq 100); do grep -q "agent running" "$tmp/agent.log" && break; sleep 0.05; done
	grep -q "agent running" "$tmp/agent.log" || { cat "$tmp/agent.log" >&2; exit 1; }
	agent_c0=$(cpu_ticks "$agent")
}
stop_ingrain() {
	agent_cpu=$(($(cpu_ticks "$agent") - agent_c0))
	kill -TERM "$agent"; wait "$agent" || true
	kill -TERM "$agg"; wait "$agg" || true
}

run_iperf() { # bulk|small -> bits/s or packets/s
	local args=()
	[ "$1" = small ] && args=(-u -b 0 -l 64)
	ip netns exec "$ns_c" iperf3 -c 10.200.14.1 -p 5201 -t "$T" -J "${args[@]}" >"$tmp/run.json" 2>/dev/null || { echo 0; return; }
	python3 - "$tmp/run.json" "$1" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["end"]
if sys.argv[2] == "small":
    s = j["sum"]
    print("%.0f" % ((s["packets"] - s.get("lost_packets", 0)) / s["seconds"]))
else:
    print("%.0f" % j["sum_received"]["bits_per_second"])
PY
}

# Thread CPU per send+receive pair over loopback (bench_sock_calls): the
# per-call cost itself, which throughput on a shared 2-CPU VM only shows
# through its noise.
calls=("tcp 131072 10000" "udp 64 100000")
sock_calls() { "$B/bench/bench_sock_calls" $1 | sed -n 's/ns_per_op=//p'; }
declare -A v
for r in $(seq "$R"); do
	for w in bulk small; do v[off.$w]+="$(run_iperf $w) "; done
	for k in "${calls[@]}"; do v[off.${k%% *}]+="$(sock_calls "$k") "; done
	start_ingrain
	for w in bulk small; do v[on.$w]+="$(run_iperf $w) "; done
	for k in "${calls[@]}"; do v[on.${k%% *}]+="$(sock_calls "$k") "; done
	stop_ingrain
	start_ingrain "$tmp/dns-client.yaml"
	for k in "${calls[@]}"; do v[cli.${k%% *}]+="$(sock_calls "$k") "; done
	stop_ingrain
	echo "round $r done" >&2
done
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : "")}'; }

storm() { ip netns exec "$ns_c" "$B/bench/bench_dns_storm" 10.200.14.1 53 "$N" 32; }
# storm with nothing attached
read -r s_off < <(storm)
# storm under tcpdump -w
ip netns exec "$ns_c" tcpdump -i "vb$$c" -U -n -w "$tmp/storm.pcap" 'port 53' >"$tmp/tcpdump.log" 2>&1 &
td=$!
pids+=("$td")
for _ in $(seq 100); do grep -q "listening on" "$tmp/tcpdump.log" && break; sleep 0.05; done
td_c0=$(cpu_ticks "$td")
read -r s_td < <(storm)
td_cpu=$(($(cpu_ticks "$td") - td_c0))
kill -INT "$td"; wait "$td" 2>/dev/null || true
td_pkts=$(grep -o '^[0-9]* packets captured' "$tmp/tcpdump.log" | awk '{print $1}')
# storm with the dns probe
start_ingrain
read -r s_on < <(storm)
sleep 1.5 # the last batch
stop_ingrain
client=$(grep -c '"name":"dns.query".*"role":"client".*"client_addr":"10.200.14.2"' "$tmp/records.jsonl" || true)
server=$(grep -c '"name":"dns.query".*"role":"server".*"client_addr":"10.200.14.2"' "$tmp/records.jsonl" || true)
lost_line=$(grep 'dns probe capture' "$tmp/agent.log" | tail -1)
rb=$(sed -n 's/.* ringbuf_full=\([0-9]*\).*/\1/p' <<<"$lost_line")
lf=$(sed -n 's/.* load_failed=\([0-9]*\).*/\1/p' <<<"$lost_line")
qv() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

printf '\nkernel %s, %d CPUs; veth between two network namespaces; %ss x %d rounds (median)\n' "$(uname -r)" "$(nproc)" "$T" "$R"
printf '\n%-6s %16s %16s %8s %8s\n' workload "probe off" "dns probe on" ratio target
for w in bulk small; do
	off=$(echo "${v[off.$w]}" | median)
	on=$(echo "${v[on.$w]}" | median)
	unit=$([ $w = bulk ] && echo "Mbit/s" || echo "pkt/s")
	scale=$([ $w = bulk ] && echo 1e6 || echo 1)
	tgt=$([ $w = bulk ] && echo 1.02 || echo 1.10)
	printf '%-6s %10.0f %-5s %10.0f %-5s %8.3f %8s\n' "$w" "$(python3 -c "print($off/$scale)")" "$unit" \
		"$(python3 -c "print($on/$scale)")" "$unit" "$(python3 -c "print($off/$on if $on else 0)")" "$tgt"
done
printf '\nthread CPU per send+receive pair over loopback (bench_sock_calls), ns\n'
printf '%-14s %10s %20s %8s %26s %8s\n' call "probe off" "dns probe (default)" ratio "server_side: false" ratio
for k in "${calls[@]}"; do
	c=${k%% *}
	off=$(echo "${v[off.$c]}" | median)
	on=$(echo "${v[on.$c]}" | median)
	cl=$(echo "${v[cli.$c]}" | median)
	label=$([ "$c" = tcp ] && echo "tcp 128 KiB" || echo "udp 64 B")
	printf '%-14s %10.0f %20.0f %8.3f %26.0f %8.3f\n' "$label" "$off" "$on" \
		"$(python3 -c "print($on/$off if $off else 0)")" "$cl" "$(python3 -c "print($cl/$off if $off else 0)")"
done
printf '\nDNS storm: %s queries, 32 in flight, to dnsmasq over the veth\n' "$N"
printf '%-22s %10s %10s %18s\n' config "queries/s" answered "CPU per exchange"
printf '%-22s %10s %10s %18s\n' "nothing attached" "$(qv qps "$s_off")" "$(qv answered "$s_off")" "-"
printf '%-22s %10s %10s %15.1f us   (tcpdump, %s packets written)\n' "tcpdump -w port 53" "$(qv qps "$s_td")" \
	"$(qv answered "$s_td")" "$(python3 -c "print($td_cpu/$hz*1e6/max(1,$(qv answered "$s_td")))")" "${td_pkts:-?}"
printf '%-22s %10s %10s %15.1f us   (agent, per record; %s client + %s server records)\n' "ingrain dns probe" \
	"$(qv qps "$s_on")" "$(qv answered "$s_on")" "$(python3 -c "print($agent_cpu/$hz*1e6/max(1,$client+$server))")" "$client" "$server"
ans=$(qv answered "$s_on")
printf '\nreconciliation: answered %s = client exchanges %s + lost events (ringbuf_full %s, load_failed %s): %s\n' \
	"$ans" "$client" "${rb:-?}" "${lf:-?}" \
	"$([ "$ans" -le $((client + ${rb:-0} + ${lf:-0})) ] && [ "$client" -le "$ans" ] && echo "no unaccounted loss" || echo "UNACCOUNTED LOSS")"
