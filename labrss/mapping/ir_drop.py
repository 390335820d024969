"""IR drop: the crossbar's MVM transfer with wire and routing resistance, and its wiring fit.

A crossbar read in MVM routing (rows on their DACs, columns at virtual ground) is a linear
resistor network, so its column currents are exactly ``I = V @ A`` for a transfer matrix
``A`` (R, C; S) that depends on the cell conductances ``G`` *and* on the wiring: with ideal
wires ``A = G``; with wire and routing resistance every cell sees less than its row
voltage (the row wire carries the row's current, the column wire lifts the column above
virtual ground and the other rows' cells leak some of the column's current back). ``A[r,
c]`` is what a row read measures (row ``r`` driven alone, column ``c`` read at virtual
ground), so the MVM, the row reads of verification and this model all speak of the same
matrix.

The model (`Wiring`): each row ``r`` enters its first cell through ``row_entry_ohm[r]``
(DAC output, routing switch, edge segment), each column ``c`` leaves its last cell (row
``R - 1``) through ``col_exit_ohm[c]`` (edge segment, routing switch, the read-out's
input), and neighbouring cells along a row / column are joined by ``row_segment_ohm`` /
``col_segment_ohm``. Nodes: ``row(r, c)`` and ``col(r, c)`` per cell (2 R C unknowns);
the DACs and virtual grounds are the fixed potentials.

* `transfer_matrix` (``A``): one sparse LU of the ``2RC`` nodal matrix
  (`scipy.sparse.linalg.splu`) and ``R`` right-hand sides (one per driven row).
  Complexity about ``O((RC)^1.5)`` for the LU plus ``R`` solves of ``O(nnz(LU))``: 0.1-0.3 s
  for 64 x 64.
* `transfer_jacobian`: ``dA / d(parameters)`` by the adjoint method (``C`` more solves:
  one per column read-out), every parameter at once.
* `fit_wiring`: Gauss-Newton (with a prior at the nominal values) of the parameters on
  measured transfers ``A`` of known programmed arrays
  (`labrss.workflows.ir_drop.measure_wiring`).

Pure: arrays in, arrays out, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]
import scipy.sparse.linalg as spla  # type: ignore[import-untyped]

__all__ = [
    "MIN_OHM",
    "Wiring",
    "WiringFit",
    "fit_wiring",
    "transfer_jacobian",
    "transfer_matrix",
]

FloatArray = npt.NDArray[np.float64]

#: Smallest resistance the model uses (ohm): a zero-ohm wire would merge nodes; 1 uohm is
#: 1e-10 of a 10 kohm cell, far below anything a reading resolves.
MIN_OHM = 1e-6


@dataclass(frozen=True)
class Wiring:
    """Effective wiring of an R x C crossbar in MVM routing (ohm; see the module docstring).

    Attributes:
        row_entry_ohm: (R,) DAC to the row's first cell.
        col_exit_ohm: (C,) the column's last cell to the read-out's virtual ground.
        row_segment_ohm: between neighbouring cells along a row.
        col_segment_ohm: between neighbouring cells along a column.
    """

    row_entry_ohm: FloatArray
    col_exit_ohm: FloatArray
    row_segment_ohm: float
    col_segment_ohm: float

    @classmethod
    def uniform(
        cls, rows: int, cols: int, *, segment_ohm: float, entry_ohm: float, exit_ohm: float
    ) -> Wiring:
        """Every line alike (a board file's nominal values)."""
        return cls(
            row_entry_ohm=np.full(rows, float(entry_ohm)),
            col_exit_ohm=np.full(cols, float(exit_ohm)),
            row_segment_ohm=float(segment_ohm),
            col_segment_ohm=float(segment_ohm),
        )

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.row_entry_ohm.size), int(self.col_exit_ohm.size)

    def parameters(self) -> FloatArray:
        """The parameter vector ``[row_entry (R), col_exit (C), row_segment, col_segment]``."""
        return np.concatenate(
            [
                self.row_entry_ohm,
                self.col_exit_ohm,
                [self.row_segment_ohm, self.col_segment_ohm],
            ]
        ).astype(np.float64)

    @classmethod
    def from_parameters(cls, p: npt.ArrayLike, rows: int, cols: int) -> Wiring:
        """The inverse of `parameters`."""
        v = np.asarray(p, dtype=np.float64)
        return cls(
            row_entry_ohm=v[:rows].copy(),
            col_exit_ohm=v[rows : rows + cols].copy(),
            row_segment_ohm=float(v[rows + cols]),
            col_segment_ohm=float(v[rows + cols + 1]),
        )

    def validate(self) -> None:
        """Raise ValueError naming the first negative or non-finite resistance."""
        for name, arr in (
            ("row_entry_ohm", self.row_entry_ohm),
            ("col_exit_ohm", self.col_exit_ohm),
            ("row_segment_ohm", np.atleast_1d(self.row_segment_ohm)),
            ("col_segment_ohm", np.atleast_1d(self.col_segment_ohm)),
        ):
            bad = ~(np.isfinite(arr) & (arr >= 0))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(f"wiring {name}[{i}] = {float(arr[i])!r}: must be finite, >= 0")

    def to_json(self) -> dict[str, object]:
        return {
            "row_entry_ohm": self.row_entry_ohm.tolist(),
            "col_exit_ohm": self.col_exit_ohm.tolist(),
            "row_segment_ohm": self.row_segment_ohm,
            "col_segment_ohm": self.col_segment_ohm,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Wiring:
        return cls(
            row_entry_ohm=np.asarray(data["row_entry_ohm"], dtype=np.float64),
            col_exit_ohm=np.asarray(data["col_exit_ohm"], dtype=np.float64),
            row_segment_ohm=float(data["row_segment_ohm"]),  # type: ignore[arg-type]
            col_segment_ohm=float(data["col_segment_ohm"]),  # type: ignore[arg-type]
        )


class _Network:
    """The factorised nodal system of one array state (internal)."""

    def __init__(self, g_S: FloatArray, wiring: Wiring) -> None:
        g = np.asarray(g_S, dtype=np.float64)
        if g.ndim != 2:
            raise ValueError(f"cell conductances must be (rows, cols), got shape {g.shape}")
        rows, cols = g.shape
        if wiring.shape != (rows, cols):
            raise ValueError(f"wiring is for {wiring.shape}, the array is {g.shape}")
        wiring.validate()
        if not np.isfinite(g).all() or (g < 0).any():
            raise ValueError("cell conductances must be finite and >= 0")
        self.rows, self.cols = rows, cols
        n_cell = rows * cols
        self.n = 2 * n_cell
        rr, cc = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        self.row_node = rr * cols + cc  # (R, C)
        self.col_node = n_cell + rr * cols + cc
        self.g_row_seg = 1.0 / max(wiring.row_segment_ohm, MIN_OHM)
        self.g_col_seg = 1.0 / max(wiring.col_segment_ohm, MIN_OHM)
        self.g_entry = 1.0 / np.maximum(wiring.row_entry_ohm, MIN_OHM)
        self.g_exit = 1.0 / np.maximum(wiring.col_exit_ohm, MIN_OHM)
        # two-terminal elements between free nodes: row segments, column segments, cells
        self.rs_a = self.row_node[:, :-1].ravel()
        self.rs_b = self.row_node[:, 1:].ravel()
        self.cs_a = self.col_node[:-1, :].ravel()
        self.cs_b = self.col_node[1:, :].ravel()
        a = np.concatenate([self.rs_a, self.cs_a, self.row_node.ravel()])
        b = np.concatenate([self.rs_b, self.cs_b, self.col_node.ravel()])
        w = np.concatenate(
            [
                np.full(self.rs_a.size, self.g_row_seg),
                np.full(self.cs_a.size, self.g_col_seg),
                g.ravel(),
            ]
        )
        self.entry_node = self.row_node[:, 0]  # (R,)
        self.exit_node = self.col_node[-1, :]  # (C,)
        diag = np.bincount(a, w, self.n) + np.bincount(b, w, self.n)
        diag[self.entry_node] += self.g_entry
        diag[self.exit_node] += self.g_exit
        # a cell with no conductance leaves its nodes on the wires: never singular since
        # every row and column line reaches its source through positive resistances
        matrix = sp.coo_matrix(
            (
                np.concatenate([diag, -w, -w]),
                (
                    np.concatenate([np.arange(self.n), a, b]),
                    np.concatenate([np.arange(self.n), b, a]),
                ),
            ),
            shape=(self.n, self.n),
        ).tocsc()
        self.lu = spla.splu(matrix)
        rhs = np.zeros((self.n, rows))
        rhs[self.entry_node, np.arange(rows)] = self.g_entry
        self.x = np.asarray(self.lu.solve(rhs))  # (n, R): potentials, row r's DAC at 1 V

    def transfer(self) -> FloatArray:
        """A (R, C): current into column c's read-out per volt on row r."""
        return np.asarray(self.x[self.exit_node, :].T * self.g_exit[None, :])

    def adjoint(self) -> FloatArray:
        """(n, C): L^-1 q_c with q_c = g_exit[c] e_exit(c) (the read-out of column c)."""
        q = np.zeros((self.n, self.cols))
        q[self.exit_node, np.arange(self.cols)] = self.g_exit
        return np.asarray(self.lu.solve(q))


def transfer_matrix(g_S: npt.ArrayLike, wiring: Wiring) -> FloatArray:
    """The MVM transfer ``A`` (R, C; S) of cell conductances ``g_S`` (R, C; S) with
    ``wiring``: ``I_c = sum_r A[r, c] V_r`` into each column's virtual ground.

    Complexity: one sparse LU of ``2RC`` unknowns and ``R`` triangular-solve pairs."""
    return _Network(np.asarray(g_S, dtype=np.float64), wiring).transfer()


def transfer_jacobian(g_S: npt.ArrayLike, wiring: Wiring) -> tuple[FloatArray, FloatArray]:
    """``A`` and its derivative with respect to `Wiring.parameters` (ohm): ``(R, C)`` and
    ``(R, C, R + C + 2)`` (S per ohm), by the adjoint method (``C`` extra solves).

    For a conductance ``g`` between free nodes ``a, b``: ``dA[r, c]/dg = -(l_a - l_b)(x_a -
    x_b)`` with ``x`` the potentials of row ``r``'s excitation and ``l`` the adjoint of
    column ``c``'s read-out; entries and exits add their source terms; ``d/dR = -g^2
    d/dg``."""
    net = _Network(np.asarray(g_S, dtype=np.float64), wiring)
    rows, cols = net.rows, net.cols
    x, lam = net.x, net.adjoint()
    jac = np.empty((rows, cols, rows + cols + 2))
    # row entries: DAC r' (potential delta_{r r'}) to node a = entry(r')
    xa = x[net.entry_node, :]  # (R', R)
    la = lam[net.entry_node, :]  # (R', C)
    drive = np.eye(rows) - xa  # (R', R): potential across the entry for excitation r
    d_entry = la[:, None, :] * drive[:, :, None]  # (R', R, C) = dA/dg
    jac[:, :, :rows] = np.moveaxis(-(net.g_entry**2)[:, None, None] * d_entry, 0, -1)
    # column exits: node a = exit(c') to the virtual ground (0 V); the output's own term
    xe = x[net.exit_node, :]  # (C', R)
    le = lam[net.exit_node, :]  # (C', C)
    d_exit = -le[:, None, :] * xe[:, :, None]  # (C', R, C)
    d_exit[np.arange(cols), :, np.arange(cols)] += xe
    jac[:, :, rows : rows + cols] = np.moveaxis(-(net.g_exit**2)[:, None, None] * d_exit, 0, -1)
    # shared segments: sum over every segment of the kind
    for idx, (na, nb, gseg) in enumerate(
        ((net.rs_a, net.rs_b, net.g_row_seg), (net.cs_a, net.cs_b, net.g_col_seg))
    ):
        if na.size == 0:
            jac[:, :, rows + cols + idx] = 0.0
            continue
        dx = x[na] - x[nb]  # (E, R)
        dl = lam[na] - lam[nb]  # (E, C)
        jac[:, :, rows + cols + idx] = gseg**2 * (dx.T @ dl)
    return net.transfer(), jac


@dataclass(frozen=True)
class WiringFit:
    """The result of `fit_wiring`.

    Attributes:
        wiring: the estimate.
        std_ohm: standard uncertainty of each parameter (`Wiring.parameters` order) from
            the fit's curvature with the residuals' own scatter, prior included.
        row_factor: (R,) each row's factor between the readings and the model (the row
            DAC's gain estimate's error and the meter's scale against the calibration's,
            ~1e-4): nuisance parameters, fitted so that they do not bias the wiring.
        residual_rel_rms: rms of ``A_meas / (f_r A_model) - 1`` over the fitted cells
            after the fit; ``residual_rel_rms_nominal`` the same with the nominal wiring
            (and unit row factors).
        iterations: Gauss-Newton steps taken.
    """

    wiring: Wiring
    std_ohm: FloatArray
    row_factor: FloatArray
    residual_rel_rms: float
    residual_rel_rms_nominal: float
    iterations: int


def fit_wiring(
    g_S: npt.ArrayLike,
    a_measured_S: npt.ArrayLike,
    nominal: Wiring,
    *,
    prior_rel: float = 1.0,
    min_prior_ohm: float = 0.01,
    row_factor_sd: float = 1e-3,
    iterations: int = 8,
    tol_ohm: float = 1e-6,
) -> WiringFit:
    """Estimate the wiring from measured transfers of known arrays.

    ``g_S`` (P, R, C) or (R, C): the cells' own conductances of each measured array (from
    the calibration); ``a_measured_S`` the same shape: the measured transfers (row reads;
    NaN where not measured). Minimises ``sum ((A_meas - f_r A(G, p)) / A_meas)^2 / s^2 +
    sum ((p - p_nom) / (prior_rel p_nom + min_prior_ohm))^2 + sum ((f_r - 1) /
    row_factor_sd)^2`` over the wiring ``p`` and one factor ``f_r`` per row by
    Gauss-Newton with the adjoint Jacobian, ``s`` the residual scatter (re-estimated every
    step); a parameter the readings cannot identify stays at its nominal value within its
    prior. A row's entry resistance lowers the row's every cell by the same factor, ``1 -
    rho_r sum_c G[r, c]``, as a row factor does: only arrays with *different* loads on a
    row tell the two apart, so give at least two (`labrss.workflows.ir_drop.wiring_design`).
    Cells below 1 % of the largest ``|A_meas|`` are left out (their relative noise is
    large). Stops when no parameter moves by more than ``tol_ohm`` or after
    ``iterations`` steps. Cost per step: one `transfer_jacobian` per array.
    """
    g = np.asarray(g_S, dtype=np.float64)
    meas = np.asarray(a_measured_S, dtype=np.float64)
    if meas.shape != g.shape:
        raise ValueError(f"measured transfers {meas.shape} and conductances {g.shape} differ")
    if g.ndim == 2:
        g, meas = g[None], meas[None]
    _, rows, cols = g.shape
    p_nom = nominal.parameters()
    n_p = p_nom.size
    prior_sd = prior_rel * np.abs(p_nom) + min_prior_ohm
    ok = np.isfinite(meas) & (np.abs(meas) > 0.01 * np.nanmax(np.abs(meas)))
    if ok.sum() < n_p + rows:
        raise ValueError(
            f"{int(ok.sum())} usable measured cells cannot identify {n_p} wiring parameters "
            f"and {rows} row factors"
        )
    row_of = np.broadcast_to(np.arange(rows)[None, :, None], g.shape)[ok]

    def evaluate(p: FloatArray) -> tuple[FloatArray, FloatArray]:
        w = Wiring.from_parameters(p, rows, cols)
        pairs = [transfer_jacobian(gi, w) for gi in g]
        return np.stack([a for a, _ in pairs]), np.stack([j for _, j in pairs])

    p = p_nom.copy()
    f = np.ones(rows)
    model, jac = evaluate(p)
    rms_nominal = float(np.sqrt(np.mean((meas[ok] / model[ok] - 1.0) ** 2)))
    scatter = max(rms_nominal, 1e-9)
    prior_j = np.zeros((n_p + rows, n_p + rows))
    prior_j[:n_p, :n_p] = np.diag(1.0 / prior_sd)
    prior_j[n_p:, n_p:] = np.eye(rows) / row_factor_sd

    def system(model: FloatArray, jac: FloatArray, f: FloatArray) -> tuple[FloatArray, FloatArray]:
        fr = f[row_of]
        resid = (meas[ok] - fr * model[ok]) / meas[ok]
        jf = np.zeros((resid.size, rows))
        jf[np.arange(resid.size), row_of] = model[ok]
        jr = np.hstack([fr[:, None] * jac[ok], jf]) / meas[ok][:, None]
        return resid, jr

    steps = 0
    for step_index in range(1, iterations + 1):
        steps = step_index
        resid, jr = system(model, jac, f)
        big_j = np.vstack([jr / scatter, prior_j])
        big_r = np.concatenate([resid / scatter, (p_nom - p) / prior_sd, (1.0 - f) / row_factor_sd])
        step, *_ = np.linalg.lstsq(big_j, big_r, rcond=None)
        p_new = np.maximum(p + step[:n_p], 0.0)
        f = f + step[n_p:]
        moved = float(np.max(np.abs(p_new - p)))
        p = p_new
        model, jac = evaluate(p)
        rel = meas[ok] / (f[row_of] * model[ok]) - 1.0
        dof = max(int(ok.sum()) - n_p - rows, 1)
        scatter = max(float(np.sqrt(np.sum(rel**2) / dof)), 1e-9)
        if moved <= tol_ohm:
            break
    rel = meas[ok] / (f[row_of] * model[ok]) - 1.0
    _, jr = system(model, jac, f)
    big_j = np.vstack([jr / scatter, prior_j])
    try:
        cov = np.linalg.inv(big_j.T @ big_j)
        std = np.sqrt(np.maximum(np.diag(cov)[:n_p], 0.0))
    except np.linalg.LinAlgError:
        std = np.full(n_p, math.nan)
    return WiringFit(
        wiring=Wiring.from_parameters(p, rows, cols),
        std_ohm=std,
        row_factor=f,
        residual_rel_rms=float(np.sqrt(np.mean(rel**2))),
        residual_rel_rms_nominal=rms_nominal,
        iterations=steps,
    )
