"""Least-squares estimation: exact recovery, calibrated uncertainties, series path, holdout."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibration.designs import (
    holdout_subsets,
    one_by_one,
    random_balanced_design,
    rows_to_masks,
    s_matrix_design,
    standard_error_factor,
)
from calibration.estimation import fit_weighing, holdout_check, predict

SIGMA = 1e-7  # S: 10 nA at a 0.1 V read, the order of a 1 mA-range SMU reading's noise


def _bank(rng: np.random.Generator, cells: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Branch conductances ~1 mS +- 5 % and leakages ~10 nS."""
    a = 1e-3 * (1 + 0.05 * rng.standard_normal((cells, n)))
    c0 = 1e-8 * (1 + rng.random(cells))
    return a, c0


def _readings(X: np.ndarray, a: np.ndarray, c0: np.ndarray, r_s: np.ndarray | float) -> np.ndarray:
    A = np.hstack([np.ones((X.shape[0], 1)), X])
    G = np.hstack([c0[:, None], a]) @ A.T
    y: np.ndarray = G / (1 + np.asarray(r_s, dtype=float).reshape(-1, 1) * G)
    return y


@pytest.mark.parametrize("fit_series", [False, True])
def test_noise_free_readings_are_recovered_exactly(fit_series: bool) -> None:
    rng = np.random.default_rng(0)
    design = s_matrix_design(8, with_full=True)
    a, c0 = _bank(rng, 5, 8)
    r_s = 5 + 20 * rng.random(5)
    y = _readings(design.X, a, c0, r_s)
    fit = fit_weighing(
        design.X,
        y,
        sigma_S=SIGMA,
        series_ohm=0.0 if fit_series else r_s,
        fit_series=fit_series,
    )
    np.testing.assert_allclose(fit.conductance_S, a, rtol=1e-9)
    np.testing.assert_allclose(fit.leakage_S, c0, rtol=1e-5, atol=1e-15)
    np.testing.assert_allclose(fit.series_ohm, r_s, rtol=1e-8)
    assert fit.converged.all()
    np.testing.assert_allclose(fit.chi2, 0.0, atol=1e-6)


def test_linear_standard_errors_are_the_design_factor_times_sigma() -> None:
    design = s_matrix_design(7)
    a, c0 = _bank(np.random.default_rng(1), 3, 7)
    fit = fit_weighing(design.X, _readings(design.X, a, c0, 0.0), sigma_S=SIGMA)
    expected = np.broadcast_to(SIGMA * standard_error_factor(design.X), fit.std_S.shape)
    np.testing.assert_allclose(fit.std_S, expected, rtol=1e-9)
    np.testing.assert_allclose(fit.leakage_std_S, SIGMA, rtol=1e-9)  # var(c0) = sigma^2
    assert np.isnan(fit.series_std_ohm).all()


@pytest.mark.parametrize(
    ("sigma_known", "fit_series"), [(True, False), (False, False), (True, True), (False, True)]
)
def test_standardised_errors_have_unit_variance(sigma_known: bool, fit_series: bool) -> None:
    # 1500 cells x 8 branches: the std of 12000 standardised errors is 1 within about
    # 1/sqrt(2 * 12000) = 0.6 % (errors within a cell are correlated, so allow 5 %); the
    # 1500 series-path errors within 4/sqrt(2 * 1500) = 7.3 %.
    rng = np.random.default_rng(2)
    cells, n = 1500, 8
    design = s_matrix_design(n, with_full=True)
    a, c0 = _bank(rng, cells, n)
    r_s = 10 + 10 * rng.random(cells)
    y = _readings(design.X, a, c0, r_s) + SIGMA * rng.standard_normal((cells, design.n_readings))
    fit = fit_weighing(
        design.X,
        y,
        sigma_S=SIGMA if sigma_known else None,
        series_ohm=0.0 if fit_series else r_s,
        fit_series=fit_series,
    )
    z = (fit.conductance_S - a) / fit.std_S
    assert abs(z.mean()) < 0.03
    assert 0.95 < z.std() < 1.05
    if fit_series:
        zs = (fit.series_ohm - r_s) / fit.series_std_ohm
        assert 0.927 < zs.std() < 1.073
    if not sigma_known:
        np.testing.assert_allclose(np.nanmedian(fit.sigma_S), SIGMA, rtol=0.05)
    # The in-fit chi-square is calibrated: its p-values are uniform (5 % below 0.05).
    assert abs(np.mean(fit.p_value < 0.05) - 0.05) < 0.02


def test_per_reading_sigma_weights_the_fit() -> None:
    # Autoranging: small subsets read on a lower range with 10x less noise. Weighted least
    # squares must beat (or match) unweighted, and report consistent errors.
    rng = np.random.default_rng(3)
    design = random_balanced_design(8, 24, rng, with_full=True)
    cells = 800
    a, c0 = _bank(rng, cells, 8)
    sizes = design.X.sum(axis=1)
    sigma = np.where(sizes <= 4, SIGMA / 10, SIGMA)
    y = _readings(design.X, a, c0, 0.0) + sigma * rng.standard_normal((cells, design.n_readings))
    weighted = fit_weighing(design.X, y, sigma_S=sigma)
    z = (weighted.conductance_S - a) / weighted.std_S
    assert 0.95 < z.std() < 1.05
    flat = fit_weighing(design.X, y)
    assert np.sqrt(np.mean((weighted.conductance_S - a) ** 2)) < np.sqrt(
        np.mean((flat.conductance_S - a) ** 2)
    )


def test_missing_readings_reduce_the_degrees_of_freedom() -> None:
    rng = np.random.default_rng(4)
    design = s_matrix_design(8, with_full=True)
    a, c0 = _bank(rng, 2, 8)
    y = _readings(design.X, a, c0, 0.0)
    y[1, 3] = np.nan
    fit = fit_weighing(design.X, y, sigma_S=SIGMA)
    assert fit.dof.tolist() == [13 - 9, 13 - 10]
    assert np.isnan(fit.residual_S[1, 3]) and np.isfinite(fit.residual_S[0, 3])
    np.testing.assert_allclose(fit.conductance_S, a, rtol=1e-9)


def test_unidentifiable_designs_are_refused() -> None:
    design = s_matrix_design(7)  # empty + S rows: two subset sizes only, M = p
    y = _readings(design.X, *_bank(np.random.default_rng(5), 1, 7), 10.0)
    with pytest.raises(ValueError, match="valid readings for 9 parameters"):
        fit_weighing(design.X, y, fit_series=True)
    wider = np.vstack([design.X, design.X[1:3]])  # more rows, still two sizes
    y2 = _readings(wider, *_bank(np.random.default_rng(5), 1, 7), 10.0)
    with pytest.raises(ValueError, match="cannot identify the series resistance"):
        fit_weighing(wider, y2, sigma_S=SIGMA, fit_series=True)
    broken = one_by_one(4).X.copy()
    broken[2] = broken[1]  # branch 1 never measured alone
    with pytest.raises(ValueError, match="cannot identify every branch"):
        fit_weighing(broken, np.ones((1, 5)) * 1e-3, sigma_S=SIGMA)


def test_bad_input_is_named() -> None:
    X = one_by_one(3).X
    with pytest.raises(ValueError, match="do not match a design of 4 rows"):
        fit_weighing(X, np.ones(5))
    with pytest.raises(ValueError, match="sigma_S must be finite and positive"):
        fit_weighing(X, np.ones(4) * 1e-3, sigma_S=0.0)
    with pytest.raises(ValueError, match="series_ohm must be finite"):
        fit_weighing(X, np.ones(4) * 1e-3, series_ohm=-1.0)
    with pytest.raises(ValueError, match="exceeds 1/series_ohm"):
        fit_weighing(X, np.ones(4) * 1e-3, series_ohm=2000.0)


def test_holdout_check_passes_additive_banks_and_flags_sneak_paths() -> None:
    rng = np.random.default_rng(6)
    cells, n = 1000, 8
    design = s_matrix_design(n, with_full=True)
    hold = holdout_subsets(n, 12, rng, exclude=design.X)
    a, c0 = _bank(rng, cells, n)
    r_s = 15.0
    y = _readings(design.X, a, c0, r_s) + SIGMA * rng.standard_normal((cells, design.n_readings))
    fit = fit_weighing(design.X, y, sigma_S=SIGMA, fit_series=True)
    y_hold = _readings(hold, a, c0, r_s) + SIGMA * rng.standard_normal((cells, 12))
    ok = holdout_check(fit, hold, y_hold, sigma_S=SIGMA, alpha=1e-3)
    # Calibrated: the false-alarm rate is alpha (1 in 1000 cells; allow up to 6).
    assert ok.flagged.sum() <= 6
    assert 0.95 < np.nanstd(ok.z) < 1.05
    # Non-additivity: branches 0 and 1 closed together leak 2 uS extra (a sneak path,
    # 20 sigma); the held-out subsets that close both must flag the cell.
    both = (hold[:, 0] == 1) & (hold[:, 1] == 1)
    assert both.any()
    bad = y_hold + np.where(both, 2e-6, 0.0)[None, :]
    assert holdout_check(fit, hold, bad, sigma_S=SIGMA).flagged.all()


def test_predict_matches_the_model_and_its_variance() -> None:
    design = one_by_one(4, with_full=True)
    a, c0 = _bank(np.random.default_rng(7), 1, 4)
    fit = fit_weighing(design.X, _readings(design.X, a, c0, 0.0), sigma_S=SIGMA)
    y_hat, var = predict(fit, np.array([[1, 1, 0, 0]]))
    assert y_hat[0, 0] == pytest.approx(c0[0] + a[0, 0] + a[0, 1], rel=1e-9)
    g = np.array([1, 1, 1, 0, 0.0])
    assert var[0, 0] == pytest.approx(g @ fit.covariance[0] @ g, rel=1e-12)


@given(
    n=st.integers(1, 10),
    seed=st.integers(0, 2**32 - 1),
    extra=st.integers(0, 6),
)
def test_any_full_rank_design_recovers_any_bank(n: int, seed: int, extra: int) -> None:
    rng = np.random.default_rng(seed)
    design = random_balanced_design(n, n + 1 + extra, rng)
    a = rng.uniform(1e-5, 1e-2, (1, n))
    c0 = rng.uniform(0, 1e-6, 1)
    y = _readings(design.X, a, c0, 0.0)
    fit = fit_weighing(design.X, y, sigma_S=SIGMA)
    np.testing.assert_allclose(fit.conductance_S, a, rtol=1e-8, atol=1e-15)


def test_model_matches_the_simulated_boards_nodal_solve() -> None:
    # The simulator solves the whole resistor network (wires, routing switches, leakage of
    # the other cells); its noise-free port conductance must follow this module's model
    # (additive bank behind one series path) to better than the SMU's floor: the 2450's
    # 0.02 % basic accuracy. Otherwise the fit would be limited by the model, not the meter.
    from simulator.board_config import load_board_config
    from simulator.board_model import BoardModel, Routing

    model = BoardModel(load_board_config("small"), seed=5)
    truth = model.truth()
    K = model.geometry.branches
    design = s_matrix_design(K, with_full=True)
    hold = holdout_subsets(K, 8, np.random.default_rng(8), exclude=design.X)
    cells = [(0, 0), (3, 5), (7, 7)]
    y: list[list[float]] = []
    y_hold: list[list[float]] = []
    for r, c in cells:
        model.open_all_switches()
        model.set_routing(Routing("cell", r, c))
        for masks, out in ((design.masks, y), (rows_to_masks(hold), y_hold)):
            row = []
            for mask in masks:
                model.set_cell_mask(r, c, int(mask))
                row.append(model.smu_port().g_S)
            out.append(row)
    fit = fit_weighing(design.X, np.array(y), sigma_S=2e-4 * np.array(y), fit_series=True)
    R = np.array([truth["resistance_ohm"][r, c] for r, c in cells])
    on = 1 / (R + np.array([truth["r_on_ohm"][r, c] for r, c in cells]))
    off = 1 / (R + np.array([truth["r_off_ohm"][r, c] for r, c in cells]))
    rel = np.abs(fit.conductance_S / (on - off) - 1)
    assert np.median(rel) < 2e-5 and rel.max() < 2e-4
    assert ((fit.series_ohm > 0) & (fit.series_ohm < 1.0)).all()  # routing + leads, ohm
    check = holdout_check(fit, hold, np.array(y_hold), sigma_S=2e-4 * np.array(y_hold))
    assert not check.flagged.any()


@pytest.mark.parametrize("fit_series", [False, True])
def test_parameter_sensitivity_is_the_derivative_of_the_fit(fit_series: bool) -> None:
    from calibration.estimation import parameter_sensitivity

    rng = np.random.default_rng(3)
    n = 4
    X = np.vstack([np.zeros(n), np.eye(n), np.ones(n), np.ones(n), [1, 1, 0, 0]]).astype(np.uint8)
    a = np.array([1e-4, 5e-5, 2.5e-5, 1.2e-5])
    A = np.hstack([np.ones((X.shape[0], 1)), X])
    G = A @ np.concatenate([[1e-9], a])
    y = G / (1 + 0.3 * G) + 1e-9 * rng.standard_normal(G.size)
    sigma = np.full(y.size, 1e-9)
    kw = {"sigma_S": sigma, "fit_series": fit_series, "series_ohm": 0.0 if fit_series else 0.3}
    fit = fit_weighing(X, y, **kw)
    L = parameter_sensitivity(fit)[0]
    p = 1 + n + int(fit_series)
    theta = lambda f: np.concatenate(  # noqa: E731
        [f.leakage_S, f.conductance_S[0], f.series_ohm if fit_series else []]
    )
    base = theta(fit)
    for j in range(y.size):
        dy = np.zeros_like(y)
        dy[j] = 1e-10
        numeric = (
            theta(fit_weighing(X, y + dy, **kw)) - theta(fit_weighing(X, y - dy, **kw))
        ) / 2e-10
        np.testing.assert_allclose(L[:p, j], numeric, rtol=2e-3, atol=1e-6 * np.abs(numeric).max())
    assert L.shape == (p, y.size) and np.isfinite(base).all()
