"""The built-in digits MLP: seeded, reproducible, accurate, equal to scikit-learn's model."""

from __future__ import annotations

import numpy as np
import pytest

from labrss.networks.digits import DigitsModel, load_digits_split, train_digits_mlp


@pytest.fixture(scope="module")
def model() -> DigitsModel:
    return train_digits_mlp()


def test_split_is_seeded_stratified_and_scaled() -> None:
    a, b = load_digits_split(0), load_digits_split(0)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert a.x_train.shape == (1347, 64)
    assert a.x_test.shape == (450, 64)
    assert a.x_train.min() == 0.0
    assert a.x_train.max() == 1.0
    # stratified: each class keeps its share of the test set, 25 % of its images (+-1)
    counts = np.bincount(a.y_test, minlength=10)
    totals = counts + np.bincount(a.y_train, minlength=10)
    assert np.all(np.abs(counts - 0.25 * totals) <= 1)
    assert not np.array_equal(load_digits_split(1).y_test, a.y_test)


def test_default_network_and_measured_accuracy(model: DigitsModel) -> None:
    assert model.network.sizes == (64, 16, 10)
    # measured with seed 0 (docs/networks.md): 436 / 450 test images
    assert model.test_accuracy == pytest.approx(436 / 450)
    assert model.train_accuracy > 0.99


def test_training_is_reproducible(model: DigitsModel) -> None:
    again = train_digits_mlp(data=model.data)
    for a, b in zip(model.network.layers, again.network.layers, strict=True):
        np.testing.assert_array_equal(a.weights, b.weights)
        np.testing.assert_array_equal(a.bias, b.bias)


def test_other_architecture() -> None:
    m = train_digits_mlp(hidden=(8,), seed=1, max_iter=200)
    assert m.network.sizes == (64, 8, 10)
    assert m.test_accuracy > 0.85


def test_bad_hidden() -> None:
    with pytest.raises(ValueError, match="hidden"):
        train_digits_mlp(hidden=())
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits_split(0, 1.5)


def test_ctrl_c_during_training_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """scikit-learn catches a KeyboardInterrupt in MLPClassifier's epoch loop and returns the
    half-trained network with a warning; `train_digits_mlp` raises it again, so that a Ctrl-C
    stops `labrss prune` instead of pruning another network than the seed gives."""
    from sklearn.neural_network import MLPClassifier

    epochs: list[int] = []

    def ctrl_c_at_epoch_3(self: MLPClassifier, *args: object) -> None:
        epochs.append(self.n_iter_)  # called once per epoch, inside sklearn's try block
        if self.n_iter_ == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(MLPClassifier, "_update_no_improvement_count", ctrl_c_at_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train_digits_mlp(hidden=(4,), max_iter=10)
    assert epochs == [1, 2, 3]
