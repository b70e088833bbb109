#!/usr/bin/env bash
# Reload tells the truth: settings read only at start (marked "Restart to
# change" in docs/configuration.md) keep their running values on a reload,
# each change is warned by name with the file's and the running value, and
# `ingrainctl status` lists them as restart pending; settings a reload does
# apply are applied without a warning.
#   aggregator: max_msg_bytes and metrics_listen changed (restart-only), a
#     pipeline's stage added (applied): the warning names both settings, the
#     status lists them, /metrics still answers on the old address, and the
#     new stage is in force (its tag is on the next record).
#   agent: queue_max_batches and kubernetes.watch_timeout changed
#     (restart-only), batch_max_records changed (applied): warnings for the
#     first two only; events keep flowing.
source "$(dirname "$0")/lib.sh"
ig_require_root
ig_require_cmd curl
ig_require_built

CTL=$IG_BUILD_DIR/aggregator/ingrainctl
port=$(ig_free_port)
mport=$(ig_free_port)
mport2=$(ig_free_port)
mon="$IG_TMP/mon"
out="$IG_TMP/out.jsonl"
sock="ipc://$IG_TMP/control.sock"
mkdir -p "$mon"
config() { # MAX_MSG METRICS_PORT QUEUE WATCH BATCH STAGES
	cat <<YAML
agent:
  aggregator: tcp://127.0.0.1:$port
  plaintext: true
  batch_max_age: 50ms
  queue_max_batches: $3
  batch_max_records: $5
kubernetes:
  enabled: "off"
  watch_timeout: $4
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  control: $sock
  state_dir: ""
  max_msg_bytes: $1
  metrics_listen: 127.0.0.1:$2
probes:
  files:
    monitor_dirs: ["$mon"]
    pipelines: [archive]
pipelines:
  archive:
    stages: $6
    backends: [out]
backends:
  out:
    type: console
    format: json
    output: $out
YAML
}
config 16MiB "$mport" 4096 5m 512 '[]' >"$IG_TMP/config.yaml"
ig_start_aggregator "$IG_TMP/config.yaml"
ig_start_agent "$IG_TMP/config.yaml"
opened() { grep -c "\"path\":\"$mon/$1\"" "$out" 2>/dev/null || true; }
: >"$mon/before"
ig_wait_for "the first event" 15 bash -c "[ \$(grep -c '\"path\":\"$mon/before\"' '$out' 2>/dev/null) -ge 1 ]"

# The file changes two restart-only settings of each binary and two it applies.
config 8MiB "$mport2" 100 1m 7 '[{type: add_tags, tags: {reloaded: "yes"}}]' >"$IG_TMP/config.yaml"
"$CTL" -s "$sock" reload >"$IG_TMP/reload.out" 2>&1 || ig_fail "ingrainctl reload: $(cat "$IG_TMP/reload.out")"
kill -HUP "$IG_PID_agent"
ig_wait_for "the agent's reload" 15 grep -q "configuration reloaded" "$IG_TMP/agent.log"

# (The aggregator reloads twice: ingrainctl, then its watch of the file.)
agg_warn() { grep "takes effect at restart only" "$IG_TMP/aggregator.log" | grep -o 'setting=[^ ]*' | sort -u; }
ig_check "the aggregator warns for aggregator.max_msg_bytes, with both values" \
	bash -c "grep 'setting=aggregator.max_msg_bytes ' '$IG_TMP/aggregator.log' | grep -q 'file=8MiB running=16MiB'"
ig_check "the aggregator warns for aggregator.metrics_listen" \
	grep -q "setting=aggregator.metrics_listen file=127.0.0.1:$mport2 running=127.0.0.1:$mport" "$IG_TMP/aggregator.log"
ig_check "the aggregator warns for nothing else" [ "$(agg_warn | wc -l)" = 2 ]
ig_check "the aggregator's reload line lists both" \
	grep -q 'configuration reloaded.*restart_pending=aggregator.max_msg_bytes,aggregator.metrics_listen' "$IG_TMP/aggregator.log"
"$CTL" -s "$sock" status >"$IG_TMP/status.txt" 2>&1 || ig_fail "ingrainctl status: $(cat "$IG_TMP/status.txt")"
ig_check "ingrainctl status lists them as restart pending" \
	grep -q "restart pending (the file changed these; the running values stay): aggregator.max_msg_bytes aggregator.metrics_listen" "$IG_TMP/status.txt"
"$CTL" -s "$sock" -o json status >"$IG_TMP/status.json" 2>&1 || ig_fail "ingrainctl status -o json"
ig_check "status JSON: config.restart_pending" python3 -c 'import json,sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if s["config"]["restart_pending"] == ["aggregator.max_msg_bytes", "aggregator.metrics_listen"] else 1)' "$IG_TMP/status.json"
ig_check "/metrics still answers on the running address" curl -sf -o /dev/null "http://127.0.0.1:$mport/metrics"
ig_check "and not on the file's new one" bash -c "! curl -sf -o /dev/null 'http://127.0.0.1:$mport2/metrics'"

agent_warn() { grep "takes effect at restart only" "$IG_TMP/agent.log" | grep -o 'setting=[^ ]*' | sort -u; }
ig_check "the agent warns for agent.queue_max_batches" \
	grep -q 'setting=agent.queue_max_batches file=100 running=4096' "$IG_TMP/agent.log"
ig_check "the agent warns for kubernetes.watch_timeout" \
	grep -q 'setting=kubernetes.watch_timeout file=1m running=5m' "$IG_TMP/agent.log"
ig_check "the agent warns for nothing else (batch_max_records applies)" [ "$(agent_warn | wc -l)" = 2 ]

# Applied settings are in force: the new stage tags the next record.
: >"$mon/after"
ig_wait_for "the event after the reloads" 15 bash -c "[ \$(grep -c '\"path\":\"$mon/after\"' '$out' 2>/dev/null) -ge 1 ]"
ig_check "the reloaded pipeline's stage is in force" bash -c "grep '\"path\":\"$mon/after\"' '$out' | grep -q '\"reloaded\":\"yes\"'"
ig_done
