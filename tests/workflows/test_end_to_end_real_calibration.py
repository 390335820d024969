"""Calibrate, program, run MVMs: end to end through a real calibration, at the settings users
run (the station's defaults: one-by-one, NPLC 1, 0.1 V with reversal), on a small board.

The other program and MVM tests start from a calibration written from the simulator's truth
(benchmarks/truth_calibration.py) for speed; this one measures it, so an error of the
calibration (its estimates, its series path, its faults) reaches the program and the MVMs
as it would for a user. Few cells keep it short: the network uses a 4 x 4 corner of the
8 x 8 board, and only columns 0-3 are calibrated (32 cells, 256 branches: every row needs a
calibrated branch for its DAC gain).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from calibration.run import CalibrationRun
from calibration.settings import CalibrationSettings, parse_cells
from labrss.lab import Lab
from labrss.networks.model import Network
from labrss.store import Store
from labrss.workflows.mvm import MVMSettings, run_mvm
from labrss.workflows.program import program_network
from tests.workflows.conftest import small_station


def test_calibrate_program_and_run_mvms_through_a_real_calibration(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    # 3 inputs + bias = 4 rows; 2 outputs = 2 differential pairs = 4 columns.
    net = Network([(rng.normal(size=(3, 2)), rng.normal(scale=0.3, size=2))], name="3-2")
    x_ref, x = rng.random((100, 3)), rng.random((20, 3))
    with Lab(small_station()) as lab, Store(tmp_path / "lab.db") as store:
        cal = CalibrationRun(lab, store, CalibrationSettings(cells=parse_cells("*,0-3"))).run()
        assert cal.status == "completed"
        assert cal.settings.nplc == lab.station.measurement.nplc == 1.0
        assert len(cal.cells) == 32 and not cal.faults
        # One-by-one at NPLC 1 on 10-612 kohm branches: relative standard errors ~1e-5;
        # with the meter's common scale (docs/metrology.md) the combined ~1e-4.
        assert cal.summary["median_relative_uncertainty_statistical"] < 3e-5
        assert cal.summary["median_relative_uncertainty"] < 2e-4
        program = program_network(lab, store, net, x_ref)
        assert program.calibration_run_id == cal.run_id
        assert program.cells_missed == 0
        adc = run_mvm(lab, store, program, x)
        smu = run_mvm(lab, None, program, x[:5], settings=MVMSettings(path="smu"))
    # The same bounds as with the truth calibration (test_mvm.py): the ADC floor of ~1 %
    # per output vector on this small network, and ~3e-3 of IR drop on the SMU path. The
    # programmed network is the target up to the RSS quantisation of the calibrated
    # elements (~1e-4 per weight with 8 branches), plus the calibration's own error.
    assert adc.vs_programmed.median_rel_l2 < 0.02
    assert adc.vs_target.median_rel_l2 < 0.02
    assert adc.vs_programmed.argmax_agreement >= 0.95
    assert smu.vs_programmed.median_rel_l2 < 3e-3
    quantisation = program.network_programmed.forward(x) - net.forward(x)
    assert np.max(np.abs(quantisation)) < 2e-3 * np.max(np.abs(net.forward(x)))
