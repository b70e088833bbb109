#!/usr/bin/env bash
# test_tls_oracle: the agent's TLS hello parser (node-agent/tls_parse.c)
# against tshark on real handshakes.
#
# In a network namespace of its own, openssl s_server listens on 443 (TLS 1.3,
# ALPN h2/http/1.1), 8443 (TLS 1.2 only, ALPN http/1.1) and an odd port (only
# P-384, so a client offering an X25519 key share gets a HelloRetryRequest);
# openssl s_client (with and without SNI/ALPN, TLS 1.2 and 1.3, session
# resumption by ticket and by PSK), curl and Python's ssl (IPv6) connect.
# tcpdump records loopback; tls_oracle.py then compares every ClientHello and
# ServerHello ig_tls_fp finds in each direction's bytes with tshark's
# dissection: ja3, ja3_full, ja3s, ja3s_full, SNI, ALPN, ciphers, versions,
# extensions, groups, key shares, signature algorithms, and JA4/JA4_r
# computed from tshark's fields.
source "$(dirname "$0")/lib.sh"
ig_require_root
for c in tshark tcpdump openssl curl python3 ip; do ig_require_cmd "$c"; done
FP=$IG_BUILD_DIR/tests/ig_tls_fp
[ -x "$FP" ] || ig_fail "$FP not built"

ns=ig-tls-oracle-$$
cleanup_netns() { ip netns del "$ns" 2>/dev/null || true; }
trap 'ig_rc=$?; cleanup_netns; (exit $ig_rc); ig_cleanup' EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
# An array, not a function: "${in_ns[@]}" CMD & then gives CMD's own pid.
in_ns=(ip netns exec "$ns")

odd=$(ig_free_port)
cd "$IG_TMP"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem \
	-out cert.pem -subj /CN=tls.example -days 2 2>/dev/null

"${in_ns[@]}" tcpdump -i lo -U -w "$IG_TMP/tls.pcap" tcp 2>"$IG_TMP/tcpdump.log" &
IG_PIDS+=($!)
tcpdump_pid=$!
ig_wait_for "tcpdump listening" 10 grep -q "listening on" "$IG_TMP/tcpdump.log"

server() { # NAME ARGS...
	local name=$1
	shift
	"${in_ns[@]}" openssl s_server -cert cert.pem -key key.pem -www "$@" >"$IG_TMP/$name.log" 2>&1 &
	IG_PIDS+=($!)
	ig_wait_for "s_server $name" 10 grep -q ACCEPT "$IG_TMP/$name.log"
}
server s443 -accept 443 -alpn h2,http/1.1 # dual-stack: IPv4 and IPv6
server s8443 -accept 8443 -tls1_2 -alpn http/1.1
server sodd -accept "$odd" -groups P-384

get='GET / HTTP/1.0\r\n\r\n'
client() { # DESC ARGS... (s_client)
	local desc=$1
	shift
	printf "$get" | "${in_ns[@]}" openssl s_client -ign_eof "$@" >"$IG_TMP/client.log" 2>&1 ||
		ig_fail "s_client $desc: $(tail -5 "$IG_TMP/client.log")"
	ig_pass "s_client $desc"
}
client "TLS 1.3, SNI, ALPN h2" -connect 127.0.0.1:443 -servername a.example -alpn h2
client "TLS 1.3, no SNI, no ALPN" -connect 127.0.0.1:443 -noservername
client "TLS 1.3 over IPv6, ALPN h2,http/1.1" -connect '[::1]:443' -servername v6.example -alpn h2,http/1.1
client "TLS 1.3, PSK resumption (1)" -connect 127.0.0.1:443 -servername r.example -sess_out sess13
client "TLS 1.3, PSK resumption (2)" -connect 127.0.0.1:443 -servername r.example -sess_in sess13
client "TLS 1.2, SNI, ALPN http/1.1" -connect 127.0.0.1:8443 -tls1_2 -servername b.example -alpn http/1.1
client "TLS 1.2, ticket (1)" -connect 127.0.0.1:8443 -tls1_2 -servername t.example -sess_out sess12
client "TLS 1.2, ticket (2)" -connect 127.0.0.1:8443 -tls1_2 -servername t.example -sess_in sess12
client "HelloRetryRequest on the odd port" -connect "127.0.0.1:$odd" -groups X25519:P-384 -noservername
"${in_ns[@]}" curl -sk --http1.1 --resolve "c.example:443:127.0.0.1" "https://c.example/" -o /dev/null ||
	ig_fail "curl TLS 1.3"
"${in_ns[@]}" curl -sk --tlsv1.2 --tls-max 1.2 --resolve "d.example:8443:127.0.0.1" \
	"https://d.example:8443/" -o /dev/null || ig_fail "curl TLS 1.2"
ig_pass "curl over TLS 1.3 and 1.2"
"${in_ns[@]}" python3 - <<'PY' || ig_fail "python ssl client"
import socket, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["h2", "http/1.1"])
for addr, host in ((("::1", 443), "py6.example"), (("127.0.0.1", 443), "py4.example")):
    fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    with socket.socket(fam) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
        s.connect(addr)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        while s.recv(4096):
            pass
PY
ig_pass "python ssl over IPv6 and IPv4"
# The hand-built 1.8 KB ClientHello (GREASE, a 1,216-byte X25519MLKEM768 key
# share, SNI after byte 1,400) in two send() calls: to 443 (answered by a
# ServerHello for X25519) and, over IPv6, to the odd port (a
# HelloRetryRequest for P-384, which this client does not follow).
for dst in "127.0.0.1 443" "::1 $odd"; do
	# shellcheck disable=SC2086
	"${in_ns[@]}" python3 "$IG_SOURCE_DIR/tests/integration/tls_hello.py" $dst big.example \
		>"$IG_TMP/big.log" || ig_fail "tls_hello.py $dst"
	grep -q "hello_len=1800 sni_at=1784" "$IG_TMP/big.log" || ig_fail "hello shape: $(cat "$IG_TMP/big.log")"
done
ig_pass "hand-built 1.8 KB ClientHello sent in two writes"

# Let tcpdump write the last packets, then stop it.
sleep 0.5
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || true
out=$(python3 "$IG_SOURCE_DIR/tests/integration/tls_oracle.py" "$IG_TMP/tls.pcap" "$FP" 443 8443 "$odd") ||
	ig_fail "ingrain and tshark differ: $out"
echo "$out"
echo "$out" | grep -q "mismatches" || ig_fail "oracle printed no summary"
n=$(echo "$out" | sed -n 's/^compared \([0-9]*\) hellos.*/\1/p')
# 15 connections, each a ClientHello and a ServerHello (tls_oracle.py checks
# the count per stream against tshark's), and the s_client HRR stream a
# second pair.
[ "$n" -eq 32 ] || ig_fail "$n hellos compared, expected 32"
ig_pass "$n hellos equal to tshark's dissection"
echo "$out" | grep -q "hrr=1" || ig_fail "no HelloRetryRequest seen"
ig_pass "HelloRetryRequest recognised, second ClientHello parsed"
ig_done
