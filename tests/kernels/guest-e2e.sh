#!/bin/busybox sh
# The kernel matrix's end-to-end test (busybox sh, in the guest): the real
# aggregator and agent as separate processes, all four probes on; files
# opened inside and outside the monitored directory must reach the
# aggregator's JSON output exactly (inside: each one; outside: none), and
# the agent's /metrics must name the variant each probe runs. Prints one
# IG-VARIANT line per probe for the matrix report.
set -u
T=/tmp/e2e
mon=$T/mon
out=$T/out.jsonl
port=7411
mport=7412
rm -rf $T
mkdir -p $mon $T/outside
. /ig/guest-lib.sh
cat >$T/config.yaml <<YAML
agent:
  aggregator: tcp://127.0.0.1:$port
  plaintext: true
  batch_max_age: 50ms
  metrics_listen: 127.0.0.1:$mport
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  control: ""
  state_dir: $T/state
probes:
  files:
    monitor_dirs: ["$mon"]
    pipelines: [archive]
  tcp:
    pipelines: [archive]
  traffic:
    interval: 500ms
    pipelines: [archive]
  file_io:
    monitor_dirs: ["$mon"]
    interval: 500ms
    pipelines: [archive]
pipelines:
  archive:
    stages: []
    backends: [out]
backends:
  out:
    type: console
    format: json
    output: $out
YAML
start_ingrain
grep "probe attached" $T/agent.log

# Opens: 3 inside (read, create, ENOENT), 1 outside, 1 prefix sibling.
echo secret >$mon/passwd
cat $mon/passwd >/dev/null
: >$mon/new
cat $mon/missing 2>/dev/null
: >$T/outside/x
: >${mon}etera
wait_for "the monitored opens in the output" 30 sh -c "grep -c '\"file.open\"' $out | grep -qx '[4-9]'"
sleep 1 # anything unexpected would arrive by now
opens() { grep '"file.open"' $out | grep -c "\"path\":\"$1\""; }
n=$(grep -c '"file.open"' $out)
[ "$n" = 4 ] || fail "expected exactly 4 file.open events, got $n: $(cat $out)"
[ "$(opens $mon/passwd)" = 2 ] || fail "expected 2 opens of $mon/passwd (write, read)"
[ "$(opens $mon/new)" = 1 ] || fail "expected 1 open of $mon/new"
grep '"file.open"' $out | grep "\"path\":\"$mon/missing\"" | grep -q '"error":"ENOENT"' ||
	fail "no ENOENT event for $mon/missing: $(cat $out)"
! grep -q -e '/outside/' -e 'monetera' $out || fail "an open outside $mon was reported"
echo "ok: file.open events exact (4 inside: write, read, create, ENOENT; none outside)"

# The table probes read their per-CPU maps through bpf(2) after the agent
# dropped its capabilities (kernels before 6.5 check CAP_BPF on every call).
wait_for "a net.traffic record (the agent's own connection)" 20 grep -q '"name":"net.traffic"' $out
wait_for "a file.io record (the writes to $mon/passwd)" 20 grep -q '"name":"file.io"' $out
echo "ok: net.traffic and file.io records (tables read after the capability drop)"

# The agent's /metrics: one ingrain_agent_probe_variant series per probe.
wget -q -O $T/metrics "http://127.0.0.1:$mport/metrics" || fail "GET /metrics failed"
grep '^ingrain_agent_probe_variant{' $T/metrics >$T/variants || fail "no ingrain_agent_probe_variant in /metrics"
for p in files tcp traffic file_io; do
	grep -q "probe=\"$p\"" $T/variants || fail "no variant series for probe $p"
done
sed -n 's/^ingrain_agent_probe_variant{probe="\([^"]*\)",variant="\([^"]*\)"} 1$/IG-VARIANT probe=\1 variant=\2/p' $T/variants

kill -TERM $agent
wait $agent || fail "the agent exited with $? after SIGTERM"
grep -q "all records acknowledged" $T/agent.log || fail "the agent did not drain cleanly"
kill -TERM $agg
wait $agg || fail "the aggregator exited with $? after SIGTERM"
echo "ok: clean shutdown"
