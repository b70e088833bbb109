# lib.sh: shared helpers for ingrain's integration tests (bash, run by ctest).
#
# Each test sources this file, then uses:
#   ig_require_root / ig_require_cmd CMD   prerequisite checks: under CI=true a missing
#                                          prerequisite FAILS the test; elsewhere it skips (77)
#   ig_free_port                           a free TCP/UDP port on 127.0.0.1
#   ig_start_aggregator CONFIG [ARGS]      starts the real binary, waits until it listens
#   ig_start_agent CONFIG [ARGS]           starts the real binary, waits until probes run
#   ig_wait_for DESC TIMEOUT CMD...        polls CMD until it succeeds or fails the test
#   ig_pass MSG / ig_fail MSG / ig_check DESC CMD...
# Everything started is killed and every temp dir removed on exit.
set -euo pipefail

IG_SOURCE_DIR=${IG_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
IG_BUILD_DIR=${IG_BUILD_DIR:-$IG_SOURCE_DIR/build}
IG_AGGREGATOR=${IG_AGGREGATOR:-$IG_BUILD_DIR/aggregator/ingrain-aggregator}
IG_AGENT=${IG_AGENT:-$IG_BUILD_DIR/node-agent/ingrain-agent}
IG_SEND=${IG_SEND:-$IG_BUILD_DIR/tests/ig_send}
IG_TEST_NAME=$(basename "$0" .sh)
IG_TMP=$(mktemp -d "/tmp/ingrain-${IG_TEST_NAME}.XXXXXX")
IG_PIDS=()
IG_CHECKS=0

ig_log() { printf '[%s] %s\n' "$IG_TEST_NAME" "$*"; }

ig_cleanup() {
	local rc=$?
	for pid in "${IG_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${IG_PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		for f in "$IG_TMP"/*.log; do
			[ -f "$f" ] || continue
			echo "----- $f (last 40 lines) -----"
			tail -n 40 "$f"
		done
	fi
	if [ -n "${IG_KEEP_TMP:-}" ]; then
		echo "[$IG_TEST_NAME] kept $IG_TMP (IG_KEEP_TMP)" >&2
	else
		rm -rf "$IG_TMP"
	fi
	exit "$rc"
}
trap ig_cleanup EXIT

ig_fail() {
	echo "[$IG_TEST_NAME] FAIL: $*" >&2
	exit 1
}

ig_pass() { ig_log "ok: $*"; IG_CHECKS=$((IG_CHECKS + 1)); }

# ig_check DESC CMD...: runs CMD; fails the test with DESC when it fails.
ig_check() {
	local desc=$1
	shift
	if "$@"; then ig_pass "$desc"; else ig_fail "$desc"; fi
}

ig_skip_or_fail() {
	if [ "${CI:-}" = "true" ]; then
		ig_fail "prerequisite missing under CI=true: $*"
	fi
	echo "[$IG_TEST_NAME] SKIP: $* (set CI=true to make this a failure)" >&2
	exit 77
}

ig_require_root() {
	[ "$(id -u)" -eq 0 ] || ig_skip_or_fail "must run as root (loads BPF programs)"
}

ig_require_cmd() {
	command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || ig_skip_or_fail "command '$1' not found (scripts/install-deps.sh --test installs it)"
}

ig_require_built() {
	for b in "$IG_AGGREGATOR" "$IG_AGENT" "$IG_SEND"; do
		[ -x "$b" ] || ig_fail "binary $b not built"
	done
}

ig_free_port() {
	python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# ig_wait_for DESC TIMEOUT_S CMD...
ig_wait_for() {
	local desc=$1 timeout=$2
	shift 2
	local deadline=$((SECONDS + timeout))
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || ig_fail "timed out after ${timeout}s waiting for: $desc"
		sleep 0.1
	done
}

# ig_start NAME LOGFILE MARKER BIN ARGS...: start in background, wait for MARKER in the log.
ig_start() {
	local name=$1 log=$2 marker=$3
	shift 3
	# The log may hold an earlier run's lines (restarts append): only lines
	# written after this start count.
	local skip=0
	[ -f "$log" ] && skip=$(wc -l <"$log")
	"$@" >>"$log" 2>&1 &
	local pid=$!
	IG_PIDS+=("$pid")
	eval "IG_PID_${name}=$pid"
	local deadline=$((SECONDS + 20))
	until tail -n +"$((skip + 1))" "$log" 2>/dev/null | grep -q "$marker"; do
		kill -0 "$pid" 2>/dev/null || ig_fail "$name exited during start-up (log: $(tail -n 20 "$log"))"
		[ "$SECONDS" -lt "$deadline" ] || ig_fail "$name did not start in 20s"
		sleep 0.05
	done
}

ig_start_aggregator() {
	local cfg=$1
	shift
	ig_start aggregator "$IG_TMP/aggregator.log" "aggregator listening" "$IG_AGGREGATOR" -c "$cfg" "$@"
}

# Each test's agent gets its own disk buffer (agent.buffer_dir) under IG_TMP
# unless the test passes --buffer-dir itself: never the machine's default
# directory, which another test's agent may hold or have left envelopes in.
ig_start_agent() {
	local cfg=$1
	shift
	local buf=()
	[[ " $* " == *" --buffer-dir "* ]] || buf=(--buffer-dir "$IG_TMP/agent-buffer")
	ig_start agent "$IG_TMP/agent.log" "agent running" "$IG_AGENT" -c "$cfg" "${buf[@]}" "$@"
}

# ig_stop PID: SIGTERM and wait (max 15 s); fails when the process does not exit 0.
ig_stop() {
	local pid=$1 rc=0
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || ig_fail "process $pid exited with $rc after SIGTERM"
}

# A python3 helper that opens files and prints what it did as JSON lines.
ig_opener() {
	python3 "$IG_SOURCE_DIR/tests/integration/opener.py" "$@"
}

ig_done() {
	[ "$IG_CHECKS" -gt 0 ] || ig_fail "no check ran"
	ig_log "PASS ($IG_CHECKS checks)"
}

# ig_files_config FILE PORT MONITOR_DIR OUTPUT [AGENT_EXTRA] [AGGREGATOR_EXTRA]:
# writes the configuration most end-to-end tests use: the files probe on
# MONITOR_DIR feeding one pipeline into a console backend writing JSON lines
# to OUTPUT; agent and aggregator on 127.0.0.1:PORT. The extra arguments are
# YAML lines (two-space indented) appended to the agent and aggregator sections.
ig_files_config() {
	local file=$1 port=$2 mon=$3 out=$4 agent_extra=${5:-} agg_extra=${6:-}
	cat >"$file" <<YAML
agent:
  aggregator: tcp://127.0.0.1:$port
  plaintext: true
  batch_max_age: 50ms
$agent_extra
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  control: ""
$agg_extra
probes:
  files:
    monitor_dirs: ["$mon"]
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
}

# ig_tls_ca DIR: a fresh test CA (DIR/ca.crt, DIR/ca.key), EC P-256, valid 2 days.
ig_tls_ca() {
	local d=$1
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/ca.key" -out "$d/ca.crt" -subj "/CN=ingrain-test-ca-$RANDOM" -days 30 \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null ||
		ig_fail "openssl could not make a CA"
}

# ig_tls_cert CA_DIR OUT_DIR CN SAN [NOT_BEFORE NOT_AFTER]: OUT_DIR/{tls.crt,tls.key,ca.crt}
# in the layout of a Kubernetes TLS Secret, signed by CA_DIR, with the
# subjectAltName SAN (e.g. "DNS:node-a" or "DNS:localhost,IP:127.0.0.1").
# NOT_BEFORE/NOT_AFTER (YYYYMMDDHHMMSSZ) make e.g. an expired certificate.
ig_tls_cert() {
	local ca=$1 out=$2 cn=$3 san=$4 nb=${5:-} na=${6:-}
	mkdir -p "$out"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$out/tls.key.new" \
		-out "$out/req.csr" -subj "/CN=$cn" 2>/dev/null || ig_fail "openssl req failed"
	if [ -n "$nb" ]; then
		local db="$out/.ca"
		mkdir -p "$db"
		: >"$db/index.txt"
		openssl rand -hex 8 >"$db/serial"
		cat >"$db/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
database = $db/index.txt
serial = $db/serial
new_certs_dir = $db
default_md = sha256
policy = p
x509_extensions = ext
[p]
commonName = supplied
[ext]
subjectAltName = $san
basicConstraints = CA:FALSE
CNF
		openssl ca -batch -config "$db/ca.cnf" -cert "$ca/ca.crt" -keyfile "$ca/ca.key" \
			-in "$out/req.csr" -out "$out/tls.crt.new" -startdate "$nb" -enddate "$na" \
			-notext 2>/dev/null || ig_fail "openssl ca failed"
		rm -rf "$db"
	else
		openssl x509 -req -in "$out/req.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" \
			-set_serial "0x$(openssl rand -hex 8)" -days 30 -out "$out/tls.crt.new" \
			-extfile <(printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$san") \
			2>/dev/null || ig_fail "openssl x509 -req failed"
	fi
	cp "$ca/ca.crt" "$out/ca.crt.new"
	# Renames, so that a watcher never sees half a file (as a Secret update).
	mv -f "$out/tls.key.new" "$out/tls.key"
	mv -f "$out/tls.crt.new" "$out/tls.crt"
	mv -f "$out/ca.crt.new" "$out/ca.crt"
	rm -f "$out/req.csr"
}

# ig_tls_publish SRC_DIR SECRET_DIR: publishes SRC_DIR's tls.crt/tls.key/ca.crt
# into SECRET_DIR the way the kubelet updates a mounted Secret: a new
# timestamped directory, then an atomic swap of the ..data symlink the file
# names point through. A rotation is one rename; no reader sees a mix.
ig_tls_publish() {
	local src=$1 dst=$2 ts
	ts="..$(date +%Y_%m_%d_%H_%M_%S.%N)"
	mkdir -p "$dst"
	mkdir "$dst/$ts"
	cp "$src/tls.crt" "$src/tls.key" "$src/ca.crt" "$dst/$ts/"
	ln -sfn "$ts" "$dst/..data_tmp"
	mv -Tf "$dst/..data_tmp" "$dst/..data"
	for f in tls.crt tls.key ca.crt; do
		[ -L "$dst/$f" ] || ln -sfn "..data/$f" "$dst/$f"
	done
}
