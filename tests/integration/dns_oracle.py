#!/usr/bin/env python3
"""dns_oracle.py: compares the dns probe's records with tshark's reading of a pcap.

Used by test_dns_e2e.sh. tshark (Debian's 4.0) decodes the pcap taken on the
client's veth; every DNS exchange it finds (a response with dns.response_to /
dns.time) must appear in ingrain's records twice, as the client saw it and as
the server saw it, with equal dns.id, dns.qry.name, dns.qry.type,
dns.flags.rcode, TC flag and answers (A, AAAA, CNAME), and a latency within
the tolerance of tshark's dns.time: the client's hooks stamp the query before
the veth and the answer after it, so client latency >= dns.time - 0.2 ms and
<= dns.time + tolerance; the server's is <= dns.time + 0.2 ms. Every record of
the test's traffic must be one of tshark's exchanges; every query tshark saw
unanswered must be a dns.timeout record. Pids: each client command's record
carries that command's pid, server records the server's pid; the record of
the client in the pod cgroup carries the pod.
Exit 0 when everything agrees; otherwise prints each difference, exit 1.
"""
import argparse
import json
import os
import subprocess
import sys

CLIENT_ADDRS = {"10.200.12.2", "fd00:212::2"}

# label (tests/integration/test_dns_e2e.sh) -> (qname, qtype, transport, rcode) it must produce
EXPECT = {
    "udp4_foo": [("foo.test", 1, "udp", 0)],
    "tcp4_foo": [("foo.test", 28, "tcp", 0)],
    "udp6_cname": [("c1.test", 1, "udp", 0)],
    "tcp6_nx": [("nx.test", 1, "tcp", 3)],
    "udp4_odd": [("a.ub.test", 28, "udp", 0)],
    "tcp6_odd": [("t.ub.test", 16, "tcp", 0)],
    "udp4_5353": [("m.ub.test", 15, "udp", 0)],
    "udp6_5353": [("_sip._tcp.ub.test", 33, "udp", 0)],
    "servfail": [("x.bogus.test", 1, "udp", 2)],
    "tc_retry": [("big.test", 1, "udp", 0), ("big.test", 1, "tcp", 0)],
    "pipelined": [("foo.test", 1, "tcp", 0), ("c1.test", 1, "tcp", 0), ("nx.test", 1, "tcp", 3)],
    "split": [("foo.test", 1, "tcp", 0)],
    "split9": [("c1.test", 1, "tcp", 0)],
    "py_gai": [("foo.test", 1, "udp", 0), ("foo.test", 28, "udp", 0)],
    "c_gai": [("pod.test", 1, "udp", 0), ("pod.test", 28, "udp", 0)],
    "pod": [("pod.test", 1, "udp", 0)],
    "nat_udp": [("foo.test", 1, "udp", 0)],
    "nat_tcp": [("c1.test", 28, "tcp", 0)],
}
# The clients that asked a DNAT'ed address: (as asked, as on the wire).
NAT = {"nat_udp": ("10.200.12.53", "10.200.12.1"), "nat_tcp": ("10.200.12.53", "10.200.12.1")}


def collect(obj, key, out):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key:
                if isinstance(v, list):
                    out.extend(v)
                else:
                    out.append(v)
            else:
                collect(v, key, out)
    elif isinstance(obj, list):
        for v in obj:
            collect(v, key, out)
    return out


def first(obj, key, default=None):
    v = collect(obj, key, [])
    return v[0] if v else default


def as_list(v):
    return v if isinstance(v, list) else [v]


def tshark_exchanges(pcap, ports):
    cmd = ["tshark", "-r", pcap, "-Y", "dns", "-T", "json", "--no-duplicate-keys"]
    for p in ports:
        cmd += ["-d", "udp.port==%d,dns" % p, "-d", "tcp.port==%d,dns" % p]
    pkts = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    queries, responses = {}, []
    for pkt in pkts:
        lay = pkt["_source"]["layers"]
        frame = int(first(lay["frame"], "frame.number"))
        if "udp" in lay:
            tr, l4 = "udp", lay["udp"]
            sport, dport = int(first(l4, "udp.srcport")), int(first(l4, "udp.dstport"))
        else:
            tr, l4 = "tcp", lay["tcp"]
            sport, dport = int(first(l4, "tcp.srcport")), int(first(l4, "tcp.dstport"))
        ipl = lay.get("ip") or lay.get("ipv6")
        src = first(ipl, "ip.src") or first(ipl, "ipv6.src")
        dst = first(ipl, "ip.dst") or first(ipl, "ipv6.dst")
        for d in as_list(lay["dns"]):
            e = {
                "frame": frame, "transport": tr, "src": src, "dst": dst, "sport": sport,
                "dport": dport, "id": int(first(d, "dns.id"), 16),
                "response": first(d, "dns.flags.response") == "1",
                "qname": (first(d.get("Queries", {}), "dns.qry.name") or "").lower(),
                "qtype": int(first(d.get("Queries", {}), "dns.qry.type", "0")),
                "rcode": int(first(d, "dns.flags.rcode", "0")),
                "tc": first(d, "dns.flags.truncated") == "1",
                "a": sorted(collect(d.get("Answers", {}), "dns.a", [])),
                "aaaa": sorted(collect(d.get("Answers", {}), "dns.aaaa", [])),
                "cname": sorted(collect(d.get("Answers", {}), "dns.cname", [])),
                "time": float(first(d, "dns.time", "-1")),
                "response_to": int(first(d, "dns.response_to", "0")),
            }
            if e["response"]:
                responses.append(e)
            else:
                queries.setdefault(frame, []).append(e)
    answered = {r["response_to"] for r in responses if r["response_to"]}
    unanswered = [q for f, qs in queries.items() if f not in answered for q in qs]
    return [r for r in responses if r["response_to"]], [r for r in responses if not r["response_to"]], unanswered


def split_list(s):
    return sorted(x for x in (s or "").split(",") if x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pcap", required=True)
    ap.add_argument("--records", required=True)
    ap.add_argument("--pids", required=True)
    ap.add_argument("--server-pid", action="append", default=[])
    ap.add_argument("--odd-ports", default="")
    ap.add_argument("--pod-uid", required=True)
    ap.add_argument("--pod-cgroup", required=True)
    ap.add_argument("--tolerance-ms", type=float, default=5.0)
    a = ap.parse_args()
    tol = a.tolerance_ms / 1000.0
    slack = 0.0002
    errors = []

    ports = [5353] + [int(p) for p in a.odd_ports.split(",") if p]
    exchanges, orphans, unanswered = tshark_exchanges(a.pcap, ports)
    for o in orphans:
        errors.append("tshark: response without its query in the pcap: %s" % o)

    recs = []
    for line in open(a.records):
        r = json.loads(line)
        t = r["tags"]
        if r["name"].startswith("dns.") and t.get("client_addr") in CLIENT_ADDRS:
            recs.append(r)
    def key_of(tags):
        return (tags["transport"], int(tags["client_port"]), int(tags["dns.id"]),
                tags["dns.qry.name"].lower(), int(tags["dns.qry.type"]))

    by_key = {}
    for r in recs:
        if r["name"] == "dns.query":
            by_key.setdefault((key_of(r["tags"]), r["tags"]["role"]), []).append(r)
        elif r["name"] == "dns.response":
            errors.append("ingrain: an answer it could not match to its query: %s" % r["tags"])
    servers = dict(s.split("=") for s in a.server_pid)
    used = set()
    for e in exchanges:
        k = (e["transport"], e["dport"], e["id"], e["qname"], e["qtype"])
        for role in ("client", "server"):
            got = by_key.get((k, role), [])
            if len(got) != 1:
                errors.append("%s record for %s: %d found" % (role, k, len(got)))
                continue
            used.add(id(got[0]))
            t = got[0]["tags"]
            diffs = []
            if int(t["dns.flags.rcode"]) != e["rcode"]:
                diffs.append("rcode %s != %d" % (t["dns.flags.rcode"], e["rcode"]))
            if ("tc" in t["dns.flags"].split()) != e["tc"]:
                diffs.append("TC %s != %s" % (t["dns.flags"], e["tc"]))
            for f in ("a", "aaaa", "cname"):
                if split_list(t.get("dns." + f)) != e[f]:
                    diffs.append("dns.%s %s != %s" % (f, t.get("dns." + f), e[f]))
            lat = int(t["latency_ns"]) / 1e9
            if abs(float(t["dns.time"]) - lat) > 1e-9:
                diffs.append("dns.time %s != latency_ns %s" % (t["dns.time"], t["latency_ns"]))
            if role == "client" and not (e["time"] - slack <= lat <= e["time"] + tol):
                diffs.append("client latency %.6f vs dns.time %.6f" % (lat, e["time"]))
            if role == "server" and not (0 <= lat <= e["time"] + slack):
                diffs.append("server latency %.6f vs dns.time %.6f" % (lat, e["time"]))
            if role == "server":
                want = servers["dnsmasq" if e["sport"] == 53 else "unbound"]
                if str(t["pid"]) != want:
                    diffs.append("server pid %s != %s" % (t["pid"], want))
                if t["server_addr"] != e["src"] or int(t["server_port"]) != e["sport"]:
                    diffs.append("server %s:%s != %s:%d" % (t["server_addr"], t["server_port"], e["src"], e["sport"]))
            else:
                # as the client asked (before NAT) when known, else as on the wire
                o = t.get("server_orig_addr")
                a_, p_ = (o, int(t["server_orig_port"])) if o else (e["src"], e["sport"])
                hp = ("[%s]:%d" if ":" in a_ else "%s:%d") % (a_, p_)
                if t["server"] != hp:
                    diffs.append("server %s != %s" % (t["server"], hp))
                if t["server_addr"] != e["src"] or int(t["server_port"]) != e["sport"]:
                    diffs.append("server on the wire %s:%s != %s:%d" % (t["server_addr"], t["server_port"], e["src"], e["sport"]))
            if diffs:
                errors.append("%s record for %s: %s" % (role, k, "; ".join(diffs)))
    for r in recs:
        if r["name"] == "dns.query" and id(r) not in used:
            errors.append("ingrain record that is no exchange in the pcap: %s" % r["tags"])

    timeouts = [r for r in recs if r["name"] == "dns.timeout"]
    tkeys = {key_of(r["tags"]) for r in timeouts}
    for q in unanswered:
        k = (q["transport"], q["sport"], q["id"], q["qname"], q["qtype"])
        if k not in tkeys:
            errors.append("query unanswered in the pcap without a dns.timeout record: %s" % (k,))
    if len(timeouts) != len(unanswered):
        errors.append("%d dns.timeout records, %d unanswered queries in the pcap" % (len(timeouts), len(unanswered)))

    pids = {}
    for line in open(a.pids):
        label, pid = line.split()
        pids[label] = int(pid)
    for label, wants in EXPECT.items():
        for qname, qtype, tr, rcode in wants:
            hit = [r for r in recs if r["name"] == "dns.query" and r["tags"]["role"] == "client"
                   and r["tags"]["dns.qry.name"] == qname and int(r["tags"]["dns.qry.type"]) == qtype
                   and r["tags"]["transport"] == tr and int(r["tags"]["pid"]) == pids.get(label)]
            if not hit:
                errors.append("%s (pid %s): no client record %s %d over %s" % (label, pids.get(label), qname, qtype, tr))
            elif int(hit[0]["tags"]["dns.flags.rcode"]) != rcode:
                errors.append("%s: rcode %s, expected %d" % (label, hit[0]["tags"]["dns.flags.rcode"], rcode))
            if label in NAT and hit:
                t = hit[0]["tags"]
                asked, wire = NAT[label]
                if (t["server"], t.get("server_orig_addr"), t["server_addr"]) != ("%s:53" % asked, asked, wire):
                    errors.append("%s: server %s, server_orig_addr %s, server_addr %s; want %s:53, %s, %s" % (
                        label, t["server"], t.get("server_orig_addr"), t["server_addr"], asked, asked, wire))
            if label == "pod" and hit:
                t = hit[0]["tags"]
                ino = os.stat(a.pod_cgroup).st_ino
                if int(t["cgroup_id"]) != ino or t.get("pod_uid") != a.pod_uid or t.get("scope") != "pod":
                    errors.append("pod client: cgroup_id %s (want %d) pod_uid %s (want %s) scope %s" % (
                        t["cgroup_id"], ino, t.get("pod_uid"), a.pod_uid, t.get("scope")))
    if not [r for r in timeouts if r["tags"]["dns.qry.name"] == "lost.test" and int(r["tags"]["pid"]) == pids.get("timeout")]:
        errors.append("no dns.timeout record for lost.test with the client's pid")

    print("tshark: %d exchanges, %d unanswered queries; ingrain: %d records of the test's traffic" % (
        len(exchanges), len(unanswered), len(recs)))
    worst = max((int(r["tags"]["latency_ns"]) / 1e9 - e["time"] for e in exchanges for r in recs
                 if r["name"] == "dns.query" and r["tags"]["role"] == "client"
                 and key_of(r["tags"]) == (e["transport"], e["dport"], e["id"], e["qname"], e["qtype"])), default=0)
    print("largest client latency - dns.time: %.1f us (tolerance %.1f ms)" % (worst * 1e6, a.tolerance_ms))
    for err in errors:
        print("DIFF:", err)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
