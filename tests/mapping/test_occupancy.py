"""Board occupancy of pruned matrices: zero rows/columns free space, empty tiles are skipped."""

from __future__ import annotations

import numpy as np

from labrss.mapping.occupancy import matrix_occupancy


def test_dense_matrix_fills_its_plan() -> None:
    w = np.ones((30, 10))
    occ = matrix_occupancy(w, np.ones(10), 8, 8)
    # 31 rows (bias included) in 4 row blocks x 3 column blocks (10 outputs on 4 pairs)
    assert occ.tiles == 12
    assert occ.cells == 31 * 2 * 10
    assert occ.weights == 31 * 10


def test_zero_rows_columns_and_empty_tiles_are_free() -> None:
    w = np.zeros((30, 10))
    w[:8, :4] = 1.0  # a block-diagonal ticket: two dense blocks
    w[20:28, 6:10] = 2.0
    occ = matrix_occupancy(w, np.zeros(10), 8, 8)
    # 16 rows x 8 outputs remain: 2 row blocks x 2 column blocks, the 2 off-diagonal empty
    assert (occ.rows, occ.outputs) == (16, 8)
    assert occ.tiles == 2
    assert occ.cells == 2 * 8 * 8
    # the same weights scattered (an unstructured ticket) need every tile
    rng = np.random.default_rng(0)
    scattered = np.zeros((30, 10))
    scattered.ravel()[rng.choice(300, size=64, replace=False)] = 1.0
    assert matrix_occupancy(scattered, np.zeros(10), 8, 8).tiles > 2
    assert matrix_occupancy(np.zeros((3, 3)), np.zeros(3), 8, 8).tiles == 0
