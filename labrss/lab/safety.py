"""Safety checks `Lab` makes before anything is switched or sourced.

The worst case for one element is the whole applied voltage across it: in guarded cell
routing every closed element on another row and another column sits between GUARD (at the
HI potential) and LO, driven by the guard buffer rather than the compliance-limited HI
output; in MVM routing every closed element sits between its row DAC and a column held at
0 V. So the largest power any element can dissipate is V**2 / R_min, where R_min is the
smallest element resistance on the board (the switch on-resistance in series only lowers
it, so ignoring it is conservative).

R_min comes from, in order: the station's ``[limits] min_element_resistance_ohm``; the
board's bill of materials in ``BOARD:INFO?`` (docs/board-protocol.md: the smallest of the
``/``-separated ``nominal_ohm`` values, or ``nominal_min_ohm``, times ``1 - tolerance``;
for memristors ``1 / (1.2 g_max_S)``, from the device range's upper conductance bound;
on a mixed board the smaller of the two); else `ASSUMED_MIN_ELEMENT_RESISTANCE_OHM`.
A shorted element (a fault) is not covered by any of these: only the SMU compliance
bounds the measured cell's current in that case.

**Memristor read disturb.** A memristor is reprogrammed by any voltage above its switching
threshold, reads included, and creeps below it (docs/memristor.md, "Read disturb"). On a
board with memristors every read and MVM voltage on memristor cells is therefore refused
above ``[limits] read_disturb_fraction`` times the smallest switching threshold of its
polarity: the board's ``BOARD:INFO?`` ``set_threshold_min_V`` / ``reset_threshold_min_V``,
or the station's ``memristor_set_threshold_V`` / ``memristor_reset_threshold_V``
(`ReadDisturbLimits`). Polarity is the device's: SET when the row is positive with
respect to the column. An MVM row voltage V puts V across every cell of its row. A guarded
cell read at V puts V across the read cell and -V across every closed cell on the other
rows and columns (their rows at LO, their columns at GUARD), so a cell read must stay
within both polarities' limits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from labrss.lab.errors import SafetyLimitError
from labrss.station import StationLimits

ASSUMED_MIN_ELEMENT_RESISTANCE_OHM: Final = 100.0
"""Conservative R_min (ohm) when neither the station nor the board says: a tenth of the
1 kohm element labrss boards are designed around, which covers a +-10 % tolerance and a
sub-binary ladder of nominal values down to about 110 ohm."""

NO_TOLERANCE_MARGIN: Final = 0.2
"""Relative margin (20 %) applied to a nominal value when the board reports no tolerance."""


def _positive_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def min_element_resistance(
    limits: StationLimits, board_info: Mapping[str, str]
) -> tuple[float, str]:
    """The R_min (ohm) used for the power check, and where it came from (for messages)."""
    if limits.min_element_resistance_ohm is not None:
        return limits.min_element_resistance_ohm, "[limits] min_element_resistance_ohm"
    resistor = _resistor_r_min(board_info)
    memristor = _memristor_r_min(board_info)
    found = [r for r in (resistor, memristor) if r is not None]
    if found:
        return min(found, key=lambda r: r[0])
    return ASSUMED_MIN_ELEMENT_RESISTANCE_OHM, "the conservative assumption (no board value)"


def _memristor_r_min(board_info: Mapping[str, str]) -> tuple[float, str] | None:
    """1 / (g_max_S x (1 + NO_TOLERANCE_MARGIN)) (ohm) on a board with memristors that
    reports its device range. g_max_S is the nominal upper conductance bound; each device
    has its own range around it (device-to-device variability), hence the same margin as
    a nominal value without a tolerance (and as `Lab`'s pulse power check)."""
    if board_info.get("element") not in ("memristor", "mixed"):
        return None
    g_max_S = _positive_float(board_info.get("g_max_S", ""))
    if g_max_S is None:
        return None
    factor = 1 + NO_TOLERANCE_MARGIN
    return 1.0 / (g_max_S * factor), f"BOARD:INFO? 1 / (g_max_S x {factor})"


def _resistor_r_min(board_info: Mapping[str, str]) -> tuple[float, str] | None:
    """The smallest nominal resistor (ohm) times (1 - tolerance), None without one."""
    nominal: float | None = None
    source = ""
    if "nominal_ohm" in board_info:
        values = [_positive_float(v) for v in board_info["nominal_ohm"].split("/")]
        if values and all(v is not None for v in values):
            nominal, source = min(v for v in values if v is not None), "nominal_ohm"
    if nominal is None and "nominal_min_ohm" in board_info:
        nominal, source = _positive_float(board_info["nominal_min_ohm"]), "nominal_min_ohm"
    if nominal is not None:
        tol = _positive_float(board_info.get("tolerance", ""))
        if tol is not None and tol < 1:
            return nominal * (1 - tol), f"BOARD:INFO? min {source} x (1 - tolerance)"
        margin = 1 - NO_TOLERANCE_MARGIN
        return nominal * margin, f"BOARD:INFO? min {source} x {margin} (no tolerance reported)"
    return None


def worst_case_element_power_W(voltage_V: float, min_element_resistance_ohm: float) -> float:
    """Largest power (W) one element can dissipate with ``voltage_V`` across it: V**2 / R_min."""
    return voltage_V * voltage_V / min_element_resistance_ohm


def check_source_voltage(
    voltage_V: float,
    limits: StationLimits,
    r_min: tuple[float, str],
    *,
    what: str = "read voltage",
) -> None:
    """Refuse an SMU source voltage beyond the station's voltage or power limits.

    Raises:
        SafetyLimitError: naming the value and the limit it exceeds.
    """
    if not math.isfinite(voltage_V) or abs(voltage_V) > limits.max_source_voltage_V:
        raise SafetyLimitError(
            f"{what} {voltage_V!r} V exceeds [limits] max_source_voltage_V = "
            f"{limits.max_source_voltage_V!r} V; nothing was switched or sourced",
            quantity=what,
            value=voltage_V,
            limit=limits.max_source_voltage_V,
            limit_key="[limits] max_source_voltage_V",
        )
    _check_power(voltage_V, limits, r_min, what=what)


def check_row_voltages(
    volts_V: npt.NDArray[np.float64], limits: StationLimits, r_min: tuple[float, str]
) -> None:
    """Refuse row DAC voltages beyond the station's DAC voltage or power limits.

    Raises:
        SafetyLimitError: naming the row, its value and the limit it exceeds.
    """
    bad = np.flatnonzero(~np.isfinite(volts_V) | (np.abs(volts_V) > limits.max_dac_voltage_V))
    if bad.size:
        row = int(bad[0])
        raise SafetyLimitError(
            f"row {row} voltage {float(volts_V[row])!r} V exceeds [limits] max_dac_voltage_V = "
            f"{limits.max_dac_voltage_V!r} V; no DAC was set",
            quantity="row voltage",
            value=float(volts_V[row]),
            limit=limits.max_dac_voltage_V,
            limit_key="[limits] max_dac_voltage_V",
        )
    if volts_V.size:
        row = int(np.argmax(np.abs(volts_V)))
        _check_power(float(volts_V[row]), limits, r_min, what=f"row {row} voltage")


def _check_power(
    voltage_V: float, limits: StationLimits, r_min: tuple[float, str], *, what: str
) -> None:
    resistance_ohm, origin = r_min
    power_W = worst_case_element_power_W(voltage_V, resistance_ohm)
    if power_W > limits.max_power_per_element_W:
        raise SafetyLimitError(
            f"{what} {voltage_V!r} V could put {power_W:.4g} W into one element "
            f"(V^2 / R_min, R_min = {resistance_ohm:.4g} ohm from {origin}), beyond "
            f"[limits] max_power_per_element_W = {limits.max_power_per_element_W!r} W; "
            "nothing was switched or sourced",
            quantity="power per element",
            value=power_W,
            limit=limits.max_power_per_element_W,
            limit_key="[limits] max_power_per_element_W",
        )


@dataclass(frozen=True)
class ReadDisturbLimits:
    """The largest read / MVM voltage on memristor cells, per polarity (module docstring).

    Attributes:
        fraction: ``[limits] read_disturb_fraction``.
        set_threshold_V, reset_threshold_V: the smallest switching threshold magnitude of
            each polarity (V); NaN when neither the board nor the station gives it.
        set_origin, reset_origin: where each threshold came from, for messages.
    """

    fraction: float
    set_threshold_V: float
    reset_threshold_V: float
    set_origin: str
    reset_origin: str

    @property
    def max_set_V(self) -> float:
        """Largest positive (SET-polarity) voltage allowed across a device (V); NaN: unknown."""
        return self.fraction * self.set_threshold_V

    @property
    def max_reset_V(self) -> float:
        """Largest magnitude of a negative (RESET-polarity) voltage (V); NaN: unknown."""
        return self.fraction * self.reset_threshold_V

    @property
    def max_either_V(self) -> float:
        """Largest magnitude allowed in both polarities (V); NaN if a threshold is unknown."""
        return min(self.max_set_V, self.max_reset_V)

    def check(self, voltage_V: float, *, what: str, polarities: tuple[str, ...]) -> None:
        """Refuse ``voltage_V`` if it exceeds the limit of any polarity it puts on a device.

        ``polarities``: which device polarities the voltage is applied in, ``"same"`` (the
        device sees ``voltage_V``) and/or ``"opposite"`` (it sees ``-voltage_V``).

        Raises:
            SafetyLimitError: naming the voltage, the threshold, its origin and the setting.
        """
        for polarity in polarities:
            device_V = voltage_V if polarity == "same" else -voltage_V
            if device_V == 0.0:
                continue
            is_set = device_V > 0
            name = "SET" if is_set else "RESET"
            threshold = self.set_threshold_V if is_set else self.reset_threshold_V
            origin = self.set_origin if is_set else self.reset_origin
            key = f"[limits] memristor_{name.lower()}_threshold_V"
            where = (
                "across the read cell"
                if polarity == "same"
                else "across every closed cell of the other rows and columns (guarded read)"
            )
            if not math.isfinite(threshold):
                raise SafetyLimitError(
                    f"{what} {voltage_V!r} V would put {device_V:+.4g} V ({name} polarity) "
                    f"on memristor devices {where}, and their {name} switching threshold is "
                    f"unknown: the board reports no {name.lower()}_threshold_min_V in "
                    f"BOARD:INFO? and the station sets no {key}; set it (from the device "
                    "datasheet) to read memristor cells; nothing was switched or sourced",
                    quantity="read disturb",
                    value=voltage_V,
                    limit=math.nan,
                    limit_key=key,
                )
            limit = self.fraction * threshold
            if abs(device_V) > limit:
                raise SafetyLimitError(
                    f"{what} {voltage_V!r} V would put {device_V:+.4g} V ({name} polarity) on "
                    f"memristor devices {where}: beyond [limits] read_disturb_fraction = "
                    f"{self.fraction!r} x the smallest {name} switching threshold "
                    f"{threshold:.4g} V ({origin}) = {limit:.4g} V; such a read would "
                    "reprogram or disturb the devices; nothing was switched or sourced",
                    quantity="read disturb",
                    value=voltage_V,
                    limit=limit,
                    limit_key="[limits] read_disturb_fraction",
                )


def read_disturb_limits(
    limits: StationLimits, board_set_threshold_V: float, board_reset_threshold_V: float
) -> ReadDisturbLimits:
    """The `ReadDisturbLimits` of a board with memristors: the station's thresholds if it
    sets them, else the board's (``BOARD:INFO?``; NaN or non-positive means not reported)."""

    def pick(station: float | None, board: float, polarity: str) -> tuple[float, str]:
        if station is not None:
            return station, f"[limits] memristor_{polarity}_threshold_V"
        if math.isfinite(board) and board > 0:
            return board, f"BOARD:INFO? {polarity}_threshold_min_V"
        return math.nan, "unknown"

    set_th, set_origin = pick(limits.memristor_set_threshold_V, board_set_threshold_V, "set")
    reset_th, reset_origin = pick(
        limits.memristor_reset_threshold_V, board_reset_threshold_V, "reset"
    )
    return ReadDisturbLimits(
        fraction=limits.read_disturb_fraction,
        set_threshold_V=set_th,
        reset_threshold_V=reset_th,
        set_origin=set_origin,
        reset_origin=reset_origin,
    )
