"""IR-drop-aware programming on a small simulated board with long wires.

The board is the small_long_wire preset (8 x 8 cells of 8 branches, 1 ohm wire segments,
2 ohm routing switches): its IR drop (0.4-1.6 % of a cell, like the large long-wire board's
0.2-3.5 %) is well above the verification band and the reads' noise, on a board small
enough for a test. Tests may read the truth; the workflow never does.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from benchmarks.truth_calibration import store_truth_calibration
from labrss.lab import Lab
from labrss.mapping.ir_drop import Wiring, transfer_matrix
from labrss.station import parse_station
from labrss.store import Store
from labrss.workflows.ir_drop import measure_wiring, nominal_wiring
from labrss.workflows.mvm import MVMSettings, run_mvm
from labrss.workflows.program import (
    ProgramSettings,
    calibrate_row_dacs,
    element_model,
    load_program,
    program_network,
)
from tests.workflows.conftest import two_layer_network


@pytest.fixture
def long_wire_lab() -> Iterator[Lab]:
    with Lab(parse_station({"simulator": {"board": "small_long_wire", "seed": 5}})) as lab:
        yield lab


def true_smu_transfer(lab: Lab, g: np.ndarray) -> np.ndarray:
    """The true transfer of cells ``g`` as a row read through the SMU sees it."""
    assert lab.simulator is not None
    t = lab.simulator.model.truth()
    seg = float(t["wire_segment_ohm"])
    wiring = Wiring(
        row_entry_ohm=np.asarray(t["route_row_ohm"]) + seg,
        col_exit_ohm=np.asarray(t["route_col_ohm"]) + seg + float(t["lead_ohm"]),
        row_segment_ohm=seg,
        col_segment_ohm=seg,
    )
    return transfer_matrix(g, wiring)


def test_nominal_wiring_comes_from_the_boards_bill_of_materials(long_wire_lab: Lab) -> None:
    w = nominal_wiring(dict(long_wire_lab.board.info), 8, 8)
    assert w.row_segment_ohm == w.col_segment_ohm == 1.0
    np.testing.assert_allclose(w.row_entry_ohm, 3.0)  # routing switch + edge segment
    assert nominal_wiring({}, 2, 3).row_segment_ohm == 0.0  # a board that states none


def test_measured_wiring_predicts_the_true_transfer(long_wire_lab: Lab, store: Store) -> None:
    lab = long_wire_lab
    store_truth_calibration(lab, store)
    model = element_model(store.latest_calibration(1))
    dac = calibrate_row_dacs(lab, model, read_voltage_V=0.45)
    est = measure_wiring(lab, model, dac)
    assert not lab.masks().any()  # left open
    # the fit explains the reads to their noise (calibration 1e-4 per element, 8 of them
    # per cell: ~5e-5), where the nominal wiring leaves the routing spread (~1e-3)
    assert est.fit.residual_rel_rms < 1e-4 < est.fit.residual_rel_rms_nominal
    # row factors: the DAC gain estimates' errors (~1e-4) and the meter's scale
    assert np.abs(est.fit.row_factor - 1).max() < 1e-3
    # Predict a programmed-like array (random masks) with the fitted wiring: the physics
    # alone (the fit's row factors hold each row's DAC gain estimate error and the meter's
    # scale, which are not the wiring's), against the true wiring's prediction.
    rng = np.random.default_rng(0)
    masks = rng.random((8, 8, 8)) < 0.5
    g_model, _ = model.predicted_cells(masks)
    bench = true_smu_transfer(lab, g_model)
    effect = np.abs(bench / g_model - 1).max()
    fitted = np.abs(transfer_matrix(g_model, est.wiring) / bench - 1).max()
    nominal = np.abs(transfer_matrix(g_model, est.nominal) / bench - 1).max()
    assert effect > 5e-3
    # measured: fitted 1.5e-4, nominal 1.6e-3, effect 1.2e-2
    assert fitted < 0.03 * effect
    assert fitted < 0.25 * nominal


def test_ir_drop_aware_program_cuts_the_mvm_error(long_wire_lab: Lab, store: Store) -> None:
    lab = long_wire_lab
    store_truth_calibration(lab, store)
    net, x_ref, x_test = two_layer_network()
    errors = {}
    for ir in (False, True):
        prog = program_network(
            lab, store, net, x_ref, settings=ProgramSettings(ir_drop=ir, max_repair_rounds=0)
        )
        mvm = run_mvm(lab, store, prog, x_test[:8], settings=MVMSettings(path="smu"))
        errors[ir] = mvm.vs_programmed.median_rel_l2
        if not ir:
            # the wires take ~1 % of every cell: far outside the 0.3 % band
            assert prog.cells_missed > 0.5 * prog.cells_programmed
            continue
        assert prog.cells_missed == 0
        pred, meas = prog.predicted_vs_measured(programmed_only=True)
        assert np.median(np.abs(meas / pred - 1)) < 3e-4
        # the iteration: the plain solve's predicted MVM error, then the compensated ones
        for comp in prog.compensation:
            hist = comp["history"]
            assert min(hist) <= hist[0]
        first = [c["history"][0] for c in prog.compensation]
        best = [min(c["history"]) for c in prog.compensation]
        assert np.median(best) < 0.3 * np.median(first)
        again = load_program(store, prog.run_id or -1)
        assert again.wiring is not None
        np.testing.assert_array_equal(again.wiring.row_entry_ohm, prog.wiring.row_entry_ohm)  # type: ignore[union-attr]
        assert len(again.compensation) == len(prog.checks)
        # a later program reuses the measured wiring: no wiring measurement, same wiring
        reuse = program_network(
            lab,
            store,
            net,
            x_ref,
            settings=ProgramSettings(ir_drop=True, ir_wiring_run=prog.run_id),
        )
        assert reuse.wiring_estimate is None and reuse.cells_missed == 0
        assert reuse.wiring is not None
        np.testing.assert_array_equal(reuse.wiring.parameters(), again.wiring.parameters())
        assert reuse.instrument_time_s < prog.instrument_time_s
        plain_run = store.runs(kind="program")[0].id
        with pytest.raises(ValueError, match=f"run {plain_run} was not IR-drop-aware"):
            program_network(
                lab,
                store,
                net,
                x_ref,
                settings=ProgramSettings(ir_drop=True, ir_wiring_run=plain_run),
            )
    # measured 2.1e-2 plain, 6e-4 compensated (SMU read-out)
    assert errors[True] < errors[False] / 5
