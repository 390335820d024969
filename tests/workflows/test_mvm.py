"""Analog MVM of a programmed network against the digital networks (small simulated board)."""

from __future__ import annotations

import numpy as np
import pytest

from labrss.lab import Lab
from labrss.store import Store
from labrss.workflows.mvm import MVMSettings, run_mvm
from labrss.workflows.program import ProgramResult, program_network
from tests.workflows.conftest import two_layer_network


@pytest.fixture
def programmed(lab: Lab, calibrated: Store) -> ProgramResult:
    net, x_ref, _ = two_layer_network()
    return program_network(lab, calibrated, net, x_ref)


def test_adc_read_out_matches_the_programmed_network(
    lab: Lab, calibrated: Store, programmed: ProgramResult
) -> None:
    _, _, x = two_layer_network()
    labels = programmed.network.predict(x)
    result = run_mvm(lab, calibrated, programmed, x, labels)
    # ADC floor: 50 nA noise and a 0.15 uA LSB (~70 nA rms per column, ~0.1 uA per
    # differential pair) against this small network's differential column currents of
    # ~10-20 uA (5-6 rows at <= 0.49 V on 8x8 cells): ~1 % per output vector. (The default
    # board's 13-16 row tiles carry 2-3x more current: 0.55 % in the demo.)
    assert result.vs_programmed.median_rel_l2 < 0.02
    assert result.vs_programmed.argmax_agreement >= 0.95
    # the programmed network is the target up to the RSS quantisation (~1e-4 per weight)
    assert result.vs_target.median_rel_l2 < 0.02
    assert all(e < 0.02 for e in result.layer_rel_l2_median)
    assert result.y_analog.shape == (40, 3)
    assert not lab.masks().any()
    run = calibrated.run(result.run_id or -1)
    assert run.kind == "mvm" and run.status == "completed"
    np.testing.assert_array_equal(calibrated.get_result(run.id, "y_analog"), result.y_analog)
    assert calibrated.get_value(run.id, "summary")["vectors"] == 40


def test_drift_compensation_removes_the_read_out_gain_errors(
    lab: Lab, programmed: ProgramResult
) -> None:
    _, _, x = two_layer_network()
    x = x[:20]
    with_ref = run_mvm(lab, None, programmed, x, settings=MVMSettings(drift_compensation=True))
    without = run_mvm(lab, None, programmed, x, settings=MVMSettings(drift_compensation=False))
    # ADC gain errors (sigma 1e-3 per column) and offsets (20 nA + TIA offsets) act on
    # each column of a differential pair separately; the reference reads cancel them.
    assert with_ref.vs_programmed.median_rel_l2 < without.vs_programmed.median_rel_l2
    gains = np.concatenate([np.ravel(k) for layer in with_ref.column_gain for k in layer])
    assert np.all(np.abs(gains - 1.0) < 0.01)


def test_smu_read_out(lab: Lab, programmed: ProgramResult) -> None:
    _, _, x = two_layer_network()
    result = run_mvm(lab, None, programmed, x[:5], settings=MVMSettings(path="smu"))
    # SMU at NPLC 1: ~1e-5 relative per column reading; the residue is the IR drop
    assert result.vs_programmed.median_rel_l2 < 3e-3
    assert lab.instrument_time_s > 0


def test_bad_inputs_are_refused(lab: Lab, programmed: ProgramResult) -> None:
    with pytest.raises(ValueError, match=r"inputs shape \(3, 4\), expected \(B, 10\)"):
        run_mvm(lab, None, programmed, np.zeros((3, 4)))
    x = np.zeros((2, 10))
    x[1, 3] = np.inf
    with pytest.raises(ValueError, match=r"input\[1, 3\] = inf"):
        run_mvm(lab, None, programmed, x)
    with pytest.raises(ValueError, match="path"):
        run_mvm(lab, None, programmed, np.zeros((2, 10)), settings=MVMSettings(path="dmm"))  # type: ignore[arg-type]
