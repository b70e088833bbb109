#!/usr/bin/env bash
# Hostile DNS messages from real sockets: the dns probe counts each as
# malformed (a dns.malformed record with the reason), the agent stays up, and
# the next good query is still reported.
#
# A client namespace sends to dnsmasq in a server namespace (veth pair,
# 10.200.13.0/24): a good query, then on the same UDP socket a name that points
# at itself, a pointer past the end, a forward pointer, a truncated header, a
# label running past the end and two pointers chasing each other; on TCP a
# length prefix claiming 64 KiB; then a good query on a new socket. Each bad
# message is seen twice (the client's egress and the server's ingress), so
# exactly 2 x 6 UDP and 2 x 1 TCP dns.malformed records must have those
# sockets as their source (dnsmasq's FORMERR answers that echo a bad question
# are malformed too, and come on top); both good queries must come out as
# exchanges.
source "$(dirname "$0")/lib.sh"
ig_require_root
for c in python3 ip dnsmasq; do ig_require_cmd "$c"; done
ig_require_built

port=$(ig_free_port)
out="$IG_TMP/out.jsonl"
ns_s="igdnh$$-s"
ns_c="igdnh$$-c"
cleanup_netns() {
	ip netns del "$ns_s" 2>/dev/null || true
	ip netns del "$ns_c" 2>/dev/null || true
}
trap 'ig_rc=$?; for p in "${IG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; cleanup_netns; (exit $ig_rc); ig_cleanup' EXIT
ip netns add "$ns_s"
ip netns add "$ns_c"
ip -n "$ns_s" link add "vh$$s" type veth peer name "vh$$c" netns "$ns_c"
ip -n "$ns_s" addr add 10.200.13.1/24 dev "vh$$s"
ip -n "$ns_c" addr add 10.200.13.2/24 dev "vh$$c"
for ns in "$ns_s" "$ns_c"; do ip -n "$ns" link set lo up; done
ip -n "$ns_s" link set "vh$$s" up
ip -n "$ns_c" link set "vh$$c" up
printf '10.6.6.6 first.test\n10.6.6.7 after.test\n' >"$IG_TMP/hosts"
ig_start dnsmasq "$IG_TMP/dnsmasq.log" "started" ip netns exec "$ns_s" dnsmasq --no-daemon \
	--port=53 --listen-address=10.200.13.1 --bind-interfaces --no-resolv --no-hosts \
	--addn-hosts="$IG_TMP/hosts" --local=/test/ --pid-file= --user=root --group=root

cat >"$IG_TMP/config.yaml" <<YAML
agent:
  aggregator: tcp://127.0.0.1:$port
  plaintext: true
  batch_max_age: 50ms
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  control: ""
  state_dir: $IG_TMP/state
probes:
  dns:
    pipelines: [archive]
pipelines:
  archive:
    stages: []
    backends: [out]
backends:
  out:
    type: console
    format: json
    output: $out
YAML
ig_start_aggregator "$IG_TMP/config.yaml"
ig_start_agent "$IG_TMP/config.yaml"

ip netns exec "$ns_c" python3 "$IG_SOURCE_DIR/tests/integration/dns_client.py" hostile 10.200.13.1 53 >"$IG_TMP/sent.json"
ig_pass "hostile client ran: $(cat "$IG_TMP/sent.json")"
ig_wait_for "the exchange of the good query after the hostile ones" 15 \
	grep -q '"name":"dns.query".*"role":"client".*after.test' "$out"
ig_check "the agent is still running" kill -0 "$IG_PID_agent"
sleep 0.3 # the server's records of the same packets, in the batch after

python3 - "$IG_TMP/sent.json" "$out" <<'PY' || ig_fail "malformed accounting differs (above)"
import json, sys
sent = json.load(open(sys.argv[1]))
recs = [json.loads(l) for l in open(sys.argv[2])]
mal = [r["tags"] for r in recs if r["name"] == "dns.malformed"]
def count(tr, p):
    # what the client sent (dnsmasq's FORMERR answers echo some of it back)
    return sum(1 for t in mal if t["transport"] == tr and t["src_port"] == p
               and t["src_addr"] == "10.200.13.2")
udp, tcp = count("udp", sent["udp_port"]), count("tcp", sent["tcp_port"])
reasons = sorted({t["reason"] for t in mal if "10.200.13." in t["src_addr"]})
print("malformed records: udp %d (want %d), tcp %d (want 2); reasons: %s" % (udp, 2 * sent["bad_udp"], tcp, reasons))
ok = udp == 2 * sent["bad_udp"] and tcp == 2
for want in ("shorter than a DNS header", "label runs past the end",
             "compression pointer does not point backward",
             "TCP message longer than probes.dns.capture_bytes: not parsed"):
    if want not in reasons:
        print("missing reason:", want); ok = False
ex = [r["tags"] for r in recs if r["name"] == "dns.query" and r["tags"]["client_addr"] == "10.200.13.2"]
for name in ("first.test", "after.test"):
    roles = sorted(t["role"] for t in ex if t["dns.qry.name"] == name)
    if roles != ["client", "server"]:
        print("exchange %s: roles %s" % (name, roles)); ok = False
    elif name == "first.test" and [t for t in ex if t["dns.qry.name"] == name and t["role"] == "client"][0]["pid"] != sent["pid"]:
        print("first.test: not the client's pid"); ok = False
sys.exit(0 if ok else 1)
PY
ig_pass "each hostile message counted as dns.malformed on both sides, good queries before and after reported"
ig_done
