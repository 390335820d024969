"""Discovery: which instruments are connected, and which installed driver drives each.

    report = discover(visa_library="@py", timeout_s=1.0)
    print(report.table())

Candidates come from three places: every VISA resource the chosen backend lists (LAN, USB,
GPIB; serial resources are left to pyserial), every serial port pyserial lists (with its
USB vendor/product ids, serial number and description), and the addresses given
(``resources``, ``ports``, and ``hosts``, whose VXI-11, HiSLIP and raw-socket resources are
tried). Each candidate gets the identify query of the installed drivers that look on its
transport (`drivers.plugins.Recognition`: ``*IDN?`` for SCPI instruments, a board's own
identify command), with a short timeout, and the reply is matched against every driver's
recognition. Nothing else is sent: no setting is ever written. A USB device whose vendor
and product ids a driver declares is named before anything is sent.

Nothing is hidden: a candidate that cannot be opened (``unreachable``), that does not
answer (``silent``) or answers something no installed driver recognises
(``unrecognised``) is listed with the reason and what to try. A transport whose support is
missing (pyusb for USB, a GPIB library) is stated, with the install step, in
`DiscoveryReport.transports`.

LAN broadcast: pyvisa-py finds VXI-11 instruments by broadcasting a portmapper query on
every network interface (what NI MAX does too). It is on by default; ``lan_broadcast=False``
(``labrss discover --no-broadcast``, or ``LABRSS_LAN_BROADCAST=0``) keeps discovery off the
network, probing only what is given (the test suite runs so).

Complexity: one open and at most one query per distinct identify query per candidate, so
the time is about (candidates x timeout) for silent ones and milliseconds for the others.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from drivers.plugins import (
    BoardDriver,
    InstalledDriver,
    PluginError,
    Recognition,
    SMUDriver,
    ThermalDriver,
    board_drivers,
    smu_drivers,
    thermal_drivers,
)

__all__ = [
    "BROADCAST_ENV_VAR",
    "Candidate",
    "DiscoveryReport",
    "Finding",
    "KnownDriver",
    "TransportSupport",
    "discover",
    "host_resources",
    "installed_recognitions",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

BROADCAST_ENV_VAR: Final = "LABRSS_LAN_BROADCAST"
"""``0`` turns the VXI-11 LAN broadcast off by default (the test suite sets it)."""
RAW_SOCKET_PORT: Final = 5025
"""The SCPI raw-socket port of LAN instruments (Keithley 2450, Keysight B2900, 34980A)."""
REPLY_LIMIT: Final = 512
"""Longest reply read from a candidate (bytes)."""

Status = Literal["recognised", "unrecognised", "silent", "unreachable"]
Kind = Literal["smu", "board", "thermal"]
TransportName = Literal["visa", "serial"]


@dataclass(frozen=True)
class KnownDriver:
    """An installed driver as discovery sees it: kind, name and how it recognises."""

    kind: Kind
    name: str
    recognition: Recognition


@dataclass(frozen=True)
class Candidate:
    """An address to identify.

    Attributes:
        address: a VISA resource, or a serial port / pyserial URL.
        transport: ``visa`` or ``serial``.
        origin: where it came from (``listed by @py``, ``pyserial``, ``given``, ``host H``).
        description: what the system says about it (pyserial's description, USB product).
        usb_ids: (vendor id, product id) when it is a USB device or bridge.
        usb_serial: the USB serial number, when known.
    """

    address: str
    transport: TransportName
    origin: str
    description: str = ""
    usb_ids: tuple[int, int] | None = None
    usb_serial: str | None = None


@dataclass(frozen=True)
class Finding:
    """What one candidate turned out to be.

    Attributes:
        status: ``recognised`` (a driver matched), ``unrecognised`` (an answer no driver
            matches), ``silent`` (no answer in time), ``unreachable`` (cannot be opened).
        kind, driver: the recognising driver (None unless recognised).
        query, reply: what was sent and what came back (None when nothing was).
        reason: one line saying what happened; fix: what to try (None when recognised).
        other_drivers: further drivers that recognise the same reply.
    """

    address: str
    transport: TransportName
    origin: str
    status: Status
    reason: str
    kind: Kind | None = None
    driver: str | None = None
    query: str | None = None
    reply: str | None = None
    fix: str | None = None
    description: str = ""
    usb_ids: tuple[int, int] | None = None
    usb_serial: str | None = None
    other_drivers: tuple[str, ...] = ()

    @property
    def usb_label(self) -> str:
        """``"05E6:2450"``, or ``""``."""
        return "" if self.usb_ids is None else f"{self.usb_ids[0]:04X}:{self.usb_ids[1]:04X}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (USB ids as ``"VVVV:PPPP"``)."""
        data = asdict(self)
        data["usb_ids"] = self.usb_label or None
        data["other_drivers"] = list(self.other_drivers)
        return data


@dataclass(frozen=True)
class TransportSupport:
    """Whether a transport works here, and if not, how to get it.

    Attributes:
        name: ``LAN (raw socket)``, ``LAN (VXI-11)``, ``USB (USBTMC)``, ``GPIB``, ...
        available: whether candidates on it can be listed and opened.
        detail: the library behind it, or what is missing and how to install it.
    """

    name: str
    available: bool
    detail: str


@dataclass(frozen=True)
class DiscoveryReport:
    """Everything discovery saw: findings, transport support, notes, time taken."""

    visa_library: str
    findings: tuple[Finding, ...]
    transports: tuple[TransportSupport, ...]
    notes: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    timeout_s: float = 1.0
    lan_broadcast: bool = False

    def recognised(self, kind: Kind | None = None) -> list[Finding]:
        """The recognised findings (of one kind), in discovery order."""
        return [
            f
            for f in self.findings
            if f.status == "recognised" and (kind is None or f.kind == kind)
        ]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "visa_library": self.visa_library,
            "timeout_s": self.timeout_s,
            "lan_broadcast": self.lan_broadcast,
            "elapsed_s": self.elapsed_s,
            "findings": [f.to_json() for f in self.findings],
            "transports": [asdict(t) for t in self.transports],
            "notes": list(self.notes),
        }

    def table(self) -> str:
        """The findings as a text table, then the transports and notes."""
        lines: list[str] = []
        header = ("status", "kind", "driver", "address", "identity / reason")
        rows = []
        for f in self.findings:
            what = f.reply if f.status == "recognised" and f.reply else f.reason
            if f.description and f.transport == "serial":
                what = f"{what} [{f.description}{', USB ' + f.usb_label if f.usb_ids else ''}]"
            rows.append((f.status, f.kind or "-", f.driver or "-", f.address, what or ""))
        if rows:
            widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header[:4])]
            for row in (header, *rows):
                cells = [c.ljust(w) for c, w in zip(row[:4], widths, strict=True)]
                lines.append("  ".join([*cells, row[4]]).rstrip())
            for f in self.findings:
                if f.fix:
                    lines.append(f"  {f.address}: {f.fix}")
        else:
            lines.append("no VISA resource and no serial port found")
        lines.append("")
        lines.append(f"transports (VISA library {self.visa_library}):")
        if not self.transports:
            lines.append("  (nothing listed: only the addresses given were tried)")
        for t in self.transports:
            lines.append(f"  {t.name:<20} {'yes' if t.available else 'NO '}  {t.detail}")
        lines.extend(f"note: {n}" for n in self.notes)
        found = {k: len(self.recognised(k)) for k in ("smu", "board", "thermal")}
        stages = f", {found['thermal']} temperature controller(s)" if found["thermal"] else ""
        lines.append(
            f"{found['smu']} SMU(s) and {found['board']} board(s){stages} recognised among "
            f"{len(self.findings)} candidate(s) in {self.elapsed_s:.1f} s"
        )
        return "\n".join(lines)


# ---------------------------------------------------------------------- drivers
def installed_recognitions() -> tuple[list[KnownDriver], list[str]]:
    """Every installed driver's recognition, and a note per plug-in that cannot load."""
    known: list[KnownDriver] = []
    notes: list[str] = []
    groups: tuple[tuple[str, Mapping[str, InstalledDriver[Any]]], ...] = (
        ("board", board_drivers()),
        ("smu", smu_drivers()),
        ("thermal", thermal_drivers()),
    )
    for kind, entries in groups:
        for name, entry in entries.items():
            try:
                driver: BoardDriver | SMUDriver | ThermalDriver = entry.load()
            except PluginError as exc:
                notes.append(f"not used for recognition: {exc}")
                continue
            known.append(KnownDriver(kind, name, driver.recognition))  # type: ignore[arg-type]
    return known, notes


def _matches(
    known: Sequence[KnownDriver], transport: TransportName, query: str, reply: str
) -> list[KnownDriver]:
    out = []
    for k in known:
        if transport not in k.recognition.transports or k.recognition.query != query:
            continue
        try:
            if k.recognition.matches(reply):
                out.append(k)
        except Exception as exc:  # a plug-in's match function must not break discovery
            log.warning("driver %s: its recognition raised on %r: %s", k.name, reply, exc)
    return out


def _queries(
    known: Sequence[KnownDriver], transport: TransportName
) -> list[tuple[str, int | None]]:
    """Distinct (query, baud rate) pairs to try on a transport, ``*IDN?`` first."""
    seen: list[tuple[str, int | None]] = []
    for k in sorted(known, key=lambda k: k.recognition.query != "*IDN?"):
        if transport not in k.recognition.transports:
            continue
        baud = k.recognition.baud_rate if transport == "serial" else None
        pair = (k.recognition.query, baud)
        if pair not in seen:
            seen.append(pair)
    return seen


# ---------------------------------------------------------------------- candidates
def host_resources(host: str) -> list[str]:
    """The VISA resources a LAN instrument at ``host`` may answer on: VXI-11 (through the
    portmapper on port 111), HiSLIP and the SCPI raw socket (port 5025)."""
    return [
        f"TCPIP0::{host}::inst0::INSTR",
        f"TCPIP0::{host}::hislip0::INSTR",
        f"TCPIP0::{host}::{RAW_SOCKET_PORT}::SOCKET",
    ]


def _usb_ids_of_resource(resource: str) -> tuple[tuple[int, int] | None, str | None]:
    match = re.match(
        r"^USB\d*::(0x[0-9A-Fa-f]+|\d+)::(0x[0-9A-Fa-f]+|\d+)::([^:]+)", resource, re.IGNORECASE
    )
    if match is None:
        return None, None
    return (int(match.group(1), 0), int(match.group(2), 0)), match.group(3)


def _visa_candidate(resource: str, origin: str) -> Candidate:
    ids, serial = _usb_ids_of_resource(resource)
    return Candidate(resource, "visa", origin, usb_ids=ids, usb_serial=serial)


def _is_pyvisa_py(manager: Any) -> bool:
    return type(manager.visalib).__module__.startswith("pyvisa_py")


_SKIPPED_INTERFACES: Final = ("ASRL", "PRLGX_ASRL", "PRLGX_TCPIP", "VICP")
"""pyvisa-py interfaces discovery leaves alone: serial ports come from pyserial; Prologix
and VICP adapters are listed only when configured."""


def _list_pyvisa_py(lan_broadcast: bool) -> tuple[list[str], list[TransportSupport], list[str]]:
    """List pyvisa-py's interfaces one by one (VXI-11 broadcast only when asked)."""
    from pyvisa_py.sessions import Session

    resources: list[str] = []
    notes: list[str] = []
    support: dict[str, TransportSupport] = {}
    # USB and GPIB are missing when pyvisa-py says so (GPIB INSTR stays registered for
    # Prologix adapters even without a GPIB library: its INTFC entry tells the truth).
    for (interface, klass), issue in Session.iter_session_classes_issues():
        name = interface.name.upper()
        if (name, klass) in (("USB", "INSTR"), ("GPIB", "INTFC")):
            label = _transport_label(name, "INSTR")
            first = issue.splitlines()[0].split(". ")[0].rstrip(".") if issue else "missing"
            hint = _HINTS.get(name, "")
            if "is installed but" in first:  # the Python package is there, the library not
                hint = "; install the GPIB card's driver and library (docs/hardware.md)"
            support[label] = TransportSupport(label, False, f"{first}{hint}")
    for (interface, klass), session in Session.iter_valid_session_classes():
        name = interface.name.upper()
        if name in _SKIPPED_INTERFACES or (klass != "INSTR" and name != "TCPIP"):
            continue
        label = _transport_label(name, klass)
        if label in support:
            continue
        if (name, klass) == ("TCPIP", "INSTR") and not lan_broadcast:
            support[label] = TransportSupport(
                label, True, "pyvisa-py; LAN broadcast off: give --host or --resource"
            )
            continue
        try:
            listed = list(session.list_resources())
        except Exception as exc:  # pyusb without a libusb backend, a GPIB library error, ...
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            support[label] = TransportSupport(
                label, False, f"listing failed: {first}{_HINTS.get(name, '')}"
            )
            continue
        resources += listed
        support[label] = TransportSupport(label, True, f"pyvisa-py{_detail(name)}")
    return resources, list(support.values()), notes


def _transport_label(interface: str, klass: str) -> str:
    if interface == "TCPIP":
        return "LAN (raw socket)" if klass == "SOCKET" else "LAN (VXI-11/HiSLIP)"
    if interface == "USB":
        return "USB (USBTMC)"
    return interface


_HINTS: Final = {
    "USB": "; pip install 'labrss[usb]' and the system's libusb (docs/hardware.md)",
    "GPIB": "; pip install 'labrss[gpib]' and the GPIB card's driver (docs/hardware.md)",
}


def _detail(interface: str) -> str:
    if interface != "USB":
        return ""
    backend = None
    with contextlib.suppress(Exception):  # depends on the machine's libusb
        from usb.backend import libusb1  # type: ignore[import-not-found, import-untyped, unused-ignore]

        backend = libusb1.get_backend()
    if backend is None:
        with contextlib.suppress(Exception):  # the libusb that libusb-package ships
            import libusb_package  # type: ignore[import-not-found, import-untyped, unused-ignore]

            backend = libusb_package.get_libusb1_backend()
    if backend is not None:
        return " with pyusb and libusb"
    return " with pyusb, but no libusb was found: install libusb-1.0 (docs/hardware.md)"


def list_visa(
    visa_library: str, *, lan_broadcast: bool
) -> tuple[list[Candidate], list[TransportSupport], list[str]]:
    """The VISA resources the backend lists (serial ones excepted), transport support, notes."""
    import pyvisa

    try:
        manager = pyvisa.ResourceManager(visa_library)
    except Exception as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return (
            [],
            [
                TransportSupport(
                    "VISA",
                    False,
                    f"cannot load the VISA library {visa_library!r}: {detail}; install it, or "
                    "use '@py' (pyvisa-py)",
                )
            ],
            [],
        )
    origin = f"listed by {visa_library}"
    if _is_pyvisa_py(manager):
        names, support, notes = _list_pyvisa_py(lan_broadcast)
    else:
        try:
            names = [
                r
                for r in manager.list_resources("?*")
                if not r.upper().startswith("ASRL") and r.upper().endswith(("INSTR", "SOCKET"))
            ]
            support = [TransportSupport("VISA", True, f"{visa_library}: what the library lists")]
        except pyvisa.errors.VisaIOError as exc:
            names = []  # VI_ERROR_RSRC_NFOUND: nothing listed
            support = [TransportSupport("VISA", True, f"{visa_library}: {exc.description}")]
        notes = []
    return [_visa_candidate(n, origin) for n in dict.fromkeys(names)], support, notes


def list_serial() -> tuple[list[Candidate], TransportSupport]:
    """Every serial port pyserial lists, with USB ids, serial number and description."""
    import serial
    from serial.tools import list_ports

    candidates = []
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        ids = (port.vid, port.pid) if port.vid is not None and port.pid is not None else None
        description = port.description if port.description not in (None, "n/a") else ""
        candidates.append(
            Candidate(
                port.device,
                "serial",
                "pyserial",
                description=description or "",
                usb_ids=ids,
                usb_serial=port.serial_number,
            )
        )
    return candidates, TransportSupport("serial", True, f"pyserial {serial.VERSION}")


# ---------------------------------------------------------------------- probing
def _short(text: str, n: int = 80) -> str:
    text = text.strip()
    return text if len(text) <= n else text[: n - 3] + "..."


def _printable(raw: bytes) -> str:
    """A reply as text: latin-1, control characters escaped (garbage stays visible)."""
    text = raw.decode("latin-1").rstrip("\r\n")
    return "".join(ch if 32 <= ord(ch) < 127 else f"\\x{ord(ch):02x}" for ch in text)


def _visa_fix(resource: str, error: str) -> str:
    upper = resource.upper()
    if upper.startswith("USB"):
        return (
            "check the cable and that the instrument's USB interface is USBTMC; on Linux a "
            "udev rule gives non-root access (docs/hardware.md)"
        )
    if upper.startswith("GPIB"):
        return "check the GPIB address on the front panel and the GPIB card's driver"
    if "::INSTR" in upper and upper.startswith("TCPIP"):
        return (
            "no VXI-11/HiSLIP service answered: check the IP address and that the "
            "instrument's LAN interface is enabled (or try its raw socket, port 5025)"
        )
    if "::SOCKET" in upper:
        return "nothing accepted the connection: check the IP address and port"
    return "check the resource string"


def _probe_visa(
    candidate: Candidate,
    known: Sequence[KnownDriver],
    visa_library: str,
    timeout_s: float,
) -> Finding:
    import pyvisa
    import pyvisa.resources

    usb_named = [
        k.name
        for k in known
        if candidate.usb_ids is not None and k.recognition.matches_usb(*candidate.usb_ids)
    ]
    queries = _queries(known, "visa")
    if not queries:
        return _finding(
            candidate, status="unrecognised", reason="no installed driver looks at VISA resources"
        )
    ms = max(1, round(timeout_s * 1000))
    try:
        manager = pyvisa.ResourceManager(visa_library)
        inst = manager.open_resource(
            candidate.address,
            open_timeout=ms,
            timeout=ms,
            read_termination="\n",
            write_termination="\n",
        )
    except Exception as exc:
        detail = _short(" ".join(str(exc).split()) or type(exc).__name__, 160)
        return _finding(
            candidate,
            status="unreachable",
            reason=f"cannot open: {detail}",
            fix=_visa_fix(candidate.address, detail),
        )
    if not isinstance(inst, pyvisa.resources.MessageBasedResource):
        with contextlib.suppress(Exception):
            inst.close()
        return _finding(
            candidate,
            status="unrecognised",
            reason="not a message-based resource: no identify query possible",
        )
    last: Finding | None = None
    try:
        for query, _ in queries:
            try:
                inst.write(query)
                raw = bytes(inst.read_raw())[:REPLY_LIMIT]
            except OSError as exc:  # pyvisa-py connects a SOCKET lazily: refused here
                detail = _short(" ".join(str(exc).split()) or type(exc).__name__, 160)
                return _finding(
                    candidate,
                    status="unreachable",
                    reason=f"cannot connect: {detail}",
                    fix=_visa_fix(candidate.address, detail),
                )
            except pyvisa.errors.VisaIOError as exc:
                timed_out = exc.error_code == pyvisa.constants.StatusCode.error_timeout
                hint = f" (USB ids of {', '.join(usb_named)})" if usb_named else ""
                last = _finding(
                    candidate,
                    status="silent",
                    query=query,
                    reason=(
                        f"no reply to {query} within {timeout_s:g} s{hint}"
                        if timed_out
                        else f"{query} failed: {exc.description}"
                    ),
                    fix="is it a SCPI instrument? Check its remote interface settings "
                    "(and, on a serial link, the baud rate and line terminator)",
                )
                continue
            reply = _printable(raw)
            finding = _judge(candidate, known, "visa", query, reply)
            if finding.status == "recognised":
                return finding
            last = finding
    finally:
        with contextlib.suppress(Exception):
            inst.close()
    assert last is not None
    return last


def _finding(candidate: Candidate, **fields: Any) -> Finding:
    """A finding about ``candidate`` (its address, origin and USB details carried over)."""
    return Finding(
        address=candidate.address,
        transport=candidate.transport,
        origin=candidate.origin,
        description=candidate.description,
        usb_ids=candidate.usb_ids,
        usb_serial=candidate.usb_serial,
        **fields,
    )


def _judge(
    candidate: Candidate,
    known: Sequence[KnownDriver],
    transport: TransportName,
    query: str,
    reply: str,
) -> Finding:
    matched = _matches(known, transport, query, reply)
    if matched:
        first = matched[0]
        return _finding(
            candidate,
            status="recognised",
            kind=first.kind,
            driver=first.name,
            query=query,
            reply=reply,
            reason=f"{query} -> {_short(reply)}",
            other_drivers=tuple(k.name for k in matched[1:]),
        )
    if not reply:
        return _finding(
            candidate,
            status="silent",
            query=query,
            reply=reply,
            reason=f"an empty reply to {query}",
            fix="is it a SCPI instrument? Check its remote interface settings",
        )
    return _finding(
        candidate,
        status="unrecognised",
        query=query,
        reply=reply,
        reason=f"answered {query} with {_short(reply)!r}: no installed driver recognises it",
        fix="if it belongs to the bench, it needs a driver (`labrss drivers` lists the "
        "installed ones; docs/drivers.md says how to write one)",
    )


def _serial_fix(error: str) -> str:
    lowered = error.lower()
    if "permission denied" in lowered or "errno 13" in lowered:
        return (
            "no permission: on Linux add yourself to the dialout group "
            "(sudo usermod -aG dialout $USER, then log in again; docs/hardware.md)"
        )
    if "busy" in lowered or "errno 16" in lowered or "lock" in lowered:
        return "the port is in use by another program (close it, or labrss gui)"
    if "refused" in lowered:
        return "nothing listens at that address"
    return "check the port name and the cable"


def _probe_serial(candidate: Candidate, known: Sequence[KnownDriver], timeout_s: float) -> Finding:
    import serial

    queries = _queries(known, "serial")
    if not queries:
        return _finding(
            candidate, status="unrecognised", reason="no installed driver looks at serial ports"
        )
    usb_named = [
        k.name
        for k in known
        if candidate.usb_ids is not None
        and "serial" in k.recognition.transports
        and k.recognition.matches_usb(*candidate.usb_ids)
    ]
    last: Finding | None = None
    for query, baud in queries:
        options: dict[str, Any] = {"timeout": timeout_s, "write_timeout": timeout_s}
        if baud is not None:
            options["baudrate"] = baud
        if "://" not in candidate.address and os.name == "posix":
            options["exclusive"] = True  # never share a port another program holds
        try:
            port = serial.serial_for_url(candidate.address, **options)
        except (serial.SerialException, OSError, ValueError) as exc:
            detail = _short(" ".join(str(exc).split()) or type(exc).__name__, 160)
            return _finding(
                candidate,
                status="unreachable",
                reason=f"cannot open: {detail}",
                fix=_serial_fix(detail),
            )
        try:
            port.reset_input_buffer()
            port.write(query.encode("ascii") + b"\n")
            port.flush()
            raw = port.read_until(b"\n", REPLY_LIMIT)
        except (serial.SerialException, OSError) as exc:
            last = _finding(
                candidate,
                status="unreachable",
                query=query,
                reason=f"link failed during {query}: {_short(str(exc), 120)}",
                fix=_serial_fix(str(exc)),
            )
            continue
        finally:
            _close_serial(port)
        if not raw:
            hint = f" (USB ids of {', '.join(usb_named)})" if usb_named else ""
            at = f" at {baud} baud" if baud else ""
            last = _finding(
                candidate,
                status="silent",
                query=query,
                reason=f"no reply to {query}{at} within {timeout_s:g} s{hint}",
                fix="a device that is not an instrument, or another baud rate or line "
                "terminator than the drivers use",
            )
            continue
        finding = _judge(candidate, known, "serial", query, _printable(raw))
        if finding.status == "recognised":
            return finding
        last = finding
    assert last is not None
    return last


def _close_serial(port: Any) -> None:
    # pyserial 3.5's socket:// close() can leak the socket when the peer already hung up
    raw_socket = getattr(port, "_socket", None)
    with contextlib.suppress(Exception):
        port.close()
    if raw_socket is not None:
        with contextlib.suppress(Exception):
            raw_socket.close()


# ---------------------------------------------------------------------- the whole run
def _broadcast_default() -> bool:
    return os.environ.get(BROADCAST_ENV_VAR, "1").strip().lower() not in ("0", "no", "off", "false")


def discover(
    *,
    visa_library: str = "@py",
    resources: Iterable[str] = (),
    ports: Iterable[str] = (),
    hosts: Iterable[str] = (),
    list_visa_resources: bool = True,
    list_serial_ports: bool = True,
    lan_broadcast: bool | None = None,
    timeout_s: float = 1.0,
    known: Sequence[KnownDriver] | None = None,
    candidates: Iterable[Candidate] = (),
) -> DiscoveryReport:
    """Find and identify instruments (see the module docstring).

    Args:
        visa_library: the pyvisa backend (``"@py"``, ``"@ivi"``, a library path).
        resources: VISA resources to identify besides the listed ones.
        ports: serial ports or pyserial URLs (``socket://host:port``) to identify.
        hosts: LAN hosts whose VXI-11, HiSLIP and raw-socket resources to try.
        list_visa_resources, list_serial_ports: whether to list what the system has.
        lan_broadcast: let pyvisa-py broadcast for VXI-11 instruments (None: on unless
            ``LABRSS_LAN_BROADCAST=0``).
        timeout_s: per open and per reply (s).
        known: the drivers to match against (default: every installed driver).
        candidates: further candidates with their own origin (the embedded simulator's).
    """
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0 s, got {timeout_s!r}")
    start = time.perf_counter()
    broadcast = _broadcast_default() if lan_broadcast is None else lan_broadcast
    notes: list[str] = []
    if known is None:
        known, notes = installed_recognitions()
    extra = list(candidates)
    candidates = []
    transports: list[TransportSupport] = []
    if list_visa_resources:
        listed, support, more = list_visa(visa_library, lan_broadcast=broadcast)
        candidates += listed
        transports += support
        notes += more
    for host in hosts:
        candidates += [_visa_candidate(r, f"host {host}") for r in host_resources(host)]
    candidates += [_visa_candidate(r, "given") for r in resources]
    if list_serial_ports:
        serial_listed, serial_support = list_serial()
        candidates += serial_listed
        transports.append(serial_support)
    candidates += [Candidate(p, "serial", "given") for p in ports]
    candidates += extra
    seen: set[tuple[str, str]] = set()
    findings: list[Finding] = []
    for c in candidates:
        if (c.transport, c.address) in seen:
            continue
        seen.add((c.transport, c.address))
        if c.transport == "visa":
            findings.append(_probe_visa(c, known, visa_library, timeout_s))
        else:
            findings.append(_probe_serial(c, known, timeout_s))
    return DiscoveryReport(
        visa_library=visa_library,
        findings=tuple(findings),
        transports=tuple(transports),
        notes=tuple(notes),
        elapsed_s=time.perf_counter() - start,
        timeout_s=timeout_s,
        lan_broadcast=broadcast and list_visa_resources,
    )
