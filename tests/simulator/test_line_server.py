"""The generic loopback line server, driven by small test sessions over real sockets."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.line_server import LineServer, _Line, _LineFramer, _Overlong

MAX = 64  # the test sessions' line limit (bytes, LF included)
IO_TIMEOUT_S = 5.0  # generous: only bounds a failing test, never measured


class EchoSession:
    """Answers `X?` with `echo:X?`, `SET ...` with nothing, `RAISE` by raising.

    Mimics what the emulators do with bad input: non-printable characters give -101, a
    line longer than MAX_LINE_BYTES (the server's fallback path) gives -223.
    """

    MAX_LINE_BYTES = MAX

    def __init__(self, lock: threading.Lock | None = None) -> None:
        self.lines: list[str] = []
        self.connects = 0
        self.disconnects = 0
        self.lock_held: list[bool] = []
        self._lock = lock

    def on_connect(self) -> None:
        self.connects += 1

    def on_disconnect(self) -> None:
        self.disconnects += 1

    def handle_line(self, line: str) -> str | None:
        if self._lock is not None:
            self.lock_held.append(self._lock.locked())
        self.lines.append(line)
        if line == "RAISE":
            raise RuntimeError("emulator bug")
        if not line.strip():
            return None
        if len(line) + 1 > self.MAX_LINE_BYTES:
            return f"ERR -223,len={len(line)}"
        if any(not (32 <= ord(ch) < 127 or ch == "\t") for ch in line):
            return "ERR -101"
        if line.startswith("SET "):
            return None
        return f"echo:{line}"


class HookSession(EchoSession):
    """A session that takes the over-long notification through the optional hook."""

    def __init__(self) -> None:
        super().__init__()
        self.too_long: list[int] = []

    def line_too_long(self, n_bytes: int) -> str | None:
        self.too_long.append(n_bytes)
        return "ERR -223,hook"


def _internal_error(line: str, exc: BaseException) -> str:
    return f'ERR -200,"internal error on {line}: {type(exc).__name__}"'


@pytest.fixture
def echo() -> EchoSession:
    return EchoSession()


@pytest.fixture
def server(echo: EchoSession) -> Iterator[LineServer]:
    srv = LineServer(
        lambda: echo,
        name="test",
        busy_reply='ERR -200,"busy"',
        internal_error_reply=_internal_error,
        busy_grace_s=0.05,
    )
    with srv:
        yield srv


class Client:
    """A raw TCP client that reads LF-terminated replies."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT_S)
        self._buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def readline(self) -> bytes:
        while b"\n" not in self._buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError(f"connection closed; unterminated data {self._buf!r}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def query(self, line: str) -> str:
        self.send(line.encode("latin-1") + b"\n")
        return self.readline().decode("latin-1")

    def at_eof(self) -> bool:
        """True when the server closed the connection (after any buffered lines)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def client(server: LineServer) -> Iterator[Client]:
    c = Client(server.port)
    yield c
    c.close()


# ---------------------------------------------------------------------- framing
def test_crlf_is_stripped_and_lf_terminates(client: Client, echo: EchoSession) -> None:
    assert client.query("A?\r") == "echo:A?"
    assert echo.lines == ["A?"]


def test_several_lines_in_one_packet_get_replies_in_order(
    client: Client, echo: EchoSession
) -> None:
    client.send(b"A?\nSET 1\r\nB?\n\nC?\n")
    assert [client.readline() for _ in range(3)] == [b"echo:A?", b"echo:B?", b"echo:C?"]
    assert echo.lines == ["A?", "SET 1", "B?", "", "C?"]


def test_line_split_across_packets_is_reassembled(client: Client, echo: EchoSession) -> None:
    client.send(b"SPL")
    client.send(b"IT")
    client.send(b"?\r")
    client.send(b"\n")
    assert client.readline() == b"echo:SPLIT?"
    assert echo.lines == ["SPLIT?"]


def test_garbage_bytes_reach_the_session_as_latin1(client: Client, echo: EchoSession) -> None:
    client.send(b"\xff\x00\x80\x1b[?\n")
    assert client.readline() == b"ERR -101"
    assert echo.lines == ["\xff\x00\x80\x1b[?"]
    assert client.query("OK?") == "echo:OK?"  # still usable


def test_longest_allowed_line_passes(client: Client, echo: EchoSession) -> None:
    line = "Q" * (MAX - 2) + "?"  # MAX - 1 bytes + LF = MAX bytes
    assert client.query(line) == f"echo:{line}"


def test_overlong_line_is_discarded_and_reported_via_handle_line(
    client: Client, echo: EchoSession
) -> None:
    client.send(b"X" * (10 * MAX) + b"\nA?\n")
    # The session sees only the first MAX + 1 characters, so its length check fires.
    assert client.readline() == f"ERR -223,len={MAX + 1}".encode()
    assert client.readline() == b"echo:A?"
    assert echo.lines == ["X" * (MAX + 1), "A?"]


def test_overlong_line_uses_the_session_hook_when_present() -> None:
    session = HookSession()
    with LineServer(lambda: session, name="hook") as srv:
        c = Client(srv.port)
        c.send(b"Y" * 100)
        c.send(b"Y" * 100 + b"\r\nB?\n")
        assert c.readline() == b"ERR -223,hook"
        assert c.readline() == b"echo:B?"
        c.close()
    assert session.too_long == [202]  # 200 Y + CR + LF: the bytes the host sent
    assert session.lines == ["B?"]  # the over-long line never reached handle_line


def test_line_of_exactly_max_bytes_without_terminator_room_is_overlong() -> None:
    framer = _LineFramer(MAX)
    (event,) = framer.feed(b"Z" * MAX + b"\n")  # MAX + 1 bytes with the LF
    assert isinstance(event, _Overlong)
    assert event.n_bytes == MAX + 1


def test_framer_memory_is_bounded_while_discarding() -> None:
    framer = _LineFramer(MAX)
    for _ in range(1000):
        assert framer.feed(b"x" * 4096) == []
    assert len(framer._pending) == MAX + 1
    (event,) = framer.feed(b"\n")
    assert isinstance(event, _Overlong)
    assert event.n_bytes == 1000 * 4096 + 1


@given(
    lines=st.lists(st.binary(max_size=3 * MAX).map(lambda b: b.replace(b"\n", b"")), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=10),
)
def test_framing_does_not_depend_on_packet_boundaries(lines: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    whole = _LineFramer(MAX).feed(stream)
    framer = _LineFramer(MAX)
    pieces: list[_Line | _Overlong] = []
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    for a, b in itertools.pairwise(bounds):
        pieces += framer.feed(stream[a:b])
    describe = [
        (type(e).__name__, getattr(e, "text", None), getattr(e, "n_bytes", 0)) for e in whole
    ]
    assert describe == [
        (type(e).__name__, getattr(e, "text", None), getattr(e, "n_bytes", 0)) for e in pieces
    ]
    assert len(whole) == len(lines)
    for raw, event in zip(lines, whole, strict=True):
        if len(raw) + 1 > MAX:
            assert isinstance(event, _Overlong) and event.n_bytes == len(raw) + 1
        else:
            assert isinstance(event, _Line)
            assert event.text == raw.removesuffix(b"\r").decode("latin-1")


# ---------------------------------------------------------------------- connections
def test_second_client_gets_busy_line_and_first_is_undisturbed(
    server: LineServer, client: Client
) -> None:
    assert client.query("FIRST?") == "echo:FIRST?"
    second = Client(server.port)
    assert second.readline() == b'ERR -200,"busy"'
    assert second.at_eof()
    second.close()
    assert client.query("STILL?") == "echo:STILL?"


def test_second_client_without_busy_line_is_just_closed(echo: EchoSession) -> None:
    with LineServer(lambda: echo, name="smu", busy_grace_s=0.05) as srv:
        first = Client(srv.port)
        assert first.query("A?") == "echo:A?"
        second = Client(srv.port)
        assert second.at_eof()
        assert first.query("B?") == "echo:B?"
        first.close()
        second.close()


def test_new_client_is_served_after_the_first_disconnects(
    server: LineServer, echo: EchoSession
) -> None:
    first = Client(server.port)
    assert first.query("A?") == "echo:A?"
    first.close()
    # Reconnecting at once works: the grace period covers the server noticing the close.
    second = Client(server.port)
    assert second.query("B?") == "echo:B?"
    second.close()
    assert server.wait_until_idle(IO_TIMEOUT_S)
    assert (echo.connects, echo.disconnects) == (2, 2)


def test_disconnect_mid_line_discards_it_and_calls_on_disconnect(
    server: LineServer, echo: EchoSession
) -> None:
    c = Client(server.port)
    assert c.query("A?") == "echo:A?"
    c.send(b"SET PARTIAL WITHOUT TERMINATOR")
    c.close()
    assert server.wait_until_idle(IO_TIMEOUT_S)
    assert echo.disconnects == 1
    assert echo.lines == ["A?"]


def test_handler_exception_is_contained_and_server_keeps_serving(
    server: LineServer, client: Client
) -> None:
    assert client.query("RAISE") == 'ERR -200,"internal error on RAISE: RuntimeError"'
    assert client.query("AFTER?") == "echo:AFTER?"
    client.close()
    assert server.wait_until_idle(IO_TIMEOUT_S)
    other = Client(server.port)
    assert other.query("NEW?") == "echo:NEW?"
    other.close()


def test_handler_exception_without_error_reply_sends_nothing(echo: EchoSession) -> None:
    with LineServer(lambda: echo, name="smu") as srv:
        c = Client(srv.port)
        c.send(b"RAISE\n")
        assert c.query("NEXT?") == "echo:NEXT?"  # the first reply is the one for NEXT?
        c.close()


def test_session_calls_run_under_the_shared_lock() -> None:
    lock = threading.Lock()
    a, b = EchoSession(lock), EchoSession(lock)
    with (
        LineServer(lambda: a, name="a", lock=lock) as sa,
        LineServer(lambda: b, name="b", lock=lock) as sb,
    ):
        ca, cb = Client(sa.port), Client(sb.port)

        def hammer(c: Client, tag: str) -> None:
            for i in range(100):
                assert c.query(f"{tag}{i}?") == f"echo:{tag}{i}?"

        threads = [threading.Thread(target=hammer, args=(c, t)) for c, t in ((ca, "a"), (cb, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(IO_TIMEOUT_S)
        ca.close()
        cb.close()
    assert len(a.lock_held) == len(b.lock_held) == 100
    assert all(a.lock_held) and all(b.lock_held)


def test_close_disconnects_clients_and_stops_listening(echo: EchoSession) -> None:
    srv = LineServer(lambda: echo, name="test").start()
    port = srv.port
    c = Client(port)
    assert c.query("A?") == "echo:A?"
    assert srv.listening
    srv.close()
    assert not srv.listening
    assert c.at_eof()
    assert echo.disconnects == 1
    assert not srv.client_connected
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT_S).close()
    c.close()
    srv.close()  # idempotent


def test_port_in_use_is_a_clear_error(server: LineServer, echo: EchoSession) -> None:
    with pytest.raises(
        OSError, match=rf"busy-port server cannot listen on 127.0.0.1:{server.port}"
    ):
        LineServer(lambda: echo, name="busy-port", port=server.port).start()


def test_bad_port_is_rejected(echo: EchoSession) -> None:
    with pytest.raises(ValueError, match="port 70000"):
        LineServer(lambda: echo, name="x", port=70000)
