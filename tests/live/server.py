"""A small real HTTP/1.1 API server for the live and proxy tests: echoes a user record with PII.

    python server.py HOST PORT [CERT KEY]
"""
import gzip
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


TYPED = {"email": {"email": "jane.doe@example.com"}, "phone": {"phone": "+1 415-555-2671"},
         "iban": {"iban": "DE89370400440532013000"}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as services speak

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        record = json.loads(body or b"{}")
        reply = json.dumps({"id": 8812, "status": "created", "user": record}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Echo-Path", self.path)  # which request this answers, for pairing checks
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def do_GET(self):
        if self.path.startswith("/gzip"):  # a compressed response, to check proxies pass bytes through
            reply = gzip.compress(json.dumps({"email": "jane.doe@example.com", "items": list(range(200))}).encode(), mtime=0)
            encoding = "gzip"
        elif self.path.startswith("/pii/"):  # /pii/<type>/<n>: a response whose data type depends on the path
            kind = self.path.split("/")[2]
            reply, encoding = json.dumps({"request": self.path, "contact": TYPED.get(kind, {})}).encode(), None
        elif self.path.startswith("/large/"):  # /large/<MB>: a download larger than any body the sensor reads
            size = int(self.path.split("/")[2]) << 20
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk = b"x" * (1 << 20)
            for _ in range(size >> 20):
                self.wfile.write(chunk)
            return
        elif self.path.startswith("/garbage"):  # a broken upstream
            self.wfile.write(b"this is not HTTP\r\n\r\n")
            self.close_connection = True
            return
        else:
            reply, encoding = b'{"status": "ok"}', None
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler)
    if len(sys.argv) > 4:  # CERT KEY: serve HTTPS
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[3], sys.argv[4])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()
