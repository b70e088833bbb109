#!/usr/bin/env python3
"""dns_client.py: DNS clients the dns probe tests need beyond dig.

  pipelined HOST PORT NAME...   TCP: every query (type A) in ONE write, then read
                                every answer (several messages per segment)
  split HOST PORT NAME [FIRST]  TCP: one query written in three pieces with pauses: the
                                first FIRST bytes (default 2: the length alone), 7 more, the rest
                                (one message over several segments)
  getaddrinfo NAME              Python's socket.getaddrinfo (glibc, /etc/resolv.conf)
  hostile HOST PORT             malformed messages from real UDP and TCP sockets,
                                then one good query; prints what it sent as JSON
Each prints one JSON line per query with the id it used.
"""
import json
import os
import random
import socket
import struct
import sys
import time


def qname_wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def query(qid, name, qtype=1):
    hdr = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    return hdr + qname_wire(name) + struct.pack("!HH", qtype, 1)


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def read_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("connection closed")
        b += c
    return b


def pipelined(host, port, names):
    s = socket.socket(family(host), socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect((host, port))
    ids = [random.randint(1, 65535) for _ in names]
    data = b""
    for qid, name in zip(ids, names):
        q = query(qid, name)
        data += struct.pack("!H", len(q)) + q
    s.sendall(data)
    for _ in names:
        (n,) = struct.unpack("!H", read_exact(s, 2))
        read_exact(s, n)
    s.close()
    for qid, name in zip(ids, names):
        print(json.dumps({"name": name, "id": qid, "transport": "tcp", "pid": os.getpid()}))


def split(host, port, name, first=2):
    s = socket.socket(family(host), socket.SOCK_STREAM)
    s.settimeout(5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.connect((host, port))
    qid = random.randint(1, 65535)
    q = query(qid, name)
    msg = struct.pack("!H", len(q)) + q
    for piece in (msg[:first], msg[first:first + 7], msg[first + 7:]):
        s.send(piece)
        time.sleep(0.05)
    (n,) = struct.unpack("!H", read_exact(s, 2))
    read_exact(s, n)
    s.close()
    print(json.dumps({"name": name, "id": qid, "transport": "tcp", "pid": os.getpid()}))


def hostile(host, port):
    fam = family(host)
    sent = []
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.connect((host, port))
    # A good query first: the socket is then known to carry DNS, so what follows
    # reaches the parser even when the kernel classifier would not take it.
    u.send(query(0x1111, "first.test"))
    sent.append("good")
    hdr = struct.pack("!HHHHHH", 0x2222, 0x0100, 1, 0, 0, 0)
    bad = {
        # a name that points at itself (a loop)
        "loop": hdr + b"\xc0\x0c" + struct.pack("!HH", 1, 1),
        # a pointer past the end of the message
        "past_end": hdr + b"\x03abc\xc3\xff" + struct.pack("!HH", 1, 1),
        # a forward pointer
        "forward": hdr + b"\xc0\x20" + b"\0" * 40,
        # a truncated header
        "short_header": b"\x33\x33\x01\x00\x00",
        # a label running past the end
        "long_label": hdr + b"\x3fabc",
        # two labels whose pointers chase each other
        "pointer_pair": hdr + b"\x01a\xc0\x0e\x01b\xc0\x0c" + struct.pack("!HH", 1, 1),
    }
    for kind, msg in bad.items():
        u.send(msg)
        sent.append(kind)
    # TCP: a length claiming 64 KiB with a real header, and nothing more.
    t = socket.socket(fam, socket.SOCK_STREAM)
    t.settimeout(5)
    t.connect((host, port))
    t.send(struct.pack("!H", 65535) + query(0x3333, "huge.test"))
    tport = t.getsockname()[1]
    sent.append("tcp_64k_claim")
    time.sleep(0.2)
    t.close()
    # The next good query must still be reported.
    g = socket.socket(fam, socket.SOCK_DGRAM)
    g.settimeout(5)
    g.connect((host, port))
    g.send(query(0x4444, "after.test"))
    g.recv(4096)
    sent.append("good_after")
    print(json.dumps({"sent": sent, "pid": os.getpid(), "udp_port": u.getsockname()[1],
                      "tcp_port": tport, "bad_udp": len(bad)}))


def main():
    cmd = sys.argv[1]
    if cmd == "pipelined":
        pipelined(sys.argv[2], int(sys.argv[3]), sys.argv[4:])
    elif cmd == "split":
        split(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]) if len(sys.argv) > 5 else 2)
    elif cmd == "getaddrinfo":
        res = socket.getaddrinfo(sys.argv[2], 80, type=socket.SOCK_STREAM)
        print(json.dumps({"name": sys.argv[2], "addrs": sorted({r[4][0] for r in res}),
                          "pid": os.getpid()}))
    elif cmd == "hostile":
        hostile(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
