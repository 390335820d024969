"""The built-in example target: an MLP trained on scikit-learn's bundled digits data set.

The digits data (1797 images of 8x8 pixels, 16 grey levels, 10 classes) ships inside
scikit-learn: nothing is downloaded. Pixels are scaled to [0, 1] (divided by 16) so
that they map directly onto DAC voltages ``V = x * v_max``.

Default architecture 64-16-10, chosen for the default 16 x 16 board (8 differential
column pairs): the hidden layer is exactly two column blocks, its 16 outputs are one row
block of the second layer, so the whole network is 14 tiles (64-32-10 needs 26), while
test accuracy stays within a fraction of a point of 64-32-10 (both about 97 %, see
docs/networks.md). Training is seeded and takes about a second.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from labrss.networks.model import Layer, Network

__all__ = ["DigitsData", "DigitsModel", "load_digits_split", "train_digits_mlp"]

#: Grey levels of the digits images (pixel values 0..16).
PIXEL_MAX = 16.0


@dataclass(frozen=True)
class DigitsData:
    """A seeded, stratified train/test split; inputs in [0, 1], ``(B, 64)``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    seed: int


@dataclass(frozen=True)
class DigitsModel:
    """The trained target network with its data and measured accuracies."""

    network: Network
    data: DigitsData
    train_accuracy: float
    test_accuracy: float
    hidden: tuple[int, ...]
    seed: int


def load_digits_split(seed: int = 0, test_fraction: float = 0.25) -> DigitsData:
    """The digits data set split into train and test sets (stratified, seeded).

    ``test_fraction`` of the 1797 images go to the test set (0.25: 450 images).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        msg = f"test_fraction = {test_fraction!r}: must be in (0, 1)"
        raise ValueError(msg)
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float64) / PIXEL_MAX
    y = np.asarray(bunch.target, dtype=np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return DigitsData(
        x_train=np.ascontiguousarray(x_tr),
        y_train=np.asarray(y_tr),
        x_test=np.ascontiguousarray(x_te),
        y_test=np.asarray(y_te),
        seed=seed,
    )


#: The warning `MLPClassifier.fit` gives instead of raising a KeyboardInterrupt.
_SKLEARN_INTERRUPTED = "Training interrupted by user"


def train_digits_mlp(
    hidden: tuple[int, ...] = (16,),
    seed: int = 0,
    *,
    data: DigitsData | None = None,
    max_iter: int = 500,
    alpha: float = 1e-3,
) -> DigitsModel:
    """Train the example MLP (scikit-learn ``MLPClassifier``, adam, ReLU), seeded.

    Parameters
    ----------
    hidden : hidden layer widths; ``(16,)`` gives 64-16-10.
    seed : seeds both the split (unless ``data`` is given) and the initialisation.
    data : a split from `load_digits_split`; default ``load_digits_split(seed)``.
    max_iter, alpha : epochs and L2 penalty of ``MLPClassifier``.

    The returned network reproduces ``MLPClassifier.predict`` exactly (its output
    layer is the softmax's argument; softmax does not change the argmax).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    if not hidden or any(int(h) < 1 for h in hidden):
        msg = f"hidden = {hidden!r}: give one or more positive layer widths"
        raise ValueError(msg)
    split = load_digits_split(seed) if data is None else data
    clf = MLPClassifier(
        hidden_layer_sizes=tuple(int(h) for h in hidden),
        activation="relu",
        alpha=alpha,
        max_iter=max_iter,
        random_state=seed,
    )
    with warnings.catch_warnings():
        # A fixed epoch budget is the point (seconds, reproducible); adam not having met
        # its own tolerance by then is expected and not an error.
        warnings.simplefilter("ignore", ConvergenceWarning)
        # MLPClassifier catches a Ctrl-C in its epoch loop, warns and returns the network
        # half trained: turned back into the KeyboardInterrupt it was, so that a Ctrl-C
        # stops the command instead of going on with another network than the seed gives.
        warnings.filterwarnings("error", _SKLEARN_INTERRUPTED, UserWarning)
        try:
            clf.fit(split.x_train, split.y_train)
        except UserWarning as exc:
            if _SKLEARN_INTERRUPTED not in str(exc):
                raise
            raise KeyboardInterrupt from None
    layers = [
        Layer(np.array(w, dtype=np.float64), np.array(b, dtype=np.float64))
        for w, b in zip(clf.coefs_, clf.intercepts_, strict=True)
    ]
    sizes = "-".join(str(s) for s in (64, *hidden, 10))
    net = Network(layers, name=f"digits MLP {sizes}")
    return DigitsModel(
        network=net,
        data=split,
        train_accuracy=net.accuracy(split.x_train, split.y_train),
        test_accuracy=net.accuracy(split.x_test, split.y_test),
        hidden=tuple(int(h) for h in hidden),
        seed=seed,
    )
