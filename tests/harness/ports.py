"""Free loopback ports, picked per run so parallel runs never collide."""
import socket
from contextlib import ExitStack


def free_ports(count):
    """Return `count` distinct TCP ports that are free on 127.0.0.1 right now."""
    with ExitStack() as stack:
        ports = []
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def wait_for_port(port, timeout, host="127.0.0.1"):
    """True once something accepts connections on host:port, False after timeout."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False
