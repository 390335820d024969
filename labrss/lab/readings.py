"""What `Lab` returns: one resistance reading, and one read-out of every column current."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

ReadingKind = Literal["branch", "subset", "cell"]
ColumnPath = Literal["smu", "adc", "superposition"]
"""How the columns are read: the SMU on each column with the rows on their DACs, the
board's ADCs, or by superposition (the SMU drives one row at a time through cell routing)."""


def _json_float(value: float) -> float | None:
    """JSON has no NaN or infinity: those become null."""
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class Reading:
    """One SMU reading of a cell (a single branch, a chosen subset, or the programmed cell).

    The SMU sources ``source_voltage_V`` on the cell's row and measures the current; the
    resistance is the sensed voltage over the current (R = V / I).

    Attributes:
        resistance_ohm: voltage_V / current_A (ohm); inf at 0 A, NaN on overflow.
        conductance_S: current_A / voltage_V (S).
        voltage_V: voltage the SMU sensed (V): at its terminals in 2-wire, at the board's
            sense points in 4-wire.
        current_A: current out of the SMU's HI terminal into the cell (A).
        limit_tripped: the compliance limit was reached: the reading is not a valid R.
        current_range_A: the SMU's current range in use (A), after autorange.
        nplc: integration time in power-line cycles.
        four_wire: whether the board's sense lines were used.
        time_s: the instrument's time stamp of the reading (s, instrument-relative).
        instrument: the SMU, ``"<model> <serial>"``.
        cell: ``(row, col)`` measured.
        mask: the cell's switch mask during the reading (bit k = branch k closed).
        kind: ``"branch"``, ``"subset"`` or ``"cell"`` (which `Lab` method made it).
        source_voltage_V: the programmed source voltage (V).
    """

    resistance_ohm: float
    conductance_S: float
    voltage_V: float
    current_A: float
    limit_tripped: bool
    current_range_A: float
    nplc: float
    four_wire: bool
    time_s: float
    instrument: str
    cell: tuple[int, int]
    mask: int
    kind: ReadingKind
    source_voltage_V: float

    @property
    def branches(self) -> tuple[int, ...]:
        """Indices of the branches that were closed (the set bits of ``mask``)."""
        return tuple(k for k in range(self.mask.bit_length()) if self.mask >> k & 1)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite numbers become None; the mask also in hex)."""
        return {
            "kind": self.kind,
            "cell": list(self.cell),
            "mask": self.mask,
            "mask_hex": f"{self.mask:X}",
            "branches": list(self.branches),
            "resistance_ohm": _json_float(self.resistance_ohm),
            "conductance_S": _json_float(self.conductance_S),
            "voltage_V": _json_float(self.voltage_V),
            "current_A": _json_float(self.current_A),
            "source_voltage_V": self.source_voltage_V,
            "limit_tripped": self.limit_tripped,
            "current_range_A": _json_float(self.current_range_A),
            "nplc": self.nplc,
            "four_wire": self.four_wire,
            "time_s": _json_float(self.time_s),
            "instrument": self.instrument,
        }


def reversal_conductance_S(plus: Reading, minus: Reading) -> float | None:
    """A cell's conductance from a +V / -V pair of readings (S): (I+ - I-) / (V+ - V-),
    in which offsets (the meter's zero, thermal EMFs) cancel. None when either reading
    tripped its limit or the two voltages are equal: the pair says nothing."""
    dv = plus.voltage_V - minus.voltage_V
    if plus.limit_tripped or minus.limit_tripped or dv == 0:
        return None
    return (plus.current_A - minus.current_A) / dv


@dataclass(frozen=True, eq=False)
class ColumnReading:
    """Every column's current during an MVM read-out.

    Attributes:
        path: ``"smu"`` (each column in turn to the SMU, held at 0 V) or ``"adc"`` (every
            column through its TIA + ADC at once).
        currents_A: (C,) current flowing out of each column line into the read-out (A),
            i.e. I_c = sum_r G_rc V_r for an ideal crossbar. NaN where the reading
            overflowed.
        limit_tripped: (C,) bool, the SMU's compliance or the ADC's full scale was reached:
            that column's current is not valid.
        row_voltages_V: (R,) the row DAC voltages in force (quantised read-back, V).
        current_range_A: (C,) the current range per column (A): the SMU's range after
            autorange, or the ADC's full scale.
        time_s: (C,) instrument time stamps (s) for the SMU path; NaN for the ADC path.
        nplc: SMU integration time (power-line cycles); None for the ADC path.
        instrument: who measured: the SMU's ``"<model> <serial>"``, or the board's identity.
    """

    path: ColumnPath
    currents_A: npt.NDArray[np.float64]
    limit_tripped: npt.NDArray[np.bool_]
    row_voltages_V: npt.NDArray[np.float64]
    current_range_A: npt.NDArray[np.float64]
    time_s: npt.NDArray[np.float64]
    nplc: float | None
    instrument: str

    @property
    def valid(self) -> npt.NDArray[np.bool_]:
        """(C,) columns whose current is usable: finite and within the limit."""
        return np.isfinite(self.currents_A) & ~self.limit_tripped
