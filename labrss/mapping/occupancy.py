"""How much of a board a (pruned) network needs: tiles and cells per matrix layer (pure).

A pruned weight inside a tile still occupies its cell (its switches stay open, but the
cell is there); only an input with no weight left (a zero row) or an output with none (a
zero column) frees board space, and a tile whose block holds no weight at all need not
be programmed. `matrix_occupancy` therefore drops all-zero rows and columns, cuts the
rest into tiles with `labrss.mapping.tiling.plan_tiles` (bias row included when any
bias is non-zero) and counts the tiles holding at least one weight and the cells of
those tiles (rows x 2 columns per output pair). Structured pruning removes whole units,
i.e. whole rows and columns: its tickets collapse into fewer, denser tiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from labrss.mapping.tiling import plan_tiles

__all__ = ["Occupancy", "matrix_occupancy"]


@dataclass(frozen=True)
class Occupancy:
    """Board space of one matrix: tiles and cells to program, non-zero weights."""

    rows: int
    outputs: int
    tiles: int
    cells: int
    weights: int

    def __add__(self, other: Occupancy) -> Occupancy:
        return Occupancy(
            self.rows + other.rows,
            self.outputs + other.outputs,
            self.tiles + other.tiles,
            self.cells + other.cells,
            self.weights + other.weights,
        )


def matrix_occupancy(
    weights: npt.ArrayLike, bias: npt.ArrayLike, board_rows: int, board_cols: int
) -> Occupancy:
    """Tiles and cells a ``(d_in, d_out)`` matrix and its bias need (module docstring)."""
    w = np.asarray(weights, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    has_bias = bool(np.any(b != 0))
    aug = np.vstack([w, b[None, :]]) if has_bias else w
    keep_r = np.flatnonzero((aug != 0).any(axis=1))
    keep_c = np.flatnonzero((aug != 0).any(axis=0))
    if keep_r.size == 0 or keep_c.size == 0:
        return Occupancy(0, 0, 0, 0, 0)
    sub = aug[np.ix_(keep_r, keep_c)]
    bias_kept = has_bias and keep_r[-1] == aug.shape[0] - 1
    d_in = sub.shape[0] - int(bias_kept)
    if d_in < 1:  # only the bias row is left
        d_in, bias_kept = sub.shape[0], False
    plan = plan_tiles(d_in, sub.shape[1], board_rows, board_cols, bias=bias_kept)
    tiles = cells = 0
    for t in plan.tiles:
        rows = plan.logical_rows(t)
        if np.any(sub[rows][:, t.out_start : t.out_stop] != 0):
            tiles += 1
            cells += t.n_rows * t.n_columns
    return Occupancy(int(sub.shape[0]), int(sub.shape[1]), tiles, cells, int(np.count_nonzero(aug)))
