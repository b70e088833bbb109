#!/usr/bin/env python3
"""tls_hostile: hostile TLS ClientHellos on real sockets, one connection each.

Every payload starts like a hello (a handshake record holding message type 1,
so the kernel classifier passes it on) and then lies: an extension length
past the extensions block, an extensions block claiming 65,535 bytes, an SNI
name past its extension, a record that claims 16 KiB and ends after 200
bytes (the connection closes inside it), a hello longer than the probe's
4 KiB bound, and the handshake cut inside each field in turn (legacy
version, random, session id, cipher suites, compression methods, the
extensions length, an extension), with record and handshake lengths that
agree with the cut. Then one good hello. Prints a JSON summary.

Usage: tls_hostile.py HOST PORT
"""
import json
import socket
import struct
import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
import tls_hello  # noqa: E402


def msg_of(rec):
    return bytearray(rec[5:])


def record(msg, claim=None):
    return b"\x16\x03\x01" + struct.pack(">H", len(msg) if claim is None else claim) + bytes(msg)


def offsets(msg):
    """Offsets in a ClientHello message of each field's start."""
    o = {"version": 4, "random": 6, "session_id": 38}
    sid = msg[38]
    o["ciphers"] = 39 + sid
    cl = struct.unpack(">H", msg[o["ciphers"]:o["ciphers"] + 2])[0]
    o["compression"] = o["ciphers"] + 2 + cl
    o["ext_len"] = o["compression"] + 1 + msg[o["compression"]]
    o["first_ext"] = o["ext_len"] + 2
    return o


def cut(msg, at):
    m = bytearray(msg[:at])
    body = at - 4
    m[1:4] = struct.pack(">I", body)[1:]
    return m


def payloads():
    good = tls_hello.client_hello("hostile.example", 600)
    msg = msg_of(good)
    o = offsets(msg)
    out = []
    m = bytearray(msg)
    m[o["first_ext"] + 2:o["first_ext"] + 4] = b"\x7f\xff"
    out.append(("extension length past the block", record(m)))
    m = bytearray(msg)
    m[o["ext_len"]:o["ext_len"] + 2] = b"\xff\xff"
    out.append(("extensions block claiming 65535 bytes", record(m)))
    # SNI: find the server_name extension and make its name length too long
    i = msg.find(b"hostile.example")
    m = bytearray(msg)
    m[i - 2:i] = struct.pack(">H", 200)
    out.append(("SNI name past its extension", record(m)))
    out.append(("record claims 16 KiB, ends after 200 bytes", record(msg, 16384)[:205]))
    big = tls_hello.client_hello("big.example", 6000)
    out.append(("hello longer than 4 KiB", big))
    for field, at in (("legacy version", o["version"] + 1), ("random", o["random"] + 10),
                      ("session id", o["session_id"] + 5), ("cipher suites", o["ciphers"] + 5),
                      ("compression methods", o["compression"] + 1), ("extensions length", o["ext_len"] + 1),
                      ("an extension", o["first_ext"] + 3)):
        out.append(("cut inside " + field, record(cut(msg, at))))
    return out, good


def send(host, port, data):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam) as s:
        s.settimeout(2)
        s.connect((host, port))
        s.sendall(data)
        try:
            while s.recv(65536):
                pass
        except (socket.timeout, ConnectionResetError):
            pass


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    bad, good = payloads()
    for what, data in bad:
        send(host, port, data)
        time.sleep(0.05)
    send(host, port, good)
    print(json.dumps({"bad": len(bad), "kinds": [w for w, _ in bad]}))


if __name__ == "__main__":
    main()
