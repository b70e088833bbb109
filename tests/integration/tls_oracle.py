#!/usr/bin/env python3
"""tls_oracle: compares ingrain's TLS hello parser with tshark on one pcap.

For every TCP stream of the capture that carries a TLS handshake:
  - tshark (-T json) dissects the ClientHello(s) and ServerHello(s): its
    ja3, ja3_full, ja3s, ja3s_full, SNI, ALPN, cipher suites, versions,
    extensions, groups, key shares and the signature algorithms of extension
    13 (only: sig_hash_alg also appears under delegated_credentials);
  - tshark's "follow,tcp,raw" gives each direction's reassembled bytes, which
    ig_tls_fp (the agent's parser) reads;
  - every field must be equal, and JA4 / JA4_r computed here from tshark's
    fields (tshark 4.0 has no JA4) must equal ingrain's.

Usage: tls_oracle.py PCAP IG_TLS_FP PORT... ; prints one line per hello
compared and "compared N hellos in M streams"; exits 1 on any difference.
"""
import hashlib
import json
import os
import subprocess
import sys


# RFC 8446 4.1.3: SHA-256("HelloRetryRequest")
HRR_RANDOM = "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"


def is_grease(v):
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def num(s):
    return int(s, 16) if str(s).startswith("0x") else int(s)


def extensions(hs):
    """The extension subtrees of a handshake, in wire order."""
    out = []
    for k, v in hs.items():
        if k.startswith("Extension: "):
            for e in as_list(v):
                out.append(e)
    return out


def find(tree, key):
    """All values of key anywhere under tree, in document order."""
    res = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == key:
                res.extend(as_list(v))
            elif isinstance(v, (dict, list)):
                res.extend(find(v, key))
    elif isinstance(tree, list):
        for x in tree:
            res.extend(find(x, key))
    return res


def hello_from_tshark(hs, record_version):
    exts = extensions(hs)
    ext_types = [int(e["tls.handshake.extension.type"]) for e in exts]
    random = hs.get("tls.handshake.random", "").replace(":", "")
    h = {
        "type": "client" if hs["tls.handshake.type"] == "1" else "server",
        "hrr": hs["tls.handshake.type"] == "2" and random == HRR_RANDOM,
        "legacy_version": num(hs["tls.handshake.version"]),
        "record_version": record_version,
        "ext": ext_types,
        "ciphers": [num(c) for c in find(hs.get("tls.handshake.ciphersuites", hs), "tls.handshake.ciphersuite")],
        "sni": "",
        "alpn": [],
        "versions": [],
        "groups": [],
        "sigalgs": [],
        "key_share": [],
    }
    for e, t in zip(exts, ext_types):
        if t == 0:
            names = find(e, "tls.handshake.extensions_server_name")
            h["sni"] = names[0] if names else ""
        elif t == 16:
            h["alpn"] = find(e, "tls.handshake.extensions_alpn_str")
        elif t == 43:
            h["versions"] = [num(v) for v in find(e, "tls.handshake.extensions.supported_version")]
        elif t == 10:
            h["groups"] = [num(v) for v in find(e, "tls.handshake.extensions_supported_group")]
        elif t == 13:
            h["sigalgs"] = [num(v) for v in find(e, "tls.handshake.sig_hash_alg")]
        elif t == 51:
            h["key_share"] = [num(v) for v in find(e, "tls.handshake.extensions_key_share_group")]
            sel = find(e, "tls.handshake.extensions_key_share_selected_group")
            if sel:
                h["key_share"] = [num(v) for v in sel]
    for f in ("ja3", "ja3_full", "ja3s", "ja3s_full"):
        v = hs.get("tls.handshake." + f)
        if v is not None:
            h[f] = v
    return h


def ja4_from_fields(h):
    """JA4 and JA4_r from tshark's fields, as technical_details/JA4.md and
    FoxIO's reference code define them (ALPN: first/last character, a
    non-ASCII one as '9', one character -> char + '0')."""
    vers = [v for v in h["versions"] if not is_grease(v)]
    v = max(vers) if h["versions"] else h["legacy_version"]
    if h["versions"] and not vers:
        v = 0
    code = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3", 0x0002: "s2"}.get(v, "00")
    ciphers = sorted(c for c in h["ciphers"] if not is_grease(c))
    exts = [e for e in h["ext"] if not is_grease(e)]
    alpn = "00"
    if h["alpn"] and h["alpn"][0]:
        s = h["alpn"][0]
        f = s[0] if s[0].isascii() else "9"
        last = (s[-1] if s[-1].isascii() else "9") if len(s) > 1 else "0"
        alpn = f + last
    a = "t%s%s%02d%02d%s" % (code, "d" if 0 in exts else "i", min(len(ciphers), 99), min(len(exts), 99), alpn)
    b_raw = ",".join("%04x" % c for c in ciphers)
    c_raw = ",".join("%04x" % e for e in sorted(e for e in exts if e not in (0, 16)))
    if h["sigalgs"]:
        c_raw += "_" + ",".join("%04x" % s for s in h["sigalgs"])

    def h12(s):
        return hashlib.sha256(s.encode()).hexdigest()[:12] if s else "000000000000"

    return "%s_%s_%s" % (a, h12(b_raw), h12(c_raw)), "%s_%s_%s" % (a, b_raw, c_raw)


def tshark_hellos(pcap, ports):
    dec = []
    for p in ports:
        dec += ["-d", "tcp.port==%s,tls" % p]
    out = subprocess.run(
        ["tshark", "-r", pcap, *dec, "-Y", "tls.handshake.type==1 || tls.handshake.type==2",
         "-T", "json", "--no-duplicate-keys"],
        check=True, capture_output=True, text=True).stdout
    streams = {}
    for pkt in json.loads(out):
        layers = pkt["_source"]["layers"]
        stream = int(layers["tcp"]["tcp.stream"])
        sport, dport = int(layers["tcp"]["tcp.srcport"]), int(layers["tcp"]["tcp.dstport"])
        for tls in as_list(layers.get("tls")):
            for rec in as_list(tls.get("tls.record")):
                if not isinstance(rec, dict):
                    continue
                rv = num(rec.get("tls.record.version", "0"))
                for hs in as_list(rec.get("tls.handshake")):
                    if isinstance(hs, dict) and hs.get("tls.handshake.type") in ("1", "2"):
                        h = hello_from_tshark(hs, rv)
                        h["cport"] = sport if h["type"] == "client" else dport
                        h["sport"] = dport if h["type"] == "client" else sport
                        streams.setdefault(stream, []).append(h)
    return streams


def follow(pcap, stream, ports):
    dec = []
    for p in ports:
        dec += ["-d", "tcp.port==%s,tls" % p]
    out = subprocess.run(["tshark", "-r", pcap, *dec, "-q", "-z", "follow,tcp,raw,%d" % stream],
                         check=True, capture_output=True, text=True).stdout
    client, server = [], []
    body = False
    for line in out.splitlines():
        if line.startswith("Node 1:"):
            body = True
            continue
        if not body or line.startswith("====="):
            continue
        (server if line.startswith("\t") else client).append(line.strip())
    return "".join(client), "".join(server)


def ingrain(fp, hexdata, peer_hrr):
    args = [fp] + (["-r"] if peer_hrr else [])
    out = subprocess.run(args, input=hexdata, capture_output=True, text=True).stdout
    res = []
    for line in out.splitlines():
        d = dict(kv.split("=", 1) for kv in line.split("\t"))
        res.append(d)
    return res


def ints(s):
    return [int(x) for x in s.split(",")] if s else []


def main():
    pcap, fp, ports = sys.argv[1], sys.argv[2], sys.argv[3:]
    keep = os.environ.get("IG_TLS_ORACLE_CORPUS")
    streams = tshark_hellos(pcap, ports)
    bad = 0
    n = 0

    def check(what, got, want):
        nonlocal bad
        if got != want:
            print("  MISMATCH %s: ingrain %r, tshark %r" % (what, got, want))
            bad += 1

    for stream, hellos in sorted(streams.items()):
        c_hex, s_hex = follow(pcap, stream, ports)
        server_t = [h for h in hellos if h["type"] == "server"]
        client_t = [h for h in hellos if h["type"] == "client"]
        server_i = ingrain(fp, s_hex, False)
        peer_hrr = any(d.get("hrr") == "1" for d in server_i)
        client_i = ingrain(fp, c_hex, peer_hrr)
        if keep:  # seeds for tests/fuzz/corpus/fuzz_tls (first byte: chunking)
            for side, hx in (("c", c_hex), ("s", s_hex)):
                with open(os.path.join(keep, "stream%02d-%s" % (stream, side)), "wb") as f:
                    f.write(bytes([stream]) + bytes.fromhex(hx)[:8192])
        for side, tl, il in (("client", client_t, client_i), ("server", server_t, server_i)):
            check("stream %d %s hello count" % (stream, side), len(il), len(tl))
            for t, i in zip(tl, il):
                n += 1
                label = "stream %d %s" % (stream, side)
                if "error" in i:
                    check(label + " parse", i["error"], None)
                    continue
                check(label + " hrr", i["hrr"] == "1", t["hrr"])
                check(label + " record_version", int(i["record_version"]), t["record_version"])
                check(label + " legacy_version", int(i["legacy_version"]), t["legacy_version"])
                check(label + " ciphers", ints(i["ciphers"]), t["ciphers"])
                check(label + " extensions", ints(i["ext"]), t["ext"])
                check(label + " sni", i["sni"], t["sni"])
                check(label + " alpn", i["alpn"].split(",") if i["alpn"] else [], t["alpn"])
                check(label + " supported_versions", ints(i["versions"]), t["versions"])
                check(label + " groups", ints(i["groups"]), t["groups"])
                check(label + " sigalgs", ints(i["sigalgs"]), t["sigalgs"])
                check(label + " key_share", ints(i["key_share"]), t["key_share"])
                if side == "client":
                    check(label + " ja3", i["ja3"], t.get("ja3"))
                    check(label + " ja3_full", i["ja3_full"], t.get("ja3_full"))
                    ja4, ja4_r = ja4_from_fields(t)
                    check(label + " ja4", i["ja4"], ja4)
                    check(label + " ja4_r", i["ja4_r"], ja4_r)
                    print("%s: sni=%s alpn=%s ja3=%s ja4=%s" % (label, i["sni"], i["alpn"], i["ja3"], i["ja4"]))
                else:
                    check(label + " ja3s", i["ja3s"], t.get("ja3s"))
                    check(label + " ja3s_full", i["ja3s_full"], t.get("ja3s_full"))
                    print("%s: version=%s hrr=%s ja3s=%s" % (label, i["version"], i["hrr"], i["ja3s"]))
    print("compared %d hellos in %d streams, %d mismatches" % (n, len(streams), bad))
    sys.exit(1 if bad or n == 0 else 0)


if __name__ == "__main__":
    main()
