#!/usr/bin/env bash
# Bad input on the aggregator's socket: random bytes, truncated and bit-flipped
# envelopes. Each must be rejected with an ack saying so, counted and logged
# (rate-limited), and the aggregator must keep running and keep accepting
# good traffic, from a real agent and from a valid raw client.
source "$(dirname "$0")/lib.sh"
ig_require_root
ig_require_cmd python3
ig_require_built

port=$(ig_free_port)
mon="$IG_TMP/mon"
out="$IG_TMP/out.jsonl"
mkdir -p "$mon"
ig_files_config "$IG_TMP/config.yaml" "$port" "$mon" "$out" \
	"" \
	"  state_dir: \"\""
ig_start_aggregator "$IG_TMP/config.yaml"
url="tcp://127.0.0.1:$port"

# 1. garbage of every kind: every message answered, none accepted.
"$IG_SEND" "$url" --random 300 7 >"$IG_TMP/random.txt" || ig_fail "ig_send --random got no ack for some message"
ig_check "300 malformed messages each answered with an ack" \
	test "$(grep -c '^ack ' "$IG_TMP/random.txt")" -eq 300
ig_check "every random and truncated message rejected" \
	bash -c "! grep -E 'kind=(random|truncated) .*st=(ok|duplicate)' '$IG_TMP/random.txt'"
ig_check "bit-flipped envelopes answered (rejected, or accepted when still valid)" \
	test "$(grep -c 'kind=flipped' "$IG_TMP/random.txt")" -eq 100
ig_check "rejections say why" grep -q "st=rejected err=.\+" "$IG_TMP/random.txt"

# 2. specific hostile inputs
printf '' >"$IG_TMP/empty.bin"
printf '\x81\xa1v\x03' >"$IG_TMP/badversion.bin"          # {v: 3}
head -c 65536 /dev/urandom >"$IG_TMP/random64k.bin"
printf '\xdd\xff\xff\xff\xff' >"$IG_TMP/hugearray.bin"     # array32 of 4G elements, no body
"$IG_SEND" "$url" --raw "$IG_TMP/empty.bin" "$IG_TMP/badversion.bin" "$IG_TMP/random64k.bin" \
	"$IG_TMP/hugearray.bin" >"$IG_TMP/raw.txt" || ig_fail "no ack for a raw hostile message"
ig_check "empty, wrong version, 64 KiB random, huge array header: all rejected" \
	test "$(grep -c 'st=rejected' "$IG_TMP/raw.txt")" -eq 4
ig_check "unknown version named in the rejection" grep -q "version" "$IG_TMP/raw.txt"
kill -0 "$IG_PID_aggregator" || ig_fail "aggregator died on bad input"
ig_pass "aggregator alive after 304 hostile messages"
ig_check "malformed input logged, rate-limited (at most a few lines)" \
	bash -c "n=\$(grep -c 'rejected a malformed envelope' '$IG_TMP/aggregator.log'); [ \$n -ge 1 ] && [ \$n -le 3 ]"

# 3. good traffic still flows: a valid raw client and a real agent.
"$IG_SEND" "$url" --valid 10 100 good-client >"$IG_TMP/valid.txt" || ig_fail "valid envelopes not accepted"
ig_check "1000 valid records accepted" test "$(grep -c '/etc/ig-send/good-client/' "$out")" -eq 1000
"$IG_SEND" "$url" --valid 10 100 good-client >"$IG_TMP/valid2.txt" && ig_fail "resent envelopes should be acked as duplicates"
ig_check "resent envelopes not processed twice" test "$(grep -c '/etc/ig-send/good-client/' "$out")" -eq 1000
ig_start_agent "$IG_TMP/config.yaml"
ig_opener open "$mon/after" creat >/dev/null
ig_wait_for "agent event after the bad input" 10 grep -q "$mon/after" "$out"
ig_pass "real agent traffic delivered after the bad input"
ig_stop "$IG_PID_agent"
ig_stop "$IG_PID_aggregator"
ig_done
