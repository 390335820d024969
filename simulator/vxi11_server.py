"""The VXI-11 instrument side: a line emulator reached as ``TCPIP0::HOST::inst0::INSTR``.

Most LAN instruments (the Keithley 2450 and the Keysight B2900 among them) advertise
VXI-11, and NI MAX or pyvisa list them by it. This module serves the **core channel**
(ONC RPC program 0x0607AF version 1, `simulator.oncrpc`) and the **abort channel** (program
0x0607B0) for any line session (`simulator.line_server.LineSession`: the SMU emulators), so
a script that opens the INSTR resource runs unchanged against the simulator through
pyvisa-py's own VXI-11 client. The instrument's port is found through a portmapper
(`simulator.portmapper`, on port 111 where the machine lets the simulator bind it);
pyvisa-py also accepts the port in the resource, ``TCPIP0::127.0.0.1,PORT::inst0::INSTR``.

Procedures (VXI-11 specification rev. 1.0, section B.6): create_link (device ``inst0``;
the link may take the lock), device_write (program messages: LF or the END flag ends a
message), device_read (the reply with END on its last byte; the termination character
(flag 0x80) and the requested size also end a read, with the reason bits CHR and REQCNT),
device_readstb (the emulator's status byte, MAV when a reply is waiting), device_trigger
(``*TRG``), device_clear (input and output buffers emptied), device_remote,
device_local, device_lock and device_unlock (one exclusive lock among the links, waited
for when the waitlock flag is set), device_enable_srq (accepted; service requests are
not sent), destroy_link; device_docmd and the interrupt channel answer
"operation not supported" (8). A link belongs to its TCP connection and dies with it.

IEEE 488.2 message exchange as an instrument does it: a new message while a reply is
still unread discards the reply (the emulator queues -410, Query INTERRUPTED); a read
with nothing to read waits ``io_timeout`` and fails with error 15 (and -420, Query
UNTERMINATED, is queued). Every emulator call holds the bench lock, so the socket server,
this one and the board never touch the model at the same time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from simulator.line_server import (
    DEFAULT_MAX_LINE_BYTES,
    LineSession,
    _LineFramer,
    run_line,
)
from simulator.oncrpc import (
    Connection,
    Packer,
    Procedure,
    RpcProgram,
    RpcTcpServer,
    Unpacker,
    no_args,
)

_log = logging.getLogger(__name__)

DEVICE_CORE: Final = 0x0607AF
DEVICE_ASYNC: Final = 0x0607B0
DEVICE_INTR: Final = 0x0607B1
VERSION: Final = 1

# Device_Flags
FLAG_WAITLOCK: Final = 0x01
FLAG_END: Final = 0x08
FLAG_TERMCHRSET: Final = 0x80
# device_read reasons
REASON_REQCNT: Final = 0x01
REASON_CHR: Final = 0x02
REASON_END: Final = 0x04
# Device_ErrorCode
NO_ERROR: Final = 0
SYNTAX_ERROR: Final = 1
DEVICE_NOT_ACCESSIBLE: Final = 3
INVALID_LINK: Final = 4
PARAMETER_ERROR: Final = 5
CHANNEL_NOT_ESTABLISHED: Final = 6
OPERATION_NOT_SUPPORTED: Final = 8
OUT_OF_RESOURCES: Final = 9
DEVICE_LOCKED: Final = 11
NO_LOCK_HELD: Final = 12
IO_TIMEOUT: Final = 15
IO_ERROR: Final = 17
ABORT: Final = 23

STB_MAV: Final = 0x10
"""Message available: a reply is waiting (IEEE 488.2 status byte bit 4)."""
MAX_RECV_SIZE: Final = 1 << 20
"""Largest device_write data block the instrument accepts (bytes; told at create_link)."""
MAX_LINKS: Final = 64
DEVICE_NAMES: Final = ("inst0",)


@dataclass(eq=False)
class _Link:
    """One VXI-11 link: a client's I/O channel to the instrument."""

    lid: int
    client_id: int
    device: str
    session: LineSession
    framer: _LineFramer
    connection: Connection
    replies: deque[bytes] = field(default_factory=deque)
    """Unread replies, each with its LF; the first may be partly read."""
    abort: threading.Event = field(default_factory=threading.Event)


class Vxi11Instrument:
    """The VXI-11 side of one instrument: its links, lock and I/O, served by `Vxi11Server`.

    Args:
        session_factory: the line session of a new link (the bench's single emulator, so
            every link and the socket server see one instrument).
        name: for logs ("smu").
        lock: the bench lock, held around every emulator call.
        device_names: the device names create_link accepts (case-insensitive).
    """

    def __init__(
        self,
        session_factory: Callable[[], LineSession],
        *,
        name: str,
        lock: threading.Lock | threading.RLock,
        device_names: tuple[str, ...] = DEVICE_NAMES,
    ) -> None:
        self.name = name
        self._factory = session_factory
        self._lock = lock
        self._device_names = tuple(d.lower() for d in device_names)
        self._state = threading.Condition()
        self._links: dict[int, _Link] = {}
        self._next_lid = 1
        self._lock_owner: int | None = None
        self.abort_port = 0
        """The abort channel's TCP port (set by `Vxi11Server.start`)."""

    # ------------------------------------------------------------------ links
    @property
    def link_count(self) -> int:
        """Links open right now."""
        with self._state:
            return len(self._links)

    def create_link(
        self, client_id: int, lock_device: bool, lock_timeout_ms: int, device: str, conn: Connection
    ) -> bytes:
        """create_link: (error, lid, abortPort, maxRecvSize)."""
        if device.strip().lower() not in self._device_names:
            _log.info("%s: create_link to unknown device %r refused", self.name, device)
            return _link_resp(DEVICE_NOT_ACCESSIBLE, 0, 0)
        with self._state:
            if len(self._links) >= MAX_LINKS:
                return _link_resp(OUT_OF_RESOURCES, 0, 0)
            lid = self._next_lid
            self._next_lid += 1
        session = self._factory()
        link = _Link(lid, client_id, device, session, _LineFramer(_max_line(session)), conn)
        with self._lock:
            on_connect = getattr(session, "on_connect", None)
            if callable(on_connect):
                on_connect()
        with self._state:
            self._links[lid] = link
        conn.on_close.append(lambda: self._drop(lid))
        if lock_device and not self._acquire(lid, lock_timeout_ms):
            self._destroy(lid)
            return _link_resp(DEVICE_LOCKED, 0, 0)
        _log.info("%s: link %d created for %s:%d", self.name, lid, *conn.peer[:2])
        return _link_resp(NO_ERROR, lid, self.abort_port)

    def destroy_link(self, lid: int) -> int:
        """destroy_link: the link's lock released, the session told (link loss)."""
        return NO_ERROR if self._destroy(lid) else INVALID_LINK

    def _drop(self, lid: int) -> None:
        """The link's connection ended: the link goes with it."""
        self._destroy(lid)

    def _destroy(self, lid: int) -> bool:
        with self._state:
            link = self._links.pop(lid, None)
            if link is None:
                return False
            if self._lock_owner == lid:
                self._lock_owner = None
            self._state.notify_all()
        link.abort.set()
        try:
            with self._lock:
                link.session.on_disconnect()
        except Exception:
            _log.exception("%s: on_disconnect raised", self.name)
        _log.info("%s: link %d destroyed", self.name, lid)
        return True

    def _link(self, lid: int) -> _Link | None:
        with self._state:
            return self._links.get(lid)

    # ------------------------------------------------------------------ locking
    def _acquire(self, lid: int, timeout_ms: int) -> bool:
        with self._state:
            return self._state.wait_for(
                lambda: self._lock_owner in (None, lid) or lid not in self._links,
                timeout_ms / 1000.0,
            ) and self._take(lid)

    def _take(self, lid: int) -> bool:
        if lid not in self._links:
            return False
        self._lock_owner = lid
        return True

    def _usable(self, lid: int, flags: int, lock_timeout_ms: int) -> tuple[int, _Link | None]:
        """The link, or an error: invalid link, or locked by another link (waited for
        ``lock_timeout_ms`` with the waitlock flag)."""
        link = self._link(lid)
        if link is None:
            return INVALID_LINK, None
        with self._state:
            if self._lock_owner in (None, lid):
                return NO_ERROR, link
            if not flags & FLAG_WAITLOCK:
                return DEVICE_LOCKED, None
            free = self._state.wait_for(
                lambda: self._lock_owner in (None, lid), lock_timeout_ms / 1000.0
            )
        return (NO_ERROR, link) if free else (DEVICE_LOCKED, None)

    def device_lock(self, lid: int, flags: int, lock_timeout_ms: int) -> int:
        """device_lock: the exclusive lock, waiting up to lock_timeout with waitlock."""
        if self._link(lid) is None:
            return INVALID_LINK
        wait_ms = lock_timeout_ms if flags & FLAG_WAITLOCK else 0
        return NO_ERROR if self._acquire(lid, wait_ms) else DEVICE_LOCKED

    def device_unlock(self, lid: int) -> int:
        """device_unlock: release the lock this link holds."""
        with self._state:
            if lid not in self._links:
                return INVALID_LINK
            if self._lock_owner != lid:
                return NO_LOCK_HELD
            self._lock_owner = None
            self._state.notify_all()
        return NO_ERROR

    # ------------------------------------------------------------------ I/O
    def device_write(self, lid: int, lock_timeout_ms: int, flags: int, data: bytes) -> bytes:
        """device_write: (error, size). Complete messages run at once, in order."""
        error, link = self._usable(lid, flags, lock_timeout_ms)
        if link is None:
            return Packer().uint(error).uint(0).getvalue()
        events = link.framer.feed(data)
        if flags & FLAG_END:
            events += link.framer.end()
        for event in events:
            if link.replies:  # a new message before the last reply was read (488.2 6.3.2.3)
                link.replies.clear()
                self._notify(link.session, "query_interrupted")
            reply = run_line(link.session, event, lock=self._lock, name=self.name)
            if reply is not None:
                link.replies.append(reply.encode("latin-1", errors="replace") + b"\n")
        return Packer().uint(NO_ERROR).uint(len(data)).getvalue()

    def device_read(  # noqa: PLR0917 (the fields of Device_ReadParms, in order)
        self,
        lid: int,
        request_size: int,
        io_timeout_ms: int,
        lock_timeout_ms: int,
        flags: int,
        term_char: int,
    ) -> bytes:
        """device_read: (error, reason, data)."""
        error, link = self._usable(lid, flags, lock_timeout_ms)
        if link is None:
            return _read_resp(error, 0, b"")
        if not link.replies:
            self._notify(link.session, "query_unterminated")
            # Nothing will arrive: the emulator answers at write time. Wait as an
            # instrument does (a device_abort or the link's end cuts it short).
            link.abort.clear()
            aborted = link.abort.wait(min(io_timeout_ms, 3_600_000) / 1000.0)
            return _read_resp(ABORT if aborted else IO_TIMEOUT, 0, b"")
        reply = link.replies[0]
        n = min(max(request_size, 0), len(reply))
        reason = 0
        if flags & FLAG_TERMCHRSET:
            at = reply.find(bytes([term_char & 0xFF]), 0, n)
            if at >= 0:
                n = at + 1
                reason |= REASON_CHR
        data = reply[:n]
        if n == len(reply):
            link.replies.popleft()
            reason |= REASON_END
        else:
            link.replies[0] = reply[n:]
        if n == request_size:
            reason |= REASON_REQCNT
        return _read_resp(NO_ERROR, reason, data)

    def device_readstb(self, lid: int, flags: int, lock_timeout_ms: int) -> bytes:
        """device_readstb: (error, stb): the emulator's status byte, MAV when a reply waits."""
        error, link = self._usable(lid, flags, lock_timeout_ms)
        if link is None:
            return Packer().uint(error).uint(0).getvalue()
        stb = 0
        status_byte = getattr(link.session, "status_byte", None)
        if callable(status_byte):
            with self._lock:
                stb = int(status_byte()) & 0xFF
        if link.replies:
            stb |= STB_MAV
        return Packer().uint(NO_ERROR).uint(stb).getvalue()

    def device_trigger(self, lid: int, flags: int, lock_timeout_ms: int) -> int:
        """device_trigger: a group execute trigger, ``*TRG`` to the emulator."""
        error, link = self._usable(lid, flags, lock_timeout_ms)
        if link is None:
            return error
        with self._lock:
            link.session.handle_line("*TRG")
        return NO_ERROR

    def device_clear(self, lid: int, flags: int, lock_timeout_ms: int) -> int:
        """device_clear: input and output buffers emptied (the device clear of 488.2)."""
        error, link = self._usable(lid, flags, lock_timeout_ms)
        if link is None:
            return error
        link.framer.reset()
        link.replies.clear()
        self._notify(link.session, "device_clear")
        return NO_ERROR

    def device_abort(self, lid: int) -> int:
        """device_abort (abort channel): a waiting device_read of the link ends."""
        link = self._link(lid)
        if link is None:
            return INVALID_LINK
        link.abort.set()
        return NO_ERROR

    def generic(self, lid: int, flags: int, lock_timeout_ms: int) -> int:
        """device_remote / device_local: accepted (there is no front panel to lock out)."""
        error, _ = self._usable(lid, flags, lock_timeout_ms)
        return error

    def _notify(self, session: LineSession, hook: str) -> None:
        method = getattr(session, hook, None)
        if callable(method):
            with self._lock:
                method()

    def close(self) -> None:
        """Destroy every link (their sessions are told) and wake any waiting read."""
        with self._state:
            lids = list(self._links)
        for lid in lids:
            self._destroy(lid)


def _max_line(session: LineSession) -> int:
    value = getattr(session, "MAX_LINE_BYTES", DEFAULT_MAX_LINE_BYTES)
    return value if isinstance(value, int) and value >= 2 else DEFAULT_MAX_LINE_BYTES


def _link_resp(error: int, lid: int, abort_port: int) -> bytes:
    return Packer().uint(error).int32(lid).uint(abort_port).uint(MAX_RECV_SIZE).getvalue()


def _read_resp(error: int, reason: int, data: bytes) -> bytes:
    return Packer().uint(error).int32(reason).opaque(data).getvalue()


def _error(code: int) -> bytes:
    return Packer().uint(code).getvalue()


# ---------------------------------------------------------------------- RPC tables
def _generic_args(u: Unpacker) -> tuple[int, int, int, int]:
    """Device_GenericParms: lid, flags, lock_timeout, io_timeout."""
    return u.int32(), u.uint(), u.uint(), u.uint()


def core_program(instrument: Vxi11Instrument) -> RpcProgram:
    """DEVICE_CORE version 1 for ``instrument``."""
    i = instrument

    def create_link(u: Unpacker) -> tuple[int, bool, int, str]:
        return u.int32(), u.boolean(), u.uint(), u.string(256)

    def write_args(u: Unpacker) -> tuple[int, int, int, int, bytes]:
        return u.int32(), u.uint(), u.uint(), u.uint(), u.opaque(MAX_RECV_SIZE)

    def read_args(u: Unpacker) -> tuple[int, int, int, int, int, int]:
        return u.int32(), u.uint(), u.uint(), u.uint(), u.uint(), u.int32()

    def lock_args(u: Unpacker) -> tuple[int, int, int]:
        return u.int32(), u.uint(), u.uint()

    def srq_args(u: Unpacker) -> tuple[int, bool, bytes]:
        return u.int32(), u.boolean(), u.opaque(40)

    def docmd_args(u: Unpacker) -> tuple[int, ...]:
        lid, flags, io_timeout, lock_timeout, cmd = (
            u.int32(),
            u.uint(),
            u.uint(),
            u.uint(),
            u.int32(),
        )
        u.boolean()  # network_order
        u.int32()  # datasize
        u.opaque(MAX_RECV_SIZE)
        return lid, flags, io_timeout, lock_timeout, cmd

    def remote_func(u: Unpacker) -> None:
        for _ in range(4):
            u.uint()
        u.uint()  # progFamily

    def link_id(u: Unpacker) -> int:
        return u.int32()

    procedures = {
        10: Procedure(
            "create_link", create_link, lambda a, c: i.create_link(a[0], a[1], a[2], a[3], c)
        ),
        11: Procedure(
            "device_write",
            write_args,
            lambda a, c: i.device_write(a[0], a[2], a[3], a[4]),
        ),
        12: Procedure("device_read", read_args, lambda a, c: i.device_read(*a)),
        13: Procedure("device_readstb", _generic_args, lambda a, c: i.device_readstb(*a[:3])),
        14: Procedure(
            "device_trigger", _generic_args, lambda a, c: _error(i.device_trigger(*a[:3]))
        ),
        15: Procedure("device_clear", _generic_args, lambda a, c: _error(i.device_clear(*a[:3]))),
        16: Procedure("device_remote", _generic_args, lambda a, c: _error(i.generic(*a[:3]))),
        17: Procedure("device_local", _generic_args, lambda a, c: _error(i.generic(*a[:3]))),
        18: Procedure("device_lock", lock_args, lambda a, c: _error(i.device_lock(*a))),
        19: Procedure("device_unlock", link_id, lambda a, c: _error(i.device_unlock(a))),
        20: Procedure(
            "device_enable_srq",
            srq_args,
            lambda a, c: _error(NO_ERROR if i._link(a[0]) else INVALID_LINK),
        ),
        22: Procedure(
            "device_docmd",
            docmd_args,
            lambda a, c: Packer().uint(OPERATION_NOT_SUPPORTED).opaque(b"").getvalue(),
        ),
        23: Procedure("destroy_link", link_id, lambda a, c: _error(i.destroy_link(a))),
        25: Procedure(
            "create_intr_chan", remote_func, lambda a, c: _error(OPERATION_NOT_SUPPORTED)
        ),
        26: Procedure("destroy_intr_chan", no_args, lambda a, c: _error(CHANNEL_NOT_ESTABLISHED)),
    }
    return RpcProgram(DEVICE_CORE, VERSION, procedures, name="vxi11-core")


def abort_program(instrument: Vxi11Instrument) -> RpcProgram:
    """DEVICE_ASYNC version 1: device_abort."""

    def link_id(u: Unpacker) -> int:
        return u.int32()

    procedures = {
        1: Procedure("device_abort", link_id, lambda a, c: _error(instrument.device_abort(a)))
    }
    return RpcProgram(DEVICE_ASYNC, VERSION, procedures, name="vxi11-abort")


class Vxi11Server:
    """A `Vxi11Instrument` on two loopback TCP ports: the core and the abort channel.

    Args:
        session_factory, name, lock: as `Vxi11Instrument`.
        host: where to listen; port: the core channel's port (0: a free one; the abort
            channel always takes a free one).
    """

    def __init__(
        self,
        session_factory: Callable[[], LineSession],
        *,
        name: str,
        lock: threading.Lock | threading.RLock,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.instrument = Vxi11Instrument(session_factory, name=name, lock=lock)
        self.host = host
        self._core = RpcTcpServer(
            [core_program(self.instrument)],
            name=f"{name}-vxi11",
            host=host,
            port=port,
            max_record_bytes=MAX_RECV_SIZE + 1024,
        )
        self._abort = RpcTcpServer(
            [abort_program(self.instrument)], name=f"{name}-vxi11-abort", host=host
        )
        self._started = False

    def start(self) -> Vxi11Server:
        """Start both channels (OSError naming the address when a port is taken)."""
        self._abort.start()
        try:
            self._core.start()
        except BaseException:
            self._abort.close()
            raise
        self.instrument.abort_port = self._abort.port
        self._started = True
        return self

    @property
    def port(self) -> int:
        """The core channel's TCP port."""
        return self._core.port

    @property
    def abort_port(self) -> int:
        """The abort channel's TCP port."""
        return self._abort.port

    def close(self) -> None:
        """Drop every link and stop both channels. Idempotent."""
        self.instrument.close()
        self._core.close()
        self._abort.close()
        self._started = False

    def wait_until_idle(self, timeout_s: float) -> bool:
        """Wait until no link is open (False on timeout)."""
        deadline = time.monotonic() + timeout_s
        while self.instrument.link_count:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True
