"""Measure a cell's series path in situ, at the board's present temperature.

    from labrss.workflows.series_path import measure_series_path
    path = measure_series_path(lab, r, c, mask_a, usable_mask, read_voltage_V=0.5)
    g = y / (1 - path.series_ohm * y)          # a later reading y of the cell (S)

Reads the subsets A (``mask_a``), B (the rest of ``usable_mask``), A u B at ``+V``/``-V``
(``pairs`` pairs each, interleaved so slow drift cancels) on one fixed current range, the
one autorange picks for A u B, and the all-open cell (its off-leakage) on autorange, then
solves the additivity equation (`labrss.metrology.series_path`). Why and when: the
calibration states r_s once per calibration from the curvature of its design across the
meter's ranges (range-linked); a claim at the ppm level on a bank of ~1 mS (r_s ~0.4 ohm
moves it by ~400 ppm) needs r_s to ~0.005 ohm, at each temperature a verification is made
at (wiring has a temperature coefficient on a real bench). Measured on the thin-film
preset: 0.0015 ohm at 0.5 V, 8 pairs at NPLC 10 (docs/temperature.md). The cell is left
open. Voltage and power limits are checked by `Lab` before anything is switched.
"""

from __future__ import annotations

import math

import numpy as np

from labrss.lab import Lab
from labrss.lab.readings import reversal_conductance_S
from labrss.metrology.series_path import SeriesPath, series_from_additivity

__all__ = ["measure_series_path"]


def _pairs(  # noqa: PLR0917 (private helper)
    lab: Lab,
    r: int,
    c: int,
    mask: int,
    v: float,
    pairs: int,
    nplc: float,
    current_range_A: float | None,
) -> tuple[float, float, float]:
    """(mean pair conductance S, its standard uncertainty S, the range used A)."""
    ys = []
    used = math.nan
    for _ in range(pairs):
        plus = lab.measure_subset(
            r, c, mask, read_voltage_V=abs(v), nplc=nplc, current_range_A=current_range_A
        )
        minus = lab.measure_subset(
            r, c, mask, read_voltage_V=-abs(v), nplc=nplc, current_range_A=current_range_A
        )
        used = float(plus.current_range_A)
        pair_S = reversal_conductance_S(plus, minus)
        if pair_S is None:
            raise RuntimeError(
                f"cell ({r}, {c}) mask 0x{mask:X}: the series-path read tripped the limit"
            )
        ys.append(pair_S)
    y = np.asarray(ys, dtype=np.float64)
    u = float(y.std(ddof=1) / math.sqrt(y.size)) if y.size > 1 else math.nan
    return float(y.mean()), u, used


def measure_series_path(
    lab: Lab,
    r: int,
    c: int,
    mask_a: int,
    usable_mask: int,
    *,
    read_voltage_V: float | None = None,
    pairs: int = 8,
    nplc: float = 10.0,
) -> SeriesPath:
    """Cell (r, c)'s series path r_s (ohm) by additivity (module docstring).

    ``mask_a`` and the rest of ``usable_mask`` are the two subsets (choose them of similar
    conductance: the non-additivity is ~2 r_s G_A G_B). Raises ValueError for subsets that
    are empty or not inside ``usable_mask``.
    """
    mask_b = usable_mask & ~mask_a
    if mask_a == 0 or mask_b == 0 or mask_a & ~usable_mask:
        raise ValueError(
            f"cell ({r}, {c}): subsets 0x{mask_a:X} and 0x{mask_b:X} must both be non-empty "
            f"parts of the usable branches 0x{usable_mask:X}"
        )
    if pairs < 2:
        raise ValueError(f"pairs = {pairs}: need at least 2 for an uncertainty")
    v = float(read_voltage_V or lab.station.measurement.read_voltage_V)
    lab.open_all()
    y_ab, u_ab, rng = _pairs(lab, r, c, usable_mask, v, pairs, nplc, None)
    y_a, u_a, _ = _pairs(lab, r, c, mask_a, v, pairs, nplc, rng)
    y_b, u_b, _ = _pairs(lab, r, c, mask_b, v, pairs, nplc, rng)
    y_0, u_0, _ = _pairs(lab, r, c, 0, v, max(2, pairs // 4), nplc, None)
    lab.open_all()
    return series_from_additivity((y_a, y_b, y_ab, y_0), (u_a, u_b, u_ab, u_0))
