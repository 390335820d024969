"""Fixtures for the program/MVM workflow tests: a small simulated board, a calibrated store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from benchmarks.truth_calibration import store_truth_calibration
from labrss.lab import Lab
from labrss.networks.model import Network
from labrss.station import Station, parse_station
from labrss.store import Store

SEED = 5


def small_station(seed: int = SEED) -> Station:
    """The embedded simulator with the small preset (8 x 8 cells of 8 branches)."""
    return parse_station({"simulator": {"board": "small", "seed": seed}})


@pytest.fixture
def lab() -> Iterator[Lab]:
    """An open Lab on a small seeded simulated board."""
    with Lab(small_station()) as opened:
        yield opened


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """An empty store in the test's directory."""
    with Store(tmp_path / "lab.db") as s:
        yield s


@pytest.fixture
def calibrated(lab: Lab, store: Store) -> Store:
    """The store holding a calibration of the lab's board (truth + 1e-4 noise)."""
    store_truth_calibration(lab, store)
    return store


def two_layer_network(seed: int = 0) -> tuple[Network, np.ndarray, np.ndarray]:
    """A seeded 10-5-3 ReLU network (4 + 1 tiles on the 8x8 board) and inputs in [0, 1].

    Returns (network, reference inputs (200, 10), test inputs (40, 10)).
    """
    rng = np.random.default_rng(seed)
    net = Network(
        [
            (rng.normal(size=(10, 5)), rng.normal(scale=0.3, size=5)),
            (rng.normal(size=(5, 3)), rng.normal(scale=0.3, size=3)),
        ],
        name="test 10-5-3",
    )
    return net, rng.random((200, 10)), rng.random((40, 10))
