# s3lib.sh: S3 helpers for the integration tests (source after lib.sh).
#
#   ig_s3_require                 prerequisites (Debian python3 with botocore + boto3,
#                                 node, s3rver from scripts/install-deps.sh --test)
#   ig_s3_start BUCKET [PROXY_ARGS...]   s3rver on a free port with BUCKET, and the
#                                 signature-verifying proxy (tests/s3/verify_proxy.py)
#                                 in front of it; sets IG_S3_URL (the proxy) and
#                                 IG_S3_PORT, IG_S3RVER_PORT. Virtual-hosted requests
#                                 work too: http://<bucket>.s3.localhost:$IG_S3_PORT
#   ig_s3_proxy_stop / ig_s3_proxy_start   take the proxy down / bring it back (same port)
#   ig_s3_ctl PATH                GET a proxy control endpoint (/__ctl/stats, ...)
#   ig_s3_stat EXPR               a value from /__ctl/stats (python expression over `s`)
#   ig_s3_read [ARGS...]          every archived record under the bucket, one JSON per line
#                                 (through the proxy, or from $IG_S3_READ_URL when set)
# Credentials are s3rver's account (S3RVER/S3RVER); the proxy checks them.

IG_PY=/usr/bin/python3 # Debian's python: the one python3-botocore installs into
IG_S3_AK=S3RVER
IG_S3_SK=S3RVER

ig_s3_require() {
	[ -x "$IG_PY" ] || ig_skip_or_fail "$IG_PY not found"
	"$IG_PY" -c 'import botocore.auth, boto3' 2>/dev/null ||
		ig_skip_or_fail "python3-botocore / python3-boto3 not installed (scripts/install-deps.sh --test)"
	ig_require_cmd node
	IG_S3RVER=""
	for d in "$IG_BUILD_DIR/testtools" "$IG_SOURCE_DIR/build/testtools"; do
		if [ -f "$d/node_modules/s3rver/bin/s3rver.js" ]; then
			IG_S3RVER="$d/node_modules/s3rver/bin/s3rver.js"
			break
		fi
	done
	[ -n "$IG_S3RVER" ] || ig_skip_or_fail "s3rver not installed (scripts/install-deps.sh --test)"
}

ig_s3_port_open() {
	"$IG_PY" -c 'import socket,sys
s=socket.socket(); s.settimeout(0.2)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"
}

ig_s3_start() {
	IG_S3_BUCKET=$1
	shift
	IG_S3_PROXY_ARGS=("$@")
	IG_S3RVER_PORT=$(ig_free_port)
	IG_S3_PORT=$(ig_free_port)
	IG_S3_URL="http://127.0.0.1:$IG_S3_PORT"
	mkdir -p "$IG_TMP/s3data"
	node "$IG_S3RVER" -d "$IG_TMP/s3data" -a 127.0.0.1 -p "$IG_S3RVER_PORT" --silent \
		--allow-mismatched-signatures --service-endpoint localhost \
		--configure-bucket "$IG_S3_BUCKET" \
		>>"$IG_TMP/s3rver.log" 2>&1 &
	IG_PIDS+=("$!")
	IG_PID_s3rver=$!
	ig_wait_for "s3rver listening" 20 ig_s3_port_open "$IG_S3RVER_PORT"
	ig_s3_proxy_start
}

ig_s3_proxy_start() {
	"$IG_PY" "$IG_SOURCE_DIR/tests/s3/verify_proxy.py" --listen "$IG_S3_PORT" \
		--upstream "$IG_S3RVER_PORT" --access-key "$IG_S3_AK" --secret-key "$IG_S3_SK" \
		--log "$IG_TMP/proxy-requests.log" "${IG_S3_PROXY_ARGS[@]}" >>"$IG_TMP/proxy.log" 2>&1 &
	IG_PIDS+=("$!")
	IG_PID_proxy=$!
	ig_wait_for "verifying proxy listening" 20 ig_s3_port_open "$IG_S3_PORT"
}

ig_s3_proxy_stop() {
	kill -TERM "$IG_PID_proxy" 2>/dev/null || true
	wait "$IG_PID_proxy" 2>/dev/null || true
}

ig_s3_ctl() {
	"$IG_PY" -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$IG_S3_URL$1"
}

ig_s3_stat() {
	ig_s3_ctl /__ctl/stats | "$IG_PY" -c 'import json, sys
s = json.load(sys.stdin)
print(eval(sys.argv[1]))' "$1"
}

ig_s3_read() {
	"$IG_PY" "$IG_SOURCE_DIR/tests/s3/s3_read.py" --endpoint "${IG_S3_READ_URL:-$IG_S3_URL}" \
		--bucket "$IG_S3_BUCKET" \
		--access-key "$IG_S3_AK" --secret-key "$IG_S3_SK" "$@"
}

# ig_s3_count_pid PID: archived records whose tags.pid is PID.
ig_s3_count_pid() {
	ig_s3_read | "$IG_PY" -c 'import json, sys
print(sum(1 for l in sys.stdin if json.loads(l)["tags"].get("pid") == int(sys.argv[1])))' "$1"
}
