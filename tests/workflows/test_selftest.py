"""The self-test (labrss.workflows.selftest, `labrss selftest`): verdicts, storage, and
checks that fail when the bench misbehaves on purpose."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.crossbar_board import CrossbarBoard
from labrss.cli.main import main
from labrss.lab import Lab
from labrss.station import parse_station
from labrss.store import Store
from labrss.workflows import selftest
from labrss.workflows.selftest import CHECKS, run_check, run_selftest

STATION = {"simulator": {"board": "small", "seed": 5}}


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(parse_station(STATION)) as opened:
        yield opened


def _check(name: str) -> selftest.Check:
    return next(function for n, _, function in CHECKS if n == name)


def test_every_check_passes_and_the_run_is_stored(lab: Lab, tmp_path: Path) -> None:
    with Store(tmp_path / "lab.db") as store:
        result = run_selftest(lab, store, nplc=0.1)
        assert result.passed, result.table()
        statuses = {c.name: c.status for c in result.checks}
        assert statuses["switch wear"] == "n/a"  # the crossbar board counts nothing
        assert set(statuses.values()) == {"pass", "n/a"}
        assert len(result.checks) == len(CHECKS) == 12
        assert statuses["thermal stage"] == "n/a"  # no [thermal] section
        run = store.run(result.run_id or -1)
        assert (run.kind, run.status) == ("selftest", "completed")
        stored = store.get_value(run.id, "checks")
        assert stored["passed"] is True
        assert [c["name"] for c in stored["checks"]] == [n for n, _, _ in CHECKS]
    figures = {c.name: c.figures for c in result.checks}
    assert figures["switches"]["switches"] == 8 * 8 * 8
    assert figures["isolation"]["largest_S"] < figures["isolation"]["bound_S"]
    assert figures["break-before-make"]["worst_excess_of_old_cell"] < 0.01
    assert figures["SMU limits"]["compliance_A"] == pytest.approx(0.01)
    assert "SMU limits" in result.table() and "self-test PASSED" in result.table()


def test_a_failing_check_fails_the_run_and_leaves_the_bench_safe(lab: Lab, tmp_path: Path) -> None:
    lab.board.open_cell_max_S = 1e-15  # a board declaring an isolation it does not have
    with Store(tmp_path / "lab.db") as store:
        result = run_selftest(lab, store, nplc=0.1)
        run = store.run(result.run_id or -1)
    isolation = next(c for c in result.checks if c.name == "isolation")
    assert isolation.status == "fail" and "beyond the declared 1e-15 S" in isolation.detail
    assert not result.passed
    assert (run.status, run.note) == ("failed", "failed: isolation")
    assert all(c.status != "fail" for c in result.checks if c.name != "isolation")
    assert lab.board.is_safe() and not lab.smu.read_output_on()


def test_the_interruption_check_fails_when_lab_does_not_go_safe(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Break Lab's safe-on-failure path on purpose: the check must catch it."""
    name = "safe after an interruption"
    assert run_check(lab, name, _check(name), 0.1).status == "pass"
    monkeypatch.setattr(Lab, "_safe_after_failure", lambda self: None)
    broken = run_check(lab, name, _check(name), 0.1)
    assert broken.status == "fail"
    assert "the bench is not safe: board is_safe = False" in broken.detail


def test_the_break_before_make_check_fails_on_a_routing_that_does_not_change(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A board whose routing stays on the first cell routed: the change is seen."""
    name = "break-before-make"
    assert run_check(lab, name, _check(name), 0.1).status == "pass"
    original = CrossbarBoard.route_cell
    first: list[tuple[int, int]] = []

    def stuck(self: CrossbarBoard, r: int, c: int, *, four_wire: bool = False) -> None:
        first.append((r, c))
        original(self, *first[0], four_wire=four_wire)

    monkeypatch.setattr(CrossbarBoard, "route_cell", stuck)
    broken = run_check(lab, name, _check(name), 0.1)
    assert broken.status == "fail", broken.detail
    assert "after the change" in broken.detail


def test_the_switch_check_fails_on_a_wrong_read_back(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = CrossbarBoard.masks

    def flipped(self: CrossbarBoard) -> object:
        got = original(self)
        got[1, 2, 3] = ~got[1, 2, 3]
        return got

    monkeypatch.setattr(CrossbarBoard, "masks", flipped)
    broken = run_check(lab, "switches", _check("switches"), None)
    assert broken.status == "fail" and "switch (1, 2, 3) reads back" in broken.detail


def test_cli_table_json_and_exit_status(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    station = tmp_path / "st.toml"
    station.write_text('[simulator]\nboard = "small"\nseed = 5\n')
    db = str(tmp_path / "lab.db")
    assert main(["selftest", "--station", str(station), "--db", db, "--nplc", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "self-test PASSED: 0 of 12 checks failed" in out and "(run 1)" in out
    assert main(["selftest", "--station", str(station), "--db", db, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is True and data["run_id"] == 2
    assert data["bench"]["drivers"] == {"board": "crossbar", "smu": "keithley2450"}
    monkeypatch.setattr(CrossbarBoard, "open_cell_max_S", 1e-15, raising=False)
    monkeypatch.setattr(CrossbarBoard, "_info_number", lambda self, key, default: 1e-16)
    assert main(["selftest", "--station", str(station), "--db", db]) == 1
    assert "isolation                   FAIL" in capsys.readouterr().out
    assert main(["selftest", "--station", str(tmp_path / "missing.toml")]) == 2


def test_the_thermal_stage_is_checked_when_the_station_has_one(tmp_path: Path) -> None:
    station = parse_station({**STATION, "thermal": {"min_C": 15.0, "max_C": 40.0}})
    with Lab(station) as stage_lab:
        check = run_check(stage_lab, "thermal stage", _check("thermal stage"), 0.1)
        assert check.status == "pass", check.detail
        assert "a set point above max_C = 40 degC refused with nothing sent" in check.detail
        assert 15.0 <= check.figures["temperature_C"] <= 35.0
        # nothing changed on the stage: the set point is the one the stage started with
        assert check.figures["setpoint_C"] == pytest.approx(stage_lab.thermal.setpoint_C())
