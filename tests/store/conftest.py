"""Fixtures for the store tests: a fresh database and a registered simulated board."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from labrss.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "lab.db") as s:
        yield s


@pytest.fixture
def board_id(store: Store) -> int:
    return store.register_board(
        "LABRSS,CROSSBAR-SIM,SIM-0001,1.0",
        "SIM-0001",
        4,
        3,
        8,
        simulated=True,
        sim_seed=7,
        sim_preset="small",
    )
