"""Weights -> conductances -> ideal MVM -> outputs: bounds, layout, scale, zeros, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labrss.mapping.conductance import MappedLayer, map_layer
from labrss.mapping.tiling import LayerNotRealisableError

R_ON_OHM = 9.5


def ladder_board(rows: int, cols: int, k: int, seed: int, tol: float = 0.05) -> np.ndarray:
    """Closed-branch conductances (S) of a board like the default preset: a 1.8 ladder
    from 10 kohm, 5 % gaussian tolerance, switch on-resistance in series."""
    rng = np.random.default_rng(seed)
    r = 10e3 * 1.8 ** np.arange(k) * (1 + tol * rng.standard_normal((rows, cols, k)))
    return np.asarray(1.0 / (r + R_ON_OHM))


def _layer(seed: int, d_in: int, d_out: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(d_in, d_out)), 0.3 * rng.normal(size=d_out)


def _ulps(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Float slack of the two computations: ~1e-13 of the sum of |terms|."""
    return np.asarray(1e-13 * (np.abs(x) @ np.abs(w) + np.abs(b) + 1.0))


def test_round_trip_within_the_predicted_rss_bound() -> None:
    g = ladder_board(8, 8, 8, seed=1)
    w, b = _layer(2, 20, 7)
    m = map_layer(w, b, g, v_max_V=1.0, x_max=1.0, leakage_S=np.full_like(g, 1e-11))
    assert m.plan.n_tiles == 3 * 2
    x = np.random.default_rng(3).uniform(0, 1, size=(50, 20))
    y = m.outputs_from_currents(m.ideal_column_currents(x))
    # the ideal MVM on the realised conductances is the programmed layer, exactly
    np.testing.assert_allclose(y, x @ m.weights_eff + m.bias_eff, rtol=0, atol=1e-12)
    # and differs from the target by at most sum |x| |dW| + |db| (the RSS quantisation)
    diff = np.abs(y - (x @ w + b))
    assert np.all(diff <= m.error_bound(x) + _ulps(x, w, b))
    # the bound is tight enough to matter: 16 ladder elements per pair give ~2**-12
    assert m.max_rel_error < 2e-3


@settings(max_examples=25)
@given(
    st.integers(0, 2**31),
    st.integers(1, 12),
    st.integers(1, 6),
    st.integers(2, 6),
    st.sampled_from(["layer", "column"]),
)
def test_round_trip_bound_property(seed: int, d_in: int, d_out: int, k: int, scale: str) -> None:
    g = ladder_board(4, 6, k, seed)
    w, b = _layer(seed + 1, d_in, d_out)
    m = map_layer(w, b, g, v_max_V=0.5, x_max=2.0, scale=scale)  # type: ignore[arg-type]
    x = np.random.default_rng(seed + 2).uniform(-2, 2, size=(8, d_in))
    y = m.outputs_from_currents(m.ideal_column_currents(x))
    assert np.all(np.abs(y - (x @ w + b)) <= m.error_bound(x) + _ulps(x, w, b))
    assert m.all_reachable
    assert m.range_fraction.max() <= 0.95 * (1 + 1e-12)


def test_scale_uses_the_tightest_range() -> None:
    g = ladder_board(8, 8, 6, seed=4)
    w, b = _layer(5, 10, 6)
    lay = map_layer(w, b, g, v_max_V=1.0, x_max=1.0, fill=0.9)
    col = map_layer(w, b, g, v_max_V=1.0, x_max=1.0, fill=0.9, scale="column")
    assert np.all(lay.scale_S == lay.scale_S[0])
    # the binding weight uses exactly `fill` of its pair's range, every other less
    assert lay.range_fraction.max() == pytest.approx(0.9)
    np.testing.assert_allclose(col.range_fraction.max(axis=0), 0.9)
    assert np.all(col.scale_S >= lay.scale_S[0] * (1 - 1e-12))
    assert lay.all_reachable
    assert col.all_reachable


def test_zero_weights_are_all_switches_open() -> None:
    g = ladder_board(4, 4, 5, seed=6)
    w = np.array([[0.0, 1.0], [-0.5, 0.0], [0.25, 0.0]])
    b = np.array([0.0, 0.1])
    m = map_layer(w, b, g, v_max_V=1.0, x_max=1.0)
    zero = np.vstack([w, b]) == 0
    assert not m.mask_pos[zero].any()
    assert not m.mask_neg[zero].any()
    assert np.all(m.weights_eff[w == 0] == 0.0)  # exact zero without leakage
    assert m.bias_eff[0] == 0.0
    leak = np.full_like(g, 2e-11)
    leak[0, 0] = 5e-11  # row 0: column 0 (the + side of pair 0) leaks more
    ml = map_layer(w, b, g, v_max_V=1.0, x_max=1.0, leakage_S=leak)
    # weight (1, 1) sits on row 1, pair 1: equal leakage on both sides cancels
    assert ml.value_S[1, 1] == pytest.approx(0.0, abs=1e-25)
    # w[0, 0] = 0 on row 0, pair 0: all open leaves 5 elements x (5e-11 - 2e-11) S
    assert ml.value_S[0, 0] == pytest.approx(5 * 3e-11, rel=1e-9)


def test_board_layout_of_a_tile() -> None:
    g = ladder_board(4, 6, 4, seed=7)
    w, b = _layer(8, 3, 3)
    m = map_layer(w, b, g, v_max_V=1.0, x_max=1.0)
    assert m.plan.n_tiles == 1
    gt = m.tile_conductances(0)
    masks = m.tile_masks(0)
    assert gt.shape == (4, 6)
    # each cell's conductance is the sum of its closed branches (no leakage given)
    np.testing.assert_allclose(gt, np.where(masks, g, 0.0).sum(-1), rtol=1e-15)
    # G+ - G- on columns 2p, 2p+1 is the realised value; bias on the last row
    np.testing.assert_allclose(gt[:, 0::2] - gt[:, 1::2], m.value_S, rtol=1e-12, atol=0)
    volts = m.input_voltages(np.array([[0.1, -0.2, 0.3]]))[0]
    np.testing.assert_array_equal(volts, [[0.1, -0.2, 0.3, 1.0]])
    peak = max(float((np.array([1.0, 1.0, 1.0, 1.0]) @ gt).max()), 0.0)
    assert m.max_column_current_A() == pytest.approx(peak)


def test_bias_row_voltage() -> None:
    g = ladder_board(8, 8, 8, seed=9)
    w, b = _layer(10, 5, 4)
    m = map_layer(w, b, g, v_max_V=2.0, x_max=4.0, bias_V=0.5)
    assert m.v_scale_V == 0.5
    v = m.input_voltages(np.full((1, 5), 4.0))[0]
    np.testing.assert_array_equal(v, [[2.0, 2.0, 2.0, 2.0, 2.0, 0.5]])
    # the bias pair realises s * v_scale * b / V_b = s * b
    np.testing.assert_allclose(m.target_S[-1], m.scale_S * b)
    assert np.abs(m.bias_error).max() < 1e-3 * np.abs(b).max()
    nb = map_layer(w, None, g, v_max_V=2.0, x_max=4.0)
    assert not nb.plan.has_bias
    assert np.all(nb.bias_eff == 0.0)
    x = np.random.default_rng(0).uniform(0, 4, size=(3, 5))
    y = nb.outputs_from_currents(nb.ideal_column_currents(x))
    assert np.all(np.abs(y - x @ w) <= nb.error_bound(x) + _ulps(x, w, np.zeros(4)))


def test_predicted_sigma_matches_element_noise() -> None:
    """Realised conductances drawn around the calibration (std sigma_S per element):
    (true - predicted) / predicted sigma is standard normal over the weights. With
    N = 320 weights the sample std is within 1 +- 0.04 (1 sigma); we allow +-0.2."""
    g = ladder_board(16, 16, 8, seed=11)
    sigma = 1e-4 * g
    w, b = _layer(12, 15, 20)
    m = map_layer(w, b, g, v_max_V=1.0, x_max=1.0, sigma_S=sigma)
    assert m.sigma_S is not None
    assert m.weight_sigma is not None
    # predicted: sqrt(sum of closed elements' variances) / s
    rr, cc = m.cell_row, 2 * m.cell_pair
    var = (
        np.where(m.mask_pos, sigma[rr, cc] ** 2, 0)
        + np.where(m.mask_neg, sigma[rr, cc + 1] ** 2, 0)
    ).sum(-1)
    np.testing.assert_allclose(m.sigma_S, np.sqrt(var), rtol=1e-9)
    true_g = g + sigma * np.random.default_rng(13).standard_normal(g.shape)
    true_val = np.where(m.mask_pos, true_g[rr, cc], 0).sum(-1) - np.where(
        m.mask_neg, true_g[rr, cc + 1], 0
    ).sum(-1)
    live = m.sigma_S > 0
    z = (true_val - m.value_S)[live] / m.sigma_S[live]
    assert 0.8 <= np.std(z) <= 1.2
    assert abs(np.mean(z)) < 0.2


def test_bad_inputs_name_the_layer_and_value() -> None:
    g = ladder_board(4, 4, 4, seed=14)
    w, b = _layer(15, 3, 2)
    bad = w.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"fc1: weight\[2, 1\] = nan"):
        map_layer(bad, b, g, v_max_V=1.0, x_max=1.0, name="fc1")
    m = map_layer(w, b, g, v_max_V=1.0, x_max=1.0, name="fc1")
    with pytest.raises(ValueError, match=r"fc1: input\[0, 2\] = 1.5 is beyond x_max = 1.0"):
        m.input_voltages(np.array([[0.0, 0.5, 1.5]]))
    excl = np.zeros(g.shape, dtype=bool)
    excl[1, 2, :] = True  # the + column of pair 1, row 1: every element faulty
    w2 = np.abs(w)
    with pytest.raises(
        LayerNotRealisableError, match=r"fc1: weight\[1, 1\] = .* board row 1, columns 2/3"
    ):
        map_layer(w2, b, g, v_max_V=1.0, x_max=1.0, exclude=excl, name="fc1")
    cases: list[tuple[dict[str, object], str]] = [
        ({"v_max_V": 0.0}, "v_max_V"),
        ({"bias_V": 2.0}, "bias_V"),
        ({"fill": 1.5}, "fill"),
        ({"scale": "row"}, "scale"),
    ]
    for kwargs, pattern in cases:
        args: dict[str, object] = {"v_max_V": 1.0, "x_max": 1.0, **kwargs}
        with pytest.raises(ValueError, match=pattern):
            map_layer(w, b, g, name="fc1", **args)  # type: ignore[arg-type]


def test_precision_checks_before_and_after_solving() -> None:
    g = ladder_board(8, 8, 8, seed=16)
    w, b = _layer(17, 6, 4)
    # a priori: 8 elements per cell can never guarantee 1e-6 (bound 1/(4**8 - 1))
    with pytest.raises(LayerNotRealisableError, match=r"fc2: .* K = 8"):
        map_layer(w, b, g, v_max_V=1.0, x_max=1.0, max_rel_error=1e-6, name="fc2")
    # a posteriori: the calibrated elements reach ~1e-4, not 2e-5
    ok: MappedLayer = map_layer(w, b, g, v_max_V=1.0, x_max=1.0, max_rel_error=1e-2, name="fc2")
    assert ok.max_rel_error < 1e-2
    with pytest.raises(
        LayerNotRealisableError, match=r"fc2: weight\[\d, \d\] = .* error of .* > max_rel_error"
    ):
        map_layer(w, b, g, v_max_V=1.0, x_max=1.0, max_rel_error=2e-5, name="fc2")


def test_faulty_elements_are_never_closed() -> None:
    g = ladder_board(8, 8, 6, seed=18)
    excl = np.random.default_rng(19).random(g.shape) < 0.15
    w, b = _layer(20, 7, 4)
    m = map_layer(w, b, g, v_max_V=1.0, x_max=1.0, exclude=excl)
    rr, cc = m.cell_row, 2 * m.cell_pair
    assert not (m.mask_pos & excl[rr, cc]).any()
    assert not (m.mask_neg & excl[rr, cc + 1]).any()
    assert m.all_reachable
    x = np.random.default_rng(21).uniform(0, 1, size=(10, 7))
    y = m.outputs_from_currents(m.ideal_column_currents(x))
    assert np.all(np.abs(y - (x @ w + b)) <= m.error_bound(x) + _ulps(x, w, b))


def test_digits_network_through_the_tiles() -> None:
    """The digits MLP mapped onto a default-like 16 x 16 board of 8 elements per cell,
    run tile by tile with the ideal MVM (ReLU digital between layers). Quantisation
    only: measured median relative L2 1.6e-4 of the target's scores (docs/networks.md);
    16 elements per pair give ~2**-12 of the range per weight, so 1e-3 is the bound."""
    from labrss.metrics.mvm import compare
    from labrss.networks.digits import train_digits_mlp

    model = train_digits_mlp()
    g = 1.0 / (
        10e3
        * 1.8 ** np.arange(8)
        * (1 + 0.05 * np.random.default_rng(108).standard_normal((16, 16, 8)))
        + 9.5
    )
    acts = model.network.activations(model.data.x_train)
    x = model.data.x_test
    y_target, y_board = x, x
    tiles = 0
    for index, lay in enumerate(model.network.layers):
        m = map_layer(
            lay.weights,
            lay.bias,
            g,
            v_max_V=1.0,
            x_max=1.05 * float(np.abs(acts[index]).max()),
            sigma_S=1e-4 * g,
            name=f"layer {index}",
        )
        tiles += m.plan.n_tiles
        y_target = lay(y_target)
        y_board = m.outputs_from_currents(m.ideal_column_currents(np.clip(y_board, 0, m.x_max)))
        if index < len(model.network.layers) - 1:
            y_target, y_board = np.maximum(y_target, 0), np.maximum(y_board, 0)
    assert tiles == 14
    res = compare(y_board, y_target, model.data.y_test)
    assert res.median_rel_l2 < 1e-3
    assert res.argmax_agreement == 1.0
    assert res.accuracy_analog == res.accuracy_digital == model.test_accuracy
