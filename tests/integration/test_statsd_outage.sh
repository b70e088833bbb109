#!/usr/bin/env bash
# Losses counted in events: the real Etsy StatsD receives a first wave of
# events, is stopped while a second wave is sent (the connected UDP socket
# sees every datagram refused: ECONNREFUSED), and is started again for a
# third wave. Reconciliation, in events: generated = what StatsD counted
# (first + third wave) + what the backend reports dropped (the second wave),
# and the backend's own sent/dropped/received counters say exactly that.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib/statsd.sh"
ig_require_root
ig_require_cmd node
ig_require_cmd curl
ig_require_built

PER=100
port=$(ig_free_port)
sport=$(ig_free_port)
mport=$(ig_free_port)
hport=$(ig_free_port)
statsd_start "$sport" "$mport"
cat >"$IG_TMP/config.yaml" <<YAML
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  state_dir: ""
  control: ""
  metrics_listen: 127.0.0.1:$hport
probes:
  files:
    pipelines: [p]
pipelines:
  p:
    stages: []
    backends: [s]
backends:
  s:
    type: statsd
    address: 127.0.0.1:$sport
    prefix: "o."
    flush_interval: 200ms
YAML
ig_start_aggregator "$IG_TMP/config.yaml"
metric() { curl -sf "http://127.0.0.1:$hport/metrics" | awk -v m="$1{backend=\"s\"}" '$1 == m {print $2}'; }
queued_zero() { [ "$(metric ingrain_backend_queued)" = 0 ]; }
wave() { # ENVELOPES AGENT
	"$IG_SEND" "tcp://127.0.0.1:$port" --valid "$1" "$PER" "$2" 100 >/dev/null ||
		ig_fail "ig_send: not every envelope was acked"
	ig_wait_for "backend flushed wave $2" 10 queued_zero
}
wave 10 wave-one
statsd_wait_counter o.file.open 1000 10 || ig_fail "StatsD never counted the first wave"
first=$(statsd_counter o.file.open)
statsd_stop
wave 20 wave-two # 2,000 events over ~2 s: about ten flushes into a closed port
statsd_start "$sport" "$mport"
wave 5 wave-three
statsd_wait_counter o.file.open 500 10 || ig_fail "StatsD never counted the third wave"
sleep 0.5 # one more flush interval: nothing extra may arrive
third=$(statsd_counter o.file.open)
recv=$(metric ingrain_backend_received_total)
sent=$(metric ingrain_backend_sent_total)
dropped=$(metric ingrain_backend_dropped_total)
errors=$(metric ingrain_backend_errors_total)
ig_log "generated=3500 statsd_counted=$((first + third)) (first=$first third=$third) backend: received=$recv sent=$sent dropped=$dropped errors=$errors"
ig_check "generated = delivered + counted lost (3500 = $((first + third)) + $dropped)" \
	test "$((first + third + dropped))" -eq 3500
# In events, not lines: the second wave's 2,000, less at most the two 100-event
# flushes at the outage's edges that a slow machine (ASan) sends after StatsD
# is back (they are delivered and counted by StatsD, so the sum above holds).
ig_check "the backend counted the outage in events: dropped = the second wave (±2 flushes at its edges)" \
	test "$dropped" -ge 1800 -a "$dropped" -le 2000
ig_check "the backend's sent matches what StatsD counted" test "$sent" -eq "$((first + third))"
ig_check "received = sent + dropped" test "$recv" -eq "$((sent + dropped))"
ig_check "the refusals were seen as errors" test "$errors" -ge 1
ig_stop "$IG_PID_aggregator"
ig_done
