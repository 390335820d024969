"""The safety checks Lab makes before switching: voltage limits and worst-case power."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labrss.lab.errors import SafetyLimitError
from labrss.lab.safety import (
    ASSUMED_MIN_ELEMENT_RESISTANCE_OHM,
    check_row_voltages,
    check_source_voltage,
    min_element_resistance,
    worst_case_element_power_W,
)
from labrss.station import StationLimits

LIMITS = StationLimits()  # 1 V, 10 mA, 0.0625 W, 0.5 V DAC


def test_r_min_prefers_the_station_then_the_board_then_the_assumption() -> None:
    with_station = StationLimits(min_element_resistance_ohm=470.0)
    info = {"nominal_ohm": "10000/18000/32400", "tolerance": "0.05"}
    assert min_element_resistance(with_station, info) == (
        470.0,
        "[limits] min_element_resistance_ohm",
    )
    # The smallest per-branch nominal, less its tolerance: 10 kohm x 0.95.
    r, origin = min_element_resistance(LIMITS, info)
    assert r == pytest.approx(9500.0) and "nominal_ohm" in origin
    r, origin = min_element_resistance(LIMITS, {"nominal_min_ohm": "1000", "tolerance": "0.2"})
    assert r == pytest.approx(800.0) and "nominal_min_ohm" in origin
    r, origin = min_element_resistance(LIMITS, {"nominal_ohm": "1000"})
    assert r == pytest.approx(800.0) and "no tolerance" in origin
    for junk in ({}, {"nominal_ohm": "abc"}, {"nominal_ohm": "-5/100"}, {"nominal_min_ohm": "0"}):
        assert min_element_resistance(LIMITS, junk)[0] == ASSUMED_MIN_ELEMENT_RESISTANCE_OHM


def test_r_min_of_a_memristor_board_is_one_over_g_max() -> None:
    # A memristor-only board reports its device range, no resistor keys: R_min = 1 / g_max,
    # with the 20 % margin for device-to-device spread of the range (as for a nominal).
    info = {"element": "memristor", "g_min_S": "8e-6", "g_max_S": "9e-5"}
    r, origin = min_element_resistance(LIMITS, info)
    assert r == pytest.approx(1 / (1.2 * 9e-5)) and "g_max_S" in origin
    # A mixed board: the smaller of the resistors' and the memristors' bounds.
    mixed = {"element": "mixed", "g_max_S": "9e-5", "nominal_ohm": "1e5", "tolerance": "0.05"}
    assert min_element_resistance(LIMITS, mixed)[0] == pytest.approx(1 / (1.2 * 9e-5))
    mixed["nominal_ohm"] = "1000"
    assert min_element_resistance(LIMITS, mixed)[0] == pytest.approx(950.0)
    # A resistor board's g_max_S (not a device range) is ignored; junk g_max_S too.
    assert min_element_resistance(LIMITS, {"element": "resistor", "g_max_S": "1"})[0] == (
        ASSUMED_MIN_ELEMENT_RESISTANCE_OHM
    )
    for junk in ("0", "-1e-5", "nan", "abc"):
        bad = {"element": "memristor", "g_max_S": junk}
        assert min_element_resistance(LIMITS, bad)[0] == ASSUMED_MIN_ELEMENT_RESISTANCE_OHM


def test_power_is_v_squared_over_r() -> None:
    assert worst_case_element_power_W(0.5, 100.0) == pytest.approx(2.5e-3)
    assert worst_case_element_power_W(-2.0, 8.0) == pytest.approx(0.5)


def test_source_voltage_beyond_the_limit_names_value_and_limit() -> None:
    with pytest.raises(SafetyLimitError) as exc:
        check_source_voltage(1.5, LIMITS, (1000.0, "x"))
    assert exc.value.limit_key == "[limits] max_source_voltage_V"
    assert exc.value.value == 1.5 and exc.value.limit == 1.0
    assert "read voltage 1.5 V exceeds [limits] max_source_voltage_V = 1.0 V" in str(exc.value)
    with pytest.raises(SafetyLimitError):
        check_source_voltage(math.nan, LIMITS, (1000.0, "x"))


def test_power_beyond_the_limit_names_power_r_min_and_its_origin() -> None:
    # 0.9 V across 10 ohm: 81 mW > 62.5 mW.
    with pytest.raises(SafetyLimitError) as exc:
        check_source_voltage(0.9, LIMITS, (10.0, "BOARD:INFO? min nominal_ohm x (1 - tolerance)"))
    assert exc.value.limit_key == "[limits] max_power_per_element_W"
    assert exc.value.value == pytest.approx(0.081)
    assert "0.081 W" in str(exc.value) and "BOARD:INFO? min nominal_ohm" in str(exc.value)


@given(v=st.floats(-3.0, 3.0), r=st.floats(1.0, 1e4))
def test_source_voltage_passes_exactly_when_both_limits_hold(v: float, r: float) -> None:
    ok = abs(v) <= LIMITS.max_source_voltage_V and v * v / r <= LIMITS.max_power_per_element_W
    if ok:
        check_source_voltage(v, LIMITS, (r, "test"))
    else:
        with pytest.raises(SafetyLimitError):
            check_source_voltage(v, LIMITS, (r, "test"))


def test_row_voltages_name_the_offending_row() -> None:
    volts = np.array([0.1, -0.2, 0.6, 0.0])
    with pytest.raises(SafetyLimitError, match=r"row 2 voltage 0\.6 V exceeds"):
        check_row_voltages(volts, LIMITS, (1000.0, "x"))
    # Within the DAC limit but 0.4 V over 2 ohm is 80 mW: the power check names row 1.
    with pytest.raises(SafetyLimitError, match=r"row 1 voltage -0\.4 V could put 0\.08 W"):
        check_row_voltages(np.array([0.1, -0.4, 0.3]), LIMITS, (2.0, "x"))
    check_row_voltages(np.array([0.5, -0.5]), LIMITS, (1000.0, "x"))
