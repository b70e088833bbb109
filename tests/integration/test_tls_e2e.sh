#!/usr/bin/env bash
# The tls probe end to end against real peers, checked against tshark.
#
# Two network namespaces joined by a veth pair (10.200.13.1/24 + fd00:213::1
# for the servers, .2 and ::2 for the clients). openssl s_server listens on
# 443 (TLS 1.3, ALPN h2/http/1.1), 8443 (TLS 1.2 only) and an odd port (only
# P-384: a client offering X25519 gets a HelloRetryRequest). Clients: openssl
# s_client (SNI/ALPN, TLS 1.2 and 1.3, HRR), curl, Python's ssl, IPv4 and
# IPv6, the hand-built 1.8 KB ClientHello in two send() calls
# (tls_hello.py), one s_client inside a kubepods-shaped cgroup, and a
# ClientHello nobody answers (reported alone after the timeout). tcpdump
# writes a pcap on the client's veth meanwhile.
#
# Oracle (tls_e2e_check.py): for every ClientHello tshark finds, ingrain's
# client record (matched by client port) has tshark's SNI, ALPN offered,
# ja3, ja3_full, ciphers, versions and, when answered, ja3s, ja3s_full and
# the chosen cipher; JA4 equals JA4 computed from tshark's fields; the
# client's pid is the one the test started; the pod is on the record of the
# client in the pod's cgroup; each server-side record carries the
# s_server's pid.
source "$(dirname "$0")/lib.sh"
ig_require_root
for c in python3 ip openssl curl tshark tcpdump; do ig_require_cmd "$c"; done
ig_require_built
[ -d /sys/fs/cgroup/unified ] || [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] ||
	ig_skip_or_fail "no cgroup v2 hierarchy"

port=$(ig_free_port)
odd=$(ig_free_port)
out="$IG_TMP/out.jsonl"
ns_s="igtls$$-s"
ns_c="igtls$$-c"
cg_base=/sys/fs/cgroup/unified
[ -d "$cg_base" ] || cg_base=/sys/fs/cgroup
pod_uid="e2a5e7c2-0dd4-4b7e-9a31-$(printf '%012d' $$)"
ctr_id=$(printf 'b%063d' $$)
cg_pod="$cg_base/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${pod_uid//-/_}.slice"
cg_ctr="$cg_pod/cri-containerd-$ctr_id.scope"
cleanup_all() {
	ip netns del "$ns_s" 2>/dev/null || true
	ip netns del "$ns_c" 2>/dev/null || true
	rmdir "$cg_ctr" "$cg_pod" 2>/dev/null || true
	rmdir "$cg_base/kubepods.slice/kubepods-besteffort.slice" "$cg_base/kubepods.slice" 2>/dev/null || true
}
trap 'ig_rc=$?; for p in "${IG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; cleanup_all; (exit $ig_rc); ig_cleanup' EXIT

ip netns add "$ns_s"
ip netns add "$ns_c"
ip -n "$ns_s" link add "vt$$s" type veth peer name "vt$$c" netns "$ns_c"
ip -n "$ns_s" addr add 10.200.13.1/24 dev "vt$$s"
ip -n "$ns_c" addr add 10.200.13.2/24 dev "vt$$c"
ip -n "$ns_s" addr add fd00:213::1/64 dev "vt$$s" nodad
ip -n "$ns_c" addr add fd00:213::2/64 dev "vt$$c" nodad
for ns in "$ns_s" "$ns_c"; do ip -n "$ns" link set lo up; done
ip -n "$ns_s" link set "vt$$s" up
ip -n "$ns_c" link set "vt$$c" up
mkdir -p "$cg_ctr"
ig_pass "namespaces, veth pair, pod cgroup $cg_ctr"

cd "$IG_TMP"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem \
	-out cert.pem -subj /CN=tls.example -days 2 2>/dev/null
cat >"$IG_TMP/config.yaml" <<YAML
agent:
  aggregator: tcp://127.0.0.1:$port
  plaintext: true
  batch_max_age: 50ms
  cgroup_root: $cg_base
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  control: ""
  state_dir: $IG_TMP/state
probes:
  tls:
    timeout: 1s
    pipelines: [archive, metrics]
pipelines:
  archive:
    stages: []
    backends: [out]
  metrics:  # the handshake counter of this test's clients
    stages:
      - type: filter
        keep_if: [{key: __name__, value: tls.handshake}, {key: role, value: client},
                  {key: client_addr, op: regex, value: '^(10\\.200\\.13\\.2|fd00:213::2)\$'}]
      - {type: whitelist, allow: [pod, pod_uid, sni, version, alpn, ja4]}
      - {type: rollup, window: 1s}
    backends: [metrics_out]
backends:
  out:
    type: console
    format: json
    output: $out
  metrics_out:
    type: console
    format: json
    output: $IG_TMP/metrics.jsonl
YAML
ig_start_aggregator "$IG_TMP/config.yaml"
ig_start_agent "$IG_TMP/config.yaml"
ig_check "the agent started the tls probe" grep -q 'probe started.*probe=tls' "$IG_TMP/agent.log"

servers="$IG_TMP/servers.txt"
server() { # NAME ARGS...
	local name=$1
	shift
	ip netns exec "$ns_s" openssl s_server -cert cert.pem -key key.pem -www "$@" >"$IG_TMP/$name.log" 2>&1 &
	IG_PIDS+=($!)
	echo "$name $!" >>"$servers"
	ig_wait_for "s_server $name" 10 grep -q ACCEPT "$IG_TMP/$name.log"
}
server s443 -accept 443 -alpn h2,http/1.1
server s8443 -accept 8443 -tls1_2 -alpn http/1.1
server sodd -accept "$odd" -groups P-384

ip netns exec "$ns_c" tcpdump -i "vt$$c" --immediate-mode -U -n -w "$IG_TMP/tls.pcap" tcp >"$IG_TMP/tcpdump.log" 2>&1 &
tcpdump_pid=$!
IG_PIDS+=("$tcpdump_pid")
ig_wait_for "tcpdump listening" 10 grep -q "listening on" "$IG_TMP/tcpdump.log"

# Each client logs "<label> <pid>" before it execs.
pids="$IG_TMP/pids.txt"
run() {
	local label=$1
	shift
	ip netns exec "$ns_c" sh -c 'echo "$0 $$" >>"'"$pids"'"; exec "$@"' "$label" "$@" \
		</dev/null >>"$IG_TMP/clients.log" 2>&1 || ig_fail "client $label: $(tail -5 "$IG_TMP/clients.log")"
}
get='GET / HTTP/1.0\r\n\r\n'
sc() { # LABEL ARGS... (s_client with a request, so it waits for the answer)
	local label=$1
	shift
	printf "$get" | ip netns exec "$ns_c" sh -c 'echo "$0 $$" >>"'"$pids"'"; exec openssl s_client -ign_eof "$@"' \
		"$label" "$@" >>"$IG_TMP/clients.log" 2>&1 || ig_fail "s_client $label"
}
sc s13_h2 -connect 10.200.13.1:443 -servername a.example -alpn h2
sc s13_v6 -connect '[fd00:213::1]:443' -servername v6.example -alpn h2,http/1.1
sc s13_nosni -connect 10.200.13.1:443 -noservername
sc s12_8443 -connect 10.200.13.1:8443 -tls1_2 -servername b.example -alpn http/1.1
sc hrr_odd -connect "[fd00:213::1]:$odd" -groups X25519:P-384 -servername hrr.example
run curl13 curl -sk --http1.1 --resolve c.example:443:10.200.13.1 https://c.example/ -o /dev/null
run curl12_v6 curl -sk --tls-max 1.2 --resolve d.example:8443:fd00:213::1 https://d.example:8443/ -o /dev/null
run py_ssl python3 -c '
import socket, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["h2", "http/1.1"])
with socket.create_connection(("fd00:213::1", 443)) as raw, ctx.wrap_socket(raw, server_hostname="py.example") as s:
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    while s.recv(4096): pass'
run big python3 "$IG_SOURCE_DIR/tests/integration/tls_hello.py" 10.200.13.1 443 big.example
# Bulk after the handshake: 256 KiB of request headers, far past the 4 KiB
# capture budget; the kernel must stop at the hello (checked at the end).
run bulk python3 -c '
import socket, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with socket.create_connection(("10.200.13.1", 443)) as raw, ctx.wrap_socket(raw, server_hostname="bulk.example") as s:
    s.sendall(b"GET / HTTP/1.0\r\n" + b"".join(b"X-Fill-%d: %s\r\n" % (i, b"a" * 240) for i in range(1024)) + b"\r\n")
    while s.recv(4096): pass'
# Nobody answers: a plain TCP listener that reads and stays silent.
ip netns exec "$ns_s" python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.200.13.1", 9443)); s.listen(4)
c, _ = s.accept(); c.recv(65536); time.sleep(3)' &
IG_PIDS+=($!)
sleep 0.3
run silent python3 -c '
import sys, socket, time
sys.path.insert(0, "'"$IG_SOURCE_DIR"'/tests/integration"); import tls_hello
with socket.create_connection(("10.200.13.1", 9443)) as s:
    s.sendall(tls_hello.client_hello("silent.example", 600)); time.sleep(2)'
# Into the pod's cgroup first: ip netns exec mounts a sysfs of its own.
printf "$get" | sh -c 'echo $$ >"'"$cg_ctr"'/cgroup.procs" && echo "pod $$" >>"'"$pids"'" && exec ip netns exec "$0" openssl s_client -ign_eof -connect 10.200.13.1:443 -servername pod.example' "$ns_c" >>"$IG_TMP/clients.log" 2>&1
ig_pass "all clients ran ($(wc -l <"$pids") of them)"

ig_wait_for "the unanswered hello reported alone" 20 grep -q '"sni":"silent.example"' "$out"
ig_wait_for "the pod's handshake" 10 grep -q '"sni":"pod.example"' "$out"
pod_port=$(grep -o '"client_port":[0-9]*,"answered":1,"hrr":0,"sni":"pod.example"' "$out" | head -1 | sed 's/"client_port":\([0-9]*\).*/\1/')
pod_in_pcap() {
	tshark -r "$IG_TMP/tls.pcap" -Y "tcp.srcport==$pod_port && tcp.flags.fin==1" 2>/dev/null | grep -q .
}
ig_wait_for "the pod's connection closing in the pcap" 10 pod_in_pcap
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true
[ -z "${IG_TLS_KEEP:-}" ] || { mkdir -p "$IG_TLS_KEEP" && cp "$IG_TMP/tls.pcap" "$out" "$pids" "$servers" "$IG_TLS_KEEP/"; }
python3 "$IG_SOURCE_DIR/tests/integration/tls_e2e_check.py" --pcap "$IG_TMP/tls.pcap" \
	--records "$out" --pids "$pids" --servers "$servers" --ports "443,8443,$odd,9443" \
	--pod-uid "$pod_uid" ||
	ig_fail "ingrain's records differ from tshark's view of the pcap (above)"
ig_pass "every handshake equals tshark's: SNI, ALPN, ja3, ja3s, ciphers, versions, JA4; pids; pod"

# The metrics pipeline: tls.handshake counts {pod, sni, version, alpn, ja4}
# add up to the client records.
want=$(grep -c '"name":"tls.handshake".*"role":"client".*"client_addr":"\(10.200.13.2\|fd00:213::2\)"' "$out")
cat >"$IG_TMP/sums.py" <<'PY'
import json, sys
n = 0
pod = False
for l in open(sys.argv[1]):
    m = json.loads(l)
    if m["name"] == "tls.handshake":
        n += m["value"]
        t = m["tags"]
        assert set(t) <= {"pod", "pod_uid", "sni", "version", "alpn", "ja4", "node", "scope"}, t
        if t.get("sni") == "pod.example" and t.get("pod_uid") == sys.argv[3]:
            pod = True
print("tls.handshake %d (want %s), pod's %s" % (n, sys.argv[2], pod))
sys.exit(0 if n == int(sys.argv[2]) and pod else 1)
PY
ig_wait_for "rolled-up tls.handshake reaching $want" 10 \
	python3 "$IG_TMP/sums.py" "$IG_TMP/metrics.jsonl" "$want" "$pod_uid"
ig_pass "metrics: $want tls.handshake counted per {pod, sni, version, alpn, ja4}"

# Each direction was parked at its hello and done at the next segment: the
# bulk connection's 256 KiB never reached user space, no direction ran into
# its capture budget, and the stream had no gap (HelloRetryRequest included).
ig_stop "$IG_PID_agent"
cap=$(grep 'msg="tls probe capture"' "$IG_TMP/agent.log")
ig_check "no direction reached its capture budget ($cap)" grep -q ' past_capture_bytes=0 ' <<<"$cap"
ig_check "directions were done after their hello" grep -q ' done_after_hello=[1-9]' <<<"$cap"
ig_check "the captured streams had no gap" grep -q ' reasm_gap_bytes=0$' <<<"$cap"
ig_check "the bulk connection's handshake was reported" grep -q '"sni":"bulk.example"' "$out"
ig_done
