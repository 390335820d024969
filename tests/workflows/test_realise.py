"""`realise`: precise values on demand, checked against the simulator's truth."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from calibration.run import CalibrationRun
from calibration.settings import CalibrationSettings, CellSelection
from labrss.cli.main import main
from labrss.gui.workers import JobCancelledError
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
from tests.calibration.test_run_helpers import faulty_board_toml, sim_station


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
        cal = CalibrationRun(lab, store, CalibrationSettings(cells=cells)).run()
        targets = parse_targets(["2,3=10k", "2,4=61uS", "2,5=27k"])
        # a bad target anywhere: an error naming the cell, nothing switched
        with pytest.raises(RealiseError, match=r"cell \(2, 6\) has no calibration"):
            realise(lab, store, [*targets, Target(2, 6, 1e4, "resistance")])
        assert not lab.masks().any()
        with pytest.raises(RealiseError, match=r"cell \(2, 5\): target 1 ohm .* outside"):
            realise(lab, store, [*targets[:2], Target(2, 5, 1.0, "resistance")])
        assert not lab.masks().any()
        result = realise(lab, store, targets, RealiseSettings(tolerance=1e-2))
        assert lab.simulator is not None
        with lab.simulator.lock:
            truth = lab.simulator.model.truth()
        info = store.run(result.run_id)
        assert info.kind == "realise" and info.status == "completed"
        assert store.get_result(result.run_id, "predicted_S").shape == (3,)
        board_masks = lab.masks()
        # a Ctrl-C or the GUI's Stop mid-run leaves the run interrupted, an error failed
        # (it said failed for all three); the exception goes on to the caller
        for exc, status in (
            (KeyboardInterrupt(), "interrupted"),
            (JobCancelledError("Stop pressed"), "interrupted"),
            (OSError("gone"), "failed"),
        ):

            def stop(done: int, total: int, message: str, exc: BaseException = exc) -> None:
                raise exc

            with pytest.raises(type(exc)):
                realise(lab, store, targets, RealiseSettings(tolerance=1e-2), progress=stop)
            last = store.runs()[-1]
            assert (last.kind, last.status) == ("realise", status)
            assert last.note == (str(exc) or type(exc).__name__)
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
        # the common scale is fully correlated over the closed elements: it adds linearly
        est = next(e for e in cal.cells if (e.r, e.c) == (cell.r, cell.c))
        closed = np.asarray(est.components["scale"])[list(cell.branches)]
        assert cell.components["scale"] == pytest.approx(closed.sum(), rel=1e-3)
        if closed.size > 1:  # not the root sum of squares of independent elements
            assert cell.components["scale"] > 1.2 * np.sqrt((closed**2).sum())
    assert max(len(c.branches) for c in result.cells) > 2


def test_the_users_path_at_the_default_nplc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's own path, at the station's default NPLC (1): `labrss calibrate`,
    `labrss export RUN --format csv` checked against `labrss sim --dump-truth`, then
    `labrss realise` with targets on the command line and in a file, table and JSON."""
    db = str(tmp_path / "lab.db")
    assert main(["calibrate", "--cells", "1,1-2", "--db", db, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "completed"
    # estimates.csv: conductance_S and std_S, std_S the combined uncertainty of the
    # component columns, and it covers the truth where the statistical part alone cannot
    out = tmp_path / "export"
    assert (
        main(["export", "--db", db, str(summary["run_id"]), "--format", "csv", "--out", str(out)])
        == 0
    )
    capsys.readouterr()
    with (out / "estimates.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 16
    comps = [
        f"u_{name}_S"
        for name in ("statistical", "series", "leakage", "range", "offset", "scale", "temperature")
    ]
    g = np.array([float(r["conductance_S"]) for r in rows])
    u = np.array([float(r["std_S"]) for r in rows])
    parts = np.array([[float(r[c]) for c in comps] for r in rows])
    np.testing.assert_allclose(u, np.sqrt((parts**2).sum(axis=1)), rtol=1e-12)
    stat = parts[:, 0]
    assert np.all(u > 2 * stat)  # at 1 PLC the meter's accuracy dominates the noise
    truth_file = tmp_path / "truth.npz"
    assert main(["sim", "--board", "default", "--seed", "0", "--dump-truth", str(truth_file)]) == 0
    capsys.readouterr()
    with np.load(truth_file) as truth:
        on = truth["branch_on_conductance_S"]
        off = 1.0 / (truth["resistance_ohm"] + truth["r_off_ohm"])
    rc = [(int(r["r"]), int(r["c"]), int(r["k"])) for r in rows]
    true = np.array([on[x] - off[x] for x in rc])
    z = (g - true) / u
    assert np.all(np.abs(z) < 4), z  # (errors of one instrument: correlated, not 16 draws)
    assert np.sqrt(np.mean(((g - true) / stat) ** 2)) > 2  # where the SE alone fails
    # realise: two targets on the command line, a tolerance, the table
    argv = ["realise", "1,1=20k", "1,2=50uS", "--tolerance", "1%", "--db", db]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "predicted S" in table and "U (k=2) S" in table and table.count(" yes") == 2
    # the same from a file, as JSON
    targets = tmp_path / "targets.csv"
    targets.write_text("r,c,target\n1,1,20k\n1,2,50uS\n")
    assert main(["realise", "--targets", str(targets), "--db", db, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [(c["r"], c["c"]) for c in payload["cells"]] == [(1, 1), (1, 2)]
    for cell in payload["cells"]:
        for key in ("r", "c", "mask", "target_S", "predicted_S", "u_S", "U_S", "measured_S"):
            assert cell[key] is not None, key
        assert cell["U_S"] == pytest.approx(2 * cell["u_S"])
        assert abs(cell["measured_S"] / cell["target_S"] - 1) < 1e-2
    assert payload["cells"][0]["target_S"] == pytest.approx(1 / 20e3)
    with Store(db) as store:
        kinds = [r.kind for r in store.runs()]
    assert kinds.count("realise") == 2
    # a tolerance no 8-element bank meets: realised, verified, stored, and exit 3 naming it
    assert main(["realise", "1,1=20k", "--tolerance", "1ppm", "--db", db]) == 3
    captured = capsys.readouterr()
    assert " no" in captured.out
    assert "1 of 1 cells missed the tolerance 1ppm: (1, 1)" in captured.err
    with Store(db) as store:
        assert [r.kind for r in store.runs()].count("realise") == 3
    # bad input: exit 2, one line naming the cell, nothing stored
    assert main(["realise", "1,3=20k", "--db", db]) == 2
    assert "cell (1, 3) has no calibration" in capsys.readouterr().err
    assert main(["realise", "1,1=100", "--db", db]) == 2
    err = capsys.readouterr().err
    assert "cell (1, 1): target 100 ohm" in err and "reachable range" in err and "ohm)" in err
    # labrss budget: the element's and the cell's budget, from the store alone
    assert main(["budget", "1,1,2", "--db", db]) == 0
    out_text = capsys.readouterr().out
    for row in ("statistical", "range", "scale", "combined u", "expanded U (k = 2)"):
        assert row in out_text
    assert main(["budget", "1,3", "--db", db]) == 2
    assert "cell (1, 3) has no calibration" in capsys.readouterr().err


def test_a_faulty_cell_is_refused_before_anything_is_switched(tmp_path: Path) -> None:
    """A cell whose calibration found a stuck-closed switch or a shorted element cannot be
    realised: the error names the cell and the branch, and no switch has moved, not even
    those of the healthy cells listed before it."""
    board = faulty_board_toml(tmp_path / "faulty.toml")
    # the seeded faults of this board (test-side truth): (5, 2) branch 7 stuck closed,
    # (10, 7) branch 1 shorted
    cells = CellSelection(rows=(5, 10), cols=(2, 7))
    with Lab(sim_station(board=str(board), seed=0)) as lab, Store(tmp_path / "l.db") as store:
        assert lab.simulator is not None
        kinds = {(f["row"], f["col"]): f["kind"] for f in lab.simulator.model.truth()["faults"]}
        assert kinds[5, 2] == "stuck_closed" and kinds[10, 7] == "shorted_resistor"
        CalibrationRun(lab, store, CalibrationSettings(cells=cells)).run()
        lab.open_all()
        healthy = Target(10, 2, 2e4, "resistance")
        for cell, why in (((5, 2), "branch 7 is stuck closed"), ((10, 7), "branch 1 is short")):
            with pytest.raises(
                RealiseError, match=rf"cell \({cell[0]}, {cell[1]}\) is faulty \({why}"
            ):
                realise(lab, store, [healthy, Target(*cell, 2e4, "resistance")])
            assert not lab.masks().any()
        assert [r.kind for r in store.runs()].count("realise") == 0
        assert realise(lab, store, [healthy]).cells[0].mask != 0
