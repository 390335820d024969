"""Least-squares estimation of branch conductances from a calibration design (pure numpy/scipy).

The measurement model for one cell with n branches, reading j of subset S_j (design row
``X[j]``, see `calibration.designs`)::

    G_j   = c0 + sum_i X[j, i] a_i          (the bank: conductances add, S)
    y_j   = G_j / (1 + r_s G_j) + e_j       (what the SMU reads through the series path)

a_i is branch i's conductance with its switch closed minus open (S), c0 the all-open
conductance (every branch's off-leakage plus offsets, S), r_s the common series path of the
cell (routing, traces, leads; ohm), e_j the reading noise with standard deviation sigma_j.

Three ways to treat r_s (`fit_weighing`):

* known (``series_ohm`` given, default 0): the exact transform ``G = y / (1 - r_s y)`` makes
  the model linear; weights propagate through ``dG/dy = 1 / (1 - r_s y)^2``. One weighted
  linear least-squares solve per cell.
* fitted (``fit_series=True``): nonlinear least squares by Gauss-Newton with step halving,
  started from the known-r_s solution; the design must contain at least three distinct
  subset sizes (e.g. the empty row, the half-full S-matrix rows and the full row), else the
  curvature that identifies r_s is absent and a `ValueError` says so.

Standard errors: from the known per-reading sigma (weighted least squares,
``cov = (J^T W J)^-1``), or, with ``sigma_S=None``, from the residual variance assuming equal
sigma for every reading of a cell, pooled over all cells by default (one noise level for the
meter; per cell with ``pool_sigma=False``, which needs M > p readings per cell).

Everything is vectorised over cells that share a design: arrays are (cells, M) for readings
and (cells, n) for estimates. Cost O(cells M p^2) per iteration, p = n + 1 (+1 with r_s).
Readings that are NaN (overflow, limit tripped and discarded by the caller) get zero weight.

`holdout_check` predicts held-out subsets and computes the chi-square of their
standardised residuals (reading noise plus prediction uncertainty): a p-value below alpha
flags non-additivity (IR drop, sneak paths, switch non-linearity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats  # type: ignore[import-untyped]

__all__ = [
    "HoldoutCheck",
    "WeighingFit",
    "fit_weighing",
    "holdout_check",
    "parameter_sensitivity",
    "predict",
    "simulate_standard_errors",
]

_COND_LIMIT = 1e12  # scaled normal matrix condition beyond which a parameter is unidentifiable

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class WeighingFit:
    """Estimates for a batch of cells measured with one design.

    Parameter order in ``covariance``: c0, a_0 .. a_{n-1}, and r_s when fitted.
    ``series_std_ohm`` is NaN when r_s was given rather than fitted. ``chi2`` is the
    weighted residual sum of squares (with estimated sigma: relative to the pooled or per
    cell estimate, so per-cell estimation gives chi2 == dof). ``p_value`` is the chi-square
    survival probability of ``chi2`` (NaN when sigma was estimated per cell or dof < 1).
    """

    X: NDArray[np.uint8]
    conductance_S: FloatArray
    std_S: FloatArray
    leakage_S: FloatArray
    leakage_std_S: FloatArray
    series_ohm: FloatArray
    series_std_ohm: FloatArray
    covariance: FloatArray
    fitted_S: FloatArray
    residual_S: FloatArray
    sigma_S: FloatArray
    chi2: FloatArray
    dof: NDArray[np.int64]
    p_value: FloatArray
    sigma_estimated: bool
    series_fitted: bool
    converged: NDArray[np.bool_]
    iterations: int

    @property
    def n_cells(self) -> int:
        """Number of cells in the batch."""
        return int(self.conductance_S.shape[0])


@dataclass(frozen=True)
class HoldoutCheck:
    """Additivity check on held-out subsets, per cell.

    ``z``: standardised residuals (cells, H); ``chi2 = sum z^2`` with ``dof`` valid held-out
    readings; ``p_value`` its chi-square survival probability; ``flagged``: p < alpha.
    """

    z: FloatArray
    chi2: FloatArray
    dof: NDArray[np.int64]
    p_value: FloatArray
    flagged: NDArray[np.bool_]
    alpha: float


def _design_matrix(X: ArrayLike) -> tuple[NDArray[np.uint8], FloatArray]:
    Xa = np.asarray(X)
    if Xa.ndim != 2 or Xa.size == 0 or not np.isin(Xa, (0, 1)).all():
        raise ValueError(f"design must be a non-empty 2-D 0/1 matrix, got shape {Xa.shape}")
    X8 = Xa.astype(np.uint8)
    A = np.hstack([np.ones((X8.shape[0], 1)), X8.astype(float)])
    return X8, A


def _broadcast(
    value: ArrayLike | None, cells: int, M: int, what: str, default: float
) -> FloatArray:
    arr = np.asarray(default if value is None else value, dtype=float)
    try:
        if arr.ndim == 1 and arr.shape[0] == cells and cells != M:
            arr = arr[:, None]
        out: FloatArray = np.broadcast_to(arr, (cells, M)).astype(float)
    except ValueError:
        raise ValueError(
            f"{what} of shape {arr.shape} does not fit {cells} cells x {M} readings"
        ) from None
    return out


def _solve_batched(N: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Solve N x = b per cell with Jacobi scaling; returns (x, N^-1, condition number)."""
    d = np.sqrt(np.clip(np.einsum("cii->ci", N), 1e-300, None))
    Ns = N / d[:, :, None] / d[:, None, :]
    cond = np.linalg.cond(Ns)
    good = np.isfinite(cond) & (cond < _COND_LIMIT)
    inv = np.full_like(N, np.nan)
    if good.any():
        inv[good] = np.linalg.inv(Ns[good]) / d[good][:, :, None] / d[good][:, None, :]
    x = np.einsum("cij,cj->ci", inv, b)
    return x, inv, cond


def _model(theta: FloatArray, A: FloatArray, r_s: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(G, y) for parameters (cells, p) and series resistances (cells,)."""
    G = theta @ A.T
    return G, G / (1.0 + r_s[:, None] * G)


def _jacobian(G: FloatArray, A: FloatArray, r_s: FloatArray, with_rs: bool) -> FloatArray:
    d = 1.0 + r_s[:, None] * G
    J = A[None, :, :] / (d**2)[:, :, None]
    if with_rs:
        J = np.concatenate([J, (-(G**2) / d**2)[:, :, None]], axis=2)
    return J


def fit_weighing(
    X: ArrayLike,
    y_S: ArrayLike,
    *,
    sigma_S: ArrayLike | None = None,
    series_ohm: ArrayLike = 0.0,
    fit_series: bool = False,
    pool_sigma: bool = True,
    max_iter: int = 50,
) -> WeighingFit:
    """Least-squares estimates of a_i, c0 (and r_s) with standard errors; see the module
    docstring.

    Args:
        X: design (M, n), 0/1.
        y_S: readings (M,) for one cell or (cells, M); measured conductance I/V in S.
        sigma_S: per-reading standard deviation (scalar, (M,), (cells, 1) or (cells, M);
            a 1-D (cells,) array is read per cell when cells != M); None to estimate it
            from the residuals.
        series_ohm: known r_s (scalar or (cells,)); the starting value with ``fit_series``.
        fit_series: estimate r_s by nonlinear least squares.
        pool_sigma: with ``sigma_S=None``, one sigma for all cells (else per cell).
        max_iter: Gauss-Newton iterations (``fit_series`` only).
    """
    X8, A = _design_matrix(X)
    M, p_lin = A.shape
    y = np.asarray(y_S, dtype=float)
    if y.ndim == 1:
        y = y[None, :]
    if y.ndim != 2 or y.shape[1] != M:
        raise ValueError(f"readings of shape {np.shape(y_S)} do not match a design of {M} rows")
    cells = y.shape[0]
    valid = np.isfinite(y)
    sig = _broadcast(sigma_S, cells, M, "sigma_S", 1.0)
    if sigma_S is not None and not (np.isfinite(sig) & (sig > 0))[valid].all():
        raise ValueError("sigma_S must be finite and positive for every valid reading")
    r_s = np.broadcast_to(np.asarray(series_ohm, dtype=float), (cells,)).copy()
    if not np.isfinite(r_s).all() or (r_s < 0).any():
        raise ValueError(f"series_ohm must be finite and >= 0, got {series_ohm!r}")
    if (valid & (r_s[:, None] * np.where(valid, y, 0.0) >= 1.0)).any():
        raise ValueError("a reading exceeds 1/series_ohm: the series resistance is too large")
    p = p_lin + int(fit_series)
    n_valid = valid.sum(axis=1)
    dof = (n_valid - p).astype(np.int64)
    if (dof < 0).any():
        bad = int(np.argmax(dof < 0))
        raise ValueError(
            f"cell {bad}: {n_valid[bad]} valid readings for {p} parameters "
            f"({'c0, ' + str(p_lin - 1) + ' branches' + (', r_s' if fit_series else '')})"
        )

    # Known r_s: exact linearising transform, weights through dG/dy.
    y0 = np.where(valid, y, 0.0)
    dGdy = 1.0 / (1.0 - r_s[:, None] * y0) ** 2
    Gobs = y0 / (1.0 - r_s[:, None] * y0)
    w = np.where(valid, 1.0 / (sig * dGdy) ** 2, 0.0)
    N = np.einsum("mi,cm,mj->cij", A, w, A)
    b = np.einsum("mi,cm,cm->ci", A, w, Gobs)
    theta, inv, cond = _solve_batched(N, b)
    if not (cond < _COND_LIMIT).all():
        bad = int(np.argmax(~(cond < _COND_LIMIT)))
        raise ValueError(
            f"cell {bad}: the design (with its valid readings) cannot identify every branch "
            f"and c0 (condition number {cond[bad]:.3g})"
        )
    converged = np.ones(cells, dtype=bool)
    iterations = 0

    if fit_series:
        theta = np.concatenate([theta, r_s[:, None]], axis=1)
        w = np.where(valid, 1.0 / sig**2, 0.0)
        if sigma_S is None:  # scale the weights with the linear fit's residual level
            _, f0 = _model(theta[:, :-1], A, r_s)
            rss0 = (w * (y0 - f0) ** 2).sum(axis=1)
            scale = rss0.sum() / max(int(dof.sum()), 1) if pool_sigma else rss0 / np.maximum(dof, 1)
            w = w / np.maximum(np.broadcast_to(scale, (cells,)), 1e-300)[:, None]

        def chi2_of(th: FloatArray) -> FloatArray:
            G, f = _model(th[:, :-1], A, th[:, -1])
            result: FloatArray = (w * (y0 - f) ** 2).sum(axis=1)
            # The model needs 1 + r_s G > 0 on every subset (r_s may go slightly negative
            # through noise when the true path is ~0 ohm; it is not clipped, to stay unbiased).
            ok = (1.0 + th[:, -1:] * G > 0).all(axis=1)
            return np.where(ok, result, np.inf)

        converged[:] = False
        current = chi2_of(theta)
        for iterations in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
            G, f = _model(theta[:, :-1], A, theta[:, -1])
            J = _jacobian(G, A, theta[:, -1], True)
            N = np.einsum("cmi,cm,cmj->cij", J, w, J)
            g = np.einsum("cmi,cm,cm->ci", J, w, y0 - f)
            step, _, cond = _solve_batched(N, g)
            if not (cond < _COND_LIMIT).all():
                bad = int(np.argmax(~(cond < _COND_LIMIT)))
                raise ValueError(
                    f"cell {bad}: the design cannot identify the series resistance r_s "
                    f"(condition number {cond[bad]:.3g}); it needs subsets of at least three "
                    "different sizes, e.g. the empty, half and full rows"
                )
            # Step size in units of the parameters' standard errors (scale-free stop test).
            size = np.abs(step * np.sqrt(np.einsum("cii->ci", N))).max(axis=1)
            t = np.ones(cells)
            for _ in range(30):
                trial = theta + t[:, None] * step
                new = chi2_of(trial)
                worse = ~(new <= current * (1 + 1e-12) + 1e-300)
                if not worse.any():
                    break
                t = np.where(worse, t / 2, t)
            accept = ~converged & ~worse
            theta = np.where(accept[:, None], trial, theta)
            stalled = accept & (current - new <= 1e-10 * current)
            current = np.where(accept, new, current)
            # Converged: the step is below 1e-4 standard errors, or chi2 no longer decreases
            # (the remaining step is rounding noise).
            converged |= (size < 1e-4) | worse | stalled
            if converged.all():
                break
        r_s = theta[:, -1]
        G, f = _model(theta[:, :-1], A, r_s)
        J = _jacobian(G, A, r_s, True)
        N = np.einsum("cmi,cm,cmj->cij", J, w, J)
        _, inv, _ = _solve_batched(N, np.zeros((cells, p)))
        w_y = w
    else:
        w_y = np.where(valid, 1.0 / sig**2, 0.0)

    _, fitted = _model(theta[:, :p_lin], A, r_s)
    resid = np.where(valid, y - fitted, np.nan)
    chi2 = np.nansum(np.where(valid, w_y * np.where(valid, resid, 0.0) ** 2, 0.0), axis=1)
    if sigma_S is None:
        if fit_series:
            # w carried the provisional scale: chi2 is relative to it; rescale to s^2.
            s2 = chi2.sum() / max(int(dof.sum()), 1) if pool_sigma else chi2 / np.maximum(dof, 1)
            s2_arr = np.broadcast_to(np.asarray(s2, dtype=float), (cells,))
            base = np.sqrt(1.0 / np.where(w > 0, w, np.nan))
        else:
            s2 = (
                chi2.sum() / max(int(dof.sum()), 1)
                if pool_sigma
                else chi2 / np.where(dof > 0, dof, np.nan)
            )
            s2_arr = np.broadcast_to(np.asarray(s2, dtype=float), (cells,))
            base = np.ones((cells, M))
        if pool_sigma and int(dof.sum()) == 0:
            s2_arr = np.full(cells, np.nan)
        inv = inv * s2_arr[:, None, None]
        chi2 = chi2 / s2_arr
        sigma_used = np.where(valid, base * np.sqrt(s2_arr)[:, None], np.nan)
    else:
        sigma_used = np.where(valid, sig, np.nan)
    std = np.sqrt(np.clip(np.einsum("cii->ci", inv), 0.0, None))
    if sigma_S is None and not pool_sigma:
        p_value = np.full(cells, np.nan)
    else:
        p_value = np.where(dof > 0, stats.chi2.sf(chi2, np.maximum(dof, 1)), np.nan)
    return WeighingFit(
        X=X8,
        conductance_S=theta[:, 1:p_lin],
        std_S=std[:, 1:p_lin],
        leakage_S=theta[:, 0],
        leakage_std_S=std[:, 0],
        series_ohm=r_s.copy(),
        series_std_ohm=std[:, -1] if fit_series else np.full(cells, np.nan),
        covariance=inv,
        fitted_S=fitted,
        residual_S=resid,
        sigma_S=sigma_used,
        chi2=chi2,
        dof=dof,
        p_value=p_value,
        sigma_estimated=sigma_S is None,
        series_fitted=fit_series,
        converged=converged,
        iterations=iterations,
    )


def predict(fit: WeighingFit, X_new: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Predicted readings (cells, H) for subsets ``X_new`` (H, n) and their variance
    from the parameter covariance (S^2), by first-order propagation."""
    X8, A = _design_matrix(X_new)
    if X8.shape[1] != fit.X.shape[1]:
        raise ValueError(f"subsets have {X8.shape[1]} branches, the fit {fit.X.shape[1]}")
    theta = np.concatenate([fit.leakage_S[:, None], fit.conductance_S], axis=1)
    G, y_hat = _model(theta, A, fit.series_ohm)
    J = _jacobian(G, A, fit.series_ohm, fit.series_fitted)
    var = np.einsum("chi,cij,chj->ch", J, fit.covariance, J)
    return y_hat, var


def parameter_sensitivity(fit: WeighingFit) -> FloatArray:
    """d(estimates)/d(readings) at the fit's solution: (cells, p, M), parameters in the
    ``covariance`` order (c0, a_0..a_{n-1}[, r_s]), readings in design order.

    ``L = (J^T W J)^-1 J^T W`` with ``W = 1 / sigma^2`` (zero for NaN readings): a small
    shift ``dy`` of the readings moves the estimates by ``L dy`` (first order). The
    uncertainty budget pushes shared systematic reading errors (a range's gain error
    shifts every reading taken on that range) through it. Cost O(cells M p^2).
    """
    _, A = _design_matrix(fit.X)
    theta = np.concatenate([fit.leakage_S[:, None], fit.conductance_S], axis=1)
    G = theta @ A.T
    J = _jacobian(G, A, fit.series_ohm, fit.series_fitted)
    sig = fit.sigma_S
    w = np.where(np.isfinite(sig) & (sig > 0), 1.0 / np.where(sig > 0, sig, 1.0) ** 2, 0.0)
    N = np.einsum("cmi,cm,cmj->cij", J, w, J)
    _, inv, _ = _solve_batched(N, np.zeros(N.shape[:2]))
    L: FloatArray = np.einsum("cij,cmj,cm->cim", inv, J, w)
    return L


def holdout_check(
    fit: WeighingFit,
    X_holdout: ArrayLike,
    y_S: ArrayLike,
    *,
    sigma_S: ArrayLike | None = None,
    alpha: float = 1e-3,
) -> HoldoutCheck:
    """Chi-square test of the fitted additive model on held-out subsets.

    ``sigma_S`` (as in `fit_weighing`) defaults to the sigma the fit used or estimated
    (the median of the cell's fitted-reading sigmas). Each residual is standardised by
    ``sqrt(sigma^2 + prediction variance)``; ``chi2 = sum z^2`` follows chi-square with H
    degrees of freedom when the model holds (approximately, when sigma was estimated).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    y_hat, var = predict(fit, X_holdout)
    cells, H = y_hat.shape
    y = np.asarray(y_S, dtype=float)
    if y.ndim == 1:
        y = y[None, :]
    if y.shape != (cells, H):
        raise ValueError(f"held-out readings of shape {np.shape(y_S)}, expected {(cells, H)}")
    if sigma_S is None:
        sig = np.broadcast_to(np.nanmedian(fit.sigma_S, axis=1)[:, None], (cells, H))
    else:
        sig = _broadcast(sigma_S, cells, H, "sigma_S", 1.0)
    valid = np.isfinite(y)
    z = np.where(valid, (y - y_hat) / np.sqrt(sig**2 + var), np.nan)
    chi2 = np.nansum(z**2, axis=1)
    dof = valid.sum(axis=1).astype(np.int64)
    p_value = np.where(dof > 0, stats.chi2.sf(chi2, np.maximum(dof, 1)), np.nan)
    return HoldoutCheck(
        z=z, chi2=chi2, dof=dof, p_value=p_value, flagged=p_value < alpha, alpha=alpha
    )


def simulate_standard_errors(
    X: ArrayLike,
    conductance_S: ArrayLike,
    *,
    leakage_S: float,
    sigma_S: float,
    n_trials: int,
    rng: np.random.Generator,
    series_ohm: float = 0.0,
    fit_series: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """Monte-Carlo check of a design: (empirical std of a_i over trials, mean reported std).

    Draws ``n_trials`` noisy reading sets of the true bank (additive Gaussian noise of
    ``sigma_S``), fits each with the known sigma, and returns both per element (n,).
    """
    X8, A = _design_matrix(X)
    a = np.asarray(conductance_S, dtype=float)
    theta = np.concatenate([[leakage_S], a])[None, :]
    _, y_true = _model(theta, A, np.array([series_ohm]))
    y = y_true + sigma_S * rng.standard_normal((n_trials, X8.shape[0]))
    fit = fit_weighing(
        X8,
        y,
        sigma_S=sigma_S,
        series_ohm=series_ohm if not fit_series else 0.0,
        fit_series=fit_series,
    )
    empirical: FloatArray = fit.conductance_S.std(axis=0, ddof=1)
    reported: FloatArray = fit.std_S.mean(axis=0)
    return empirical, reported
