#!/usr/bin/env bash
# Reload under load: two agents (ig_send) stream acknowledged envelopes at a
# fixed rate for ~10 s while the aggregator is reloaded 20 times, through
# each path (ingrainctl reload [FILE], SIGHUP, rewriting the watched config
# file), half of them with invalid configurations that must be rejected while
# the running graph keeps going. At the end every count reconciles exactly
# with what was generated:
#   archive  one JSON line per record: exactly N lines, N distinct paths
#   steady   rollup (2 s windows) whose definition never changes: carried
#            over by every valid reload; its counters sum to N
#   churn    rollup (1 h window) + add_tags whose value changes with every
#            rewrite: flushed by each reload that changes it, and at exit;
#            its counters sum to N
# and `ingrainctl status` says 10 reloads, 10 rejected, N records.
source "$(dirname "$0")/lib.sh"
ig_require_cmd python3
ig_require_built

CTL=${IG_INGRAINCTL:-$IG_BUILD_DIR/aggregator/ingrainctl}
[ -x "$CTL" ] || ig_fail "binary $CTL not built"
ENVELOPES=${IG_RELOAD_ENVELOPES:-200}
RECORDS=${IG_RELOAD_RECORDS:-250}
INTERVAL_MS=${IG_RELOAD_INTERVAL_MS:-50}
N=$((2 * ENVELOPES * RECORDS))
port=$(ig_free_port)
url="ipc://$IG_TMP/control.sock"
mkdir -p "$IG_TMP/conf" "$IG_TMP/staging"
cfg="$IG_TMP/conf/config.yaml"

# valid GEN: a valid configuration; GEN changes the archive and churn
# pipelines, never the steady one.
valid() {
	cat <<YAML
# generation $1
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  control: $url
  state_dir: ""
probes:
  files:
    pipelines: [archive, steady, churn]
pipelines:
  archive:
    stages:
      - {type: whitelist, allow: [path]}
      - {type: add_tags, tags: {gen: "$1"}}
    backends: [archive]
  steady:
    stages:
      - {type: whitelist, allow: []}
      - {type: rollup, window: 2s}
    backends: [steady]
  churn:
    stages:
      - {type: filter, keep_if: {key: path, op: prefix, value: /etc/ig-send/}}
      - {type: whitelist, allow: []}
      - {type: rollup, window: 1h}
      - {type: add_tags, tags: {gen: "$1"}}
    backends: [churn]
backends:
  archive: {type: console, format: json, output: $IG_TMP/archive.jsonl}
  steady: {type: console, format: json, output: $IG_TMP/steady.jsonl}
  churn: {type: console, format: json, output: $IG_TMP/churn.jsonl}
YAML
}

# invalid K: the valid configuration broken in one of ten ways.
invalid() {
	local k=$1
	case $((k % 10)) in
	0) valid "bad$k" | sed "s|allow: \[path\]|allow: [path], alow: [x]|" ;;
	1) valid "bad$k" | sed "s|window: 2s|window: 2parsecs|" ;;
	2) valid "bad$k" | sed "s|op: prefix|op: startswith|" ;;
	3) valid "bad$k" | sed "s|type: rollup, window: 1h|type: rolup, window: 1h|" ;;
	4) valid "bad$k" | sed "s|backends: \[steady\]|backends: [stedy]|" ;;
	5) valid "bad$k" | sed "s|allow: \[path\]}|allow: [path]|" ;; # YAML syntax
	6) valid "bad$k" | sed "s|{type: whitelist, allow: \[\]}|{type: regex, rules: [{key: path, pattern: '(', replace_with: x}]}|" ;;
	7) valid "bad$k" | sed "s|window: 1h|window: 1h, percentiles: [0]|" ;;
	8) valid "bad$k" | sed "s|pipelines: \[archive, steady, churn\]|pipelines: [archive, steady, churm]|" ;;
	9) valid "bad$k" | sed "s|keep_if: {key: path, op: prefix, value: /etc/ig-send/}|keep_if: {key: path, op: prefix}|" ;;
	esac
}

# Every invalid variant must really be invalid, and the valid one valid.
valid 0 >"$IG_TMP/v0.yaml"
"$CTL" validate "$IG_TMP/v0.yaml" >/dev/null || ig_fail "the valid configuration does not validate"
for k in $(seq 0 9); do
	invalid "$k" >"$IG_TMP/bad$k.yaml"
	if "$CTL" validate "$IG_TMP/bad$k.yaml" >/dev/null 2>"$IG_TMP/bad$k.err"; then
		ig_fail "invalid variant $k validates"
	fi
done
ig_pass "the valid configuration validates and the 10 invalid variants do not"

valid 0 >"$cfg"
ig_start_aggregator "$cfg"

# counts_are "OK REJECTED": the aggregator's reload counters are exactly these.
counts_are() {
	[ "$("$CTL" -s "$url" -o json status | python3 -c 'import json,sys
c = json.load(sys.stdin)["config"]
print(c["reloads"], c["reload_failures"])')" = "$1" ]
}
# rewrite CONTENT_FILE: atomically replaces the watched config file.
rewrite() {
	cp "$1" "$IG_TMP/staging/config.yaml"
	mv "$IG_TMP/staging/config.yaml" "$cfg"
}

# ---- the load ----
t0=$SECONDS
# The agents stream until every reload is done (IG_SEND_STOP_FILE), however slow
# the steps are on a loaded machine; then N is what they say they sent.
for a in agent-a agent-b; do
	IG_SEND_STOP_FILE="$IG_TMP/stop-sending" \
		"$IG_SEND" "tcp://127.0.0.1:$port" --valid 1000000 "$RECORDS" "$a" "$INTERVAL_MS" \
		>"$IG_TMP/send-$a.txt" 2>&1 &
	eval "send_$(echo $a | tr - _)=$!"
done

# ---- 20 reloads: 10 valid, 10 invalid, through every path ----
steps=(rewrite_valid ctl_bad sighup rewrite_invalid sighup ctl rewrite_valid ctl ctl_bad sighup
	rewrite_valid rewrite_invalid ctl sighup rewrite_valid ctl_bad ctl rewrite_invalid
	rewrite_valid sighup)
file_ok=1 gen=0 bad=0 want_ok=0 want_rej=0
slot_ms=$(((ENVELOPES * INTERVAL_MS - 1000) / ${#steps[@]}))
start_ms=$(date +%s%3N)
for i in "${!steps[@]}"; do
	# one step per slot, spread over the run
	while [ $(($(date +%s%3N) - start_ms)) -lt $((500 + i * slot_ms)) ]; do sleep 0.02; done
	case ${steps[$i]} in
	rewrite_valid)
		gen=$((gen + 1)); valid "$gen" >"$IG_TMP/next.yaml"; rewrite "$IG_TMP/next.yaml"
		file_ok=1 ok=1 ;;
	rewrite_invalid)
		invalid "$bad" >"$IG_TMP/next.yaml"; bad=$((bad + 1)); rewrite "$IG_TMP/next.yaml"
		file_ok=0 ok=0 ;;
	sighup)
		kill -HUP "$IG_PID_aggregator"; ok=$file_ok ;;
	ctl)
		rc=0; "$CTL" -s "$url" reload >/dev/null 2>&1 || rc=$?
		ok=$file_ok
		[ "$rc" -eq $((1 - ok)) ] || ig_fail "step $i: ingrainctl reload exited $rc" ;;
	ctl_bad)
		rc=0; "$CTL" -s "$url" reload "$IG_TMP/bad$bad.yaml" >/dev/null 2>"$IG_TMP/ctl.err" || rc=$?
		bad=$((bad + 1)) ok=0
		[ "$rc" -eq 1 ] || ig_fail "step $i: ingrainctl reload of an invalid file exited $rc" ;;
	esac
	if [ "$ok" = 1 ]; then want_ok=$((want_ok + 1)); else want_rej=$((want_rej + 1)); fi
	ig_wait_for "step $i (${steps[$i]}) to be counted" 10 counts_are "$want_ok $want_rej"
done
ig_pass "20 reloads (${want_ok} accepted, ${want_rej} rejected) via ingrainctl, SIGHUP and file rewrites, each counted once"
ig_check "half of them were invalid" test "$want_ok" -eq 10 -a "$want_rej" -eq 10
ig_check "the reloads happened while the agents were streaming" \
	bash -c "kill -0 $send_agent_a 2>/dev/null && kill -0 $send_agent_b 2>/dev/null"
# Stream a little more after the last reload, then stop both agents.
while [ $(($(date +%s%3N) - start_ms)) -lt $((500 + ${#steps[@]} * slot_ms + 500)) ]; do sleep 0.02; done
touch "$IG_TMP/stop-sending"
N=0
for a in agent_a agent_b; do
	pid_var="send_$a"
	out="$IG_TMP/send-${a//_/-}.txt"
	wait "${!pid_var}" || ig_fail "ig_send $a: not every envelope was acknowledged OK: $(tail -3 "$out")"
	sent=$(sed -n 's/^sent envelopes=[0-9]* records=\([0-9]*\) .*/\1/p' "$out")
	[ -n "$sent" ] && [ "$sent" -gt 0 ] || ig_fail "ig_send $a did not say how much it sent"
	N=$((N + sent))
done
elapsed=$((SECONDS - t0))
ig_pass "both agents got every envelope acknowledged (${N} records in ~${elapsed}s)"
ig_check "the configuration file in force is the last generation" grep -q "^# generation $gen\$" "$cfg"
"$CTL" -s "$url" -o json status >"$IG_TMP/status.json"
python3 - "$IG_TMP/status.json" "$N" <<'PY' || ig_fail "status does not add up"
import json, sys
j, n = json.load(open(sys.argv[1])), int(sys.argv[2])
c = j["config"]
print("records", j["records"], "reloads", c["reloads"], "rejected", c["reload_failures"],
      "last_ok", c["last_reload_ok"])
assert j["records"] == n and j["duplicates"] == 0 and j["malformed"] == 0
assert c["reloads"] == 10 and c["reload_failures"] == 10 and c["last_reload_ok"] is True
PY
ig_pass "status: $N records, 10 reloads, 10 rejected"
ig_stop "$IG_PID_aggregator"

python3 - "$IG_TMP" "$N" "$gen" <<'PY' || ig_fail "the outputs do not reconcile with what was generated"
import collections, json, sys
tmp, n, last_gen = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def lines(name):
    with open("%s/%s.jsonl" % (tmp, name)) as f:
        return [json.loads(l) for l in f if l.strip()]
archive = lines("archive")
paths = collections.Counter(e["tags"]["path"] for e in archive)
dups = {p: k for p, k in paths.items() if k > 1}
gens = collections.Counter(e["tags"]["gen"] for e in archive)
print("archive: %d lines, %d distinct paths, %d duplicated; by generation %s"
      % (len(archive), len(paths), len(dups), dict(sorted(gens.items(), key=lambda x: int(x[0])))))
steady = lines("steady")
steady_sum = sum(e["value"] for e in steady)
print("steady: %d windows, sum %g" % (len(steady), steady_sum))
churn = lines("churn")
churn_gens = collections.Counter()
for e in churn:
    churn_gens[e["tags"]["gen"]] += e["value"]
print("churn: %d flushes, sum %g, by generation %s" % (len(churn), sum(churn_gens.values()),
      dict(sorted(churn_gens.items(), key=lambda x: int(x[0])))))
ok = len(archive) == n and len(paths) == n and not dups
ok &= all(e["name"] == "file.open" and e["tags"]["path"].startswith("/etc/ig-send/agent-") for e in archive)
ok &= steady_sum == n and all(e["tags"] == {} and e["kind"] == "counter" for e in steady)
ok &= sum(churn_gens.values()) == n
# the churn rollup was flushed once per generation that ran (never twice)
ok &= len(churn) == len(churn_gens) and len(churn_gens) >= 3
ok &= last_gen in churn_gens and not any(g.startswith("bad") for g in churn_gens)
sys.exit(0 if ok else 1)
PY
ig_pass "archive: exactly $N lines and distinct paths; steady and churn rollups both sum to $N"
ig_done
