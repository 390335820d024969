"""Fault classification: no false positives on healthy banks, every injected fault found."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.designs import one_by_one, s_matrix_design
from calibration.estimation import fit_weighing
from calibration.faults import FaultReport, NominalBand, classify_faults, detect_shorts

N = 8
R_OHM, TOL = 1000.0, 0.05  # E24-like 1 kohm +- 5 %
RON_OHM = (8.0, 11.0)  # ADG1414-like switch on-resistance spread
LEAK_S = 1e-9  # off-leakage per branch, at most
SIGMA = 1e-7  # S, reading noise
BAND = NominalBand.from_elements(R_OHM, TOL, N, switch_on_ohm=RON_OHM, off_leakage_S=LEAK_S)
KINDS = ("open", "stuck_open", "stuck_closed", "short")


def _banks(rng: np.random.Generator, cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Healthy banks like the simulator's: tolerance Gaussian sigma = tol/3, truncated."""
    eps = np.clip(rng.normal(0, TOL / 3, (cells, N)), -TOL, TOL)
    r_on = rng.uniform(*RON_OHM, (cells, N))
    g = 1.0 / (R_OHM * (1 + eps) + r_on)  # closed
    h = rng.uniform(0, LEAK_S, (cells, N))  # open
    return g, h, r_on


def _measure(X: np.ndarray, a: np.ndarray, c0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    r_s = rng.uniform(5, 30, (a.shape[0], 1))  # routing and leads, ohm
    A = np.hstack([np.ones((X.shape[0], 1)), X])
    G = np.hstack([c0[:, None], a]) @ A.T
    y: np.ndarray = G / (1 + r_s * G) + SIGMA * rng.standard_normal(G.shape)
    return y


def _pipeline(X: np.ndarray, y: np.ndarray) -> FaultReport:
    """What a calibration run does: shorts from readings, fit the rest, classify."""
    shorts, _ = detect_shorts(X, y, BAND, sigma_S=SIGMA)
    ok = ~shorts.any(axis=1)
    cells = y.shape[0]
    a = np.full((cells, N), np.nan)
    s = np.full((cells, N), np.nan)
    c0 = np.full(cells, np.nan)
    s0 = np.full(cells, np.nan)
    fit = fit_weighing(X, y[ok], sigma_S=SIGMA, fit_series=True)
    a[ok], s[ok], c0[ok], s0[ok] = fit.conductance_S, fit.std_S, fit.leakage_S, fit.leakage_std_S
    return classify_faults(a, s, c0, s0, BAND, X=X, y_S=y, sigma_S=SIGMA)


@pytest.mark.parametrize("design", ["weighing", "single"])
def test_healthy_banks_give_no_findings(design: str) -> None:
    rng = np.random.default_rng(20)
    X = (
        s_matrix_design(N, with_full=True)
        if design == "weighing"
        else one_by_one(N, with_full=True)
    ).X
    g, h, _ = _banks(rng, 3000)
    report = _pipeline(X, _measure(X, g - h, h.sum(axis=1), rng))
    assert report.findings == ()
    assert not report.excluded.any() and not report.out_of_band.any()
    assert not report.remeasure.any() and not report.leaky.any() and not report.unknown.any()


def test_every_injected_fault_is_found_and_nothing_else() -> None:
    rng = np.random.default_rng(21)
    X = s_matrix_design(N, with_full=True).X
    cells = 800
    g, h, r_on = _banks(rng, cells)
    kind = np.array([KINDS[i % 4] for i in range(cells)])
    branch = rng.integers(0, N, cells)
    faulty = np.arange(cells) % 2 == 0  # every other bank is healthy
    a = g - h
    c0 = h.sum(axis=1)
    for cell in np.nonzero(faulty)[0]:
        k = branch[cell]
        if kind[cell] == "open":  # element open: no current in either switch state
            c0[cell] -= h[cell, k]
            a[cell, k] = 0.0
        elif kind[cell] == "stuck_open":  # switch ignores "close": leakage only
            a[cell, k] = 0.0
        elif kind[cell] == "stuck_closed":  # switch always closed: part of c0
            c0[cell] += a[cell, k]
            a[cell, k] = 0.0
        else:  # element shorted: only the switch's on-resistance
            a[cell, k] = 1.0 / r_on[cell, k] - h[cell, k]
    report = _pipeline(X, _measure(X, a, c0, rng))
    found = {(f.cell, f.k): f for f in report.findings}
    expected = {
        (int(cell), int(branch[cell])): {"stuck_open": "open"}.get(kind[cell], kind[cell])
        for cell in np.nonzero(faulty)[0]
    }
    assert set(found) == set(expected)  # every fault found, none invented
    assert {key: f.kind for key, f in found.items()} == expected
    for (index, _), f in found.items():
        if f.kind == "open":
            assert f.evidence["indistinguishable_from"] == "stuck_open"
        if f.kind == "stuck_closed":
            assert f.evidence["stuck_closed_branches"] == [f.k]
            assert f.evidence["leakage_excess_S"] == pytest.approx(1 / (R_OHM + 10), rel=TOL + 0.01)
        assert report.remeasure[index] == (f.kind == "short")
    assert report.excluded.sum() == len(expected)
    assert not report.leaky.any()


def test_two_zero_branches_one_stuck_closed_is_ambiguous_but_excluded() -> None:
    rng = np.random.default_rng(22)
    X = s_matrix_design(N, with_full=True).X
    g, h, _ = _banks(rng, 1)
    a = g - h
    c0 = h.sum(axis=1) + a[0, 5]  # branch 5 stuck closed
    a[0, [2, 5]] = 0.0  # branch 2 open
    report = _pipeline(X, _measure(X, a, c0, rng))
    assert [(f.k, f.kind) for f in report.findings] == [(2, "open"), (5, "open")]
    assert all(f.evidence["ambiguous_stuck_closed"] == 1 for f in report.findings)
    both_closed = a.copy()
    c0_both = h.sum(axis=1) + g[0, 2] + g[0, 5]
    report = _pipeline(X, _measure(X, both_closed, c0_both, rng))
    assert [(f.k, f.kind) for f in report.findings] == [(2, "stuck_closed"), (5, "stuck_closed")]


def test_degraded_element_is_out_of_band_not_a_fault() -> None:
    rng = np.random.default_rng(23)
    X = s_matrix_design(N, with_full=True).X
    g, h, _ = _banks(rng, 1)
    a = g - h
    a[0, 3] *= 0.6  # 40 % low: a cracked film, still conducting
    report = _pipeline(X, _measure(X, a, h.sum(axis=1), rng))
    assert report.findings == ()
    assert report.out_of_band[0].tolist() == [k == 3 for k in range(N)]


def test_shorts_from_estimates_alone_and_unexplained_saturation() -> None:
    a = np.full((2, N), 1e-3)
    a[1, 4] = 0.1
    std = np.full((2, N), 1e-7)
    report = classify_faults(a, std, np.zeros(2), np.full(2, 1e-7), BAND)
    assert [(f.cell, f.k, f.kind, f.evidence["source"]) for f in report.findings] == [
        (1, 4, "short", "estimate")
    ]
    assert report.remeasure.tolist() == [False, True]
    # Every reading saturated, the empty one too: no branch explains it.
    X = one_by_one(N).X
    shorts, unexplained = detect_shorts(X, np.full((1, N + 1), 0.05), BAND)
    assert not shorts.any() and unexplained.all()
    tripped = np.zeros((1, N + 1), bool)
    tripped[0, 3] = True  # the reading of branch 2 alone hit the compliance limit
    y = np.where(tripped, np.nan, 1e-3)
    shorts, unexplained = detect_shorts(X, y, BAND, limit_tripped=tripped)
    assert np.nonzero(shorts[0])[0].tolist() == [2] and not unexplained.any()


def test_band_and_input_validation() -> None:
    band = NominalBand.from_elements(1000.0, 0.05, 8, switch_on_ohm=(8, 11), off_leakage_S=1e-9)
    assert band.low_S == pytest.approx(1 / 1061 - 1e-9)
    assert band.high_S == pytest.approx(1 / 958)
    assert band.leakage_max_S == pytest.approx(8e-9)
    with pytest.raises(ValueError, match="0 < low_S < high_S"):
        NominalBand(2e-3, 1e-3, 0.0)
    with pytest.raises(ValueError, match="bad nominal element"):
        NominalBand.from_elements(-1.0, 0.05, 8)
    with pytest.raises(ValueError, match="estimate shapes disagree"):
        classify_faults(np.ones((2, 3)), np.ones((2, 2)), np.ones(2), np.ones(2), BAND)
    with pytest.raises(ValueError, match="need the design X"):
        classify_faults(
            np.ones((1, 3)), np.ones((1, 3)), np.ones(1), np.ones(1), BAND, y_S=np.ones((1, 4))
        )


def test_ladder_banks_per_branch_bands_identify_the_stuck_closed_branch() -> None:
    # The default simulated board: a sub-binary ladder 10 kohm x 1.8^k, 5 %, ADG1414-like
    # switches (9.5 +- 3 x 0.4 ohm), off-resistance >= 1e10 ohm; readings at about 1e-8 S.
    nominal = 10e3 * 1.8 ** np.arange(N)
    band = NominalBand.from_elements(
        nominal, 0.05, N, switch_on_ohm=(8.3, 10.7), off_leakage_S=1e-10
    )
    assert band.low_S.shape == (N,) and (band.low_S[:-1] > band.high_S[1:]).all()  # disjoint
    sigma = 1e-8
    rng = np.random.default_rng(24)
    X = s_matrix_design(N, with_full=True).X
    cells = 2000
    eps = np.clip(rng.normal(0, 0.05 / 3, (cells, N)), -0.05, 0.05)
    g = 1.0 / (nominal * (1 + eps) + rng.uniform(8.3, 10.7, (cells, N)))
    h = rng.uniform(1e-11, 1e-10, (cells, N))
    a, c0 = g - h, h.sum(axis=1)
    # Cell 0: branch 2 open and branch 5 stuck closed; cell 1: branch 7 (the smallest) open.
    c0[0] += a[0, 5]
    a[0, [2, 5]] = 0.0
    c0[1] -= h[1, 7]
    a[1, 7] = 0.0
    A = np.hstack([np.ones((X.shape[0], 1)), X])
    G = np.hstack([c0[:, None], a]) @ A.T
    y = G / (1 + 0.4 * G) + sigma * rng.standard_normal(G.shape)
    fit = fit_weighing(X, y, sigma_S=sigma, fit_series=True)
    report = classify_faults(
        fit.conductance_S,
        fit.std_S,
        fit.leakage_S,
        fit.leakage_std_S,
        band,
        X=X,
        y_S=y,
        sigma_S=sigma,
    )
    assert [(f.cell, f.k, f.kind) for f in report.findings] == [
        (0, 2, "open"),
        (0, 5, "stuck_closed"),
        (1, 7, "open"),
    ]
    assert "ambiguous_stuck_closed" not in report.findings[0].evidence
    assert not report.out_of_band.any() and not report.leaky.any()
    with pytest.raises(ValueError, match="nominal band has 8 branches, the bank 4"):
        classify_faults(np.ones((1, 4)), np.ones((1, 4)), np.ones(1), np.ones(1), band)
