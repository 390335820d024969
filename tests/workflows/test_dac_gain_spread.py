"""The MVM's DAC gain correction, on DACs of realistic spread.

The default presets' DACs are within ~0.15 % of a gain of 1, too close for a test to see
which way the correction goes. Real multichannel DACs without trimming are specified to a
few percent of gain error (e.g. a +-0.5..2 % full-scale gain error per channel before
calibration, plus the reference's tolerance), so this board's DACs are drawn with a 4 %
gain spread (`[dac] gain_error_sigma = 0.04`). The program workflow measures every row's
gain and the MVM sets ``V / gain_r`` so that row r really gets V: a correction applied the
wrong way round (``V`` or ``V * gain_r``) leaves errors of several percent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from benchmarks.truth_calibration import store_truth_calibration
from labrss.lab import Lab
from labrss.networks.model import Network
from labrss.station import parse_station
from labrss.store import Store
from labrss.workflows.mvm import MVMSettings, run_mvm
from labrss.workflows.program import ProgramSettings, program_network

GAIN_SIGMA = 0.04


@pytest.fixture
def spread_lab(tmp_path: Path) -> Iterator[Lab]:
    board = tmp_path / "spread.toml"
    board.write_text(
        f'base = "small"\nname = "dac-spread"\n\n[dac]\ngain_error_sigma = {GAIN_SIGMA}\n'
    )
    with Lab(parse_station({"simulator": {"board": str(board), "seed": 5}})) as lab:
        yield lab


def test_mvm_undoes_dac_gains_of_several_percent(spread_lab: Lab, tmp_path: Path) -> None:
    lab = spread_lab
    assert lab.simulator is not None
    true_gain = np.asarray(lab.simulator.model.truth()["dac_gain"])
    # The board really has a spread of several percent (seeded: 8 rows).
    assert np.ptp(true_gain) > 0.05
    rng = np.random.default_rng(3)
    net = Network([(rng.normal(size=(6, 3)), rng.normal(scale=0.3, size=3))], name="6-3")
    x_ref, x = rng.random((100, 6)), rng.random((6, 6))
    with Store(tmp_path / "lab.db") as store:
        store_truth_calibration(lab, store)
        # Inputs within 0.4 V so that V / gain_r stays within the 0.5 V DAC limit.
        program = program_network(lab, store, net, x_ref, settings=ProgramSettings(v_max_V=0.4))
        np.testing.assert_allclose(program.dac.gain, true_gain, atol=3e-4)
        # SMU read-out, no reference reads (they would absorb part of a row gain error
        # into a per-column gain): what remains is the DAC correction. SMU noise at NPLC 1
        # is ~1e-5 and the IR drop of the small board ~3e-3 (test_mvm.py).
        result = run_mvm(
            lab, None, program, x, settings=MVMSettings(path="smu", drift_compensation=False)
        )
    assert result.vs_programmed.median_rel_l2 < 5e-3
    # What the wrong direction would cost: every row's input off by (gain_r - 1), a few
    # percent on these outputs (the test above fails with either V or V * gain_r).
    assert float(np.std(true_gain)) > 4 * 5e-3
