#!/usr/bin/env bash
# The embedded default configuration, as the quick start runs it: the real
# aggregator and agent with `--print-default-config` (only the port and the
# state directory moved, so that the test runs beside anything else). A person
# watching must see who opened what under /etc, in text, and not the dynamic
# loader's /etc/ld.so.cache open that every exec makes (the default pipeline's
# documented `filter` stage drops it). And a TLS handshake on an odd port,
# with its SNI, version, ALPN, cipher and JA4.
source "$(dirname "$0")/lib.sh"
ig_require_root
ig_require_built
ig_require_cmd openssl

port=$(ig_free_port)
cfg="$IG_TMP/config.yaml"
"$IG_AGENT" --print-default-config >"$IG_TMP/default.yaml"
grep -q 'type: filter' "$IG_TMP/default.yaml" || ig_fail "the default pipeline has no filter stage"
sed -e "s|tcp://127.0.0.1:7700|tcp://127.0.0.1:$port|" \
	-e "s|state_dir: /var/lib/ingrain|state_dir: $IG_TMP/state|" "$IG_TMP/default.yaml" >"$cfg"
[ "$(grep -c "127.0.0.1:$port" "$cfg")" -eq 2 ] || ig_fail "the default config's addresses moved: update this test"
# The rest must be the embedded default, byte for byte.
diff <(grep -v -e "127.0.0.1:" -e "state_dir:" "$IG_TMP/default.yaml") \
	<(grep -v -e "127.0.0.1:" -e "state_dir:" "$cfg") >/dev/null || ig_fail "config differs beyond port/state_dir"
"$IG_AGGREGATOR" --check-config "$cfg" >/dev/null || ig_fail "the default config does not validate"

# The console backend writes to the aggregator's standard output: its log here.
ig_start_aggregator "$cfg"
ig_start_agent "$cfg"
log="$IG_TMP/aggregator.log"

# Each exec opens /etc/ld.so.cache; cat then opens the marker file.
marker=$(mktemp /etc/ingrain-default-config.XXXXXX)
for _ in 1 2 3; do /bin/true; done
cat "$marker" >/dev/null
rm -f "$marker"
ig_wait_for "cat's open of $marker in the console output" 15 grep -q "process=cat .*path=$marker" "$log"
line=$(grep "process=cat .*path=$marker" "$log" | head -n 1)
ig_log "console line: $line"
ig_check "the line has the time, the event, the pid and the result" \
	grep -Eq "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z file.open process=cat pid=[0-9]+ uid=0 path=$marker ret=[0-9]+ access=r$" <<<"$line"
ig_check "no /etc/ld.so.cache line (the loader's noise is filtered)" \
	bash -c "! grep -q 'path=/etc/ld.so.cache' '$log'"

# A TLS handshake on an odd loopback port: the default tls probe reports it.
tport=$(ig_free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$IG_TMP/key.pem" \
	-out "$IG_TMP/cert.pem" -subj /CN=default-config.example -days 2 2>/dev/null
openssl s_server -accept "127.0.0.1:$tport" -cert "$IG_TMP/cert.pem" -key "$IG_TMP/key.pem" \
	-www -alpn h2 >"$IG_TMP/s_server.log" 2>&1 &
IG_PIDS+=($!)
ig_wait_for "s_server listening" 10 grep -q ACCEPT "$IG_TMP/s_server.log"
printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -ign_eof -connect "127.0.0.1:$tport" \
	-servername default-config.example -alpn h2 >"$IG_TMP/s_client.log" 2>&1 ||
	ig_fail "s_client: $(tail -3 "$IG_TMP/s_client.log")"
ig_wait_for "the client's handshake in the console output" 15 \
	grep -q "tls.handshake .*role=client .*sni=default-config.example" "$log"
line=$(grep "tls.handshake .*role=client .*sni=default-config.example" "$log" | head -n 1)
ig_log "console line: $line"
# (TLS 1.3 encrypts the chosen ALPN: alpn is empty; JA4 carries the offered h2.)
ig_check "the client's line has its process, SNI, version, JA4 and cipher" \
	grep -Eq "^[0-9T:.Z-]+ tls.handshake process=openssl pid=[0-9]+ uid=0 role=client server=127.0.0.1:$tport sni=default-config.example version=\"TLS 1.3\" alpn=\"\" ja4=t13d[0-9]{4}h2_[0-9a-f]{12}_[0-9a-f]{12} cipher=0x13[0-9a-f]{2}$" <<<"$line"
ig_done
