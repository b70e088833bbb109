#!/usr/bin/env bash
# `ingrainctl archive query` end to end: the real aggregator writes an archive
# (with the index objects beside the data objects) to s3rver behind the
# SigV4-verifying proxy, from real agent events (the files probe) and from
# records sent with chosen timestamps (tests/tools/ig_send) that spread over
# several hourly partitions, with other paths, other pods, a host process and
# a late record that lands in the next hour's partition. Then:
#   - several filters and windows, with and without the indexes: the answer
#     is exactly the expected records (computed from what was sent), and the
#     same, row for row, as DuckDB's answer to docs/archive.md's SQL over the
#     same objects (an independent engine);
#   - the indexes let the query skip objects (and --no-index reads them all);
#   - hostile objects (truncated gzip, a line that is not JSON, a huge line,
#     indexes that are corrupt, foreign or lying) are reported with their key
#     and counted, and the query goes on;
#   - missing credentials, an unreachable endpoint, a wrong bucket and a wrong
#     secret each give a clear error.
source "$(dirname "$0")/lib.sh"
source "$IG_SOURCE_DIR/tests/s3/s3lib.sh"
ig_require_root
ig_require_built
ig_s3_require
IG_CTL=${IG_CTL:-$IG_BUILD_DIR/aggregator/ingrainctl}
[ -x "$IG_CTL" ] || ig_fail "binary $IG_CTL not built"
IG_DUCKDB_MODULES=""
for d in "$IG_BUILD_DIR/testtools" "$IG_SOURCE_DIR/build/testtools"; do
	if [ -f "$d/node_modules/@duckdb/node-api/package.json" ]; then
		IG_DUCKDB_MODULES="$d/node_modules"
		break
	fi
done
[ -n "$IG_DUCKDB_MODULES" ] || ig_skip_or_fail "npm @duckdb/node-api not installed (scripts/install-deps.sh --test)"

ig_s3_start ingrain-archive
port=$(ig_free_port)
mon="$IG_TMP/mon"
mkdir -p "$mon"
write_config() { # FILE ENDPOINT BUCKET [EXTRA]
	cat >"$1" <<YAML
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
    monitor_dirs: ["$mon"]
    pipelines: [s3]
pipelines:
  s3:
    stages: []
    backends: [archive]
backends:
  archive:
    type: s3
    bucket: $3
    endpoint: $2
    prefix: arch
    cluster: ci
    source: agg-test
    batch_max_records: 4
    batch_max_age: 1m
    spool_dir: $IG_TMP/spool
    retry_min: 100ms
    retry_max: 1s
${4:-}
YAML
}
cfg="$IG_TMP/config.yaml"
write_config "$cfg" "$IG_S3_URL" ingrain-archive
export AWS_ACCESS_KEY_ID=$IG_S3_AK AWS_SECRET_ACCESS_KEY=$IG_S3_SK

# Records with chosen times: five hours, two hours ago and before.
base=$(( ($(date +%s) / 3600 - 6) * 3600 ))
"$IG_PY" - "$base" "$IG_TMP/sent.jsonl" <<'PY'
import json, sys
base, out = int(sys.argv[1]), sys.argv[2]
H = 3600
def rec(t, path, comm, pid, pod=None, ns=None, uid=0, ret=3, err=None):
    r = {"kind": "file.open", "probe": "files", "ts_ns": t * 10**9 + 123456789,
         "pid": pid, "tid": pid, "uid": uid, "gid": uid, "comm": comm,
         "fields": {"path": path, "flags": 0, "ret": ret}}
    if err:
        r["fields"]["error"] = err
    if pod:
        r["id"] = {"scope": "pod", "namespace": ns, "pod": pod, "container": "app",
                   "container_id": "c0ffee", "runtime": "containerd", "image": "shop/web:1"}
    return r
recs = []
for h in range(5):
    t = base + h * H
    recs += [
        rec(t + 10, "/etc/passwd", "cat", 100 + h, "web-1", "shop"),
        rec(t + 20, "/etc/hosts", "curl", 200 + h, "web-2", "shop", uid=1000),
        rec(t + 30, "/etc/passwd", "sshd", 300 + h),  # a host process
        rec(t + 40, "/var/log/app.log", "app", 400 + h, "api-1", "pay", uid=1000),
        rec(t + 50, "/etc/shadow", "cat", 500 + h, "api-1", "pay", ret=-13, err="EACCES"),
        rec(t + 60, "/tmp/x%d" % h, "sh", 600 + h, "web-1", "shop"),
    ]
    if h == 1:
        recs.append(rec(t + 70, "/etc/passwd", "python3", 700, "api-1", "pay"))
# Late: a record of hour 3 sent after hour 4 began, so it sits in hour 4's object.
recs.append(rec(base + 3 * H + 3000, "/etc/passwd", "late", 999, "web-9", "shop"))
with open(out, "w") as f:
    for r in recs:
        f.write(json.dumps(r) + "\n")
PY
nsent=$(wc -l <"$IG_TMP/sent.jsonl")

ig_start_aggregator "$cfg"
ig_start_agent "$cfg"
"$IG_SEND" "tcp://127.0.0.1:$port" --jsonl "$IG_TMP/sent.jsonl" ig-send-archive 5 >"$IG_TMP/send.log" ||
	ig_fail "ig_send: $(cat "$IG_TMP/send.log")"
ig_check "ig_send's $nsent records were all acknowledged" grep -q "records=$nsent\$" "$IG_TMP/send.log"
# A real event from the agent, now.
ig_opener open "$mon/passwd" creat >"$IG_TMP/opened.jsonl"
opid=$("$IG_PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["pid"])' "$IG_TMP/opened.jsonl")
ig_stop "$IG_PID_agent"
ig_stop "$IG_PID_aggregator" # flushes the open batch
ig_check "the agent's event was archived" [ "$(ig_s3_count_pid "$opid")" = 1 ]
ig_s3_read >"$IG_TMP/archived.jsonl"
ig_check "every record sent was archived once" \
	[ "$(wc -l <"$IG_TMP/archived.jsonl")" = $((nsent + 1)) ]
ig_s3_read --keys-only >"$IG_TMP/keys.txt"
ig_check "the late record sits in the next hour's partition" \
	"$IG_PY" -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["tags"].get("process") == "late":
        h = int(r["ts"][11:13]); ph = int(r["_key"].split("hour=")[1][:2])
        sys.exit(0 if ph == (h + 1) % 24 else 1)
sys.exit(1)' "$IG_TMP/archived.jsonl"

# Every data object has its index beside it.
"$IG_PY" - "$IG_S3_URL" >"$IG_TMP/all-keys.txt" <<'PY'
import boto3, sys
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER",
                  config=Config(s3={"addressing_style": "path"}))
for p in s3.get_paginator("list_objects_v2").paginate(Bucket="ingrain-archive"):
    for o in p.get("Contents", []):
        print(o["Key"])
PY
ndata=$(grep -c '\.jsonl\.gz$' "$IG_TMP/all-keys.txt" | head -1)
nidx=$(grep -c '/_.*\.jsonl\.gz\.idx$' "$IG_TMP/all-keys.txt" | head -1)
ig_check "each of the $ndata data objects has an index object ($nidx)" [ "$nidx" = "$ndata" ]

# A local copy of the archive for DuckDB (before hostile objects are added).
mkdir -p "$IG_TMP/copy"
"$IG_PY" - "$IG_S3_URL" "$IG_TMP/copy" <<'PY'
import boto3, os, sys
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER",
                  config=Config(s3={"addressing_style": "path"}))
for p in s3.get_paginator("list_objects_v2").paginate(Bucket="ingrain-archive"):
    for o in p.get("Contents", []):
        dst = os.path.join(sys.argv[2], o["Key"])
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        s3.download_file("ingrain-archive", o["Key"], dst)
PY

iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
H=3600
# compare NAME FROM TO FILTER...: ingrainctl (with and without indexes) ==
# expected (from the archived records) == DuckDB (docs/archive.md's SQL).
compare() {
	local name=$1 from=$2 to=$3
	shift 3
	"$IG_CTL" archive query -c "$cfg" --from "$from" --to "$to" -o csv --stats --no-progress "$@" \
		>"$IG_TMP/$name.csv" 2>"$IG_TMP/$name.err" || ig_fail "$name: query failed: $(cat "$IG_TMP/$name.err")"
	"$IG_CTL" archive query -c "$cfg" --from "$from" --to "$to" -o csv --stats --no-progress --no-index "$@" \
		>"$IG_TMP/$name-noidx.csv" 2>"$IG_TMP/$name-noidx.err" || ig_fail "$name: --no-index query failed"
	"$IG_PY" "$IG_SOURCE_DIR/tests/archive/oracle.py" --docs "$IG_SOURCE_DIR/docs/archive.md" \
		--copy "$IG_TMP/copy/arch/cluster=ci" --archived "$IG_TMP/archived.jsonl" \
		--duckdb "node $IG_SOURCE_DIR/tests/archive/duckdb_query.js $IG_DUCKDB_MODULES" \
		--from "$from" --to "$to" --got "$IG_TMP/$name.csv" --got "$IG_TMP/$name-noidx.csv" \
		--name "$name" -- "$@" || ig_fail "$name: answers differ"
	ig_pass "$name: ingrainctl (indexes and --no-index) = expected = DuckDB"
}
compare passwd-day "$(iso $((base - H)))" "$(iso $((base + 6 * H)))" path=/etc/passwd
compare etc-regex-web1 "$(iso "$base")" "$(iso $((base + 5 * H)))" 'path~^/etc/' pod=web-1
compare shop-cat-hour1 "$(iso $((base + H)))" "$(iso $((base + 2 * H)))" namespace=shop process=cat
compare late-hour3 "$(iso $((base + 3 * H)))" "$(iso $((base + 4 * H)))" path=/etc/passwd
compare uid-1000 "$(iso "$base")" "$(iso $((base + 5 * H)))" uid=1000
compare denied "$(iso "$base")" "$(iso $((base + 5 * H)))" name=file.open 'path!~^/(tmp|var)/' error=EACCES
compare agent-event "$(iso $(($(date +%s) - H)))" "$(iso $(($(date +%s) + 60)))" "path=$mon/passwd"

qstat() { # NAME EXPR: a value from the --stats line of query NAME
	tail -n1 "$IG_TMP/$1.err" | "$IG_PY" -c 'import json,sys; s=json.load(sys.stdin); print(eval(sys.argv[1]))' "$2"
}
ig_check "the window's 8 partitions were listed (7 hours + 1 for late records)" \
	[ "$(qstat passwd-day 's["partitions"]')" = 8 ]
ig_check "the indexes let the /etc/passwd query skip objects" \
	[ "$(qstat passwd-day 's["skipped"] > 0 and s["scanned"] + s["skipped"] == s["objects"] and s["bad_indexes"] == 0')" = True ]
ig_check "--no-index reads every object" \
	[ "$(qstat passwd-day-noidx 's["skipped"] == 0 and s["scanned"] == s["objects"] and s["indexes"] == 0')" = True ]
ig_check "no request of the queries failed the signature check" [ "$(ig_s3_stat 's["rejected"]')" = 0 ]

# Table and JSON output.
from=$(iso $((base - H)))
to=$(iso $((base + 6 * H)))
"$IG_CTL" archive query -c "$cfg" --from "$from" --to "$to" --no-progress path=/etc/passwd \
	>"$IG_TMP/table.out" 2>/dev/null
cat "$IG_TMP/table.out"
ig_check "table output: a header and the 12 rows" [ "$(wc -l <"$IG_TMP/table.out")" = 13 ]
ig_check "table output: the columns" grep -qE '^TIME +NODE +NAMESPACE/POD +CONTAINER +PROCESS +PID +UID +PATH +RESULT$' "$IG_TMP/table.out"
ig_check "table output: a pod's row" grep -qE 'shop/web-1 +app +cat +10[0-4] +0 +/etc/passwd +ok' "$IG_TMP/table.out"
"$IG_CTL" archive query -c "$cfg" --from "$from" --to "$to" --no-progress -o json path=/etc/passwd \
	>"$IG_TMP/json.out" 2>/dev/null
ig_check "json output: the stored lines, unchanged" "$IG_PY" -c 'import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
want = []
for l in open(sys.argv[2]):
    r = json.loads(l); r.pop("_key")
    if r["tags"].get("path") == "/etc/passwd" and r["ts"] >= sys.argv[3]: want.append(r)
key = lambda r: json.dumps(r, sort_keys=True)
sys.exit(0 if sorted(map(key, got)) == sorted(map(key, want)) and len(got) == 12 else 1)' \
	"$IG_TMP/json.out" "$IG_TMP/archived.jsonl" "$from"
"$IG_CTL" archive query -c "$cfg" --from "$from" --to "$to" --progress -o csv path=/etc/passwd \
	>/dev/null 2>"$IG_TMP/progress.err"
ig_check "progress on stderr: objects and bytes read of the total" \
	grep -qE 'objects [0-9]+/[0-9]+ read, [0-9.]+ of [0-9.]+ MiB' "$IG_TMP/progress.err"

# Hostile objects in a partition of the window, and a data object whose index is gone.
"$IG_PY" - "$IG_S3_URL" "$base" "$IG_TMP/hostile-extra.csv" <<'PY'
import boto3, csv, gzip, json, re, sys, zlib
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER",
                  config=Config(s3={"addressing_style": "path"}))
B = "ingrain-archive"
base = int(sys.argv[2]) + 2 * 3600
import datetime
d = datetime.datetime.fromtimestamp(base, datetime.timezone.utc)
part = "arch/cluster=ci/date=%s/hour=%s/" % (d.strftime("%Y-%m-%d"), d.strftime("%H"))
extra = []
def rec(t, pid, path="/etc/passwd"):
    ts = datetime.datetime.fromtimestamp(base + t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + ".000000001Z"
    return {"ts": ts, "name": "file.open", "kind": "counter", "value": 1, "probe": "files",
            "tags": {"node": "n-hostile", "process": "evil", "pid": pid, "uid": 0, "path": path, "ret": 3}}
def line(r): return json.dumps(r, separators=(",", ":")).encode() + b"\n"
def want(r):
    t = r["tags"]
    extra.append([r["ts"], t["node"], "", "", "", t["process"], str(t["pid"]), str(t["uid"]), t["path"], "ok"])
def put(key, body): s3.put_object(Bucket=B, Key=part + key, Body=body)
# 1. truncated gzip
put("hostile-trunc.jsonl.gz", gzip.compress(b"".join(line(rec(i, 9000 + i, "/hostile/t")) for i in range(300)))[:900])
# 2. a line that is not JSON between two records
a, b = rec(1, 801), rec(2, 802)
want(a); want(b)
put("hostile-notjson.jsonl.gz", gzip.compress(line(a) + b"this is not JSON\n" + line(b)))
# 3. a huge line (2 MiB, over the 1 MiB limit), then a record
h = rec(3, 899); h["tags"]["pad"] = "x" * (2 << 20)
c = rec(4, 803); want(c)
put("hostile-huge.jsonl.gz", gzip.compress(line(h) + line(c)))
# Real objects and their indexes in that partition.
objs = [o for o in s3.list_objects_v2(Bucket=B, Prefix=part)["Contents"]
        if re.search(r"/agg-test-[^/]*\.jsonl\.gz$", o["Key"])]
real = objs[0]["Key"]
idx_key = lambda k: k.rsplit("/", 1)[0] + "/_" + k.rsplit("/", 1)[1] + ".idx"
real_idx = s3.get_object(Bucket=B, Key=idx_key(real))["Body"].read().decode()
real_body = s3.get_object(Bucket=B, Key=real)["Body"].read()
# 4. an index that names another object
e = rec(5, 804); want(e)
put("hostile-foreign.jsonl.gz", gzip.compress(line(e)))
put("_hostile-foreign.jsonl.gz.idx", real_idx.encode())
# 5. a corrupt index (a changed byte: the CRC no longer matches)
f = rec(6, 805); want(f)
put("hostile-corrupt.jsonl.gz", gzip.compress(line(f)))
put("_hostile-corrupt.jsonl.gz.idx", real_idx.replace('"records":', '"records": ').encode())
# 6. an index that describes its object (key, size, ETag, CRC) but lies about its records
def with_crc(doc):  # doc: an index without its crc32 member
    body = doc[:-1]
    return body + ',"crc32":"%08x"}\n' % (zlib.crc32(body.encode()) & 0xffffffff)
lie = json.loads(real_idx[:real_idx.rindex(',"crc32":"')] + "}")
lie["object"] = part + "hostile-lie.jsonl.gz"
lie["records"] += 5
put("hostile-lie.jsonl.gz", real_body)
put("_hostile-lie.jsonl.gz.idx", with_crc(json.dumps(lie, separators=(",", ":"))).encode())
for l in gzip.decompress(real_body).splitlines():
    r = json.loads(l)
    if r["tags"].get("path") == "/etc/passwd":
        t = r["tags"]
        extra.append([r["ts"]] + [str(t.get(k, "")) for k in ("node", "namespace", "pod", "container", "process", "pid", "uid", "path")] + [t.get("error", "ok")])
# 7. an object whose index is gone (an older archive): scanned
s3.delete_object(Bucket=B, Key=idx_key(objs[1]["Key"]))
with open(sys.argv[3], "w", newline="") as out:
    csv.writer(out).writerows(extra)
print(part)
PY
rc=0
"$IG_CTL" archive query -c "$cfg" --from "$from" --to "$to" -o csv --stats --no-progress path=/etc/passwd \
	>"$IG_TMP/hostile.csv" 2>"$IG_TMP/hostile.err" || rc=$?
cat "$IG_TMP/hostile.err"
ig_check "with damaged objects the query completes and exits 4" [ "$rc" = 4 ]
ig_check "hostile: the answer is the clean answer plus every readable matching record" "$IG_PY" -c 'import csv, sys
rows = lambda f: sorted(csv.reader(open(f, newline="")))
sys.exit(0 if rows(sys.argv[1]) == sorted(rows(sys.argv[2]) + rows(sys.argv[3])) else 1)' \
	"$IG_TMP/hostile.csv" "$IG_TMP/passwd-day.csv" "$IG_TMP/hostile-extra.csv"
for k in hostile-trunc.jsonl.gz hostile-notjson.jsonl.gz hostile-huge.jsonl.gz \
	_hostile-foreign.jsonl.gz.idx _hostile-corrupt.jsonl.gz.idx hostile-lie.jsonl.gz; do
	ig_check "hostile: $k is reported with its key" grep -q "/$k" "$IG_TMP/hostile.err"
done
ig_check "hostile: truncated gzip reported" grep -q "hostile-trunc.jsonl.gz: truncated gzip stream" "$IG_TMP/hostile.err"
ig_check "hostile: not-JSON line reported with its line number" grep -q "hostile-notjson.jsonl.gz line 2: not a JSON record" "$IG_TMP/hostile.err"
ig_check "hostile: huge line reported" grep -q "hostile-huge.jsonl.gz line 1: longer than the 1048576-byte line limit" "$IG_TMP/hostile.err"
ig_check "hostile: counted (1 bad object, 2 bad lines, 2 bad indexes, 1 lying index, 4 without index)" \
	[ "$(qstat hostile '(s["bad_objects"], s["bad_lines"], s["bad_indexes"], s["index_lies"], s["unindexed"])')" = "(1, 2, 2, 1, 4)" ]
rc=0
"$IG_CTL" archive query -c "$cfg" --from "$from" --to "$to" -o csv --stats --no-progress --no-index path=/etc/passwd \
	>"$IG_TMP/hostile-noidx.csv" 2>"$IG_TMP/hostile-noidx.err" || rc=$?
ig_check "hostile, --no-index: the same answer" cmp -s <(sort "$IG_TMP/hostile.csv") <(sort "$IG_TMP/hostile-noidx.csv")

# Clear errors.
expect_error() { # DESC PATTERN CMD...
	local desc=$1 pat=$2 rc=0
	shift 2
	"$@" >/dev/null 2>"$IG_TMP/error.err" || rc=$?
	cat "$IG_TMP/error.err"
	[ "$rc" = 1 ] || ig_fail "$desc: exit code $rc, expected 1"
	ig_check "$desc" grep -q -- "$pat" "$IG_TMP/error.err"
}
expect_error "missing credentials: says how to provide them" "no S3 credentials: set access_key_id" \
	env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$IG_CTL" archive query -c "$cfg" path=/etc/passwd
write_config "$IG_TMP/unreachable.yaml" "http://127.0.0.1:$(ig_free_port)" ingrain-archive
expect_error "unreachable endpoint: names it" "cannot reach the S3 endpoint http://127.0.0.1:" \
	"$IG_CTL" archive query -c "$IG_TMP/unreachable.yaml" path=/etc/passwd
write_config "$IG_TMP/nobucket.yaml" "$IG_S3_URL" no-such-bucket
expect_error "wrong bucket: says the bucket does not exist" "NoSuchBucket.*the bucket does not exist" \
	"$IG_CTL" archive query -c "$IG_TMP/nobucket.yaml" path=/etc/passwd
expect_error "wrong secret: the proxy's 403 says check the credentials" "SignatureDoesNotMatch.*check the credentials" \
	env AWS_SECRET_ACCESS_KEY=wrong "$IG_CTL" archive query -c "$cfg" path=/etc/passwd
ig_done
