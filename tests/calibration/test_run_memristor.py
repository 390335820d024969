"""Calibration of memristor and mixed boards on the simulated bench.

Mixed boards: the resistor and memristor cells are calibrated in one run, each group with
its own pooled noise scale and its own healthy band (resistors from ``nominal_ohm``,
memristors from the device range ``g_min_S``/``g_max_S``), so neither group invents faults
in the other. A memristor's read noise (~0.1 uS per read at t ~ 10 s, docs/simulator.md)
is some 20x the SMU's floor on a resistor cell, which is why the groups are kept apart and
why ``repeats`` matters on memristor cells (standard errors fall as 1/sqrt(repeats)).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from calibration.run import CalibrationRun, estimate_cells, memristor_band_from_board_info
from calibration.settings import CalibrationSettings, CellSelection
from labrss.lab import Lab
from labrss.store import Store
from tests.calibration.test_run_helpers import sim_station, true_branch_conductance_S


def _truth(lab: Lab) -> dict[str, Any]:
    assert lab.simulator is not None
    with lab.simulator.lock:
        return lab.simulator.model.truth()


def test_memristor_band_from_the_device_range() -> None:
    info = {"element": "memristor", "g_min_S": "8e-6", "g_max_S": "9e-5", "switch_on_ohm": "9.5"}
    band = memristor_band_from_board_info(info, 8, margin=0.0)
    assert band is not None
    low, high = band.per_branch(8)
    # 20 % range spread (no tolerance reported) around 8..90 uS, a ~9.5 ohm switch in series
    # (1.1e-4 relative at 11 kohm), less 1 nS off-leakage
    assert low == pytest.approx(np.full(8, 6.4e-6), rel=1e-3)
    assert high == pytest.approx(np.full(8, 108e-6), rel=2e-3)
    assert memristor_band_from_board_info({"element": "resistor"}, 8, margin=0.0) is None
    assert (
        memristor_band_from_board_info({"g_min_S": "9e-5", "g_max_S": "8e-6"}, 8, margin=0) is None
    )


def test_mixed_board_calibrates_both_kinds_in_one_run_without_false_faults(
    tmp_path: Path,
) -> None:
    # rows 0-3, every column: 16 resistor and 16 memristor cells
    settings = CalibrationSettings(
        cells=CellSelection(rows=(0, 1, 2, 3), cols=None), design="weighing", nplc=1.0, repeats=2
    )
    with Lab(sim_station("mixed", seed=7)) as lab, Store(tmp_path / "lab.db") as store:
        result = CalibrationRun(lab, store, settings).run()
        kinds = {(r, c): lab.cell_kind(r, c) for r in range(8) for c in range(8)}
        truth = _truth(lab)
        assert store.board(store.run(result.run_id).board_id).element_kind == "mixed"
    assert result.status == "completed"
    assert len(result.cells) == 32 and result.faults == ()
    cells = [(c.r, c.c) for c in result.cells]
    mem = np.array([kinds[rc] == "memristor" for rc in cells])
    assert mem.sum() == 16  # columns 4-7
    a = result.conductance_S()
    s = result.std_S()
    true_a = true_branch_conductance_S(truth, cells)
    # Resistor cells: within 5 standard errors plus the meter's 0.025 % gain error (no
    # repeat removes it, docs/calibration.md).
    err = np.abs(a - true_a)
    assert np.all(err[~mem] < 5 * s[~mem] + 2.5e-4 * true_a[~mem])
    # ... and their standard errors are the SMU's, not inflated by the memristors' noise.
    assert np.median(s[~mem] / a[~mem]) < 3e-4
    # Memristor cells: read noise ~0.1 uS per read and the devices' relaxation over the
    # run (0.089 uS per unit of ln t, a few units between the reads and the truth taken
    # after the run): within 5 standard errors plus 0.5 uS.
    assert np.all(np.abs(a[mem] - true_a[mem]) < 5 * s[mem] + 0.5e-6)
    assert np.median(s[mem]) > 10 * np.median(s[~mem])


def test_memristor_board_finds_an_injected_open_and_invents_nothing(tmp_path: Path) -> None:
    board = tmp_path / "faulty-memristor.toml"
    board.write_text('base = "memristor"\n[faults]\nstuck_open_count = 1\n')
    settings = CalibrationSettings(
        cells=CellSelection(rows=None, cols=None), design="weighing", nplc=1.0
    )
    with Lab(sim_station(str(board), seed=3)) as lab, Store(tmp_path / "lab.db") as store:
        truth = _truth(lab)
        result = CalibrationRun(lab, store, settings).run()
    injected = [
        (f["row"], f["col"], f["branch"]) for f in truth["faults"] if f["kind"] == "stuck_open"
    ]
    assert len(injected) == 1
    assert {(f.r, f.c, f.k): f.kind for f in result.faults} == {injected[0]: "open"}


def test_group_flags_must_match_the_cells() -> None:
    settings = CalibrationSettings(design="single")
    with pytest.raises(ValueError, match="memristor_cells has 1 flags for 0 cells"):
        estimate_cells(
            [],
            np.zeros(0, dtype=[("key", "U8")]),
            settings,
            cells=[],
            n=8,
            band=None,
            memristor_cells=[True],
        )
