"""The session-wide network guard (tests/conftest.py): a test can reach loopback, and nothing else.

203.0.113.1 is TEST-NET-3 (RFC 5737): never routed, so without the guard a connection to it hangs until a timeout;
with it the attempt raises at once and names the host and port.
"""

import socket
import time

import pytest

FAR = ("203.0.113.1", 80)


def test_a_connection_off_the_machine_raises_at_once_naming_host_and_port():
    for attempt in (lambda: socket.create_connection(FAR, timeout=30),
                    lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(FAR),
                    lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect_ex(FAR)):
        t0 = time.perf_counter()
        with pytest.raises(OSError, match=r"tried to reach 203\.0\.113\.1:80"):
            attempt()
        assert time.perf_counter() - t0 < 1.0  # refused before any packet is sent, not after a timeout


def test_a_hostname_is_refused_before_it_is_resolved():
    with pytest.raises(OSError, match=r"tried to reach huggingface\.co:443"):
        socket.create_connection(("huggingface.co", 443), timeout=30)


def test_loopback_still_connects():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            peer, _ = server.accept()
            with peer:
                client.sendall(b"ping")
                assert peer.recv(4) == b"ping"
        with socket.create_connection(("localhost", port), timeout=5):
            server.accept()[0].close()
