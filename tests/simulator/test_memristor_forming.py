"""The grown-up device model (simulator/memristor.py): virgin devices and forming under a
compliance, hard breakdown, the non-linear asymmetric I-V, DC SET under compliance, the
endurance window closing, and the unformed preset. Formed presets are unchanged."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.board_config import BoardConfigError, MemristorConfig, load_board_config
from simulator.board_model import BoardModel
from simulator.memristor import MemristorArray, draw_memristor_devices

SHAPE = (4, 4)


def _array(**overrides: float) -> MemristorArray:
    base = {
        "formed_fraction": 0.0,
        "forming_V": 2.5,
        "forming_sigma_V": 0.1,
        "virgin_S": 0.1e-6,
        "iv_v0_set_V": 0.5,
        "iv_v0_reset_V": 0.6,
    }
    config = MemristorConfig(**(base | overrides))
    rng = np.random.default_rng(1)
    return MemristorArray(draw_memristor_devices(config, SHAPE, rng), config, rng)


def test_virgin_devices_form_under_a_compliance() -> None:
    mem = _array()
    d = mem.devices
    assert d.forming_V is not None and d.virgin_S is not None
    assert not mem.formed.any()
    np.testing.assert_array_equal(mem.conductance_S(0.0), d.virgin_S)
    # below the forming voltage nothing happens, however long
    v = np.full(SHAPE, 0.0)
    v[0, 0] = d.forming_V[0, 0] - 0.01
    assert not mem.apply_stress(v, duration_s=10.0, start_s=0.0, current_limit_A=30e-6)
    assert not mem.formed.any()
    # just above: formed at I_cc / V_clamp = 30 uA / 0.45 V = 66.7 uS
    v[0, 0] = d.forming_V[0, 0] + 0.01
    v[1, 1] = d.forming_V[1, 1] + 0.01
    assert mem.apply_stress(v, duration_s=0.02, start_s=1.0, current_limit_A=30e-6)
    formed = mem.formed
    assert formed[0, 0] and formed[1, 1] and formed.sum() == 2
    g = mem.conductance_S(1.02)
    assert g[0, 0] == pytest.approx(30e-6 / 0.45, rel=1e-9)
    assert mem.programmed_time_s[0, 0] == pytest.approx(1.02)
    # a formed device then switches like any other (SET under a smaller compliance caps it)
    assert mem.cycles[0, 0] == 0


def test_breakdown_without_compliance_or_far_above_it() -> None:
    mem = _array()
    d = mem.devices
    assert d.forming_V is not None
    v = np.zeros(SHAPE)
    v[0, 0] = d.forming_V[0, 0] + 0.1
    mem.apply_stress(v, duration_s=0.02, start_s=0.0, current_limit_A=1e-3)  # 2.2 mS >> 2 g_max
    assert mem.broken[0, 0] and mem.stuck_on()[0, 0]
    assert mem.conductance_S(1.0)[0, 0] == d.g_max_S[0, 0]
    # a pulse (no compliance) above the forming voltage breaks the device down too
    mem.apply_pulses(
        (np.array([1]), np.array([1])), 3.0, width_s=1e-4, count=1, start_s=2.0, end_s=2.0
    )
    assert mem.broken[1, 1]
    # a pulse below it leaves a virgin device virgin (virgin devices do not switch)
    mem.apply_pulses(
        (np.array([2]), np.array([2])), 2.0, width_s=1e-3, count=5, start_s=3.0, end_s=3.0
    )
    assert not mem.formed[2, 2] and mem.cycles[2, 2] == 0


def test_dc_set_is_capped_by_the_compliance() -> None:
    mem = _array(formed_fraction=1.0)
    d = mem.devices
    v = np.zeros(SHAPE)
    v[0, 0] = 1.6  # far above the SET threshold: a strong SET
    mem.apply_stress(v, duration_s=0.02, start_s=0.0, current_limit_A=10e-6)
    assert mem.conductance_S(0.02)[0, 0] <= 10e-6 / 0.45 + 1e-12
    assert d.g_max_S[0, 0] > 10e-6 / 0.45


def test_iv_is_non_linear_and_asymmetric() -> None:
    mem = _array(formed_fraction=1.0)
    k = mem.iv_factor(np.array([0.1, 1.0, -1.0, 0.0, 1e-9]))
    assert k[0] == pytest.approx(math.sinh(0.2) / 0.2)
    assert k[1] == pytest.approx(math.sinh(2.0) / 2.0)
    assert k[2] == pytest.approx(math.sinh(1 / 0.6) / (1 / 0.6))  # RESET side: wider V0
    assert k[1] > k[2] > 1.0 and k[3] == 1.0 and k[4] == pytest.approx(1.0)
    linear = _array(formed_fraction=1.0, iv_v0_set_V=math.inf, iv_v0_reset_V=math.inf)
    assert np.all(linear.iv_factor(np.array([-1.0, 0.5])) == 1.0)


def test_the_window_closes_with_cycling() -> None:
    mem = _array(formed_fraction=1.0, window_closure=0.6, endurance_cycles=200, c2c_sigma=0.0)
    d = mem.devices
    idx = (np.array([0]), np.array([0]))
    first: list[float] = []
    for cycle in range(400):
        mem.apply_pulses(idx, 2.5, width_s=1e-2, count=1, start_s=cycle, end_s=cycle)
        g_on = mem.conductance_S(cycle + 0.5)[0, 0]
        mem.apply_pulses(idx, -2.5, width_s=1e-2, count=1, start_s=cycle + 0.5, end_s=cycle + 0.5)
        g_off = mem.conductance_S(cycle + 0.9)[0, 0]
        first.append(g_on - g_off)
        if mem.worn_out[0, 0]:
            break
    budget = int(d.endurance_cycles[0, 0])
    assert mem.worn_out[0, 0]
    span = d.g_max_S[0, 0] - d.g_min_S[0, 0]
    assert first[0] > 0.8 * span  # a full swing at first
    late = first[max(0, budget // 2 - 3) : budget // 2 - 1]  # just before wear-out
    assert max(late) < (1 - 0.6 * 0.85) * span  # ~40 % of the window left


def test_config_validation() -> None:
    with pytest.raises(BoardConfigError, match=r"forming_V = 0\.3 must exceed 3 forming_sigma_V"):
        MemristorConfig(forming_V=0.3, forming_sigma_V=0.2)
    with pytest.raises(BoardConfigError, match="iv_v0_set_V"):
        MemristorConfig(iv_v0_set_V=0.0)
    with pytest.raises(BoardConfigError, match="window_closure"):
        MemristorConfig(window_closure=1.5)


def test_unformed_preset_and_formed_presets_unchanged() -> None:
    config = load_board_config("memristor_unformed")
    model = BoardModel(config, 0)
    assert model.memristors is not None and not model.memristors.formed.any()
    g = model.true_memristor_conductance_S()
    assert np.all(g < 1e-6)  # virgin: ~0.1 uS
    forming = model.memristors.devices.forming_V
    assert forming is not None and 2.2 < np.median(forming) < 3.0
    # The formed preset draws exactly what it drew before the new parameters existed.
    formed = BoardModel(load_board_config("memristor"), 0)
    assert formed.memristors is not None and formed.memristors.devices.forming_V is None
    assert formed.true_memristor_conductance_S()[0, 0, 0] == pytest.approx(49.83267384e-6, rel=1e-8)
