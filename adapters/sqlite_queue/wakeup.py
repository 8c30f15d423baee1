"""Wake-up notes between processes that share one queue file.

An idle consumer need not poll the file to learn that another process queued a job: each
waiting consumer binds a Unix datagram socket in a directory named after the queue file,
and a producer, after committing, sends one byte to every socket there. A note is only a
hint ("look now"); the claim in the file stays the only truth, so a lost note costs at most
one fallback poll, and a note nobody needed costs one empty claim.

The directory lives in the temporary directory (socket paths are limited to ~100 bytes),
is private to the user, and is keyed by the queue file's real path. A socket left behind
by a killed process refuses notes and is removed by the next producer. Where Unix sockets
are unavailable, or the directory cannot be used, consumers simply poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
import tempfile
from collections.abc import Callable

log = logging.getLogger(__name__)

_NOTE = b"!"


def wake_directory(queue_path: str) -> str | None:
    """Where the consumers of ``queue_path`` listen; None for an in-memory queue."""
    if queue_path == ":memory:" or not hasattr(socket, "AF_UNIX"):
        return None
    key = hashlib.sha256(os.path.realpath(queue_path).encode()).hexdigest()[:16]
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return os.path.join(tempfile.gettempdir(), f"wta-queue-{uid}-{key}")


class Wakeup:
    """One queue instance's side of the notes: it may listen, and it notifies."""

    def __init__(self, queue_path: str) -> None:
        self.directory = wake_directory(queue_path)
        self._listener: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.address: str | None = None
        self._sender: socket.socket | None = None

    def listen(self, on_note: Callable[[], None]) -> None:
        """Call ``on_note`` on this loop whenever a note arrives; idempotent per loop."""
        loop = asyncio.get_running_loop()
        if self._loop is loop or self.directory is None:
            return
        self.stop_listening()
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        except OSError as exc:
            log.debug("queue wake-ups unavailable (%s): polling only", exc)
            self.directory = None
            return
        address = os.path.join(self.directory, f"{os.getpid()}-{secrets.token_hex(4)}")
        try:
            sock.setblocking(False)
            sock.bind(address)
            loop.add_reader(sock.fileno(), self._drain, sock, on_note)
        except OSError as exc:
            sock.close()
            log.debug("queue wake-ups unavailable (%s): polling only", exc)
            self.directory = None
            return
        self._listener, self._loop, self.address = sock, loop, address

    @staticmethod
    def _drain(sock: socket.socket, on_note: Callable[[], None]) -> None:
        with contextlib.suppress(OSError):
            while sock.recv(16):
                pass
        on_note()

    def notify(self) -> None:
        """Send a note to every other listening consumer; never raises."""
        if self.directory is None:
            return
        try:
            names = os.listdir(self.directory)
        except OSError:
            return  # no consumer ever listened here
        if self._sender is None:
            try:
                self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sender.setblocking(False)
            except OSError:
                return
        for name in names:
            address = os.path.join(self.directory, name)
            if address == self.address:
                continue  # our own consumer was told in-process
            try:
                self._sender.sendto(_NOTE, address)
            except ConnectionRefusedError:
                # Nobody reads it: its process died without cleaning up.
                with contextlib.suppress(OSError):
                    os.unlink(address)
            except OSError:
                pass  # gone meanwhile, or its buffer is full: it has notes to read already

    def stop_listening(self) -> None:
        sock, self._listener = self._listener, None
        loop, self._loop = self._loop, None
        address, self.address = self.address, None
        if sock is None:
            return
        if loop is not None and not loop.is_closed():
            loop.remove_reader(sock.fileno())
        sock.close()
        if address is not None:
            with contextlib.suppress(OSError):
                os.unlink(address)

    def close(self) -> None:
        self.stop_listening()
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.close()
