#!/usr/bin/env bash
# Virtual-hosted-style S3 (the bucket in the host name, AWS's default) with
# the msgpack format: requests go to <bucket>.s3.localhost (curl resolves
# *.localhost to the loopback), the proxy verifies each signature with
# botocore over that Host, and s3rver stores the objects in the bucket.
source "$(dirname "$0")/lib.sh"
source "$IG_SOURCE_DIR/tests/s3/s3lib.sh"
ig_require_root
ig_require_built
ig_s3_require

ig_s3_start ingrain-archive
port=$(ig_free_port)
mon="$IG_TMP/mon"
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
    endpoint: http://s3.localhost:$IG_S3_PORT
    addressing: virtual
    format: msgpack
    checksum: sha256
    batch_max_records: 6
    spool_dir: $IG_TMP/spool
    retry_min: 100ms
    retry_max: 500ms
YAML
export AWS_ACCESS_KEY_ID=$IG_S3_AK AWS_SECRET_ACCESS_KEY=$IG_S3_SK
ig_start_aggregator "$IG_TMP/config.yaml"
ig_start_agent "$IG_TMP/config.yaml"
ig_opener storm "$mon" 6 >"$IG_TMP/opened.jsonl"
pid=$(head -n1 "$IG_TMP/opened.jsonl" | cut -d, -f1 | tr -dc 0-9)
stored() { [ "$(ig_s3_stat 'len(s["puts"])')" -ge 1 ]; }
ig_wait_for "an object stored through the virtual-hosted endpoint" 30 stored
ig_check "every request passed the botocore check with Host ingrain-archive.s3.localhost" \
	[ "$(ig_s3_stat 's["rejected"]')" = 0 ]
# Read back from s3rver with boto3 and decode the msgpack stream with a
# minimal decoder written here (independent of msgpack-c).
"$IG_PY" - "http://127.0.0.1:$IG_S3RVER_PORT" "$pid" <<'PY'
import boto3, gzip, struct, sys
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER",
                  config=Config(s3={"addressing_style": "path"}))
def dec(b, i):
    t = b[i]
    if t <= 0x7f: return t, i + 1
    if 0x80 <= t <= 0x8f: return dmap(b, i + 1, t & 15)
    if 0xa0 <= t <= 0xbf: n = t & 31; return b[i+1:i+1+n].decode(), i + 1 + n
    if t == 0xc0: return None, i + 1
    if t in (0xc2, 0xc3): return t == 0xc3, i + 1
    if t == 0xcb: return struct.unpack(">d", b[i+1:i+9])[0], i + 9
    if t in (0xcc, 0xcd, 0xce, 0xcf):
        n = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[t]; return int.from_bytes(b[i+1:i+1+n], "big"), i + 1 + n
    if t in (0xd0, 0xd1, 0xd2, 0xd3):
        n = {0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8}[t]; return int.from_bytes(b[i+1:i+1+n], "big", signed=True), i + 1 + n
    if t >= 0xe0: return t - 256, i + 1
    if t in (0xd9, 0xda, 0xdb):
        n = {0xd9: 1, 0xda: 2, 0xdb: 4}[t]; l = int.from_bytes(b[i+1:i+1+n], "big")
        return b[i+1+n:i+1+n+l].decode(), i + 1 + n + l
    if t == 0xde: return dmap(b, i + 3, int.from_bytes(b[i+1:i+3], "big"))
    raise SystemExit("FAIL: msgpack type 0x%x not expected" % t)
def dmap(b, i, n):
    d = {}
    for _ in range(n):
        k, i = dec(b, i); v, i = dec(b, i); d[k] = v
    return d, i
recs = []
for o in s3.list_objects_v2(Bucket="ingrain-archive")["Contents"]:
    if not o["Key"].endswith(".msgpack.gz"): raise SystemExit("FAIL: key %s" % o["Key"])
    b = gzip.decompress(s3.get_object(Bucket="ingrain-archive", Key=o["Key"])["Body"].read())
    i = 0
    while i < len(b):
        r, i = dec(b, i); recs.append(r)
mine = [r for r in recs if r["tags"].get("pid") == int(sys.argv[2])]
if len(mine) != 6: raise SystemExit("FAIL: %d msgpack records of the pid, want 6" % len(mine))
if any(r["name"] != "file.open" or r["value"] != 1 or "path" not in r["tags"] for r in mine):
    raise SystemExit("FAIL: record content %r" % mine[0])
print("6 msgpack records decoded")
PY
ig_pass "the msgpack objects hold the 6 events with the JSON schema"
ig_stop "$IG_PID_agent"
ig_stop "$IG_PID_aggregator"
ig_done
