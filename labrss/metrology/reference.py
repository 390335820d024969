"""Anchoring a calibration's absolute scale to a reference standard.

A calibration's estimates share one scale error: the gain of the voltage range and of the
reference current range (after range linking), known only to the meter's specification.
When the calibration also measured a reference standard of certified value, the ratio of
its estimate to the certified conductance measures that common factor: every estimate is
divided by it (`anchor`). The errors that were common to the standard and the elements
(the meter's scale) then cancel; what the anchor adds is the standard's own uncertainty
(its certificate, drift since the certificate, temperature, the off-leakage of its
switch) and the statistical uncertainty of its reading, all ``scale`` sources: one common
factor, fully correlated over the board (docs/metrology.md).

Everything here is first-order error propagation on `ElementBudget` arrays; the Type A
correlation between the standard's reading and the other elements of its own cell is
neglected (one cell of the board).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labrss.metrology.budget import ElementBudget, Source

__all__ = ["AnchorResult", "anchor", "expected_branch_conductance"]


def expected_branch_conductance(
    resistance_ohm: float,
    *,
    leakage_S: float,
    temperature_C: float,
    certificate_temperature_C: float,
    tcr_ppm_per_K: float,
) -> float:
    """What the calibration should estimate for the standard's branch (S): its closed
    conductance at the board temperature, less its open (off) conductance, taken as half
    its cell's all-open conductance ``leakage_S`` (it is one of the cell's open branches:
    somewhere between 0 and all of it)."""
    r = resistance_ohm * (1.0 + tcr_ppm_per_K * 1e-6 * (temperature_C - certificate_temperature_C))
    return 1.0 / r - max(leakage_S, 0.0) / 2.0


@dataclass(frozen=True)
class AnchorResult:
    """What `anchor` did: ``factor`` = measured / expected conductance of the standard (the
    common scale error removed from every estimate), and the sources it added."""

    factor: float
    measured_S: float
    expected_S: float
    sources: tuple[Source, ...]

    @property
    def u_relative(self) -> float:
        """The anchored scale's relative standard uncertainty (root sum of squares)."""
        return math.sqrt(sum(s.u**2 for s in self.sources))


def anchor(
    budget: ElementBudget,
    cell: int,
    branch: int,
    expected_S: float,
    certificate: Sequence[Source],
) -> tuple[ElementBudget, AnchorResult]:
    """Rescale ``budget`` (leading shape (cells,)) so that element ``branch`` of cell
    ``cell`` equals ``expected_S``.

    ``certificate``: relative sources (unit ``"1"``) of the expected value (certificate,
    drift, temperature, off-leakage). Returns the new budget (estimates divided by the
    factor, r_s multiplied by it, every source's contribution re-expressed relative to the
    standard, plus the standard's reading and certificate as ``scale`` sources) and the
    `AnchorResult`. Raises ValueError when the standard has no finite, positive estimate.
    """
    value = budget.value_S
    measured = float(value[cell, 1 + branch])
    if not (math.isfinite(measured) and measured > 0 and expected_S > 0):
        raise ValueError(
            f"reference standard (cell index {cell}, branch {branch}): estimate {measured!r} S "
            f"cannot anchor an expected {expected_S!r} S"
        )
    f = measured / expected_S
    new_value = value / f
    p = value.shape[-1] + 1
    d = np.full(p, 1.0 / f)
    d[-1] = f  # r_s scales the other way
    new_cov = budget.cov_S2 * d[:, None] * d[None, :]
    rel_ref = budget.contrib_S[cell, 1 + branch, :] / measured
    new_contrib = budget.contrib_S / f - np.nan_to_num(new_value)[..., None] * rel_ref
    var_ref = float(budget.cov_S2[cell, 1 + branch, 1 + branch])
    reading = Source(
        "reference reading",
        "scale",
        math.sqrt(max(var_ref, 0.0)) / measured,
        "1",
        "statistical uncertainty of the standard's estimate in this calibration",
    )
    added = [reading, *certificate]
    extra = np.stack(
        [np.nan_to_num(new_value) * (-reading.u)]
        + [np.nan_to_num(new_value) * src.u for src in certificate],
        axis=-1,
    )
    anchored = ElementBudget(
        (*budget.sources, *added),
        new_value,
        new_cov,
        np.concatenate([new_contrib, extra], axis=-1),
    )
    return anchored, AnchorResult(f, measured, expected_S, tuple(added))
