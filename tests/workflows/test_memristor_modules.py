"""The memristor characterisation modules on the simulated memristor board: I-V, retention,
endurance and seek, their stored runs, cancel, and the bench's limits.

Truth is used here only to check the modules' figures (thresholds, endurance budgets,
conductances); the modules themselves see only what the bench measures.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from labrss.lab import Lab, LabInputError
from labrss.memristor import WriteVerifySettings
from labrss.memristor.characterisation import log_checkpoints
from labrss.station import parse_station
from labrss.store import Store
from labrss.store.dataset import run_dataset
from labrss.workflows.memristor_endurance import EnduranceSettings, endurance
from labrss.workflows.memristor_iv import IVSettings, iv_sweep
from labrss.workflows.memristor_module import parse_branches, select_devices
from labrss.workflows.memristor_retention import RetentionSettings, retention
from labrss.workflows.memristor_seek import seek


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(parse_station({"simulator": {"board": "memristor", "seed": 2}})) as opened:
        yield opened


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "lab.db") as s:
        yield s


def _truth(lab: Lab) -> dict[str, np.ndarray]:
    assert lab.simulator is not None
    with lab.simulator.lock:
        return lab.simulator.model.truth()  # type: ignore[no-any-return]


def test_device_selection(lab: Lab) -> None:
    assert select_devices(lab, "0,1-2", "3+5") == [(0, 1, 3), (0, 1, 5), (0, 2, 3), (0, 2, 5)]
    assert parse_branches("*", 4) == (0, 1, 2, 3)
    with pytest.raises(LabInputError, match=r"not in 0\.\.7"):
        select_devices(lab, "0,0", "6-8")
    with pytest.raises(LabInputError, match="column 9 is not on the board"):
        select_devices(lab, "0,9", "0")


def test_iv_loops_and_thresholds(lab: Lab, store: Store) -> None:
    devices = select_devices(lab, "1,2", "0-1")
    settings = IVSettings(v_set_max_V=1.8, v_reset_max_V=1.5, step_V=0.1, cycles=2)
    result = iv_sweep(lab, devices, settings, store=store)
    assert lab.simulator is not None and lab.simulator.model.memristors is not None
    drawn = lab.simulator.model.memristors.devices
    th_set = np.array([drawn.set_threshold_V[d] for d in devices])
    th_reset = np.array([drawn.reset_threshold_V[d] for d in devices])
    # Nothing switches at or below a device's threshold (the simulated law is zero there,
    # and 5 % of the state is > 10 read-noise sigmas): every extracted voltage lies above
    # it, and within the sweep.
    assert np.isfinite(result.set_V).all() and np.isfinite(result.reset_V).all()
    assert (result.set_V > th_set[:, None]).all() and (result.set_V <= 1.8).all()
    assert (-result.reset_V > th_reset[:, None]).all() and (result.reset_V >= -1.5).all()
    # the loop opens: high after the positive half, low after the negative half
    half = int(np.argmin(result.voltage_V > 0))
    assert (result.conductance_S[:, :, half - 1] > 2 * result.conductance_S[:, :, -1]).all()
    ds = run_dataset(store, result.run_id or -1)
    assert ds["conductance_S"].dims == ("device", "cycle", "step")
    assert ds["voltage_V"].dims == ("step",) and ds.attrs["run_kind"] == "memristor_iv"
    assert ds.sizes["reading"] == result.reads == 2 * (1 + 2 * result.voltage_V.size)
    assert ds["pulses.amplitude_V"].size == result.pulses


def test_retention_over_a_virtual_month(lab: Lab, store: Store) -> None:
    devices = select_devices(lab, "0,0", "0-3")
    settings = RetentionSettings(interval_s=10.0, duration_s=30 * 86400.0, log_spacing=True)
    result = retention(lab, devices, settings, store=store)
    n = settings.times_s().size
    assert result.conductance_S.shape == (n, 4) and result.reads == 4 * n
    assert result.time_s[-1] == pytest.approx(30 * 86400.0, rel=1e-6)
    # Measured against the truth at the end: the read noise is ~0.17 uS at 50 uS.
    g_true = np.array([_truth(lab)["memristor_conductance_S"][d] for d in devices])
    np.testing.assert_allclose(result.conductance_S[-1], g_true, atol=1e-6)
    # The simulated relaxation: -0.089 uS per unit of ln(1 + t/1 s) on average, i.e.
    # -0.205 uS per decade at long times; devices spread by 0.042 uS per unit (0.1 uS a
    # decade). The fit over 10 s .. 30 d is in that band for each device.
    drift = result.drift_S_per_decade()
    assert np.all((drift < 0) & (drift > -0.6e-6))
    stored = store.get_result(result.run_id or -1, "conductance_S")
    np.testing.assert_array_equal(stored, result.conductance_S)
    assert store.run(result.run_id or -1).status == "completed"


def test_endurance_to_failure(tmp_path: Path, store: Store) -> None:
    board = tmp_path / "wear.toml"
    # Small budgets; little cycle-to-cycle noise, so that a healthy window stays open (the
    # criterion's logic is tested here; full swings of the analog model spread widely).
    board.write_text('base = "memristor"\n[memristor]\nendurance_cycles = 60\nc2c_sigma = 0.005\n')
    with Lab(parse_station({"simulator": {"board": str(board), "seed": 0}})) as lab:
        devices = select_devices(lab, "0,0", "0-3")
        result = endurance(lab, devices, EnduranceSettings(max_cycles=400), store=store)
        budget = np.array([_truth(lab)["memristor_endurance_cycles"][d] for d in devices])
    # A device survives `budget` pulses; the next one wears it out and it sticks. The
    # cycle holding that pulse is ceil((budget + 1) / 2); the run sees it at that
    # checkpoint or the next (a RESET that wears a device out towards g_min leaves that
    # checkpoint's window open).
    marks = log_checkpoints(400, 10)
    for outcome, b in zip(result.outcomes, budget, strict=True):
        worn = int(np.ceil((b + 1) / 2))
        first = int(np.flatnonzero(marks >= worn)[0])
        assert outcome["status"] == "failed"
        assert outcome["cycles_to_failure"] in marks[first : first + 2]
    summary = result.summary()
    assert summary["failed"] == 4 and summary["pulses"] == 2 * result.outcomes["cycles"].sum()
    assert store.get_result(result.run_id or -1, "endurance")["status"].tolist() == ["failed"] * 4


def test_seek_with_history(lab: Lab, store: Store) -> None:
    devices = select_devices(lab, "2,2", "0-1")
    result = seek(lab, devices, [30e-6, 60e-6], WriteVerifySettings(tolerance=0.02), store=store)
    assert [d.status for d in result.outcomes] == ["ok", "ok"]
    h = result.history
    for i, d in enumerate(result.outcomes):
        mine = h[h["device"] == i]
        assert mine["step"][0] == 0 and mine["amplitude_V"][0] == 0.0
        assert mine.size == d.pulses + 1 and mine["conductance_S"][-1] == d.final_S
        assert abs(d.final_S / d.target_S - 1) <= 0.02
    assert result.pulses == sum(d.pulses for d in result.outcomes)
    assert lab.pulse_count(*devices[0]) == result.outcomes[0].pulses


def test_cancel_keeps_the_data_and_marks_the_run(lab: Lab, store: Store) -> None:
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    devices = select_devices(lab, "0,0", "0")
    settings = RetentionSettings(interval_s=60.0, duration_s=600.0)
    result = retention(lab, devices, settings, store=store, should_stop=stop)
    assert result.cancelled and result.conductance_S.shape == (3, 1)
    run = store.run(result.run_id or -1)
    assert run.status == "interrupted" and run.n_readings == 3


def test_limits_refused_before_anything_is_sent(lab: Lab, store: Store) -> None:
    devices = select_devices(lab, "0,0", "0")
    with pytest.raises(LabInputError, match=r"v_set_max_V = 2.5 V exceeds .* 2 V"):
        iv_sweep(lab, devices, IVSettings(v_set_max_V=2.5), store=store)
    with pytest.raises(LabInputError, match=r"width_s = 1\.0 s"):
        endurance(lab, devices, EnduranceSettings(width_s=1.0), store=store)
    assert lab.pulses_applied == 0 and store.runs() == []


def test_resistor_cells_refused(tmp_path: Path) -> None:
    with Lab(parse_station({"simulator": {"board": "mixed", "seed": 0}})) as lab:
        with pytest.raises(LabInputError, match=r"cell \(0, 0\) holds resistors"):
            select_devices(lab, "0,0", "0")
        assert select_devices(lab, "0,4", "0") == [(0, 4, 0)]


def test_export_of_a_module_run(lab: Lab, store: Store, tmp_path: Path) -> None:
    from labrss.store.export import export_run

    result = retention(
        lab, select_devices(lab, "0,0", "0-1"), RetentionSettings(10.0, 30.0), store=store
    )
    (path,) = export_run(store, result.run_id or -1, tmp_path / "ret", "netcdf")
    with xr.open_dataset(path) as ds:
        assert ds["conductance_S"].dims == ("time", "device")
        assert ds["time_s"].attrs["units"] == "s"
        assert ds["device_branch"].values.tolist() == [0, 1]


UNFORMED = {
    "simulator": {"board": "memristor_unformed", "seed": 4},
    "limits": {"max_source_voltage_V": 3.0, "max_pulse_voltage_V": 3.0},
}


def test_forming_yield_voltages_and_states(store: Store) -> None:
    from labrss.workflows.memristor_form import FormSettings, form

    with Lab(parse_station(UNFORMED)) as lab:
        devices = select_devices(lab, "0,0-1", "0-3")
        assert lab.simulator is not None and lab.simulator.model.memristors is not None
        truth = lab.simulator.model.memristors.devices.forming_V
        assert truth is not None
        v_true = np.array([truth[d] for d in devices])
        order = np.sort(v_true)
        stop = float(order[4] + order[5]) / 2  # the three highest do not form by here
        settings = FormSettings(v_start_V=2.0, v_stop_V=stop, step_V=0.05, compliance_A=30e-6)
        result = form(lab, devices, settings, store=store)
        assert lab.simulator.model.memristors.formed[0, :2, :4].reshape(-1).tolist() == [
            v <= stop for v in v_true
        ]
    out = result.outcomes
    formed = out["status"] == "formed"
    assert formed.tolist() == (v_true < stop).tolist()  # ramp ends at `stop`: v <= stop forms
    # The ramp's first step above a device's forming voltage forms it (two readings per
    # step: the second sees a forming during the first).
    v_meas = out["forming_V"][formed]
    assert np.all(v_meas > v_true[formed]) and np.all(v_meas <= v_true[formed] + 0.05 + 1e-9)
    # The compliance sets the state: 30 uA / 0.45 V = 66.7 uS (a 0.1 V read sees 0.7 % more
    # through the sinh I-V, plus read noise and the first seconds of relaxation).
    np.testing.assert_allclose(out["formed_S"][formed], 30e-6 / 0.45, rtol=0.02)
    assert np.all(out["formed_S"][~formed] < 1e-6)
    s = result.summary()
    assert s["yield"] == pytest.approx(5 / 8) and len(s["not_formed"]) == 3
    ds = run_dataset(store, result.run_id or -1)
    assert ds["forming.forming_V"].dims == ("device",) and ds.attrs["run_kind"] == "memristor_form"


def test_staircase_iv_is_the_non_linear_loop(store: Store) -> None:
    from labrss.workflows.memristor_form import FormSettings, form

    with Lab(parse_station(UNFORMED)) as lab:
        device = select_devices(lab, "1,1", "2")
        form(lab, device, FormSettings(v_start_V=2.0), store=store)
        settings = IVSettings(
            mode="staircase", v_set_max_V=1.4, v_reset_max_V=1.4, step_V=0.1, cycles=2
        )
        result = iv_sweep(lab, device, settings, store=store)
        assert lab.simulator is not None and lab.simulator.model.memristors is not None
        drawn = lab.simulator.model.memristors.devices
        th_set = drawn.set_threshold_V[1, 1, 2]
        th_reset = drawn.reset_threshold_V[1, 1, 2]
    v = result.voltage_V
    i = result.current_A[0, 0]
    g0 = result.initial_S[0] / (np.sinh(0.1 / 0.5) / 0.2)  # small-signal G from a 0.1 V read
    below = (v > 0) & (v < th_set - 0.05) & (np.arange(v.size) < np.argmax(v))
    # Below threshold the current is the Stanford/PKU law I = G V0 sinh(V / V0), V0 = 0.5 V.
    np.testing.assert_allclose(i[below], g0 * 0.5 * np.sinh(v[below] / 0.5), rtol=0.02)
    # asymmetric: at -0.4 V the RESET side's wider V0 gives less current than at +0.4 V
    assert result.set_V.min() > th_set and -result.reset_V.max() > th_reset
    assert np.isfinite(result.current_A).all() and np.isnan(result.current_A).sum() == 0
    assert store.get_result(result.run_id or -1, "current_A").shape == (1, 2, v.size)


def test_forming_needs_the_station_limits_raised(store: Store) -> None:
    from labrss.workflows.memristor_form import form

    with Lab(parse_station({"simulator": {"board": "memristor_unformed", "seed": 0}})) as lab:
        with pytest.raises(LabInputError, match=r"exceeds \[limits\] max_source_voltage_V = 1 V"):
            form(lab, select_devices(lab, "0,0", "0"), store=store)
        assert lab.readings_taken == 0


def test_fit_recovers_the_drawn_devices(store: Store, tmp_path: Path) -> None:
    from labrss.workflows.memristor_fit import board_toml, fit_runs
    from labrss.workflows.memristor_form import FormSettings, form
    from simulator.board_config import load_board_config

    with Lab(parse_station(UNFORMED)) as lab:
        devices = select_devices(lab, "2,2", "0-1")
        runs = [
            form(lab, devices, FormSettings(v_start_V=2.2), store=store).run_id,
            iv_sweep(
                lab,
                devices,
                IVSettings(
                    mode="staircase", v_set_max_V=1.2, v_reset_max_V=1.2, step_V=0.1, cycles=1
                ),
                store=store,
            ).run_id,
            iv_sweep(lab, devices, IVSettings(step_V=0.05, cycles=1), store=store).run_id,
        ]
        assert lab.simulator is not None and lab.simulator.model.memristors is not None
        drawn = lab.simulator.model.memristors.devices
        fit = fit_runs(store, [r for r in runs if r is not None])
    for d in devices:
        got = fit.devices[d]
        # conduction law V0 (0.5 / 0.6 V on this preset), the device's own range and
        # thresholds, recovered from its measurements alone
        assert got["iv_v0_set_V"] == pytest.approx(0.5, rel=0.03)
        assert got["iv_v0_reset_V"] == pytest.approx(0.6, rel=0.03)
        assert got["g_min_S"] == pytest.approx(drawn.g_min_S[d], rel=0.05)
        assert got["g_max_S"] == pytest.approx(drawn.g_max_S[d], rel=0.05)
        assert got["set_threshold_V"] == pytest.approx(drawn.set_threshold_V[d], abs=0.08)
        assert got["reset_threshold_V"] == pytest.approx(drawn.reset_threshold_V[d], abs=0.08)
        assert got["clamp_V"] == pytest.approx(0.45, rel=0.02)
    board = tmp_path / "fitted.toml"
    board.write_text(board_toml(fit))
    config = load_board_config(board)  # the simulator runs the fitted devices
    assert config.memristor.iv_v0_set_V == pytest.approx(0.5, rel=0.03)
