#!/usr/bin/env bash
# ingrainctl against the real aggregator process: every subcommand (status,
# reload, reload FILE, validate FILE, pipelines), in text and --output json
# (parsed with python3), each exit code (0 ok, 1 failed, 2 usage, 3
# unreachable), validate's file:line:col errors, the control socket's 0600
# permissions, $INGRAIN_CONTROL, and the /metrics, /healthz, /readyz
# endpoints with the expected Prometheus families after traffic and reloads.
source "$(dirname "$0")/lib.sh"
ig_require_cmd python3
ig_require_cmd curl
ig_require_built

CTL=${IG_INGRAINCTL:-$IG_BUILD_DIR/aggregator/ingrainctl}
[ -x "$CTL" ] || ig_fail "binary $CTL not built"
port=$(ig_free_port)
hport=$(ig_free_port)
sock="$IG_TMP/control.sock"
url="ipc://$sock"
out="$IG_TMP/out.jsonl"

# config VERSION: a valid configuration; VERSION changes an add_tags value.
config() {
	cat <<YAML
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  control: $url
  metrics_listen: 127.0.0.1:$hport
  state_dir: ""
probes:
  files:
    pipelines: [archive, totals]
pipelines:
  archive:
    stages:
      - {type: whitelist, allow: [path, process]}
      - type: regex
        rules: [{key: path, pattern: '/[0-9]+/', replace_with: /N/}]
      - {type: add_tags, tags: {version: "$1"}}
    backends: [out]
  totals:
    stages:
      - {type: filter, drop_if: {key: path, op: prefix, value: /nothing}}
      - {type: whitelist, allow: []}
      - {type: rollup, window: 1h}
    backends: [out]
backends:
  out: {type: console, format: json, output: $out}
YAML
}
config v1 >"$IG_TMP/config.yaml"
config v2 >"$IG_TMP/good2.yaml"
# bad.yaml: a bad regex on line 14 and a typo on line 19.
config v3 | sed -e "s|pattern: '/\[0-9\]+/'|pattern: '/([0-9]+/'|" \
	-e 's|{type: filter, drop_if:|{type: filter, drop_iff:|' >"$IG_TMP/bad.yaml"
grep -q "drop_iff" "$IG_TMP/bad.yaml" || ig_fail "bad.yaml was not made"

ig_start_aggregator "$IG_TMP/config.yaml"

ctl() { "$CTL" -s "$url" "$@"; }
# expect_rc WANT DESC CMD...: runs CMD, its stdout in $IG_TMP/ctl.out and
# stderr in $IG_TMP/ctl.err; fails the test unless it exits with WANT.
expect_rc() {
	local want=$1 desc=$2 rc=0
	shift 2
	"$@" >"$IG_TMP/ctl.out" 2>"$IG_TMP/ctl.err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo "--- stdout"; cat "$IG_TMP/ctl.out"; echo "--- stderr"; cat "$IG_TMP/ctl.err"
		ig_fail "$desc: exit code $rc, want $want"
	fi
	ig_pass "$desc (exit $want)"
}
# jq_py EXPR: evaluates the python expression EXPR with j = the JSON in ctl.out.
jq_py() {
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
		"$IG_TMP/ctl.out" "$1" || { cat "$IG_TMP/ctl.out"; ig_fail "JSON check failed: $1"; }
	ig_pass "json: $1"
}

# ---- the control socket ----
ig_check "control socket is 0600" test "$(stat -c %a "$sock")" = 600

# ---- status before any traffic ----
expect_rc 0 "status" ctl status
ig_check "status text shows uptime and config" grep -q "^uptime: .*listen: tcp://127.0.0.1:$port" "$IG_TMP/ctl.out"
expect_rc 0 "status --output json" ctl --output json status
jq_py 'j["ok"] is True and j["config"]["reloads"] == 0 and j["config"]["reload_failures"] == 0'
jq_py 'j["config"]["file"].endswith("config.yaml") and len(j["config"]["sha256"]) == 64'
jq_py 'j["agents"] == [] and j["records"] == 0'

# ---- traffic from two agents ----
"$IG_SEND" "tcp://127.0.0.1:$port" --valid 5 20 agent-a >/dev/null || ig_fail "ig_send agent-a"
"$IG_SEND" "tcp://127.0.0.1:$port" --valid 3 10 agent-b >/dev/null || ig_fail "ig_send agent-b"
expect_rc 0 "status -o json after traffic" ctl -o json status
jq_py 'j["records"] == 130 and j["envelopes"] == 8'
jq_py 'sorted((a["agent_id"], a["last_seq"], a["records"]) for a in j["agents"]) == [("agent-a", 5, 100), ("agent-b", 3, 30)]'
jq_py 'j["pipelines"]["records_in"] == 130 and j["pipelines"]["metrics_out"] == 130'
jq_py '[b["name"] for b in j["backends"]] == ["out"] and j["backends"][0]["received"] == 130'
expect_rc 0 "status text after traffic" ctl status
ig_check "status text lists both agents" bash -c "grep -q 'agent-a .*seq=5 records=100' '$IG_TMP/ctl.out' && grep -q 'agent-b .*seq=3 records=30' '$IG_TMP/ctl.out'"

# ---- pipelines ----
expect_rc 0 "pipelines" ctl pipelines
ig_check "pipelines text shows the route" grep -q "^probe files -> archive totals" "$IG_TMP/ctl.out"
ig_check "pipelines text shows stages with counts" grep -q "^pipeline archive: \[whitelist in=130 out=130 drop=0\] -> \[regex in=130 out=130 drop=0\] -> \[add_tags in=130 out=130 drop=0\] -> out" "$IG_TMP/ctl.out"
ig_check "the rollup holds its window" grep -q "\[rollup in=130 out=0 drop=0\]" "$IG_TMP/ctl.out"
expect_rc 0 "pipelines -o json" ctl -o json pipelines
jq_py 'j["graph"]["routes"] == {"files": ["archive", "totals"]}'
jq_py '[s["type"] for s in j["graph"]["pipelines"][1]["stages"]] == ["filter", "whitelist", "rollup"]'
jq_py '[b["type"] for b in j["graph"]["backends"]] == ["console"]'

# ---- reload (same file) ----
expect_rc 0 "reload" ctl reload
ig_check "reload prints ok" grep -qx ok "$IG_TMP/ctl.out"
expect_rc 0 "status after reload" ctl -o json status
jq_py 'j["config"]["reloads"] == 1 and j["config"]["last_reload_ok"] is True'
ig_check "unchanged pipelines carried over on reload" grep -q "pipelines_carried_over=1" "$IG_TMP/aggregator.log"

# ---- reload FILE: invalid, rejected, the old graph keeps running ----
expect_rc 1 "reload of an invalid file" ctl reload "$IG_TMP/bad.yaml"
ig_check "reload error names file:line:col of the bad pattern" \
	grep -q "bad.yaml:15:[0-9]*: pipelines.archive.stages\[1\].rules\[0\].pattern: missing closing parenthesis at offset" "$IG_TMP/ctl.err"
ig_check "reload error names the typo with a suggestion" \
	grep -q "bad.yaml:20:[0-9]*: pipelines.totals.stages\[0\].drop_iff: unknown key (did you mean 'drop_if'?)" "$IG_TMP/ctl.err"
expect_rc 1 "reload -o json of an invalid file" ctl -o json reload "$IG_TMP/bad.yaml"
jq_py 'j["ok"] is False and "bad.yaml:15:" in j["errors"]'
expect_rc 0 "status after rejected reloads" ctl -o json status
jq_py 'j["config"]["reloads"] == 1 and j["config"]["reload_failures"] == 2'
jq_py 'j["config"]["last_reload_ok"] is False and "drop_iff" in j["config"]["last_reload_errors"]'
jq_py 'j["config"]["file"].endswith("/config.yaml")'
expect_rc 0 "status text after a rejected reload" ctl status
ig_check "status text says the last reload was rejected" grep -q "1 ok, 2 rejected  (last reload rejected)" "$IG_TMP/ctl.out"
"$IG_SEND" "tcp://127.0.0.1:$port" --valid 2 5 agent-c >/dev/null || ig_fail "ig_send agent-c"
ig_check "the running graph still processes (v1 tags)" \
	test "$(grep -c '"version":"v1"' "$out")" -eq 140

# ---- reload FILE: valid, switches ----
expect_rc 0 "reload of another valid file" ctl reload "$IG_TMP/good2.yaml"
expect_rc 0 "status after switching" ctl -o json status
jq_py 'j["config"]["file"].endswith("/good2.yaml") and j["config"]["reloads"] == 2 and j["config"]["last_reload_ok"] is True'
"$IG_SEND" "tcp://127.0.0.1:$port" --valid 1 7 agent-d >/dev/null || ig_fail "ig_send agent-d"
ig_check "the new graph runs (v2 tags)" test "$(grep -c '"version":"v2"' "$out")" -eq 7
expect_rc 1 "reload of a missing file (checked before asking the aggregator)" ctl reload "$IG_TMP/nope.yaml"
ig_check "missing file is named" grep -q "cannot read .*nope.yaml" "$IG_TMP/ctl.err"

# ---- validate (local, no aggregator needed) ----
expect_rc 0 "validate a valid file" "$CTL" validate "$IG_TMP/good2.yaml"
ig_check "validate says OK" grep -q "good2.yaml: configuration OK" "$IG_TMP/ctl.out"
expect_rc 1 "validate an invalid file" "$CTL" validate "$IG_TMP/bad.yaml"
ig_check "validate: bad pattern at file:line:col" grep -q "bad.yaml:15:[0-9]*: pipelines.archive.stages\[1\].rules\[0\].pattern: missing closing parenthesis" "$IG_TMP/ctl.err"
ig_check "validate: typo at file:line:col" grep -q "bad.yaml:20:[0-9]*: pipelines.totals.stages\[0\].drop_iff" "$IG_TMP/ctl.err"
expect_rc 1 "validate -o json an invalid file" "$CTL" -o json validate "$IG_TMP/bad.yaml"
jq_py 'j["ok"] is False and j["file"].endswith("bad.yaml") and j["errors"].count("\n") >= 2'
expect_rc 0 "validate -o json a valid file" "$CTL" -o json validate "$IG_TMP/good2.yaml"
jq_py 'j["ok"] is True and "errors" not in j'
expect_rc 1 "validate a missing file" "$CTL" validate "$IG_TMP/nope.yaml"

# ---- usage errors: exit 2 ----
expect_rc 2 "no command" "$CTL"
expect_rc 2 "unknown command" ctl frobnicate
ig_check "unknown command is named" grep -q "unknown command 'frobnicate'" "$IG_TMP/ctl.err"
expect_rc 2 "status takes no argument" ctl status extra
expect_rc 2 "too many arguments" ctl reload a b
expect_rc 2 "bad --output" ctl --output yaml status
expect_rc 2 "validate without a file" "$CTL" validate
expect_rc 2 "unknown option" "$CTL" --frob status
expect_rc 0 "--help" "$CTL" --help
ig_check "help lists the exit codes" grep -q "Exit codes: 0 ok, 1 command failed, 2 usage, 3 aggregator unreachable" "$IG_TMP/ctl.out"

# ---- unreachable: exit 3 ----
expect_rc 3 "status on a socket nobody listens on" "$CTL" -s "ipc://$IG_TMP/nobody.sock" status
ig_check "unreachable says what to check" grep -q "cannot reach the aggregator at ipc://$IG_TMP/nobody.sock" "$IG_TMP/ctl.err"
expect_rc 3 "reload on a socket nobody listens on" "$CTL" -s "ipc://$IG_TMP/nobody.sock" reload
expect_rc 0 "INGRAIN_CONTROL selects the socket" env INGRAIN_CONTROL="$url" "$CTL" -o json status
jq_py 'j["ok"] is True'

# ---- /metrics, /healthz, /readyz ----
expect_rc 0 "GET /healthz" curl -fsS "http://127.0.0.1:$hport/healthz"
expect_rc 0 "GET /readyz" curl -fsS "http://127.0.0.1:$hport/readyz"
sleep 0.3 # the snapshot is refreshed every 100 ms tick
expect_rc 0 "GET /metrics" curl -fsS "http://127.0.0.1:$hport/metrics"
cp "$IG_TMP/ctl.out" "$IG_TMP/metrics.txt"
for fam in ingrain_aggregator_envelopes_total:counter ingrain_aggregator_records_total:counter \
	ingrain_aggregator_rejected_total:counter ingrain_pipeline_records_total:counter \
	ingrain_pipeline_dropped_total:counter ingrain_pipeline_metrics_out_total:counter \
	ingrain_config_reloads_total:counter ingrain_config_last_reload_ok:gauge ingrain_agents:gauge \
	ingrain_agent_records_total:counter ingrain_backend_received_total:counter \
	ingrain_backend_errors_total:counter ingrain_backend_queued:gauge; do
	name=${fam%%:*} type=${fam##*:}
	grep -q "^# TYPE $name $type\$" "$IG_TMP/metrics.txt" || { cat "$IG_TMP/metrics.txt"; ig_fail "/metrics lacks '# TYPE $name $type'"; }
	grep -q "^# HELP $name " "$IG_TMP/metrics.txt" || ig_fail "/metrics lacks '# HELP $name'"
done
ig_pass "/metrics has every expected family with its type"
python3 - "$IG_TMP/metrics.txt" <<'PY' || ig_fail "/metrics values do not match the traffic and reloads"
import re, sys
vals = {}
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip():
        continue
    m = re.match(r'^([a-z_]+)(\{[^}]*\})? (\S+)$', line.strip())
    assert m, "not a Prometheus sample line: %r" % line
    vals[m.group(1) + (m.group(2) or "")] = float(m.group(3))
want = {
    "ingrain_aggregator_records_total": 147,
    "ingrain_aggregator_envelopes_total": 11,
    'ingrain_config_reloads_total{result="ok"}': 2,
    'ingrain_config_reloads_total{result="rejected"}': 2,  # nope.yaml never reached it
    "ingrain_config_last_reload_ok": 1,
    'ingrain_agent_records_total{agent="agent-a"}': 100,
}
bad = {k: (vals.get(k), v) for k, v in want.items() if vals.get(k) != v}
print("checked %d samples; mismatches: %s" % (len(want), bad or "none"))
sys.exit(1 if bad else 0)
PY
ig_pass "/metrics values match the traffic and reloads"
expect_rc 22 "an unknown path is a 404" curl -fsS "http://127.0.0.1:$hport/nope"

ig_stop "$IG_PID_aggregator"
ig_check "the rollup flushed its window at shutdown" \
	python3 -c "
import json, sys
tot = sum(json.loads(l)['value'] for l in open('$out') if '\"file.open\"' in l and '\"tags\":{}' in l)
sys.exit(0 if tot == 147 else print('rollup total', tot) or 1)"
ig_done
