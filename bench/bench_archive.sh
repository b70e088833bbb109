#!/usr/bin/env bash
# bench_archive.sh: `ingrainctl archive query` over a generated archive, the
# indexed query and the full scan side by side in one run.
#
# The archive (bench_archive_gen): HOURS hourly partitions (default 24) of
# PER_HOUR objects (default 12) of OBJ_MIB MiB uncompressed (default 4):
# 24 x 12 x 4 MiB = 1152 MiB of records, gzip'd, each object with its index.
# /etc/needle-secret occurs in NEEDLES objects (default 2 of 288: 0.7%). It is
# uploaded to s3rver (npm, as in the tests), queried directly (the tests'
# SigV4-checking proxy is a Python process that buffers every body: it
# would measure itself). R rounds (default 3), interleaved:
#   indexed    path=/etc/needle-secret over the whole window
#   full scan  the same with --no-index (every object fetched and parsed)
# Reported: median wall time, ingrainctl's CPU time (user+sys), bytes read,
# the share of the archive's bytes the indexed query read, the speed-up, and
# the full scan's uncompressed MB/s per CPU second of ingrainctl.
#
#   bench/bench_archive.sh [HOURS PER_HOUR OBJ_MIB NEEDLES [ROUNDS]]   (after building)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
B=${IG_BUILD_DIR:-$here/build}
HOURS=${1:-24}
PER_HOUR=${2:-12}
OBJ_MIB=${3:-4}
NEEDLES=${4:-2}
R=${5:-3}
S3RVER=$B/testtools/node_modules/s3rver/bin/s3rver.js
[ -f "$S3RVER" ] || { echo "bench_archive: s3rver missing (scripts/install-deps.sh --test)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/ingrain-bench-archive.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

echo "generating $HOURS x $PER_HOUR objects of $OBJ_MIB MiB..."
t0=$(date +%s.%N)
gen=$("$B/bench/bench_archive_gen" "$tmp/gen" "$HOURS" "$PER_HOUR" "$OBJ_MIB" "$NEEDLES")
echo "$gen (in $(python3 -c "print('%.1f s' % ($(date +%s.%N) - $t0))"))"
from=$(sed -n 's/.*from=\([^ ]*\).*/\1/p' <<<"$gen")
to=$(sed -n 's/.*to=\([^ ]*\).*/\1/p' <<<"$gen")

mkdir -p "$tmp/s3"
node "$S3RVER" -d "$tmp/s3" -a 127.0.0.1 -p "$port" --silent --configure-bucket bench \
	>"$tmp/s3rver.log" 2>&1 &
pids+=("$!")
for _ in $(seq 100); do
	python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$port)))" && break
	sleep 0.1
done
echo "uploading to s3rver..."
/usr/bin/python3 - "$tmp/gen" "http://127.0.0.1:$port" <<'PY'
import boto3, os, sys
from concurrent.futures import ThreadPoolExecutor
from botocore.config import Config
root, url = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="S3RVER",
                  aws_secret_access_key="S3RVER", config=Config(s3={"addressing_style": "path"},
                  max_pool_connections=8))
files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
def up(p):
    with open(p, "rb") as f:
        s3.put_object(Bucket="bench", Key=os.path.relpath(p, root), Body=f.read())
with ThreadPoolExecutor(4) as ex:
    list(ex.map(up, files))
print("%d objects uploaded" % len(files))
PY
rm -rf "$tmp/gen"
cat >"$tmp/cfg.yaml" <<YAML
backends:
  archive:
    type: s3
    bucket: bench
    endpoint: http://127.0.0.1:$port
    prefix: bench
    cluster: bench
    access_key_id: S3RVER
    secret_access_key: S3RVER
    spool_dir: ""
YAML

python3 - "$B/aggregator/ingrainctl" "$tmp/cfg.yaml" "$from" "$to" "$R" "$NEEDLES" <<'PY'
import json, os, statistics, subprocess, sys, time
ctl, cfg, frm, to, rounds, needles = sys.argv[1:5] + [int(sys.argv[5]), sys.argv[6]]
def run(extra):
    args = [ctl, "archive", "query", "-c", cfg, "--from", frm, "--to", to, "-o", "csv",
            "--stats", "--no-progress"] + extra + ["path=/etc/needle-secret"]
    t = time.monotonic()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate()
    wall = time.monotonic() - t
    if p.returncode:
        sys.exit("query failed: " + err.decode())
    st = json.loads(err.decode().strip().splitlines()[-1])
    return wall, st, out.decode().count("\n")
res = {"indexed": [], "full": []}
for r in range(rounds):
    for name, extra in (("indexed", []), ("full", ["--no-index"])):
        before = os.times()
        wall, st, rows = run(extra)
        after = os.times()
        cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
        res[name].append((wall, cpu, st, rows))
def med(name, i): return statistics.median(x[i] for x in res[name])
ix, fu = res["indexed"][-1][2], res["full"][-1][2]
total = fu["object_bytes"]
print("archive: %d objects, %.1f MiB gzip, %.1f MiB of records (%d records)" %
      (fu["objects"], total / 2**20, fu["record_bytes"] / 2**20, fu["records"]))
print("%-10s %9s %9s %12s %12s %8s %6s" % ("query", "wall s", "cpu s", "objects read", "MiB read", "indexes", "rows"))
for name in ("indexed", "full"):
    st = res[name][-1][2]
    print("%-10s %9.3f %9.3f %12d %12.1f %8d %6d" % (name, med(name, 0), med(name, 1), st["scanned"],
          (st["bytes_read"] + st["index_bytes"]) / 2**20, st["indexes"], res[name][-1][3]))
read_share = (ix["bytes_read"] + ix["index_bytes"]) / total
print("indexed query read %.2f%% of the archive's bytes: %d of %d objects (%s hold the path, the "
      "rest are Bloom false positives) and %d indexes" %
      (100 * read_share, ix["scanned"], ix["objects"], needles, ix["indexes"]))
print("speed-up (wall, median): %.1fx" % (med("full", 0) / med("indexed", 0)))
print("full scan: %.0f MB/s of uncompressed records per CPU second of ingrainctl, %.0f MB/s wall" %
      (fu["record_bytes"] / 1e6 / med("full", 1), fu["record_bytes"] / 1e6 / med("full", 0)))
if res["indexed"][-1][3] != res["full"][-1][3]:
    sys.exit("the two queries disagree")
PY
