"""Tiling plans: coverage, the bias row once per output block, exact digital reassembly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labrss.mapping.tiling import LayerNotRealisableError, check_precision, plan_tiles


def test_digits_layers_on_the_default_board() -> None:
    first = plan_tiles(64, 16, 16, 16, layer="layer 0")
    assert (first.n_row_blocks, first.n_col_blocks, first.n_tiles) == (5, 2, 10)
    assert {t.n_rows for t in first.tiles} == {13}
    assert {t.n_pairs for t in first.tiles} == {8}
    second = plan_tiles(16, 10, 16, 16)
    assert [(t.n_inputs, t.has_bias, t.n_pairs) for t in second.tiles] == [
        (8, False, 5),
        (8, False, 5),
        (8, True, 5),
        (8, True, 5),
    ]
    assert second.tiles[2].bias_row == 8


def test_layer_that_fits_is_one_tile() -> None:
    plan = plan_tiles(7, 4, 8, 8)
    assert plan.n_tiles == 1
    t = plan.tiles[0]
    assert (t.n_rows, t.n_columns, t.bias_row) == (8, 8, 7)
    assert plan_tiles(8, 4, 8, 8, bias=False).n_tiles == 1
    assert plan_tiles(8, 4, 8, 8).n_tiles == 2  # 9 rows with the bias


def test_reassembly_is_exact_on_an_8x8_board() -> None:
    """Integer-valued data: every partial sum is exact in float64, so equality is exact."""
    rng = np.random.default_rng(0)
    w = rng.integers(-50, 50, size=(30, 13)).astype(float)
    b = rng.integers(-50, 50, size=13).astype(float)
    x = rng.integers(-9, 10, size=(6, 30)).astype(float)
    plan = plan_tiles(30, 13, 8, 8)
    assert plan.n_tiles == 4 * 4
    parts = [xi @ wi for xi, wi in zip(plan.tile_inputs(x), plan.blocks(w, b), strict=True)]
    np.testing.assert_array_equal(plan.accumulate(parts), x @ w + b)


@given(
    st.integers(1, 40),
    st.integers(1, 25),
    st.integers(1, 9),
    st.integers(2, 10),
    st.booleans(),
)
def test_plan_covers_every_weight_once(
    d_in: int, d_out: int, rows: int, cols: int, bias: bool
) -> None:
    plan = plan_tiles(d_in, d_out, rows, cols, bias=bias)
    count = np.zeros((d_in + 1, d_out), dtype=int)
    for t in plan.tiles:
        assert 1 <= t.n_rows <= rows
        assert 1 <= t.n_pairs <= cols // 2
        count[np.ix_(plan.logical_rows(t), np.arange(t.out_start, t.out_stop))] += 1
    np.testing.assert_array_equal(count[:d_in], 1)
    np.testing.assert_array_equal(count[d_in], 1 if bias else 0)
    # balanced blocks: sizes differ by at most one
    sizes_r = {t.n_rows for t in plan.tiles}
    sizes_c = {t.n_pairs for t in plan.tiles}
    assert max(sizes_r) - min(sizes_r) <= 1
    assert max(sizes_c) - min(sizes_c) <= 1
    assert plan.n_tiles == plan.n_row_blocks * plan.n_col_blocks
    assert plan.n_row_blocks == -(-(d_in + bias) // rows)


def test_accumulate_checks_shapes() -> None:
    plan = plan_tiles(10, 6, 4, 4)
    with pytest.raises(ValueError, match="partial outputs"):
        plan.accumulate([np.zeros((1, 2))])
    parts = [np.zeros((1, t.n_pairs)) for t in plan.tiles]
    parts[3] = np.zeros((1, 5))
    with pytest.raises(ValueError, match="tile 3 output shape"):
        plan.accumulate(parts)
    with pytest.raises(ValueError, match="weights shape"):
        plan.blocks(np.zeros((3, 3)))


def test_unrealisable_layers_name_the_layer() -> None:
    with pytest.raises(LayerNotRealisableError, match="fc2: a 4 x 1 board"):
        plan_tiles(3, 3, 4, 1, layer="fc2")
    with pytest.raises(LayerNotRealisableError, match=r"fc3: shape \(0, 3\)"):
        plan_tiles(0, 3, 4, 4, layer="fc3")


def test_precision_bound() -> None:
    # K = 4: 4**4 = 256 values, worst case >= 1/255 of the largest weight
    check_precision("fc1", 4, 1 / 255)
    with pytest.raises(LayerNotRealisableError, match=r"fc1: .*K = 4 .* it needs K >= 5"):
        check_precision("fc1", 4, 1e-3)
    with pytest.raises(LayerNotRealisableError, match="0 elements per cell"):
        check_precision("fc1", 0, 0.1)
    with pytest.raises(ValueError, match="max_rel_error"):
        check_precision("fc1", 4, -1.0)
