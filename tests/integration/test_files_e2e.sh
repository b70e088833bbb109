#!/usr/bin/env bash
# End to end on this kernel: the real aggregator and agent as separate
# processes; a test process opens files inside and outside the monitored
# directory; the exact events (path, pid, tid, flags, result) must reach the
# aggregator's JSON output, and events outside must not.
source "$(dirname "$0")/lib.sh"
ig_require_root
ig_require_cmd python3
ig_require_built

port=$(ig_free_port)
mport=$(ig_free_port)
mon="$IG_TMP/mon"
out="$IG_TMP/out.jsonl"
mkdir -p "$mon/sub" "$IG_TMP/outside"
echo secret >"$mon/passwd"
ig_files_config "$IG_TMP/config.yaml" "$port" "$mon" "$out" \
	"  metrics_listen: 127.0.0.1:$mport" \
	"  state_dir: $IG_TMP/state"

ig_start_aggregator "$IG_TMP/config.yaml"
ig_start_agent "$IG_TMP/config.yaml"

ig_opener open "$mon/passwd" r -- open "$mon/new" creat -- open "$mon/missing" r \
	-- openat "$mon" passwd -- chdir-open "$mon/sub" ../passwd \
	-- open "$IG_TMP/outside/x" creat -- open "${mon}etera" creat >"$IG_TMP/opened.jsonl"

ig_wait_for "6 monitored events in the output" 15 \
	bash -c "[ \$(cat '$out' 2>/dev/null | grep -c file.open) -ge 6 ]"
sleep 0.5 # anything unexpected would arrive by now

python3 - "$IG_TMP/opened.jsonl" "$out" "$mon" <<'PY'
import json, sys, os
opened = [json.loads(l) for l in open(sys.argv[1])]
events = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
mon = sys.argv[3]
mine = [e for e in events if e["tags"].get("pid") == opened[0]["pid"]]
def fail(msg):
    print("events:", json.dumps(events, indent=1)[:4000]); sys.exit("FAIL: " + msg)
N = 6  # passwd, new, missing, the directory opened for the dirfd, dirfd+name, cwd+../name
if len(mine) != N:
    fail("expected exactly %d events from pid %d, got %d" % (N, opened[0]["pid"], len(mine)))
for e in mine:
    t = e["tags"]
    if e["name"] != "file.open": fail("name %r" % e["name"])
    for k in ("node", "process", "pid", "tid", "uid", "gid", "cgroup_id", "path", "flags", "ret", "syscall"):
        if k not in t: fail("tag %s missing in %r" % (k, t))
    if not (t["path"] + "/").startswith(mon + "/"): fail("outside path reported: %r" % t["path"])
    if t["tid"] != opened[0]["tid"]: fail("tid %r != %r" % (t["tid"], opened[0]["tid"]))
# The order of opens is the order of events (one thread).
want = [(o["path"], o["flags"], o["ret"]) for o in opened[:N]]
# openat via a dirfd and chdir+relative are resolved to absolute, normalised paths in the kernel
want[5] = (os.path.join(mon, "passwd"), want[5][1], want[5][2])
got = [(e["tags"]["path"], e["tags"]["flags"] & 0o3777777 & ~0o2000000 & ~0o100000, e["tags"]["ret"]) for e in mine]
for w, g in zip(want, got):
    wp, wf, wr = w
    gp, gf, gr = g
    if gp != wp: fail("path %r != %r" % (gp, wp))
    if (gf & 0o3) != (wf & 0o3) or (gf & 0o100) != (wf & 0o100): fail("flags %o vs %o for %s" % (gf, wf, wp))
    if (wr >= 0) != (gr >= 0) or (wr < 0 and wr != gr): fail("ret %r vs %r for %s" % (gr, wr, wp))
miss = [e for e in mine if e["tags"]["ret"] < 0]
if len(miss) != 1 or miss[0]["tags"].get("error") != "ENOENT": fail("ENOENT event wrong: %r" % miss)
print("checked %d events" % len(mine))
PY
ig_pass "exact events for opens inside $mon (absolute, O_CREAT, ENOENT, directory, dirfd, cwd-relative with ..)"
ig_check "no event for files outside (incl. the ${mon}etera prefix sibling)" \
	bash -c "! grep -q -e '/outside/' -e 'monetera' '$out'"

# The variant the feature probes chose: logged, and the one /metrics names.
variant=$(sed -n 's/.*msg="files probe attached" variant=\([a-z_]*\).*/\1/p' "$IG_TMP/agent.log" | head -1)
ig_check "the agent logged the files probe's variant ($variant)" test -n "$variant"
ig_wait_for "ingrain_agent_probe_variant in /metrics" 5 bash -c \
	"curl -fsS http://127.0.0.1:$mport/metrics | grep -qx 'ingrain_agent_probe_variant{probe=\"files\",variant=\"$variant\"} 1'"
ig_pass "/metrics: ingrain_agent_probe_variant{probe=\"files\",variant=\"$variant\"} 1"

ig_stop "$IG_PID_agent"
ig_check "agent logged a clean drain" grep -q "all records acknowledged" "$IG_TMP/agent.log"
ig_stop "$IG_PID_aggregator"
ig_done
