# guest-lib.sh: what the kernel matrix's in-guest end-to-end tests share
# (busybox sh; sourced from /ig by guest-e2e.sh and guest-e2e-capture.sh).
# The caller sets T (its work directory, holding config.yaml) and may set
# out (the backend's output, shown on failure).

fail() {
	echo "FAIL: $*"
	echo "--- agent.log"
	tail -n 40 $T/agent.log
	echo "--- aggregator.log"
	tail -n 20 $T/aggregator.log
	if [ -n "${out:-}" ] && [ -f "$out" ]; then
		echo "--- $(basename "$out")"
		tail -n 20 "$out"
	fi
	exit 1
}

wait_for() { # DESC SECONDS CMD...
	d=$1 n=$(($2 * 10))
	shift 2
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "timed out waiting for $d"
		sleep 0.1
	done
}

# The aggregator, then the agent, with $T/config.yaml: pids in agg and agent.
start_ingrain() {
	ingrain-aggregator -c $T/config.yaml >$T/aggregator.log 2>&1 &
	agg=$!
	wait_for "the aggregator to listen" 60 grep -q "aggregator listening" $T/aggregator.log
	ingrain-agent -c $T/config.yaml >$T/agent.log 2>&1 &
	agent=$!
	wait_for "the agent to run its probes" 120 grep -q "agent running" $T/agent.log
}
