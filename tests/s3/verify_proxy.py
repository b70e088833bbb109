#!/usr/bin/python3
"""verify_proxy: an S3 signature-checking front for s3rver in ingrain's tests.

s3rver does not verify AWS Signature V4 (a request signed with a wrong
secret still gets 200), so the tests put this proxy in front of it. For each
request it recomputes the signature with an independent reference
implementation, botocore's S3SigV4Auth (Debian python3-botocore), over the
headers the request says it signed, its method, path, query and body, at
the request's own x-amz-date; a mismatch is answered 403
SignatureDoesNotMatch (and never reaches s3rver). It also checks Content-MD5
and x-amz-checksum-sha256 against the body. Verified requests are forwarded
unchanged to s3rver and its answer is returned.

It also stands in for STS AssumeRoleWithWebIdentity (GET or POST /?Action=
AssumeRoleWithWebIdentity): with the expected token it issues the proxy's
key pair plus a fresh session token, which later S3 requests must carry.

Test controls (no signature), all answering JSON:
  GET /__ctl/stats           counts: verified, rejected, per-key successful PUTs
  GET /__ctl/fail?status=503&count=2   answer the next 2 S3 requests with 503
  GET /__ctl/cut?count=1     read half the body of the next request, then drop
                             the connection (a server killed mid-upload)

  verify_proxy.py --listen PORT --upstream PORT --access-key AK --secret-key SK
                  [--region us-east-1] [--web-identity-token TOKEN] [--log FILE]
"""
import argparse
import base64
import datetime
import hashlib
import http.client
import http.server
import json
import socketserver
import sys
import threading
import time
import urllib.parse

import botocore.auth
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

LOCK = threading.Lock()
STATE = {
    "verified": 0,
    "rejected": 0,
    "rejected_reasons": [],
    "puts": {},  # key -> successful PutObject/CompleteMultipartUpload count
    "multipart_completed": 0,
    "fail": [],  # statuses to force on the next requests
    "cut": 0,
    "sts_issued": 0,
}
TOKENS = set()


class _FixedClock:
    """Stands in for the datetime module inside botocore.auth so that the
    signature is computed at the request's x-amz-date."""

    def __init__(self):
        self.now = None
        outer = self

        class _DT(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return outer.now

        self.datetime = _DT
        self.timedelta = datetime.timedelta
        self.timezone = datetime.timezone


CLOCK = _FixedClock()
botocore.auth.datetime = CLOCK
SIGN_LOCK = threading.Lock()


def s3_error(code, message, status):
    body = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code>'
            '<Message>%s</Message></Error>' % (code, message)).encode()
    return status, {"Content-Type": "application/xml"}, body


def expected_authorization(args, method, path, query, headers, body, token):
    auth = headers.get("authorization", "")
    signed = ""
    for part in auth.split(","):
        part = part.strip()
        if part.startswith("SignedHeaders="):
            signed = part[len("SignedHeaders="):]
    names = [n for n in signed.split(";") if n]
    req_headers = {}
    for n in names:
        if n not in headers:
            return None, "signed header %s was not sent" % n
        req_headers[n] = headers[n]
    url = "http://%s%s%s" % (headers.get("host", "localhost"), path,
                             ("?" + query) if query else "")
    req = AWSRequest(method=method, url=url, data=body, headers=req_headers)
    creds = Credentials(args.access_key, args.secret_key, token)
    date = headers.get("x-amz-date", "")
    try:
        when = datetime.datetime.strptime(date, "%Y%m%dT%H%M%SZ")
    except ValueError:
        return None, "bad x-amz-date %r" % date
    with SIGN_LOCK:
        CLOCK.now = when
        S3SigV4Auth(creds, "s3", args.region).add_auth(req)
    return req.headers["Authorization"], None


def verify(args, method, path, query, headers, body):
    """None when the request is authentic, else (status, headers, body)."""
    auth = headers.get("authorization")
    if not auth or not auth.startswith("AWS4-HMAC-SHA256 "):
        return s3_error("AccessDenied", "missing or non-SigV4 Authorization", 403)
    cred = auth.split("Credential=", 1)[-1].split("/", 1)[0]
    if cred != args.access_key:
        return s3_error("InvalidAccessKeyId", "unknown access key %s" % cred, 403)
    token = headers.get("x-amz-security-token")
    if token is not None and token not in TOKENS:
        return s3_error("InvalidToken", "unknown session token", 403)
    if args.web_identity_token and token is None:
        return s3_error("AccessDenied", "session token required", 403)
    want, err = expected_authorization(args, method, path, query, headers, body, token)
    if err:
        return s3_error("SignatureDoesNotMatch", err, 403)
    if want != auth:
        return s3_error("SignatureDoesNotMatch",
                        "signature mismatch: got %s want %s" % (auth, want), 403)
    if "content-md5" in headers:
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        if md5 != headers["content-md5"]:
            return s3_error("BadDigest", "Content-MD5 does not match the body", 400)
    if "x-amz-checksum-sha256" in headers:
        sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
        if sha != headers["x-amz-checksum-sha256"]:
            return s3_error("BadDigest", "x-amz-checksum-sha256 does not match", 400)
    return None


def sts(args, query):
    q = urllib.parse.parse_qs(query)
    if q.get("WebIdentityToken", [""])[0] != args.web_identity_token or not args.web_identity_token:
        body = ('<ErrorResponse><Error><Code>InvalidIdentityToken</Code>'
                '<Message>bad token</Message></Error></ErrorResponse>').encode()
        return 400, {"Content-Type": "text/xml"}, body
    with LOCK:
        STATE["sts_issued"] += 1
        token = "session-%d-%d" % (STATE["sts_issued"], int(time.time()))
        TOKENS.add(token)
    exp = (datetime.datetime.utcnow() + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = ("<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
            "<AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>"
            "<SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>"
            "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
            % (args.access_key, args.secret_key, token, exp)).encode()
    return 200, {"Content-Type": "text/xml"}, body


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    args = None

    def log_message(self, fmt, *a):
        if self.args.log:
            with open(self.args.log, "a") as f:
                f.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % a))

    def reply(self, status, headers, body):
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def control(self, path, query):
        q = urllib.parse.parse_qs(query)
        with LOCK:
            if path == "/__ctl/fail":
                STATE["fail"] += [int(q.get("status", ["503"])[0])] * int(q.get("count", ["1"])[0])
            elif path == "/__ctl/cut":
                STATE["cut"] += int(q.get("count", ["1"])[0])
            body = json.dumps({k: v for k, v in STATE.items()}).encode()
        self.reply(200, {"Content-Type": "application/json"}, body)

    def handle_any(self):
        split = urllib.parse.urlsplit(self.path)
        path, query = split.path, split.query
        if path.startswith("/__ctl/"):
            return self.control(path, query)
        length = int(self.headers.get("Content-Length") or 0)
        with LOCK:
            cut = STATE["cut"] > 0 and length > 0
            if cut:
                STATE["cut"] -= 1
        if cut:
            self.rfile.read(length // 2)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        body = self.rfile.read(length) if length else b""
        if path == "/" and "Action=AssumeRoleWithWebIdentity" in query:
            return self.reply(*sts(self.args, query))
        headers = {k.lower(): v for k, v in self.headers.items()}
        bad = verify(self.args, self.command, path, query, headers, body)
        if bad:
            with LOCK:
                STATE["rejected"] += 1
                STATE["rejected_reasons"].append(bad[2].decode()[:300])
            return self.reply(*bad)
        with LOCK:
            STATE["verified"] += 1
            forced = STATE["fail"].pop(0) if STATE["fail"] else None
        if forced:
            return self.reply(*s3_error("ServiceUnavailable", "forced by the test", forced))
        conn = http.client.HTTPConnection("127.0.0.1", self.args.upstream, timeout=30)
        fwd = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
        conn.request(self.command, self.path, body=body, headers=fwd)
        resp = conn.getresponse()
        rbody = resp.read()
        conn.close()
        if resp.status == 200 and (
                (self.command == "PUT" and not query)
                or (self.command == "POST" and "uploadId=" in query and b"<Error>" not in rbody)):
            if ".s3." in headers.get("host", ""):  # virtual-hosted: /<key>
                key = urllib.parse.unquote(path[1:])
            else:  # path-style: /<bucket>/<key>
                key = urllib.parse.unquote(path.split("/", 2)[2]) if path.count("/") >= 2 else path
            with LOCK:
                STATE["puts"][key] = STATE["puts"].get(key, 0) + 1
                if self.command == "POST":
                    STATE["multipart_completed"] += 1
        self.reply(resp.status, dict(resp.getheaders()), rbody)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--upstream", type=int, required=True)
    p.add_argument("--access-key", required=True)
    p.add_argument("--secret-key", required=True)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--web-identity-token", default="")
    p.add_argument("--log", default="")
    args = p.parse_args()
    Handler.args = args
    srv = Server(("127.0.0.1", args.listen), Handler)
    print("verify_proxy listening on 127.0.0.1:%d -> %d" % (args.listen, args.upstream), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
