#!/usr/bin/env bash
# S3 archive end to end: the real agent and aggregator, a real S3 server
# (s3rver) behind a proxy that verifies every request's SigV4 signature with
# botocore. A test process opens files; the objects must land under the
# partitioned keys, and reading them back with an independent client (boto3)
# and gunzip must give exactly the events generated, with identity. Then the
# archive is queried the way docs/archive.md says (jq, sqlite3), and SIGTERM
# must flush the open batch.
source "$(dirname "$0")/lib.sh"
source "$IG_SOURCE_DIR/tests/s3/s3lib.sh"
ig_require_root
ig_require_built
ig_s3_require
ig_require_cmd jq
ig_require_cmd sqlite3

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
    endpoint: $IG_S3_URL
    prefix: arch
    cluster: ci
    source: agg-test
    batch_max_records: 25 # the 25 opens close the first batch...
    batch_max_age: 1m     # ...and the next event waits for SIGTERM
    spool_dir: $IG_TMP/spool
    retry_min: 100ms
    retry_max: 1s
YAML
# Credentials from the environment, as a Deployment would set them.
export AWS_ACCESS_KEY_ID=$IG_S3_AK AWS_SECRET_ACCESS_KEY=$IG_S3_SK
ig_start_aggregator "$IG_TMP/config.yaml"
ig_start_agent "$IG_TMP/config.yaml"

args=()
for i in $(seq 0 24); do args+=(open "$mon/f$i" creat --); done
ig_opener "${args[@]:0:${#args[@]}-1}" >"$IG_TMP/opened.jsonl"
pid=$(head -n1 "$IG_TMP/opened.jsonl" | jq .pid)
has_all() { [ "$(ig_s3_count_pid "$pid")" -ge 25 ]; }
ig_wait_for "25 archived events of pid $pid" 30 has_all
sleep 1.5 # a duplicate would show up by now
ig_s3_read >"$IG_TMP/archive.jsonl"

"$IG_PY" - "$IG_TMP/opened.jsonl" "$IG_TMP/archive.jsonl" "$mon" <<'PY'
import json, re, sys, datetime
opened = [json.loads(l) for l in open(sys.argv[1])]
recs = [json.loads(l) for l in open(sys.argv[2])]
pid = opened[0]["pid"]
mine = [r for r in recs if r["tags"].get("pid") == pid]
def fail(m):
    print(json.dumps(mine[:3], indent=1)); sys.exit("FAIL: " + m)
if len(mine) != len(opened):
    fail("expected exactly %d records of pid %d, got %d" % (len(opened), pid, len(mine)))
key_re = re.compile(r"^arch/cluster=ci/date=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/agg-test-[0-9A-HJKMNP-TV-Z]{26}\.jsonl\.gz$")
for r in mine:
    m = key_re.match(r["_key"])
    if not m: fail("key %r does not follow the partition layout" % r["_key"])
    ts = datetime.datetime.strptime(r["ts"][:19], "%Y-%m-%dT%H:%M:%S")
    first_hour = m.group(1), m.group(2)
    if (ts.strftime("%Y-%m-%d"), ts.strftime("%H")) < first_hour:
        fail("record at %s is in an earlier partition than %s" % (r["ts"], r["_key"]))
    if r["name"] != "file.open" or r["kind"] != "counter" or r["value"] != 1 or r["probe"] != "files":
        fail("record header %r" % {k: r[k] for k in ("name", "kind", "value", "probe")})
    for k in ("node", "process", "pid", "tid", "uid", "gid", "cgroup_id", "path", "flags", "ret"):
        if k not in r["tags"]: fail("tag %s missing" % k)
want = sorted((o["path"], o["tid"], o["ret"] >= 0) for o in opened)
got = sorted((r["tags"]["path"], r["tags"]["tid"], r["tags"]["ret"] >= 0) for r in mine)
if want != got: fail("records differ from the opens:\n%r\n%r" % (want[:3], got[:3]))
print("%d records match the %d opens exactly" % (len(mine), len(opened)))
PY
ig_pass "objects under arch/cluster=ci/date=/hour=/agg-test-<ULID>.jsonl.gz hold exactly the events"
ig_check "no request failed the botocore signature check" [ "$(ig_s3_stat 's["rejected"]')" = 0 ]
ig_check "each object was written once" [ "$(ig_s3_stat 'max(s["puts"].values())')" = 1 ]

# The documented queries (docs/archive.md) over a local copy of the archive.
mkdir -p "$IG_TMP/copy"
"$IG_PY" - "$IG_S3_URL" "$IG_TMP/copy" <<'PY'
import boto3, os, sys
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER",
                  config=Config(s3={"addressing_style": "path"}))
for o in s3.list_objects_v2(Bucket="ingrain-archive")["Contents"]:
    dst = os.path.join(sys.argv[2], o["Key"])
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    s3.download_file("ingrain-archive", o["Key"], dst)
PY
target="$mon/f7"
since=$(date -u -d '1 day ago' +%Y-%m-%dT%H:%M:%SZ)
# jq recipe
find "$IG_TMP/copy" -name '*.jsonl.gz' -print0 | xargs -0 zcat |
	jq -r --arg path "$target" --arg since "$since" \
		'select(.name == "file.open" and .tags.path == $path and .ts >= $since)
		 | [.tags.namespace // "-", .tags.pod // "-", .tags.process] | @tsv' |
	sort | uniq -c >"$IG_TMP/jq.out"
cat "$IG_TMP/jq.out"
ig_check "jq recipe finds the process that opened $target" \
	grep -qP '^\s+1 -\t-\tpython3[.0-9]*$' "$IG_TMP/jq.out"
# sqlite3 recipe
find "$IG_TMP/copy" -name '*.jsonl.gz' -print0 | xargs -0 zcat >"$IG_TMP/all.jsonl"
sqlite3 :memory: >"$IG_TMP/sql.out" <<SQL
CREATE TABLE ev(line TEXT);
.mode ascii
.separator "\037" "\n"
.import $IG_TMP/all.jsonl ev
.mode list
SELECT coalesce(line ->> '\$.tags.namespace', '-'), coalesce(line ->> '\$.tags.pod', '-'),
       line ->> '\$.tags.process', count(*)
  FROM ev
 WHERE line ->> '\$.name' = 'file.open' AND line ->> '\$.tags.path' = '$target'
   AND line ->> '\$.ts' >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-1 day')
 GROUP BY 1, 2, 3;
SQL
cat "$IG_TMP/sql.out"
ig_check "sqlite3 recipe finds the same" grep -qxE -e '-\|-\|python3[.0-9]*\|1' "$IG_TMP/sql.out"

# SIGTERM flushes the open batch (its age limit is a minute away).
ig_opener open "$mon/last" creat >"$IG_TMP/last.jsonl"
lpid=$(jq .pid "$IG_TMP/last.jsonl")
ig_stop "$IG_PID_agent" # drains: every record acknowledged by the aggregator
ig_check "the last event is not archived before SIGTERM" [ "$(ig_s3_count_pid "$lpid")" = 0 ]
ig_stop "$IG_PID_aggregator"
ig_check "SIGTERM delivered the open batch" [ "$(ig_s3_count_pid "$lpid")" = 1 ]
ig_check "nothing left in the spool" bash -c "! ls '$IG_TMP/spool' | grep -q batch"
ig_done
