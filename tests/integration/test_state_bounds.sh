#!/usr/bin/env bash
# Bounded state and refused input, on a plaintext listener (the explicit
# opt-in, where envelopes are all an attacker needs; with TLS only holders of
# a certificate get this far, see test_tls_identity):
#   - a forged seq = 2^64-1 under a running agent's agent_id and boot_id is
#     refused (reason="seq_gap"), counted and not persisted: the real agent's
#     next 100 envelopes are all accepted, and 100 more after an aggregator
#     restart (on the seed: 0 of 100, and the blackout survived restarts);
#     a boot the aggregator has no state for is accepted at any seq;
#   - 3,000 forged agent_ids against max_agents: 1000 are kept, 2,000 refused
#     and counted (reason="agent_limit"); /metrics stays small (per-agent
#     series capped by metrics_max_agents) and the idle aggregator stays idle;
#   - an envelope over max_msg_bytes is answered with its seq, counted
#     (reason="too_large") and logged; the seed gave no reply, no log, no count.
source "$(dirname "$0")/lib.sh"
ig_require_cmd curl
ig_require_built

port=$(ig_free_port)
hport=$(ig_free_port)
out="$IG_TMP/out.jsonl"
url="tcp://127.0.0.1:$port"
cat >"$IG_TMP/config.yaml" <<YAML
aggregator:
  listen: $url
  plaintext: true
  control: ""
  state_dir: $IG_TMP/state
  metrics_listen: 127.0.0.1:$hport
  max_agents: 1000
  metrics_max_agents: 256
probes:
  files:
    pipelines: [archive]
pipelines:
  archive:
    stages: []
    backends: [out]
backends:
  out:
    type: console
    format: json
    output: $out
YAML
ig_start_aggregator "$IG_TMP/config.yaml"
log="$IG_TMP/aggregator.log"
ig_check "plaintext is warned about at start" grep -q 'msg="listening in plaintext (aggregator.plaintext: true)' "$log"
metric() { curl -fsS "http://127.0.0.1:$hport/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }

# --- a forged seq does not silence the real agent ---
"$IG_SEND" "$url" --valid 10 3 real-agent >"$IG_TMP/real0.out"
ig_check "the real agent runs: 10 envelopes accepted" grep -q "acks ok=10 duplicate=0 rejected=0" "$IG_TMP/real0.out"
IG_SEND_SEQ=18446744073709551615 "$IG_SEND" "$url" --valid 1 3 real-agent >"$IG_TMP/forged.out" || true
ig_check "forged seq 2^64-1 under its agent_id and boot_id: refused as seq_gap" \
	grep -q 'seq=18446744073709551615 st=rejected err=seq_gap: seq is more than aggregator.max_seq_gap ahead' "$IG_TMP/forged.out"
IG_SEND_SEQ=11 "$IG_SEND" "$url" --valid 100 3 real-agent >"$IG_TMP/real.out"
ig_check "real agent after the forgery: 100 of 100 accepted" grep -q "acks ok=100 duplicate=0 rejected=0" "$IG_TMP/real.out"
ig_check "real agent: 330 records delivered" bash -c "[ \$(grep -c '/etc/ig-send/real-agent/' '$out') -eq 330 ]"
ig_check "forged seq not persisted" bash -c "! grep -rq 18446744073709551615 '$IG_TMP/state'"
ig_stop "$IG_PID_aggregator"
ig_start_aggregator "$IG_TMP/config.yaml"
IG_SEND_SEQ=111 "$IG_SEND" "$url" --valid 100 3 real-agent >"$IG_TMP/real2.out"
ig_check "after a restart: the next 100 of 100 accepted" grep -q "acks ok=100 duplicate=0 rejected=0" "$IG_TMP/real2.out"
IG_SEND_SEQ=50 "$IG_SEND" "$url" --valid 1 3 real-agent >"$IG_TMP/resend.out" || true
ig_check "a resend of an accepted seq is still a duplicate" grep -q "acks ok=0 duplicate=1 rejected=0" "$IG_TMP/resend.out"
IG_SEND_BOOT_ID=5678 IG_SEND_SEQ=5000000000 "$IG_SEND" "$url" --valid 1 3 real-agent >"$IG_TMP/unknown-boot.out"
ig_check "a boot with no state yet is accepted at any seq (state lost, agent kept running)" \
	grep -q "acks ok=1 duplicate=0 rejected=0" "$IG_TMP/unknown-boot.out"

# --- 3,000 forged identities against max_agents: 1000 ---
"$IG_SEND" "$url" --agents 3000 3 forged >"$IG_TMP/agents.out" || true
# real-agent is one of the 1000 already.
ig_check "3000 identities: 999 kept, 2001 refused" grep -q "acks ok=999 duplicate=0 rejected=2001" "$IG_TMP/agents.out"
ig_check "refusal says why" grep -q "err=agent_limit: the aggregator already keeps state for aggregator.max_agents agents" "$IG_TMP/agents.out"
ig_wait_for "agent_limit counted" 10 metric_is 'ingrain_aggregator_rejected_total{reason="agent_limit"}' 2001
ig_check "agents gauge at the cap" metric_is ingrain_agents 1000
ig_check "state files bounded by max_agents" bash -c "[ \$(ls '$IG_TMP/state/agents' | wc -l) -eq 1000 ]"
curl -fsS "http://127.0.0.1:$hport/metrics" >"$IG_TMP/metrics.txt"
bytes=$(wc -c <"$IG_TMP/metrics.txt")
series=$(grep -c '^ingrain_agent_envelopes_total{' "$IG_TMP/metrics.txt")
ig_log "/metrics with 1000 agents: $bytes bytes, $series per-agent envelope series"
ig_check "per-agent series capped at 256 + _other" bash -c "[ $series -eq 257 ] && grep -q 'agent=\"_other\"' '$IG_TMP/metrics.txt'"
ig_check "/metrics under 100 KB" bash -c "[ $bytes -lt 100000 ]"
pid=$IG_PID_aggregator
tck=$(getconf CLK_TCK)
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
c0=$(cpu)
t0=$(date +%s%N)
sleep 3
c1=$(cpu)
t1=$(date +%s%N)
pct=$(awk -v c="$((c1 - c0))" -v t="$((t1 - t0))" -v k="$tck" 'BEGIN { printf "%.1f", 100 * c / k / (t / 1e9) }')
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")
IG_SEND_SEQ=211 "$IG_SEND" "$url" --valid 1 3 real-agent >"$IG_TMP/rtt.out" || true
rtt=$(sed -n 's/.* seconds=\([0-9.]*\) .*/\1/p' "$IG_TMP/rtt.out")
ig_log "idle with 1000 agents: cpu=${pct}% of a core rss=${rss}kB; one envelope's ack in ${rtt} s"
ig_check "idle aggregator with 1000 agents uses < 20% of a core" awk -v p="$pct" 'BEGIN { exit !(p < 20) }'

# --- oversized envelopes ---
"$IG_SEND" "$url" --big $((16 * 1024 * 1024 + 5)) 7 >"$IG_TMP/big.out" 2>&1 || true
ig_check "16 MiB + 5 B: answered with its seq, as too_large" \
	grep -q 'ack kind=big seq=7 st=rejected err=too_large: 16777221 bytes, more than aggregator.max_msg_bytes=16777216' "$IG_TMP/big.out"
ig_wait_for "too_large counted" 10 metric_is 'ingrain_aggregator_rejected_total{reason="too_large"}' 1
ig_check "too_large logged" grep -q 'msg="refused an envelope" reason=too_large bytes=16777221' "$log"
"$IG_SEND" "$url" --big $((16 * 1024 * 1024 - 64)) 8 >"$IG_TMP/big2.out" 2>&1 || true
ig_check "16 MiB - 64 B: rejected as malformed, with its seq" grep -q 'ack kind=big seq=8 st=rejected' "$IG_TMP/big2.out"
ig_stop "$IG_PID_aggregator"
ig_done
