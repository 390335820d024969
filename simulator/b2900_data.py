"""The B2900's result data: element selection, ASCII / IEEE-754 blocks, the trace buffer.

"Data Output Format" of the B2900 SCPI Command Reference (B2910-90030, 1-12):

* ``:FORM ASC``: comma-separated NR3 (``+1.000000E-03``); +9.910000E+37 is not a number,
  +-9.900000E+37 is +-infinity;
* ``:FORM REAL,32`` / ``REAL,64``: an IEEE 488.2 definite-length block
  ``#<digits><byte count><bytes>``, 4 or 8 bytes per element, NaN and +-infinity for the
  values above; ``:FORM:BORD NORM`` sends byte 1 (sign and exponent) first, ``SWAP`` the
  reverse.

The block travels as a latin-1 string (one character per byte), so any line transport
(the loopback socket, VXI-11) sends it unchanged; the terminator follows it.

The trace buffer (``:TRAC``, 4-145 to 4-149) stores every reading while its control mode is
NEXT, up to its size (then the mode goes back to NEVer); ``:TRAC:DATA?`` returns the
``:FORM:ELEM:SENS`` elements, the TIME element relative to the first stored reading (ABS)
or to the previous one (DELT); ``:TRAC:STAT:DATA?`` one statistic per measured element
(TIME and STATus have none).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from simulator.smu_physics import NAN_READING, OVERFLOW_READING

ELEMENT_ORDER = ("VOLT", "CURR", "RES", "TIME", "STAT", "SOUR")
"""Data elements in the fixed order the B2900 returns them."""
STATISTIC_ELEMENTS = ("VOLT", "CURR", "RES", "SOUR")
"""Elements ``:TRAC:STAT:DATA?`` computes a statistic of (not TIME, not STATus)."""
TRACE_SIZE_MAX = 100_000

Reading = dict[str, float]


def nr3(value: float) -> str:
    """The B2900's ASCII number format (``+1.000000E-03``)."""
    return f"{value:+.6E}"


def ieee_value(value: float) -> float:
    """A value as the IEEE formats send it: NaN for 9.91E+37, +-inf for +-9.9E+37."""
    if value == NAN_READING:
        return math.nan
    if abs(value) == OVERFLOW_READING:
        return math.copysign(math.inf, value)
    return value


def format_numbers(values: Sequence[float], data_format: str, swapped: bool) -> str:
    """``values`` as the reply of a data query in ``data_format`` (ASC, REAL32, REAL64)."""
    if data_format == "ASC":
        return ",".join(nr3(v) for v in values)
    kind = "f4" if data_format == "REAL32" else "f8"
    dtype = np.dtype(("<" if swapped else ">") + kind)
    payload = np.asarray([ieee_value(v) for v in values], dtype=dtype).tobytes()
    count = str(len(payload))
    return f"#{len(count)}{count}" + payload.decode("latin-1")


def nan_reading() -> Reading:
    """What a channel without data reports: every element not a number."""
    return {e: NAN_READING for e in ELEMENT_ORDER}


def interleave(per_channel: Sequence[Sequence[Reading]], elements: Sequence[str]) -> list[float]:
    """Readings of several channels point by point (ch1 p1, ch2 p1, ch1 p2, ...).

    The channel with fewer points pads with not-a-number elements, as the reference's
    ``:READ:ARR?`` example shows (``ch1curr6,ch1sour6,+9.910000E+37,+9.910000E+37``).
    """
    out: list[float] = []
    length = max((len(r) for r in per_channel), default=0)
    for k in range(length):
        for readings in per_channel:
            point = readings[k] if k < len(readings) else nan_reading()
            out.extend(point[e] for e in elements)
    return out


@dataclass
class TraceBuffer:
    """The trace buffer of one channel."""

    size: int = TRACE_SIZE_MAX
    control: str = "NEV"
    timestamp_format: str = "ABS"
    statistic: str = "MEAN"
    readings: list[Reading] = field(default_factory=list)

    def store(self, reading: Reading) -> None:
        """Keep ``reading`` while the control mode is NEXT; full: back to NEVer."""
        if self.control != "NEXT":
            return
        self.readings.append(dict(reading))
        if len(self.readings) >= self.size:
            self.control = "NEV"

    def data(self, elements: Sequence[str], offset: int, size: int | None) -> list[float]:
        """Elements of readings ``offset`` .. ``offset + size - 1`` (TIME per the format)."""
        chosen = self.readings[offset : None if size is None else offset + size]
        out: list[float] = []
        for i, reading in enumerate(chosen):
            k = offset + i
            for e in elements:
                if e == "TIME":
                    if self.timestamp_format == "ABS":
                        reference = self.readings[0]["TIME"]
                    else:
                        reference = self.readings[k - 1]["TIME"] if k else reading["TIME"]
                    out.append(reading["TIME"] - reference)
                else:
                    out.append(reading[e])
        return out

    def statistics(self, elements: Sequence[str]) -> list[float]:
        """The selected statistic of each measured element among ``elements``."""
        out: list[float] = []
        for e in elements:
            if e not in STATISTIC_ELEMENTS:
                continue
            values = np.array(
                [r[e] for r in self.readings if abs(r[e]) < OVERFLOW_READING], dtype=float
            )
            out.append(_statistic(values, self.statistic))
        return out


def _statistic(values: np.ndarray, name: str) -> float:
    if values.size == 0:
        return NAN_READING
    if name == "MEAN":
        return float(values.mean())
    if name == "SDEV":
        return float(values.std(ddof=1)) if values.size > 1 else 0.0
    if name == "MIN":
        return float(values.min())
    if name == "MAX":
        return float(values.max())
    return float(values.max() - values.min())  # PKPK
