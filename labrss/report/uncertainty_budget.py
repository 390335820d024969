"""The uncertainty budget of one element and of one cell, as rows for people to read.

`budget_rows` is what the Board tab's budget view shows and what ``labrss budget`` prints
(docs/metrology.md): per component, the standard uncertainty of one branch of a cell and of
the cell's bank as switched, in S and relative, then the combined and the expanded
uncertainty.

Where the board has measured element TCRs (``labrss calibrate --temperatures``, passed as
``tcr`` with each cell's temperature uncertainty ``cell_u_K``), the temperature component
comes from them instead of the bill of materials' TCR: an element's is
``|alpha_k| g_k u_T`` (its own TCR times the cell's temperature uncertainty while it was
calibrated), the bank's ``|sum_closed alpha_k g_k| u_T`` (one temperature for every element
of a cell: a compensated subset's coefficients cancel here too) with each TCR's own
uncertainty ``u(alpha_k) g_k u_T`` added in quadrature. With ``at_C`` (the budget at
another board temperature) each element is carried there by its TCR and the component is
``sqrt(sum (g_k u(alpha_k) (T - T_ref,k))^2)`` as `labrss realise` states it
(docs/temperature.md).
"""

from __future__ import annotations

import math

import numpy as np

from labrss.metrology.budget import ElementBudget
from labrss.store import Calibration, ElementTCR

__all__ = ["BUDGET_ROWS", "budget_rows", "format_budget"]

#: Rows of the budget view: the components (docs/metrology.md), then u and U.
BUDGET_ROWS = (
    "statistical",
    "series",
    "leakage",
    "range",
    "offset",
    "scale",
    "temperature",
)


def _tcr_temperature(  # noqa: PLR0917 (one cell's TCRs and its temperature)
    tcr: ElementTCR,
    r: int,
    c: int,
    k: int | None,
    closed: np.ndarray,
    u_K: float,
    at_C: float | None,
) -> tuple[float, float] | None:
    """(branch, bank) temperature components from the measured TCRs (S), or None when a
    needed TCR is missing (module docstring)."""
    alpha = tcr.tcr_ppm_per_K[r, c] * 1e-6
    u_alpha = tcr.u_tcr_ppm_per_K[r, c] * 1e-6
    g = tcr.conductance_S[r, c]
    known = tcr.known[r, c]
    if not known[closed].all() or (k is not None and not known[k]):
        return None
    if at_C is not None:
        dt = at_C - tcr.reference_C[r, c]
        g_at = g / (1.0 + alpha * dt)
        each = np.abs(g_at * u_alpha * dt)
    else:
        if not math.isfinite(u_K):
            return None
        g_at = g
        each = np.hypot(alpha * g, u_alpha * g) * u_K
    branch = float(each[k]) if k is not None else math.nan
    sel = closed & known
    if at_C is not None:
        bank = float(np.sqrt((each[sel] ** 2).sum()))
    else:
        common = abs(float((alpha * g_at)[sel].sum())) * u_K
        bank = math.hypot(common, float(np.sqrt(((u_alpha * g_at * u_K)[sel] ** 2).sum())))
    return branch, bank


def budget_rows(
    calibration: Calibration | None,
    r: int,
    c: int,
    k: int | None,
    mask: int | None,
    *,
    tcr: ElementTCR | None = None,
    cell_u_K: float = math.nan,
    at_C: float | None = None,
) -> list[tuple[str, float, float, float, float]]:
    """The budget of branch ``k`` of cell (r, c) and of the cell's bank as switched
    (``mask``; every usable branch when None): rows (component, branch u in S, branch u
    relative, bank u in S, bank u relative), then ``combined u`` and ``expanded U (k = 2)``.
    NaN where unknown (no calibration, or one stored without a budget: its std_S is then
    given as ``statistical``). With ``tcr`` (the board's measured element TCRs) the
    temperature row is theirs where the cell's elements have one (module docstring):
    ``cell_u_K`` is the cell's temperature uncertainty during its calibration (K), ``at_C``
    a board temperature to carry the elements to (None: the calibration's own)."""
    nan = math.nan
    if calibration is None or not calibration.measured[r, c]:
        return [(name, nan, nan, nan, nan) for name in (*BUDGET_ROWS, "combined u")]
    branches = calibration.conductance_S.shape[2]
    if mask is None:
        closed = calibration.usable[r, c].copy()
    else:
        closed = np.array([bool(mask >> j & 1) for j in range(branches)])
    g_k = float(calibration.conductance_S[r, c, k]) if k is not None else nan
    comps_k: dict[str, float] = {}
    if k is not None and calibration.components is not None:
        comps_k = {n: float(v[r, c, k]) for n, v in calibration.components.items()}
    elif k is not None:
        comps_k = {"statistical": float(calibration.std_S[r, c, k])}
    bank_comps: dict[str, float] = {}
    bank_value = nan
    if calibration.budget is not None:
        budget = calibration.budget
        cell = ElementBudget(
            budget.sources, budget.value_S[r, c], budget.cov_S2[r, c], budget.contrib_S[r, c]
        )
        bank = cell.bank(closed)
        bank_value = float(bank.value_S)
        bank_comps = {n: float(v) for n, v in bank.components.items()}
    if tcr is not None and tcr.tcr_ppm_per_K.shape == calibration.conductance_S.shape:
        measured = _tcr_temperature(tcr, r, c, k, closed, cell_u_K, at_C)
        if measured is not None:
            if k is not None:
                comps_k["temperature"] = measured[0]
            if bank_comps:
                bank_comps["temperature"] = measured[1]
    out = []
    for name in BUDGET_ROWS:
        uk = comps_k.get(name, nan)
        ub = bank_comps.get(name, nan)
        out.append((name, uk, uk / g_k, ub, ub / bank_value))
    uk = math.sqrt(sum(v**2 for v in comps_k.values())) if comps_k else nan
    ub = math.sqrt(sum(v**2 for v in bank_comps.values())) if bank_comps else nan
    out.append(("combined u", uk, uk / g_k, ub, ub / bank_value))
    out.append(("expanded U (k = 2)", 2 * uk, 2 * uk / g_k, 2 * ub, 2 * ub / bank_value))
    return out


def format_budget(
    rows: list[tuple[str, float, float, float, float]], branch: int | None, mask_text: str
) -> str:
    """The rows as a text table (S and ppm)."""
    lines = [
        f"{'component':<20} {'branch ' + str(branch) if branch is not None else 'branch':>14} "
        f"{'ppm':>9}  {'cell ' + mask_text:>16} {'ppm':>9}"
    ]
    for name, uk, rk, ub, rb in rows:

        def s(x: float) -> str:
            return f"{x:.4g} S" if math.isfinite(x) else "-"

        def p(x: float) -> str:
            return f"{1e6 * x:.3g}" if math.isfinite(x) else "-"

        lines.append(f"{name:<20} {s(uk):>14} {p(rk):>9}  {s(ub):>16} {p(rb):>9}")
    return "\n".join(lines)
