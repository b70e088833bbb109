#!/usr/bin/env bash
# bench_tls.sh: what the tls probe (and the payload capture layer under it)
# costs, side by side in one run.
#
# Two network namespaces joined by a veth pair (10.200.15.0/24), so traffic
# crosses the cgroup_skb hooks twice as on a node; openssl s_server in one,
# the clients in the other.
#   storm  `openssl s_time -new` for T seconds (default 10) in R interleaved
#          rounds (default 3): full handshakes
#          back to back (TLS 1.3, X25519, ECDSA P-256), with the probe off
#          (nothing attached) and on (agent + aggregator, tls probe only,
#          records to a file). Reports handshakes/s for both, the agent's CPU
#          per handshake (each handshake is two records: the client's socket
#          and the server's), and the reconciliation
#            handshakes = client records + handshakes counted as lost.
#   bulk   one TLS download of S MiB (default 512) with curl from
#          `s_server -WWW`, R interleaved rounds (default 3) off and on:
#          bytes per second (target: on within 1.02x of off).
#
#   parse  bench_tls_parse: the user-space parse and fingerprints of one
#          handshake (the 1.8 KB hand-built ClientHello and openssl's
#          ServerHello), without the kernel, the capture layer or delivery.
#
#   sudo bench/bench_tls.sh [SECONDS] [ROUNDS] [MIB]    (after building into build/)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
B=${IG_BUILD_DIR:-$here/build}
T=${1:-10}
R=${2:-3}
S=${3:-512}
[ "$(id -u)" -eq 0 ] || { echo "bench_tls: run as root" >&2; exit 1; }
for c in openssl curl python3 ip; do
	command -v "$c" >/dev/null || { echo "bench_tls: $c missing (scripts/install-deps.sh --test)" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/ingrain-bench-tls.XXXXXX)
ns_s="igbt$$-s"
ns_c="igbt$$-c"
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
ip -n "$ns_s" addr add 10.200.15.1/24 dev "vb$$s"
ip -n "$ns_c" addr add 10.200.15.2/24 dev "vb$$c"
for ns in "$ns_s" "$ns_c"; do ip -n "$ns" link set lo up; done
ip -n "$ns_s" link set "vb$$s" up
ip -n "$ns_c" link set "vb$$c" up

mkdir -p "$tmp/www"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/key.pem" \
	-out "$tmp/cert.pem" -subj /CN=bench.example -days 2 2>/dev/null
head -c "$((S * 1024 * 1024))" /dev/urandom >"$tmp/www/big"
(cd "$tmp/www" && exec ip netns exec "$ns_s" openssl s_server -quiet -cert "$tmp/cert.pem" \
	-key "$tmp/key.pem" -accept 443 -www) >/dev/null 2>&1 &
pids+=("$!")
disown
(cd "$tmp/www" && exec ip netns exec "$ns_s" openssl s_server -quiet -cert "$tmp/cert.pem" \
	-key "$tmp/key.pem" -accept 4443 -WWW) >/dev/null 2>&1 &
pids+=("$!")
disown
sleep 0.5

cat >"$tmp/tls.yaml" <<YAML
agent:
  aggregator: tcp://127.0.0.1:$port
  plaintext: true
  log_level: info
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  control: ""
  state_dir: ""
  log_level: warn
probes:
  tls:
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

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
start_ingrain() {
	: >"$tmp/records.jsonl"
	"$B/aggregator/ingrain-aggregator" -c "$tmp/tls.yaml" 2>"$tmp/agg.log" &
	agg=$!
	pids+=("$agg")
	sleep 0.3
	"$B/node-agent/ingrain-agent" -c "$tmp/tls.yaml" 2>"$tmp/agent.log" &
	agent=$!
	pids+=("$agent")
	for _ in $(seq 600); do grep -q "agent running" "$tmp/agent.log" && break; sleep 0.05; done
	grep -q "agent running" "$tmp/agent.log" || { cat "$tmp/agent.log" >&2; exit 1; }
	agent_c0=$(cpu_ticks "$agent")
}
stop_ingrain() {
	agent_cpu=$(($(cpu_ticks "$agent") - agent_c0))
	kill -TERM "$agent"; wait "$agent" || true
	kill -TERM "$agg"; wait "$agg" || true
}
storm() { # -> "handshakes seconds"
	ip netns exec "$ns_c" openssl s_time -connect 10.200.15.1:443 -new -time "$T" 2>/dev/null |
		sed -n 's/^\([0-9]*\) connections in \([0-9.]*\) real seconds.*/\1 \2/p' | tail -1
}
bulk() { # -> bytes/s
	ip netns exec "$ns_c" curl -sk -o /dev/null -w '%{speed_download}\n' "https://10.200.15.1:4443/big"
}

# --- storm (R interleaved rounds) ---------------------------------------------
kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
count() { grep -c "\"role\":\"$1\",\"server\":\"10.200.15.1:443\"" "$tmp/records.jsonl" || true; }
soff_n=0 soff_s=0 son_n=0 son_s=0 storm_cpu=0 client=0 server=0 lost=0
for _ in $(seq "$R"); do
	read -r n s <<<"$(storm)"
	soff_n=$((soff_n + n)); soff_s=$(python3 -c "print($soff_s + $s)")
	start_ingrain
	read -r n s <<<"$(storm)"
	son_n=$((son_n + n)); son_s=$(python3 -c "print($son_s + $s)")
	# Every record written before the agent stops: wait until the count has
	# not moved for 1 s.
	prev=-1 same=0
	for _ in $(seq 300); do
		c=$(count client)
		if [ "$c" = "$prev" ]; then same=$((same + 1)); else same=0; fi
		[ "$same" -ge 5 ] && break
		prev=$c
		sleep 0.2
	done
	stop_ingrain
	storm_cpu=$((storm_cpu + agent_cpu))
	client=$((client + $(count client)))
	server=$((server + $(count server)))
	cap=$(grep 'msg="tls probe capture"' "$tmp/agent.log" | tail -1)
	prb=$(grep 'msg="tls probe" records' "$tmp/agent.log" | tail -1)
	echo "round: s_time $n handshakes; $(count client) client records; $cap; $prb" >>"$tmp/rounds.log"
	lost=$((lost + $(kv "$cap" ringbuf_full) + $(kv "$cap" load_failed) + $(kv "$cap" reasm_evicted) + \
		$(kv "$cap" reasm_overflow) + $(kv "$prb" evicted) + $(kv "$prb" gaps) + $(kv "$prb" alloc_failed)))
done

# --- bulk ----------------------------------------------------------------
offs=() ons=()
for _ in $(seq "$R"); do
	offs+=("$(bulk)")
	start_ingrain
	ons+=("$(bulk)")
	stop_ingrain
done

sed 's/ts=[^ ]* level=info comp=agent //g' "$tmp/rounds.log"

# --- parse ---------------------------------------------------------------
corpus=$here/tests/fuzz/corpus/fuzz_tls
tail -c +2 "$corpus/stream13-c" >"$tmp/c.bin"
tail -c +2 "$corpus/stream13-s" >"$tmp/s.bin"
"$B/bench/bench_tls_parse" "$tmp/c.bin" "$tmp/s.bin" 50000

python3 - "$soff_n" "$soff_s" "$son_n" "$son_s" "$storm_cpu" "$hz" "$client" "$server" "$lost" \
	"${offs[*]}" "${ons[*]}" "$S" <<'PY'
import statistics, sys
off_n, off_s, on_n, on_s = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
cpu, hz, client, server, lost = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
offs = [float(x) for x in sys.argv[10].split()]
ons = [float(x) for x in sys.argv[11].split()]
print("storm (openssl s_time -new, TLS 1.3; %.0f s off and %.0f s on, interleaved rounds):" % (off_s, on_s))
print("  probe off: %6d handshakes, %7.1f /s" % (off_n, off_n / off_s))
print("  probe on:  %6d handshakes, %7.1f /s  (%.3fx the rate off)" % (on_n, on_n / on_s, (off_n / off_s) / max(on_n / on_s, 1e-9)))
print("  agent CPU: %.1f us per handshake (%d client + %d server records)" % (cpu / hz * 1e6 / max(1, on_n), client, server))
print("  reconciliation: %d handshakes = %d client records + %d counted lost -> %s" % (
    on_n, client, lost, "OK" if on_n == client + lost else "UNACCOUNTED %d" % (on_n - client - lost)))
mo, mn = statistics.median(offs), statistics.median(ons)
print("bulk (one %d MiB TLS download per round, %d rounds, median):" % (int(sys.argv[12]), len(offs)))
print("  probe off: %.0f MB/s  %s" % (mo / 1e6, " ".join("%.0f" % (x / 1e6) for x in offs)))
print("  probe on:  %.0f MB/s  %s" % (mn / 1e6, " ".join("%.0f" % (x / 1e6) for x in ons)))
print("  off/on: %.3fx (target <= 1.02x)" % (mo / mn))
PY
