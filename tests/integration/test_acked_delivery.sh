#!/usr/bin/env bash
# Acknowledged delivery: while a process opens thousands of distinct files in
# the monitored directory, the aggregator is killed with SIGKILL and restarted.
# Every open must reach the output (count and identity), none lost: the agent
# keeps unacked envelopes and resends them; the restarted aggregator
# recognises resends of what it had already written (state_dir) and skips
# them. The one duplicate docs/wire-format.md allows: the envelope the
# aggregator was writing when it was killed (written, or partly written,
# before its seq was persisted) is written again whole after the resend; so
# duplicates, if any, are one run of consecutive opens, each twice, at most
# one envelope (batch_max_records = 512) long.
# Before the crash the aggregator is stalled (SIGSTOP) past the agent's
# ack_timeout, so that resends and duplicate answers certainly occur; the
# test asserts both from the agent's counters. Every step waits on state.
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
lines() { wc -l <"$out" 2>/dev/null || echo 0; }
ig_wait_for "the first 2000 events in the output" 30 bash -c "[ \$(wc -l <'$out' 2>/dev/null || echo 0) -ge 2000 ]"

# A stalled aggregator: the agent's envelope gets no ack in ack_timeout and is
# resent; when the aggregator runs again it writes the first copy and answers
# the resend "duplicate" (state_dir knows the seq).
ig_log "SIGSTOP aggregator (pid $IG_PID_aggregator)"
kill -STOP "$IG_PID_aggregator"
ig_wait_for "the agent to resend after the ack timeout" 15 grep -q "no ack from aggregator in time; resending" "$IG_TMP/agent.log"
kill -CONT "$IG_PID_aggregator"
at_cont=$(lines)

# A crashed aggregator mid-stream: unacked envelopes are resent to the new one.
ig_wait_for "more events after SIGCONT" 30 bash -c "[ \$(wc -l <'$out' 2>/dev/null || echo 0) -ge $((at_cont + 2000)) ]"
ig_log "kill -9 aggregator (pid $IG_PID_aggregator) mid-stream"
kill -KILL "$IG_PID_aggregator"
wait "$IG_PID_aggregator" 2>/dev/null || true
ig_wait_for "the agent to see the aggregator gone" 15 grep -q "disconnected from aggregator" "$IG_TMP/agent.log"
ig_start_aggregator "$IG_TMP/config.yaml"
wait "$storm"
pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$IG_TMP/storm.json")

ig_wait_for "$N events from pid $pid" 60 bash -c "[ \$(cat '$out' 2>/dev/null | grep -c '\"pid\":$pid[,}]') -ge $N ]"
# Drained: the agent exits once everything is acknowledged, the aggregator
# once its backends are flushed; whatever was resent has arrived by then.
ig_stop "$IG_PID_agent"
ig_stop "$IG_PID_aggregator"

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
bad = bool(missing or extra)
if dups:
    idx = sorted(int(p.rsplit("/f", 1)[1]) for p in dups if p in want)
    one_run = len(idx) == len(dups) and idx[-1] - idx[0] + 1 == len(idx)
    twice = all(k == 2 for k in dups.values())
    print("duplicates: f%d..f%d, %d opens, each twice: %s, one run: %s"
          % (idx[0], idx[-1], len(idx), twice, one_run) if idx else "duplicates outside the set")
    if not (one_run and twice and len(idx) <= 512):
        print("more than the one envelope in flight at the crash was duplicated")
        bad = True
if bad:
    print("missing sample:", sorted(missing)[:5], "dups sample:", list(dups.items())[:5])
    sys.exit(1)
PY
ig_pass "all $N opens delivered across an aggregator SIGKILL + restart, none lost, at most the envelope in flight at the crash twice"
stats=$(grep 'msg="stats"' "$IG_TMP/agent.log" | tail -n 1)
ig_log "agent: $stats"
ig_check "the agent resent envelopes (stall and crash)" grep -Eq ' resends=[1-9]' <<<"$stats"
ig_check "the aggregator answered resends of what it had written as duplicates" grep -Eq ' duplicates=[1-9]' <<<"$stats"
ig_check "agent reported no loss" bash -c "grep 'all records acknowledged' '$IG_TMP/agent.log' >/dev/null && ! grep -E 'lost_(ringbuf_full|queue_overflow|rejected|encode)=[1-9]' '$IG_TMP/agent.log'"
ig_done
