#!/usr/bin/env python3
"""tls_hello: a hand-built ClientHello shaped like today's browsers', sent on a
real socket.

The hello is ~1.8 KB: GREASE cipher, extension, group, key share and version
values; an X25519MLKEM768 (0x11ec) key share of 1,216 bytes beside X25519's;
the server_name extension placed after the first 1,400 bytes (as Chrome's
randomised order can place it). It is written in two send() calls with a
pause between, TCP_NODELAY set, so it crosses two TCP segments.

Usage: tls_hello.py HOST PORT SNI [FIRST_SEND_BYTES] [PAUSE_S]
Prints the hello's length and where SNI starts; reads the server's answer
(a ServerHello, an HRR or an alert) until the server closes or 2 s pass.
"""
import socket
import struct
import sys
import time

GREASE_A, GREASE_B, GREASE_C = 0x1A1A, 0x3A3A, 0x7A7A


def u16(v):
    return struct.pack(">H", v)


def vec16(b):
    return u16(len(b)) + b


def vec8(b):
    return bytes([len(b)]) + b


def ext(t, data=b""):
    return u16(t) + vec16(data)


def client_hello(sni, total=1800):
    ciphers = [GREASE_A, 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030,
               0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
    groups = [GREASE_B, 0x11EC, 0x001D, 0x0017, 0x0018]
    sigalgs = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]
    shares = (u16(GREASE_B) + vec16(b"\x00") + u16(0x11EC) + vec16(bytes(range(256)) * 4 + bytes(192)) +
              u16(0x001D) + vec16(bytes(range(32))))
    name = sni.encode()
    exts = [
        ext(GREASE_C),
        ext(0x0017),
        ext(0xFF01, b"\x00"),
        ext(0x000A, vec16(b"".join(u16(g) for g in groups))),
        ext(0x000B, vec8(b"\x00")),
        ext(0x0023),
        ext(0x0010, vec16(vec8(b"h2") + vec8(b"http/1.1"))),
        ext(0x0005, b"\x01\x00\x00\x00\x00"),
        ext(0x000D, vec16(b"".join(u16(s) for s in sigalgs))),
        ext(0x0012),
        ext(0x0033, vec16(shares)),
        ext(0x002D, vec8(b"\x01")),
        ext(0x002B, vec8(u16(GREASE_A) + u16(0x0304) + u16(0x0303))),
        ext(0x001B, vec8(u16(0x0002))),
        ext(0x44CD, vec16(vec8(b"h2"))),
    ]
    tail = [ext(0x0000, vec16(b"\x00" + vec16(name))), ext(GREASE_A ^ 0x5050, b"\x00")]

    def build(pad):
        body = (u16(0x0303) + bytes(range(32)) + vec8(bytes(32)) +
                vec16(b"".join(u16(c) for c in ciphers)) + vec8(b"\x00"))
        e = b"".join(exts) + (ext(0x0015, bytes(pad)) if pad >= 0 else b"") + b"".join(tail)
        body += vec16(e)
        hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
        return b"\x16\x03\x01" + u16(len(hs)) + hs

    rec = build(-1)
    if len(rec) + 4 <= total:
        rec = build(total - len(rec) - 4)
    return rec


def main():
    host, port, sni = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    first = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    pause = float(sys.argv[5]) if len(sys.argv) > 5 else 0.2
    rec = client_hello(sni)
    at = rec.find(sni.encode())
    print("hello_len=%d sni_at=%d" % (len(rec), at))
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(2)
        s.connect((host, port))
        s.send(rec[:first])
        time.sleep(pause)
        s.sendall(rec[first:])
        got = 0
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                got += len(b)
        except socket.timeout:
            pass
        print("answer_bytes=%d" % got)


if __name__ == "__main__":
    main()
