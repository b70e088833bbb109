#!/usr/bin/env bash
# S3 delivery under failure, against s3rver behind the botocore-verifying
# proxy, with the real agent and aggregator. Each phase generates 10 events
# (one batch) and checks the exact count archived afterwards:
#   A. wrong secret key: 403 SignatureDoesNotMatch, a clear error, no retry,
#      the batch kept in the spool; restarted with the right key, delivered.
#   B. S3 down for a while: retried with backoff, delivered when it is back.
#   C. S3 killed mid-upload (connection cut halfway through the body):
#      retried, the object written once.
#   D. SIGTERM while S3 is down: the open batch goes to the spool, the
#      aggregator exits 0, the next start delivers it.
source "$(dirname "$0")/lib.sh"
source "$IG_SOURCE_DIR/tests/s3/s3lib.sh"
ig_require_root
ig_require_built
ig_s3_require

ig_s3_start ingrain-archive
port=$(ig_free_port)
mon="$IG_TMP/mon"
mkdir -p "$mon"/{a,b,c,d}
cat >"$IG_TMP/config.yaml" <<YAML
agent:
  aggregator: tcp://127.0.0.1:$port
  plaintext: true
  batch_max_age: 50ms
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  state_dir: $IG_TMP/state
  control: ipc://$IG_TMP/control.sock
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
    bucket: ingrain-archive
    endpoint: $IG_S3_URL
    batch_max_records: 10
    batch_max_age: 1m
    spool_dir: $IG_TMP/spool
    retry_min: 100ms
    retry_max: 500ms
    shutdown_timeout: 2s
    index_tags: [] # the checks count spooled batches: no index objects beside them
YAML
export AWS_ACCESS_KEY_ID=$IG_S3_AK
spooled() { ls "$IG_TMP/spool" 2>/dev/null | grep -c '\.batch$' || true; }
archived() { ig_s3_count_pid "$1"; }
wait_archived() { # PID COUNT
	local pid=$1 n=$2
	has() { [ "$(archived "$pid")" -ge "$n" ]; }
	ig_wait_for "$n archived events of pid $pid" 30 has
	sleep 1 # duplicates would show by now
	ig_check "exactly $n archived events of pid $pid" [ "$(archived "$pid")" = "$n" ]
}
restart_aggregator() {
	ig_stop "$IG_PID_aggregator"
	ig_start_aggregator "$IG_TMP/config.yaml"
}

# --- A: wrong credentials --------------------------------------------------
AWS_SECRET_ACCESS_KEY=wrong-secret ig_start_aggregator "$IG_TMP/config.yaml"
ig_start_agent "$IG_TMP/config.yaml"
ig_opener storm "$mon/a" 10 >"$IG_TMP/a.jsonl"
pid_a=$(head -n1 "$IG_TMP/a.jsonl" | cut -d, -f1 | tr -dc 0-9)
ig_wait_for "the aggregator reports the refused request" 20 \
	grep -q "delivery stopped" "$IG_TMP/aggregator.log"
line=$(grep "delivery stopped" "$IG_TMP/aggregator.log" | head -n1)
ig_check "the error names SignatureDoesNotMatch and says what to check" \
	bash -c "grep -q SignatureDoesNotMatch <<<'$line' && grep -q 'check the access key' <<<'$line'"
rejected=$(ig_s3_stat 's["rejected"]')
sleep 1.5 # retry_max is 500ms: a retry would have happened
ig_check "no retry after an auth error" [ "$(ig_s3_stat 's["rejected"]')" = "$rejected" ]
ig_check "the batch is kept in the spool" [ "$(spooled)" = 1 ]
ig_check "nothing was stored" [ "$(ig_s3_stat 'len(s["puts"])')" = 0 ]
export AWS_SECRET_ACCESS_KEY=$IG_S3_SK
restart_aggregator
wait_archived "$pid_a" 10
ig_check "the spool is empty again" [ "$(spooled)" = 0 ]

# --- B: S3 down for a while --------------------------------------------------
ig_s3_proxy_stop
ig_opener storm "$mon/b" 10 >"$IG_TMP/b.jsonl"
pid_b=$(head -n1 "$IG_TMP/b.jsonl" | cut -d, -f1 | tr -dc 0-9)
ig_wait_for "a failed attempt is logged" 20 grep -q "will retry" "$IG_TMP/aggregator.log"
ig_check "the batch waits in the spool" [ "$(spooled)" = 1 ]
sleep 1.5 # several backoff rounds
ig_s3_proxy_start
wait_archived "$pid_b" 10

# --- C: S3 killed mid-upload ------------------------------------------------
ig_s3_ctl "/__ctl/cut?count=1" >/dev/null
ig_opener storm "$mon/c" 10 >"$IG_TMP/c.jsonl"
pid_c=$(head -n1 "$IG_TMP/c.jsonl" | cut -d, -f1 | tr -dc 0-9)
wait_archived "$pid_c" 10
ig_check "the cut upload happened" [ "$(ig_s3_stat 's["cut"]')" = 0 ]
ig_check "every object was written once (retries reuse the key)" \
	[ "$(ig_s3_stat 'max(s["puts"].values())')" = 1 ]

# --- D: SIGTERM while S3 is down ----------------------------------------------
ig_s3_proxy_stop
ig_opener storm "$mon/d" 5 >"$IG_TMP/d.jsonl" # half a batch: still open
pid_d=$(head -n1 "$IG_TMP/d.jsonl" | cut -d, -f1 | tr -dc 0-9)
ig_stop "$IG_PID_agent" # drains into the aggregator
start=$SECONDS
ig_stop "$IG_PID_aggregator"
ig_check "shutdown gave up after shutdown_timeout, not later" [ $((SECONDS - start)) -le 6 ]
ig_check "the open batch went to the spool" [ "$(spooled)" = 1 ]
ig_s3_proxy_start
ig_start_aggregator "$IG_TMP/config.yaml"
wait_archived "$pid_d" 5
ig_check "no request failed the signature check since the key was fixed" \
	[ "$(ig_s3_stat 's["rejected"]')" = 0 ] # (the proxy restarted since phase A)
ig_stop "$IG_PID_aggregator"
ig_done
