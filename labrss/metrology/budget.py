"""GUM uncertainty budgets of calibrated elements and of the banks (cells) they make up.

A calibration estimates, per cell, the all-open conductance ``c0`` and the branch
conductances ``a_k`` (closed minus open), S. Their errors come from two kinds of sources
(docs/metrology.md has the derivation and a worked budget):

* **Type A** (statistical): the readings' noise, propagated by the least-squares fit into
  the covariance of ``(c0, a_0..a_{K-1}, r_s)`` (``cov``; r_s, the series path in ohm, is
  last). For reporting it is split exactly into three parts by conditioning: the series
  path's share (what knowing r_s exactly would remove), the leakage's share (then knowing
  c0), and the rest, the element's own readings (``statistical``).
* **Systematic sources** (Type B, or Type A estimated once and shared): each a quantity
  with a standard uncertainty ``u`` that shifts many estimates together: a current range's
  gain error, the voltage range's gain error, a range-link estimate, the reference
  standard's certificate, the board temperature. ``contrib[..., i, s]`` is the signed shift
  of estimate ``i`` (c0 or a_k, S) for a one-standard-uncertainty change of source ``s``.
  Estimates that share a source are correlated through it: for a sum of elements (a bank),
  the shifts add *before* squaring, so a range's gain error is treated as fully correlated
  over the elements read on that range.

Each source has a category, and the element budget has one component per category::

    u_c^2 = statistical^2 + series^2 + leakage^2 + range^2 + offset^2 + scale^2 + temperature^2

``scale`` holds the sources that multiply every estimate by the same factor (the voltage
range's gain, the reference range's gain, the reference standard): one common, fully
correlated scale factor that cancels in every ratio. Costs: element components O(cells K
(K + S)); a bank O(cells m (K^2 + K S)) for m masks per cell.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CATEGORIES",
    "SYSTEMATIC_CATEGORIES",
    "BankUncertainty",
    "Category",
    "ElementBudget",
    "Source",
    "bank_uncertainty",
    "combine_components",
    "element_components",
    "sources_from_json",
    "sources_to_json",
    "split_type_a",
]

FloatArray = NDArray[np.float64]

Category = Literal["statistical", "series", "leakage", "range", "offset", "scale", "temperature"]
CATEGORIES: tuple[Category, ...] = get_args(Category)
"""Every component of an element budget, in report order."""
SYSTEMATIC_CATEGORIES: tuple[Category, ...] = ("range", "offset", "scale", "temperature")
"""The components that come from shared sources (`Source.category`)."""
TYPE_A_CATEGORIES: tuple[Category, ...] = ("statistical", "series", "leakage")


@dataclass(frozen=True)
class Source:
    """One shared error source of a budget.

    Attributes:
        name: unique within the budget, e.g. ``"gain I 10 uA"``, ``"link I 1 uA/I 10 uA"``.
        category: ``range``, ``offset``, ``scale`` or ``temperature``.
        u: standard uncertainty of the source quantity, in ``unit``.
        unit: ``"1"`` (relative: a gain), ``"A"``, ``"V"`` (an offset) or ``"K"``.
        note: where ``u`` comes from (datasheet row, readings, certificate).
    """

    name: str
    category: Category
    u: float
    unit: str = "1"
    note: str = ""

    def __post_init__(self) -> None:
        if self.category not in SYSTEMATIC_CATEGORIES:
            raise ValueError(
                f"source {self.name!r}: category {self.category!r} is not one of "
                f"{SYSTEMATIC_CATEGORIES}"
            )
        if not (np.isfinite(self.u) and self.u >= 0):
            raise ValueError(f"source {self.name!r}: u = {self.u!r} must be finite and >= 0")


def sources_to_json(sources: Sequence[Source]) -> list[dict[str, Any]]:
    """JSON-ready list of the sources (for the store)."""
    return [
        {"name": s.name, "category": s.category, "u": s.u, "unit": s.unit, "note": s.note}
        for s in sources
    ]


def sources_from_json(data: Sequence[Mapping[str, Any]] | str) -> tuple[Source, ...]:
    """Sources back from `sources_to_json` output (or its JSON text)."""
    items = json.loads(data) if isinstance(data, str) else data
    return tuple(
        Source(
            name=str(d["name"]),
            category=d["category"],
            u=float(d["u"]),
            unit=str(d.get("unit", "1")),
            note=str(d.get("note", "")),
        )
        for d in items
    )


def _conditioned(cov: FloatArray, index: int) -> FloatArray:
    """Covariance given variable ``index`` known exactly (Gaussian conditioning); a
    variable of zero (or NaN) variance is left alone."""
    var = cov[..., index, index]
    ok = np.isfinite(var) & (var > 0)
    safe = np.where(ok, var, 1.0)
    col = cov[..., :, index]
    out: FloatArray = cov - np.where(ok, 1.0, 0.0)[..., None, None] * (
        col[..., :, None] * col[..., None, :] / safe[..., None, None]
    )
    return out


def split_type_a(cov_S2: ArrayLike, w: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Type A variance of ``w . (c0, a, r_s)`` split into (statistical, series, leakage).

    ``cov_S2`` (..., P, P) with P = K + 2 (c0 first, r_s last); ``w`` (..., m, P) weights
    (r_s weight 0). Series = what knowing r_s removes, leakage = what then knowing c0
    removes, statistical = the rest; the three add up to ``w^T cov w`` exactly.
    """
    cov = np.asarray(cov_S2, dtype=np.float64)
    ww = np.asarray(w, dtype=np.float64)
    p = cov.shape[-1]

    def quad(c: FloatArray) -> FloatArray:
        out: FloatArray = np.einsum("...mi,...ij,...mj->...m", ww, np.nan_to_num(c), ww)
        return np.maximum(out, 0.0)

    total = quad(cov)
    given_rs = _conditioned(cov, p - 1)
    after_rs = quad(given_rs)
    after_both = quad(_conditioned(given_rs, 0))
    series = np.maximum(total - after_rs, 0.0)
    leakage = np.maximum(after_rs - after_both, 0.0)
    return after_both, series, leakage


def _category_index(sources: Sequence[Source]) -> dict[Category, NDArray[np.intp]]:
    return {
        cat: np.array([i for i, s in enumerate(sources) if s.category == cat], dtype=np.intp)
        for cat in SYSTEMATIC_CATEGORIES
    }


def element_components(
    cov_S2: ArrayLike, contrib_S: ArrayLike, sources: Sequence[Source]
) -> dict[Category, FloatArray]:
    """Per-element components (..., K), S, one per category (`CATEGORIES`).

    ``cov_S2`` (..., K+2, K+2) and ``contrib_S`` (..., K+1, S) as in the module docstring.
    """
    cov = np.asarray(cov_S2, dtype=np.float64)
    contrib = np.asarray(contrib_S, dtype=np.float64)
    k = cov.shape[-1] - 2
    w = np.zeros((*cov.shape[:-2], k, k + 2))
    w[..., np.arange(k), 1 + np.arange(k)] = 1.0
    stat, series, leak = split_type_a(cov, w)
    out: dict[Category, FloatArray] = {
        "statistical": np.sqrt(stat),
        "series": np.sqrt(series),
        "leakage": np.sqrt(leak),
    }
    a_contrib = contrib[..., 1:, :]
    for cat, idx in _category_index(sources).items():
        out[cat] = np.sqrt((np.nan_to_num(a_contrib[..., idx]) ** 2).sum(-1))
    nan = ~np.isfinite(np.einsum("...ii->...i", cov)[..., 1 : k + 1])
    for cat in CATEGORIES:
        out[cat] = np.where(nan, np.nan, out[cat])
    return out


def combine_components(components: Mapping[Any, ArrayLike]) -> FloatArray:
    """The combined standard uncertainty: root sum of squares of the components (NaN-
    propagating: an unknown component makes the combination unknown)."""
    total: FloatArray | None = None
    for value in components.values():
        sq = np.asarray(value, dtype=np.float64) ** 2
        total = sq if total is None else total + sq
    if total is None:
        raise ValueError("no components to combine")
    return np.sqrt(total)


@dataclass(frozen=True)
class BankUncertainty:
    """Predicted bank conductances and their budgets, shape ``B`` = cells x masks.

    ``value_S``: c0 + sum of the closed a_k (the bank as switched, wiring excluded);
    ``u_S``: combined standard uncertainty; ``components``: one array per category;
    ``u_ratio_S``: the combination without the ``scale`` component (what matters when the
    value is compared with another value on the same meter scale, or for ratios).
    """

    value_S: FloatArray
    u_S: FloatArray
    components: dict[Category, FloatArray]

    @property
    def u_ratio_S(self) -> FloatArray:
        """Combined uncertainty without the common scale component (S)."""
        return combine_components({k: v for k, v in self.components.items() if k != "scale"})

    def expanded_S(self, k: float = 2.0) -> FloatArray:
        """Expanded uncertainty U = k u (S)."""
        return k * self.u_S


def bank_uncertainty(
    value_S: ArrayLike,
    cov_S2: ArrayLike,
    contrib_S: ArrayLike,
    sources: Sequence[Source],
    masks: ArrayLike,
) -> BankUncertainty:
    """Predicted conductance and budget of banks switched to ``masks``.

    Args:
        value_S: (..., K+1) estimates (c0, a_0..a_{K-1}), S.
        cov_S2: (..., K+2, K+2) Type A covariance of (c0, a, r_s).
        contrib_S: (..., K+1, S) signed contributions of the shared sources.
        sources: the S sources.
        masks: (..., m, K) bool, or (..., K) for one mask per cell.

    Every shared source's shifts are summed over the bank's elements (and c0) before
    squaring, so correlated components add linearly; Type A uses the full covariance.
    NaN estimates of closed elements make the result NaN.
    """
    val = np.asarray(value_S, dtype=np.float64)
    msk = np.asarray(masks, dtype=bool)
    single = msk.ndim == val.ndim
    if single:
        msk = msk[..., None, :]
    k = val.shape[-1] - 1
    if msk.shape[-1] != k:
        raise ValueError(f"masks have {msk.shape[-1]} branches, the estimates {k}")
    w = np.zeros((*msk.shape[:-1], k + 2))
    w[..., 0] = 1.0
    w[..., 1 : k + 1] = msk
    # closed NaN elements make the bank unknown; open ones do not matter
    v_ext = np.concatenate([val, np.zeros((*val.shape[:-1], 1))], axis=-1)
    used = w != 0
    terms = np.where(used, w * v_ext[..., None, :], 0.0)
    value = terms.sum(-1)
    stat, series, leak = split_type_a(cov_S2, w)
    contrib = np.asarray(contrib_S, dtype=np.float64)
    shifts = np.einsum("...mi,...is->...ms", w[..., : k + 1], np.nan_to_num(contrib))
    comps: dict[Category, FloatArray] = {
        "statistical": np.sqrt(stat),
        "series": np.sqrt(series),
        "leakage": np.sqrt(leak),
    }
    for cat, idx in _category_index(sources).items():
        comps[cat] = np.sqrt((shifts[..., idx] ** 2).sum(-1))
    unknown = np.isnan(np.where(used[..., : k + 1], v_ext[..., None, : k + 1], 0.0)).any(-1)
    for cat in CATEGORIES:
        comps[cat] = np.where(unknown, np.nan, comps[cat])
    value = np.where(unknown, np.nan, value)
    u = combine_components(comps)
    if single:
        value = value[..., 0]
        u = u[..., 0]
        comps = {c: v[..., 0] for c, v in comps.items()}
    return BankUncertainty(value_S=value, u_S=u, components=comps)


@dataclass(frozen=True)
class ElementBudget:
    """The full budget of a batch of cells (any leading shape ``...``, e.g. (cells,) or
    (rows, cols)): estimates, Type A covariance and shared sources' contributions.

    Attributes:
        sources: the shared sources, S of them.
        value_S: (..., K+1) estimates (c0, a_0..a_{K-1}), S.
        cov_S2: (..., K+2, K+2) Type A covariance of (c0, a, r_s); S^2 (ohm for r_s).
        contrib_S: (..., K+1, S) signed contribution of each source to each estimate, S.
    """

    sources: tuple[Source, ...]
    value_S: FloatArray
    cov_S2: FloatArray
    contrib_S: FloatArray

    def __post_init__(self) -> None:
        v, c, s = self.value_S, self.cov_S2, self.contrib_S
        p = v.shape[-1] + 1
        if c.shape != (*v.shape[:-1], p, p) or s.shape != (*v.shape, len(self.sources)):
            raise ValueError(
                f"budget shapes disagree: value {v.shape}, cov {c.shape}, contrib {s.shape}, "
                f"{len(self.sources)} sources"
            )

    @property
    def branches(self) -> int:
        """K, the branches per cell."""
        return int(self.value_S.shape[-1] - 1)

    def components(self) -> dict[Category, FloatArray]:
        """Per-element components (..., K), S (`element_components`)."""
        return element_components(self.cov_S2, self.contrib_S, self.sources)

    def combined_S(self) -> FloatArray:
        """Combined standard uncertainty of every element (..., K), S."""
        return combine_components(self.components())

    def bank(self, masks: ArrayLike) -> BankUncertainty:
        """Predicted banks for ``masks`` (..., m, K) or (..., K) (`bank_uncertainty`)."""
        return bank_uncertainty(self.value_S, self.cov_S2, self.contrib_S, self.sources, masks)

    def with_sources(self, sources: Sequence[Source], contrib_S: ArrayLike) -> ElementBudget:
        """A copy with more sources (``contrib_S`` (..., K+1, len(sources)))."""
        extra = np.asarray(contrib_S, dtype=np.float64)
        return ElementBudget(
            (*self.sources, *sources),
            self.value_S,
            self.cov_S2,
            np.concatenate([self.contrib_S, extra], axis=-1),
        )
