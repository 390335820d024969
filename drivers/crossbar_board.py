"""The crossbar board over pyserial, implementing docs/board-protocol.md (version 1).

Usage::

    with CrossbarBoard("/dev/ttyACM0", max_dac_voltage_V=0.5) as board:  # or socket://...
        board.set_cell_mask(2, 3, 0b101)         # verified by read-back
        board.route_cell(2, 3, four_wire=True)
        ...                                       # measure with the SMU
    # leaving the block puts the board in its safe state, then closes the port

Every command line gets exactly one reply line (the protocol's rule), so the driver always
knows which reply belongs to which command and can tell when a line was lost:

* ``ERR code,"message"`` raises :class:`~drivers.errors.BoardError` naming the command.
* A transient fault (``serial.SerialException``, no complete reply within ``timeout_s``, a
  reply that is not valid for the command, e.g. a late reply to an earlier attempt) is
  retried up to ``retries`` times after resynchronising: unread input is discarded and
  late bytes are drained. A retry is safe because every protocol command but ``PULSe`` is
  idempotent (it sets a state or reads one; none increments or toggles), so running a
  command twice leaves the board exactly as running it once. After the last attempt,
  BoardError. ``PULSe`` changes a device a little more each time it runs, so it is never
  retried: a transient fault is a BoardError at once (``PULS:COUN?`` tells the host
  whether the pulses were applied).
* Masks, routing and DAC settings are read back after writing; a mismatch is a BoardError.
* DAC voltages beyond ``max_dac_voltage_V`` (and the board's own range), and pulses beyond
  ``max_pulse_voltage_V`` or the pulse circuit's ``PULSe:LIMits?`` (asked once when
  connecting to a board with memristors), are refused with
  :class:`~drivers.errors.InstrumentLimitError` before anything is sent; indices, masks,
  array shapes and pulses on resistor cells are checked locally (ValueError) before
  anything is sent.

Link loss is a safety event for the board (it goes safe), so the driver never reconnects
behind the caller's back: a dead link surfaces as a BoardError after the bounded retries.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Final, Protocol, TypeVar, cast

import numpy as np
import numpy.typing as npt
import serial
from serial.urlhandler.protocol_socket import Serial as SocketSerial

from drivers.board import (
    ELEMENT_KINDS,
    Board,
    BoardGeometry,
    Capability,
    CellKind,
    ElementKind,
    MissingCapabilityError,
    PulseLimits,
)
from drivers.errors import BoardError, BoardIdentityError, InstrumentLimitError
from drivers.plugins import BoardConnection, BoardDriver, Recognition
from drivers.smu import overflow_to_nan

__all__ = [
    "DRIVER",
    "BoardGeometry",
    "CellKind",
    "CrossbarBoard",
    "ElementKind",
    "PulseLimits",
    "SerialPort",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

T = TypeVar("T")

BAUD_RATE = 115200
MAX_LINE_BYTES = 4096
"""Longest command line the board accepts, LF included."""
DRAIN_TIME_S = 0.05
"""How long resynchronisation waits for late bytes after discarding the input buffer (s)."""

_IDN_RE = re.compile(r"^LABRSS,XBAR-(\d+)x(\d+)x(\d+),([^,]+),([^,]+)$")
_ERR_RE = re.compile(r'^ERR ([+-]?\d+),"(.*)"$')
_HEX_RE = re.compile(r"^[0-9A-Fa-f]+$")
_ROUTE_RE = re.compile(r"^(OPEN|CELL \d+,\d+,[24]W|MVM ADC|MVM SMU,\d+)$")
_REQUIRED_INFO = ("rows", "cols", "branches", "element", "dac_bits", "dac_range_V", "adc_range_A")

DEFAULT_PULSE_GAP_S: Final = 1e-3
"""Inter-pulse gap (s) assumed for timing when ``BOARD:INFO?`` gives no ``pulse_gap_s``."""
ASSUMED_SWITCH_OFF_MAX_S: Final = 1e-9
"""Off-leakage bound of one branch switch (S) when ``BOARD:INFO?`` gives no
``switch_off_max_S``: an ADG1414-class switch leaks at most ~1 nA at 1 V over temperature."""


class SerialPort(Protocol):
    """The part of ``serial.Serial`` the driver uses (a fake port in protocol tests)."""

    timeout: float | None

    @property
    def in_waiting(self) -> int: ...

    def write(self, data: bytes, /) -> int | None: ...

    def read(self, size: int = 1, /) -> bytes: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


def _parse_pulse_limits(reply: str) -> PulseLimits:
    parts = [part.strip() for part in reply.split(",")]
    if len(parts) != 4:
        raise _GarbledReplyError(f"expected 4 pulse limits, got {reply!r}")
    amplitude, low, high = (_parse_float(part) for part in parts[:3])
    count = _parse_int(parts[3])
    if not (
        math.isfinite(amplitude) and amplitude > 0 and 0 < low <= high < math.inf and count >= 1
    ):
        raise _GarbledReplyError(f"pulse limits out of sense: {reply!r}")
    return PulseLimits(amplitude, low, high, count)


def _parse_kind(reply: str) -> CellKind:
    if reply == "MEM":
        return "memristor"
    if reply == "RES":
        return "resistor"
    raise _GarbledReplyError(f"expected RES or MEM, got {reply!r}")


class _GarbledReplyError(ValueError):
    """A reply that is not valid for the command it answers."""


def _expect_ok(reply: str) -> None:
    if reply != "OK":
        raise _GarbledReplyError(f"expected OK, got {reply!r}")


def _parse_int(reply: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", reply):
        raise _GarbledReplyError(f"expected an integer, got {reply!r}")
    return int(reply)


def _parse_float(reply: str) -> float:
    try:
        return float(reply)
    except ValueError:
        raise _GarbledReplyError(f"expected a number, got {reply!r}") from None


def _parse_bit(reply: str) -> bool:
    if reply not in {"0", "1"}:
        raise _GarbledReplyError(f"expected 0 or 1, got {reply!r}")
    return reply == "1"


def _parse_floats(count: int) -> Callable[[str], list[float]]:
    def parse(reply: str) -> list[float]:
        parts = reply.split(",")
        if len(parts) != count:
            raise _GarbledReplyError(f"expected {count} numbers, got {len(parts)} in {reply!r}")
        return [_parse_float(part.strip()) for part in parts]

    return parse


class CrossbarBoard(Board):
    """Driver of the labrss crossbar board (see the module docstring).

    Args:
        port_or_url: a serial port (``COM3``, ``/dev/ttyACM0``) or pyserial URL
            (``socket://127.0.0.1:5000``, ``spy://...``, ``loop://``), opened with
            ``serial.serial_for_url`` at 115200 baud; or an already open port object.
        timeout_s: how long to wait for one reply line (s).
        retries: how many times a transient fault is retried (so up to retries + 1 tries).
        max_dac_voltage_V: largest |DAC voltage| the driver will send (V); None = the
            board's own DAC range.
        max_pulse_voltage_V: largest |pulse amplitude| the driver will send (V), e.g. the
            station's ``[limits] max_pulse_voltage_V``; None = the pulse circuit's own limit.

    Attributes:
        identity: the ``*IDN?`` reply; serial: the board's serial number;
        geometry: rows, cols, branches; info: ``BOARD:INFO?`` as a dict.
        element_kind: ``resistor``, ``memristor`` or ``mixed`` (``BOARD:INFO?`` element).
        pulse_limits: the pulse circuit's limits (``PULSe:LIMits?``, asked once when
            connecting to a board with memristors), None on a resistor board.
        max_pulse_voltage_V: the smaller of the caller's and the board's amplitude limit (V);
            None on a resistor board.
        g_min_S, g_max_S: the memristors' nominal conductance bounds from ``BOARD:INFO?``
            (S), NaN when the board does not report them.
        set_threshold_min_V, reset_threshold_min_V: the memristors' smallest switching
            threshold magnitude per polarity from ``BOARD:INFO?`` (V; SET: row positive
            with respect to the column), NaN when the board does not report them.
    """

    def __init__(
        self,
        port_or_url: str | SerialPort,
        *,
        timeout_s: float = 2.0,
        retries: int = 3,
        max_dac_voltage_V: float | None = None,
        max_pulse_voltage_V: float | None = None,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 s, got {timeout_s!r}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries!r}")
        if max_dac_voltage_V is not None and not (
            math.isfinite(max_dac_voltage_V) and max_dac_voltage_V > 0
        ):
            raise ValueError(f"max_dac_voltage_V must be > 0 V, got {max_dac_voltage_V!r}")
        if max_pulse_voltage_V is not None and not (
            math.isfinite(max_pulse_voltage_V) and max_pulse_voltage_V > 0
        ):
            raise ValueError(f"max_pulse_voltage_V must be > 0 V, got {max_pulse_voltage_V!r}")
        self._pulse_voltage_request_V = max_pulse_voltage_V
        self._cell_kinds: dict[tuple[int, int], CellKind] = {}
        self.timeout_s = timeout_s
        self.retries = retries
        self._lock = threading.RLock()
        self._rx = bytearray()
        self._closed = False
        if isinstance(port_or_url, str):
            self.port_name = port_or_url
            self.name = f"crossbar board at {port_or_url}"
            try:
                self._port: SerialPort = serial.serial_for_url(
                    port_or_url, baudrate=BAUD_RATE, timeout=timeout_s
                )
            except (serial.SerialException, ValueError, OSError) as exc:
                raise BoardError(
                    f"cannot open serial port {port_or_url!r}: {exc}", instrument=self.name
                ) from exc
        else:
            self._port = port_or_url
            self.port_name = str(getattr(port_or_url, "port", port_or_url))
            self.name = f"crossbar board at {self.port_name}"
        # A ``socket://`` port (a serial-to-TCP bridge such as ser2net, or the simulator)
        # reports only "readable" (1) as ``in_waiting``, not the byte count: read byte by
        # byte, a reply line cost ~3 system calls per byte (a third of the demo's CPU).
        self._count_unknown = isinstance(self._port, SocketSerial)
        try:
            self._connect(max_dac_voltage_V)
        except BaseException:
            self._closed = True
            self._close_port()
            raise

    # ------------------------------------------------------------------ connection
    def _connect(self, max_dac_voltage_V: float | None) -> None:
        self._port.reset_input_buffer()
        identity = self.query("*IDN?", str)
        match = _IDN_RE.match(identity)
        if match is None:
            raise BoardIdentityError(
                f"expected a labrss crossbar board (LABRSS,XBAR-RxCxK,...) at {self.port_name}, "
                f"but *IDN? answered {identity!r}",
                instrument=self.name,
                command="*IDN?",
            )
        self.identity = identity
        self.serial = match.group(4)
        self.firmware = match.group(5)
        self.name = f"crossbar board {self.serial} at {self.port_name}"
        idn_geometry = BoardGeometry(*(int(match.group(i)) for i in (1, 2, 3)))
        self.command("*CLS")

        def parse_geometry(reply: str) -> BoardGeometry:
            parts = reply.split(",")
            if len(parts) != 3:
                raise _GarbledReplyError(f"expected R,C,K, got {reply!r}")
            return BoardGeometry(*(_parse_int(part.strip()) for part in parts))

        geometry = self.query("BOARD:GEOM?", parse_geometry)
        rows, cols, branches = geometry.rows, geometry.cols, geometry.branches
        if geometry != idn_geometry or min(rows, cols, branches) < 1:
            raise BoardError(
                f"BOARD:GEOM? gives {geometry} but *IDN? says {idn_geometry}",
                instrument=self.name,
                command="BOARD:GEOM?",
            )
        self.geometry = geometry
        self.info = self.query("BOARD:INFO?", self._parse_info)
        try:
            self.dac_range_V = float(self.info["dac_range_V"])
            self.dac_bits = int(self.info["dac_bits"])
            self.adc_range_A = float(self.info["adc_range_A"])
        except ValueError as exc:
            raise BoardError(
                f"malformed BOARD:INFO? value: {exc}", instrument=self.name, command="BOARD:INFO?"
            ) from None
        self.dac_lsb_V = 2.0 * self.dac_range_V / 2**self.dac_bits
        """One DAC step (V): the read-back of a DAC setting is within this of the request."""
        self.max_dac_voltage_V = (
            self.dac_range_V
            if max_dac_voltage_V is None
            else min(max_dac_voltage_V, self.dac_range_V)
        )
        self._mask_digits = -(-geometry.branches // 4)
        self._connect_memristors()
        self.open_cell_max_S = geometry.branches * self._info_number(
            "switch_off_max_S", ASSUMED_SWITCH_OFF_MAX_S
        )
        # Protocol version 1 boards have all of these; pulses only with memristors.
        caps = {
            Capability.DACS,
            Capability.ADCS,
            Capability.MVM_SMU,
            Capability.FOUR_WIRE,
            Capability.TEMPERATURE,
        }
        if self.pulse_limits is not None:
            caps.add(Capability.PULSES)
        self.capabilities = frozenset(caps)
        log.info("connected to %s (%s)", self.name, identity)

    def _info_number(self, key: str, default: float) -> float:
        """A numeric ``BOARD:INFO?`` value, ``default`` when absent; BoardError if malformed."""
        if key not in self.info:
            return default
        try:
            return float(self.info[key])
        except ValueError:
            raise BoardError(
                f"malformed BOARD:INFO? value {key}={self.info[key]!r}",
                instrument=self.name,
                command="BOARD:INFO?",
            ) from None

    def _connect_memristors(self) -> None:
        """Element kind, memristor bounds and, on boards with memristors, the pulse limits."""
        kind = self.info["element"]
        if kind not in ELEMENT_KINDS:
            raise BoardError(
                f"BOARD:INFO? element={kind!r} is not one of {', '.join(ELEMENT_KINDS)}",
                instrument=self.name,
                command="BOARD:INFO?",
            )
        self.element_kind = cast(ElementKind, kind)
        self.g_min_S = self._info_number("g_min_S", math.nan)
        self.g_max_S = self._info_number("g_max_S", math.nan)
        self.set_threshold_min_V = self._info_number("set_threshold_min_V", math.nan)
        self.reset_threshold_min_V = self._info_number("reset_threshold_min_V", math.nan)
        self.bbm_delay_s = self._info_number("bbm_delay_s", 0.0)
        self.pulse_gap_s = self._info_number("pulse_gap_s", DEFAULT_PULSE_GAP_S)
        self.pulse_limits: PulseLimits | None = None
        self.max_pulse_voltage_V: float | None = None
        if kind == "resistor":
            return
        limits = self.query("PULS:LIM?", _parse_pulse_limits)
        self.pulse_limits = limits
        request = self._pulse_voltage_request_V
        self.max_pulse_voltage_V = (
            limits.max_amplitude_V if request is None else min(request, limits.max_amplitude_V)
        )

    def _parse_info(self, reply: str) -> dict[str, str]:
        info: dict[str, str] = {}
        for item in reply.split(";"):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise _GarbledReplyError(f"BOARD:INFO? item {item!r} is not key=value")
            info[key.strip()] = value.strip()
        missing = [key for key in _REQUIRED_INFO if key not in info]
        if missing:
            raise BoardError(
                f"BOARD:INFO? lacks {', '.join(missing)} (reply {reply!r})",
                instrument=self.name,
                command="BOARD:INFO?",
            )
        return info

    # ------------------------------------------------------------------ transport
    def _readline(self, timeout_s: float | None = None) -> str | None:
        """One reply line without its LF (CR stripped), or None on a timeout.

        ``timeout_s`` (default: the driver's) bounds the wait; the port's own read timeout
        must be the same (see `query`).
        """
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while b"\n" not in self._rx:
            chunk = self._port.read(max(1, min(self._port.in_waiting, MAX_LINE_BYTES)))
            if not chunk or time.monotonic() > deadline:
                if chunk:
                    self._rx.extend(chunk)
                return None  # the port's own read timeout equals timeout_s
            self._rx.extend(chunk)
            if self._count_unknown and b"\n" not in chunk:
                self._rx.extend(self._read_available())
        raw, _, rest = bytes(self._rx).partition(b"\n")
        self._rx = bytearray(rest)
        try:
            return raw.decode("ascii").rstrip("\r")
        except UnicodeDecodeError:
            return "\ufffd" + raw.decode("ascii", "replace")  # invalid for every parser

    def _read_available(self) -> bytes:
        """The bytes already received, without waiting (a port whose count is unknown)."""
        previous = self._port.timeout
        self._port.timeout = 0  # non-blocking: one read returns what has arrived
        try:
            return self._port.read(MAX_LINE_BYTES)
        finally:
            self._port.timeout = previous

    def _resync(self) -> None:
        """Discard unread input and drain bytes still in flight (late replies)."""
        self._rx.clear()
        try:
            self._port.reset_input_buffer()
            previous = self._port.timeout
            self._port.timeout = DRAIN_TIME_S
            try:
                end = time.monotonic() + 4 * DRAIN_TIME_S
                while self._port.read(MAX_LINE_BYTES) and time.monotonic() < end:
                    pass
            finally:
                self._port.timeout = previous
        except (serial.SerialException, OSError) as exc:
            log.debug("%s: resynchronisation: %s", self.name, exc)

    def query(
        self,
        command: str,
        parse: Callable[[str], T],
        *,
        retry: bool = True,
        extra_time_s: float = 0.0,
    ) -> T:
        """Send one command line and return ``parse(reply)``.

        Raises BoardError for an ``ERR`` reply (not retried: the board understood and
        refused) and after ``retries`` failed retries of a transient fault. ``retry=False``
        is for a command that is not idempotent (``PULSe``): a transient fault is then a
        BoardError at once. ``extra_time_s`` (s) lengthens the wait for this one reply, for
        commands that take time on the board (a burst of pulses).
        """
        line = command.encode("ascii") + b"\n"
        if len(line) > MAX_LINE_BYTES:
            raise ValueError(
                f"{self.name}: command of {len(line)} bytes exceeds the protocol's "
                f"{MAX_LINE_BYTES}-byte line limit: {command[:60]!r}..."
            )
        with self._lock:
            if self._closed:
                raise BoardError("the port is closed", instrument=self.name, command=command)
            wait_s = self.timeout_s + max(0.0, extra_time_s)
            previous_timeout = self._port.timeout
            if wait_s != self.timeout_s:
                self._port.timeout = wait_s
            try:
                return self._exchange(command, line, parse, retry, wait_s)
            finally:
                if wait_s != self.timeout_s:
                    self._port.timeout = previous_timeout

    def _exchange(
        self,
        command: str,
        line: bytes,
        parse: Callable[[str], T],
        retry: bool,
        wait_s: float,
    ) -> T:
        """Write ``line`` and parse its reply, up to ``attempts`` times (lock held)."""
        problem = ""
        attempts = self.retries + 1 if retry else 1
        for attempt in range(attempts):
            if attempt:
                log.warning(
                    "%s: %s; retry %d/%d of %r",
                    self.name,
                    problem,
                    attempt,
                    self.retries,
                    command,
                )
                self._resync()
            try:
                self._port.write(line)
                reply = self._readline(wait_s)
            except (serial.SerialException, OSError) as exc:
                problem = f"serial link error: {exc}"
                continue
            if reply is None:
                problem = f"no complete reply within {wait_s:g} s"
                continue
            error = _ERR_RE.match(reply)
            if error is not None:
                raise BoardError(
                    error.group(2),
                    instrument=self.name,
                    command=command,
                    code=int(error.group(1)),
                )
            try:
                return parse(reply)
            except _GarbledReplyError as exc:
                problem = f"invalid reply ({exc})"
        if not retry:
            self._resync()
            raise BoardError(
                f"{problem}; not retried because the command is not idempotent (for a "
                "PULSe, PULS:COUN? tells whether it was applied)",
                instrument=self.name,
                command=command,
            )
        raise BoardError(
            f"giving up after {attempts} attempts; last problem: {problem} "
            "(if the link was lost, the board has gone to its safe state)",
            instrument=self.name,
            command=command,
        )

    def command(self, command: str) -> None:
        """Send a command whose reply must be ``OK``."""
        self.query(command, _expect_ok)

    # ------------------------------------------------------------------ local checks
    def _check_index(self, what: str, value: int, size: int) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | np.integer)
            or not (0 <= value < size)
        ):
            raise ValueError(f"{self.name}: {what} {value!r} not in 0..{size - 1}; nothing sent")

    def _check_cell(self, r: int, c: int) -> None:
        self._check_index("row", r, self.geometry.rows)
        self._check_index("column", c, self.geometry.cols)

    def _format_mask(self, mask: int) -> str:
        limit = 1 << self.geometry.branches
        if (
            isinstance(mask, bool)
            or not isinstance(mask, int | np.integer)
            or not (0 <= mask < limit)
        ):
            raise ValueError(
                f"{self.name}: mask {mask!r} not in 0..{limit - 1:#x} "
                f"({self.geometry.branches} branches); nothing sent"
            )
        return f"{int(mask):0{self._mask_digits}X}"

    def _parse_mask(self, reply: str) -> int:
        if len(reply) != self._mask_digits or not _HEX_RE.match(reply):
            raise _GarbledReplyError(
                f"expected a {self._mask_digits}-digit hex mask, got {reply!r}"
            )
        return int(reply, 16)

    def _parse_masks(self, reply: str) -> list[int]:
        parts = reply.split(",")
        if len(parts) != self.geometry.cols:
            raise _GarbledReplyError(f"expected {self.geometry.cols} masks, got {len(parts)}")
        return [self._parse_mask(part.strip()) for part in parts]

    def _check_dac(self, volts_V: float, command: str) -> None:
        if not math.isfinite(volts_V) or abs(volts_V) > self.max_dac_voltage_V:
            raise InstrumentLimitError(
                f"DAC voltage {volts_V!r} V is beyond the limit +-{self.max_dac_voltage_V:g} V; "
                "nothing was sent",
                instrument=self.name,
                command=command,
            )

    # ------------------------------------------------------------------ switches
    def set_branch(self, r: int, c: int, k: int, closed: bool, *, verify: bool = True) -> None:
        """Close (True) or open one branch switch; verified by read-back."""
        self._check_cell(r, c)
        self._check_index("branch", k, self.geometry.branches)
        self.command(f"SW:BRAN {r},{c},{k},{int(bool(closed))}")
        if verify:
            state = self.query(f"SW:BRAN? {r},{c},{k}", _parse_bit)
            if state != bool(closed):
                raise BoardError(
                    f"read-back mismatch: branch ({r},{c},{k}) reads {int(state)}, "
                    f"wrote {int(bool(closed))}",
                    instrument=self.name,
                    command=f"SW:BRAN {r},{c},{k},{int(bool(closed))}",
                )

    def set_cell_mask(self, r: int, c: int, mask: int, *, verify: bool = True) -> None:
        """Set cell (r, c)'s whole bank: bit k of ``mask`` closes branch k."""
        self._check_cell(r, c)
        command = f"SW:CELL {r},{c},{self._format_mask(mask)}"
        self.command(command)
        if verify:
            got = self.cell_mask(r, c)
            if got != mask:
                raise BoardError(
                    f"read-back mismatch: cell ({r},{c}) reads {got:#x}, wrote {int(mask):#x}",
                    instrument=self.name,
                    command=command,
                )

    def cell_mask(self, r: int, c: int) -> int:
        """Cell (r, c)'s commanded mask."""
        self._check_cell(r, c)
        return self.query(f"SW:CELL? {r},{c}", self._parse_mask)

    def set_row_masks(self, r: int, masks: Sequence[int], *, verify: bool = True) -> None:
        """Set every cell of row ``r`` (exactly ``cols`` masks) in one command."""
        self._check_index("row", r, self.geometry.rows)
        if len(masks) != self.geometry.cols:
            raise ValueError(
                f"{self.name}: row {r} needs {self.geometry.cols} masks, got {len(masks)}; "
                "nothing sent"
            )
        command = f"SW:ROW {r}," + ",".join(self._format_mask(int(m)) for m in masks)
        self.command(command)
        if verify:
            got = self.query(f"SW:ROW? {r}", self._parse_masks)
            wanted = [int(m) for m in masks]
            if got != wanted:
                bad = [c for c, (a, b) in enumerate(zip(got, wanted, strict=True)) if a != b]
                raise BoardError(
                    f"read-back mismatch in row {r}, columns {bad}: read "
                    f"{[hex(got[c]) for c in bad]}, wrote {[hex(wanted[c]) for c in bad]}",
                    instrument=self.name,
                    command=command,
                )

    def _bit_weights(self) -> npt.NDArray[np.int64]:
        return np.left_shift(np.int64(1), np.arange(self.geometry.branches, dtype=np.int64))

    def set_masks(self, masks: npt.ArrayLike, *, verify: bool = True) -> None:
        """Set every switch from a (rows, cols, branches) bool array, row by row."""
        array = np.asarray(masks)
        shape = (self.geometry.rows, self.geometry.cols, self.geometry.branches)
        if array.shape != shape:
            raise ValueError(
                f"{self.name}: masks must have shape {shape}, got {array.shape}; nothing sent"
            )
        if array.dtype != np.bool_:
            if not np.isin(array, (0, 1)).all():
                raise ValueError(f"{self.name}: masks must be boolean (0/1); nothing sent")
            array = array.astype(bool)
        ints = (array.astype(np.int64) * self._bit_weights()).sum(axis=2)
        for r in range(self.geometry.rows):
            self.set_row_masks(r, [int(m) for m in ints[r]], verify=verify)

    def masks(self) -> npt.NDArray[np.bool_]:
        """The commanded state of every switch, (rows, cols, branches) bool."""
        rows = [self.query(f"SW:ROW? {r}", self._parse_masks) for r in range(self.geometry.rows)]
        ints = np.asarray(rows, dtype=np.int64)
        closed: npt.NDArray[np.bool_] = (ints[:, :, None] & self._bit_weights()) != 0
        return closed

    def closed_count(self) -> int:
        """Number of closed switches on the board (``SW:COUN?``)."""
        return self.query("SW:COUN?", _parse_int)

    def open_all(self) -> None:
        """Open every switch; verified (``SW:COUN?`` must read 0)."""
        self.command("SW:OPEN")
        count = self.closed_count()
        if count != 0:
            raise BoardError(
                f"{count} switches still closed after SW:OPEN",
                instrument=self.name,
                command="SW:OPEN",
            )

    # ------------------------------------------------------------------ routing
    def _route(self, command: str, expected: str) -> None:
        self.command(command)
        got = self.routing()
        if got != expected:
            raise BoardError(
                f"read-back mismatch: routing is {got!r}, expected {expected!r}",
                instrument=self.name,
                command=command,
            )

    def route_cell(self, r: int, c: int, *, four_wire: bool = False) -> None:
        """SMU to cell (r, c) with every other cell guarded; 4-wire sense optional."""
        self._check_cell(r, c)
        wires = "4W" if four_wire else "2W"
        self._route(f"ROUT:CELL {r},{c},{wires}", f"CELL {r},{c},{wires}")

    def route_mvm_adc(self) -> None:
        """Rows to their DACs, every column to its TIA+ADC."""
        self._route("ROUT:MVM ADC", "MVM ADC")

    def route_mvm_smu(self, c: int) -> None:
        """Rows to their DACs, column ``c`` to the SMU (held at 0 V), others to TIAs."""
        self._check_index("column", c, self.geometry.cols)
        self._route(f"ROUT:MVM SMU,{c}", f"MVM SMU,{c}")

    def route_open(self) -> None:
        """Disconnect every line."""
        self._route("ROUT:OPEN", "OPEN")

    def routing(self) -> str:
        """``OPEN``, ``CELL r,c,2W|4W``, ``MVM ADC`` or ``MVM SMU,c``."""

        def parse(reply: str) -> str:
            if not _ROUTE_RE.match(reply):
                raise _GarbledReplyError(f"not a routing state: {reply!r}")
            return reply

        return self.query("ROUT?", parse)

    # ------------------------------------------------------------------ DACs
    def _check_dac_readback(
        self, wanted: Sequence[float], got: Sequence[float], command: str
    ) -> None:
        # The read-back is the quantised code's voltage: within half an LSB of the request
        # for an ideal rounding DAC; one LSB allows truncating firmware (plus float slack).
        tolerance = self.dac_lsb_V * (1 + 1e-6)
        bad = [
            i for i, (w, g) in enumerate(zip(wanted, got, strict=True)) if abs(w - g) > tolerance
        ]
        if bad:
            raise BoardError(
                f"DAC read-back mismatch on rows {bad}: read {[got[i] for i in bad]} V, "
                f"wrote {[wanted[i] for i in bad]} V (1 LSB = {self.dac_lsb_V:.3g} V)",
                instrument=self.name,
                command=command,
            )

    def set_dac(self, r: int, volts_V: float) -> float:
        """Set row ``r``'s DAC; return the read-back (quantised) voltage (V)."""
        self._check_index("row", r, self.geometry.rows)
        command = f"DAC:VOLT {r},{float(volts_V):.9g}"
        self._check_dac(volts_V, command)
        self.command(command)
        got = self.query(f"DAC:VOLT? {r}", _parse_float)
        self._check_dac_readback([volts_V], [got], command)
        return got

    def set_dacs(self, volts_V: Sequence[float] | npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Set every row's DAC at once; return the read-back voltages (V)."""
        values = np.asarray(volts_V, dtype=np.float64)
        if values.shape != (self.geometry.rows,):
            raise ValueError(
                f"{self.name}: need {self.geometry.rows} DAC voltages, got shape {values.shape}; "
                "nothing sent"
            )
        command = "DAC:ROW " + ",".join(f"{v:.9g}" for v in values)
        for v in values:
            self._check_dac(float(v), command)
        self.command(command)
        got = self.dacs()
        self._check_dac_readback(values.tolist(), got.tolist(), command)
        return got

    def dacs(self) -> npt.NDArray[np.float64]:
        """Every row's DAC voltage (V), as set (quantised)."""
        return np.asarray(self.query("DAC:ROW?", _parse_floats(self.geometry.rows)))

    def zero_dacs(self) -> None:
        """Every DAC at 0 V."""
        self.command("DAC:ZERO")

    # ------------------------------------------------------------------ ADCs, sensors
    def read_adc(self, c: int) -> float:
        """Column ``c``'s current (A) through its TIA+ADC; NaN (and a warning) on overflow."""
        self._check_index("column", c, self.geometry.cols)
        value = self.query(f"ADC:READ? {c}", _parse_float)
        return overflow_to_nan(value, instrument=self.name, what=f"ADC column {c}")

    def read_adcs(self) -> npt.NDArray[np.float64]:
        """Every column's current (A), converted simultaneously; NaN on overflow."""
        values = self.query("ADC:READ:ALL?", _parse_floats(self.geometry.cols))
        return np.asarray(
            [
                overflow_to_nan(v, instrument=self.name, what=f"ADC column {c}")
                for c, v in enumerate(values)
            ]
        )

    def temperature_C(self) -> float:
        """Board temperature (degC)."""
        return self.query("SYST:TEMP?", _parse_float)

    def errors(self) -> list[tuple[int, str]]:
        """Drain the board's error queue: ``(code, message)`` oldest first."""

        def parse(reply: str) -> tuple[int, str]:
            match = re.fullmatch(r'([+-]?\d+),"(.*)"', reply)
            if match is None:
                raise _GarbledReplyError(f"not an error-queue entry: {reply!r}")
            return int(match.group(1)), match.group(2)

        found: list[tuple[int, str]] = []
        for _ in range(17):  # the queue holds 16 entries
            code, message = self.query("SYST:ERR?", parse)
            if code == 0:
                break
            found.append((code, message))
        return found

    # ------------------------------------------------------------------ memristors
    def cell_kind(self, r: int, c: int) -> CellKind:
        """``"resistor"`` or ``"memristor"``: the kind of cell (r, c)'s elements.

        A resistor or memristor board answers locally (``BOARD:INFO?`` element); a mixed
        board is asked ``BOARD:KIND?`` once per cell (kinds never change).
        """
        self._check_cell(r, c)
        if self.element_kind != "mixed":
            return "memristor" if self.element_kind == "memristor" else "resistor"
        key = (int(r), int(c))
        cached = self._cell_kinds.get(key)
        if cached is not None:
            return cached
        kind = self.query(f"BOARD:KIND? {key[0]},{key[1]}", _parse_kind)
        self._cell_kinds[key] = kind
        return kind

    def _require_memristor(self, r: int, c: int, k: int, command: str) -> PulseLimits:
        self._check_cell(r, c)
        self._check_index("branch", k, self.geometry.branches)
        if self.pulse_limits is None:  # a resistor board: no pulse circuit
            raise MissingCapabilityError(
                [Capability.PULSES], instrument=self.name, needed_by=command
            )
        if self.cell_kind(r, c) != "memristor":
            raise ValueError(
                f"{self.name}: branch ({r},{c},{k}) is a resistor, not a memristor "
                f"({command}); nothing sent"
            )
        return self.pulse_limits

    def pulse_duration_s(self, width_s: float, count: int = 1) -> float:
        """How long a ``PULSe`` of ``count`` pulses of ``width_s`` takes on the board (s).

        ``2 * bbm_delay_s + count * (width_s + pulse_gap_s)`` (docs/board-protocol.md).
        """
        return 2.0 * self.bbm_delay_s + count * (width_s + self.pulse_gap_s)

    def pulse(  # noqa: PLR0917 (the protocol's own parameter order, as in PULSe)
        self, r: int, c: int, k: int, amplitude_V: float, width_s: float, count: int = 1
    ) -> float:
        """Apply ``count`` pulses of ``amplitude_V`` (V; + SET, - RESET) and ``width_s`` (s).

        On memristor branch k of cell (r, c), through the board's pulse circuit (it
        isolates the branch and restores the switches and routing afterwards). Refused
        before anything is sent: an amplitude beyond ``max_pulse_voltage_V`` (the caller's
        limit or the board's, whichever is smaller), a width or count beyond
        ``PULSe:LIMits?`` (InstrumentLimitError); bad indices, a resistor branch, a board
        without memristors (ValueError). Never retried (not idempotent).

        Returns:
            the time the board spent (s), `pulse_duration_s`.
        """
        amplitude = float(amplitude_V)
        width = float(width_s)
        command = f"PULS {r},{c},{k},{amplitude:.9g},{width:.9g},{count}"
        limits = self._require_memristor(r, c, k, command)
        max_v = self.max_pulse_voltage_V if self.max_pulse_voltage_V is not None else 0.0
        if not math.isfinite(amplitude) or abs(amplitude) > max_v:
            by = (
                "the caller's max_pulse_voltage_V"
                if max_v < limits.max_amplitude_V
                else "the pulse circuit's limit (PULS:LIM?)"
            )
            raise InstrumentLimitError(
                f"pulse amplitude {amplitude_V!r} V is beyond +-{max_v:g} V ({by}); "
                "nothing was sent",
                instrument=self.name,
                command=command,
            )
        if not (math.isfinite(width) and limits.min_width_s <= width <= limits.max_width_s):
            raise InstrumentLimitError(
                f"pulse width {width_s!r} s not in {limits.min_width_s:g}.."
                f"{limits.max_width_s:g} s (PULS:LIM?); nothing was sent",
                instrument=self.name,
                command=command,
            )
        if (
            isinstance(count, bool)
            or not isinstance(count, int | np.integer)
            or not 1 <= count <= limits.max_count
        ):
            raise InstrumentLimitError(
                f"pulse count {count!r} not in 1..{limits.max_count} (PULS:LIM?); nothing was sent",
                instrument=self.name,
                command=command,
            )
        duration_s = self.pulse_duration_s(width, int(count))
        self.query(command, _expect_ok, retry=False, extra_time_s=duration_s)
        return duration_s

    def pulse_count(self, r: int, c: int, k: int) -> int:
        """Pulses the board has driven into memristor branch (r, c, k) since power-up."""
        command = f"PULS:COUN? {r},{c},{k}"
        self._require_memristor(r, c, k, command)
        return self.query(command, _parse_int)

    # ------------------------------------------------------------------ safe state
    def safe(self) -> None:
        """Every switch open, routing open, every DAC at 0 V; verified with ``SAFE?``."""
        self.command("SAFE")
        if not self.is_safe():
            raise BoardError(
                "board does not report the safe state after SAFE",
                instrument=self.name,
                command="SAFE",
            )

    def is_safe(self) -> bool:
        """Whether the board is in the safe state."""
        return self.query("SAFE?", _parse_bit)

    def close(self) -> None:
        """Go safe (best effort: failures are logged), then close the port; idempotent."""
        with self._lock:
            if self._closed:
                return
            try:
                self.safe()
            except Exception as exc:  # closing must not fail because the board is gone
                log.warning("%s: could not make the board safe before closing: %s", self.name, exc)
            finally:
                self._closed = True
                self._close_port()

    def _close_port(self) -> None:
        # pyserial 3.5's socket:// close() skips socket.close() when shutdown() fails (the
        # peer already hung up) and leaks the socket: close the raw socket here too.
        raw_socket = getattr(self._port, "_socket", None)
        try:
            self._port.close()
        except (serial.SerialException, OSError) as exc:
            log.warning("%s: error closing the port: %s", self.name, exc)
        finally:
            if raw_socket is not None:
                raw_socket.close()

    def __enter__(self) -> CrossbarBoard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# ---------------------------------------------------------------------- plug-in description
def _open(connection: BoardConnection) -> CrossbarBoard:
    return CrossbarBoard(
        connection.address,
        timeout_s=connection.timeout_s,
        retries=connection.retries,
        max_dac_voltage_V=connection.max_dac_voltage_V,
        max_pulse_voltage_V=connection.max_pulse_voltage_V,
    )


DRIVER: Final = BoardDriver(
    open=_open,
    description="labrss crossbar board over a serial port (docs/board-protocol.md)",
    capabilities=frozenset(
        {
            Capability.DACS,
            Capability.ADCS,
            Capability.MVM_SMU,
            Capability.PULSES,
            Capability.FOUR_WIRE,
            Capability.TEMPERATURE,
        }
    ),
    recognition=Recognition(
        query="*IDN?",
        pattern=r"^LABRSS,XBAR-\d+x\d+x\d+,",
        transports=("serial",),
        baud_rate=BAUD_RATE,
    ),
    simulator="crossbar",
)
"""The ``crossbar`` entry point of ``labrss.boards`` (pyproject.toml)."""
