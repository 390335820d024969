"""A scripted line server on an ephemeral loopback port, for bad-input tests of drivers.

It stands in for a wrong or broken instrument (a different model, one that never answers,
one that hangs up), which the simulator deliberately does not offer.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType


class ScriptedLineServer:
    """Accepts one client at a time; each received line goes to ``handler``.

    ``handler(line)`` returns the reply (sent with LF), or None for no reply.
    """

    def __init__(self, handler: Callable[[str], str | None]) -> None:
        self.handler = handler
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.02)  # accept() wakes up to notice a stop request
        self.port: int = self._listener.getsockname()[1]
        self._client: socket.socket | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.received: list[str] = []

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            self._client = client
            buffer = b""
            with client:
                while not self._stop.is_set():
                    try:
                        data = client.recv(4096)
                    except OSError:
                        break
                    if not data:
                        break
                    buffer += data
                    while b"\n" in buffer:
                        raw, buffer = buffer.split(b"\n", 1)
                        line = raw.decode("latin-1").rstrip("\r")
                        self.received.append(line)
                        reply = self.handler(line)
                        if reply is not None:
                            try:
                                client.sendall(reply.encode("latin-1") + b"\n")
                            except OSError:
                                break
            self._client = None

    def drop_client(self) -> None:
        """Close the connection from the server side (a cable pulled, a crash)."""
        client = self._client
        if client is not None:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)  # the serving thread closes it

    @property
    def visa_resource(self) -> str:
        return f"TCPIP0::127.0.0.1::{self.port}::SOCKET"

    @property
    def serial_url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def __enter__(self) -> ScriptedLineServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self.drop_client()
        self._thread.join(timeout=2)
        self._listener.close()
