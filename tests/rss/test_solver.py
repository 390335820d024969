"""solve: optimality against brute force with every option, shapes, secondary, bad input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labrss.rss import RSSResult, solve
from labrss.rss.solver import Method

EPS = float(np.finfo(np.float64).eps)


def all_masks(n: int) -> np.ndarray:
    """Every subset of n elements as a bool array (2**n, n)."""
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)


@dataclass
class Brute:
    """Every allowed subset of one cell with its value in the target's unit."""

    masks: np.ndarray  # (K, n)
    x: np.ndarray  # summed quantity: bank conductance (S) or chain resistance (ohm)
    value: np.ndarray  # realised value, target unit
    scale_x: float  # magnitude of the sums, for rounding tolerances

    def slope(self, x: np.ndarray, rs: float, kind: str, topo: str) -> np.ndarray:
        """dv/dx of the circuit (written out independently of the solver)."""
        with np.errstate(divide="ignore"):
            if topo == "parallel":
                return 1 / (1 + rs * x) ** 2 if kind == "conductance" else -1 / x**2
            return np.ones_like(x) if kind == "resistance" else -1 / (rs + x) ** 2

    def tol(self, target: float, rs: float, kind: str, topo: str) -> float:
        """Rounding allowance on |error|: (n+2) ulps of the sums through the slope at
        the best subset, plus a few ulps of the value itself."""
        best = int(np.argmin(np.abs(self.value - target)))
        n = self.masks.shape[1]
        slope = abs(float(self.slope(self.x[best : best + 1], rs, kind, topo)[0]))
        dx = 4 * (n + 2) * EPS * self.scale_x
        return float(slope * dx + 8 * EPS * (abs(target) + abs(float(self.value[best]))))


def brute(
    el: np.ndarray,
    *,
    kind: str = "conductance",
    topo: str = "parallel",
    leak: np.ndarray | None = None,
    rs: float = 0.0,
    excl: np.ndarray | None = None,
) -> Brute:
    """All subsets of one cell, from the circuit equations (docs/rss.md section 2)."""
    n = el.size
    masks = all_masks(n)
    if excl is not None:
        masks = masks[~(masks & excl).any(1)]
    with np.errstate(divide="ignore", invalid="ignore"):
        if topo == "parallel":
            h = np.zeros(n) if leak is None else leak
            x = h.sum() + masks.astype(float) @ (el - h)  # G = sum h + sum_S (g - h)
            if kind == "conductance":
                value = x / (1 + rs * x)  # 1 / (rs + 1/G)
            else:
                value = np.where(x > 0, rs + 1 / x, np.inf)
            scale = float(el.sum() + h.sum())
        else:
            r_eff = el if leak is None else 1 / (1 / el + leak)  # R || (1/h)
            r_eff = np.where(el == 0, 0.0, r_eff)
            x = masks.astype(float) @ r_eff
            value = rs + x if kind == "resistance" else np.where(rs + x > 0, 1 / (rs + x), np.inf)
            scale = float(r_eff.sum())
    return Brute(masks, x, value, scale)


FAMILIES = ["uniform", "equal", "spread", "zeros", "integers", "tight"]


def elements_of(family: str, n: int, seed: int, unit: float) -> np.ndarray:
    """Seeded non-negative elements of one adversarial family, times ``unit``."""
    rng = np.random.default_rng(seed)
    if family == "uniform":
        raw = rng.uniform(0.5, 1.5, n)
    elif family == "equal":
        raw = np.full(n, 1.0)
    elif family == "spread":  # log-uniform over 12 decades, 1e-9 .. 1e3
        raw = 10.0 ** rng.uniform(-9.0, 3.0, n)
    elif family == "zeros":
        raw = np.where(rng.random(n) < 0.4, 0.0, rng.uniform(0.5, 1.5, n))
    elif family == "integers":
        raw = rng.integers(0, 4, n).astype(float)
    else:  # tight: +-1 % around one value, sums cluster
        raw = rng.uniform(0.99, 1.01, n)
    return raw * unit


@st.composite
def cases(draw: st.DrawFn) -> dict:
    """One cell: elements, options and a target (inside, at the edge or outside)."""
    topo = draw(st.sampled_from(["parallel", "series"]))
    kind = draw(st.sampled_from(["conductance", "resistance"]))
    n = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    unit = 1e-3 if topo == "parallel" else 1e3  # 1 kohm elements
    el = elements_of(draw(st.sampled_from(FAMILIES)), n, seed, unit)
    leak = None
    if draw(st.booleans()):
        leak = el * rng.uniform(0.0, 0.05, n) if topo == "parallel" else rng.uniform(0, 1e-5, n)
    rs = draw(st.sampled_from([0.0, 0.0, 9.5, 120.0]))
    excl = (rng.random(n) < 0.25) if draw(st.booleans()) else None
    b = brute(el, kind=kind, topo=topo, leak=leak, rs=rs, excl=excl)
    finite = b.value[np.isfinite(b.value)]
    where = draw(st.sampled_from(["subset", "between", "outside"]))
    if finite.size == 0:
        target = 1e-3 if kind == "conductance" else 1e3
    elif where == "subset":
        target = float(rng.choice(finite))
    elif where == "between":
        target = float(rng.uniform(finite.min(), finite.max()))
    else:
        span = finite.max() - finite.min() + abs(finite.max())
        target = float(finite.max() + rng.uniform(0.01, 1.0) * span)
        if draw(st.booleans()):
            target = float(finite.min() - rng.uniform(0.01, 1.0) * span)
    return {
        "el": el,
        "kind": kind,
        "topo": topo,
        "leak": leak,
        "rs": rs,
        "excl": excl,
        "target": target,
        "brute": b,
    }


def run(case: dict, method: Any, **extra: Any) -> RSSResult:
    return solve(
        case["el"],
        case["target"],
        leakage_S=case["leak"],
        series_resistance_ohm=case["rs"],
        exclude=case["excl"],
        target_kind=case["kind"],
        topology=case["topo"],
        method=method,
        **extra,
    )


@given(cases(), st.sampled_from(["enumerate", "mitm", "auto"]))
def test_error_equals_brute_force_optimum(case: dict, method: str) -> None:
    b: Brute = case["brute"]
    t = case["target"]
    res = run(case, method)
    assert res.mask.shape == (case["el"].size,)
    assert res.value.shape == ()
    best = np.min(np.abs(b.value - t))
    tol = b.tol(t, case["rs"], case["kind"], case["topo"])
    if np.isfinite(best):
        assert abs(abs(float(res.error)) - best) <= tol
        # the reported value is what the mask realises in the circuit
        k = int(np.flatnonzero((b.masks == res.mask).all(1))[0])
        assert abs(float(res.value) - b.value[k]) <= tol
        assert float(res.error) == float(res.value) - t
    assert bool(res.exact)
    if case["excl"] is not None:
        assert not (res.mask & case["excl"]).any()
    assert int(res.n_closed) == int(res.mask.sum())
    # reachable interval and flag
    finite = b.value[np.isfinite(b.value)]
    lo, hi = float(res.reachable_lo), float(res.reachable_hi)
    assert abs(lo - b.value.min()) <= tol + 8 * EPS * abs(lo)
    if np.isfinite(b.value.max()):
        assert abs(hi - b.value.max()) <= tol + 8 * EPS * abs(hi)
    if finite.size and (t < lo - tol or t > hi + tol):
        assert not bool(res.reachable)
        # not clamped silently: the nearest end is returned
        assert abs(float(res.value) - (lo if t < lo else hi)) <= tol + 8 * EPS * abs(t)
    if lo + tol < t < hi - tol:
        assert bool(res.reachable)


@given(
    st.sampled_from(["uniform", "spread", "tight", "integers"]),
    st.integers(10, 16),
    st.integers(0, 2**32 - 1),
)
def test_mitm_and_enumeration_agree(family: str, n: int, seed: int) -> None:
    el = elements_of(family, n, seed, 1e-3)
    targets = np.random.default_rng(seed).uniform(0.2, 0.8, (1, 6)) * el.sum()
    enum = solve(el[None, :], targets, method="enumerate")
    mitm = solve(el[None, :], targets, method="mitm")
    tol = 4 * (n + 2) * EPS * el.sum()
    assert np.all(np.abs(np.abs(enum.error) - np.abs(mitm.error)) <= tol)
    unique = np.abs(np.abs(enum.error) - np.abs(mitm.error)) == 0
    # where both report the very same error they found the same sum
    assert np.all(np.abs(enum.value - mitm.value)[unique] <= tol)


def _finite_diff_sigma(case: dict, mask: np.ndarray, sigma: np.ndarray) -> float:
    """sqrt(sum_i (dv/dg_i sigma_i)^2) by central differences of the brute circuit."""
    total = 0.0
    for i in np.flatnonzero(mask):
        d = 1e-6 * max(case["el"][i], 1e-12)
        vals = []
        for sign in (1, -1):
            el = case["el"].copy()
            el[i] += sign * d
            b = brute(el, kind=case["kind"], topo=case["topo"], leak=case["leak"], rs=case["rs"])
            vals.append(b.value[(b.masks == mask).all(1)][0])
        total += ((vals[0] - vals[1]) / (2 * d) * sigma[i]) ** 2
    return float(np.sqrt(total))


@given(cases())
def test_sigma_is_propagated_through_the_transforms(case: dict) -> None:
    sigma = case["el"] * 0.01  # 1 % uncertainty per element
    res = run(case, "auto", sigma_S=sigma)
    if not res.mask.any() or not np.isfinite(float(res.value)):
        return
    expected = _finite_diff_sigma(case, res.mask, sigma)
    # central differences with a 1e-6 relative step: truncation ~1e-12, rounding ~1e-9
    assert res.sigma is not None
    assert float(res.sigma) == pytest.approx(expected, rel=1e-5, abs=1e-300)


@given(cases(), st.sampled_from(["enumerate", "mitm"]), st.sampled_from([None, 0.0, 0.5, 3.0]))
def test_secondary_variance_is_minimal_within_tolerance(
    case: dict, method: str, tol_scale: float | None
) -> None:
    rng = np.random.default_rng(7)
    sigma = case["el"] * rng.uniform(0.001, 0.05, case["el"].size)
    b: Brute = case["brute"]
    t = case["target"]
    opt = run(case, method, sigma_S=sigma)
    tol = None if tol_scale is None else tol_scale * abs(float(opt.error)) + tol_scale * 1e-6 * t
    res = run(case, method, sigma_S=sigma, secondary="variance", near_optimal_tol=tol)
    assert opt.sigma is not None
    window_tol = float(opt.sigma) if tol is None else tol
    _check_secondary(
        b, case, t, res=res, opt=opt, window_tol=window_tol, cost=sigma_cost(case, sigma)
    )


def sigma_cost(case: dict, sigma: np.ndarray) -> np.ndarray:
    """Variance of each element's contribution to the sum (series with leakage: scaled)."""
    if case["topo"] == "series" and case["leak"] is not None:
        return np.asarray((sigma / (1 + case["el"] * case["leak"]) ** 2) ** 2)
    return np.asarray(sigma**2)


@given(cases(), st.sampled_from(["enumerate", "mitm"]), st.sampled_from([None, 0.0, 1.0]))
def test_secondary_switches_is_minimal_within_tolerance(
    case: dict, method: str, tol_rel: float | None
) -> None:
    b: Brute = case["brute"]
    t = case["target"]
    opt = run(case, method)
    tol = None if tol_rel is None else tol_rel * abs(t) * 0.01
    res = run(case, method, secondary="switches", near_optimal_tol=tol)
    window_tol = abs(float(opt.error)) if tol is None else tol
    _check_secondary(
        b, case, t, res=res, opt=opt, window_tol=window_tol, cost=np.ones(case["el"].size)
    )


def _check_secondary(
    b: Brute,
    case: dict,
    t: float,
    *,
    res: RSSResult,
    opt: RSSResult,
    window_tol: float,
    cost: np.ndarray,
) -> None:
    """Chosen subset: inside |err| <= e* + tol, and no subset inside is cheaper."""
    e_opt = np.min(np.abs(b.value - t))
    if not np.isfinite(e_opt):
        return
    slack = b.tol(t, case["rs"], case["kind"], case["topo"])
    err = np.abs(b.value - t)
    chosen_cost = float(cost[res.mask].sum())
    assert abs(float(res.error)) <= e_opt + window_tol + 2 * slack
    inside = err <= e_opt + window_tol - 2 * slack
    inside |= err <= e_opt  # the optimum itself is always inside
    costs = b.masks.astype(float) @ cost
    assert chosen_cost <= costs[inside].min() + 1e-9 * costs.max() + 1e-300
    # never worse in the criterion than the plain optimum
    assert chosen_cost <= float(cost[opt.mask].sum()) + 1e-9 * costs.max() + 1e-300


# ----------------------------------------------------------------------- larger n
def test_planted_subset_found_exactly_at_n32_and_n40() -> None:
    """Integers (exactly representable sums): a planted subset's sum must be hit exactly."""
    rng = np.random.default_rng(32)
    for n in (32, 40):
        el = rng.integers(1, 2**20, (2, n)).astype(float) * 2.0**-20  # S, exact binary
        planted = rng.random((2, n)) < 0.5
        target = (el * planted).sum(1)
        res = solve(el, target, method="mitm")
        assert res.method == "mitm"
        assert np.all(res.error == 0.0)
        assert np.all(res.exact)
        assert np.all((el * res.mask).sum(1) == target)


def test_n32_consistency_between_methods() -> None:
    """n=32: MITM is exact, the heuristic is never better and close."""
    rng = np.random.default_rng(3)
    el = rng.uniform(0.8e-3, 1.2e-3, (3, 32))
    target = rng.uniform(0.4, 0.6, 3) * el.sum(1)
    exact = solve(el, target)
    heur = solve(el, target, method="heuristic")
    assert exact.method == "mitm"
    assert np.all(exact.exact)
    assert not np.any(heur.exact)
    tol = 4 * 34 * EPS * el.sum(1)
    assert np.all(np.abs(exact.error) <= np.abs(heur.error) + tol)
    # 2**32 sums over a ~32 mS range: optimum ~1e-12 S; the heuristic fixes 0 elements
    # here (n <= free set) so it is the same search
    assert np.all(np.abs(exact.error) < 1e-10)


# ----------------------------------------------------------------------- shapes
def test_shapes_one_target_per_cell_and_m_targets() -> None:
    rng = np.random.default_rng(0)
    el = rng.uniform(0.5e-3, 1.5e-3, (2, 3, 8))
    one = solve(el, np.full((2, 3), 4e-3))
    assert one.mask.shape == (2, 3, 8)
    assert one.value.shape == one.error.shape == one.n_closed.shape == (2, 3)
    assert one.reachable_lo.shape == (2, 3)
    many = solve(el, np.linspace(1e-3, 5e-3, 5)[None, None, :])
    assert many.mask.shape == (2, 3, 5, 8)
    assert many.value.shape == (2, 3, 5)
    # each (cell, target) equals the single-target answer
    for k, t in enumerate(np.linspace(1e-3, 5e-3, 5)):
        single = solve(el, np.full((2, 3), t))
        np.testing.assert_array_equal(many.error[..., k], single.error)
    # single cell, scalar target and m targets
    assert solve(el[0, 0], 4e-3).mask.shape == (8,)
    assert solve(el[0, 0], [3e-3, 4e-3]).mask.shape == (2, 8)


def test_empty_bank_and_all_excluded() -> None:
    res = solve(np.zeros((2, 0)), [0.0, 1e-3])
    assert res.mask.shape == (2, 0)
    np.testing.assert_array_equal(res.value, [0.0, 0.0])
    assert res.reachable.tolist() == [True, False]
    res = solve([1e-3, 2e-3], 2e-3, exclude=[True, True])
    assert not res.mask.any()
    assert float(res.value) == 0.0


def test_known_example_with_leakage_and_series_resistance() -> None:
    """Hand-computed: g = 1, 2, 4 mS, h = 0.01 mS each, r_s = 10 ohm, R* = 200 ohm.

    G* = 1/(200 - 10) = 5.263 mS; the bank gives 0.03 + sum_S (g - 0.01) mS: {1, 4}
    gives 5.01 mS, {2, 4} 6.01, {4} 4.02: 5.01 mS -> R = 10 + 1/5.01e-3 = 209.6 ohm;
    6.01 mS -> 176.4 ohm; so {1, 4} (error +9.6 ohm) wins.
    """
    res = solve(
        [1e-3, 2e-3, 4e-3],
        200.0,
        leakage_S=1e-5,
        series_resistance_ohm=10.0,
        target_kind="resistance",
    )
    assert res.mask.tolist() == [True, False, True]
    assert float(res.value) == pytest.approx(10 + 1 / 5.01e-3, rel=1e-12)
    assert float(res.error) == pytest.approx(10 + 1 / 5.01e-3 - 200, rel=1e-12)


# ----------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"elements": [[1e-3, np.nan], [1e-3, 1e-3]]}, r"elements\[cell \(0,\), element 1\] = nan"),
        ({"elements": [[1e-3, 1e-3], [-1e-3, 1e-3]]}, r"elements\[cell \(1,\), element 0\]"),
        ({"elements": [[1e-3, 1e-3], [1e-3, np.inf]]}, r"cell \(1,\), element 1\] = inf"),
        ({"targets": [1e-3, np.nan]}, r"targets\[cell \(1,\)\] = nan"),
        ({"targets": [1e-3, 2e-3, 3e-3]}, r"targets shape \(3,\).*elements \(2, 2\)"),
        ({"targets": np.zeros((2, 2, 2))}, r"more dimensions than elements shape \(2, 2\)"),
        ({"leakage_S": [1e-5, 2e-3]}, r"leakage_S\[cell 0, element 1\].*exceeds"),
        ({"leakage_S": np.zeros(3)}, r"leakage_S has shape \(3,\).*\(2, 2\)"),
        ({"sigma_S": [1e-5, -1e-5]}, r"sigma_S\[cell \(\), element 1\] = -1e-05"),
        ({"exclude": [1, 0]}, "exclude must be a boolean array"),
        ({"series_resistance_ohm": -1.0}, r"series_resistance_ohm\[cell \(\)\] = -1.0 ohm"),
        ({"topology": "mesh"}, "topology = 'mesh'"),
        ({"target_kind": "current"}, "target_kind = 'current'"),
        ({"method": "milp"}, "method = 'milp'"),
        ({"secondary": "variance"}, "needs the element uncertainties sigma_S"),
        ({"max_exact_n": 60}, "max_exact_n = 60"),
        ({"elements": "abc"}, "elements: cannot be read"),
        ({"elements": 1e-3}, "elements must have shape"),
    ],
)
def test_bad_input_is_explained(kwargs: dict, match: str) -> None:
    args: dict = {"elements": [[1e-3, 1e-3], [1e-3, 1e-3]], "targets": [1e-3, 2e-3]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        solve(args.pop("elements"), args.pop("targets"), **args)


def test_explicit_method_beyond_its_limit() -> None:
    el = np.full(31, 1e-3)
    with pytest.raises(ValueError, match="method='enumerate': 31 elements"):
        solve(el, 5e-3, method="enumerate")
    with pytest.raises(ValueError, match="method='mitm': 50 elements"):
        solve(np.full(50, 1e-3), 5e-3, method="mitm")


@given(st.integers(0, 2**32 - 1), st.sampled_from(["enumerate", "mitm"]))
def test_batch_equals_cell_by_cell(seed: int, method: Method) -> None:
    """Cells with different exclusions, leakage and series resistance in one call give
    exactly the answers of one call per cell (the compaction is per cell)."""
    rng = np.random.default_rng(seed)
    el = rng.uniform(0.5e-3, 1.5e-3, (4, 9))
    el[rng.random((4, 9)) < 0.2] = 0.0
    excl = rng.random((4, 9)) < 0.3
    leak = el * rng.uniform(0.0, 0.02, (4, 9))
    rs = rng.uniform(0.0, 50.0, 4)
    targets = rng.uniform(0.0, 6e-3, (4, 3))
    sigma = el * 0.01
    batch = solve(
        el, targets, leakage_S=leak, exclude=excl, series_resistance_ohm=rs, sigma_S=sigma,
        method=method, secondary="switches",
    )  # fmt: skip
    for c in range(4):
        one = solve(
            el[c], targets[c], leakage_S=leak[c], exclude=excl[c], series_resistance_ohm=rs[c],
            sigma_S=sigma[c], method=method, secondary="switches",
        )  # fmt: skip
        np.testing.assert_array_equal(batch.mask[c], one.mask)
        np.testing.assert_array_equal(batch.value[c], one.value)
        assert batch.sigma is not None
        assert one.sigma is not None
        np.testing.assert_array_equal(batch.sigma[c], one.sigma)
        np.testing.assert_array_equal(batch.reachable_hi[c], one.reachable_hi)
        assert not (batch.mask[c] & excl[c]).any()


@pytest.mark.parametrize("method", ["enumerate", "mitm"])
def test_interval_ends_are_reachable_exactly(method: Method) -> None:
    """The all-closed and all-open values are realised exactly and flagged reachable."""
    el = np.array([0.1e-3, 0.2e-3, 0.3e-3, 0.7e-3, 1.1e-3])
    top = 0.0
    for g in el:
        top += g  # the canonical order: index order
    res = solve(el, [0.0, top, top * (1 + 1e-15), -1e-12], method=method)
    assert res.error[0] == 0.0
    assert res.error[1] == 0.0
    assert res.reachable.tolist() == [True, True, False, False]
    assert res.reachable_hi[1] == top
    assert res.mask[1].all()


# ----------------------------------------------------------------------- tolerance mode
@given(st.integers(1, 12), st.integers(0, 2**32 - 1), st.floats(1e-9, 1e-2))
def test_tolerance_mode_is_good_enough_or_optimal(n: int, seed: int, rel_tol: float) -> None:
    """Within the tolerance whenever the optimum is; otherwise the proven optimum."""
    rng = np.random.default_rng(seed)
    el = 1.0 / (1e3 * rng.uniform(0.8, 1.2, (3, n)))
    target = rng.uniform(0.0, 1.1, (3, 2)) * el.sum(1, keepdims=True)
    tol = rel_tol * el.sum(1, keepdims=True) * np.ones((1, 2))
    res = solve(el, target, error_tolerance=tol, method="mitm")
    opt = solve(el, target, method="mitm")
    rounding = 4 * (n + 2) * EPS * el.sum(1, keepdims=True)
    within = np.abs(opt.error) <= tol
    assert np.all(np.abs(res.error)[within] <= (tol + rounding)[within])
    # not proven only where it stopped with a good-enough answer
    assert np.all(np.abs(res.error)[~res.exact] <= (tol + rounding)[~res.exact])
    np.testing.assert_allclose(
        np.abs(res.error)[res.exact], np.abs(opt.error)[res.exact], rtol=0, atol=rounding.max()
    )


def test_tolerance_mode_at_n40_stops_early_and_reports_it() -> None:
    """n = 40 with a calibration-like tolerance: good enough, flagged not proven; a zero
    tolerance is the exact search."""
    rng = np.random.default_rng(16)
    el = 1.0 / (1e3 * rng.uniform(0.8, 1.2, (4, 40)))
    target = rng.uniform(0.3, 0.7, 4) * el.sum(1)
    res = solve(el, target, error_tolerance=1e-5 * target)
    assert res.method == "mitm"
    assert np.all(np.abs(res.error) <= 1e-5 * target)
    assert not np.any(res.exact)
    zero = solve(el[:1], target[:1], error_tolerance=0.0)
    exact = solve(el[:1], target[:1])
    assert zero.exact.all()
    assert abs(zero.error[0]) == pytest.approx(abs(exact.error[0]), abs=1e-15)


def test_tolerance_mode_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="error_tolerance"):
        solve(np.ones((2, 4)), np.ones(2), error_tolerance=-1.0)
