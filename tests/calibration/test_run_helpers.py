"""Helpers for calibration-run tests (no tests here): stations on the simulator, truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labrss.station import Station, parse_station


def sim_station(board: str = "default", seed: int = 0, **sections: dict[str, Any]) -> Station:
    """A station whose instruments are the embedded simulator's (board preset or TOML)."""
    data: dict[str, dict[str, Any]] = {"simulator": {"board": board, "seed": seed}}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_station(data, source="test-station.toml")


def true_branch_conductance_S(
    truth: dict[str, Any], cells: list[tuple[int, int]]
) -> NDArray[np.float64]:
    """a_k = closed minus open conductance of every branch of ``cells`` (cells, K), in S."""
    on = np.asarray(truth["branch_on_conductance_S"], float)
    r = np.asarray(truth["resistance_ohm"], float)
    off = 1.0 / (r + np.asarray(truth["r_off_ohm"], float))
    return np.array([on[rc] - off[rc] for rc in cells])


def faulty_board_toml(path: Path) -> Path:
    """The default 16x16x8 board with one fault of each kind injected (seeded)."""
    path.write_text(
        'base = "default"\n'
        "[faults]\n"
        "open_resistor_count = 1\n"
        "shorted_resistor_count = 1\n"
        "stuck_open_count = 1\n"
        "stuck_closed_count = 1\n"
    )
    return path
