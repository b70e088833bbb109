#!/bin/busybox sh
# The kernel matrix's payload-capture test (busybox sh, in the guest): the
# real aggregator and agent with the dns and tls probes (the shared capture
# object: cgroup sock hooks, sk_storage, cgroup_skb on the cgroup v2 root,
# the sock_send/recv_length tracepoints where the kernel has them) must load
# and attach on this kernel and report:
#   - a DNS query that nobody answers (busybox nslookup to 127.0.0.1:5353
#     over UDP), as a query reported after the timeout, with its name;
#   - a hand-built 1.8 KB ClientHello (hello.bin, from tls_hello.py on the
#     host) sent to a busybox nc listener on an odd port, reported alone
#     (answered 0) with its SNI and JA4 after the tls timeout;
#   - 256 KiB sent after another hello on the same kind of connection never
#     reach user space (the direction is parked at its hello, then done).
set -u
T=/tmp/e2e-capture
out=$T/out.jsonl
port=7421
rm -rf $T
mkdir -p $T
. /ig/guest-lib.sh
cat >$T/config.yaml <<YAML
agent:
  aggregator: tcp://127.0.0.1:$port
  plaintext: true
  batch_max_age: 50ms
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  control: ""
  state_dir: $T/state
probes:
  dns:
    timeout: 1s
    pipelines: [archive]
  tls:
    timeout: 1s
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
grep -q 'probe started.*probe=dns' $T/agent.log || fail "the dns probe did not start"
grep -q 'probe started.*probe=tls' $T/agent.log || fail "the tls probe did not start"
grep "probe attached\|capture" $T/agent.log | head -n 5

# DNS: a query to a port where nobody answers.
nslookup -port=5353 capture-e2e.example 127.0.0.1 >/dev/null 2>&1 &
wait_for "the unanswered DNS query in the output" 30 grep -q '"dns.qry.name":"capture-e2e.example"' $out
echo "ok: dns query reported (unanswered)"

# TLS: the hello to a listener that never answers; then a hello and 256 KiB.
# (bash's /dev/tcp as the client: busybox nc may write only part of its input.)
nc -l -p 9443 >/dev/null 2>&1 &
lst=$!
sleep 0.5
bash -c 'exec 3<>/dev/tcp/127.0.0.1/9443 && cat /ig/hello.bin >&3 && sleep 3' &
wait_for "the unanswered ClientHello in the output" 30 grep -q '"sni":"kernel-matrix.example"' $out
line=$(grep '"sni":"kernel-matrix.example"' $out | grep '"role":"client"' | head -n 1)
echo "$line" | grep -q '"answered":0' || fail "the hello was not reported alone: $line"
echo "$line" | grep -q '"ja4":"t13d' || fail "no JA4 on the hello's record: $line"
echo "ok: tls ClientHello reported alone with SNI and JA4"
kill $lst 2>/dev/null

nc -l -p 9444 >$T/bulk.out 2>&1 &
lst=$!
sleep 0.5
bash -c 'exec 3<>/dev/tcp/127.0.0.1/9444 && cat /ig/hello.bin >&3 && dd if=/dev/zero bs=1024 count=256 >&3 2>/dev/null' ||
	fail "the bulk client failed"
wait_for "the listener to receive the hello and 256 KiB" 30 sh -c "[ \$(wc -c <$T/bulk.out) -ge $((1800 + 262144)) ]"
kill $lst 2>/dev/null

kill -TERM $agent
wait $agent || fail "the agent exited with $? after SIGTERM"
cap=$(grep 'msg="tls probe capture"' $T/agent.log)
echo "$cap"
echo "$cap" | grep -q ' past_capture_bytes=0 ' || fail "a direction ran into its capture budget: the hello did not park it"
echo "$cap" | grep -q ' done_after_hello=[1-9]' || fail "no direction was done after its hello"
echo "ok: the bulk after a hello never reached user space"
kill -TERM $agg
wait $agg || fail "the aggregator exited with $? after SIGTERM"
echo "ok: clean shutdown"
