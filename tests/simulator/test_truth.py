"""Ground-truth export round trips in both formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simulator.board_config import load_board_config
from simulator.board_model import BoardModel
from simulator.truth import dump_truth, load_truth

SMALL = load_board_config("small").replace(
    faults={"open_resistor_count": 2, "stuck_closed_count": 1}
)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_truth_round_trip(tmp_path: Path, suffix: str) -> None:
    model = BoardModel(SMALL, seed=12)
    model.set_cell_mask(1, 2, 0x81)
    path = tmp_path / f"truth{suffix}"
    dump_truth(model, path)
    loaded = load_truth(path)
    truth = model.truth()
    assert loaded["format"] == "labrss-board-truth" and loaded["version"] == 1
    assert loaded["seed"] == 12 and loaded["serial"] == "SIM-12"
    for key in ("resistance_ohm", "r_on_ohm", "cell_conductance_S", "switches_effective"):
        np.testing.assert_array_equal(loaded[key], truth[key])  # JSON floats round-trip exactly
    assert loaded["faults"] == truth["faults"]
    assert len(loaded["faults"]) == 3
    assert loaded["resistance_ohm"].shape == (8, 8, 8)
    assert np.isposinf(loaded["resistance_ohm"]).sum() == 2  # the two open resistors
    if suffix == ".json":  # strict JSON: no Infinity/NaN tokens

        def refuse(token: str) -> float:
            raise AssertionError(f"non-standard JSON token {token}")

        json.loads(path.read_text(), parse_constant=refuse)


def test_truth_bad_suffix_names_the_file(tmp_path: Path) -> None:
    model = BoardModel(SMALL, seed=1)
    with pytest.raises(ValueError, match=r"truth\.csv"):
        dump_truth(model, tmp_path / "truth.csv")
