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
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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
