"""Certificates made with the openssl command line, and HTTPS health servers that use them.

A test CA signs leaf certificates valid for a chosen number of days, so the
certificate checks meet real files and real TLS handshakes. The health server
answers like the runbooks' services (`{"status": "healthy", "dependencies":
{...}}`); a test can fail a dependency or slow an answer while it runs.
"""
import http.server
import json
import os
import ssl
import subprocess
import threading
import time


def _openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, text=True)


class LocalCA:
    """A self-signed CA in `directory`; `issue` signs leaf certificates with it."""

    def __init__(self, directory, name="ops.runbook test CA"):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.cert = os.path.join(directory, "ca.pem")
        self.key = os.path.join(directory, "ca.key")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", self.key, "-out", self.cert, "-days", "3650", "-subj", "/O=ops.runbook tests/CN=" + name,
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, name, days, dns_names=("localhost",), ip_addresses=("127.0.0.1",)):
        """(cert path, key path, fullchain path) of a leaf valid from now for `days` days."""
        base = os.path.join(self.directory, name)
        key, csr, cert, fullchain = base + ".key", base + ".csr", base + ".pem", base + "-fullchain.pem"
        extensions = base + ".ext"
        alt = ["DNS:" + dns for dns in dns_names] + ["IP:" + ip for ip in ip_addresses]
        with open(extensions, "w") as handle:
            handle.write("subjectAltName=" + ",".join(alt) + "\nbasicConstraints=CA:FALSE\n"
                         "extendedKeyUsage=serverAuth\n")
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", "/O=ops.runbook tests/CN=" + dns_names[0])
        _openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
                 "-out", cert, "-days", str(days), "-extfile", extensions)
        with open(fullchain, "w") as out:
            for part in (cert, self.cert):
                with open(part) as handle:
                    out.write(handle.read())
        return cert, key, fullchain


class HealthState:
    """What the health server answers; tests change it between requests."""

    def __init__(self):
        self.dependencies = {"database": "healthy", "cache": "healthy", "messageQueue": "healthy"}
        self.delay_seconds = 0.0
        self.status_code = None

    def overall(self):
        return "healthy" if all(v == "healthy" for v in self.dependencies.values()) else "unhealthy"


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, code, body, content_type="application/json", headers=()):
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        state = self.server.state
        if self.path == "/health":
            time.sleep(state.delay_seconds)
            overall = state.overall()
            code = state.status_code or (200 if overall == "healthy" else 503)
            self._send(code, json.dumps({"status": overall, "version": "1.2.0", "uptime": 86400,
                                         "dependencies": dict(state.dependencies)}))
        elif self.path.startswith("/slow/"):
            time.sleep(int(self.path.rsplit("/", 1)[1]) / 1000.0)
            self._send(200, json.dumps({"status": "healthy"}))
        elif self.path == "/":
            self._send(200, "<!DOCTYPE html><title>Frontend</title><p>hello</p>", content_type="text/html")
        elif self.path == "/moved":
            self._send(301, "", content_type="text/plain", headers=[("Location", "/health")])
        else:
            self._send(404, json.dumps({"error": "not found"}))


class HealthServer:
    """A threaded HTTP(S) server on a free loopback port, answering like the runbooks' services."""

    def __init__(self, cert=None, key=None, sni=None):
        """Serve https with `cert`/`key`, or plain http without; `sni` maps other server names to (cert, key)."""
        self.state = HealthState()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.state = self.state
        self.scheme = "http"
        if cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            if sni:
                by_name = {}
                for name, (other_cert, other_key) in sni.items():
                    by_name[name] = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    by_name[name].load_cert_chain(other_cert, other_key)

                def choose(connection, server_name, _context):
                    if server_name in by_name:
                        connection.context = by_name[server_name]

                context.sni_callback = choose
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def url(self, path="/health", host="localhost"):
        return "{0}://{1}:{2}{3}".format(self.scheme, host, self.port, path)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
