#!/usr/bin/env bash
# Bounded shutdown: two S3 backends and a Datadog backend whose endpoints
# accept connections and never answer (uploads hang in flight), each with
# the default shutdown_timeout of 10 s. SIGTERM must end the aggregator within
# that bound (the backends share it; a request in flight is abandoned), and
# nothing may be lost: restarted against a working S3 (s3rver behind the
# SigV4-checking proxy), every record sent before the SIGTERM is read back
# with boto3, exactly once per backend.
source "$(dirname "$0")/lib.sh"
source "$IG_SOURCE_DIR/tests/s3/s3lib.sh"
ig_require_root
ig_require_built
ig_s3_require

ENVS=20
PER=50
hole=$(ig_free_port)
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)  # read nothing, answer nothing
' "$hole" &
IG_PIDS+=("$!")
ig_s3_start ingrain-shutdown
port=$(ig_free_port)
config() { # ENDPOINT
	cat <<YAML
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  state_dir: $IG_TMP/state
  control: ""
probes:
  files:
    pipelines: [p]
pipelines:
  p:
    stages: []
    backends: [a, b, dd]
backends:
  a: {type: s3, bucket: ingrain-shutdown, endpoint: "$1", prefix: a, source: agg,
      batch_max_records: 100, spool_dir: "$IG_TMP/spool-a", retry_min: 100ms, retry_max: 1s}
  b: {type: s3, bucket: ingrain-shutdown, endpoint: "$1", prefix: b, source: agg,
      batch_max_records: 100, spool_dir: "$IG_TMP/spool-b", retry_min: 100ms, retry_max: 1s}
  dd: {type: datadog, api_key: k, url: "http://127.0.0.1:$hole", flush_interval: 200ms,
       spool_dir: "$IG_TMP/spool-dd", retry_min: 100ms, retry_max: 1s}
YAML
}
config "http://127.0.0.1:$hole" >"$IG_TMP/hole.yaml"
config "$IG_S3_URL" >"$IG_TMP/s3.yaml"
export AWS_ACCESS_KEY_ID=$IG_S3_AK AWS_SECRET_ACCESS_KEY=$IG_S3_SK
ig_start_aggregator "$IG_TMP/hole.yaml"
ig_check "all $ENVS envelopes acked ok" "$IG_SEND" "tcp://127.0.0.1:$port" --valid "$ENVS" "$PER" shutdown-test
ig_wait_for "uploads in flight to the black hole" 10 bash -c "grep -q 'batch closed\|s3 backend ready' '$IG_TMP/aggregator.log'"
sleep 1
t0=$(date +%s.%N)
kill -TERM "$IG_PID_aggregator"
wait "$IG_PID_aggregator"
t1=$(date +%s.%N)
took=$(python3 -c "print('%.1f' % ($t1 - $t0))")
ig_log "SIGTERM to exit: ${took} s (shutdown_timeout 10 s, three backends stuck)"
ig_check "shutdown within shutdown_timeout (+1.5 s)" python3 -c "import sys; sys.exit(0 if $took <= 11.5 else 1)"
ig_check "what was not delivered stayed in the spools" \
	grep -q 'batches not yet delivered stay in the spool' "$IG_TMP/aggregator.log"

ig_start_aggregator "$IG_TMP/s3.yaml"
complete() { [ "$(ig_s3_read | wc -l)" -ge $((2 * ENVS * PER)) ]; }
ig_wait_for "both archives complete" 60 complete
sleep 1
ig_s3_read >"$IG_TMP/archive.jsonl"
"$IG_PY" - "$IG_TMP/archive.jsonl" "$ENVS" "$PER" <<'PY'
import json, sys, collections
envs, per = int(sys.argv[2]), int(sys.argv[3])
c = collections.Counter()
for l in open(sys.argv[1]):
    r = json.loads(l)
    c[(r["_key"].split("/")[0], r["tags"]["path"])] += 1
for b in ("a", "b"):
    paths = {p for (pre, p) in c if pre == b}
    reps = sum(k - 1 for (pre, _), k in c.items() if pre == b and k > 1)
    print("backend %s: %d distinct records, %d repeated (sent %d)" % (b, len(paths), reps, envs * per))
    if len(paths) != envs * per or reps:
        sys.exit("FAIL: backend %s lost or repeated records" % b)
PY
ig_pass "every record reached S3 exactly once per backend after the bounded shutdown"
ig_stop "$IG_PID_aggregator"
ig_done
