"""`labrss memristor write-verify|rss|drift` on the embedded simulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labrss.cli.main import main
from labrss.store import Store


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(["memristor", *argv, "--json"]) == 0
    payload: dict[str, object] = json.loads(capsys.readouterr().out)
    return payload


def test_write_verify_json_and_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "lab.db"
    out = run_json(
        capsys,
        "write-verify",
        "--device",
        "0,1,2:40e-6",
        "--device",
        "0,1,3:25e-6",
        "--tolerance",
        "0.02",
        "--db",
        str(db),
    )
    assert out["status_counts"] == {"ok": 2}
    detail = out["devices_detail"]
    assert isinstance(detail, list)
    assert [d["branch"] for d in detail] == [[0, 1, 2], [0, 1, 3]]
    assert all(abs(d["error"]) <= 0.02 for d in detail)
    with Store(db) as store:
        run_id = out["run_id"]
        assert isinstance(run_id, int)
        assert store.run(run_id).kind == "write_verify"
        assert store.get_result(run_id, "pulses").size == out["pulses"]


def test_rss_and_drift_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["memristor", "rss", "--cell", "0,3:150e-6", "--no-store"]) == 0
    text = capsys.readouterr().out
    assert "method: rss" in text
    assert "mask_hex=" in text
    out = run_json(capsys, "drift", "--cell", "1,1:120e-6", "--times", "60,86400", "--no-store")
    assert out["times_s"] == [60.0, 86400.0]
    assert out["pulses_after_programming"] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["write-verify", "--device", "0,1:3e-5"], "expected R,C,K:TARGET_S"),
        (["write-verify", "--device", "0,1,2:abc"], "not a number"),
        (["write-verify", "--device", "0,1,9:3e-5"], "not on the board"),
        (["rss", "--cell", "0,0:1e-4", "--tolerance", "2"], "tolerance"),
        (["drift", "--cell", "0,0:1e-4", "--times", "10,x"], "--times"),
        (["rss", "--cell", "0,0:1e-4", "--board", "mixed"], "resistors"),
    ],
)
def test_bad_input_exit_code_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["memristor", *argv, "--no-store"]) == 2
    assert message in capsys.readouterr().err


def test_station_pulse_limit_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    station = tmp_path / "st.toml"
    station.write_text('[limits]\nmax_pulse_voltage_V = 1.0\n[simulator]\nboard = "memristor"\n')
    argv = ["write-verify", "--device", "0,0,0:4e-5", "--station", str(station), "--no-store"]
    code = main(["memristor", *argv])
    assert code == 2
    assert "pulse limit 1.0 V" in capsys.readouterr().err
