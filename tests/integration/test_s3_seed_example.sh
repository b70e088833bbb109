#!/usr/bin/env bash
# The seed's own example, as written, translated to ingrain's YAML: the files
# probe on "/" feeds pipeline s3: Whitelist allow = ["process", "s_ip",
# "d_port", "path"], then Regex {key: process, regex: 'conn\d+',
# replace_with: docker_conn_proxy}, then the S3 backend with credentials from
# the environment. A process named conn42 opens files; the archived records
# (read back with boto3 through the SigV4-verifying proxy) must hold exactly
# the whitelisted tags, with the process name rewritten.
source "$(dirname "$0")/lib.sh"
source "$IG_SOURCE_DIR/tests/s3/s3lib.sh"
ig_require_root
ig_require_built
ig_s3_require

ig_s3_start ingrain-seed
port=$(ig_free_port)
mon="$IG_TMP/seed-example"
mkdir -p "$mon"
cat >"$IG_TMP/config.yaml" <<YAML
agent:
  aggregator: tcp://127.0.0.1:$port
  plaintext: true
  batch_max_age: 50ms
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  state_dir: $IG_TMP/state
  control: ""
probes:
  files:
    monitor_dirs: ["/"]
    pipelines: [s3]
pipelines:
  s3:
    stages:
      - type: whitelist
        allow: ["process", "s_ip", "d_port", "path"]
      - type: regex
        rules:
          - {key: process, regex: 'conn\d+', replace_with: docker_conn_proxy}
    backends: [s3]
backends:
  s3:
    type: s3
    bucket: ingrain-seed
    endpoint: $IG_S3_URL
    prefix: seed
    cluster: ci
    batch_max_age: 1s
    spool_dir: $IG_TMP/spool
    retry_min: 100ms
    retry_max: 1s
YAML
export AWS_ACCESS_KEY_ID=$IG_S3_AK AWS_SECRET_ACCESS_KEY=$IG_S3_SK
ig_start_aggregator "$IG_TMP/config.yaml"
ig_start_agent "$IG_TMP/config.yaml"

python3 - "$mon" <<'PY'
import ctypes, os, sys
ctypes.CDLL(None).prctl(15, b"conn42", 0, 0, 0)  # PR_SET_NAME: comm = conn42
for i in range(5):
    os.close(os.open(os.path.join(sys.argv[1], "f%d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
PY
have_all() { [ "$(ig_s3_read | grep -c "$mon/f")" -ge 5 ]; }
ig_wait_for "the 5 opens archived" 30 have_all
ig_stop "$IG_PID_agent"
ig_stop "$IG_PID_aggregator"
ig_s3_read >"$IG_TMP/archive.jsonl"
python3 - "$IG_TMP/archive.jsonl" "$mon" <<'PY'
import json, sys
mon = sys.argv[2]
mine = [r for r in map(json.loads, open(sys.argv[1])) if r["tags"].get("path", "").startswith(mon + "/")]
if sorted(r["tags"]["path"] for r in mine) != ["%s/f%d" % (mon, i) for i in range(5)]:
    sys.exit("FAIL: archived paths %r" % [r["tags"].get("path") for r in mine])
for r in mine:
    if set(r["tags"]) != {"process", "path"}:
        sys.exit("FAIL: tags after the whitelist should be process and path only: %r" % r["tags"])
    if r["tags"]["process"] != "docker_conn_proxy":
        sys.exit("FAIL: process not rewritten: %r" % r["tags"]["process"])
print("5 records: tags exactly {process, path}, process rewritten conn42 -> docker_conn_proxy")
PY
ig_pass "the seed example (files -> whitelist -> regex -> S3) archives what its pipeline outputs"
ig_done
