#!/usr/bin/env bash
# Golden test: a fixed event stream (tests/fixtures/golden/events.jsonl, sent
# by ig_send --jsonl) through a multi-stage configuration (filter, whitelist,
# regex x3, rollup, add_tags; tests/fixtures/golden/config.yaml) must produce
# exactly the committed StatsD output:
#   dogstatsd.golden      every line the DogStatsD-flavored backend sent,
#                         captured on a UDP socket (sorted: datagram packing
#                         and series order are not part of the contract)
#   etsy_counters.golden  the counters the real Etsy StatsD daemon holds
#                         afterwards (graphite-style names), "name value"
# The rollup's window is 1 h, so its series come out once, at the shutdown
# flush, which makes the output independent of timing.
#
# After an intended change of output: IG_GOLDEN_UPDATE=1 rewrites the golden
# files; review the diff before committing it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib/statsd.sh"
ig_require_cmd python3
ig_require_cmd node
ig_require_built

G="$IG_SOURCE_DIR/tests/fixtures/golden"
port=$(ig_free_port)
cport=$(ig_free_port)
sport=$(ig_free_port)
mport=$(ig_free_port)
statsd_start "$sport" "$mport" || ig_fail "StatsD did not start"

# The capture: every datagram's lines, appended as they arrive.
python3 -u - "$cport" "$IG_TMP/captured.txt" >"$IG_TMP/capture.log" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
print("capture ready", flush=True)
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        d = s.recv(65536)
        out.write(d.rstrip(b"\n") + b"\n")
PY
IG_PIDS+=("$!")
ig_wait_for "UDP capture ready" 10 grep -q "capture ready" "$IG_TMP/capture.log"

sed -e "s/@PORT@/$port/" -e "s/@CAPTURE_PORT@/$cport/" -e "s/@STATSD_PORT@/$sport/" \
	"$G/config.yaml" >"$IG_TMP/config.yaml"
ig_start_aggregator "$IG_TMP/config.yaml"
"$IG_SEND" "tcp://127.0.0.1:$port" --jsonl "$G/events.jsonl" golden 7 >"$IG_TMP/send.txt" ||
	ig_fail "ig_send --jsonl failed: $(cat "$IG_TMP/send.txt")"
ig_check "26 records sent in 4 envelopes" grep -qx "sent envelopes=4 records=26" "$IG_TMP/send.txt"
ig_stop "$IG_PID_aggregator" # flushes the rollup, then the backends

lines_in() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
ig_wait_for "captured lines to settle" 10 bash -c "[ \$(wc -l <'$IG_TMP/captured.txt' 2>/dev/null || echo 0) -gt 0 ]"
prev=-1
while [ "$(lines_in "$IG_TMP/captured.txt")" != "$prev" ]; do
	prev=$(lines_in "$IG_TMP/captured.txt")
	sleep 0.3
done
LC_ALL=C sort "$IG_TMP/captured.txt" >"$IG_TMP/dogstatsd.txt"

# Etsy StatsD: counters under our prefix, as "name value", sorted; read
# until they add up to what the aggregator sent (26 + 22 increments).
etsy_dump() {
	_statsd_mgmt counters >"$IG_TMP/counters.js" || return 1
	node -e '
const vm = require("vm");
const o = vm.runInNewContext("(" + require("fs").readFileSync(process.argv[1], "utf8") + ")",
	Object.create(null), { timeout: 1000 });
const keys = Object.keys(o).filter((k) => k.startsWith("golden.")).sort();
process.stdout.write(keys.map((k) => k + " " + o[k]).join("\n") + "\n");
' "$IG_TMP/counters.js" >"$IG_TMP/etsy_counters.txt"
	[ "$(awk '{ s += $2 } END { print s + 0 }' "$IG_TMP/etsy_counters.txt")" -eq 48 ]
}
ig_wait_for "StatsD to count all 48 increments" 10 etsy_dump
ig_check "StatsD rejected no line" test "$(statsd_bad_lines)" -eq 0

if [ "${IG_GOLDEN_UPDATE:-}" = 1 ]; then
	cp "$IG_TMP/dogstatsd.txt" "$G/dogstatsd.golden"
	cp "$IG_TMP/etsy_counters.txt" "$G/etsy_counters.golden"
	ig_log "golden files rewritten in $G; review with git diff"
fi
for f in dogstatsd etsy_counters; do
	if ! diff -u "$G/$f.golden" "$IG_TMP/$f.txt"; then
		ig_fail "$f output differs from $G/$f.golden (diff above; IG_GOLDEN_UPDATE=1 to accept)"
	fi
	ig_pass "$f output matches $f.golden exactly ($(wc -l <"$G/$f.golden") lines)"
done

# What the golden files must say, independently of how they were made: the
# rollup's counts add up to the records the filter let through, the by_ns
# counts to every record.
python3 - "$IG_TMP/dogstatsd.txt" "$G/events.jsonl" <<'PY' || ig_fail "golden totals do not reconcile with the events"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
kept = [e for e in ev if e["id"].get("namespace") != "kube-system"]
by_path = by_ns = 0
for line in open(sys.argv[1]):
    name, rest = line.rstrip("\n").split(":", 1)
    value, typ, tags = rest.split("|", 2)
    assert typ == "c", line
    tags = tags[1:].split(",")
    if any(t.startswith("path:") for t in tags):
        by_path += int(value)
    else:
        by_ns += int(value)
print("by_path total", by_path, "of", len(kept), "kept; by_ns total", by_ns, "of", len(ev))
sys.exit(0 if by_path == len(kept) and by_ns == len(ev) else 1)
PY
ig_pass "counts reconcile: by_path = records not in kube-system, by_ns = all records"
ig_done
