"""An HTTPS proxy in front of pebble that adds ACME renewal information (ARI,
RFC 9773), which Debian's pebble 2.4 lacks: tests need an authority that
answers it, and no real one can run here. Everything else is forwarded to
pebble unchanged, with the Host header kept, so pebble's URLs and its JWS
URL checks name the proxy.

    python3 ari_proxy.py LISTEN_PORT PEBBLE_HOST:PORT CERT KEY

- GET /dir: pebble's directory plus "renewalInfo".
- POST /order-plz: forwarded; the new order echoes its "replaces", as an
  ARI server's does.
- GET /renewal-info/{id}: the current window, with Retry-After: 1.
- POST /_window with body "renew-now" or "later": moves the window.
- GET /_queries: how many renewal-information requests were answered;
  GET /_replaces: the "replaces" fields of the new orders seen, one a line.
"""

import base64
import datetime
import http.client
import http.server
import json
import ssl
import sys
import threading

LISTEN_PORT = int(sys.argv[1])
PEBBLE = sys.argv[2]
CERT, KEY = sys.argv[3], sys.argv[4]

state = {"window": "later", "queries": 0, "replaces": []}
lock = threading.Lock()


def window():
    now = datetime.datetime.now(datetime.timezone.utc)
    if state["window"] == "renew-now":
        start, end = now - datetime.timedelta(hours=2), now - datetime.timedelta(hours=1)
    else:
        start, end = now + datetime.timedelta(days=30), now + datetime.timedelta(days=31)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return {"suggestedWindow": {"start": start.strftime(fmt), "end": end.strftime(fmt)}}


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="text/plain", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def forward(self, body, replaces=None):
        context = ssl._create_unverified_context()
        upstream = http.client.HTTPSConnection(PEBBLE, context=context, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
        upstream.request(self.command, self.path, body=body or None, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        if self.path == "/dir" and answer.status == 200:
            directory = json.loads(data)
            directory["renewalInfo"] = "https://%s/renewal-info" % self.headers["Host"]
            data = json.dumps(directory).encode()
        if replaces is not None and answer.status == 201:
            # An ARI server echoes what the order replaces.
            order = json.loads(data)
            order["replaces"] = replaces
            data = json.dumps(order).encode()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        upstream.close()

    def do_GET(self):
        if self.path.startswith("/renewal-info/"):
            with lock:
                state["queries"] += 1
                body = json.dumps(window()).encode()
            return self.reply(200, body, "application/json", [("Retry-After", "1")])
        if self.path == "/_queries":
            return self.reply(200, str(state["queries"]).encode())
        if self.path == "/_replaces":
            return self.reply(200, "\n".join(state["replaces"]).encode())
        self.forward(b"")

    def do_HEAD(self):
        self.forward(b"")

    def do_POST(self):
        body = self.body()
        replaces = None
        if self.path == "/_window":
            with lock:
                state["window"] = body.decode().strip()
            return self.reply(200, b"ok")
        if "new-order" in self.path or "order-plz" in self.path:
            try:
                encoded = json.loads(body)["payload"]
                payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
                if "replaces" in payload:
                    replaces = payload["replaces"]
                    with lock:
                        state["replaces"].append(replaces)
            except (ValueError, KeyError, TypeError):
                pass
        self.forward(body, replaces)


server = http.server.ThreadingHTTPServer(("127.0.0.1", LISTEN_PORT), Proxy)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(CERT, KEY)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
