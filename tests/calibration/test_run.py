"""Calibration runs on the simulated bench: accuracy against the ground truth, faults.

Seeded: the default board (16x16x8, seed 0) through the embedded simulator, exactly the
code path of a real bench. Small cell selections and NPLC 0.01 keep the tests fast; at
low NPLC the SMU noise dominates the meter's fixed per-range gain errors (0.02-0.025 % of
reading, which no number of repeats removes; docs/calibration.md), so the standardised
errors test the reported uncertainties themselves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats  # type: ignore[import-untyped]

from calibration.run import CalibrationRun, band_from_board_info, build_plan, design_rows
from calibration.settings import (
    CalibrationSettings,
    CellSelection,
    DesignName,
    SettingsError,
    parse_cells,
)
from labrss.lab import Lab, SafetyLimitError
from labrss.store import Store
from simulator.smu_physics import NOISE_EXPONENT, NOISE_PPM_OF_RANGE_1PLC
from tests.calibration.test_run_helpers import (
    faulty_board_toml,
    sim_station,
    true_branch_conductance_S,
)

NPLC = 0.01
VOLTAGE_V = 0.1


def _noise_floor_rel(a_S: np.ndarray, ranges_A: np.ndarray, nplc: float) -> np.ndarray:
    """One reading's relative noise for each element (cells, K): the SMU's noise on the
    current range its cell's readings used (the median range: the design decides which
    ranges autorange picks), 5 ppm of the range at 1 PLC x NPLC^-0.67 (the simulator's
    published model, docs/smu-emulators.md), over the element's current a V."""
    sigma_A = NOISE_PPM_OF_RANGE_1PLC * 1e-6 * ranges_A * nplc**NOISE_EXPONENT
    floor: np.ndarray = sigma_A[:, None] / (np.abs(a_S) * VOLTAGE_V)
    return floor


@pytest.mark.parametrize("design", ["weighing", "single"])
def test_estimates_match_the_ground_truth_within_their_uncertainties(
    tmp_path: Path, design: DesignName
) -> None:
    cells = [(3, 5), (11, 2)]
    settings = CalibrationSettings(
        cells=CellSelection(rows=(3, 11), cols=(2, 5)), design=design, nplc=NPLC
    )
    with Lab(sim_station()) as lab, Store(tmp_path / "lab.db") as store:
        run = CalibrationRun(lab, store, settings)
        # the selection is the product rows x cols: four cells
        result = run.run()
        readings = store.readings(result.run_id)
        assert lab.simulator is not None
        with lab.simulator.lock:
            truth = lab.simulator.model.truth()
    got = [(c.r, c.c) for c in result.cells]
    assert got == [(3, 2), (3, 5), (11, 2), (11, 5)]
    assert set(cells) <= set(got)
    a = result.conductance_S()
    s = result.std_S()
    a_true = true_branch_conductance_S(truth, got)
    z = ((a - a_true) / s).ravel()
    n = z.size
    # Standardised errors: with the right uncertainties, mean z^2 is (chi2(n)/n) over the
    # noise scale's own (chi2(nu)/nu), nu = the residual degrees of freedom it was pooled
    # from: F(n, nu). Two-sided 99.9 % band.
    nu = int(result.summary["noise_dof"])
    assert nu >= 4
    lo, hi = stats.f.ppf([0.0005, 0.9995], n, nu)
    assert lo < float(np.mean(z**2)) < hi, (float(np.mean(z**2)), lo, hi)
    # Median relative error within twice the SMU's one-reading noise floor at this NPLC.
    rel_err = np.abs(a - a_true) / a_true
    # the design's readings (not the range-link reads, which use chosen fixed ranges)
    design = np.array([str(k).split(",")[4].startswith("f") for k in readings["key"]])
    ranges = np.array(
        [
            np.median(
                readings["current_range_A"][design & (readings["r"] == r) & (readings["c"] == c)]
            )
            for r, c in got
        ]
    )
    floor = _noise_floor_rel(a_true, ranges, NPLC)
    assert np.median(rel_err) < 2 * np.median(floor), (np.median(rel_err), np.median(floor))
    assert result.faults == ()
    assert result.summary["elements"] == 32
    assert result.summary["faults"] == 0


def test_every_raw_reading_is_stored_with_its_key(tmp_path: Path) -> None:
    settings = CalibrationSettings(cells=CellSelection((0,), (0,)), design="single", nplc=NPLC)
    with Lab(sim_station()) as lab, Store(tmp_path / "lab.db") as store:
        result = CalibrationRun(lab, store, settings).run()
        readings = store.readings(result.run_id)
        plan = build_plan(result.settings, [(0, 0)], 8)
        keys = [str(k) for k in readings["key"]]
        # the design's readings in plan order, then the range links' (tag l...)
        assert keys[: len(plan)] == [p.key for p in plan]
        assert keys[len(plan) :] and all(k.split(",")[4].startswith("l") for k in keys[len(plan) :])
        # +V then -V of each subset; the store has the raw V and I of both
        assert np.all(readings["voltage_V"][0::2] > 0) and np.all(readings["voltage_V"][1::2] < 0)
        info = store.run(result.run_id)
        assert info.status == "completed"
        assert store.estimates(result.run_id)[0].n_readings == len(plan)
        assert result.summary["range_links"], "the default run links its current ranges"
        cal = store.latest_calibration(info.board_id)
        assert cal.measured[0, 0] and not cal.measured[0, 1]
        np.testing.assert_allclose(cal.conductance_S[0, 0], result.cells[0].conductance_S)
        assert np.isfinite(cal.series_ohm[0, 0]) and np.isfinite(cal.leakage_S[0, 0])


def test_weighing_design_factor_from_the_design_matrices() -> None:
    """The designs' own factor (what the measurement below should approach): with the same
    noise on every reading, the standard error per reading-normalised is smaller for the
    weighing design: sigma sqrt(diag((A^T A)^-1)) x sqrt(M) (readings per pass), the
    designs the runs use (c0 and r_s linearised at r_s=0)."""
    n = 8
    factors = []
    for design in ("single", "weighing"):
        X, _ = design_rows(design, n, holdout=0, seed=0, cell=(0, 0))
        A = np.hstack([np.ones((X.shape[0], 1)), X])
        se = np.sqrt(np.diag(np.linalg.inv(A.T @ A)))[1:]
        factors.append(float(np.median(se)) * np.sqrt(X.shape[0]))
    ratio = factors[1] / factors[0]
    # single: var(a_i) = 2 sigma^2 for a reading minus the empty one, x sqrt(11 readings);
    # single (empty, 8 alone, full twice: 11 rows): se 0.942 sigma; weighing (empty,
    # S-matrix of order 11 padded to 8 branches, full: 13 rows): se 0.563 sigma; ratio
    # 0.563 sqrt(13) / (0.942 sqrt(11)) = 0.650.
    assert ratio == pytest.approx(0.650, abs=0.002)


def test_weighing_design_beats_one_by_one_at_equal_readings_measured(tmp_path: Path) -> None:
    """Measured, not computed: both designs calibrate the same 4 cells on a fixed 100 uA
    range (the same noise on every reading, NPLC 0.01 so that noise dominates), each on a
    fresh bench of the same seed. Per reading (x sqrt(readings per cell)), the weighing
    design's statistical standard error and its actual error against the simulator's truth
    are both smaller than one-by-one's."""
    figures = {}
    for design in ("single", "weighing"):
        station = sim_station(measurement={"current_range_A": 1e-4})
        settings = CalibrationSettings(cells=parse_cells("0,0-3"), design=design, nplc=NPLC)
        with Lab(station) as lab, Store(tmp_path / f"{design}.db") as store:
            assert lab.simulator is not None
            result = CalibrationRun(lab, store, settings).run()
            cells = [(c.r, c.c) for c in result.cells]
            a_true = true_branch_conductance_S(lab.simulator.model.truth(), cells)
        a = result.conductance_S()
        per_cell = result.cells[0].n_readings
        stat = np.array([c.components["statistical"] for c in result.cells if c.components])
        assert stat.shape == a.shape
        err = a / a_true - 1.0
        figures[design] = (
            float(np.median(stat / a) * np.sqrt(per_cell)),
            float(np.sqrt(np.median(err**2)) * np.sqrt(per_cell)),
        )
    se_ratio = figures["weighing"][0] / figures["single"][0]
    err_ratio = figures["weighing"][1] / figures["single"][1]
    # The design factor is 0.65 without the series fit and 0.43-0.57 per branch with it
    # (docs/calibration.md); 0.58 measured here. The error ratio comes from 32 elements per
    # design: its own relative spread is ~18 % (0.42 measured), so 0.85 is > 2 spreads above.
    assert 0.43 <= se_ratio <= 0.70
    assert err_ratio < 0.85


def test_band_from_the_board_bill_of_materials() -> None:
    info = {
        "nominal_ohm": "10000/18000",
        "tolerance": "0.05",
        "switch_on_ohm": "9.5",
    }
    band = band_from_board_info(info, 2, margin=0.0)
    assert band is not None
    np.testing.assert_allclose(band.high_S, [1 / (9500 + 4.75), 1 / (17100 + 4.75)])
    assert band.low_S[0] == pytest.approx(1 / (10500 + 14.25) - 1e-9)
    assert band_from_board_info({}, 2, margin=0.0) is None


def test_bad_input_is_refused_before_anything_is_switched(tmp_path: Path) -> None:
    with Lab(sim_station()) as lab, Store(tmp_path / "lab.db") as store:
        assert lab.simulator is not None
        with pytest.raises(SettingsError, match="row 16 is not on the board"):
            CalibrationRun(lab, store, CalibrationSettings(cells=CellSelection((16,), None))).run()
        with lab.simulator.lock:
            assert int(lab.simulator.model.switches.sum()) == 0
        assert store.runs() == []
    # 4 V across the smallest element (R_min from the board's BOM: 10 kohm x (1 - 5 %))
    # is 1.7 mW, beyond a station's 1 mW per element.
    station = sim_station(limits={"max_source_voltage_V": 5.0, "max_power_per_element_W": 1e-3})
    with Lab(station) as lab, Store(tmp_path / "lab.db") as store:
        assert lab.simulator is not None
        with pytest.raises(SafetyLimitError, match="power"):
            CalibrationRun(lab, store, CalibrationSettings(read_voltage_V=4.0)).run()
        with lab.simulator.lock:
            assert int(lab.simulator.model.switches.sum()) == 0
        assert store.runs() == []


@pytest.mark.slow
def test_every_injected_fault_is_found_and_none_invented(tmp_path: Path) -> None:
    """The whole seeded 16x16x8 board (2048 branches, 4 injected faults), one-by-one."""
    board = faulty_board_toml(tmp_path / "faulty.toml")
    station = sim_station(str(board), seed=7)
    with Lab(station) as lab, Store(tmp_path / "lab.db") as store:
        assert lab.simulator is not None
        with lab.simulator.lock:
            truth = lab.simulator.model.truth()
        injected = {(f["row"], f["col"], f["branch"]): f["kind"] for f in truth["faults"]}
        assert len(injected) == 4
        settings = CalibrationSettings(design="single", nplc=0.1, batch_size=200)
        result = CalibrationRun(lab, store, settings).run()
    found = {(f.r, f.c, f.k): f.kind for f in result.faults}
    expected = {
        "open_resistor": "open",
        "stuck_open": "open",
        "stuck_closed": "stuck_closed",
        "shorted_resistor": "short",
    }
    assert found == {key: expected[kind] for key, kind in injected.items()}
    assert len(result.cells) == 256
    # the short's cell is listed for re-measurement (its other estimates are unreliable)
    short = next(key for key, kind in injected.items() if kind == "shorted_resistor")
    assert result.summary["remeasure_cells"] == [list(short[:2])]


def _drift_run(tmp_path: Path, board: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A one-cell drift sample (three rounds 30 min apart, NPLC 1): the measured relative
    drift per hour, its standard error, and the true one from the simulator's truth
    (secant over the sampling hour: the fit's slope of a smooth aging curve)."""
    settings = CalibrationSettings(
        cells=CellSelection((5,), (5,)),
        design="single",
        nplc=1.0,
        drift_cells=1,
        drift_rounds=3,
        drift_interval_s=1800.0,
    )
    with Lab(sim_station(board)) as lab, Store(tmp_path / "lab.db") as store:
        assert lab.simulator is not None
        model = lab.simulator.model
        t0 = lab.simulator.clock.now_s
        g0 = true_branch_conductance_S(model.truth(), [(5, 5)])[0]
        result = CalibrationRun(lab, store, settings).run()
        # two waits of 30 min of virtual time between the three rounds
        hours = (lab.simulator.clock.now_s - t0) / 3600.0
        assert hours >= 1.0
        g1 = true_branch_conductance_S(model.truth(), [(5, 5)])[0]
        elements = store.get_result(result.run_id, "drift_elements")
        rel = store.get_result(result.run_id, "drift_relative_per_hour")
        rel_std = store.get_result(result.run_id, "drift_relative_per_hour_std")
    assert elements.tolist() == [[5, 5, k] for k in range(8)]
    assert result.drift is not None and result.drift.g_S.shape == (8, 3)
    assert result.summary["drift"]["elements"] == 8
    assert np.all(np.isfinite(rel_std) & (rel_std > 0))
    return rel, rel_std, (g1 - g0) / g0 / hours


def test_drift_sample_measures_the_true_drift(tmp_path: Path) -> None:
    # Resistors aging 5000 ppm per decade of (1 + t / 1 h), temperature held: over the
    # sampling hour G falls by ~1e-3 per hour, 100x the meter's noise, so the measured drift
    # must be that (sign and size), within its reported standard error: a zero or
    # wrong-signed drift fails.
    board = tmp_path / "aging.toml"
    board.write_text(
        'base = "default"\nname = "aging"\n\n[element]\naging_ppm_per_decade = 5000.0\n'
        "aging_sigma_ppm_per_decade = 0.0\n\n[environment]\ndaily_amplitude_K = 0.0\n"
        "walk_sigma_K = 0.0\n"
    )
    rel, rel_std, true = _drift_run(tmp_path, str(board))
    assert np.all(true < -5e-4)  # the board really drifts
    # The fit's slope over three rounds vs the secant of the true curve: the same to
    # ~2 % of the drift (the aging curve bends little over an hour); the noise: rel_std.
    np.testing.assert_array_less(np.abs(rel - true), 4 * rel_std + 0.02 * np.abs(true))


def test_drift_sample_on_the_default_board_is_below_the_noise(tmp_path: Path) -> None:
    # The default board ages 20 ppm per decade and follows a 0.3 K walk at 100 ppm/K: its
    # true drift over the hour is < 5e-5 per hour, and what the sample reports is that plus
    # the meter's noise (docs/calibration.md: median |drift| 7.6e-6 per hour with a standard
    # error of 1.1e-5): within 5e-5 (4.5 standard errors) of the truth for every element,
    # median |drift| below 3e-5. A zero-drift implementation would pass this one; the
    # aging board above is what it fails. (Three rounds give each element's own standard
    # error one degree of freedom: too rough to test against.)
    rel, _, true = _drift_run(tmp_path, "default")
    assert np.all(np.abs(true) < 5e-5)
    np.testing.assert_array_less(np.abs(rel - true), 5e-5)
    assert np.median(np.abs(rel)) < 3e-5
