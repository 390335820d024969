"""Calibration at several temperatures through the simulated stage: TCRs that cover the
truth, the stability wait's timeout, interruption and resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibration.settings import CalibrationSettings, SettingsError, parse_cells
from labrss.lab import Lab
from labrss.lab.stage import ThermalStabilityError, go_to_temperature
from labrss.station.config import parse_station
from labrss.store import Store
from labrss.workflows.thermal_calibration import (
    ThermalCalibrationSettings,
    parse_temperatures,
    run_thermal_calibration,
)
from simulator.board_config import load_board_config
from simulator.board_instance import draw_board_instance

SEED = 3
STATION = parse_station(
    {"simulator": {"board": "thickfilm", "seed": SEED}, "thermal": {"min_C": 10, "max_C": 45}}
)
CELLS = "0,0"


def _settings(temps: tuple[float, ...] = (20.0, 30.0, 40.0)) -> ThermalCalibrationSettings:
    return ThermalCalibrationSettings(temps, CalibrationSettings(cells=parse_cells(CELLS)))


def _true_branch_tcr(cells: list[tuple[int, int]]) -> np.ndarray:
    """Each branch's true TCR (ppm/K) as calibrated: the element in series with its switch
    (closed minus open branch: R + R_on, each with its own coefficient)."""
    cfg = load_board_config("thickfilm")
    inst = draw_board_instance(cfg, SEED)
    out = []
    for r, c in cells:
        rr, ron = inst.resistance_ref_ohm[r, c], inst.r_on_ref_ohm[r, c]
        alpha = inst.tcr_ppm_per_K[r, c]
        out.append((rr * alpha + ron * cfg.switch.r_on_tempco_ppm_per_K) / (rr + ron))
    return np.array(out)


def test_tcr_estimates_cover_the_truth_and_separate_common_from_spread(tmp_path: Path) -> None:
    out = run_thermal_calibration(_settings(), station=STATION, db_path=tmp_path / "s.db")
    assert out.status == "completed" and out.fit is not None and out.common is not None
    est, u = out.fit.tcr_ppm_per_K, out.fit.u_tcr_ppm_per_K
    z = (est - _true_branch_tcr(list(out.cells))) / u
    # 24 elements, k = 2: expect ~95 %; the uncertainties are not inflated either
    assert np.mean(np.abs(z) < 2) >= 0.85
    assert 0.5 < np.sqrt(np.mean(z**2)) < 1.5
    # thick-film preset: common +40 ppm/K (+3.6 from the switches), spread 30 ppm/K
    assert out.common.common_ppm_per_K == pytest.approx(43.6, abs=15.0)
    assert out.common.spread_ppm_per_K == pytest.approx(30.0, abs=12.0)
    with Store(out.db_path) as store:
        tcr = store.latest_tcr(1)
        assert tcr is not None
        assert np.array_equal(tcr.tcr_ppm_per_K[0, :1], est)
        assert store.run(out.run_id).status == "completed"
    # the stage is back at the safe set point


def test_interrupted_run_leaves_the_stage_safe_and_resumes_where_it_stopped(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    second_point = {"reached": False}

    def progress(message: str) -> None:
        if message.startswith("stage: going to 30"):
            second_point["reached"] = True

    first = run_thermal_calibration(
        _settings((20.0, 30.0, 40.0)),
        station=STATION,
        db_path=db,
        progress=progress,
        should_stop=lambda: second_point["reached"],  # Ctrl-C while going to 30 degC
    )
    assert first.status == "interrupted"
    done = [p["status"] for p in first.points]
    assert done[0] == "completed" and "completed" not in done[2:]
    resumed = run_thermal_calibration(None, station=STATION, db_path=db, resume=first.run_id)
    assert resumed.status == "completed"
    assert resumed.points[0]["calibration_run_id"] == first.points[0]["calibration_run_id"]
    with Store(db) as store:
        assert store.run(resumed.run_id).parent_run_id == first.run_id
        assert store.run(first.run_id).status == "interrupted"


def test_stability_timeout_is_a_clear_error() -> None:
    st = parse_station(
        {
            "simulator": {"board": "small"},
            "thermal": {"stability_timeout_s": 300, "stability_window_s": 60},
        }
    )
    with (
        Lab(st) as lab,
        pytest.raises(ThermalStabilityError, match=r"not stable at 40 degC after .*board"),
    ):
        go_to_temperature(lab, 40.0)


@pytest.mark.parametrize(
    ("temps", "station", "match"),
    [
        ((20.0, 50.0), STATION, "outside the station's"),
        ((20.0,), STATION, "at least 2"),
        ((20.0, 30.0), parse_station({}), r"no \[thermal\] section"),
    ],
)
def test_bad_requests_are_refused_before_anything_moves(
    temps: tuple[float, ...], station: object, match: str, tmp_path: Path
) -> None:
    with pytest.raises(SettingsError, match=match):
        run_thermal_calibration(_settings(temps), station=station, db_path=tmp_path / "x.db")  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="'x' is not a number"):
        parse_temperatures("20,x")


def test_export_writes_the_tcr_per_element(tmp_path: Path) -> None:
    from labrss.store.export import export_run

    out = run_thermal_calibration(
        ThermalCalibrationSettings((20.0, 40.0), CalibrationSettings(cells=parse_cells("1,1"))),
        station=STATION,
        db_path=tmp_path / "s.db",
    )
    with Store(out.db_path) as store:
        files = export_run(store, out.run_id, tmp_path / "csv", "csv")
        (npz,) = export_run(store, out.run_id, tmp_path / "x.npz", "npz")
    (tcr_csv,) = [f for f in files if f.name == "tcr.csv"]
    rows = tcr_csv.read_text().splitlines()
    assert rows[0].split(",")[:4] == ["r", "c", "k", "tcr_ppm_per_K"]
    assert len(rows) == 1 + 24
    assert out.fit is not None
    first = rows[1].split(",")
    assert float(first[3]) == pytest.approx(out.fit.tcr_ppm_per_K[0, 0])
    with np.load(npz, allow_pickle=False) as data:
        assert np.isfinite(data["tcr_ppm_per_K"][1, 1]).all()
