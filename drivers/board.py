"""The board interface: what labrss needs from a bench, whatever hardware provides it.

`Board` is the seam between labrss and a bench's switching hardware. `Lab`, the workflows,
the CLI and the GUI code against it only; `drivers.crossbar_board.CrossbarBoard` (the
labrss board protocol) is one implementation, and a lab's own board is another, installed
as a plug-in (`drivers.plugins`, docs/drivers.md).

Every bench has (abstract methods, a driver must implement them):

* **identity and geometry**: ``identity`` (the identify reply), ``serial``, ``name`` (how
  messages name it), ``geometry`` (R rows x C columns, K branches per cell),
  ``element_kind`` and ``info`` (the bill of materials, keys as in the board protocol's
  ``BOARD:INFO?``: ``nominal_ohm``, ``tolerance``, ``g_max_S``, ...: the power check and
  calibration read them);
* **switches with read-back**: per cell (`set_cell_mask`, `cell_mask`), the whole board
  (`set_masks`, `masks`), `open_all`; every write is verified by read-back unless
  ``verify=False``; break-before-make within every change;
* **routing**: the SMU to one cell with every other cell isolated (`route_cell`), nothing
  (`route_open`), and the read-back `routing`;
* **the safe state**: `safe` (every switch open, routing open, row sources at 0 V),
  `is_safe`, `close` (safe first, best effort).

Benches differ, so the rest is declared in ``capabilities`` (`Capability`), and a method
whose capability is absent raises `MissingCapabilityError` naming it:

* ``dacs``: a voltage source per row (`set_dacs`, `dacs`, `zero_dacs`);
* ``adcs``: every column read at once by TIAs and ADCs (`route_mvm_adc`, `read_adcs`);
* ``mvm-smu``: rows on their DACs and one column to the SMU at 0 V (`route_mvm_smu`);
* ``pulses``: a memristor pulse circuit (`pulse`, `pulse_count`, ``pulse_limits``);
* ``4-wire``: remote sense to the routed cell (``route_cell(..., four_wire=True)``);
* ``temperature``: a temperature sensor (`temperature_C`);
* ``switch-counts``: per-switch operation counters, for relay life (`switch_wear`).

MVM in analog needs ``dacs`` and a column read-out (``adcs`` or ``mvm-smu``); without them
labrss runs an MVM by superposition: the SMU drives one row at a time through cell routing
(`mvm_mode`).

Declared figures a workflow or the self-test relies on: ``open_cell_max_S`` (the largest
conductance an open cell may show: isolation), ``settle_time_s`` (how long after a switch
or routing change a reading becomes valid; `Lab` waits it out), the DAC and ADC ranges
where present.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Final, Literal, Self

import numpy as np
import numpy.typing as npt

from drivers.errors import InstrumentError

__all__ = [
    "CAPABILITY_HELP",
    "Board",
    "BoardGeometry",
    "Capability",
    "CellKind",
    "ElementKind",
    "MVMMode",
    "MissingCapabilityError",
    "PulseLimits",
    "SwitchWear",
    "format_capabilities",
    "mvm_mode",
]

ElementKind = Literal["resistor", "memristor", "mixed"]
"""Every cell resistors, every cell memristors, or some of each."""
CellKind = Literal["resistor", "memristor"]
"""The kind of one cell's elements."""
ELEMENT_KINDS: Final = ("resistor", "memristor", "mixed")

MVMMode = Literal["analog", "superposition"]
"""How a bench runs an MVM: all rows driven at once, or one row source at a time."""


class Capability(StrEnum):
    """What a bench may or may not have (see the module docstring)."""

    DACS = "dacs"
    ADCS = "adcs"
    MVM_SMU = "mvm-smu"
    PULSES = "pulses"
    FOUR_WIRE = "4-wire"
    TEMPERATURE = "temperature"
    SWITCH_COUNTS = "switch-counts"


CAPABILITY_HELP: Final[Mapping[Capability, str]] = {
    Capability.DACS: "a voltage source (DAC) per row",
    Capability.ADCS: "every column read at once by TIAs and ADCs",
    Capability.MVM_SMU: "rows on their DACs with one column to the SMU at 0 V",
    Capability.PULSES: "a memristor pulse circuit",
    Capability.FOUR_WIRE: "4-wire (remote sense) cell reads",
    Capability.TEMPERATURE: "a temperature sensor",
    Capability.SWITCH_COUNTS: "per-switch operation counters (relay life)",
}
"""One line per capability, for messages and `labrss drivers`."""


def format_capabilities(capabilities: Iterable[Capability]) -> str:
    """``"dacs, adcs, pulses"`` in the enum's order, or ``"none"``."""
    present = set(capabilities)
    names = [c.value for c in Capability if c in present]
    return ", ".join(names) if names else "none"


def mvm_mode(capabilities: Iterable[Capability]) -> MVMMode:
    """``"analog"`` with row DACs and a column read-out (ADCs or the SMU on a column),
    else ``"superposition"`` (one row source at a time through cell routing)."""
    caps = set(capabilities)
    if Capability.DACS in caps and (Capability.ADCS in caps or Capability.MVM_SMU in caps):
        return "analog"
    return "superposition"


class MissingCapabilityError(InstrumentError, ValueError):
    """The bench lacks what an operation needs; nothing was sent (so, like every request
    refused before sending, also a ValueError).

    Attributes:
        missing: the capabilities that are absent.
        needed_by: what needed them (an operation or a workflow).
    """

    def __init__(self, missing: Sequence[Capability], *, instrument: str, needed_by: str) -> None:
        self.missing = tuple(missing)
        self.needed_by = needed_by
        listed = ", ".join(f"'{c.value}' ({CAPABILITY_HELP[c]})" for c in self.missing)
        super().__init__(
            f"{needed_by} needs {listed}, which this bench does not have; nothing was sent",
            instrument=instrument,
        )


@dataclass(frozen=True)
class BoardGeometry:
    """R row lines x C column lines, K branches per cell."""

    rows: int
    cols: int
    branches: int


@dataclass(frozen=True)
class PulseLimits:
    """The pulse circuit's hardware limits.

    Attributes:
        max_amplitude_V: largest |amplitude| (V).
        min_width_s, max_width_s: pulse width range (s).
        max_count: most pulses in one burst.
    """

    max_amplitude_V: float
    min_width_s: float
    max_width_s: float
    max_count: int


@dataclass(frozen=True)
class SwitchWear:
    """Operation counts of a bench's switches (relays), as the instrument keeps them.

    Attributes:
        counts: switch name (e.g. a matrix channel ``"1203"``) -> operations (closures)
            counted by the instrument.
        rated_operations: the rated life of these switches (operations), from their
            datasheet; None when the switches have no finite rated life (solid state).
        where: switch name -> what it connects, e.g. ``"branch (0, 1, 3)"`` or
            ``"row 2 to HI"``.
    """

    counts: Mapping[str, int]
    rated_operations: int | None
    where: Mapping[str, str] = field(default_factory=dict)

    def fraction_used(self) -> dict[str, float]:
        """Switch name -> operations / rated life (0 without a rated life)."""
        rated = self.rated_operations
        if rated is None or rated <= 0:
            return dict.fromkeys(self.counts, 0.0)
        return {name: count / rated for name, count in self.counts.items()}


class Board(abc.ABC):
    """A bench's switching hardware, as labrss uses it (see the module docstring).

    Attributes (set by the implementation when it connects):
        identity: the instrument's identify reply (``*IDN?`` or the board's own).
        serial: serial number of the board (the array: what calibrations belong to).
        name: how messages name the bench, e.g. ``"crossbar board SIM-1 at COM3"``.
        geometry: rows, cols, branches.
        element_kind: ``resistor``, ``memristor`` or ``mixed``.
        info: the bill of materials as ``key -> text`` (board protocol ``BOARD:INFO?``
            keys; labrss reads ``nominal_ohm``/``nominal_min_ohm``, ``tolerance``,
            ``g_min_S``, ``g_max_S``, ``switch_on_ohm`` and ignores the others).
        capabilities: what this bench has (`Capability`).
        open_cell_max_S: the largest conductance (S) a cell with every switch open may
            show (its switches' declared off-leakage): the self-test's isolation bound.
        settle_time_s: time (s) after a switch or routing change before a reading is valid;
            `Lab` waits it out before every reading that follows a change.
        dac_range_V, dac_bits, dac_lsb_V, max_dac_voltage_V: the row DACs (``dacs``).
        adc_range_A: the column ADCs' full scale (A) (``adcs``).
        pulse_limits, max_pulse_voltage_V, g_min_S, g_max_S: the memristors (``pulses``).
        set_threshold_min_V, reset_threshold_min_V: the memristors' smallest switching
            threshold magnitude per polarity (V), NaN when unknown: `Lab` keeps every read
            and MVM voltage below them (read disturb).
    """

    identity: str = ""
    serial: str = ""
    name: str = "board"
    geometry: BoardGeometry
    element_kind: ElementKind = "resistor"
    info: dict[str, str]
    capabilities: frozenset[Capability] = frozenset()
    open_cell_max_S: float = math.nan
    settle_time_s: float = 0.0
    dac_range_V: float = math.nan
    dac_bits: int = 0
    dac_lsb_V: float = math.nan
    max_dac_voltage_V: float = 0.0
    adc_range_A: float = math.nan
    pulse_limits: PulseLimits | None = None
    max_pulse_voltage_V: float | None = None
    g_min_S: float = math.nan
    g_max_S: float = math.nan
    set_threshold_min_V: float = math.nan
    reset_threshold_min_V: float = math.nan

    # ------------------------------------------------------------------ capabilities
    def has(self, capability: Capability) -> bool:
        """Whether the bench has ``capability``."""
        return capability in self.capabilities

    def require(self, *capabilities: Capability, needed_by: str) -> None:
        """Raise `MissingCapabilityError` naming every absent one of ``capabilities``."""
        missing = [c for c in capabilities if c not in self.capabilities]
        if missing:
            raise MissingCapabilityError(missing, instrument=self.name, needed_by=needed_by)

    @property
    def mvm_mode(self) -> MVMMode:
        """``"analog"`` or ``"superposition"`` (`mvm_mode`)."""
        return mvm_mode(self.capabilities)

    # ------------------------------------------------------------------ switches
    @abc.abstractmethod
    def set_cell_mask(self, r: int, c: int, mask: int, *, verify: bool = True) -> None:
        """Set cell (r, c)'s bank: bit k of ``mask`` closes branch k (break-before-make)."""

    @abc.abstractmethod
    def cell_mask(self, r: int, c: int) -> int:
        """Cell (r, c)'s commanded mask (read back from the bench)."""

    @abc.abstractmethod
    def set_masks(self, masks: npt.ArrayLike, *, verify: bool = True) -> None:
        """Set every switch from a (rows, cols, branches) bool array."""

    @abc.abstractmethod
    def masks(self) -> npt.NDArray[np.bool_]:
        """The commanded state of every switch, (rows, cols, branches) bool."""

    @abc.abstractmethod
    def open_all(self) -> None:
        """Open every switch, verified."""

    def set_branch(self, r: int, c: int, k: int, closed: bool, *, verify: bool = True) -> None:
        """Close (True) or open one branch; default: read-modify-write of the cell mask."""
        mask = self.cell_mask(r, c)
        bit = 1 << int(k)
        self.set_cell_mask(r, c, (mask | bit) if closed else (mask & ~bit), verify=verify)

    def cell_kind(self, r: int, c: int) -> CellKind:
        """``"resistor"`` or ``"memristor"``; a mixed board must override this."""
        if self.element_kind == "mixed":
            raise NotImplementedError(f"{self.name}: a mixed board must implement cell_kind")
        return "memristor" if self.element_kind == "memristor" else "resistor"

    # ------------------------------------------------------------------ routing
    @abc.abstractmethod
    def route_cell(self, r: int, c: int, *, four_wire: bool = False) -> None:
        """The SMU to cell (r, c), every other cell isolated (guarded); verified."""

    @abc.abstractmethod
    def route_open(self) -> None:
        """Disconnect every line from the SMU (and from the DACs and ADCs); verified."""

    @abc.abstractmethod
    def routing(self) -> str:
        """The routing as read back: ``OPEN``, ``CELL r,c,2W|4W``, ``MVM ADC``, ``MVM SMU,c``."""

    def route_mvm_adc(self) -> None:
        """Rows to their DACs, every column to its TIA+ADC (``adcs``)."""
        self.require(Capability.DACS, Capability.ADCS, needed_by="route_mvm_adc")

    def route_mvm_smu(self, c: int) -> None:
        """Rows to their DACs, column ``c`` to the SMU held at 0 V (``mvm-smu``)."""
        self.require(Capability.DACS, Capability.MVM_SMU, needed_by="route_mvm_smu")

    # ------------------------------------------------------------------ row sources, read-out
    def set_dacs(self, volts_V: Sequence[float] | npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Set every row's DAC (V); return the read-back (quantised) voltages (``dacs``)."""
        self.require(Capability.DACS, needed_by="set_dacs")
        raise NotImplementedError

    def dacs(self) -> npt.NDArray[np.float64]:
        """Every row's DAC voltage (V) as set (``dacs``)."""
        self.require(Capability.DACS, needed_by="dacs")
        raise NotImplementedError

    def zero_dacs(self) -> None:
        """Every DAC at 0 V (``dacs``)."""
        self.require(Capability.DACS, needed_by="zero_dacs")

    def read_adcs(self) -> npt.NDArray[np.float64]:
        """Every column's current (A), NaN on overflow (``adcs``)."""
        self.require(Capability.ADCS, needed_by="read_adcs")
        raise NotImplementedError

    def temperature_C(self) -> float:
        """The board's temperature (degC) (``temperature``)."""
        self.require(Capability.TEMPERATURE, needed_by="temperature_C")
        raise NotImplementedError

    # ------------------------------------------------------------------ memristors
    def pulse(  # noqa: PLR0917 (the order of the board protocol's PULSe)
        self, r: int, c: int, k: int, amplitude_V: float, width_s: float, count: int = 1
    ) -> float:
        """Apply ``count`` pulses to memristor branch (r, c, k); return the time taken (s)."""
        self.require(Capability.PULSES, needed_by="pulse")
        raise NotImplementedError

    def pulse_count(self, r: int, c: int, k: int) -> int:
        """Pulses the bench has driven into memristor branch (r, c, k) (``pulses``)."""
        self.require(Capability.PULSES, needed_by="pulse_count")
        raise NotImplementedError

    def pulse_duration_s(self, width_s: float, count: int = 1) -> float:
        """How long a burst of ``count`` pulses of ``width_s`` (s) takes on the bench (s)."""
        self.require(Capability.PULSES, needed_by="pulse_duration_s")
        raise NotImplementedError

    # ------------------------------------------------------------------ wear, errors
    def switch_wear(self) -> SwitchWear:
        """Per-switch operation counts and rated life (``switch-counts``)."""
        self.require(Capability.SWITCH_COUNTS, needed_by="switch_wear")
        raise NotImplementedError

    def errors(self) -> list[tuple[int, str]]:
        """Drain the bench's error queue, oldest first (none by default)."""
        return []

    # ------------------------------------------------------------------ safe state
    @abc.abstractmethod
    def safe(self) -> None:
        """Every switch open, routing open, every row source at 0 V; verified."""

    @abc.abstractmethod
    def is_safe(self) -> bool:
        """Whether the bench reports the safe state."""

    @abc.abstractmethod
    def close(self) -> None:
        """Go safe (best effort, failures logged), then close the connection; idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
