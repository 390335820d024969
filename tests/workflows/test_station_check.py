"""`labrss station check` (labrss/workflows/station_check.py): every step pass/fail with the
fix, skips after a failure, exit status, and nothing switched or sourced."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvisa

from labrss.cli.main import main
from labrss.workflows.station_check import STEPS, check_station
from simulator.bench import SimulatedBench
from tests.drivers.scripted_server import ScriptedLineServer


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lab.toml"
    path.write_text(text)
    return path


def statuses(result: object) -> dict[str, str]:
    return {s.name: s.status for s in result.steps}  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def bench() -> Iterator[SimulatedBench]:
    with SimulatedBench("small", 3) as b:
        yield b


def test_the_default_station_passes_every_step(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["station", "check", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] and [s["name"] for s in data["steps"]] == list(STEPS)
    assert all(s["status"] == "pass" for s in data["steps"])
    geometry = next(s for s in data["steps"] if s["name"] == "board geometry")
    assert geometry["figures"]["geometry"] == "16x16x8"


def test_a_missing_or_bad_file_fails_the_first_step_and_skips_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["station", "check", str(tmp_path / "none.toml")]) == 1
    out = capsys.readouterr().out
    assert "FAIL  station file" in out and "fix: labrss discover --write FILE" in out
    assert out.count("SKIP") == len(STEPS) - 1
    bad = check_station(write(tmp_path, "[measurement]\nnplc = 20\n"))
    assert bad.steps[0].status == "fail" and "nplc = 20" in bad.steps[0].detail
    assert not bad.passed


def test_the_wrong_driver_is_named_with_the_one_that_fits(tmp_path: Path) -> None:
    result = check_station(
        write(
            tmp_path,
            '[smu]\ndriver = "keysight_b2900"\n[simulator]\nboard = "small"\nsmu_model = "2450"\n',
        )
    )
    step = next(s for s in result.steps if s.name == "SMU identity")
    assert step.status == "fail" and step.fix is not None
    assert "set [smu] driver = 'keithley2450'" in step.fix
    assert statuses(result)["SMU driver"] == "skip"
    assert statuses(result)["board state"] == "pass"  # the board is still checked


def test_a_board_of_another_geometry_fails(tmp_path: Path) -> None:
    result = check_station(
        write(tmp_path, '[board]\ngeometry = "16x16x8"\n[simulator]\nboard = "small"\n')
    )
    step = next(s for s in result.steps if s.name == "board geometry")
    assert step.status == "fail"
    assert step.detail == "the board is 8x8x8, the file says 16x16x8"


def test_unreachable_and_silent_smus_fail_with_the_reason(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    body = '[smu]\naddress = "TCPIP0::127.0.0.1::{}::SOCKET"\n[simulator]\nboard = "small"\n'
    result = check_station(write(tmp_path, body.format(dead)), timeout_s=0.3)
    step = next(s for s in result.steps if s.name == "SMU identity")
    assert step.status == "fail" and "refused" in step.detail.lower()
    assert statuses(result)["board geometry"] == "pass"
    with ScriptedLineServer(lambda line: None) as silent:
        result = check_station(write(tmp_path, body.format(silent.port)), timeout_s=0.3)
        assert silent.received == ["*IDN?"]  # the identify query, nothing else
    step = next(s for s in result.steps if s.name == "SMU identity")
    assert step.status == "fail" and "no reply to *IDN? within 0.3 s" in step.detail


def test_nothing_is_switched_or_sourced(tmp_path: Path, bench: SimulatedBench) -> None:
    """An SMU left sourcing with its output on is reported and left exactly as it was.
    (The crossbar board goes safe by itself when its host disconnects: docs/board-protocol.md.)"""
    rm = pyvisa.ResourceManager("@py")
    smu = rm.open_resource(bench.smu_resource, read_termination="\n", write_termination="\n")
    smu.write(":SOUR:FUNC VOLT;:SOUR:VOLT:ILIM 0.001;:SOUR:VOLT 0.05;:OUTP ON")
    smu.close()
    bench.wait_until_idle()
    path = write(
        tmp_path,
        f'[smu]\naddress = "{bench.smu_resource}"\n[board]\naddress = "{bench.board_url}"\n',
    )
    result = check_station(path)
    st = {s.name: s for s in result.steps}
    assert st["SMU state"].status == "fail" and st["SMU state"].detail == "the output is ON"
    assert st["SMU limits"].figures["compliance_in_force_A"] == pytest.approx(0.001)
    assert st["board state"].status == "pass" and not result.passed
    bench.wait_until_idle()
    smu = rm.open_resource(bench.smu_resource, read_termination="\n", write_termination="\n")
    try:
        assert smu.query(":OUTP?") == "1"
        assert float(smu.query(":SOUR:VOLT?")) == pytest.approx(0.05)
        smu.write(":OUTP OFF")
    finally:
        smu.close()


def test_a_visa_library_that_does_not_load_fails_its_step(tmp_path: Path) -> None:
    result = check_station(
        write(
            tmp_path,
            '[smu]\naddress = "TCPIP0::10.0.0.1::5025::SOCKET"\n'
            'visa_library = "/nonexistent/libvisa.so"\n[simulator]\nboard = "small"\n',
        )
    )
    step = next(s for s in result.steps if s.name == "VISA library")
    assert step.status == "fail" and "/nonexistent/libvisa.so" in step.detail
    assert step.fix is not None and '"@py"' in step.fix
    assert statuses(result)["SMU identity"] == "skip"


def test_a_simulated_switch_matrix_bench_passes(tmp_path: Path) -> None:
    """The 34980A (a board reached over VISA, with its layout file) is checked like any."""
    result = check_station(write(tmp_path, '[simulator]\nbench = "switch-matrix"\n'))
    st = {s.name: s for s in result.steps}
    assert result.passed, result.table()
    assert "(keysight34980a)" in st["board identity"].detail
    assert st["board geometry"].figures["geometry"] == "4x4x8"


def test_a_thermal_stage_is_checked_like_the_other_instruments(tmp_path: Path) -> None:
    from labrss.workflows.station_check import THERMAL_STEPS

    result = check_station(
        write(tmp_path, '[simulator]\nboard = "small"\n[thermal]\nmin_C = 15\nmax_C = 40\n')
    )
    st = {s.name: s for s in result.steps}
    assert result.passed, result.table()
    assert [s.name for s in result.steps] == [*STEPS, *THERMAL_STEPS]
    assert "LSCI" in st["thermal identity"].detail
    reading = st["thermal reading"].figures["temperature_C"]
    assert 15.0 <= reading <= 35.0  # the simulated stage starts at the room's temperature
    assert "set points 15..40 degC" in st["thermal limits"].detail


def test_a_stage_left_heating_beyond_the_limits_fails_and_is_left_alone(tmp_path: Path) -> None:
    """Another program left the heater on at 60 degC, above the station's max_C = 45: the
    check says so with the fix, and changes nothing (the set point reads back the same)."""
    with SimulatedBench("small", 3, thermal=True) as stage_bench:
        rm = pyvisa.ResourceManager("@py")
        res = stage_bench.thermal_resource
        ctl = rm.open_resource(res, read_termination="\n", write_termination="\n")
        ctl.write("SETP 1,333.15")
        ctl.write("RANGE 1,3")
        ctl.close()
        path = write(
            tmp_path,
            f'[smu]\naddress = "{stage_bench.smu_resource}"\n'
            f'[board]\naddress = "{stage_bench.board_url}"\n'
            f'[thermal]\naddress = "{res}"\n',
        )
        result = check_station(path)
        st = {s.name: s for s in result.steps}
        limits = st["thermal limits"]
        assert limits.status == "fail" and "outside the station's limits" in limits.detail
        assert limits.fix is not None and "safe_C" in limits.fix
        assert st["thermal reading"].status == "pass" and not result.passed
        ctl = rm.open_resource(res, read_termination="\n", write_termination="\n")
        try:
            assert float(ctl.query("SETP? 1")) == pytest.approx(333.15)
            assert int(ctl.query("RANGE? 1")) == 3
        finally:
            ctl.write("RANGE 1,0")
            ctl.close()
