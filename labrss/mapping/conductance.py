"""Weights to conductance targets and switch masks: scaling, differential pairs, biases.

A layer ``y = x @ W + b`` runs on the crossbar as ``I = V @ G`` (columns at virtual
ground, crossbar_sim.md section 1):

* **Differential column pairs.** Weight ``w_ij`` sits on the cell pair (row ``i``,
  columns ``2p`` and ``2p + 1`` of its tile): ``G+ - G- = s_j w_ij`` (S). Each cell is a
  bank of ``K`` switched elements; `labrss.rss.solve_signed` picks both subsets jointly
  from the calibrated branch conductances. A weight of exactly zero is every switch of
  the pair open (only the off-leakage difference remains).
* **Scale** ``s_j`` (S per weight unit), per layer (one value) or per output column,
  from the calibrated reachable range of every cell pair the layer uses (across all
  tiles): ``s = fill * min(range_available / |w|)``, so every target is reachable with
  the calibrated values (`MappedLayer.all_reachable` reports it).
* **Inputs** become DAC voltages ``V = x * v_scale``, ``v_scale = v_max / x_max``, so that
  ``|x| <= x_max`` stays within ``+-v_max`` (V).
* **Bias** through an extra row driven at ``V_b`` (default ``v_max``): its pair realises
  ``s_j v_scale b_j / V_b``.
* **Inverse transform**: ``y_j = (I+_j - I-_j) / (s_j v_scale)`` per tile, then the tiles'
  outputs are summed digitally (`labrss.mapping.tiling`).

With the realised (calibrated) conductances this gives exactly ``y = x @ W_eff + b_eff``
(`MappedLayer.effective`), the programmed, quantised layer; the difference to the target
is bounded by ``sum_i |x_i| |W_eff - W|_ij + |b_eff - b|_j`` (`MappedLayer.error_bound`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from labrss.mapping.tiling import LayerNotRealisableError, TilePlan, check_precision, plan_tiles
from labrss.networks.model import Layer
from labrss.rss import solve_signed

__all__ = ["MappedLayer", "map_layer"]

ScaleMode = Literal["layer", "column"]


@dataclass(frozen=True)
class MappedLayer:
    """A layer mapped onto a board: targets, switch masks and the transforms (SI units).

    Logical rows are the layer's inputs ``0 .. d_in - 1`` and the bias row ``d_in``;
    arrays indexed ``(row, output)`` have ``d_in + 1`` rows.

    Attributes
    ----------
    name : the layer's name (used in every error).
    plan : the `TilePlan`; physical cell of logical ``(i, j)``: row ``cell_row[i, j]``,
        columns ``2 cell_pair[i, j]`` (+) and ``2 cell_pair[i, j] + 1`` (-) in tile
        ``tile_of[i, j]``.
    scale_S : ``(d_out,)`` S per weight unit (all equal for ``scale="layer"``).
    v_scale_V : volts per input unit; ``v_max_V``, ``x_max`` as given; ``bias_V`` the
        bias row voltage.
    target_S : ``(d_in + 1, d_out)`` signed targets ``G+ - G-``.
    value_S : realised ``G+ - G-`` with the calibrated elements (zero weights: the
        leakage difference of the open pair).
    mask_pos, mask_neg : ``(d_in + 1, d_out, K)`` switches to close in the + and - cell.
    g_pos_S, g_neg_S : ``(d_in + 1, d_out)`` conductance of each cell (leakage included).
    sigma_S : ``(d_in + 1, d_out)`` predicted std of ``value_S`` from the calibration
        uncertainties, or None.
    reachable : ``(d_in + 1, d_out)`` target within the pair's calibrated range.
    range_fraction : ``(d_in + 1, d_out)`` ``|target|`` over the range available on its
        side (<= ``fill``).
    weights, bias : the target layer (bias zero when mapped without a bias row; the
        ``d_in`` row then realises exactly zero and is on no tile).
    """

    name: str
    plan: TilePlan
    scale_S: np.ndarray
    v_scale_V: float
    v_max_V: float
    x_max: float
    bias_V: float
    target_S: np.ndarray
    value_S: np.ndarray
    mask_pos: np.ndarray
    mask_neg: np.ndarray
    g_pos_S: np.ndarray
    g_neg_S: np.ndarray
    sigma_S: np.ndarray | None
    reachable: np.ndarray
    range_fraction: np.ndarray
    cell_row: np.ndarray
    cell_pair: np.ndarray
    tile_of: np.ndarray
    weights: np.ndarray
    bias: np.ndarray

    # ------------------------------------------------------------------ weight domain
    @property
    def _unit(self) -> np.ndarray:
        """Weight units per S for each logical row: ``1/s`` for inputs, bias row scaled."""
        unit = np.broadcast_to(1.0 / self.scale_S, self.target_S.shape).copy()
        unit[-1] *= self.bias_V / self.v_scale_V
        return unit

    @property
    def weights_eff(self) -> np.ndarray:
        """Realised weights ``(d_in, d_out)``: ``value_S / s``."""
        return np.asarray((self.value_S * self._unit)[:-1])

    @property
    def bias_eff(self) -> np.ndarray:
        """Realised bias ``(d_out,)``: ``value_S V_b / (s v_scale)`` of the bias row."""
        return np.asarray((self.value_S * self._unit)[-1])

    @property
    def weight_error(self) -> np.ndarray:
        """Predicted error per weight ``W_eff - W``, ``(d_in, d_out)`` (RSS quantisation)."""
        return np.asarray(self.weights_eff - self.weights)

    @property
    def bias_error(self) -> np.ndarray:
        """``b_eff - b``, ``(d_out,)``."""
        return np.asarray(self.bias_eff - self.bias)

    @property
    def weight_sigma(self) -> np.ndarray | None:
        """Predicted std per weight from the calibration uncertainties, ``(d_in, d_out)``."""
        return None if self.sigma_S is None else (self.sigma_S * self._unit)[:-1]

    @property
    def bias_sigma(self) -> np.ndarray | None:
        """Predicted std of each bias, ``(d_out,)``."""
        return None if self.sigma_S is None else (self.sigma_S * self._unit)[-1]

    @property
    def max_rel_error(self) -> float:
        """``max |W_eff - W| / max |W|`` (weights only)."""
        peak = float(np.abs(self.weights).max())
        return float(np.abs(self.weight_error).max() / peak) if peak > 0 else 0.0

    @property
    def all_reachable(self) -> bool:
        """Every target inside its pair's calibrated range."""
        return bool(self.reachable.all())

    @property
    def effective(self) -> Layer:
        """The programmed (quantised) layer ``x @ W_eff + b_eff``."""
        return Layer(self.weights_eff, self.bias_eff)

    def error_bound(self, x: np.ndarray) -> np.ndarray:
        """``sum_i |x_i| |W_eff - W|_ij + |b_eff - b|_j``, ``(B, d_out)``: the largest
        difference between the programmed and the target layer's outputs for ``x``."""
        arr = np.asarray(x, dtype=np.float64)
        return np.asarray(np.abs(arr) @ np.abs(self.weight_error) + np.abs(self.bias_error))

    # ------------------------------------------------------------------ board domain
    def input_voltages(self, x: np.ndarray) -> list[np.ndarray]:
        """DAC voltages of each tile's rows, ``(B, n_rows)`` (V), the bias row at ``V_b``.

        Raises ValueError naming the vector, input and value when ``|x| > x_max``.
        """
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[None, :]
        over = ~(np.abs(arr) <= self.x_max * (1.0 + 1e-12))
        if arr.ndim == 2 and over.any():
            b, i = (int(v) for v in np.argwhere(over)[0])
            msg = (
                f"{self.name}: input[{b}, {i}] = {float(arr[b, i])!r} is beyond x_max = "
                f"{self.x_max!r} (it would need {float(arr[b, i]) * self.v_scale_V:.4g} V, "
                f"the limit is +-{self.v_max_V} V)"
            )
            raise ValueError(msg)
        return [
            v * self.v_scale_V for v in self.plan.tile_inputs(arr, self.bias_V / self.v_scale_V)
        ]

    def tile_conductances(self, tile_index: int) -> np.ndarray:
        """Conductance matrix ``(n_rows, 2 n_pairs)`` (S) of a tile: column ``2p`` is the
        positive cell of pair ``p``, ``2p + 1`` the negative one."""
        t = self.plan.tiles[tile_index]
        rows = self.plan.logical_rows(t)
        g = np.empty((t.n_rows, t.n_columns))
        g[:, 0::2] = self.g_pos_S[rows][:, t.out_start : t.out_stop]
        g[:, 1::2] = self.g_neg_S[rows][:, t.out_start : t.out_stop]
        return g

    def tile_masks(self, tile_index: int) -> np.ndarray:
        """Switch states ``(n_rows, 2 n_pairs, K)`` of a tile, laid out as the board."""
        t = self.plan.tiles[tile_index]
        rows = self.plan.logical_rows(t)
        k = self.mask_pos.shape[-1]
        m = np.empty((t.n_rows, t.n_columns, k), dtype=bool)
        m[:, 0::2] = self.mask_pos[rows][:, t.out_start : t.out_stop]
        m[:, 1::2] = self.mask_neg[rows][:, t.out_start : t.out_stop]
        return m

    def ideal_column_currents(self, x: np.ndarray) -> list[np.ndarray]:
        """Ideal MVM ``I = V @ G`` per tile, ``(B, 2 n_pairs)`` (A): Ohm and Kirchhoff on
        the realised conductances, no wire resistance, no noise."""
        volts = self.input_voltages(x)
        return [
            v @ self.tile_conductances(t.index) for t, v in zip(self.plan.tiles, volts, strict=True)
        ]

    def outputs_from_currents(self, currents: list[np.ndarray]) -> np.ndarray:
        """Layer outputs ``(B, d_out)`` from each tile's column currents ``(B, 2 n_pairs)``
        (A): ``(I+ - I-) / (s v_scale)`` per tile, summed over the row blocks."""
        parts = []
        for t, cur in zip(self.plan.tiles, currents, strict=True):
            c = np.asarray(cur, dtype=np.float64)
            if c.ndim != 2 or c.shape[1] != t.n_columns:
                msg = (
                    f"{self.name}: tile {t.index} currents shape {c.shape}, expected "
                    f"(B, {t.n_columns})"
                )
                raise ValueError(msg)
            diff = c[:, 0::2] - c[:, 1::2]
            parts.append(diff / (self.scale_S[t.out_start : t.out_stop] * self.v_scale_V))
        return self.plan.accumulate(parts)

    def max_column_current_A(self) -> float:
        """Largest column current over all tiles for inputs at ``+-x_max`` (A), a bound."""
        peak = 0.0
        for t in self.plan.tiles:
            g = self.tile_conductances(t.index)
            volts = np.full(t.n_rows, self.v_max_V)
            if t.has_bias:
                volts[-1] = abs(self.bias_V)
            peak = max(peak, float((volts @ g).max()))
        return peak


def _gather(arr: np.ndarray | None, rows: np.ndarray, cols: np.ndarray) -> np.ndarray | None:
    """``arr[rows, cols, :]`` for (R, C, K) board arrays; None passes through."""
    if arr is None:
        return None
    return np.asarray(np.asarray(arr)[rows, cols])


def map_layer(
    weights: np.ndarray,
    bias: np.ndarray | None,
    elements_S: np.ndarray,
    *,
    v_max_V: float,
    x_max: float,
    bias_V: float | None = None,
    sigma_S: np.ndarray | None = None,
    leakage_S: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
    scale: ScaleMode = "layer",
    fill: float = 0.95,
    secondary: Literal["variance", "switches"] | None = None,
    max_rel_error: float | None = None,
    name: str = "layer",
) -> MappedLayer:
    """Map a layer onto a calibrated board: scale, tiles, targets and switch masks.

    Parameters
    ----------
    weights : ``(d_in, d_out)``; bias : ``(d_out,)`` or None (then no bias row).
    elements_S : ``(R, C, K)`` calibrated closed-branch conductances of the board (S).
    v_max_V : largest DAC voltage to use (V); x_max : largest input magnitude expected.
    bias_V : bias row voltage (V), default ``v_max_V``; 0 < |bias_V| <= v_max_V.
    sigma_S, leakage_S, exclude : ``(R, C, K)`` element uncertainties (S), off-leakage (S)
        and faulty elements (never used), as in `labrss.rss.solve_signed`.
    scale : ``"layer"`` (one ``s``) or ``"column"`` (one per output).
    fill : fraction of the tightest cell range the largest target may use (0, 1].
    secondary : passed to the solver (``"variance"`` needs ``sigma_S``).
    max_rel_error : if given, the largest weight error relative to ``max|W|`` allowed;
        checked a priori (`check_precision`) and after solving.
    name : the layer's name in errors and reports.

    Raises
    ------
    ValueError
        NaN/inf weights (naming the layer and weight), bad shapes or options.
    LayerNotRealisableError
        A nonzero weight on a cell pair with no usable element, or errors beyond
        ``max_rel_error``.

    Complexity: one vectorised `solve_signed` over ``(d_in + 1) d_out`` pairs of ``2 K``
    elements (meet in the middle, ``O(2**K)`` each).
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2:
        msg = f"{name}: weights must be 2-D (d_in, d_out), got shape {w.shape}"
        raise ValueError(msg)
    d_in, d_out = w.shape
    has_bias = bias is not None
    bvec = np.zeros(d_out) if bias is None else np.asarray(bias, dtype=np.float64)
    if bvec.shape != (d_out,):
        msg = f"{name}: bias shape {bvec.shape}, expected ({d_out},)"
        raise ValueError(msg)
    for label, arr in (("weight", w), ("bias", bvec)):
        bad = ~np.isfinite(arr)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            msg = f"{name}: {label}{list(idx)} = {float(arr[idx])!r}: weights must be finite"
            raise ValueError(msg)
    g = np.asarray(elements_S, dtype=np.float64)
    if g.ndim != 3:
        msg = f"{name}: elements_S must be (rows, cols, K), got shape {g.shape}"
        raise ValueError(msg)
    n_rows_board, n_cols_board, k = g.shape
    for label, limit in (("v_max_V", v_max_V), ("x_max", x_max)):
        if not (np.isfinite(limit) and limit > 0):
            msg = f"{name}: {label} = {limit!r}: must be finite and > 0"
            raise ValueError(msg)
    vb = float(v_max_V if bias_V is None else bias_V)
    if not (np.isfinite(vb) and 0 < abs(vb) <= v_max_V):
        msg = f"{name}: bias_V = {bias_V!r}: need 0 < |bias_V| <= v_max_V = {v_max_V}"
        raise ValueError(msg)
    if not 0 < fill <= 1:
        msg = f"{name}: fill = {fill!r}: must be in (0, 1]"
        raise ValueError(msg)
    if scale not in ("layer", "column"):
        msg = f"{name}: scale = {scale!r}: expected 'layer' or 'column'"
        raise ValueError(msg)
    if max_rel_error is not None:
        check_precision(name, k, max_rel_error)

    plan = plan_tiles(d_in, d_out, n_rows_board, n_cols_board, bias=has_bias, layer=name)
    rows_total = d_in + 1
    cell_row = np.zeros((rows_total, d_out), dtype=np.int64)
    cell_pair = np.zeros((rows_total, d_out), dtype=np.int64)
    tile_of = np.zeros((rows_total, d_out), dtype=np.int64)
    for t in plan.tiles:
        lrows = plan.logical_rows(t)
        cell_row[np.ix_(lrows, np.arange(t.out_start, t.out_stop))] = np.arange(t.n_rows)[:, None]
        cell_pair[np.ix_(lrows, np.arange(t.out_start, t.out_stop))] = np.arange(t.n_pairs)[None, :]
        tile_of[np.ix_(lrows, np.arange(t.out_start, t.out_stop))] = t.index
    rr, pc, nc = cell_row, 2 * cell_pair, 2 * cell_pair + 1
    gp, gn = g[rr, pc], g[rr, nc]
    hp = _gather(leakage_S, rr, pc)
    hn = _gather(leakage_S, rr, nc)
    ep = _gather(exclude, rr, pc)
    en = _gather(exclude, rr, nc)
    sp = _gather(sigma_S, rr, pc)
    sn = _gather(sigma_S, rr, nc)
    hp0 = np.zeros_like(gp) if hp is None else hp
    hn0 = np.zeros_like(gn) if hn is None else hn
    ep0 = np.zeros(gp.shape, dtype=bool) if ep is None else ep.astype(bool)
    en0 = np.zeros(gn.shape, dtype=bool) if en is None else en.astype(bool)
    base = hp0.sum(-1) - hn0.sum(-1)
    hi = base + np.where(ep0, 0.0, gp - hp0).sum(-1)  # every usable + switch closed
    lo = base - np.where(en0, 0.0, gn - hn0).sum(-1)  # every usable - switch closed

    # Targets in weight units per logical row: inputs w, bias b / x_b (x_b = V_b / v_scale).
    v_scale = v_max_V / x_max
    u = np.vstack([w, (bvec * v_scale / vb)[None, :]])
    if not has_bias:
        u[-1] = 0.0
    avail = np.where(u > 0, hi, np.where(u < 0, -lo, np.inf))
    with np.errstate(divide="ignore"):
        ratio = np.where(u != 0, avail / np.abs(u), np.inf)
    dead = (u != 0) & (avail <= 0)
    if dead.any():
        i, j = (int(v) for v in np.argwhere(dead)[0])
        t = plan.tiles[int(tile_of[i, j])]
        what = f"weight[{i}, {j}]" if i < d_in else f"bias[{j}]"
        msg = (
            f"{name}: {what} = {float(u[i, j])!r} falls on board row {int(cell_row[i, j])}, "
            f"columns {2 * int(cell_pair[i, j])}/{2 * int(cell_pair[i, j]) + 1} (tile {t.index}), "
            "whose pair has no usable element on that side: the layer cannot be realised"
        )
        raise LayerNotRealisableError(msg)
    if scale == "layer":
        s_min = float(ratio.min())
        s = np.full(d_out, s_min)
    else:
        s = ratio.min(axis=0)
    finite = np.isfinite(s)
    if not finite.all():
        # all-zero columns (or layer): any scale realises them; take the cells' own range
        fallback = float(np.minimum(hi, -lo).min())
        s = np.where(finite, s, s[finite].min() if finite.any() else fallback)
    s = fill * s
    target = s[None, :] * u  # bias row: s * b * v_scale / V_b

    res = solve_signed(
        gp,
        gn,
        target,
        leakage_S=None if leakage_S is None else (hp0, hn0),
        exclude=None if exclude is None else (ep0, en0),
        sigma_S=None if sigma_S is None else (sp, sn),
        secondary=secondary,
    )
    zero = u == 0
    mask_pos = np.where(zero[..., None], False, res.mask_pos)
    mask_neg = np.where(zero[..., None], False, res.mask_neg)
    g_pos: np.ndarray = hp0.sum(-1) + np.where(mask_pos, gp - hp0, 0.0).sum(-1)
    g_neg: np.ndarray = hn0.sum(-1) + np.where(mask_neg, gn - hn0, 0.0).sum(-1)
    value: np.ndarray = np.where(zero, base, res.value)
    sigma = None if res.sigma is None else np.where(zero, 0.0, res.sigma)
    if not has_bias:  # the bias row is not on the board: it realises exactly nothing
        value[-1] = 0.0
        g_pos[-1] = 0.0
        g_neg[-1] = 0.0
        if sigma is not None:
            sigma[-1] = 0.0
    side = np.where(target >= 0, hi, -lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(target != 0, np.abs(target) / side, 0.0)
    mapped = MappedLayer(
        name=name,
        plan=plan,
        scale_S=s,
        v_scale_V=v_scale,
        v_max_V=float(v_max_V),
        x_max=float(x_max),
        bias_V=vb,
        target_S=target,
        value_S=value,
        mask_pos=mask_pos,
        mask_neg=mask_neg,
        g_pos_S=g_pos,
        g_neg_S=g_neg,
        sigma_S=sigma,
        reachable=np.where(zero, True, res.reachable),
        range_fraction=frac,
        cell_row=cell_row,
        cell_pair=cell_pair,
        tile_of=tile_of,
        weights=w,
        bias=bvec,
    )
    if max_rel_error is not None and mapped.max_rel_error > max_rel_error:
        err = np.abs(mapped.weight_error)
        i, j = (int(v) for v in np.unravel_index(int(np.argmax(err)), err.shape))
        msg = (
            f"{name}: weight[{i}, {j}] = {float(w[i, j])!r} is realised as "
            f"{float(mapped.weights_eff[i, j])!r}, an error of {mapped.max_rel_error:.3g} of "
            f"max|W| > max_rel_error = {max_rel_error:.3g} with K = {k} elements per cell: the "
            "board cannot realise this layer at the requested precision"
        )
        raise LayerNotRealisableError(msg)
    return mapped
