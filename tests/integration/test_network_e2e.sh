#!/usr/bin/env bash
# End to end on this kernel: the real aggregator and agent with the tcp and
# traffic probes; real TCP and UDP traffic over a veth pair between two
# network namespaces this test creates (addresses only inside them:
# 10.200.3.1/24 and fd00:202::1/64 in A, .2 and ::2 in B), IPv4 and IPv6,
# plus a refused connect. The exact records must reach the aggregator's
# JSON output: connect/accept/close with the pids of the client and the
# server processes and their exact byte counts, the ECONNREFUSED failure,
# and net.traffic volumes per process that add up to the bytes moved.
source "$(dirname "$0")/lib.sh"
ig_require_root
ig_require_cmd python3
ig_require_cmd ip
ig_require_built

port=$(ig_free_port)
out="$IG_TMP/out.jsonl"
ns_a="ige2e$$-a"
ns_b="ige2e$$-b"
cleanup_netns() {
	ip netns del "$ns_a" 2>/dev/null || true
	ip netns del "$ns_b" 2>/dev/null || true
}
# Keep the exit status for ig_cleanup (it reads $? first).
trap 'ig_rc=$?; cleanup_netns; (exit $ig_rc); ig_cleanup' EXIT

ip netns add "$ns_a"
ip netns add "$ns_b"
ip -n "$ns_a" link add "ve$$a" type veth peer name "ve$$b" netns "$ns_b"
ip -n "$ns_a" addr add 10.200.3.1/24 dev "ve$$a"
ip -n "$ns_b" addr add 10.200.3.2/24 dev "ve$$b"
ip -n "$ns_a" addr add fd00:202::1/64 dev "ve$$a" nodad
ip -n "$ns_b" addr add fd00:202::2/64 dev "ve$$b" nodad
for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
ip -n "$ns_a" link set "ve$$a" up
ip -n "$ns_b" link set "ve$$b" up
ig_pass "namespaces $ns_a and $ns_b joined by a veth pair"

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
  tcp:
    pipelines: [archive]
  traffic:
    interval: 300ms
    per_remote: true
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

# net.py MODE ...: one side of a flow; prints what it did as one JSON line.
cat >"$IG_TMP/net.py" <<'PY'
import json, os, socket, sys, time
mode, addr = sys.argv[1], sys.argv[2]
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
def out(**kw):
    kw["pid"] = os.getpid()
    print(json.dumps(kw), flush=True)
if mode == "tcp-server":  # addr portfile up down
    pf, up, down = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.bind((addr, 0)); ls.listen(4)
    open(pf + ".tmp", "w").write(str(ls.getsockname()[1])); os.rename(pf + ".tmp", pf)
    c, peer = ls.accept()
    got = 0
    while got < up:
        b = c.recv(65536)
        if not b: sys.exit("short read")
        got += len(b)
    c.sendall(b"s" * down)
    assert c.recv(1) == b""
    c.close()
    out(mode=mode, port=ls.getsockname()[1], peer_port=peer[1], got=got)
elif mode == "tcp-client":  # addr port up down
    p, up, down = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.connect((addr, p))
    s.sendall(b"c" * up)
    got = 0
    while got < down:
        b = s.recv(65536)
        if not b: sys.exit("short read")
        got += len(b)
    sport = s.getsockname()[1]
    s.close()
    out(mode=mode, sport=sport, got=got)
elif mode == "udp-server":  # addr portfile count size
    pf, n, k = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
    s.bind((addr, 0)); s.settimeout(10)
    open(pf + ".tmp", "w").write(str(s.getsockname()[1])); os.rename(pf + ".tmp", pf)
    for _ in range(n):
        assert len(s.recv(65536)) == k
    out(mode=mode, port=s.getsockname()[1], got=n * k)
elif mode == "udp-client":  # addr port count size
    p, n, k = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.connect((addr, p))
    for i in range(n):
        assert s.send(b"u" * k) == k
        if i % 32 == 31: time.sleep(0.001)
    out(mode=mode, sport=s.getsockname()[1])
elif mode == "refused":  # addr port
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.connect((addr, int(sys.argv[3])))
        sys.exit("connect succeeded")
    except ConnectionRefusedError:
        pass
    out(mode=mode)
PY

ig_start_aggregator "$IG_TMP/config.yaml"
ig_start_agent "$IG_TMP/config.yaml"
ig_check "agent started the tcp probe" grep -q "tcp probe attached" "$IG_TMP/agent.log"
ig_check "agent started the traffic probe" grep -q "traffic probe attached" "$IG_TMP/agent.log"

# flow TAG PROTO SERVER_ADDR ARG1 ARG2: server in B, client in A.
flow() {
	local tag=$1 proto=$2 addr=$3 a1=$4 a2=$5
	local pf="$IG_TMP/$tag.port"
	ip netns exec "$ns_b" python3 "$IG_TMP/net.py" "$proto-server" "$addr" "$pf" "$a1" "$a2" \
		>"$IG_TMP/$tag.server.json" &
	local spid=$!
	ig_wait_for "$tag server port" 10 test -s "$pf"
	ip netns exec "$ns_a" python3 "$IG_TMP/net.py" "$proto-client" "$addr" "$(cat "$pf")" "$a1" "$a2" \
		>"$IG_TMP/$tag.client.json" || ig_fail "$tag client failed"
	wait "$spid" || ig_fail "$tag server failed"
}
flow tcp4 tcp 10.200.3.2 300000 4567
flow tcp6 tcp fd00:202::2 8192 250000
flow udp4 udp 10.200.3.2 120 1000
flow udp6 udp fd00:202::2 40 1400
# Refused: a port in B where nothing listens.
ip netns exec "$ns_a" python3 "$IG_TMP/net.py" refused 10.200.3.2 9 >"$IG_TMP/refused.json" \
	|| ig_fail "refused connect did not fail with ECONNREFUSED"
ig_pass "traffic ran: TCP and UDP over IPv4 and IPv6, one refused connect"

# SIGTERM: the agent detaches, reads the traffic table one last time, sends
# everything and waits for the acks.
sleep 0.5
ig_stop "$IG_PID_agent"
ig_check "agent logged a clean drain" grep -q "all records acknowledged" "$IG_TMP/agent.log"
ig_wait_for "records in the output" 15 test -s "$out"
sleep 0.5

python3 - "$IG_TMP" "$out" <<'PY'
import json, sys
tmp, outp = sys.argv[1], sys.argv[2]
def load(name):
    return json.loads(open("%s/%s.json" % (tmp, name)).read())
events = [json.loads(l) for l in open(outp) if l.strip()]
def fail(msg, sel=None):
    for e in (sel if sel is not None else events)[:60]:
        print(json.dumps(e))
    sys.exit("FAIL: " + msg)
def tags(e): return e["tags"]
def one(name, **kw):
    hit = [e for e in events if e["name"] == name and all(tags(e).get(k) == v for k, v in kw.items())]
    if len(hit) != 1:
        fail("expected one %s with %r, got %d" % (name, kw, len(hit)), [e for e in events if e["name"] == name])
    return tags(hit[0])
checked = 0
for tag, fam, cli, srv, up, down in (("tcp4", 4, "10.200.3.1", "10.200.3.2", 300000, 4567),
                                     ("tcp6", 6, "fd00:202::1", "fd00:202::2", 8192, 250000)):
    s, c = load(tag + ".server"), load(tag + ".client")
    port, cport = s["port"], c["sport"]
    con = one("tcp.connect", sport=cport, dport=port)
    acc = one("tcp.accept", sport=port, dport=cport)
    cc = one("tcp.close", sport=cport, dport=port)
    sc = one("tcp.close", sport=port, dport=cport)
    for t, pid in ((con, c["pid"]), (cc, c["pid"]), (acc, s["pid"]), (sc, s["pid"])):
        if t["pid"] != pid: fail("%s: pid %r, expected %r" % (tag, t["pid"], pid))
        if t["family"] != fam: fail("%s: family %r" % (tag, t["family"]))
    if (con["saddr"], con["daddr"]) != (cli, srv): fail("%s connect addresses %r" % (tag, con))
    if (acc["saddr"], acc["daddr"]) != (srv, cli): fail("%s accept addresses %r" % (tag, acc))
    if (cc["bytes_sent"], cc["bytes_received"]) != (up, down): fail("%s client close bytes %r" % (tag, cc))
    if (sc["bytes_sent"], sc["bytes_received"]) != (down, up): fail("%s server close bytes %r" % (tag, sc))
    if not (0 < cc["duration_ns"] < 60e9): fail("%s duration %r" % (tag, cc["duration_ns"]))
    # Volumes: per process and remote, summed over the intervals.
    def vol(pid, proto, d, remote=None, rport=None):
        return sum(tags(e)["bytes"] for e in events if e["name"] == "net.traffic"
                   and tags(e)["pid"] == pid and tags(e)["protocol"] == proto and tags(e)["direction"] == d
                   and (remote is None or (tags(e).get("remote_addr") == remote and tags(e).get("remote_port") == rport)))
    want = {(c["pid"], "tx"): up, (c["pid"], "rx"): down, (s["pid"], "tx"): down, (s["pid"], "rx"): up}
    for (pid, d), n in want.items():
        if vol(pid, "tcp", d) != n: fail("%s %s pid %d: %d bytes, want %d" % (tag, d, pid, vol(pid, "tcp", d), n))
    if vol(c["pid"], "tcp", "tx", srv, port) != up: fail("%s tx per remote" % tag)
    if vol(s["pid"], "tcp", "tx", cli, cport) != down: fail("%s server tx per remote" % tag)
    checked += 1
for tag, srv, n, k in (("udp4", "10.200.3.2", 120, 1000), ("udp6", "fd00:202::2", 40, 1400)):
    s, c = load(tag + ".server"), load(tag + ".client")
    tx = [tags(e) for e in events if e["name"] == "net.traffic" and tags(e)["pid"] == c["pid"]
          and tags(e)["protocol"] == "udp" and tags(e)["direction"] == "tx"]
    rx = [tags(e) for e in events if e["name"] == "net.traffic" and tags(e)["pid"] == s["pid"]
          and tags(e)["protocol"] == "udp" and tags(e)["direction"] == "rx"]
    if sum(t["bytes"] for t in tx) != n * k or sum(t["packets"] for t in tx) != n:
        fail("%s tx: %r" % (tag, tx))
    if sum(t["bytes"] for t in rx) != n * k or sum(t["packets"] for t in rx) != n:
        fail("%s rx: %r" % (tag, rx))
    if any(t.get("remote_addr") != srv or t.get("remote_port") != s["port"] for t in tx):
        fail("%s connected client's remote: %r" % (tag, tx))
    if any("remote_addr" in t for t in rx):
        fail("%s unconnected server has no remote: %r" % (tag, rx))
    checked += 1
r = load("refused")
f = one("tcp.connect_failed", pid=r["pid"], dport=9)
if f["error"] != "ECONNREFUSED" or f["daddr"] != "10.200.3.2": fail("refused: %r" % f)
print("checked %d flows and the refused connect" % checked)
PY
ig_pass "exact connect/accept/close/connect_failed records and per-process volumes (IPv4, IPv6, TCP, UDP)"

ig_stop "$IG_PID_aggregator"
ig_done
