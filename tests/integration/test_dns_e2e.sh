#!/usr/bin/env bash
# The dns probe end to end against real servers, checked against tshark.
#
# Two network namespaces joined by a veth pair (addresses only inside them:
# 10.200.12.1/24 + fd00:212::1/64 for the servers, .2 and ::2 for the
# clients). In the server namespace: dnsmasq on port 53 (hosts, a CNAME chain,
# NXDOMAIN for the rest of .test, a name whose answer is too big for UDP) and
# unbound on 5353 and on the odd port 5399 (local data: A, AAAA, TXT, MX, SRV;
# a DNSSEC trust anchor for bogus.test, which dnsmasq serves unsigned, so
# unbound answers SERVFAIL). Clients in the client namespace: dig +notcp/+tcp,
# the TC answer and dig's TCP retry, queries to a DNAT'ed "Service" address
# (the record has it as the server, and dnsmasq's as on the wire), pipelined
# TCP queries, queries split over three segments (after the 2-byte length, and
# after the length and 7 header bytes; tests/integration/dns_client.py), getaddrinfo from
# Python and from C (getent), a query to a port nobody answers (dns.timeout),
# and a dig inside a kubepods-shaped cgroup (the pod on the record). IPv4 and
# IPv6. tcpdump writes a pcap on the client's veth meanwhile.
#
# Oracle: for every DNS exchange tshark finds in the pcap, ingrain's client
# record and the server's record must have the same dns.id, dns.qry.name,
# dns.qry.type, dns.flags.rcode, TC flag, answers (A, AAAA, CNAME) and a
# latency within the stated tolerance of dns.time; every record of the
# test's traffic must be one of tshark's exchanges; pids are the clients' and
# the servers' own (tests/integration/dns_oracle.py).
source "$(dirname "$0")/lib.sh"
ig_require_root
for c in python3 ip dnsmasq unbound dig tshark tcpdump getent iptables; do ig_require_cmd "$c"; done
ig_require_built
[ -d /sys/fs/cgroup/unified ] || [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] ||
	ig_skip_or_fail "no cgroup v2 hierarchy"

port=$(ig_free_port)
out="$IG_TMP/out.jsonl"
ns_s="igdns$$-s"
ns_c="igdns$$-c"
cg_base=/sys/fs/cgroup/unified
[ -d "$cg_base" ] || cg_base=/sys/fs/cgroup
pod_uid="d1a5e7c2-0dd4-4b7e-9a31-$(printf '%012d' $$)"
ctr_id=$(printf 'a%063d' $$)
cg_pod="$cg_base/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${pod_uid//-/_}.slice"
cg_ctr="$cg_pod/cri-containerd-$ctr_id.scope"
cleanup_all() {
	ip netns del "$ns_s" 2>/dev/null || true
	ip netns del "$ns_c" 2>/dev/null || true
	rm -rf "/etc/netns/$ns_c"
	rmdir "$cg_ctr" "$cg_pod" 2>/dev/null || true
	rmdir "$cg_base/kubepods.slice/kubepods-besteffort.slice" "$cg_base/kubepods.slice" 2>/dev/null || true
}
trap 'ig_rc=$?; for p in "${IG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; cleanup_all; (exit $ig_rc); ig_cleanup' EXIT

ip netns add "$ns_s"
ip netns add "$ns_c"
ip -n "$ns_s" link add "vd$$s" type veth peer name "vd$$c" netns "$ns_c"
ip -n "$ns_s" addr add 10.200.12.1/24 dev "vd$$s"
ip -n "$ns_c" addr add 10.200.12.2/24 dev "vd$$c"
ip -n "$ns_s" addr add fd00:212::1/64 dev "vd$$s" nodad
ip -n "$ns_c" addr add fd00:212::2/64 dev "vd$$c" nodad
for ns in "$ns_s" "$ns_c"; do ip -n "$ns" link set lo up; done
ip -n "$ns_s" link set "vd$$s" up
ip -n "$ns_c" link set "vd$$c" up
# A Service address in the client namespace, DNAT'ed to dnsmasq as kube-proxy does.
for p in udp tcp; do
	ip netns exec "$ns_c" iptables -t nat -A OUTPUT -d 10.200.12.53 -p $p --dport 53 \
		-j DNAT --to-destination 10.200.12.1:53
done
mkdir -p "/etc/netns/$ns_c"
printf 'nameserver 10.200.12.1\noptions timeout:2 attempts:1\n' >"/etc/netns/$ns_c/resolv.conf"
mkdir -p "$cg_ctr"
ig_pass "namespaces, veth pair, resolv.conf for the client namespace, pod cgroup $cg_ctr"

# --- servers ------------------------------------------------------------
{
	echo "10.1.2.3 foo.test"
	echo "fd00:1::3 foo.test"
	echo "10.4.4.4 pod.test"
	echo "10.6.6.6 first.test"
	echo "10.6.6.7 after.test"
	for i in $(seq 1 120); do echo "10.3.$((i / 250)).$((i % 250 + 1)) big.test"; done
} >"$IG_TMP/hosts"
ig_start dnsmasq "$IG_TMP/dnsmasq.log" "started" ip netns exec "$ns_s" dnsmasq --no-daemon \
	--port=53 --listen-address=10.200.12.1,fd00:212::1 --bind-interfaces --no-resolv --no-hosts \
	--addn-hosts="$IG_TMP/hosts" --local=/test/ --cname=c1.test,c2.test --cname=c2.test,foo.test \
	--pid-file= --user=root --group=root
dnsmasq_pid=$IG_PID_dnsmasq

cat >"$IG_TMP/unbound.conf" <<EOF
server:
  interface: 10.200.12.1@5399
  interface: fd00:212::1@5399
  interface: 10.200.12.1@5353
  interface: fd00:212::1@5353
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$IG_TMP"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  access-control: 0.0.0.0/0 allow
  access-control: ::/0 allow
  do-not-query-localhost: no
  local-zone: "test." nodefault
  local-zone: "ub.test." static
  local-data: "a.ub.test. 300 IN A 10.7.7.7"
  local-data: "a.ub.test. 300 IN AAAA fd00:7::7"
  local-data: "t.ub.test. 300 IN TXT \"hello world\""
  local-data: "m.ub.test. 300 IN MX 10 mail.ub.test."
  local-data: "_sip._tcp.ub.test. 300 IN SRV 1 2 5060 sip.ub.test."
  domain-insecure: "ub.test."
  trust-anchor: "bogus.test. DS 12345 8 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE3A5D0BD1D0BD1D0BD1D0BD1D"
remote-control:
  control-enable: no
forward-zone:
  name: "bogus.test."
  forward-addr: 10.200.12.1@53
EOF
ig_start unbound "$IG_TMP/unbound.log" "start of service" ip netns exec "$ns_s" unbound -d -c "$IG_TMP/unbound.conf"
unbound_pid=$IG_PID_unbound
ig_pass "dnsmasq (pid $dnsmasq_pid) on 53, unbound (pid $unbound_pid) on 5353 and 5399"

# --- agent and aggregator -----------------------------------------------
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
  dns:
    timeout: 1s
    pipelines: [archive, metrics]
pipelines:
  archive:
    stages: []
    backends: [out]
  metrics:  # the query counter and the latency histogram of this test's clients
    stages:
      - type: filter
        keep_if: [{key: __name__, value: dns.query}, {key: role, value: client},
                  {key: client_addr, op: regex, value: '^(10\\.200\\.12\\.2|fd00:212::2)\$'}]
      - {type: sample, from: dns.query, field: latency_ns, name: dns.latency, divide_by: 1000,
         keep_tags: [qtype, rcode]}
      - {type: whitelist, allow: [qtype, rcode]}
      - {type: rollup, window: 1s, percentiles: [50]}
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
ig_check "the agent started the dns probe" grep -q 'probe started.*probe=dns' "$IG_TMP/agent.log"

ip netns exec "$ns_c" tcpdump -i "vd$$c" -U -n -w "$IG_TMP/dns.pcap" 'udp or tcp' >"$IG_TMP/tcpdump.log" 2>&1 &
tcpdump_pid=$!
IG_PIDS+=("$tcpdump_pid")
ig_wait_for "tcpdump listening" 10 grep -q "listening on" "$IG_TMP/tcpdump.log"

# --- clients (each logs "<label> <pid>" before it execs) ----------------
pids="$IG_TMP/pids.txt"
run() {
	local label=$1
	shift
	ip netns exec "$ns_c" sh -c 'echo "$0 $$" >>"'"$pids"'"; exec "$@"' "$label" "$@" >>"$IG_TMP/clients.log" 2>&1
}
cli=$IG_SOURCE_DIR/tests/integration/dns_client.py
run udp4_foo dig +notcp +tries=1 @10.200.12.1 foo.test A
run tcp4_foo dig +tcp +tries=1 @10.200.12.1 foo.test AAAA
run udp6_cname dig +notcp +tries=1 @fd00:212::1 c1.test A
run tcp6_nx dig +tcp +tries=1 @fd00:212::1 nx.test A
run udp4_odd dig +notcp +tries=1 -p 5399 @10.200.12.1 a.ub.test AAAA
run tcp6_odd dig +tcp +tries=1 -p 5399 @fd00:212::1 t.ub.test TXT
run udp4_5353 dig +notcp +tries=1 -p 5353 @10.200.12.1 m.ub.test MX
run udp6_5353 dig +notcp +tries=1 -p 5353 @fd00:212::1 _sip._tcp.ub.test SRV
run servfail dig +notcp +tries=1 -p 5399 @10.200.12.1 x.bogus.test A
run tc_retry dig +tries=1 @10.200.12.1 big.test A
run pipelined python3 "$cli" pipelined 10.200.12.1 53 foo.test c1.test nx.test
run split python3 "$cli" split fd00:212::1 53 foo.test
run split9 python3 "$cli" split 10.200.12.1 53 c1.test 9
run py_gai python3 "$cli" getaddrinfo foo.test
run c_gai getent ahosts pod.test
run nat_udp dig +notcp +tries=1 @10.200.12.53 foo.test A
run nat_tcp dig +tcp +tries=1 @10.200.12.53 c1.test AAAA
run timeout dig +notcp +tries=1 +time=1 -p 5400 @10.200.12.1 lost.test A || true
# Into the pod's cgroup first: ip netns exec mounts a sysfs of its own.
sh -c 'echo $$ >"'"$cg_ctr"'/cgroup.procs" && echo "pod $$" >>"'"$pids"'" && exec ip netns exec "$0" dig +notcp +tries=1 @10.200.12.1 pod.test A' "$ns_c" >>"$IG_TMP/clients.log" 2>&1
grep -q "10.3.0.2" "$IG_TMP/clients.log" || ig_fail "dig did not get the big answer over TCP: $(cat "$IG_TMP/clients.log")"
ig_pass "all clients ran ($(wc -l <"$pids") of them)"

# Wait on the records themselves: the timeout record comes last (1 s).
ig_wait_for "the dns.timeout record for lost.test" 20 grep -q '"name":"dns.timeout".*lost.test' "$out"
sleep 0.5 # the batch after it
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true

# IG_DNS_KEEP=DIR keeps the pcap, the records and the pids for a look by hand.
[ -z "${IG_DNS_KEEP:-}" ] || { mkdir -p "$IG_DNS_KEEP" && cp "$IG_TMP/dns.pcap" "$out" "$pids" "$IG_DNS_KEEP/"; }
python3 "$IG_SOURCE_DIR/tests/integration/dns_oracle.py" --pcap "$IG_TMP/dns.pcap" --records "$out" \
	--pids "$pids" --server-pid "dnsmasq=$dnsmasq_pid" --server-pid "unbound=$unbound_pid" \
	--odd-ports 5399,5400 --pod-uid "$pod_uid" --pod-cgroup "$cg_ctr" --tolerance-ms 5 ||
	ig_fail "ingrain's records differ from tshark's view of the pcap (above)"
ig_pass "every exchange equals tshark's: id, name, type, rcode, TC, answers, latency; pids; pod"

# The metrics pipeline: dns.query counts and dns.latency histogram counts
# (rolled up per second) both add up to the client exchanges.
want=$(grep -c '"name":"dns.query".*"role":"client".*"client_addr":"\(10.200.12.2\|fd00:212::2\)"' "$out")
cat >"$IG_TMP/sums.py" <<'PY'
import json, sys
q = h = 0
for l in open(sys.argv[1]):
    m = json.loads(l)
    if m["name"] == "dns.query": q += m["value"]
    if m["name"] == "dns.latency.count": h += m["value"]
print("dns.query %d dns.latency.count %d" % (q, h))
sys.exit(0 if q == h == int(sys.argv[2]) else 1)
PY
ig_wait_for "rolled-up dns.query and dns.latency.count reaching $want" 10 \
	python3 "$IG_TMP/sums.py" "$IG_TMP/metrics.jsonl" "$want" >/dev/null
grep -q '"name":"dns.latency.p50","kind":"gauge"' "$IG_TMP/metrics.jsonl" || ig_fail "no dns.latency.p50 gauge"
ig_pass "metrics: $want dns.query counted and $want dns.latency samples (histogram, per qtype and rcode)"
ig_done
