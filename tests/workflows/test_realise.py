"""`realise`: precise values on demand, checked against the simulator's truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from calibration.run import CalibrationRun
from calibration.settings import CalibrationSettings, CellSelection
from labrss.cli.main import main
from labrss.lab import Lab
from labrss.store import Store
from labrss.workflows.realise import (
    RealiseError,
    RealiseSettings,
    Target,
    load_targets,
    parse_quantity,
    parse_targets,
    parse_tolerance,
    realise,
)
from tests.calibration.test_run_helpers import sim_station


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ("4.7k", 4700.0, "resistance"),
        ("1.5M", 1.5e6, "resistance"),
        ("120", 120.0, "resistance"),
        ("2.2kohm", 2200.0, "resistance"),
        ("330 Ω", 330.0, "resistance"),
        ("120uS", 1.2e-4, "conductance"),
        ("0.5mS", 5e-4, "conductance"),
        ("80nS", 8e-8, "conductance"),
        ("1e-4S", 1e-4, "conductance"),
    ],
)
def test_quantities_parse_with_their_prefixes(text: str, value: float, kind: str) -> None:
    number, got_kind = parse_quantity(text)
    assert number == pytest.approx(value) and got_kind == kind


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["3,4"], "expected ROW,COL=VALUE"),
        (["3=4k"], "cell '3' is not ROW,COL"),
        (["3,4=fast"], "expected a resistance"),
        (["3,4=-1k"], "must be > 0"),
        (["3,4=0"], "must be > 0"),
        (["3,4=5u"], "a resistance below 1 ohm"),
        (["3,4=4k", "3,4=5k"], r"cell \(3, 4\) has two targets"),
    ],
)
def test_bad_targets_are_named(specs: list[str], message: str) -> None:
    with pytest.raises(RealiseError, match=message):
        parse_targets(specs)


def test_tolerances_and_target_files(tmp_path: Path) -> None:
    assert parse_tolerance("0.01%") == pytest.approx(1e-4)
    assert parse_tolerance("100ppm") == pytest.approx(1e-4)
    assert parse_tolerance("2e-5") == pytest.approx(2e-5)
    with pytest.raises(RealiseError, match="tolerance 'tight'"):
        parse_tolerance("tight")
    f = tmp_path / "t.csv"
    f.write_text("r,c,target\n0,1,4.7k\n2,3,120uS\n")
    assert load_targets(f) == [
        Target(0, 1, 4700.0, "resistance"),
        Target(2, 3, pytest.approx(1.2e-4), "conductance"),  # type: ignore[arg-type]
    ]
    f.write_text("r,c,target_ohm\n0,1,4700\n")
    assert load_targets(f)[0].target_S == pytest.approx(1 / 4700)
    f.write_text("r,c\n0,1\n")
    with pytest.raises(RealiseError, match=r"t.csv:2: needs a target"):
        load_targets(f)


def test_realised_banks_are_within_their_expanded_uncertainty_of_the_truth(
    tmp_path: Path,
) -> None:
    """Default NPLC, default board: each realised bank's true conductance is within the
    reported expanded uncertainty of the prediction, and within the measured value's."""
    db = tmp_path / "lab.db"
    cells = CellSelection(rows=(2,), cols=(3, 4, 5))
    with Lab(sim_station(seed=4)) as lab, Store(db) as store:
        CalibrationRun(lab, store, CalibrationSettings(cells=cells)).run()
        targets = parse_targets(["2,3=10k", "2,4=61uS", "2,5=27k"])
        # a bad target anywhere: an error naming the cell, nothing switched
        with pytest.raises(RealiseError, match=r"cell \(2, 6\) has no calibration"):
            realise(lab, store, [*targets, Target(2, 6, 1e4, "resistance")])
        assert not lab.masks().any()
        with pytest.raises(RealiseError, match=r"cell \(2, 5\): target 1 ohm .* outside"):
            realise(lab, store, [*targets[:2], Target(2, 5, 1.0, "resistance")])
        assert not lab.masks().any()
        result = realise(lab, store, targets, RealiseSettings(tolerance=1e-2))
        board_masks = lab.masks()
        assert lab.simulator is not None
        with lab.simulator.lock:
            truth = lab.simulator.model.truth()
        info = store.run(result.run_id)
        assert info.kind == "realise" and info.status == "completed"
        assert store.get_result(result.run_id, "predicted_S").shape == (3,)
    for cell in result.cells:
        true = float(truth["cell_conductance_S"][cell.r, cell.c])
        mask = int(sum(1 << int(k) for k in np.flatnonzero(board_masks[cell.r, cell.c])))
        assert mask == cell.mask  # what the board holds
        assert abs(cell.predicted_S - true) <= cell.expanded_S, (cell, true)
        assert abs(cell.measured_S - true) <= 2 * cell.u_measured_S, (cell, true)
        # 8 elements reach the target to a fraction of a percent; the budget is ~1e-4
        assert abs(cell.predicted_S / cell.target_S - 1) < 1e-2
        assert cell.met is True
        assert 2e-5 < cell.u_S / cell.predicted_S < 5e-4
        assert set(cell.components) >= {"statistical", "range", "scale", "temperature"}


def test_cli_json_has_a_cells_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "lab.db")
    assert main(["calibrate", "--cells", "1,1", "--db", db, "--json", "--nplc", "0.1"]) == 0
    capsys.readouterr()
    assert main(["realise", "1,1=20k", "--tolerance", "1%", "--db", db, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    (cell,) = payload["cells"]
    for key in ("r", "c", "mask", "target_S", "predicted_S", "u_S", "U_S", "measured_S"):
        assert key in cell
    assert cell["U_S"] == pytest.approx(2 * cell["u_S"])
    assert main(["realise", "1,1=20k", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "predicted S" in out and "U (k=2) S" in out
    assert main(["realise", "1,2=20k", "--db", db]) == 2
    assert "cell (1, 2) has no calibration" in capsys.readouterr().err
    # labrss budget: the element's and the cell's budget, from the store alone
    assert main(["budget", "1,1,2", "--db", db]) == 0
    out = capsys.readouterr().out
    for row in ("statistical", "range", "scale", "combined u", "expanded U (k = 2)"):
        assert row in out
    assert main(["budget", "1,2", "--db", db]) == 2
    assert "cell (1, 2) has no calibration" in capsys.readouterr().err
