#!/usr/bin/env bash
# The agent's unacknowledged queue survives its own crash (agent.buffer_dir).
# With the aggregator down, a process opens N files; the agent queues them
# (in memory and in its disk buffer) and is killed with SIGKILL. A new agent
# is started, then the aggregator: every open must arrive exactly once.
# Then a second round with a damaged buffer: the last segment is cut in the
# middle of its last frame (as a machine crash during the write would), and
# the records of that frame must be counted (buffer_corrupt), the rest
# delivered: generated = delivered + counted lost, in both rounds. The
# restart gap (no agent running) is measured and printed.
source "$(dirname "$0")/lib.sh"
ig_require_root
ig_require_cmd python3
ig_require_cmd curl
ig_require_built

N=${IG_BUF_N:-5000}
M=${IG_BUF_M:-2000}
port=$(ig_free_port)
mport=$(ig_free_port)
mon="$IG_TMP/mon"
out="$IG_TMP/out.jsonl"
buf="$IG_TMP/agent-buffer"
mkdir -p "$mon"
ig_files_config "$IG_TMP/config.yaml" "$port" "$mon" "$out" \
	"  ack_timeout: 500ms
  reconnect_max: 200ms
  metrics_listen: 127.0.0.1:$mport
  buffer_dir: $buf" \
	"  state_dir: $IG_TMP/state"
buffered() { curl -sf "http://127.0.0.1:$mport/metrics" | awk '$1 == "ingrain_agent_buffer_records" {print $2}'; }
have_buffered() { [ "$(buffered)" = "$1" ]; }
count_pid() { grep -c "\"pid\":$1[,}]" "$out" 2>/dev/null || true; }

round() { # NAME COUNT DAMAGE(0|1)
	local name=$1 n=$2 damage=$3
	ig_start_agent "$IG_TMP/config.yaml" --buffer-dir "$buf"
	mkdir -p "$mon/$name"
	ig_opener storm "$mon/$name" "$n" 2000 >"$IG_TMP/$name.json"
	ig_wait_for "agent holds $n records in its buffer" 30 have_buffered "$n"
	kill -KILL "$IG_PID_agent"
	wait "$IG_PID_agent" 2>/dev/null || true
	local t_kill
	t_kill=$(date +%s.%N)
	ls "$buf"/*.seg >/dev/null || ig_fail "no buffer segment on disk after the crash"
	if [ "$damage" = 1 ]; then
		local seg
		seg=$(ls "$buf"/*.seg | sort | tail -n1)
		truncate -s -7 "$seg" # the last frame loses its last 7 bytes
	fi
	ig_start_agent "$IG_TMP/config.yaml" --buffer-dir "$buf"
	local t_up
	t_up=$(date +%s.%N)
	ig_log "restart gap (SIGKILL to the new agent running): $(python3 -c "print('%.2f' % ($t_up - $t_kill))") s"
	ig_check "the new agent replayed the old one's buffer" grep -q "unacknowledged envelopes of an earlier run queued" "$IG_TMP/agent.log"
}

# Round 1: a clean crash.
round one "$N" 0
ig_start_aggregator "$IG_TMP/config.yaml"
pid1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$IG_TMP/one.json")
ig_wait_for "$N events of pid $pid1" 60 bash -c "[ \$(grep -c '\"pid\":$pid1[,}]' '$out') -ge $N ]"
ig_stop "$IG_PID_agent"
ig_stop "$IG_PID_aggregator"
python3 - "$out" "$pid1" "$N" "$mon/one" <<'PY'
import json, sys, collections
out, pid, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
c = collections.Counter(json.loads(l)["tags"]["path"] for l in open(out) if l.strip() and json.loads(l)["tags"].get("pid") == pid)
want = {"%s/f%d" % (d, i) for i in range(n)}
missing, dups = want - set(c), sum(k - 1 for k in c.values() if k > 1)
print("round 1: generated=%d delivered=%d missing=%d duplicated=%d" % (n, len(c), len(missing), dups))
sys.exit(1 if missing or dups or set(c) - want else 0)
PY
ig_pass "round 1: all $N records queued before the agent's SIGKILL delivered exactly once"

# Round 2: the crash tore the last frame of the buffer.
round two "$M" 1
ig_check "the torn frame was detected" grep -q "segment ends in a torn or corrupt frame" "$IG_TMP/agent.log"
ig_start_aggregator "$IG_TMP/config.yaml"
pid2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$IG_TMP/two.json")
lost=$(grep -o 'records_lost=[0-9]*' "$IG_TMP/agent.log" | tail -n1 | cut -d= -f2)
ig_check "the torn frame's records are counted ($lost)" test "$lost" -gt 0
want=$((M - lost))
ig_wait_for "$want events of pid $pid2" 60 bash -c "[ \$(grep -c '\"pid\":$pid2[,}]' '$out') -ge $want ]"
ig_stop "$IG_PID_agent"
ig_check "the agent reported lost_buffer_corrupt=$lost" grep -q "lost_buffer_corrupt=$lost " "$IG_TMP/agent.log"
ig_check "the aggregator saw the agent's buffer_corrupt count" grep -q "buffer_corrupt=$lost" "$IG_TMP/aggregator.log"
ig_stop "$IG_PID_aggregator"
python3 - "$out" "$pid2" "$M" "$lost" "$mon/two" <<'PY'
import json, sys, collections
out, pid, m, lost, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
c = collections.Counter(json.loads(l)["tags"]["path"] for l in open(out) if l.strip() and json.loads(l)["tags"].get("pid") == pid)
dups = sum(k - 1 for k in c.values() if k > 1)
print("round 2: generated=%d delivered=%d counted_lost=%d duplicated=%d" % (m, len(c), lost, dups))
sys.exit(0 if len(c) + lost == m and not dups else 1)
PY
ig_pass "round 2: generated = delivered + counted lost ($M = $((M - lost)) + $lost)"
ig_check "the buffer is empty once everything is acked" bash -c "! ls '$buf'/*.seg 2>/dev/null | xargs -r cat | grep -q ."
ig_done
