"""`realise --temperature-range`: subsets chosen over a span from measured TCRs, checked
through the stage against the simulator's truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibration.settings import CalibrationSettings, parse_cells
from labrss.lab import Lab
from labrss.lab.stage import go_to_temperature
from labrss.station.config import parse_station
from labrss.store import Store
from labrss.workflows.realise import RealiseError, RealiseSettings, parse_targets, realise
from labrss.workflows.thermal_calibration import (
    ThermalCalibrationSettings,
    run_thermal_calibration,
)

STATION = parse_station(
    {"simulator": {"board": "thickfilm", "seed": 7}, "thermal": {"min_C": 10, "max_C": 45}}
)


def test_compensated_mask_holds_over_the_span(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    cal = run_thermal_calibration(
        ThermalCalibrationSettings(
            (15.0, 25.0, 35.0), CalibrationSettings(cells=parse_cells("0,0"))
        ),
        station=STATION,
        db_path=db,
    )
    assert cal.fit is not None
    total = float(np.nansum(cal.fit.conductance_S[0]))
    targets = parse_targets([f"0,0={0.45 * total:.6g}S"])
    settings = RealiseSettings(temperature_range_C=(15.0, 35.0), verify=False)
    with Store(db) as store, Lab(STATION) as lab:
        (cell,) = realise(lab, store, targets, settings).cells
        t = cell.temperature
        assert t is not None and t["compensated_mask"] == cell.mask
        assert t["worst_compensated_S"] <= t["worst_plain_S"]
        target = cell.target_S
        # through the stage: at 35 degC the true bank, relative to the target that follows
        # the measured common TCR, is where the prediction says (within its slope's
        # uncertainty over 10 K and the calibration's few ppm)
        go_to_temperature(lab, 35.0)
        assert lab.simulator is not None
        true_S = float(lab.simulator.model.true_cell_conductance_S()[0, 0])
        alpha_c = t["common_tcr_ppm_per_K"] * 1e-6
        board_C = lab.simulator.model.true_temperature_C()
        err = true_S - target * (1 - alpha_c * (board_C - 25.0))
        predicted = t["errors_compensated_S"][-1]
        u = np.hypot(10.0 * t["u_slope_S_per_K"], 3e-5 * target)
        assert abs(err - predicted) < 3 * u + abs(alpha_c * target * (board_C - 35.0))


def test_no_tcr_no_span(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store, Lab(STATION) as lab:
        from labrss.workflows.calibrate import run_calibration

        run_calibration(
            CalibrationSettings(cells=parse_cells("0,0")),
            station=STATION,
            db_path=tmp_path / "s.db",
        )
        with pytest.raises(RealiseError, match="calibrate --temperatures"):
            realise(
                lab,
                store,
                parse_targets(["0,0=2k"]),
                RealiseSettings(temperature_range_C=(15.0, 35.0), verify=False),
            )


def test_plain_realise_carries_the_prediction_by_each_elements_tcr(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    cal = run_thermal_calibration(
        ThermalCalibrationSettings((15.0, 35.0), CalibrationSettings(cells=parse_cells("1,1"))),
        station=STATION,
        db_path=db,
    )
    assert cal.fit is not None
    total = float(np.nansum(cal.fit.conductance_S[0]))
    with Store(db) as store, Lab(STATION) as lab:
        go_to_temperature(lab, 40.0)  # 10 K beyond the calibration's reference
        assert lab.simulator is not None
        (cell,) = realise(
            lab, store, parse_targets([f"1,1={0.5 * total:.6g}S"]), RealiseSettings(verify=False)
        ).cells
        lab.set_cell_mask(1, 1, cell.mask)
        true_S = float(lab.simulator.model.true_cell_conductance_S()[1, 1])
    # the temperature component is the TCRs' uncertainty over ~15 K, not the BOM widening
    assert cell.components["temperature"] < 1e-5 * cell.predicted_S
    # carried by the thick-film TCRs (+-100 ppm/K over 15 K), the prediction stays within
    # its expanded uncertainty of the truth (the meter's scale dominates it)
    assert abs(cell.predicted_S - true_S) <= cell.expanded_S
