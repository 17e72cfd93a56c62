"""The test application of molecule/deploy: serves /health and /version from the release it was started in.

Its release directory holds VERSION (the release's name) and HEALTH (`healthy`, or anything else for a release
whose health URL fails); .env is linked in from the shared directory and read at start, so a missing link fails.
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

HERE = os.path.dirname(os.path.realpath(__file__))


def read(name):
    with open(os.path.join(HERE, name)) as handle:
        return handle.read().strip()


VERSION, HEALTH, ENV = read("VERSION"), read("HEALTH"), read(".env")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            code = 200 if HEALTH == "healthy" else 503
            body = {"status": HEALTH, "release": VERSION}
        elif self.path == "/version":
            code, body = 200, {"release": VERSION, "env": ENV}
        else:
            code, body = 404, {"error": "not found"}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
