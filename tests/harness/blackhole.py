"""A server that accepts TCP connections and never answers: the hostile network peer.

`Blackhole()` listens on a free loopback port, accepts every connection, reads
(and discards) whatever the client sends, and never sends a byte. Clients
that trust the peer to answer hang; clients with deadlines fail on time.

`SilentProxy(port, answer=N)` forwards the first N connections to a real
server on 127.0.0.1:port (SeaweedFS, PostgreSQL, ...) and, from then on,
accepts new connections and keeps silent on them; the connections already
forwarded go silent too (their bytes stop flowing both ways). Useful to make
a server hang in the middle of a job, for example after an upload started.

Both run in daemon threads of the test process and stop with `stop()` (or as
context managers): by their own handle, never by a process name.
"""
import select
import socket
import threading


class Blackhole:
    def __init__(self, drain=True):
        self.drain = drain
        self.host = "127.0.0.1"
        self.port = None
        self.accepted = 0
        self._listener = None
        self._conns = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = None

    @property
    def address(self):
        return "{0}:{1}".format(self.host, self.port)

    @property
    def url(self):
        return "http://{0}".format(self.address)

    def start(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="blackhole {0}".format(self.port), daemon=True)
        self._thread.start()
        return self

    def _serve(self):
        while not self._stopped.is_set():
            try:
                conn, _peer = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._conns.append(conn)
            self._handle(conn)

    def _handle(self, conn):
        if self.drain:
            threading.Thread(target=self._swallow, args=(conn,), daemon=True).start()

    def _swallow(self, conn):
        """Read and drop what the client sends, so its writes never block: it waits for an answer."""
        conn.settimeout(0.2)
        while not self._stopped.is_set():
            try:
                if not conn.recv(65536):
                    return
            except socket.timeout:
                continue
            except OSError:
                return

    def stop(self):
        self._stopped.set()
        if self._listener is not None:
            self._listener.close()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            for conn in self._conns:
                try:
                    conn.close()
                except OSError:
                    pass
            self._conns = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class SilentProxy(Blackhole):
    """Forwards the first `answer` connections to 127.0.0.1:`target_port`, then everything goes silent."""

    def __init__(self, target_port, answer=1):
        super().__init__(drain=True)
        self.target_port = target_port
        self.answer = answer
        self.silent = threading.Event()

    def go_silent(self):
        """From now on nothing flows on any connection, old or new."""
        self.silent.set()

    def _handle(self, conn):
        if self.accepted > self.answer or self.silent.is_set():
            super()._handle(conn)
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            conn.close()
            return
        with self._lock:
            self._conns.append(upstream)
        threading.Thread(target=self._pump, args=(conn, upstream), daemon=True).start()

    def _pump(self, conn, upstream):
        pair = {conn: upstream, upstream: conn}
        while not self._stopped.is_set():
            if self.silent.is_set():
                self._swallow(conn)  # the client's bytes vanish; nothing comes back
                return
            try:
                ready, _w, _x = select.select(list(pair), [], [], 0.1)
            except (OSError, ValueError):
                return
            for sock in ready:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    for end in pair:
                        try:
                            end.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                    return
                try:
                    pair[sock].sendall(data)
                except OSError:
                    return
