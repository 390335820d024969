"""One board registration: every workflow attaches its runs to the same board id."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from calibration.run import CalibrationRun
from labrss.lab import Lab
from labrss.station import Station, parse_station
from labrss.store import Store
from labrss.workflows import write_verify
from labrss.workflows.boards import register_board
from labrss.workflows.program import board_id_for


def sim_station(preset: str, seed: int) -> Station:
    """The embedded simulator with ``preset`` and ``seed``."""
    return parse_station({"simulator": {"board": preset, "seed": seed}})


@pytest.mark.parametrize(
    ("preset", "kind"), [("small", "resistor"), ("memristor", "memristor"), ("mixed", "mixed")]
)
def test_element_kind_comes_from_board_info(tmp_path: Path, preset: str, kind: str) -> None:
    with (
        Lab(parse_station({"simulator": {"board": preset, "seed": 2}})) as lab,
        Store(tmp_path / "lab.db") as store,
    ):
        board_id = register_board(lab, store)
        info = store.board(board_id)
        assert info.element_kind == kind
        assert info.shape == (lab.geometry.rows, lab.geometry.cols, lab.geometry.branches)
        assert info.simulated and info.sim_preset == preset and info.sim_seed == 2


@pytest.mark.parametrize("first", ["program", "write_verify", "calibration"])
def test_the_same_board_registers_once_whichever_workflow_runs_first(
    tmp_path: Path, first: str
) -> None:
    with (
        Lab(parse_station({"simulator": {"board": "mixed", "seed": 4}})) as lab,
        Store(tmp_path / "lab.db") as store,
    ):
        calls: dict[str, Callable[[], int]] = {
            "program": lambda: board_id_for(lab, store),
            "write_verify": lambda: write_verify.board_id_for(lab, store),
            "calibration": lambda: CalibrationRun(lab, store)._register_board(),
        }
        ids = [calls[first]()] + [call() for name, call in calls.items() if name != first]
        assert len(set(ids)) == 1
        assert [b.id for b in store.boards()] == ids[:1]
        assert store.board(ids[0]).element_kind == "mixed"


def test_a_mixed_board_registered_as_resistor_by_older_labrss_keeps_its_id(
    tmp_path: Path,
) -> None:
    with (
        Lab(parse_station({"simulator": {"board": "mixed", "seed": 4}})) as lab,
        Store(tmp_path / "lab.db") as store,
    ):
        g = lab.geometry
        sim = lab.station.simulator
        old = store.register_board(
            lab.identities["board"],
            lab.board.serial,
            g.rows,
            g.cols,
            g.branches,
            element_kind="resistor",
            simulated=True,
            sim_seed=sim.seed,
            sim_preset=sim.board,
        )
        assert register_board(lab, store) == old
        assert len(store.boards()) == 1


def test_a_different_seed_is_a_different_board(tmp_path: Path) -> None:
    with Store(tmp_path / "lab.db") as store:
        ids = []
        for seed in (1, 2):
            with Lab(sim_station("small", seed)) as lab:
                ids.append(register_board(lab, store))
        assert ids[0] != ids[1]
