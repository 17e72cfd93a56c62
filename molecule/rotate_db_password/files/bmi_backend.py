"""A stand-in for bmi-backend: a health endpoint backed by a real PostgreSQL login.

Reads its database login from the environment, as systemd's EnvironmentFile=
gives it: DATABASE_URL when set, else DATABASE_HOST, DATABASE_PORT,
DATABASE_NAME, DATABASE_USER and DATABASE_PASSWORD. Logs in over TCP with the
password at start and keeps that session, as a connection pool does; /health
runs SELECT 1 on it, logging in again when it is gone, and reports
dependencies.database.status. It never logs the password.
"""
import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2


def connection_options():
    if os.environ.get("DATABASE_URL"):
        return {"dsn": os.environ["DATABASE_URL"]}
    return {"host": os.environ.get("DATABASE_HOST", "127.0.0.1"), "port": int(os.environ.get("DATABASE_PORT", "5432")),
            "dbname": os.environ["DATABASE_NAME"], "user": os.environ["DATABASE_USER"],
            "password": os.environ.get("DATABASE_PASSWORD", "")}


class Database:
    def __init__(self):
        self.lock = threading.Lock()
        self.conn = None

    def check(self):
        """(status, detail) of the database dependency."""
        with self.lock:
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = psycopg2.connect(connect_timeout=3, application_name="bmi-backend",
                                                 **connection_options())
                    self.conn.autocommit = True
                with self.conn.cursor() as cur:
                    cur.execute("SELECT 1")
                return "healthy", "connected"
            except psycopg2.Error as error:
                self.conn = None
                # libpq's message names the user, never the password.
                return "unhealthy", " ".join(str(error).split())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    database = Database()
    status, detail = database.check()
    sys.stderr.write("started; database {0}: {1}\n".format(status, detail))
    sys.stderr.flush()

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/health":
                self.send_error(404)
                return
            state, reason = database.check()
            healthy = state == "healthy"
            body = json.dumps({"status": "healthy" if healthy else "degraded",
                               "dependencies": {"database": {"status": state, "detail": reason}}}).encode()
            self.send_response(200 if healthy else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *values):
            sys.stderr.write("request: " + (fmt % values) + "\n")

    ThreadingHTTPServer(("127.0.0.1", args.port), Health).serve_forever()


if __name__ == "__main__":
    main()
