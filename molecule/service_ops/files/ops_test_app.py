"""A stand-in for bmi-backend: serves /health as JSON on a port.

The database dependency's status is read from a file on every request, so a
test can flip it ("healthy" / "unhealthy") without restarting the app.
--exit-after N makes it exit with status 1 N seconds after it started, like a
service that crashes on its first request.
"""
import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dependency-file", default="/etc/ops-test-app/database.status")
    parser.add_argument("--exit-after", type=float)
    args = parser.parse_args()

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/health":
                self.send_error(404)
                return
            try:
                with open(args.dependency_file) as handle:
                    database = handle.read().strip() or "healthy"
            except OSError:
                database = "healthy"
            healthy = database == "healthy"
            body = json.dumps({"status": "healthy" if healthy else "degraded",
                               "dependencies": {"database": {"status": database}}}).encode()
            self.send_response(200 if healthy else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *values):
            sys.stderr.write("request: " + (fmt % values) + "\n")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Health)
    if args.exit_after is not None:
        def crash():
            sys.stderr.write("error: crashed on purpose after {0:g} s\n".format(args.exit_after))
            sys.stderr.flush()
            os._exit(1)
        threading.Timer(args.exit_after, crash).start()
    sys.stderr.write("listening on 127.0.0.1:{0}\n".format(args.port))
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
