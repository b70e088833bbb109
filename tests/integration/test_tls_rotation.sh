#!/usr/bin/env bash
# Certificate rotation under load, with an exact reconciliation. The real
# agent (files probe) streams a storm of opens to the real aggregator over
# mutual TLS while both certificates are rotated the way the kubelet updates
# a mounted Secret (an atomic swap of the ..data symlink):
#   1. the aggregator's certificate gets a new key and a new name
#      (rotated.test) and its ca.crt a second CA: the running aggregator
#      re-reads them; a new client that insists on the new name gets in;
#   2. the agent's certificate is re-issued by the second CA: the agent
#      re-reads it; its established connection goes on;
#   3. the aggregator then trusts only the second CA and is restarted: the
#      agent can only reconnect with its new certificate (the old one would be
#      refused as unknown_ca).
# Every open is delivered exactly once, and nothing is counted lost:
# generated = delivered + counted lost, with lost = 0.
source "$(dirname "$0")/lib.sh"
ig_require_root
ig_require_cmd openssl
ig_require_cmd python3
ig_require_cmd curl
ig_require_built

N=${IG_ROTATION_N:-8000}
RATE=${IG_ROTATION_RATE:-2000}
port=$(ig_free_port)
hport=$(ig_free_port)
pki="$IG_TMP/pki"
mon="$IG_TMP/mon"
out="$IG_TMP/out.jsonl"
node=trust-auth-rotation-node
mkdir -p "$mon"
ig_tls_ca "$pki/ca1"
ig_tls_ca "$pki/ca2"
ig_tls_cert "$pki/ca1" "$pki/agg-v1" ingrain-aggregator "DNS:localhost,IP:127.0.0.1"
ig_tls_cert "$pki/ca1" "$pki/agent-v1" "$node" "DNS:$node"
ig_tls_cert "$pki/ca1" "$pki/client" probe-client "DNS:probe-client"
ig_tls_publish "$pki/agg-v1" "$IG_TMP/secret-aggregator"
ig_tls_publish "$pki/agent-v1" "$IG_TMP/secret-agent"

cat >"$IG_TMP/config.yaml" <<YAML
agent:
  aggregator: tls+tcp://127.0.0.1:$port
  tls_dir: $IG_TMP/secret-agent
  node_name: $node
  batch_max_age: 50ms
  ack_timeout: 1s
  reconnect_max: 200ms
aggregator:
  listen: tls+tcp://127.0.0.1:$port
  tls_dir: $IG_TMP/secret-aggregator
  control: ""
  state_dir: $IG_TMP/state
  metrics_listen: 127.0.0.1:$hport
probes:
  files:
    monitor_dirs: ["$mon"]
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
metric() { curl -fsS "http://127.0.0.1:$hport/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }
client() { # NAME: one envelope from probe-client expecting the aggregator to be NAME
	IG_SEND_TLS_DIR="$pki/client" IG_SEND_NODE=probe-client IG_SEND_TLS_SERVER_NAME=$1 \
		timeout 20 "$IG_SEND" "tls+tcp://127.0.0.1:$port" --valid 1 1 probe-client 2>&1
}

ig_start_aggregator "$IG_TMP/config.yaml"
ig_start_agent "$IG_TMP/config.yaml"
client rotated.test >"$IG_TMP/client-before.out" || true
ig_check "before the rotation the aggregator is not rotated.test" \
	grep -q 'reason=wrong_name' "$IG_TMP/client-before.out"

ig_opener storm "$mon" "$N" "$RATE" >"$IG_TMP/storm.json" &
storm=$!
ig_wait_for "the first opens delivered" 20 bash -c "[ -s '$out' ]"

# 1. the aggregator's certificate and trust
ig_tls_cert "$pki/ca1" "$pki/agg-v2" ingrain-aggregator "DNS:localhost,DNS:rotated.test,IP:127.0.0.1"
cat "$pki/ca1/ca.crt" "$pki/ca2/ca.crt" >"$pki/agg-v2/ca.crt"
ig_tls_publish "$pki/agg-v2" "$IG_TMP/secret-aggregator"
ig_wait_for "aggregator re-read its TLS files" 10 metric_is 'ingrain_tls_reloads_total{result="ok"}' 1
ig_check "aggregator logged the rotation" grep -q 'msg="TLS files changed: new agent connections use them"' "$IG_TMP/aggregator.log"
client rotated.test >"$IG_TMP/client-after.out"
ig_check "a new connection gets the new certificate" grep -q 'acks ok=1 duplicate=0 rejected=0' "$IG_TMP/client-after.out"

# 2. the agent's certificate, now from ca2 (it still trusts ca1 for the aggregator)
ig_tls_cert "$pki/ca2" "$pki/agent-v2" "$node" "DNS:$node"
cp "$pki/ca1/ca.crt" "$pki/agent-v2/ca.crt"
ig_tls_publish "$pki/agent-v2" "$IG_TMP/secret-agent"
ig_wait_for "agent re-read its TLS files" 10 grep -q 'msg="TLS files changed: new connections to the aggregator use them"' "$IG_TMP/agent.log"

# 3. trust only ca2, restart: the agent must reconnect with its new certificate
cp -r "$pki/agg-v2" "$pki/agg-v3"
cp "$pki/ca2/ca.crt" "$pki/agg-v3/ca.crt"
ig_tls_publish "$pki/agg-v3" "$IG_TMP/secret-aggregator"
ig_wait_for "aggregator re-read its TLS files again" 10 metric_is 'ingrain_tls_reloads_total{result="ok"}' 2
ig_stop "$IG_PID_aggregator"
ig_start_aggregator "$IG_TMP/config.yaml"
wait "$storm"
pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$IG_TMP/storm.json")
ig_wait_for "$N events from pid $pid" 90 bash -c "[ \$(grep -c '\"pid\":$pid[,}]' '$out') -ge $N ]"
ig_check "the agent reconnected after the restart" \
	bash -c "[ \$(grep -c 'msg=\"connected to aggregator\"' '$IG_TMP/agent.log') -ge 2 ]"
# At most one refusal: the probe client's before the rotation (it expected rotated.test; it may not
# get as far as being refused, depending on timing).
ig_check "the agent was never refused" bash -c "! grep -q 'reason=unknown_ca' '$IG_TMP/aggregator.log' && [ \$(grep -c 'reason=rejected_by_peer' '$IG_TMP/aggregator.log') -le 1 ]"
ig_stop "$IG_PID_agent"
sleep 0.5

python3 - "$out" "$pid" "$N" "$mon" "$IG_TMP/agent.log" <<'PY'
import collections, json, re, sys
out, pid, n, mon, agent_log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
c = collections.Counter()
for line in open(out):
    if line.strip():
        e = json.loads(line)
        if e["tags"].get("pid") == pid:
            c[e["tags"]["path"]] += 1
want = {"%s/f%d" % (mon, i) for i in range(n)}
stats = [l for l in open(agent_log) if 'msg="stats"' in l][-1]
lost = sum(int(v) for v in re.findall(r"lost_[a-z_]+=(\d+)", stats))
delivered = len(set(c) & want)
dups = sum(1 for k in c.values() if k > 1)
print("generated=%d delivered=%d lost_counted=%d duplicated=%d extra=%d"
      % (n, delivered, lost, dups, len(set(c) - want)))
sys.exit(0 if delivered + lost == n and lost == 0 and dups == 0 and not set(c) - want else 1)
PY
ig_pass "rotation under load: generated = delivered + counted lost ($N = $N + 0), no duplicate"
ig_stop "$IG_PID_aggregator"
ig_done
