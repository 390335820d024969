"""`labrss calibrate`: JSON summary with the run id, the summary table, errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labrss.cli.main import main
from labrss.store import Store


def test_json_summary_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "lab.db"
    args = ["calibrate", "--cells", "0,0", "--design", "single", "--nplc", "0.01", "--db", str(db)]
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "completed"
    assert summary["elements"] == 8 and summary["faults"] == 0
    # 22 design readings, then the range links: 2 links x 16 repeats x 4 reads
    assert summary["readings"] == 22 + 128
    assert summary["instrument_time_s"] == pytest.approx(summary["readings"] * 0.01 / 50)
    # One-by-one at NPLC 0.01 on the small ladder's 0.16-10 uA branches: the 2450's noise
    # at 0.01 PLC leaves a statistical standard error of a few 1e-4 per element (1.8e-4
    # measured on this seeded board). The combined uncertainty (issue 11's budget) adds the
    # meter's accuracy specification, 0.020-0.025 % of reading per range: it must be above
    # 2e-4 and above the statistical part, and below 1e-3 (4.0e-4 measured). The old bound
    # was 0.05. If the budget changes (issue 11), adjust these to its documented figures.
    assert 5e-5 < summary["median_relative_uncertainty_statistical"] < 5e-4
    assert 2e-4 < summary["median_relative_uncertainty"] < 1e-3
    assert (
        summary["median_relative_uncertainty"] > summary["median_relative_uncertainty_statistical"]
    )
    with Store(db) as store:
        assert store.run(summary["run_id"]).status == "completed"
    assert main([*args, "--no-progress"]) == 0
    out = capsys.readouterr().out
    for label in (
        "elements",
        "faults",
        "median rel. uncertainty",
        "absolute scale",
        "wall time",
        "instrument time",
    ):
        assert label in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cells", "0,16"], "column 16 is not on the board"),
        (["--cells", "0;1"], "expected ROWS,COLS"),
        (["--repeats", "0"], "repeats = 0"),
        (["--resume", "42"], "no run with id 42"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code = main(["calibrate", "--db", str(tmp_path / "lab.db"), "--no-progress", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1


def test_a_station_whose_smu_does_not_answer_is_an_instrument_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station = tmp_path / "lab.toml"
    # a closed loopback port: nothing answers there
    station.write_text('[smu]\naddress = "TCPIP0::127.0.0.1::9::SOCKET"\ntimeout_s = 0.5\n')
    code = main(["calibrate", "--station", str(station), "--db", str(tmp_path / "lab.db")])
    assert code == 1
    assert "instrument failure" in capsys.readouterr().err
