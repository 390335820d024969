"""What the Board tab draws from a calibration: one value per cell (pure numpy).

Quantities, for the whole cell (every usable branch closed) or for one branch k:

* ``G``: conductance (S). Cell: ``1 / (r_s + 1 / (c0 + sum_k a_k))`` with the measured
  series path ``r_s`` and all-open leakage ``c0`` (each left out when unknown); branch:
  ``a_k``.
* ``R``: resistance ``1 / G`` (ohm).
* ``deviation``: relative deviation from nominal (%). The nominal of branch k is the
  board's ``BOARD:INFO?`` ``nominal_ohm`` (one value or ``/``-separated per branch) when
  it reports one, else the median of branch k over the calibrated cells (then the map shows
  how each element differs from its siblings). Cell: the sum of the usable branches'
  conductances against the sum of their nominals.
* ``uncertainty``: relative combined standard uncertainty of G (ppm): for a branch its
  ``u_k / a_k``; for the cell (every usable branch closed) the bank's budget
  (`labrss.metrology.budget.ElementBudget.bank`: sources shared by the branches, a range's
  gain or the common scale, add linearly), or ``sqrt(sum u_k^2) / sum a_k`` for a
  calibration stored without a budget.

The Board tab's budget view uses `labrss.report.uncertainty_budget.budget_rows`.

Faulty (excluded) branches are left out of the cell sums and marked on the map.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from labrss.store import Calibration

Quantity = Literal["G", "R", "deviation", "uncertainty"]

#: Display name and unit of each quantity, for the colour bar.
QUANTITIES: dict[Quantity, tuple[str, str]] = {
    "G": ("conductance G", "S"),
    "R": ("resistance R", "Ω"),
    "deviation": ("deviation from nominal (%)", ""),
    "uncertainty": ("relative uncertainty of G (ppm)", ""),
}


def nominal_conductance_S(
    calibration: Calibration, board_info: Mapping[str, str]
) -> tuple[NDArray[np.float64], str]:
    """Nominal conductance of each branch (S), shape (K,), and where it comes from."""
    k = calibration.conductance_S.shape[2]
    text = board_info.get("nominal_ohm", "").strip()
    if text:
        try:
            values = np.array([float(v) for v in text.split("/")], dtype=np.float64)
        except ValueError:
            values = np.zeros(0)
        if values.size in (1, k) and np.all(values > 0) and np.all(np.isfinite(values)):
            return np.broadcast_to(1.0 / values, (k,)).copy(), "board nominal_ohm"
    g = np.where(calibration.usable, calibration.conductance_S, np.nan)
    with np.errstate(all="ignore"):
        med = np.array(
            [np.nanmedian(g[..., i]) if np.isfinite(g[..., i]).any() else np.nan for i in range(k)]
        )
    return med, "median of the calibrated cells"


@dataclass(frozen=True)
class CellMap:
    """One quantity over the board: ``values`` (R, C) with its label and unit."""

    values: NDArray[np.float64]
    label: str
    unit: str
    faults: NDArray[np.bool_]


def cell_map(
    calibration: Calibration,
    quantity: Quantity,
    branch: int | None,
    nominal_S: NDArray[np.float64],
) -> CellMap:
    """The (R, C) map of ``quantity`` for the whole cell (``branch`` None) or branch k."""
    if quantity not in QUANTITIES:
        raise ValueError(f"unknown quantity {quantity!r}; expected one of {list(QUANTITIES)}")
    usable = calibration.usable
    a = np.where(usable, calibration.conductance_S, np.nan)
    s = np.where(usable, calibration.std_S, np.nan)
    label, unit = QUANTITIES[quantity]
    with np.errstate(all="ignore"):
        if branch is None:
            faults = calibration.excluded.any(axis=2)
            measured = calibration.measured
            bank = np.nansum(a, axis=2)
            leak = np.nan_to_num(calibration.leakage_S, nan=0.0)
            rs = np.nan_to_num(calibration.series_ohm, nan=0.0)
            g_cell = 1.0 / (rs + 1.0 / (bank + leak))
            if quantity == "G":
                v = g_cell
            elif quantity == "R":
                v = 1.0 / g_cell
            elif quantity == "deviation":
                nominal = np.nansum(np.where(usable, nominal_S, np.nan), axis=2)
                v = 100.0 * (bank / nominal - 1.0)
            elif calibration.budget is not None:
                u = calibration.budget.bank(usable & measured[..., None]).u_S
                v = 1e6 * u / bank
            else:
                v = 1e6 * np.sqrt(np.nansum(s**2, axis=2)) / bank
            values = np.where(measured & (bank > 0), v, np.nan)
        else:
            k = int(branch)
            if not 0 <= k < a.shape[2]:
                raise ValueError(f"branch {k} not on the board (0..{a.shape[2] - 1})")
            faults = calibration.excluded[..., k]
            g = a[..., k]
            if quantity == "G":
                values = g
            elif quantity == "R":
                values = 1.0 / g
            elif quantity == "deviation":
                values = 100.0 * (g / nominal_S[k] - 1.0)
            else:
                values = 1e6 * s[..., k] / g
            values = np.where(np.isfinite(values), values, np.nan)
    return CellMap(
        np.asarray(values, dtype=np.float64), label, unit, np.asarray(faults, dtype=bool)
    )


def describe_cell(
    calibration: Calibration | None, r: int, c: int, nominal_S: NDArray[np.float64] | None
) -> list[dict[str, float | bool | str]]:
    """One row per branch of cell (r, c): G (S), sigma (S), R (ohm), deviation (%), fault."""
    if calibration is None:
        return []
    rows: list[dict[str, float | bool | str]] = []
    kinds = {f.k: f.kind for f in calibration.faults if (f.r, f.c) == (r, c)}
    comps = calibration.components
    for k in range(calibration.conductance_S.shape[2]):
        g = float(calibration.conductance_S[r, c, k])
        nominal = float(nominal_S[k]) if nominal_S is not None else math.nan
        rows.append(
            {
                "k": k,
                "G_S": g,
                "std_S": float(calibration.std_S[r, c, k]),
                "R_ohm": 1.0 / g if g > 0 else math.inf,
                "deviation_pct": 100.0 * (g / nominal - 1.0) if nominal > 0 else math.nan,
                "fault": kinds.get(k, ""),
                "excluded": bool(calibration.excluded[r, c, k]),
                "scale_S": float(comps["scale"][r, c, k]) if comps is not None else math.nan,
            }
        )
    return rows
