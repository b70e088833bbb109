#!/usr/bin/env bash
# Several aggregator replicas behind one name, as a headless Service gives
# them: 3 aggregator processes, 6 agent identities sending through the agent's
# own sender (ig_send --agent: node-agent/sender.c + aggr_pick.c), one real
# Etsy StatsD.
#
# The name resolves to the 3 replicas through the network namespace's own
# /etc/hosts (ip netns exec bind-mounts /etc/netns/<ns>/hosts), as cluster DNS
# answers a headless Service with one record per ready pod.
#
# 1. Each identity dials the replica its stable hash picks; they spread over
#    more than one replica.
# 2. Mid-run one replica (the one with most agents) is stopped (SIGTERM, as a
#    pod deletion) and removed from the name, as the endpoints controller does.
#    Exactly its agents move, to a remaining replica; the others stay.
# 3. Reconciliation: every identity's records are acknowledged, none lost or
#    refused, and StatsD's counter is exactly 6 x N x R: the replicas' counters
#    add up, nothing is unaccounted for and nothing counted twice.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib/statsd.sh"
ig_require_root
ig_require_cmd ip
ig_require_cmd node
ig_require_cmd python3
ig_require_built

N=${IG_SCALE_ENVELOPES:-150}
R=25
IDS=(node-a node-b node-c node-d node-e node-f)
NAME=aggr.ig-scale.test

if [ -z "${IG_SCALE_INNER:-}" ]; then
	ns=ig-scale-$$
	hosts=/etc/netns/$ns/hosts
	ip netns add "$ns" || ig_fail "ip netns add $ns"
	mkdir -p "/etc/netns/$ns"
	printf '127.0.0.1 localhost\n127.0.1.1 %s\n127.0.1.2 %s\n127.0.1.3 %s\n' "$NAME" "$NAME" "$NAME" >"$hosts"
	rc=0
	ip netns exec "$ns" env IG_SCALE_INNER=1 IG_SCALE_HOSTS="$hosts" IG_SOURCE_DIR="$IG_SOURCE_DIR" \
		IG_BUILD_DIR="$IG_BUILD_DIR" CI="${CI:-}" bash "$0" || rc=$?
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "/etc/netns/$ns"
	exit "$rc"
fi

ip link set lo up
sport=$(ig_free_port)
mport=$(ig_free_port)
port=$(ig_free_port)
statsd_start "$sport" "$mport"
for i in 1 2 3; do
	cat >"$IG_TMP/aggr$i.yaml" <<YAML
aggregator:
  listen: tcp://127.0.1.$i:$port
  plaintext: true
  state_dir: ""
  control: ""
probes:
  files:
    pipelines: [live]
pipelines:
  live:
    stages: []
    backends: [statsd]
backends:
  statsd:
    type: statsd
    address: 127.0.0.1:$sport
    prefix: "so."
    flush_interval: 200ms
YAML
	ig_start "aggr$i" "$IG_TMP/aggr$i.log" "aggregator listening" "$IG_AGGREGATOR" -c "$IG_TMP/aggr$i.yaml"
done

# 6 identities, 150 envelopes of 25 records each, one every 20 ms (3 s),
# re-resolving the name every 200 ms.
declare -A SPID
for id in "${IDS[@]}"; do
	"$IG_SEND" "tcp://$NAME:$port" --agent "$N" "$R" "$id" 20 200 >"$IG_TMP/send-$id.log" 2>&1 &
	SPID[$id]=$!
	IG_PIDS+=("$!")
done
targets_known() {
	for id in "${IDS[@]}"; do grep -q '^target ' "$IG_TMP/send-$id.log" || return 1; done
}
ig_wait_for "every identity chose a replica" 10 targets_known
declare -A TARGET
declare -A LOAD
for id in "${IDS[@]}"; do
	t=$(sed -n 's/^target tcp:\/\/\(127\.0\.1\.[0-9]\):.*/\1/p' "$IG_TMP/send-$id.log" | head -n 1)
	[ -n "$t" ] || ig_fail "$id dialed $(grep '^target' "$IG_TMP/send-$id.log"), not one replica's address"
	TARGET[$id]=$t
	LOAD[$t]=$((${LOAD[$t]:-0} + 1))
done
ig_log "placement: $(for id in "${IDS[@]}"; do printf '%s->%s ' "$id" "${TARGET[$id]}"; done)"
ig_check "identities spread over more than one replica (${#LOAD[@]} used)" test "${#LOAD[@]}" -ge 2

# Stop the busiest replica mid-run and take it out of the name.
victim=
for a in "${!LOAD[@]}"; do
	if [ -z "$victim" ] || [ "${LOAD[$a]}" -gt "${LOAD[$victim]}" ]; then victim=$a; fi
done
sleep 1 # about a third of the envelopes sent
grep -v " $NAME\$" "$IG_SCALE_HOSTS" >"$IG_TMP/hosts.new" || true
for i in 1 2 3; do [ "127.0.1.$i" = "$victim" ] || echo "127.0.1.$i $NAME" >>"$IG_TMP/hosts.new"; done
cat "$IG_TMP/hosts.new" >"$IG_SCALE_HOSTS" # in place: the bind mount keeps the inode
vpid_var="IG_PID_aggr${victim##*.}"
ig_stop "${!vpid_var}"
ig_log "stopped replica $victim (${LOAD[$victim]} identities)"

for id in "${IDS[@]}"; do
	wait "${SPID[$id]}" || ig_fail "$id did not deliver everything: $(tail -n 3 "$IG_TMP/send-$id.log")"
done
expect=$((${#IDS[@]} * N * R))
moved_ok=1
for id in "${IDS[@]}"; do
	log=$IG_TMP/send-$id.log
	grep -q "^done agent=$id acked=$((N * R)) unacked=0 .* lost=0 " "$log" ||
		ig_fail "$id: $(grep '^done' "$log")"
	if [ "${TARGET[$id]}" = "$victim" ]; then
		grep -q "^moved tcp://$victim:$port tcp://127\.0\.1\.[0-9]:$port\$" "$log" || moved_ok=0
		grep -q "^moved [^ ]* tcp://$victim:" "$log" && moved_ok=0
	else
		grep -q '^moved' "$log" && moved_ok=0
	fi
done
ig_check "exactly the stopped replica's identities moved, to a remaining replica" test "$moved_ok" -eq 1
ig_pass "every identity's $((N * R)) records acknowledged, none lost or refused"
for i in 1 2 3; do
	[ "127.0.1.$i" = "$victim" ] && continue
	kill -TERM "$(eval echo "\$IG_PID_aggr$i")"
done
for i in 1 2 3; do
	[ "127.0.1.$i" = "$victim" ] && continue
	wait "$(eval echo "\$IG_PID_aggr$i")" || true
done
statsd_wait_counter "so.file.open" "$expect" 15 || true
got=$(statsd_counter "so.file.open" || echo none)
ig_check "StatsD counts exactly ${#IDS[@]} x $N x $R = $expect records over 3 replicas (got $got)" test "$got" = "$expect"
ig_check "StatsD rejected no line" test "$(statsd_bad_lines)" -eq 0
ig_done
