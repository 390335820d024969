"""Driver plug-ins: board and SMU drivers found through entry points.

A driver is a Python object describing it (`BoardDriver` or `SMUDriver`), published under
an entry point of group ``labrss.boards`` or ``labrss.smus``; the entry point's name is
the driver name a station file gives (``[board] driver = "NAME"``). labrss's own drivers
are registered the same way, in its ``pyproject.toml``::

    [project.entry-points."labrss.boards"]
    crossbar = "drivers.crossbar_board:DRIVER"

so adding a driver, built in or from another package, is one line there. `board_drivers`
and `smu_drivers` list what is installed (without importing anything: the metadata comes
from the installed distributions); `find_board_driver` / `find_smu_driver` load one.
docs/drivers.md, "Write a driver for your board", walks through a complete plug-in.

**Recognition** (`Recognition`) is how a driver says which instrument it drives, for
discovery (``labrss discover`` matches VISA resources and serial ports against the
installed drivers): a read-only identify query, a pattern or a function over its reply,
optionally USB vendor/product ids. It must never change the instrument's state: discovery
sends the query to instruments it does not know yet.

Failures are contained: a plug-in that cannot be imported, or whose entry point is not a
driver description, is reported by `PluginError` naming the entry point, its package and
the cause; it never breaks the listing of the other drivers.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar

from drivers.board import Board, Capability

if TYPE_CHECKING:
    from drivers.smu import SafetyLimits, SourceMeter
    from drivers.thermal import TemperatureController, ThermalLimits

__all__ = [
    "BOARD_GROUP",
    "SMU_GROUP",
    "THERMAL_GROUP",
    "BoardConnection",
    "BoardDriver",
    "InstalledDriver",
    "PluginError",
    "Recognition",
    "SMUConnection",
    "SMUDriver",
    "ThermalConnection",
    "ThermalDriver",
    "UnknownDriverError",
    "board_drivers",
    "find_board_driver",
    "find_smu_driver",
    "find_thermal_driver",
    "smu_drivers",
    "thermal_drivers",
]

BOARD_GROUP: Final = "labrss.boards"
SMU_GROUP: Final = "labrss.smus"
THERMAL_GROUP: Final = "labrss.thermal"
SIMULATED_BENCHES: Final = ("crossbar", "switch-matrix")
"""The benches the embedded simulator builds (`BoardDriver.simulator`)."""

Transport = Literal["visa", "serial"]


class PluginError(RuntimeError):
    """A driver plug-in that cannot be used; the message names it, its package and why."""


class UnknownDriverError(LookupError):
    """No installed driver has the requested name; the message lists the installed ones."""


@dataclass(frozen=True)
class Recognition:
    """How discovery recognises a driver's instrument (read-only; see the module docstring).

    Attributes:
        query: the identify query sent to a candidate (``*IDN?`` for SCPI instruments;
            a board's own identify command). It must be a query that changes nothing.
        pattern: a regular expression searched (``re.search``) in the reply; None: no
            pattern (then ``match`` decides).
        match: a function of the reply, True when it is this driver's instrument (for
            replies a pattern cannot judge); tried after ``pattern`` when both are given.
        transports: where to look: ``"visa"`` resources, ``"serial"`` ports, or both.
        baud_rate: the serial line speed to query at (serial transports).
        usb_ids: USB (vendor id, product id) pairs of the instrument or its USB-serial
            bridge, to match a port before sending anything.
    """

    query: str = "*IDN?"
    pattern: str | None = None
    match: Callable[[str], bool] | None = None
    transports: tuple[Transport, ...] = ("visa",)
    baud_rate: int | None = None
    usb_ids: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if not self.query.strip():
            raise ValueError("Recognition.query must be a non-empty identify query")
        if self.pattern is not None:
            re.compile(self.pattern)  # a bad pattern fails when the driver is declared
        if not self.transports or any(t not in ("visa", "serial") for t in self.transports):
            raise ValueError(
                f"Recognition.transports must be 'visa' or 'serial', got {self.transports}"
            )

    def matches(self, reply: str) -> bool:
        """Whether ``reply`` to `query` identifies this driver's instrument."""
        text = reply.strip()
        if self.pattern is not None and re.search(self.pattern, text) is None:
            return False
        if self.match is not None:
            return bool(self.match(text))
        return self.pattern is not None

    def matches_usb(self, vendor_id: int, product_id: int) -> bool:
        """Whether a USB device with these ids is (or bridges to) this instrument."""
        return (vendor_id, product_id) in self.usb_ids


@dataclass(frozen=True)
class BoardConnection:
    """What a board driver's ``open`` is given (from the station's ``[board]``).

    Attributes:
        address: the station's address (a serial port or URL, a VISA resource, ...: the
            driver's own business).
        timeout_s: per-reply timeout (s).
        retries: how many times a transient fault may be retried.
        max_dac_voltage_V: largest |row source voltage| the driver may set (V).
        max_pulse_voltage_V: largest |pulse amplitude| the driver may apply (V).
        options: the station's ``[board.options]``, already checked against the
            driver's declared `BoardDriver.options` (paths resolved against the station
            file's directory).
    """

    address: str
    timeout_s: float = 2.0
    retries: int = 3
    max_dac_voltage_V: float | None = None
    max_pulse_voltage_V: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SMUConnection:
    """What an SMU driver's ``open`` is given (from the station's ``[smu]``).

    Attributes:
        resource: the VISA resource string.
        limits: the safety limits every request must be checked against.
        timeout_s: per-reply timeout (s).
        channel: the SMU channel (1-based).
        visa_library: the pyvisa backend (``"@py"``: pyvisa-py).
    """

    resource: str
    limits: SafetyLimits
    timeout_s: float = 5.0
    channel: int = 1
    visa_library: str = "@py"


@dataclass(frozen=True)
class BoardDriver:
    """A board driver's description: what an entry point of ``labrss.boards`` names.

    Attributes:
        open: ``open(connection) -> Board``: connect and identify, or raise (an
            `drivers.errors.InstrumentError` naming the address and what answered).
        description: one line for `labrss drivers`.
        capabilities: the most this driver offers; a connected bench may offer fewer
            (``Board.capabilities`` is the truth for one bench).
        recognition: how discovery recognises the instrument.
        simulator: how the embedded simulator serves this driver: ``"crossbar"`` or
            ``"switch-matrix"`` (the built-in simulated benches), ``"module:attribute"``
            (a factory ``f(board_model) -> line session`` emulating the driver's own
            protocol over the simulated crossbar, served on a serial socket), or None
            (hardware only).
        options: driver-specific station options (``[board.options]``): name ->
            description. Unknown options are refused when the station is read.
        path_options: the options that are file paths (resolved against the station
            file's directory).
    """

    open: Callable[[BoardConnection], Board]
    description: str
    capabilities: frozenset[Capability]
    recognition: Recognition
    simulator: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    path_options: tuple[str, ...] = ()


@dataclass(frozen=True)
class SMUDriver:
    """An SMU driver's description: what an entry point of ``labrss.smus`` names.

    Attributes:
        open: ``open(connection) -> SourceMeter``.
        description: one line for `labrss drivers`.
        recognition: how discovery recognises the instrument.
        channels: how many channels the largest supported model has.
        simulator: the SMU model the embedded simulator emulates for it (``"2450"``,
            ``"B2902A"``, ...), or None (hardware only).
        capabilities: free-form features for the listing (``"4-wire"``, ``"buffered"``).
    """

    open: Callable[[SMUConnection], SourceMeter]
    description: str
    recognition: Recognition
    channels: int = 1
    simulator: str | None = None
    capabilities: tuple[str, ...] = ()


@dataclass(frozen=True)
class ThermalConnection:
    """What a temperature controller driver's ``open`` is given (the station's ``[thermal]``).

    Attributes:
        resource: the VISA resource string.
        limits: the set point and ramp limits every request is checked against.
        timeout_s: per-reply timeout (s).
        output: the controller's heater output (loop) that runs the stage (1-based).
        sensor: the control input (``"A"``).
        visa_library: the pyvisa backend (``"@py"``: pyvisa-py).
    """

    resource: str
    limits: ThermalLimits
    timeout_s: float = 5.0
    output: int = 1
    sensor: str = "A"
    visa_library: str = "@py"


@dataclass(frozen=True)
class ThermalDriver:
    """A temperature controller driver: what an entry point of ``labrss.thermal`` names.

    Attributes:
        open: ``open(connection) -> TemperatureController``.
        description: one line for `labrss drivers`.
        recognition: how discovery recognises the instrument.
        simulator: the controller model the embedded simulator emulates for it
            (``"336"``), or None (hardware only).
    """

    open: Callable[[ThermalConnection], TemperatureController]
    description: str
    recognition: Recognition
    simulator: str | None = None


DriverT = TypeVar("DriverT", BoardDriver, SMUDriver, ThermalDriver)


@dataclass(frozen=True)
class InstalledDriver(Generic[DriverT]):
    """One installed driver: its name, where it comes from, and (after `load`) itself.

    Attributes:
        name: the entry point's name (the station's ``driver = "NAME"``).
        group: ``labrss.boards`` or ``labrss.smus``.
        value: the entry point's ``module:attribute``.
        package, version: the distribution that installed it.
        conflict: why the name cannot be used (two packages claim it), else None.
    """

    name: str
    group: str
    value: str
    package: str
    version: str
    kind: type[DriverT] = field(repr=False)
    entry_point: metadata.EntryPoint | None = field(default=None, repr=False)
    conflict: str | None = None

    @property
    def label(self) -> str:
        """``"crossbar (labrss 0.1.0)"``: how messages name the driver."""
        return f"{self.name} ({self.package} {self.version})"

    def load(self) -> DriverT:
        """Import the driver's description; `PluginError` naming the plug-in on failure."""
        if self.conflict is not None:
            raise PluginError(self.conflict)
        if self.entry_point is None:
            raise PluginError(f"driver {self.label}: no entry point to load")
        try:
            obj = self.entry_point.load()
        except Exception as exc:
            raise PluginError(
                f"driver {self.label}: importing {self.value} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(obj, self.kind):
            raise PluginError(
                f"driver {self.label}: {self.value} is a {type(obj).__name__}, not a "
                f"drivers.plugins.{self.kind.__name__} (group {self.group})"
            )
        return obj


def _installed(group: str, kind: type[DriverT]) -> dict[str, InstalledDriver[DriverT]]:
    found: dict[str, InstalledDriver[DriverT]] = {}
    for ep in metadata.entry_points(group=group):
        dist = ep.dist
        package = dist.metadata["Name"] if dist is not None else "?"
        version = dist.version if dist is not None else "?"
        entry = InstalledDriver(ep.name, group, ep.value, package, version, kind, ep)
        first = found.get(ep.name)
        if first is not None and (first.package, first.value) != (package, ep.value):
            clash = (
                f"driver name {ep.name!r} ({group}) is installed twice: by {first.package} "
                f"{first.version} ({first.value}) and by {package} {version} ({ep.value}); "
                "uninstall one of them"
            )
            entry = dataclasses.replace(first, conflict=clash)
        elif first is not None:
            continue  # the same distribution seen twice on sys.path
        found[ep.name] = entry
    return dict(sorted(found.items()))


def board_drivers() -> dict[str, InstalledDriver[BoardDriver]]:
    """Every installed board driver by name (nothing is imported)."""
    return _installed(BOARD_GROUP, BoardDriver)


def smu_drivers() -> dict[str, InstalledDriver[SMUDriver]]:
    """Every installed SMU driver by name (nothing is imported)."""
    return _installed(SMU_GROUP, SMUDriver)


def thermal_drivers() -> dict[str, InstalledDriver[ThermalDriver]]:
    """Every installed temperature controller driver by name (nothing is imported)."""
    return _installed(THERMAL_GROUP, ThermalDriver)


_GROUPS: Final = {"board": BOARD_GROUP, "SMU": SMU_GROUP, "thermal": THERMAL_GROUP}


def _find(installed: Mapping[str, InstalledDriver[DriverT]], name: str, what: str) -> DriverT:
    entry = installed.get(name)
    if entry is None:
        known = ", ".join(installed) or "none"
        raise UnknownDriverError(
            f"no {what} driver named {name!r} is installed (installed: {known}); a plug-in "
            f"package registers one under the entry point group {_GROUPS[what]!r}"
        )
    return entry.load()


def find_board_driver(name: str) -> BoardDriver:
    """The installed board driver ``name``, loaded (`UnknownDriverError`, `PluginError`)."""
    return _find(board_drivers(), name, "board")


def find_smu_driver(name: str) -> SMUDriver:
    """The installed SMU driver ``name``, loaded (`UnknownDriverError`, `PluginError`)."""
    return _find(smu_drivers(), name, "SMU")


def find_thermal_driver(name: str) -> ThermalDriver:
    """The installed temperature controller driver ``name``, loaded."""
    return _find(thermal_drivers(), name, "thermal")
