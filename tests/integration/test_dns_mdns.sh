#!/usr/bin/env bash
# mDNS (RFC 6762) through the dns probe: multicast queries to 224.0.0.251:5353
# and their answers, parsed like any other DNS, client and responder side.
#
# A responder (tests/integration/mdns_peer.py: Debian has no mDNS responder
# that runs without D-Bus) in one namespace, queriers in another (veth pair,
# 10.200.15.0/24, multicast routed on the veth):
#   legacy unicast: a query from an ephemeral port, answered by unicast with
#     the question and the query's id (RFC 6762 6.7);
#   mDNS proper: a query from port 5353 with id 0, answered to the group
#     without a question (matched on the answer's name).
# Each must be one dns.query record on the querier's side (server
# 224.0.0.251:5353, the A answer, the querier's pid) and one on the
# responder's (role server, the responder's pid), and no answer unmatched.
source "$(dirname "$0")/lib.sh"
ig_require_root
for c in python3 ip; do ig_require_cmd "$c"; done
ig_require_built

port=$(ig_free_port)
out="$IG_TMP/out.jsonl"
ns_s="igdnm$$-s"
ns_c="igdnm$$-c"
cleanup_netns() {
	ip netns del "$ns_s" 2>/dev/null || true
	ip netns del "$ns_c" 2>/dev/null || true
}
trap 'ig_rc=$?; for p in "${IG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; cleanup_netns; (exit $ig_rc); ig_cleanup' EXIT
ip netns add "$ns_s"
ip netns add "$ns_c"
ip -n "$ns_s" link add "vm$$s" type veth peer name "vm$$c" netns "$ns_c"
ip -n "$ns_s" addr add 10.200.15.1/24 dev "vm$$s"
ip -n "$ns_c" addr add 10.200.15.2/24 dev "vm$$c"
for ns in "$ns_s" "$ns_c"; do ip -n "$ns" link set lo up; done
ip -n "$ns_s" link set "vm$$s" up
ip -n "$ns_c" link set "vm$$c" up
ip -n "$ns_s" route add 224.0.0.0/4 dev "vm$$s"
ip -n "$ns_c" route add 224.0.0.0/4 dev "vm$$c"

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
peer=$IG_SOURCE_DIR/tests/integration/mdns_peer.py
ig_start responder "$IG_TMP/responder.log" '"ready"' ip netns exec "$ns_s" python3 "$peer" responder printer.local 10.200.15.1
ip netns exec "$ns_c" python3 "$peer" legacy printer.local 10.200.15.2 >"$IG_TMP/legacy.json"
ip netns exec "$ns_c" python3 "$peer" querier printer.local 10.200.15.2 >"$IG_TMP/mdns.json"
ig_pass "legacy: $(cat "$IG_TMP/legacy.json"); mdns: $(cat "$IG_TMP/mdns.json")"
ig_wait_for "four dns.query records (two exchanges, both sides)" 15 \
	sh -c '[ "$(grep -c "\"name\":\"dns.query\".*printer.local" "'"$out"'")" -ge 4 ]'
sleep 0.3

python3 - "$IG_TMP/legacy.json" "$IG_TMP/mdns.json" "$IG_PID_responder" "$out" <<'PY' || ig_fail "mDNS records differ (above)"
import json, sys
legacy, mdns = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
responder = int(sys.argv[3])
recs = [json.loads(l) for l in open(sys.argv[4])]
dq = [r["tags"] for r in recs if r["name"] == "dns.query" and r["tags"]["dns.qry.name"] == "printer.local"]
ok = True
for what, q, qid in (("legacy unicast", legacy, 4242), ("mDNS", mdns, 0)):
    cli = [t for t in dq if t["role"] == "client" and t["client_port"] == q["port"]]
    srv = [t for t in dq if t["role"] == "server" and t["client_port"] == q["port"]]
    if len(cli) != 1 or len(srv) != 1:
        print("%s: %d client, %d server records" % (what, len(cli), len(srv))); ok = False; continue
    c, s = cli[0], srv[0]
    for t, pid in ((c, q["pid"]), (s, responder)):
        if t["pid"] != pid or t["dns.id"] != qid or t.get("dns.a") != "10.200.15.1" or t["rcode"] != "NOERROR":
            print("%s %s: %s" % (what, t["role"], t)); ok = False
    if c["server"] != "224.0.0.251:5353":
        print("%s: server %s" % (what, c["server"])); ok = False
stray = [r["tags"] for r in recs if r["name"] == "dns.response" and "10.200.15." in r["tags"].get("client_addr", "")]
if stray:
    print("unmatched answers:", stray); ok = False
print("mDNS records: %d dns.query for printer.local" % len(dq))
sys.exit(0 if ok else 1)
PY
ig_pass "legacy-unicast and mDNS exchanges on both sides, with the pids, the group as the server"
ig_done
