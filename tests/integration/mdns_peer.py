#!/usr/bin/env python3
"""mdns_peer.py: the two ends of mDNS (RFC 6762) for test_dns_mdns.sh.

  responder NAME ADDR     joins 224.0.0.251 on the interface holding ADDR and answers
                          A queries for NAME with ADDR: a query from a port other than
                          5353 (legacy unicast, e.g. dig) gets a unicast answer with the
                          question and the query's id; a query from 5353 gets a multicast
                          answer without a question, id 0, as mDNS does. Runs until killed.
  querier NAME ADDR       from port 5353 (joined to the group on ADDR's interface) sends a
                          multicast query, id 0, and waits for the multicast answer
  legacy NAME ADDR        from an ephemeral port sends a multicast query (id 4242) and
                          waits for the unicast answer (dig would refuse its source)
Debian has no mDNS responder that runs without D-Bus; this is a minimal one.
"""
import json
import os
import socket
import struct
import sys

GROUP = "224.0.0.251"


def wire_name(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"


def read_name(buf, off):
    labels = []
    while buf[off]:
        n = buf[off]
        labels.append(buf[off + 1:off + 1 + n].decode())
        off += 1 + n
    return ".".join(labels), off + 1


def sock(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", 5353))
    mreq = socket.inet_aton(GROUP) + socket.inet_aton(addr)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(addr))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    return s


def responder(name, addr):
    s = sock(addr)
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    while True:
        buf, (src, sport) = s.recvfrom(9000)
        if len(buf) < 12 or buf[2] & 0x80:
            continue
        qid, _, qd = struct.unpack("!HHH", buf[:6])
        if qd != 1:
            continue
        qname, off = read_name(buf, 12)
        qtype, qclass = struct.unpack("!HH", buf[off:off + 4])
        if qname.lower() != name.lower() or qtype != 1:
            continue
        rr = wire_name(name) + struct.pack("!HHIH", 1, 0x8001, 120, 4) + socket.inet_aton(addr)
        if sport != 5353:  # legacy unicast: the question and the id come back
            msg = struct.pack("!HHHHHH", qid, 0x8400, 1, 1, 0, 0) + buf[12:off + 4] + rr
            s.sendto(msg, (src, sport))
        else:
            msg = struct.pack("!HHHHHH", 0, 0x8400, 0, 1, 0, 0) + rr
            s.sendto(msg, (GROUP, 5353))


def querier(name, addr):
    s = sock(addr)
    s.settimeout(5)
    q = struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 0) + wire_name(name) + struct.pack("!HH", 1, 1)
    s.sendto(q, (GROUP, 5353))
    while True:
        buf, src = s.recvfrom(9000)
        if len(buf) >= 12 and buf[2] & 0x80:
            print(json.dumps({"answer_from": src[0], "pid": os.getpid(), "port": s.getsockname()[1]}))
            return


def legacy(name, addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(addr))
    s.bind((addr, 0))
    s.settimeout(5)
    q = struct.pack("!HHHHHH", 4242, 0, 1, 0, 0, 0) + wire_name(name) + struct.pack("!HH", 1, 1)
    s.sendto(q, (GROUP, 5353))
    buf, src = s.recvfrom(9000)
    print(json.dumps({"answer_from": src[0], "pid": os.getpid(), "port": s.getsockname()[1]}))


if __name__ == "__main__":
    {"responder": responder, "querier": querier, "legacy": legacy}[sys.argv[1]](sys.argv[2], sys.argv[3])
