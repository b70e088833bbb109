#!/usr/bin/env bash
# Acked means durable, with an S3 pipeline: while a process opens files, the
# aggregator is killed with SIGKILL ten times and restarted each time. Its S3
# batch stays open the whole run (batch_max_age 1 min), so every record the
# aggregator acked before a crash exists only in the batch's journal. At the
# end the archive is read back with boto3 through the SigV4-verifying proxy
# and reconciled exactly: every open the test made is stored, and a record
# may repeat only as part of the one envelope per crash that the aggregator
# journaled but had not yet recorded as accepted (docs/architecture.md); the
# agent's own loss counters must be zero, so generated = delivered.
source "$(dirname "$0")/lib.sh"
source "$IG_SOURCE_DIR/tests/s3/s3lib.sh"
ig_require_root
ig_require_built
ig_s3_require

N=${IG_CRASH_N:-6000}
RATE=${IG_CRASH_RATE:-500}
KILLS=${IG_CRASH_KILLS:-10}
PER_ENV=64 # agent batch_max_records: the size of one envelope at most
ig_s3_start ingrain-crash
port=$(ig_free_port)
mon="$IG_TMP/mon"
mkdir -p "$mon"
cat >"$IG_TMP/config.yaml" <<YAML
agent:
  aggregator: tcp://127.0.0.1:$port
  plaintext: true
  batch_max_age: 50ms
  batch_max_records: $PER_ENV
  ack_timeout: 1s
  reconnect_max: 200ms
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  state_dir: $IG_TMP/state
  control: ""
probes:
  files:
    monitor_dirs: ["$mon"]
    pipelines: [s3]
pipelines:
  s3:
    stages: []
    backends: [archive]
backends:
  archive:
    type: s3
    bucket: ingrain-crash
    endpoint: $IG_S3_URL
    prefix: crash
    source: agg
    batch_max_records: 1000000
    batch_max_age: 1m
    spool_dir: $IG_TMP/spool
    retry_min: 100ms
    retry_max: 1s
YAML
export AWS_ACCESS_KEY_ID=$IG_S3_AK AWS_SECRET_ACCESS_KEY=$IG_S3_SK
ig_start_aggregator "$IG_TMP/config.yaml"
ig_start_agent "$IG_TMP/config.yaml"

ig_opener storm "$mon" "$N" "$RATE" >"$IG_TMP/storm.json" &
storm=$!
for k in $(seq "$KILLS"); do
	sleep 0.8
	ig_log "kill -9 #$k of the aggregator (pid $IG_PID_aggregator)"
	kill -KILL "$IG_PID_aggregator"
	wait "$IG_PID_aggregator" 2>/dev/null || true
	ig_start_aggregator "$IG_TMP/config.yaml"
done
wait "$storm"
pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$IG_TMP/storm.json")
# Every record acknowledged: the agent drains its queue on SIGTERM.
ig_stop "$IG_PID_agent"
ig_check "agent: all records acknowledged, no loss counted" bash -c \
	"grep -q 'all records acknowledged' '$IG_TMP/agent.log' && ! grep -E 'lost_[a-z_]+=[1-9]' '$IG_TMP/agent.log'"
# SIGTERM closes the open batch and uploads it.
ig_stop "$IG_PID_aggregator"
ig_check "the journals of the crashed runs were recovered" \
	grep -q 'open batch of an earlier run recovered from its journal' "$IG_TMP/aggregator.log"
ig_s3_read >"$IG_TMP/archive.jsonl"

"$IG_PY" - "$IG_TMP/archive.jsonl" "$pid" "$N" "$mon" "$KILLS" "$PER_ENV" <<'PY'
import json, sys, collections
arch, pid, n, mon, kills, per_env = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
c = collections.Counter()
objs = set()
for line in open(arch):
    r = json.loads(line)
    if r["tags"].get("pid") == pid:
        c[r["tags"]["path"]] += 1
        objs.add(r["_key"])
want = {"%s/f%d" % (mon, i) for i in range(n)}
missing = want - set(c)
extra = set(c) - want
repeats = sum(k - 1 for k in c.values() if k > 1)
print("generated=%d stored_distinct=%d missing=%d repeated_records=%d objects=%d extra=%d"
      % (n, len(c), len(missing), repeats, len(objs), len(extra)))
if missing or extra:
    print("missing sample:", sorted(missing)[:5])
    sys.exit("FAIL: acked records missing from S3")
if repeats > kills * per_env:
    sys.exit("FAIL: %d repeated records: more than one envelope (%d) per crash" % (repeats, per_env))
PY
ig_pass "all $N opens in S3 across $KILLS aggregator SIGKILLs (at most one envelope repeated per crash)"
ig_check "no request failed the botocore signature check" [ "$(ig_s3_stat 's["rejected"]')" = 0 ]
ig_check "nothing left in the spool" bash -c "! ls '$IG_TMP/spool' | grep -qE 'batch|journal'"
ig_done
