"""Tiling: a layer larger than the board runs tile by tile, outputs summed digitally.

A layer ``y = x @ W + b`` (``W``: ``(d_in, d_out)``) with its bias as one extra row
(driven at a fixed voltage, see `labrss.mapping.conductance`) has ``d_in + 1`` logical
rows and ``d_out`` outputs, each output a differential column pair. A board of ``R`` rows
and ``C`` columns holds ``R`` rows and ``C // 2`` pairs at a time, so the layer is cut
into row blocks of at most ``R`` rows and column blocks of at most ``C // 2`` outputs.
Blocks are balanced (sizes differ by at most one) so that no tile carries a nearly
empty block and column currents stay alike. The bias row is the last logical row: it
falls in the last row block, hence in exactly one tile per column block, and the digital
sum over row blocks adds it once.

Each tile is placed at the board's origin: its inputs on rows ``0 .. n_rows - 1`` (the
bias, if the tile has it, on the last of them), output ``o`` on columns
``2 (o - out_start)`` (positive) and ``2 (o - out_start) + 1`` (negative).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "LayerNotRealisableError",
    "Tile",
    "TilePlan",
    "check_precision",
    "plan_tiles",
]


class LayerNotRealisableError(ValueError):
    """A layer the board cannot realise even with tiling (the message names the layer)."""


@dataclass(frozen=True)
class Tile:
    """One board-sized piece of a layer.

    Attributes
    ----------
    index : position in the plan (row-block major).
    in_start, in_stop : the layer inputs on board rows ``0 .. in_stop - in_start - 1``.
    out_start, out_stop : the layer outputs on column pairs ``0 .. out_stop - out_start - 1``.
    has_bias : whether the bias row is on board row ``in_stop - in_start``.
    """

    index: int
    in_start: int
    in_stop: int
    out_start: int
    out_stop: int
    has_bias: bool

    @property
    def n_inputs(self) -> int:
        """Layer inputs in this tile."""
        return self.in_stop - self.in_start

    @property
    def n_rows(self) -> int:
        """Board rows used (inputs plus the bias row)."""
        return self.n_inputs + int(self.has_bias)

    @property
    def n_pairs(self) -> int:
        """Column pairs used (= outputs of this tile)."""
        return self.out_stop - self.out_start

    @property
    def n_columns(self) -> int:
        """Board columns used (two per output)."""
        return 2 * self.n_pairs

    @property
    def bias_row(self) -> int | None:
        """Board row of the bias, or None."""
        return self.n_inputs if self.has_bias else None


@dataclass(frozen=True)
class TilePlan:
    """The tiles of one layer on an ``board_rows`` x ``board_cols`` board."""

    layer: str
    d_in: int
    d_out: int
    has_bias: bool
    board_rows: int
    board_cols: int
    n_row_blocks: int
    n_col_blocks: int
    tiles: tuple[Tile, ...]

    @property
    def n_tiles(self) -> int:
        """Number of tiles (program-run passes)."""
        return len(self.tiles)

    def logical_rows(self, tile: Tile) -> np.ndarray:
        """Logical row indices of a tile's board rows (``d_in`` is the bias row)."""
        rows = np.arange(tile.in_start, tile.in_stop)
        if tile.has_bias:
            rows = np.append(rows, self.d_in)
        return rows

    def blocks(self, weights: np.ndarray, bias: np.ndarray | None = None) -> list[np.ndarray]:
        """Each tile's piece of the augmented matrix ``[W; b]``, ``(n_rows, n_pairs)``."""
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (self.d_in, self.d_out):
            msg = f"{self.layer}: weights shape {w.shape}, plan is for ({self.d_in}, {self.d_out})"
            raise ValueError(msg)
        aug = w
        if self.has_bias:
            b = np.zeros(self.d_out) if bias is None else np.asarray(bias, dtype=np.float64)
            aug = np.vstack([w, b[None, :]])
        return [aug[self.logical_rows(t)][:, t.out_start : t.out_stop] for t in self.tiles]

    def tile_inputs(self, x: np.ndarray, bias_input: float = 1.0) -> list[np.ndarray]:
        """Each tile's row inputs ``(B, n_rows)``, the bias row at ``bias_input``."""
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != self.d_in:
            msg = f"{self.layer}: inputs shape {arr.shape}, expected (B, {self.d_in})"
            raise ValueError(msg)
        out = []
        for t in self.tiles:
            part = arr[:, t.in_start : t.in_stop]
            if t.has_bias:
                part = np.hstack([part, np.full((arr.shape[0], 1), bias_input)])
            out.append(part)
        return out

    def accumulate(self, partial_outputs: Sequence[np.ndarray]) -> np.ndarray:
        """Sum the tiles' outputs ``(B, n_pairs)`` into the layer's ``(B, d_out)``.

        Row blocks of the same column block are added in plan order (digital
        accumulation); ``O(B d_out n_row_blocks)``.
        """
        if len(partial_outputs) != self.n_tiles:
            msg = f"{self.layer}: {len(partial_outputs)} partial outputs for {self.n_tiles} tiles"
            raise ValueError(msg)
        first = np.asarray(partial_outputs[0], dtype=np.float64)
        batch = first.shape[0]
        y = np.zeros((batch, self.d_out))
        for t, part in zip(self.tiles, partial_outputs, strict=True):
            p = np.asarray(part, dtype=np.float64)
            if p.shape != (batch, t.n_pairs):
                msg = (
                    f"{self.layer}: tile {t.index} output shape {p.shape}, "
                    f"expected ({batch}, {t.n_pairs})"
                )
                raise ValueError(msg)
            y[:, t.out_start : t.out_stop] += p
        return y


def _balanced(total: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ranges covering ``0..total`` with sizes differing by <= 1."""
    edges = [(i * total) // parts for i in range(parts + 1)]
    return [(edges[i], edges[i + 1]) for i in range(parts)]


def plan_tiles(
    d_in: int,
    d_out: int,
    board_rows: int,
    board_cols: int,
    *,
    bias: bool = True,
    layer: str = "layer",
) -> TilePlan:
    """Cut a ``(d_in, d_out)`` layer (plus its bias row) into board-sized tiles.

    ``n_row_blocks = ceil((d_in + bias) / board_rows)``, ``n_col_blocks =
    ceil(d_out / (board_cols // 2))``; tiles are row-block major. ``O(tiles)``.

    Raises
    ------
    LayerNotRealisableError
        Empty layer, or a board without a column pair or a row.
    """
    if d_in < 1 or d_out < 1:
        msg = f"{layer}: shape ({d_in}, {d_out}) has no weights to map"
        raise LayerNotRealisableError(msg)
    if board_rows < 1 or board_cols < 2:
        msg = (
            f"{layer}: a {board_rows} x {board_cols} board cannot hold a tile: signed weights "
            "need at least one row and one differential column pair (2 columns)"
        )
        raise LayerNotRealisableError(msg)
    pairs = board_cols // 2
    total_rows = d_in + int(bias)
    n_rb = math.ceil(total_rows / board_rows)
    n_cb = math.ceil(d_out / pairs)
    row_ranges = _balanced(total_rows, n_rb)
    col_ranges = _balanced(d_out, n_cb)
    tiles: list[Tile] = []
    for rb, (r0, r1) in enumerate(row_ranges):
        has_bias = bias and rb == n_rb - 1
        in_stop = min(r1, d_in)
        for c0, c1 in col_ranges:
            tiles.append(
                Tile(
                    index=len(tiles),
                    in_start=r0,
                    in_stop=in_stop,
                    out_start=c0,
                    out_stop=c1,
                    has_bias=has_bias,
                )
            )
    return TilePlan(
        layer=layer,
        d_in=d_in,
        d_out=d_out,
        has_bias=bias,
        board_rows=board_rows,
        board_cols=board_cols,
        n_row_blocks=n_rb,
        n_col_blocks=n_cb,
        tiles=tuple(tiles),
    )


def check_precision(layer: str, elements_per_cell: int, max_rel_error: float) -> None:
    """Refuse a precision that ``elements_per_cell`` elements per cell can never guarantee.

    A differential pair of two banks of ``K`` elements realises at most ``N = 4**K``
    distinct values of ``G+ - G-``; ``N`` points leave some target of ``[-A, A]`` at
    least ``2A / (2 (N - 1))`` from all of them, so the worst-case error relative to the
    largest weight ``A`` is at least ``1 / (4**K - 1)`` whatever the element values.
    This is the a-priori test; `labrss.mapping.conductance.map_layer` checks the
    errors actually reached with the calibrated elements.

    Raises
    ------
    LayerNotRealisableError
        ``max_rel_error < 1 / (4**K - 1)``, naming the layer, K and the bound.
    """
    if elements_per_cell < 1:
        msg = f"{layer}: {elements_per_cell} elements per cell: no conductance can be realised"
        raise LayerNotRealisableError(msg)
    if not (np.isfinite(max_rel_error) and max_rel_error > 0):
        msg = f"{layer}: max_rel_error = {max_rel_error!r}: must be finite and > 0"
        raise ValueError(msg)
    bound = 1.0 / (4.0**elements_per_cell - 1.0)
    if max_rel_error < bound:
        need = math.ceil(math.log(1.0 / max_rel_error + 1.0, 4))
        msg = (
            f"{layer}: a relative weight error of {max_rel_error:.3g} cannot be guaranteed with "
            f"K = {elements_per_cell} elements per cell: a differential pair has at most "
            f"4**K = {4**elements_per_cell} values, worst case >= {bound:.3g} of the largest "
            f"weight; it needs K >= {need}"
        )
        raise LayerNotRealisableError(msg)
