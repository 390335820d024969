"""ONC RPC version 2 (RFC 5531, formerly RFC 1831/1057) over TCP and UDP, with XDR (RFC 4506).

What the VXI-11 instrument side (`simulator.vxi11_server`) and its portmapper
(`simulator.portmapper`) need, and no more: the XDR types they use (unsigned and signed
32-bit integers, booleans, variable-length opaque data and strings), the call and reply
messages with AUTH_NULL replies (any credential is accepted and ignored, as instruments do),
TCP record marking (RFC 5531 section 11: fragments behind a 4-byte header whose top bit marks
the last one), and a threaded server for each transport.

Why our own: the standard library's ``xdrlib`` is deprecated and gone in Python 3.13, and the
PyPI packages that serve ONC RPC are either NFS toolkits or unmaintained; the subset here is
small, and writing it from the RFCs keeps the simulator independent of the client that tests
it (pyvisa-py's own VXI-11 client).

A program is an `RpcProgram`: number, version and a table of `Procedure` (an argument decoder
and a handler). The dispatcher answers every malformed or unknown call as the RFC says
(PROG_UNAVAIL, PROG_MISMATCH, PROC_UNAVAIL, GARBAGE_ARGS, SYSTEM_ERR; RPC_MISMATCH for a
version other than 2) and never lets a handler's exception reach the socket. Memory is
bounded: a record larger than ``max_record_bytes`` closes the connection.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

_log = logging.getLogger(__name__)

RPC_VERSION: Final = 2
CALL: Final = 0
REPLY: Final = 1
MSG_ACCEPTED: Final = 0
MSG_DENIED: Final = 1
# accept_stat
SUCCESS: Final = 0
PROG_UNAVAIL: Final = 1
PROG_MISMATCH: Final = 2
PROC_UNAVAIL: Final = 3
GARBAGE_ARGS: Final = 4
SYSTEM_ERR: Final = 5
# reject_stat
RPC_MISMATCH: Final = 0
AUTH_ERROR: Final = 1
AUTH_NULL: Final = 0
MAX_AUTH_BYTES: Final = 400
"""Largest credential or verifier body (RFC 5531 section 8.2)."""
LAST_FRAGMENT: Final = 0x8000_0000
IPPROTO_TCP: Final = 6
IPPROTO_UDP: Final = 17


class XdrError(ValueError):
    """Bytes that are not the XDR encoding of what was expected (short, padded wrong, ...)."""


class Packer:
    """Builds an XDR byte string (big-endian 4-byte units, opaque data padded to 4)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def uint(self, value: int) -> Packer:
        """An unsigned 32-bit integer."""
        self._parts.append(struct.pack(">I", value & 0xFFFF_FFFF))
        return self

    def int32(self, value: int) -> Packer:
        """A signed 32-bit integer."""
        self._parts.append(struct.pack(">i", value))
        return self

    def boolean(self, value: bool) -> Packer:
        """An XDR boolean (0 or 1)."""
        return self.uint(1 if value else 0)

    def opaque(self, data: bytes) -> Packer:
        """Variable-length opaque data: length, bytes, zero padding to a multiple of 4."""
        self.uint(len(data))
        self._parts.append(bytes(data) + b"\0" * (-len(data) % 4))
        return self

    def string(self, text: str) -> Packer:
        """A string (its ASCII/latin-1 bytes as opaque data)."""
        return self.opaque(text.encode("latin-1", errors="replace"))

    def raw(self, data: bytes) -> Packer:
        """Bytes already XDR-encoded (a nested result)."""
        self._parts.append(data)
        return self

    def getvalue(self) -> bytes:
        """Everything packed so far."""
        return b"".join(self._parts)


class Unpacker:
    """Reads an XDR byte string; every read checks the length, `done` the end."""

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self._data = data
        self._pos = offset

    def uint(self) -> int:
        """An unsigned 32-bit integer."""
        if self._pos + 4 > len(self._data):
            raise XdrError(f"truncated: a 4-byte unit at offset {self._pos} of {len(self._data)}")
        (value,) = struct.unpack_from(">I", self._data, self._pos)
        self._pos += 4
        return int(value)

    def int32(self) -> int:
        """A signed 32-bit integer."""
        value = self.uint()
        return value - (1 << 32) if value & 0x8000_0000 else value

    def boolean(self) -> bool:
        """An XDR boolean; anything but 0 or 1 is an error."""
        value = self.uint()
        if value not in (0, 1):
            raise XdrError(f"boolean {value} is neither 0 nor 1")
        return value == 1

    def opaque(self, max_bytes: int | None = None) -> bytes:
        """Variable-length opaque data, at most ``max_bytes`` long when given."""
        n = self.uint()
        if max_bytes is not None and n > max_bytes:
            raise XdrError(f"opaque data of {n} bytes exceeds its bound of {max_bytes}")
        end = self._pos + n + (-n % 4)
        if end > len(self._data):
            raise XdrError(f"truncated: opaque data of {n} bytes at offset {self._pos}")
        value = self._data[self._pos : self._pos + n]
        self._pos = end
        return bytes(value)

    def string(self, max_bytes: int | None = None) -> str:
        """A string (decoded as latin-1, so any byte survives)."""
        return self.opaque(max_bytes).decode("latin-1")

    @property
    def remaining(self) -> int:
        """Bytes not read yet."""
        return len(self._data) - self._pos

    def done(self) -> None:
        """Raise `XdrError` unless every byte was read (trailing bytes are garbage)."""
        if self.remaining:
            raise XdrError(f"{self.remaining} bytes left after the arguments")


# ---------------------------------------------------------------------- messages
@dataclass(frozen=True)
class CallHeader:
    """The header of a call message (RFC 5531 section 9); the arguments follow it."""

    xid: int
    rpc_version: int
    program: int
    version: int
    procedure: int


def decode_call(record: bytes) -> tuple[CallHeader, Unpacker] | None:
    """The call header and an unpacker at its arguments; None for a reply or another type.

    Raises `XdrError` for a header that cannot be decoded (the caller drops the record:
    without an xid there is nobody to answer).
    """
    u = Unpacker(record)
    xid = u.uint()
    if u.uint() != CALL:
        return None
    header = CallHeader(xid, u.uint(), u.uint(), u.uint(), u.uint())
    for _ in ("credential", "verifier"):
        u.uint()  # flavor: any is accepted, as instruments do
        u.opaque(MAX_AUTH_BYTES)
    return header, u


def accepted_reply(xid: int, stat: int, body: bytes = b"") -> bytes:
    """A MSG_ACCEPTED reply with an AUTH_NULL verifier; ``body`` is the result or mismatch."""
    return (
        Packer()
        .uint(xid)
        .uint(REPLY)
        .uint(MSG_ACCEPTED)
        .uint(AUTH_NULL)
        .opaque(b"")
        .uint(stat)
        .raw(body)
        .getvalue()
    )


def rpc_mismatch_reply(xid: int) -> bytes:
    """A MSG_DENIED reply to a call of an RPC version other than 2."""
    return (
        Packer()
        .uint(xid)
        .uint(REPLY)
        .uint(MSG_DENIED)
        .uint(RPC_MISMATCH)
        .uint(RPC_VERSION)
        .uint(RPC_VERSION)
        .getvalue()
    )


# ---------------------------------------------------------------------- programs
@dataclass
class Connection:
    """One client's transport (a TCP connection, or one UDP datagram's sender).

    Handlers keep per-connection state in ``state`` (VXI-11 links belong to their
    connection) and register ``on_close`` callbacks, run when the connection ends.
    """

    peer: tuple[str, int]
    transport: str
    state: dict[str, Any] = field(default_factory=dict)
    on_close: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Run the close callbacks (each once; failures are logged)."""
        callbacks, self.on_close = self.on_close, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                _log.exception("RPC connection %s:%d: close callback raised", *self.peer[:2])


@dataclass(frozen=True)
class Procedure:
    """One remote procedure: ``decode`` reads its arguments (raising `XdrError` on garbage),
    ``run(args, connection)`` does the work and returns the XDR-encoded result."""

    name: str
    decode: Callable[[Unpacker], Any]
    run: Callable[[Any, Connection], bytes]


def no_args(u: Unpacker) -> None:
    """The decoder of a procedure that takes no arguments (void)."""


@dataclass(frozen=True)
class RpcProgram:
    """A program number and version with its procedures (procedure number -> Procedure)."""

    number: int
    version: int
    procedures: dict[int, Procedure]
    name: str


def dispatch(programs: Sequence[RpcProgram], record: bytes, connection: Connection) -> bytes | None:
    """The reply record to one call record (None: nothing to send, e.g. an undecodable one)."""
    try:
        decoded = decode_call(record)
    except XdrError as exc:
        _log.info("RPC from %s:%d: undecodable call dropped: %s", *connection.peer[:2], exc)
        return None
    if decoded is None:
        return None
    header, args = decoded
    if header.rpc_version != RPC_VERSION:
        return rpc_mismatch_reply(header.xid)
    versions = [p for p in programs if p.number == header.program]
    if not versions:
        return accepted_reply(header.xid, PROG_UNAVAIL)
    program = next((p for p in versions if p.version == header.version), None)
    if program is None:
        known = [p.version for p in versions]
        body = Packer().uint(min(known)).uint(max(known)).getvalue()
        return accepted_reply(header.xid, PROG_MISMATCH, body)
    procedure = program.procedures.get(header.procedure)
    if procedure is None:
        return accepted_reply(header.xid, PROC_UNAVAIL)
    try:
        decoded_args = procedure.decode(args)
        args.done()
    except XdrError as exc:
        _log.info("%s.%s: garbage arguments: %s", program.name, procedure.name, exc)
        return accepted_reply(header.xid, GARBAGE_ARGS)
    try:
        result = procedure.run(decoded_args, connection)
    except Exception:
        _log.exception("%s.%s raised", program.name, procedure.name)
        return accepted_reply(header.xid, SYSTEM_ERR)
    return accepted_reply(header.xid, SUCCESS, result)


# ---------------------------------------------------------------------- record marking
def encode_record(payload: bytes) -> bytes:
    """One record as a single last fragment (RFC 5531 section 11)."""
    return struct.pack(">I", LAST_FRAGMENT | len(payload)) + payload


class RecordTooLargeError(XdrError):
    """A record beyond the server's bound: the connection is closed."""


class RecordReader:
    """Reassembles records from a TCP byte stream (fragments joined); bounded memory."""

    def __init__(self, max_record_bytes: int) -> None:
        self.max_record_bytes = max_record_bytes
        self._buffer = bytearray()
        self._record = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Consume ``data``; yield every record it completes, in order."""
        self._buffer += data
        while len(self._buffer) >= 4:
            (header,) = struct.unpack_from(">I", self._buffer, 0)
            size = header & ~LAST_FRAGMENT
            if len(self._record) + size > self.max_record_bytes:
                raise RecordTooLargeError(
                    f"record of more than {self.max_record_bytes} bytes "
                    f"({len(self._record) + size} announced)"
                )
            if len(self._buffer) < 4 + size:
                return
            self._record += self._buffer[4 : 4 + size]
            del self._buffer[: 4 + size]
            if header & LAST_FRAGMENT:
                record, self._record = bytes(self._record), bytearray()
                yield record


# ---------------------------------------------------------------------- servers
class RpcTcpServer:
    """Serves RPC programs on ``host:port`` over TCP, one thread per connection.

    Args:
        programs: what to serve.
        name: for logs and error messages ("vxi11-core").
        host, port: where to listen (port 0: a free one).
        max_record_bytes: largest call record accepted (a larger one closes the connection).
        close_timeout_s: bound on the time `close` waits for each thread (s).
    """

    def __init__(
        self,
        programs: Sequence[RpcProgram],
        *,
        name: str,
        host: str = "127.0.0.1",
        port: int = 0,
        max_record_bytes: int = 1 << 20,
        close_timeout_s: float = 2.0,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"{name} server: port {port} not in 0..65535")
        self.programs = list(programs)
        self.name = name
        self._host = host
        self._requested_port = port
        self._max_record_bytes = max_record_bytes
        self._close_timeout_s = close_timeout_s
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()

    def start(self) -> RpcTcpServer:
        """Bind, listen, accept. Raises OSError naming the address when it cannot bind."""
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
                f"{self.name} server cannot listen on {self._host}:{self._requested_port}/tcp: "
                f"{exc.strerror or exc}",
            ) from exc
        listener.listen(16)
        listener.settimeout(0.1)
        self._listener = listener
        thread = threading.Thread(target=self._accept_loop, name=f"{self.name}-accept", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        _log.info("%s server listening on %s:%d/tcp", self.name, self._host, self.port)
        return self

    @property
    def port(self) -> int:
        """The TCP port bound (after `start`)."""
        if self._listener is None:
            raise RuntimeError(f"{self.name} server not started")
        port: int = self._listener.getsockname()[1]
        return port

    def close(self) -> None:
        """Stop accepting, drop every connection (their close callbacks run), join threads."""
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
        with self._lock:
            connections = list(self._connections)
            threads = list(self._threads)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(self._close_timeout_s)
        if self._listener is not None:
            self._listener.close()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        try:
            while not self._stopping.is_set():
                try:
                    conn, peer = self._listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    if self._stopping.is_set():
                        break
                    self._stopping.wait(0.05)
                    continue
                conn.settimeout(None)
                with contextlib.suppress(OSError):
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                thread = threading.Thread(
                    target=self._serve,
                    args=(conn, peer),
                    name=f"{self.name}-client-{peer[1]}",
                    daemon=True,
                )
                with self._lock:
                    if self._stopping.is_set():
                        conn.close()
                        break
                    self._connections.add(conn)
                    self._threads.add(thread)
                thread.start()
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _serve(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        connection = Connection(peer=peer, transport="tcp")
        reader = RecordReader(self._max_record_bytes)
        try:
            while not self._stopping.is_set():
                try:
                    data = conn.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                for record in reader.feed(data):
                    reply = dispatch(self.programs, record, connection)
                    if reply is not None:
                        conn.sendall(encode_record(reply))
        except RecordTooLargeError as exc:
            _log.warning("%s server: %s:%d sent a %s; closing", self.name, *peer[:2], exc)
        except OSError as exc:
            _log.info("%s server: link to %s:%d lost: %s", self.name, *peer[:2], exc)
        finally:
            connection.close()
            with contextlib.suppress(OSError):
                conn.close()
            with self._lock:
                self._connections.discard(conn)
                self._threads.discard(threading.current_thread())


class RpcUdpServer:
    """Serves RPC programs on ``host:port`` over UDP (one datagram, one call, one reply)."""

    def __init__(
        self, programs: Sequence[RpcProgram], *, name: str, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.programs = list(programs)
        self.name = name
        self._host = host
        self._requested_port = port
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> RpcUdpServer:
        """Bind and serve. Raises OSError naming the address when it cannot bind."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self._host, self._requested_port))
        except OSError as exc:
            sock.close()
            raise OSError(
                exc.errno,
                f"{self.name} server cannot bind {self._host}:{self._requested_port}/udp: "
                f"{exc.strerror or exc}",
            ) from exc
        sock.settimeout(0.1)
        self._sock = sock
        self._thread = threading.Thread(target=self._loop, name=f"{self.name}-udp", daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        """The UDP port bound (after `start`)."""
        if self._sock is None:
            raise RuntimeError(f"{self.name} server not started")
        port: int = self._sock.getsockname()[1]
        return port

    def close(self) -> None:
        """Stop serving (bounded wait)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self._sock is not None:
            self._sock.close()

    def _loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                data, peer = self._sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    break
                continue
            connection = Connection(peer=peer, transport="udp")
            reply = dispatch(self.programs, data, connection)
            connection.close()
            if reply is not None:
                with contextlib.suppress(OSError):
                    self._sock.sendto(reply, peer)
