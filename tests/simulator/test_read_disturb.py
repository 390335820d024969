"""Memristor read disturb in the simulator: reads and MVM inputs are stresses like pulses.

The law (simulator/memristor.py, "Read disturb"): above the threshold of its polarity a
stress switches a device as a pulse of the same duration would; at any voltage the device
creeps by ``rate * (t / w_ref) * sinh(min(|V|, V_th) / V_s) / sinh(V_th / V_s)`` reference
pulses. The board model applies it with each device's own voltage from the nodal solution,
for the DAC inputs (MVM routing) and for the SMU's readings (`PortModel.hold`).
"""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest

from drivers.smu import SafetyLimits, open_smu
from simulator.bench import SimulatedBench
from simulator.board_config import MemristorConfig, load_board_config
from simulator.board_model import BoardModel, Routing
from simulator.memristor import (
    MemristorArray,
    creep_pulses,
    draw_memristor_devices,
    saturating_step,
)

CFG = MemristorConfig()
SPAN_S = CFG.g_max_S - CFG.g_min_S


def law(v: float, t: float = 1e-4, th: float = 0.6) -> float:
    return float(
        creep_pulses(
            v,
            t,
            th,
            rate=CFG.read_disturb_rate,
            scale_V=CFG.read_disturb_scale_V,
            reference_width_s=CFG.reference_width_s,
        )
    )


def test_creep_law_values() -> None:
    assert law(0.0) == 0.0
    # At and above the threshold: rate * t / w_ref reference pulses.
    assert law(0.6) == pytest.approx(CFG.read_disturb_rate)
    assert law(-0.6) == pytest.approx(CFG.read_disturb_rate)
    assert law(0.9) == pytest.approx(CFG.read_disturb_rate)
    assert law(0.3, t=2e-2) == pytest.approx(200 * law(0.3))
    # sinh law, odd and exponential: sinh(0.1/0.04) / sinh(0.6/0.04) ...
    assert law(0.1) == pytest.approx(
        CFG.read_disturb_rate * math.sinh(2.5) / math.sinh(15.0), rel=1e-12
    )
    # ... one decade per V_s ln 10 = 92 mV well below threshold.
    assert law(0.3) / law(0.3 - 0.04 * math.log(10)) == pytest.approx(10.0, rel=1e-3)
    # No overflow with a huge threshold / scale ratio.
    big = creep_pulses(1.0, 1.0, 30.0, rate=1e-3, scale_V=0.01, reference_width_s=1e-4)
    assert np.isfinite(big) and big == 0.0


def fresh(n: int = 64, x0: float = 0.5, seed: int = 1) -> MemristorArray:
    cfg = dataclasses.replace(CFG, threshold_sigma_V=0.0, levels_sigma=0.0, shape_sigma=0.0)
    devices = draw_memristor_devices(cfg, (n,), np.random.default_rng(seed))
    devices = dataclasses.replace(devices, initial_state=np.full(n, x0))
    return MemristorArray(devices, cfg, np.random.default_rng(seed + 7))


def test_sub_threshold_stress_creeps_by_the_law_in_the_voltage_direction() -> None:
    for v in (0.3, -0.3):
        arr = fresh()
        d = arr.devices
        x0 = (arr.conductance_S(10.0) - d.g_min_S) / (d.g_max_S - d.g_min_S)
        switched = arr.apply_stress(np.full(64, v), duration_s=20.0, start_s=10.0)
        assert not switched
        x1 = (arr.conductance_S(10.0) - d.g_min_S) / (d.g_max_S - d.g_min_S)
        th = CFG.set_threshold_V if v > 0 else CFG.reset_threshold_V
        dp = law(v, t=20.0, th=th)
        levels = CFG.set_levels if v > 0 else CFG.reset_levels
        shape = CFG.set_shape if v > 0 else CFG.reset_shape
        toward = x0 if v > 0 else 1 - x0
        stepped = saturating_step(toward, dp, levels, shape)
        expected = stepped if v > 0 else 1 - stepped
        np.testing.assert_allclose(x1, expected, rtol=0, atol=1e-12)
        assert np.all(np.sign(x1 - x0) == np.sign(v))
        # Creep is not a programming: no cycle, no new programming time.
        assert not arr.cycles.any()
        assert not arr.programmed_time_s.any()


def test_above_threshold_stress_switches_like_a_pulse_of_its_duration() -> None:
    stressed, pulsed = fresh(seed=4), fresh(seed=4)
    v, t = -0.7, 2e-4  # RESET threshold 0.6 V: overdrive 0.1 V for two reference widths
    assert stressed.apply_stress(np.full(64, v), duration_s=t, start_s=5.0)
    pulsed.creep(np.ones(64, bool), v, duration_s=t, at_s=5.0)
    pulsed.apply_pulses(np.ones(64, bool), v, width_s=t, count=1, start_s=5.0, end_s=5.0 + t)
    np.testing.assert_array_equal(stressed.conductance_S(6.0), pulsed.conductance_S(6.0))
    np.testing.assert_array_equal(stressed.cycles, 1)
    # ((0.7 - 0.6) / (1.2 - 0.6)) * 2 = 1/3 reference RESET pulse: a few % of the range.
    drop = (fresh(seed=4).conductance_S(6.0) - stressed.conductance_S(6.0)) / SPAN_S
    assert 0.005 < float(np.mean(drop)) < 0.05


def programmed_board(seed: int = 3) -> BoardModel:
    model = BoardModel(load_board_config("memristor"), seed)
    model.set_switches(np.ones(model.geometry.shape, dtype=bool))
    return model


def devices_change(before: MemristorArray, after: MemristorArray, at_s: float) -> np.ndarray:
    """|G_after - G_before| / range per device, both at ``at_s`` (drift cancels)."""
    return np.abs(after.conductance_S(at_s) - before.conductance_S(at_s)) / SPAN_S


def mvm_stress(row_V: float, seconds: float = 0.2) -> np.ndarray:
    """Every row at ``row_V`` in MVM routing for ``seconds`` (a column-by-column SMU
    read-out of 8 columns at NPLC 1 takes ~0.2 s), every switch closed."""
    model = programmed_board()
    assert model.memristors is not None
    before = copy.deepcopy(model.memristors)
    model.set_routing(Routing("mvm_adc"))
    model.set_dac_all(np.full(model.geometry.rows, row_V))
    for _ in range(10):
        model.clock.advance(seconds / 10)
        model.adc_read()
    model.safe()
    return devices_change(before, model.memristors, model.clock.now_s)


def test_old_mvm_input_range_disturbs_devices_and_the_guarded_one_does_not() -> None:
    # The old memristor MVM inputs reached -0.49 V (0.98 x the 0.5 V DAC limit): devices
    # whose RESET threshold is below that (down to 0.45 V) are RESET, and the others creep.
    old = mvm_stress(-0.49)
    assert old.max() > 0.05  # a weak device lost more than 5 % of its range
    assert np.count_nonzero(old > 0.01) >= 3
    # The guarded input range (labrss's default): 0.98 x 0.45 V / 3 = 0.147 V. Worst device
    # (RESET threshold 0.45 V): 1e-4 x 2000 reference widths x sinh(3.68)/sinh(11.25) =
    # 1.0e-4 reference pulses, a step of at most ~4 % of the range per pulse: < 5e-6.
    guarded = mvm_stress(-0.98 * 0.45 / 3)
    assert guarded.max() < 5e-6
    assert mvm_stress(0.98 * 0.45 / 3).max() < 5e-6


@pytest.mark.parametrize(
    ("smu_model", "driver"),
    [("2450", "keithley2450"), ("B2902A", "keysight_b2900"), ("2400", "keithley2400")],
)
def test_smu_readings_stress_the_routed_cell_through_the_port(smu_model: str, driver: str) -> None:
    # Through the real SCPI path of each SMU emulator: it reports each reading's force
    # voltage and duration to the board (PortModel.hold). A +0.75 V read (above the weakest
    # SET thresholds, 0.65 V) moves devices; a 0.1 V read does not measurably.
    changes = {}
    for volts in (0.75, 0.1):
        with SimulatedBench("memristor", seed=3, smu_model=smu_model) as bench:
            model = bench.model
            assert model.memristors is not None
            with bench.lock:
                model.set_switches(np.ones(model.geometry.shape, dtype=bool))
                before = copy.deepcopy(model.memristors)
            smu = open_smu(driver, bench.smu_resource, SafetyLimits(1.0, 0.01))
            try:
                smu.configure_voltage_source(volts, 0.01)
                smu.configure_measurement(nplc=10, current_range_A=None, four_wire=False)
                with smu.output_on():
                    for r in range(8):
                        for c in range(8):
                            with bench.lock:
                                model.set_routing(Routing("cell", r, c))
                            smu.measure()
            finally:
                smu.close()
            with bench.lock:
                changes[volts] = devices_change(before, model.memristors, model.clock.now_s)
    # Each cell is read once at +V and sits at -V (guard) during the other 49 reads: at
    # 0.75 V that is a RESET pulse for every device (RESET thresholds <= 0.75 V).
    assert changes[0.75].max() > 0.1
    assert np.median(changes[0.75]) > 0.01
    # At 0.1 V only creep: < 30 s of stress, worst device (RESET threshold 0.45 V) 1e-4 x
    # 3e5 reference widths x sinh(2.5)/sinh(11.25) = 0.005 reference pulses of <= 4 % of
    # the range each.
    assert changes[0.1].max() < 2e-4


def test_board_reports_its_smallest_switching_thresholds() -> None:
    model = BoardModel(load_board_config("memristor"), 0)
    info = model.info()
    assert info["set_threshold_min_V"] == pytest.approx(0.65)
    assert info["reset_threshold_min_V"] == pytest.approx(0.45)
    mem = model.memristors
    assert mem is not None
    # The datasheet minimum is a true minimum: thresholds are clipped at 3 sigma.
    assert mem.devices.set_threshold_V.min() >= 0.65 - 1e-12
    assert mem.devices.reset_threshold_V.min() >= 0.45 - 1e-12
    assert "set_threshold_min_V" not in BoardModel(load_board_config("small"), 0).info()
