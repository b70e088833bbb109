# statsd.sh: run the real Etsy StatsD daemon (npm statsd 0.9) in integration
# tests and read back what it received.
#
#   source "$IG_SOURCE_DIR/tests/integration/lib.sh"          # optional, see below
#   source "$IG_SOURCE_DIR/tests/integration/lib/statsd.sh"
#   statsd_start UDP_PORT MGMT_PORT    start it; returns once it answers on MGMT_PORT
#   statsd_counter NAME                print counter NAME's value (exit 1 when absent)
#   statsd_gauge NAME                  print gauge NAME's value (exit 1 when absent)
#   statsd_timer_count NAME            print how many samples timer/histogram NAME has
#   statsd_wait_counter NAME MIN [S]   wait up to S seconds (default 10) until NAME >= MIN
#   statsd_bad_lines                   print statsd.bad_lines_seen (lines StatsD rejected)
#   statsd_stop                        stop it
#
# The daemon comes from $IG_BUILD_DIR/testtools/node_modules/statsd (installed
# by scripts/install-deps.sh --test), else $IG_SOURCE_DIR/build/testtools/...;
# IG_STATSD_DIR overrides both. Its configuration is
# tests/integration/statsd_config.js (ports from the environment, no
# forwarding, flushInterval 1h, deleteCounters false: values accumulate for
# the whole test). Values are read from the management interface ("counters"
# etc., whose output is a JavaScript object literal, evaluated by node in an
# empty vm context).
#
# With lib.sh sourced first, a missing statsd or node skips the test (fails
# under CI=true), the daemon's pid joins IG_PIDS so the test's exit trap stops
# it, and its log is $IG_TMP/statsd.log (printed when the test fails).
# Without lib.sh, problems are printed and the functions return 1.

IG_SOURCE_DIR=${IG_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
IG_BUILD_DIR=${IG_BUILD_DIR:-$IG_SOURCE_DIR/build}
STATSD_PID=
STATSD_MGMT_PORT=
STATSD_LOG=
STATSD_OWN_DIR= # a temp dir statsd_start made (no lib.sh): removed by statsd_stop

_statsd_missing() {
	if declare -F ig_skip_or_fail >/dev/null; then
		ig_skip_or_fail "$*"
	fi
	echo "statsd.sh: $*" >&2
	return 1
}

_statsd_dir() {
	local d
	for d in "${IG_STATSD_DIR:-}" "$IG_BUILD_DIR/testtools/node_modules/statsd" \
		"$IG_SOURCE_DIR/build/testtools/node_modules/statsd"; do
		if [ -n "$d" ] && [ -f "$d/stats.js" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

# _statsd_mgmt COMMAND: the management interface's answer to COMMAND, up to
# its END line (stats, counters, timers, gauges) or first line (health).
_statsd_mgmt() {
	node -e '
const net = require("net");
const [port, cmd] = process.argv.slice(1);
const s = net.connect(Number(port), "127.0.0.1");
let buf = "";
s.setTimeout(5000, () => { console.error("statsd management: timeout"); process.exit(2); });
s.on("error", (e) => { console.error("statsd management: " + e.message); process.exit(2); });
s.on("data", (d) => {
	buf += d;
	const end = cmd === "health" ? buf.indexOf("\n") : buf.indexOf("\nEND\n");
	if (end >= 0) { process.stdout.write(buf.slice(0, end) + "\n"); s.destroy(); }
});
s.write(cmd + "\n");
' "$STATSD_MGMT_PORT" "$1"
}

# _statsd_value COMMAND NAME [count]: NAME's entry in the object COMMAND returns
# (for timers with "count": how many samples).
_statsd_value() {
	local out
	[ -n "$STATSD_MGMT_PORT" ] || { echo "statsd.sh: statsd_start first" >&2; return 1; }
	out=$(_statsd_mgmt "$1") || return 1
	printf '%s' "$out" | node -e '
const vm = require("vm");
const [name, mode] = process.argv.slice(1);
let text = "";
process.stdin.on("data", (d) => { text += d; });
process.stdin.on("end", () => {
	const o = vm.runInNewContext("(" + text + ")", Object.create(null), { timeout: 1000 });
	if (!(name in o)) process.exit(1);
	const v = o[name];
	console.log(mode === "count" ? (Array.isArray(v) ? v.length : 0) : v);
});
' "$2" "${3:-}"
}

statsd_start() {
	local port=${1:?usage: statsd_start UDP_PORT MGMT_PORT} mgmt=${2:?usage: statsd_start UDP_PORT MGMT_PORT}
	local dir logdir
	command -v node >/dev/null 2>&1 || { _statsd_missing "node not found (apt-get install nodejs)"; return 1; }
	dir=$(_statsd_dir) || { _statsd_missing "Etsy StatsD not installed (scripts/install-deps.sh --test, or npm install statsd@0.9 in $IG_BUILD_DIR/testtools)"; return 1; }
	if [ -n "${IG_TMP:-}" ]; then
		logdir=$IG_TMP
	else
		logdir=$(mktemp -d /tmp/ingrain-statsd.XXXXXX)
		STATSD_OWN_DIR=$logdir
	fi
	STATSD_LOG=$logdir/statsd.log
	STATSD_MGMT_PORT=$mgmt
	IG_STATSD_PORT=$port IG_STATSD_MGMT_PORT=$mgmt \
		node "$dir/stats.js" "$IG_SOURCE_DIR/tests/integration/statsd_config.js" \
		>"$STATSD_LOG" 2>&1 &
	STATSD_PID=$!
	if declare -p IG_PIDS >/dev/null 2>&1; then
		IG_PIDS+=("$STATSD_PID")
	fi
	for _ in $(seq 100); do
		if ! kill -0 "$STATSD_PID" 2>/dev/null; then
			echo "statsd.sh: statsd exited at start; its log:" >&2
			cat "$STATSD_LOG" >&2
			statsd_stop
			return 1
		fi
		if [ "$(_statsd_mgmt health 2>/dev/null)" = "health: up" ]; then
			return 0
		fi
		sleep 0.1
	done
	echo "statsd.sh: statsd did not answer on 127.0.0.1:$mgmt within 10s; its log:" >&2
	cat "$STATSD_LOG" >&2
	statsd_stop
	return 1
}

statsd_counter() { _statsd_value counters "${1:?usage: statsd_counter NAME}"; }
statsd_gauge() { _statsd_value gauges "${1:?usage: statsd_gauge NAME}"; }
statsd_timer_count() { _statsd_value timers "${1:?usage: statsd_timer_count NAME}" count; }
statsd_bad_lines() { _statsd_value counters statsd.bad_lines_seen; }

statsd_wait_counter() {
	local name=${1:?usage: statsd_wait_counter NAME MIN [SECONDS]} min=${2:?usage: statsd_wait_counter NAME MIN [SECONDS]}
	local secs=${3:-10} v
	for _ in $(seq $((secs * 10))); do
		v=$(statsd_counter "$name" 2>/dev/null) || v=
		if [ -n "$v" ] && node -e 'process.exit(Number(process.argv[1]) >= Number(process.argv[2]) ? 0 : 1)' "$v" "$min"; then
			return 0
		fi
		sleep 0.1
	done
	echo "statsd.sh: counter $name is '${v}' after ${secs}s, expected >= $min" >&2
	return 1
}

statsd_stop() {
	[ -n "$STATSD_PID" ] || return 0
	kill -TERM "$STATSD_PID" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$STATSD_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$STATSD_PID" 2>/dev/null || true
	wait "$STATSD_PID" 2>/dev/null || true
	STATSD_PID=
	STATSD_MGMT_PORT=
	if [ -n "$STATSD_OWN_DIR" ]; then
		rm -rf "$STATSD_OWN_DIR"
		STATSD_OWN_DIR=
	fi
}
