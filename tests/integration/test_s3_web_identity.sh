#!/usr/bin/env bash
# S3 credentials from a web identity (EKS IRSA): with no static keys, the
# backend reads AWS_WEB_IDENTITY_TOKEN_FILE, exchanges the token at STS
# (AssumeRoleWithWebIdentity; the verifying proxy stands in for STS) and
# signs with the temporary key and session token; the proxy accepts only
# requests that carry a token it issued, and checks the signature.
source "$(dirname "$0")/lib.sh"
source "$IG_SOURCE_DIR/tests/s3/s3lib.sh"
ig_require_root
ig_require_built
ig_s3_require

ig_s3_start ingrain-archive --web-identity-token projected-token-123
# The proxy now only accepts session tokens it issued: read back from s3rver.
IG_S3_READ_URL=http://127.0.0.1:$IG_S3RVER_PORT
port=$(ig_free_port)
mon="$IG_TMP/mon"
mkdir -p "$mon"
printf 'projected-token-123\n' >"$IG_TMP/token"
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
    sts_endpoint: $IG_S3_URL
    batch_max_records: 5
    spool_dir: $IG_TMP/spool
    retry_min: 100ms
    retry_max: 500ms
YAML
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
export AWS_ROLE_ARN=arn:aws:iam::123456789012:role/ingrain-archive
export AWS_WEB_IDENTITY_TOKEN_FILE=$IG_TMP/token
ig_start_aggregator "$IG_TMP/config.yaml"
ig_check "the backend says it uses a web identity" grep -q "credentials=web-identity" "$IG_TMP/aggregator.log"
ig_start_agent "$IG_TMP/config.yaml"
ig_opener storm "$mon" 5 >"$IG_TMP/opened.jsonl"
pid=$(head -n1 "$IG_TMP/opened.jsonl" | cut -d, -f1 | tr -dc 0-9)
has() { [ "$(ig_s3_count_pid "$pid")" -ge 5 ]; }
ig_wait_for "5 archived events" 30 has
ig_check "exactly 5 archived events" [ "$(ig_s3_count_pid "$pid")" = 5 ]
ig_check "STS issued temporary credentials" [ "$(ig_s3_stat 's["sts_issued"]')" -ge 1 ]
ig_check "no request was refused" [ "$(ig_s3_stat 's["rejected"]')" = 0 ]
ig_stop "$IG_PID_agent"
ig_stop "$IG_PID_aggregator"

# A token STS refuses: a clear error, the batch stays spooled.
printf 'stolen-token\n' >"$IG_TMP/token"
ig_start_aggregator "$IG_TMP/config.yaml"
ig_start_agent "$IG_TMP/config.yaml"
ig_opener storm "$mon" 5 >"$IG_TMP/opened2.jsonl"
ig_wait_for "the refusal is reported" 20 grep -q "InvalidIdentityToken" "$IG_TMP/aggregator.log"
ig_check "the batch is kept in the spool" bash -c "ls '$IG_TMP/spool' | grep -q batch"
ig_stop "$IG_PID_agent"
ig_stop "$IG_PID_aggregator"
ig_done
