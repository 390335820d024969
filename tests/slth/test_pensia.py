"""Pensia et al. SLTH pruning: the pruned random network itself, its report, optimality."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from labrss.networks.digits import DigitsModel, train_digits_mlp
from labrss.networks.model import Network
from labrss.slth.pensia import SLTHResult, prune_to_target


@pytest.fixture(scope="module")
def digits() -> DigitsModel:
    return train_digits_mlp()


@pytest.fixture(scope="module")
def digits_pruned(digits: DigitsModel) -> SLTHResult:
    return prune_to_target(digits.network, n=40, seed=0)


def _random_target(seed: int, sizes: tuple[int, ...]) -> Network:
    rng = np.random.default_rng(seed)
    return Network(
        [(rng.normal(size=(a, b)), 0.3 * rng.normal(size=b)) for a, b in itertools.pairwise(sizes)]
    )


def test_pruned_network_accuracy_within_one_point(
    digits: DigitsModel, digits_pruned: SLTHResult
) -> None:
    """Acceptance (issue 6): the pruned network's OWN test accuracy, within 1 point."""
    data = digits.data
    acc = digits_pruned.network.accuracy(data.x_test, data.y_test)
    assert abs(acc - digits.test_accuracy) <= 0.01
    # measured (docs/networks.md): identical accuracy, 436 / 450
    assert acc == pytest.approx(436 / 450)
    # the pruned network is the random one with weights removed, not the target
    assert len(digits_pruned.network.layers) == 2 * len(digits.network.layers)
    agree = np.mean(
        digits_pruned.network.predict(data.x_test) == digits.network.predict(data.x_test)
    )
    assert agree >= 0.99


def test_report_numbers(digits_pruned: SLTHResult) -> None:
    r0, r1 = digits_pruned.layers
    assert (r0.d_in, r0.d_out, r1.d_in, r1.d_out) == (64, 16, 16, 10)
    # (d_in + 1) n first-layer weights (incl. the bias units) and (d_in + 1) n d_out second
    assert r0.total_weights == 65 * 40 * 17
    assert r1.total_weights == 17 * 40 * 11
    assert r0.target_parameters == 64 * 16 + 16
    assert r0.overparam_total == pytest.approx(r0.total_weights / r0.target_parameters)
    assert r0.overparam_kept == pytest.approx(r0.kept_weights / r0.target_parameters)
    kept = sum(int(m.sum()) for m in digits_pruned.weight_masks) + sum(
        int(m.sum()) for m in digits_pruned.bias_masks
    )
    assert kept == digits_pruned.kept_weights
    # about 20 products per weight and ReLU side (n = 40, half the a_jk positive)
    for r in (r0, r1):
        assert 15 <= r.products_per_weight_mean <= 25
        assert r.n_unreachable == 0
    # measured with seed 0 (docs/networks.md): max 6.2e-3 / 2.1e-2 of max|W|, RMS
    # 3.4e-4 / 1.2e-3. Layer 1's scale is lowered by an input with few units of one
    # sign (90 % of its range), which coarsens its worst weight. RSS typical error with
    # ~20 elements is far smaller (~2**-15 of the range): the worst case is the tail.
    assert r0.max_error_rel < 0.01
    assert r0.rms_error_rel < 5e-4
    assert r1.max_error_rel < 0.03
    assert r1.rms_error_rel < 2e-3


def test_pruned_equals_effective_network(digits: DigitsModel, digits_pruned: SLTHResult) -> None:
    """For x >= 0 the pruned random net computes exactly the effective target, scaled."""
    x = digits.data.x_test[:64]
    got = digits_pruned.network.forward(x) * digits_pruned.output_scale
    want = digits_pruned.effective.forward(x)
    # same sums in another order: a few ulps of the largest partial sum
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())
    # and the effective weights are the target's up to the reported error
    for lay_e, lay_t, rep in zip(
        digits_pruned.effective.layers, digits.network.layers, digits_pruned.layers, strict=True
    ):
        err = np.abs(lay_e.weights - lay_t.weights).max() / np.abs(lay_t.weights).max()
        assert err <= rep.max_error_rel


def test_masks_only_remove_random_weights(digits_pruned: SLTHResult) -> None:
    for pruned, rand, wm, bm in zip(
        digits_pruned.network.layers,
        digits_pruned.random_network.layers,
        digits_pruned.weight_masks,
        digits_pruned.bias_masks,
        strict=True,
    ):
        np.testing.assert_array_equal(pruned.weights, np.where(wm, rand.weights, 0.0))
        np.testing.assert_array_equal(pruned.bias, np.where(bm, rand.bias, 0.0))
        assert np.abs(rand.weights).max() <= 1.0
    first = digits_pruned.random_network.layers[0].weights
    # each hidden unit listens to one input (or none: the bias units)
    assert np.all((first != 0).sum(axis=0) <= 1)


def test_subsets_are_the_brute_force_optimum() -> None:
    """Both ReLU sides of every weight: the kept products are the best subset of the
    products of that side (all 2**m subsets enumerated)."""
    target = _random_target(3, (2, 3))
    n = 8
    res = prune_to_target(target, n=n, seed=5)
    c = res.layers[0].scale
    first, second = res.random_network.layers
    kept = res.weight_masks[1]
    w = target.layers[0].weights
    for j in range(2):
        a = first.weights[j, j * n : (j + 1) * n]
        for i in range(3):
            b = second.weights[j * n : (j + 1) * n, i]
            for sign in (1.0, -1.0):  # a > 0 carries +W_ij, a < 0 carries -W_ij
                units = np.flatnonzero(sign * a > 0)
                prods = np.abs(a[units]) * b[units]
                realised = float((prods * kept[j * n + units, i]).sum())
                sums = np.array(
                    [
                        prods[list(s)].sum()
                        for r in range(len(units) + 1)
                        for s in itertools.combinations(range(len(units)), r)
                    ]
                )
                goal = sign * c * w[j, i]
                best = np.abs(sums - goal).min()
                assert abs(realised - goal) == pytest.approx(best, abs=1e-12)
            eff = res.effective.layers[0].weights[j, i]
            np.testing.assert_allclose(
                c * eff, (np.abs(a) * b * kept[j * n : (j + 1) * n, i] * (a > 0)).sum(), atol=1e-15
            )


def test_negative_inputs_use_the_other_relu_side() -> None:
    target = _random_target(4, (5, 4))
    res = prune_to_target(target, n=32, seed=1)
    x = np.random.default_rng(2).uniform(-1, 1, size=(200, 5))
    got = res.network.forward(x) * res.output_scale
    want = target.forward(x)
    rep = res.layers[0]
    w_abs = np.abs(target.layers[0].weights).max()
    b_abs = np.abs(target.layers[0].bias).max()
    bound = (
        np.abs(x).sum(1, keepdims=True) * rep.max_error_rel * w_abs + rep.bias_max_error_rel * b_abs
    )
    assert np.all(np.abs(got - want) <= bound + 1e-12)
    # the bound is not vacuous: errors of 2**-12-ish with ~16 products per side
    assert rep.max_error_rel < 0.05


def test_error_shrinks_with_n() -> None:
    """About one bit per product (RSS): 6 more products per side cut the median error by
    ~2**6; we ask for 8x to leave room for the sqrt(n) factor and thin inputs."""
    target = _random_target(7, (12, 8))
    errs = []
    for n in (12, 24):
        res = prune_to_target(target, n=n, seed=0)
        eff = res.effective.layers[0].weights
        errs.append(np.median(np.abs(eff - target.layers[0].weights)))
    assert errs[1] < errs[0] / 8


def test_eps_rel_keeps_fewer_weights_within_eps() -> None:
    target = _random_target(8, (10, 6, 3))
    best = prune_to_target(target, n=32, seed=2)
    sparse = prune_to_target(target, n=32, seed=2, eps_rel=0.01)
    assert sparse.kept_weights < 0.6 * best.kept_weights
    for rb, rs in zip(best.layers, sparse.layers, strict=True):
        assert rs.fraction_within_eps is not None
        assert rs.eps_rel == 0.01
        # every subset within max(eps, optimum): the tolerance in the normalised units
        # is eps_rel * w_max and max|W'| = w_max, so relative errors stay <= eps_rel
        # wherever the optimum itself was within eps
        if rb.max_error_rel <= 0.01:
            assert rs.fraction_within_eps == 1.0
    assert best.layers[0].fraction_within_eps is None


def test_seeded_and_validated() -> None:
    target = _random_target(9, (3, 2))
    a = prune_to_target(target, n=10, seed=4)
    b = prune_to_target(target, n=10, seed=4)
    np.testing.assert_array_equal(a.network.layers[1].weights, b.network.layers[1].weights)
    c = prune_to_target(target, n=10, seed=5)
    assert not np.array_equal(
        a.random_network.layers[1].weights, c.random_network.layers[1].weights
    )
    with pytest.raises(ValueError, match="n = 0"):
        prune_to_target(target, n=0)
    with pytest.raises(ValueError, match="w_max"):
        prune_to_target(target, w_max=-1.0)
    with pytest.raises(ValueError, match="eps_rel"):
        prune_to_target(target, eps_rel=float("nan"))
