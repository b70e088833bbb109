#!/usr/bin/env python3
"""tls_e2e_check: the tls probe's records against tshark's view of a pcap.

For every TCP stream with a ClientHello in the pcap (taken on the client's
veth), the client record (role client, matched by client port) and the
server record (role server, same client port) must carry tshark's SNI, ALPN
offered, ja3, ja3_full, cipher suites and supported versions, and JA4 /
JA4_r computed from tshark's fields; when the server answered, ja3s,
ja3s_full and the chosen cipher; hrr when a HelloRetryRequest came. Client
records carry the pid the test started; server records the s_server's pid
for that port; the client in the pod cgroup carries the pod.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tls_oracle  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pcap", required=True)
    ap.add_argument("--records", required=True)
    ap.add_argument("--pids", required=True)
    ap.add_argument("--servers", required=True)
    ap.add_argument("--ports", required=True)
    ap.add_argument("--pod-uid", required=True)
    a = ap.parse_args()
    ports = a.ports.split(",")
    pids = {}
    for line in open(a.pids):
        label, pid = line.split()
        pids[int(pid)] = label
    servers = {}
    for line in open(a.servers):
        name, pid = line.split()
        servers[name] = int(pid)
    server_pid_by_port = {443: servers["s443"], 8443: servers["s8443"]}
    server_pid_by_port[int(ports[2])] = servers["sodd"]

    recs = [json.loads(l) for l in open(a.records)]
    recs = [r["tags"] for r in recs if r.get("name") == "tls.handshake"]
    errors = []
    streams = tls_oracle.tshark_hellos(a.pcap, ports)
    seen_labels = set()
    checked = 0
    for stream, hellos in sorted(streams.items()):
        chs = [h for h in hellos if h["type"] == "client"]
        shs = [h for h in hellos if h["type"] == "server"]
        if not chs:
            continue
        ch = chs[-1]
        real_sh = [h for h in shs if not h["hrr"]]
        sh = real_sh[-1] if real_sh else None
        hrr = any(h["hrr"] for h in shs)
        cport, sport = ch["cport"], ch["sport"]
        ja4, ja4_r = tls_oracle.ja4_from_fields(ch)
        for role in ("client", "server"):
            mine = [r for r in recs if r.get("role") == role and int(r.get("client_port", -1)) == cport
                    and int(r.get("server_port", -1)) == sport]
            label = "stream %d (port %d -> %d) %s record" % (stream, cport, sport, role)
            if len(mine) != 1:
                errors.append("%s: %d records" % (label, len(mine)))
                continue
            r = mine[0]
            checked += 1

            def eq(what, got, want):
                if str(got) != str(want):
                    errors.append("%s: %s = %r, tshark says %r" % (label, what, got, want))

            eq("sni", r.get("sni", ""), ch["sni"])
            eq("alpn offered", r.get("tls.handshake.extensions_alpn_str", ""), ",".join(ch["alpn"]))
            eq("ja3", r.get("tls.handshake.ja3"), ch["ja3"])
            eq("ja3_full", r.get("tls.handshake.ja3_full"), ch["ja3_full"])
            eq("ciphers", r.get("tls.handshake.ciphersuite"), ",".join("0x%04x" % c for c in ch["ciphers"]))
            eq("supported versions", r.get("tls.handshake.extensions.supported_version", ""),
               ",".join("0x%04x" % v for v in ch["versions"]))
            eq("extensions", r.get("tls.handshake.extension.type"), ",".join(str(e) for e in ch["ext"]))
            eq("ja4", r.get("ja4"), ja4)
            eq("ja4_r", r.get("ja4_r"), ja4_r)
            eq("hrr", r.get("hrr"), 1 if hrr else 0)
            eq("answered", r.get("answered"), 1 if sh else 0)
            if sh:
                eq("ja3s", r.get("tls.handshake.ja3s"), sh["ja3s"])
                eq("ja3s_full", r.get("tls.handshake.ja3s_full"), sh["ja3s_full"])
                eq("cipher", r.get("cipher"), "0x%04x" % sh["ciphers"][0])
                eq("alpn chosen", r.get("alpn", ""), ",".join(sh["alpn"]))
                v = max(sh["versions"]) if sh["versions"] else sh["legacy_version"]
                eq("version", r.get("version"), {0x0304: "TLS 1.3", 0x0303: "TLS 1.2"}.get(v, v))
            pid = int(r.get("pid", 0))
            if role == "client":
                if pid not in pids:
                    errors.append("%s: pid %d is none of the clients' %s" % (label, pid, sorted(pids)))
                else:
                    seen_labels.add(pids[pid])
                    if pids[pid] == "pod" and r.get("pod_uid") != a.pod_uid:
                        errors.append("%s: pod_uid %r, want %r" % (label, r.get("pod_uid"), a.pod_uid))
            else:
                sport = int(r.get("server_port", 0))
                want = server_pid_by_port.get(sport)
                if want is not None and pid != want:
                    errors.append("%s: pid %d, want the s_server's %d" % (label, pid, want))
            print("%s: sni=%s version=%s alpn=%s ja4=%s ja3=%s pid=%s" % (
                label, r.get("sni"), r.get("version"), r.get("alpn"), r.get("ja4"),
                r.get("tls.handshake.ja3"), pid))
    missing = set(pids.values()) - seen_labels
    if missing:
        errors.append("no client record for: %s" % ", ".join(sorted(missing)))
    for e in errors:
        print("MISMATCH " + e)
    print("checked %d records of %d streams, %d errors" % (checked, len(streams), len(errors)))
    sys.exit(1 if errors or not checked else 0)


if __name__ == "__main__":
    main()
