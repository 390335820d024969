"""A threaded loopback TCP server that feeds LF-terminated text lines to an emulator.

Both simulated instruments (the SMU and the crossbar board) are line-oriented: the host
writes one command line, the instrument answers with zero or one reply line. This module
holds everything those two servers share: framing (LF terminator, a trailing CR stripped,
bytes decoded as latin-1 so garbage reaches the emulator's parser intact), the line-length
limit, one active client at a time, link-loss notification, containment of emulator bugs
and a bounded shutdown. The protocol itself stays in the emulator (`LineSession`).

Threads: one daemon thread accepts; one daemon thread per connection reads, calls the
session and writes the replies. Every session call runs under ``lock``, which the two
servers of one bench share, so the SMU and the board never touch the board model at the
same time.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, runtime_checkable

_log = logging.getLogger(__name__)

DEFAULT_MAX_LINE_BYTES = 4096
"""Line limit (bytes, terminator included) when the session does not state MAX_LINE_BYTES."""

_RECV_BYTES = 65536


@runtime_checkable
class LineSession(Protocol):
    """What the server needs from an emulator (the board protocol or an SMU).

    Optional extras, used when present: ``MAX_LINE_BYTES: int`` (the longest accepted line
    in bytes, LF included), ``on_connect() -> None`` (a host connected), and
    ``line_too_long(n_bytes: int) -> str | None`` (a line of ``n_bytes`` bytes was
    discarded; the emulator queues its overflow error and returns its reply). Without
    ``line_too_long`` the server passes the first ``MAX_LINE_BYTES + 1`` characters of the
    discarded line to `handle_line`, whose own length check then reports the overflow.
    """

    def handle_line(self, line: str) -> str | None:
        """Execute one command line (no terminator); return the reply line or None."""

    def on_disconnect(self) -> None:
        """The host went away (link loss)."""


SessionFactory = Callable[[], LineSession]
InternalErrorReply = Callable[[str, BaseException], str | None]


class LineServer:
    """A TCP line server for one emulator, on ``host:port`` (port 0 picks a free port).

    Args:
        session_factory: called once per accepted connection; returns the session whose
            methods serve it (usually the bench's single emulator instance, so instrument
            state survives reconnections as on a real instrument).
        name: what the server serves, for logs and error messages (e.g. "board").
        lock: serialises every session call; share one lock between the servers of a bench.
        busy_reply: the line sent to a second client while one is connected, before it is
            closed; None closes it without a word.
        internal_error_reply: when a session call raises, the exception is logged and this
            callable (given the command line and the exception) returns the reply line to
            send, or None to send nothing. The server keeps serving either way.
        busy_grace_s: a second client waits up to this long (s) for the first one to finish
            disconnecting before it is refused, so a host that closes and reopens at once
            is not refused by a race with the server noticing the close.
        close_timeout_s: bound on the time `close` waits for each thread (s).
    """

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        name: str,
        host: str = "127.0.0.1",
        port: int = 0,
        lock: threading.Lock | threading.RLock | None = None,
        busy_reply: str | None = None,
        internal_error_reply: InternalErrorReply | None = None,
        busy_grace_s: float = 0.25,
        close_timeout_s: float = 2.0,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"{name} server: port {port} not in 0..65535")
        self.name = name
        self._factory = session_factory
        self._host = host
        self._requested_port = port
        self._lock: threading.Lock | threading.RLock = lock or threading.Lock()
        self._busy_reply = busy_reply
        self._internal_error_reply = internal_error_reply
        self._busy_grace_s = busy_grace_s
        self._close_timeout_s = close_timeout_s
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._state = threading.Condition()
        self._active: socket.socket | None = None  # the connection being served
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LineServer:
        """Bind, listen and start accepting. Raises OSError naming the address if busy."""
        if self._listener is not None:
            raise RuntimeError(f"{self.name} server already started")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self._host, self._requested_port))
        except OSError as exc:
            listener.close()
            raise OSError(
                exc.errno,
                f"{self.name} server cannot listen on {self._host}:{self._requested_port}: "
                f"{exc.strerror or exc}",
            ) from exc
        listener.listen(8)
        # A timeout lets the accept loop notice `close()` promptly on every platform.
        listener.settimeout(0.1)
        self._listener = listener
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"{self.name}-accept", daemon=True
        )
        self._accept_thread.start()
        _log.info("%s server listening on %s:%d", self.name, self._host, self.port)
        return self

    def close(self) -> None:
        """Stop accepting, close every client socket and join the threads (bounded time).

        The connected host's session gets `on_disconnect` (the board goes safe). Idempotent.
        """
        self._stopping.set()
        if self._listener is not None:
            # Wakes a blocked accept() at once on Linux; elsewhere the 0.1 s timeout does.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
        if self._accept_thread is not None:
            self._accept_thread.join(self._close_timeout_s)
        if self._listener is not None:
            self._listener.close()
        with self._state:
            connections = list(self._connections)
            threads = list(self._threads)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(self._close_timeout_s)
            if thread.is_alive():
                _log.warning("%s server: thread %s did not stop in time", self.name, thread.name)

    def __enter__(self) -> LineServer:
        return self.start() if self._listener is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ status
    @property
    def port(self) -> int:
        """The TCP port actually bound (after `start`)."""
        if self._listener is None:
            raise RuntimeError(f"{self.name} server not started")
        port: int = self._listener.getsockname()[1]
        return port

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return self._host

    @property
    def listening(self) -> bool:
        """Whether the server accepts connections (started and not closed)."""
        return self._listener is not None and self._listener.fileno() != -1

    @property
    def client_connected(self) -> bool:
        """Whether a host is being served right now."""
        with self._state:
            return self._active is not None

    def wait_until_idle(self, timeout_s: float) -> bool:
        """Wait until no host is served (its disconnect fully handled); False on timeout."""
        with self._state:
            return self._state.wait_for(lambda: self._active is None, timeout_s)

    # ------------------------------------------------------------------ threads
    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stopping.is_set():
                    break
                _log.warning("%s server: accept failed: %s", self.name, exc)
                self._stopping.wait(0.05)
                continue
            conn.settimeout(None)
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(
                target=self._connection_main,
                args=(conn, peer),
                name=f"{self.name}-client-{peer[1]}",
                daemon=True,
            )
            with self._state:
                if self._stopping.is_set():
                    conn.close()
                    break
                self._connections.add(conn)
                self._threads.add(thread)
            thread.start()

    def _claim(self, conn: socket.socket) -> bool:
        """Make ``conn`` the active connection, waiting the grace period if one is active."""
        with self._state:
            free = self._state.wait_for(
                lambda: self._active is None or self._stopping.is_set(), self._busy_grace_s
            )
            if not free or self._stopping.is_set():
                return False
            self._active = conn
            return True

    def _connection_main(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        try:
            if not self._claim(conn):
                if not self._stopping.is_set():
                    _log.info("%s server: refused %s:%d, busy", self.name, *peer[:2])
                    if self._busy_reply is not None:
                        with contextlib.suppress(OSError):
                            conn.sendall(_encode(self._busy_reply))
                return
            try:
                self._serve(conn, peer)
            finally:
                with self._state:
                    self._active = None
                    self._state.notify_all()
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            with self._state:
                self._connections.discard(conn)
                self._threads.discard(threading.current_thread())

    def _serve(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        """Serve one host until it disconnects or the server closes."""
        _log.info("%s server: host %s:%d connected", self.name, *peer[:2])
        session: LineSession | None = None
        try:
            with self._lock:
                session = self._factory()
                on_connect = getattr(session, "on_connect", None)
                if callable(on_connect):
                    on_connect()
            framer = _LineFramer(_max_line_bytes(session))
            while not self._stopping.is_set():
                try:
                    data = conn.recv(_RECV_BYTES)
                except OSError:
                    break
                if not data:
                    break
                for event in framer.feed(data):
                    reply = self._dispatch(session, event)
                    if reply is not None:
                        conn.sendall(_encode(reply))
        except OSError as exc:
            _log.info("%s server: link to %s:%d lost: %s", self.name, *peer[:2], exc)
        except Exception:
            _log.exception("%s server: session setup failed for %s:%d", self.name, *peer[:2])
        finally:
            # A partial line (no LF yet) dies with the framer: never executed.
            if session is not None:
                try:
                    with self._lock:
                        session.on_disconnect()
                except Exception:
                    _log.exception("%s server: on_disconnect raised", self.name)
            _log.info("%s server: host %s:%d disconnected", self.name, *peer[:2])

    def _dispatch(self, session: LineSession, event: _Line | _Overlong) -> str | None:
        """Run one framed line through the session; contain any exception it raises."""
        return run_line(
            session,
            event,
            lock=self._lock,
            name=self.name,
            internal_error_reply=self._internal_error_reply,
        )


def run_line(
    session: LineSession,
    event: _Line | _Overlong,
    *,
    lock: threading.Lock | threading.RLock,
    name: str,
    internal_error_reply: InternalErrorReply | None = None,
) -> str | None:
    """One framed line through ``session`` under ``lock``: its reply, or None.

    An overlong line goes to the session's ``line_too_long`` (else its head to
    ``handle_line``). An exception of the session is logged and contained: the reply is
    then ``internal_error_reply(line, exc)``, or None. Shared by every transport that
    serves a line session (this server, `simulator.vxi11_server`).
    """
    line = event.text if isinstance(event, _Line) else event.head
    try:
        with lock:
            if isinstance(event, _Line):
                return session.handle_line(event.text)
            too_long = getattr(session, "line_too_long", None)
            if callable(too_long):
                reply: str | None = too_long(event.n_bytes)
                return reply
            return session.handle_line(event.head)
    except Exception as exc:
        _log.exception("%s server: the emulator raised on %r", name, line[:80])
        if internal_error_reply is None:
            return None
        return internal_error_reply(line, exc)


# ---------------------------------------------------------------------- framing
class _Line:
    """A complete command line (terminator and one trailing CR removed)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _Overlong:
    """A line that exceeded the limit; it was discarded up to its LF."""

    __slots__ = ("head", "n_bytes")

    def __init__(self, head: str, n_bytes: int) -> None:
        self.head = head  # the first max_line_bytes + 1 characters
        self.n_bytes = n_bytes  # its full length in bytes, LF included


class _LineFramer:
    """Splits a byte stream into lines; bounded memory whatever the peer sends.

    A line may hold at most ``max_line_bytes`` bytes including its LF. Beyond that the
    bytes are dropped until the next LF, and one `_Overlong` event stands for the line.
    Bytes are decoded as latin-1 (every byte maps to one character), so the emulator's
    parser sees garbage as it is and can report it.
    """

    def __init__(self, max_line_bytes: int) -> None:
        if max_line_bytes < 2:
            raise ValueError(f"max_line_bytes must be >= 2, got {max_line_bytes}")
        self.max_line_bytes = max_line_bytes
        self._pending = bytearray()
        self._discarding = False
        self._discarded = 0

    def feed(self, data: bytes) -> list[_Line | _Overlong]:
        """Consume ``data``; return the events for every line it completes, in order."""
        events: list[_Line | _Overlong] = []
        start = 0
        while start < len(data):
            lf = data.find(b"\n", start)
            chunk = data[start:] if lf < 0 else data[start:lf]
            start = len(data) if lf < 0 else lf + 1
            # Keep at most max_line_bytes + 1 bytes: enough to know the line is too long
            # and to hand its head to the session; count the rest.
            room = self.max_line_bytes + 1 - len(self._pending)
            self._pending += chunk[:room]
            self._discarded += max(0, len(chunk) - room)
            if len(self._pending) + 1 > self.max_line_bytes:
                self._discarding = True
            if lf < 0:
                break
            if self._discarding:
                head = bytes(self._pending).decode("latin-1")
                events.append(_Overlong(head, len(self._pending) + self._discarded + 1))
                self._discarding = False
                self._discarded = 0
            else:
                raw = bytes(self._pending)
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                events.append(_Line(raw.decode("latin-1")))
            self._pending.clear()
        return events

    def end(self) -> list[_Line | _Overlong]:
        """The message ended without a final LF (a VXI-11 or USBTMC END): the pending
        bytes form the last line, if any."""
        return self.feed(b"\n") if self._pending or self._discarding else []

    def reset(self) -> None:
        """Forget any partial line (a device clear)."""
        self._pending.clear()
        self._discarding = False
        self._discarded = 0


def _max_line_bytes(session: LineSession) -> int:
    value = getattr(session, "MAX_LINE_BYTES", DEFAULT_MAX_LINE_BYTES)
    if not isinstance(value, int) or value < 2:
        raise ValueError(f"{type(session).__name__}.MAX_LINE_BYTES must be an int >= 2: {value!r}")
    return value


def _encode(reply: str) -> bytes:
    """One reply line on the wire: latin-1 (unmappable characters become '?') plus LF."""
    return reply.encode("latin-1", errors="replace") + b"\n"
