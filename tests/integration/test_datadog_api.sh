#!/usr/bin/env bash
# Datadog metrics API end to end: the real agent and aggregator, a local
# HTTPS stand-in of the v2 series endpoint (certificate made here, trusted
# through ca_file, so TLS is verified) that checks the DD-API-KEY header,
# gunzips and decodes the JSON body. The series values must add up to the
# events generated; a refused key must give a clear error and no retry.
source "$(dirname "$0")/lib.sh"
ig_require_root
ig_require_built
ig_require_cmd openssl
IG_PY=/usr/bin/python3
[ -x "$IG_PY" ] || ig_skip_or_fail "$IG_PY not found"

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$IG_TMP/key.pem" -out "$IG_TMP/cert.pem" \
	-days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 ||
	ig_fail "openssl could not make a test certificate"
cat >"$IG_TMP/dd_standin.py" <<'PY'
import gzip, http.server, json, ssl, sys
port, cert, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, status, body):
        b = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        with open(out, "a") as f:
            if self.path != "/api/v2/series":
                return self.answer(404, {"errors": ["no such path"]})
            if self.headers.get("DD-API-KEY") != "dd-key-123":
                f.write(json.dumps({"refused": self.headers.get("DD-API-KEY")}) + "\n")
                return self.answer(403, {"errors": ["Forbidden"]})
            if self.headers.get("Content-Encoding") != "gzip":
                return self.answer(400, {"errors": ["expected gzip"]})
            f.write(json.dumps(json.loads(gzip.decompress(body))) + "\n")
        self.answer(202, {"errors": []})
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("listening", flush=True)
srv.serve_forever()
PY
ddport=$(ig_free_port)
"$IG_PY" "$IG_TMP/dd_standin.py" "$ddport" "$IG_TMP/cert.pem" "$IG_TMP/key.pem" \
	"$IG_TMP/received.jsonl" >"$IG_TMP/standin.log" 2>&1 &
IG_PIDS+=("$!")
ig_wait_for "the HTTPS stand-in" 10 grep -q listening "$IG_TMP/standin.log"

port=$(ig_free_port)
mon="$IG_TMP/mon"
mkdir -p "$mon"
write_config() { # API_KEY
	cat >"$IG_TMP/config.yaml" <<YAML
agent:
  aggregator: tcp://127.0.0.1:$port
  plaintext: true
  batch_max_age: 50ms
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  state_dir: $IG_TMP/state
  control: ipc://$IG_TMP/control.sock
probes:
  files:
    monitor_dirs: ["$mon"]
    pipelines: [metrics]
pipelines:
  metrics:
    stages: []
    backends: [dd]
backends:
  dd:
    type: datadog
    api_key: $1
    url: https://127.0.0.1:$ddport
    ca_file: $IG_TMP/cert.pem
    flush_interval: 500ms
    tags: ["env:ci"]
    spool_dir: $IG_TMP/spool
    retry_min: 100ms
    retry_max: 500ms
YAML
}

write_config dd-key-123
ig_start_aggregator "$IG_TMP/config.yaml"
ig_start_agent "$IG_TMP/config.yaml"
for _ in 1 2 3; do ig_opener open "$mon/passwd" creat >>"$IG_TMP/opened.jsonl"; done
ig_opener storm "$mon" 4 >>"$IG_TMP/opened.jsonl"
sum_for() { # PID -> sum of ingrain.file.open values tagged pid:PID
	"$IG_PY" - "$IG_TMP/received.jsonl" "$1" <<'PY'
import json, sys
total = 0
for line in open(sys.argv[1]):
    p = json.loads(line)
    for s in p.get("series", []):
        if s["metric"] == "ingrain.file.open" and "pid:%s" % sys.argv[2] in s["tags"]:
            assert s["type"] == 1 and "env:ci" in s["tags"], s
            total += sum(pt["value"] for pt in s["points"])
print(total)
PY
}
pids=$(cut -d, -f1 "$IG_TMP/opened.jsonl" | tr -dc '0-9\n' | sort -u)
all_arrived() {
	[ -f "$IG_TMP/received.jsonl" ] || return 1
	for p in $pids; do [ "$(sum_for "$p")" -ge 1 ] || return 1; done
	local storm_pid
	storm_pid=$(tail -n1 "$IG_TMP/opened.jsonl" | cut -d, -f1 | tr -dc 0-9)
	[ "$(sum_for "$storm_pid")" -ge 4 ]
}
ig_wait_for "series for every opener process" 20 all_arrived
sleep 1 # a second count would arrive by now
for p in $pids; do
	want=$("$IG_PY" -c 'import json, sys
print(sum(j.get("storm", 1) for j in map(json.loads, open(sys.argv[1])) if j["pid"] == int(sys.argv[2])))' \
		"$IG_TMP/opened.jsonl" "$p")
	ig_check "pid $p: series values add up to its $want opens" [ "$(sum_for "$p")" = "$want" ]
done
ig_check "series carry the path tag" \
	grep -q "\"path:$mon/passwd\"" "$IG_TMP/received.jsonl"
ig_stop "$IG_PID_agent"
ig_stop "$IG_PID_aggregator"

# A refused API key: one clear error, no retry, the payload kept spooled.
write_config wrong-key
ig_start_aggregator "$IG_TMP/config.yaml"
ig_start_agent "$IG_TMP/config.yaml"
ig_opener open "$mon/passwd" r >/dev/null
ig_wait_for "the refusal is reported" 20 grep -q "API key was refused" "$IG_TMP/aggregator.log"
refused=$(grep -c refused "$IG_TMP/received.jsonl")
sleep 1.5
ig_check "no retry with a refused key" [ "$(grep -c refused "$IG_TMP/received.jsonl")" = "$refused" ]
ig_check "the payload is kept in the spool" bash -c "ls '$IG_TMP/spool' | grep -q batch"
ig_stop "$IG_PID_agent"
ig_stop "$IG_PID_aggregator"
ig_done
