"""MNIST-1D (Greydanus 2020): 1-D signals of 40 samples, 10 classes, generated offline.

`load_mnist1d` calls ``mnist1d.data.make_dataset`` with the package's default arguments
(5000 signals, seed 42, 80/20 split: 4000 train, 1000 test), the split of the published
table (logistic regression 32 %, MLP 68 %, CNN 94 % test accuracy). Nothing is
downloaded: ``make_dataset`` only draws from NumPy's global generator (its state is
saved and restored around the call, so labrss's callers are not reseeded). About 2 s;
the result is cached per process.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = ["MNIST1D_LENGTH", "MNIST1DData", "load_mnist1d"]

#: Samples per signal.
MNIST1D_LENGTH = 40


@dataclass(frozen=True)
class MNIST1DData:
    """Signals ``(B, 40)`` float64 (zero mean, unit standard deviation over the data set)
    and labels ``(B,)`` int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@functools.lru_cache(maxsize=1)
def load_mnist1d() -> MNIST1DData:
    """The default MNIST-1D data set (module docstring)."""
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset draws from NumPy's legacy global generator: leave it as it was
    state = np.random.get_state()  # noqa: NPY002
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(state)  # noqa: NPY002
    out = MNIST1DData(
        x_train=np.ascontiguousarray(data["x"], dtype=np.float64),
        y_train=np.asarray(data["y"], dtype=np.int64),
        x_test=np.ascontiguousarray(data["x_test"], dtype=np.float64),
        y_test=np.asarray(data["y_test"], dtype=np.int64),
    )
    for arr in (out.x_train, out.y_train, out.x_test, out.y_test):
        arr.setflags(write=False)
    return out
