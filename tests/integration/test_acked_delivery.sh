#!/usr/bin/env bash
# Acknowledged delivery: while a process opens thousands of distinct files in
# the monitored directory, the aggregator is killed with SIGKILL and restarted.
# Every open must reach the output exactly once (count and identity): the
# agent keeps unacked envelopes and resends them; the restarted aggregator
# recognises resends of what it had already written (state_dir) and skips them.
source "$(dirname "$0")/lib.sh"
ig_require_root
ig_require_cmd python3
ig_require_built

N=${IG_ACKED_N:-20000}
RATE=${IG_ACKED_RATE:-5000}
port=$(ig_free_port)
mon="$IG_TMP/mon"
out="$IG_TMP/out.jsonl"
mkdir -p "$mon"
ig_files_config "$IG_TMP/config.yaml" "$port" "$mon" "$out" \
	"  ack_timeout: 1s
  reconnect_max: 200ms" \
	"  state_dir: $IG_TMP/state"

ig_start_aggregator "$IG_TMP/config.yaml"
ig_start_agent "$IG_TMP/config.yaml"

ig_opener storm "$mon" "$N" "$RATE" >"$IG_TMP/storm.json" &
storm=$!
sleep 1.5
ig_log "kill -9 aggregator (pid $IG_PID_aggregator) mid-stream"
kill -KILL "$IG_PID_aggregator"
wait "$IG_PID_aggregator" 2>/dev/null || true
sleep 1
ig_start_aggregator "$IG_TMP/config.yaml"
wait "$storm"
pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$IG_TMP/storm.json")

ig_wait_for "$N events from pid $pid" 60 bash -c "[ \$(cat '$out' 2>/dev/null | grep -c '\"pid\":$pid[,}]') -ge $N ]"
sleep 1 # let any duplicate arrive before counting

python3 - "$out" "$pid" "$N" "$mon" <<'PY'
import json, sys, collections
out, pid, n, mon = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
c = collections.Counter()
for line in open(out):
    if not line.strip():
        continue
    e = json.loads(line)
    if e["tags"].get("pid") == pid:
        c[e["tags"]["path"]] += 1
want = {"%s/f%d" % (mon, i) for i in range(n)}
missing = want - set(c)
dups = {p: k for p, k in c.items() if k > 1}
extra = set(c) - want
print("distinct=%d missing=%d duplicated=%d extra=%d" % (len(c), len(missing), len(dups), len(extra)))
if missing or dups or extra:
    print("missing sample:", sorted(missing)[:5], "dups sample:", list(dups.items())[:5])
    sys.exit(1)
PY
ig_pass "all $N opens delivered exactly once across an aggregator SIGKILL + restart"
ig_check "agent resent after the crash" grep -q "disconnected from aggregator" "$IG_TMP/agent.log"
ig_stop "$IG_PID_agent"
ig_check "agent reported no loss" bash -c "grep 'all records acknowledged' '$IG_TMP/agent.log' >/dev/null && ! grep -E 'lost_(ringbuf_full|queue_overflow|rejected|encode)=[1-9]' '$IG_TMP/agent.log'"
ig_stop "$IG_PID_aggregator"
ig_done
