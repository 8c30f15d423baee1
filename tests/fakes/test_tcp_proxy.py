"""The fake's own tests: it forwards, cuts and restores."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.fakes.tcp_proxy import TcpProxy


def echo_server() -> tuple[socket.socket, int]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=lambda c=conn: _echo(c), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data)


def roundtrip(port: int) -> bytes:
    """What comes back for b"ping"; b"" when the connection is hung up on."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(b"ping")
            return sock.recv(1024)
        except ConnectionResetError:
            return b""


def test_forwards_cuts_and_restores() -> None:
    server, port = echo_server()
    with server, TcpProxy("127.0.0.1", port) as proxy:
        assert roundtrip(proxy.port) == b"ping"
        held = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        held.sendall(b"x")
        assert held.recv(16) == b"x"
        proxy.cut()
        with contextlib.suppress(ConnectionResetError):  # a reset is a drop too
            assert held.recv(16) == b""  # the open connection was dropped
        held.close()
        assert roundtrip(proxy.port) == b""  # new ones are hung up on
        proxy.restore()
        assert roundtrip(proxy.port) == b"ping"
