#!/usr/bin/python3
"""oracle: checks `ingrainctl archive query` answers for tests/integration/test_archive_query.sh.

Three answers to one question (a window and filters) must be equal, row for row:
  - expected: computed here from every archived record (read back with boto3);
  - DuckDB:   the SQL statement of docs/archive.md (between the duckdb:begin/end
              markers) with the question's window, partitions and predicates put in,
              run by DuckDB over a local copy of the objects;
  - got:      ingrainctl's CSV output (one or more files).

  oracle.py --docs MD --copy DIR --archived JSONL --duckdb CMD --from T --to T
            --got CSV [--got CSV...] --name NAME -- FILTER...
"""
import argparse
import csv
import datetime
import gzip
import json
import os
import re
import shlex
import subprocess
import sys

COLS = ["node", "namespace", "pod", "container", "process", "pid", "uid", "path"]


def parse_filter(f):
    m = re.match(r"^([^=~!]+)(=|!=|~|!~)(.*)$", f)
    if not m:
        sys.exit("bad filter %r" % f)
    return m.group(1), m.group(2), m.group(3)


def text(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return v if isinstance(v, str) else json.dumps(v)


def lookup(r, key):
    if key.startswith("tags."):
        return text(r["tags"].get(key[5:]))
    if key in ("name", "kind", "probe"):
        return text(r.get(key))
    return text(r["tags"].get(key))


def passes(r, filters):
    for k, op, v in filters:
        x = lookup(r, k)
        if op == "=" and x != v:
            return False
        if op == "!=" and x == v:
            return False
        if op in ("~", "!~"):
            hit = x is not None and re.search(v, x) is not None
            if hit != (op == "~"):
                return False
    return True


def ns9(t):
    d = datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    return int(d.timestamp()) * 10**9


def fmt9(ns):
    d = datetime.datetime.fromtimestamp(ns // 10**9, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%09dZ" % (ns % 10**9)


def row(r):
    t = r["tags"]
    return [r["ts"]] + [text(t.get(c)) or "" for c in COLS] + [text(t.get("error")) or "ok"]


def sql_quote(s):
    return "'" + s.replace("'", "''") + "'"


def sql_pred(k, op, v):
    if k.startswith("tags."):
        col = "(tags->>%s)" % sql_quote(k[5:])
    elif k in ("name", "kind", "probe"):
        col = k
    else:
        col = "(tags->>%s)" % sql_quote(k)
    if op == "=":
        return "%s = %s" % (col, sql_quote(v))
    if op == "!=":
        return "(%s IS NULL OR %s <> %s)" % (col, col, sql_quote(v))
    if op == "~":
        return "regexp_matches(%s, %s)" % (col, sql_quote(v))
    return "(%s IS NULL OR NOT regexp_matches(%s, %s))" % (col, col, sql_quote(v))


def diagnose(copy, archived, expected):
    """When DuckDB disagrees: is each expected record in the local copy?"""
    want = {r[0] for r in expected}
    for line in open(archived):
        r = json.loads(line)
        if r["ts"] not in want:
            continue
        rel = r["_key"].split("cluster=", 1)[1].split("/", 1)[1]
        f = os.path.join(copy, rel)
        if not os.path.exists(f):
            print("  diagnosis: %s is not in the local copy (%s)" % (r["_key"], f))
            continue
        with gzip.open(f, "rt") as z:
            lines = z.read().splitlines()
        print("  diagnosis: %s in the copy: %d bytes, %d lines, the record %s" % (
            f, os.path.getsize(f), len(lines),
            "is there" if any(json.loads(l).get("ts") == r["ts"] for l in lines) else "is missing"))


def main():
    p = argparse.ArgumentParser()
    for a in ("--docs", "--copy", "--archived", "--duckdb", "--from", "--to", "--name"):
        p.add_argument(a, required=True)
    p.add_argument("--got", action="append", required=True)
    p.add_argument("filters", nargs="*")
    a = p.parse_args()
    filters = [parse_filter(f) for f in a.filters]
    lo, hi = ns9(getattr(a, "from")), ns9(a.to)
    hour_lo, hour_hi = lo // (3600 * 10**9), (hi - 1) // (3600 * 10**9) + 1

    expected = []
    for line in open(a.archived):
        r = json.loads(line)
        m = re.search(r"/date=(\d{4}-\d\d-\d\d)/hour=(\d\d)/", r["_key"])
        ph = int(datetime.datetime.strptime(m.group(1) + m.group(2), "%Y-%m-%d%H")
                 .replace(tzinfo=datetime.timezone.utc).timestamp()) // 3600
        ts = r["ts"]
        if not (fmt9(lo) <= ts < fmt9(hi)) or not (hour_lo <= ph <= hour_hi):
            continue
        if passes(r, filters):
            expected.append(row(r))

    # DuckDB with docs/archive.md's statement.
    md = open(a.docs).read()
    m = re.search(r"<!-- duckdb:begin -->\s*```sql\n(.*?)```\s*<!-- duckdb:end -->", md, re.S)
    if not m:
        sys.exit("docs/archive.md has no duckdb:begin/end SQL block")
    sql = m.group(1)
    # Each documented example value is swapped for a marker first, then the
    # markers for this question's values: a value may equal another example
    # (a window starting at 2026-12-02T10:00:00Z, the example's end).
    subs = []
    def sub(old, new):
        nonlocal sql
        if old not in sql:
            sys.exit("the documented SQL no longer contains %r" % old)
        marker = "\x00%d\x00" % len(subs)
        sql = sql.replace(old, marker)
        subs.append((marker, new))
    sub("'archive/ingrain/cluster=prod/*/*/*.jsonl.gz'", sql_quote(a.copy + "/*/*/*.jsonl.gz"))
    sub("(tags->>'path') = '/etc/passwd'",
        " AND ".join(sql_pred(*f) for f in filters) if filters else "true")
    sub("'2026-12-01T10:00:00.000000000Z'", sql_quote(fmt9(lo)))
    sub("'2026-12-02T10:00:00.000000000Z'", sql_quote(fmt9(hi)))
    def ph(h):
        return datetime.datetime.fromtimestamp(h * 3600, datetime.timezone.utc).strftime("%Y-%m-%dT%H")
    sub("'2026-12-01T10'", sql_quote(ph(hour_lo)))
    sub("'2026-12-02T10'", sql_quote(ph(hour_hi)))
    for marker, value in subs:
        sql = sql.replace(marker, value)
    sql_file = os.path.join(os.path.dirname(os.path.abspath(a.got[0])), "%s.sql" % a.name)
    with open(sql_file, "w") as f:
        f.write(sql)
    out = subprocess.run(shlex.split(a.duckdb) + [sql_file],
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit("duckdb failed: %s\n%s" % (out.stderr, sql))
    duck = [[c if c is not None else "" for c in json.loads(l)] for l in out.stdout.splitlines()]

    ok = True
    if not expected:
        print("%s: the question has no expected answer: the test would prove nothing" % a.name)
        ok = False
    def show(label, rows):
        print("  %s (%d rows):" % (label, len(rows)))
        for r in sorted(rows):
            print("    " + ",".join(r))
    if duck != sorted(expected, key=lambda r: r[0]) and sorted(duck) != sorted(expected):
        print("%s: DuckDB differs from the expected records" % a.name)
        show("expected", expected)
        show("duckdb", duck)
        diagnose(a.copy, a.archived, expected)
        ok = False
    for g in a.got:
        got = [r for r in csv.reader(open(g, newline=""))]
        if sorted(got) != sorted(expected):
            print("%s: %s differs from the expected records" % (a.name, g))
            show("expected", expected)
            show("got", got)
            ok = False
    print("%s: %d rows, all answers equal" % (a.name, len(expected)) if ok else "")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
