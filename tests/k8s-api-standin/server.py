#!/usr/bin/env python3
"""A Kubernetes API stand-in for ingrain's tests (Python standard library only).

No API server can run on the test machines, so this serves the two requests
the agent makes, the way the real one does:

  GET /api/v1/pods?fieldSelector=spec.nodeName=<node>
      -> a PodList (metadata.resourceVersion, items[]) of that node's pods
  GET /api/v1/pods?fieldSelector=...&watch=1&resourceVersion=N
        &allowWatchBookmarks=true&timeoutSeconds=S
      -> HTTP/1.1 chunked stream of newline-delimited watch events
         {"type": "ADDED|MODIFIED|DELETED|BOOKMARK|ERROR", "object": {...}}
         every event after N, then new ones as they happen; each event is
         written in two chunks with a pause in between, so clients see JSON
         objects split across reads

over HTTPS (certificate and key given; the test makes its own CA), and only
with "Authorization: Bearer <token>" (401 with a Status object otherwise).

The test scripts it through stdin, one JSON command per line; each command is
answered on stdout with "OK <op>" (or "ERR <why>") once it took effect:

  {"op": "add", "pod": {...}}       a Pod object (resourceVersion is set here)
  {"op": "modify", "pod": {...}}
  {"op": "delete", "uid": "..."}
  {"op": "bookmark"}                 a BOOKMARK on every open watch
  {"op": "gone", "http": false}      the history is compacted: open watches get
                                     an ERROR 410 event; a watch from an older
                                     version gets one too (or, with "http":
                                     true, an HTTP 410 response)
  {"op": "drop"}                     open watches send half an event and the
                                     connection is cut
  {"op": "token", "token": "..."}    the accepted token changes
  {"op": "fail", "status": 503, "count": 2}  the next requests fail
  {"op": "stats"}                    prints {"lists":..,"watches":..,...}
  {"op": "quit"}

Usage: server.py --cert srv.crt --key srv.key --token T [--port 0]
Prints "PORT <n>" when it listens. Also accepts the same commands as
POST /_standin/control (bearer token required), for manual use.
"""
import argparse
import http.server
import json
import random
import socket
import ssl
import sys
import threading
import time
import urllib.parse


class State:
    def __init__(self, token):
        self.cond = threading.Condition()
        self.token = token
        self.pods = {}          # uid -> pod object
        self.rv = 1000
        self.history = []       # (rv, type, pod)
        self.compacted = 0      # a watch from rv < compacted is "gone"
        self.gone_http = False
        self.gone_seq = 0
        self.drop_seq = 0
        self.bookmark_seq = 0
        self.fail = []          # statuses for the next requests
        self.stats = {"lists": 0, "watches": 0, "unauthorized": 0, "gone": 0,
                      "dropped": 0, "open_watches": 0, "failed": 0}

    def next_rv(self):
        self.rv += 1
        return self.rv


def status_obj(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def pod_node(pod):
    return (pod.get("spec") or {}).get("nodeName")


def make_handler(state, quiet):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            if not quiet:
                sys.stderr.write("standin: " + (fmt % args) + "\n")

        def send_json(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def authorized(self):
            auth = self.headers.get("Authorization", "")
            with state.cond:
                ok = auth == "Bearer " + state.token
                if not ok:
                    state.stats["unauthorized"] += 1
            if not ok:
                self.send_json(401, status_obj(401, "Unauthorized", "Unauthorized"))
            return ok

        def injected_failure(self):
            with state.cond:
                if not state.fail:
                    return False
                code = state.fail.pop(0)
                state.stats["failed"] += 1
            self.send_json(code, status_obj(code, "InternalError", "injected failure"))
            return True

        def do_POST(self):
            if self.path != "/_standin/control" or not self.authorized():
                if self.path != "/_standin/control":
                    self.send_json(404, status_obj(404, "NotFound", "not found"))
                return
            length = int(self.headers.get("Content-Length", "0"))
            reply = apply_command(state, self.rfile.read(length).decode())
            self.send_json(200, {"reply": reply})

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/api/v1/pods":
                self.send_json(404, status_obj(404, "NotFound", "the server could not find "
                                               "the requested resource"))
                return
            if not self.authorized() or self.injected_failure():
                return
            q = urllib.parse.parse_qs(url.query)
            node = None
            for sel in q.get("fieldSelector", []):
                for term in sel.split(","):
                    if term.startswith("spec.nodeName="):
                        node = term[len("spec.nodeName="):]
            if q.get("watch", ["0"])[0] in ("1", "true"):
                self.watch(node, q)
            else:
                self.list(node)

        def list(self, node):
            with state.cond:
                items = [p for p in state.pods.values() if node is None or pod_node(p) == node]
                rv = state.rv
                state.stats["lists"] += 1
            self.send_json(200, {"kind": "PodList", "apiVersion": "v1",
                                 "metadata": {"resourceVersion": str(rv)}, "items": items})

        def chunk(self, data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def send_event(self, ev):
            data = (json.dumps(ev) + "\n").encode()
            cut = random.randint(1, len(data) - 1)
            self.chunk(data[:cut])
            time.sleep(0.005)
            self.chunk(data[cut:])

        def watch(self, node, q):
            try:
                since = int(q.get("resourceVersion", ["0"])[0] or "0")
            except ValueError:
                self.send_json(400, status_obj(400, "BadRequest", "bad resourceVersion"))
                return
            timeout = float(q.get("timeoutSeconds", ["1800"])[0])
            bookmarks = q.get("allowWatchBookmarks", ["false"])[0] == "true"
            with state.cond:
                state.stats["watches"] += 1
                gone = since < state.compacted
                gone_http = gone and state.gone_http
                if gone:
                    state.stats["gone"] += 1
                seen_gone, seen_drop = state.gone_seq, state.drop_seq
                seen_bm = state.bookmark_seq
            if gone_http:
                self.send_json(410, status_obj(410, "Expired", "too old resource version: %d (%d)"
                                               % (since, state.compacted)))
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if gone:
                self.send_event({"type": "ERROR", "object": status_obj(
                    410, "Expired", "too old resource version: %d (%d)" % (since, state.compacted))})
                self.chunk(b"")
                return
            deadline = time.monotonic() + timeout
            sent = since
            with state.cond:
                state.stats["open_watches"] += 1
            try:
                while True:
                    with state.cond:
                        while True:
                            pending = [h for h in state.history if h[0] > sent]
                            if (pending or state.gone_seq != seen_gone or
                                    state.drop_seq != seen_drop or
                                    state.bookmark_seq != seen_bm or
                                    time.monotonic() >= deadline):
                                break
                            state.cond.wait(min(0.2, max(0.0, deadline - time.monotonic())))
                        gone_now = state.gone_seq != seen_gone
                        drop_now = state.drop_seq != seen_drop
                        bm_now = state.bookmark_seq != seen_bm
                        seen_bm = state.bookmark_seq
                        rv_now = state.rv
                    for rv, typ, pod in pending:
                        sent = rv
                        if node is not None and pod_node(pod) != node:
                            continue
                        self.send_event({"type": typ, "object": pod})
                    if drop_now:
                        data = json.dumps({"type": "ADDED", "object": {
                            "kind": "Pod", "metadata": {"name": "half", "uid": "half"}}}).encode()
                        self.chunk(data[:len(data) // 2])
                        with state.cond:
                            state.stats["dropped"] += 1
                        self.close_connection = True
                        try:
                            self.connection.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                        return
                    if gone_now:
                        self.send_event({"type": "ERROR", "object": status_obj(
                            410, "Expired", "too old resource version: %d (%d)"
                            % (sent, rv_now))})
                        break
                    if bm_now and bookmarks:
                        self.send_event({"type": "BOOKMARK", "object": {
                            "kind": "Pod", "apiVersion": "v1",
                            "metadata": {"resourceVersion": str(rv_now)}}})
                    if time.monotonic() >= deadline:
                        break
                self.chunk(b"")
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                self.close_connection = True
            finally:
                with state.cond:
                    state.stats["open_watches"] -= 1

    return Handler


def apply_command(state, line):
    try:
        cmd = json.loads(line)
        op = cmd["op"]
    except (ValueError, KeyError, TypeError) as e:
        return "ERR bad command: %s" % e
    with state.cond:
        if op in ("add", "modify"):
            pod = cmd.get("pod")
            uid = ((pod or {}).get("metadata") or {}).get("uid")
            if not uid:
                return "ERR pod without metadata.uid"
            if op == "modify" and uid not in state.pods:
                return "ERR no pod %s" % uid
            rv = state.next_rv()
            pod["metadata"]["resourceVersion"] = str(rv)
            typ = "ADDED" if uid not in state.pods else "MODIFIED"
            state.pods[uid] = pod
            state.history.append((rv, typ, pod))
        elif op == "delete":
            pod = state.pods.pop(cmd.get("uid"), None)
            if pod is None:
                return "ERR no pod %s" % cmd.get("uid")
            rv = state.next_rv()
            pod = json.loads(json.dumps(pod))
            pod["metadata"]["resourceVersion"] = str(rv)
            state.history.append((rv, "DELETED", pod))
        elif op == "bookmark":
            state.bookmark_seq += 1
        elif op == "gone":
            state.next_rv()
            state.compacted = state.rv
            state.gone_http = bool(cmd.get("http", False))
            state.history = []
            state.gone_seq += 1
        elif op == "drop":
            state.drop_seq += 1
        elif op == "token":
            state.token = cmd["token"]
        elif op == "fail":
            state.fail.extend([int(cmd.get("status", 503))] * int(cmd.get("count", 1)))
        elif op == "stats":
            return json.dumps(state.stats)
        elif op == "quit":
            return "OK quit"
        else:
            return "ERR unknown op %s" % op
        state.cond.notify_all()
    return "OK " + op


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            # TLS handshakes the test makes fail on purpose, cut connections
            if not args.quiet:
                sys.stderr.write("standin: connection from %s failed: %s\n"
                                 % (client_address[0], sys.exc_info()[1]))

    state = State(args.token)
    httpd = Server(("127.0.0.1", args.port), make_handler(state, args.quiet))
    httpd.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True,
                                   do_handshake_on_connect=False)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    print("PORT %d" % httpd.server_address[1], flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        reply = apply_command(state, line)
        print(reply, flush=True)
        if reply == "OK quit":
            break
    httpd.shutdown()


if __name__ == "__main__":
    main()
