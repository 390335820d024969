"""The Keithley 2450 emulator, driven with command sequences in the reference manual's style.

Loads are fake `PortModel`s (a resistor of known value), never the board model. Numeric
tolerances come from the physics model's datasheet numbers (`smu_physics`): the accuracy
terms (gain x reading + offset), 5 sigma of noise at the NPLC used, and one LSD.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.clock import VirtualClock
from simulator.keithley2450_emulator import Keithley2450Emulator
from simulator.port_model import OPEN_CIRCUIT, PortModel
from simulator.smu_physics import (
    AUTO_OHMS_TEST_CURRENT_A,
    K2450_MEASURE_CURRENT,
    K2450_MEASURE_VOLTAGE,
    K2450_SOURCE_VOLTAGE,
    NOISE_EXPONENT,
    OVERFLOW_READING,
    RangeSpec,
    measurement_time_s,
    noise_sigma,
)

R_OHM = 1000.0
RESISTOR = PortModel(g_S=1 / R_OHM)


def _smu(port: PortModel = RESISTOR, seed: int = 1) -> Keithley2450Emulator:
    return Keithley2450Emulator(lambda: port, VirtualClock(), seed)


def _run(smu: Keithley2450Emulator, script: str) -> list[str]:
    """Send each line unchanged; collect the replies; fail on any queued error."""
    replies = []
    for line in script.strip().splitlines():
        reply = smu.handle_line(line.strip())
        if reply is not None:
            replies.append(reply)
    assert smu.handle_line(":SYST:ERR?") == '0,"No error"'
    return replies


def _errors(smu: Keithley2450Emulator) -> list[int]:
    codes = []
    while (reply := smu.handle_line(":SYST:ERR?")) != '0,"No error"':
        assert reply is not None
        codes.append(int(reply.split(",")[0]))
    return codes


def _bound(spec: RangeSpec, value: float, nplc: float, k_sigma: float = 5.0) -> float:
    """|reading - true| bound: datasheet accuracy + k sigma of noise + one LSD (+ pickup)."""
    pickup = 2e-6 * spec.full_scale if nplc != round(nplc) else 0.0
    return (
        spec.gain * abs(value)
        + spec.offset
        + k_sigma * noise_sigma(spec, nplc)
        + spec.resolution
        + pickup
    )


def _spec_for(specs: tuple[RangeSpec, ...], full_scale: float) -> RangeSpec:
    return next(s for s in specs if s.full_scale == full_scale)


# ---------------------------------------------------------------- identity and language


def test_identity_and_language() -> None:
    smu = _smu()
    assert smu.handle_line("*IDN?") == "KEITHLEY INSTRUMENTS,MODEL 2450,04512345,1.7.12b"
    assert smu.handle_line("*LANG?") == "SCPI"
    assert smu.handle_line(":SYST:LFR?") == "50"
    assert smu.handle_line("*ESR?") == "128"  # power-on bit after power-up


def test_lang_change_takes_effect_only_after_power_cycle() -> None:
    smu = _smu()
    smu.handle_line("*LANG SCPI2400")
    assert smu.handle_line("*LANG?") == "SCPI"
    assert smu.handle_line(":SOUR:VOLT 1;:SOUR:VOLT?") == "1.000000E+00"
    smu.power_cycle()
    assert smu.handle_line("*LANG?") == "SCPI2400"
    # The 2400 command set answers (reset defaults); native-only commands are undefined.
    assert smu.handle_line(":SOUR:VOLT?") == "+0.000000E+00"
    assert smu.handle_line(":SENS:CURR:PROT?") == "+1.050000E-04"
    assert smu.handle_line(":SOUR:VOLT:ILIM 0.01") is None
    assert (smu.handle_line("*IDN?") or "").startswith("KEITHLEY")
    assert _errors(smu) == [-113]
    smu.handle_line("*LANG TSP")
    smu.power_cycle()
    assert smu.handle_line("*LANG?") == "TSP"
    smu.handle_line(":READ?")
    assert _errors(smu) == [-285]
    smu.handle_line("*LANG SCPI")
    smu.power_cycle()
    assert smu.handle_line("*LANG?") == "SCPI"
    assert smu.handle_line(":SOUR:VOLT?") == "0.000000E+00"


# ---------------------------------------------------------------- source V, measure I


def test_source_voltage_measure_current_fixed_range() -> None:
    smu = _smu()
    readings = _run(
        smu,
        """
        *RST
        :SOUR:FUNC VOLT
        :SOUR:VOLT:RANG 2
        :SOUR:VOLT:ILIM 10e-3
        :SENS:FUNC "CURR"
        :SENS:CURR:RANG 10e-3
        :SENS:CURR:NPLC 1
        :SOUR:VOLT 1
        :OUTP ON
        """
        + ":READ?\n" * 20
        + ":OUTP OFF\n",
    )
    assert len(readings) == 20
    # True current is g * V_actual; the source's own error (2 V range: 0.02 % + 300 uV)
    # moves it by g * (gain * 1 V + offset); then the 10 mA range's accuracy and noise.
    src = _spec_for(K2450_SOURCE_VOLTAGE, 2.0)
    meter = _spec_for(K2450_MEASURE_CURRENT, 10e-3)
    tol = (src.gain * 1.0 + src.offset + src.resolution) / R_OHM + _bound(meter, 1e-3, 1.0)
    values = np.array([float(r) for r in readings])
    assert np.all(np.abs(values - 1e-3) < tol)
    assert len(set(readings)) > 1  # every reading is a new noisy reading
    assert smu.handle_line(":OUTP?") == "0"


@pytest.mark.parametrize("nplc", [0.01, 0.1, 1.0, 10.0])
def test_autorange_current_reading_within_bound(nplc: float) -> None:
    smu = _smu(PortModel(g_S=1 / 47e3))
    smu.handle_line(f':SOUR:VOLT 0.2;:SOUR:VOLT:ILIM 1e-3;:SENS:FUNC "CURR";:SENS:CURR:NPLC {nplc}')
    smu.handle_line(":SENS:CURR:RANG:AUTO ON;:OUTP ON")
    true = 0.2 / 47e3  # 4.26 uA -> autorange settles on the 10 uA range
    src = _spec_for(K2450_SOURCE_VOLTAGE, 0.2)
    meter = _spec_for(K2450_MEASURE_CURRENT, 10e-6)
    tol = (src.gain * 0.2 + src.offset + src.resolution) / 47e3 + _bound(meter, true, nplc)
    for _ in range(10):
        reading = float(smu.handle_line(":READ?") or "nan")
        assert abs(reading - true) < tol
    assert smu.handle_line(":SENS:CURR:RANG?") == "1.000000E-05"


def test_measure_current_query_keeps_output_state_and_sets_function() -> None:
    smu = _smu()
    smu.handle_line(':SENS:FUNC "VOLT";:SOUR:VOLT 0.5;:SOUR:VOLT:ILIM 0.01;:OUTP ON')
    reading = float(smu.handle_line(":MEAS:CURR?") or "nan")
    assert reading == pytest.approx(0.5e-3, rel=2e-3)
    assert smu.handle_line(":SENS:FUNC?") == '"CURR:DC"'
    assert smu.handle_line(":OUTP?") == "1"


def test_read_with_output_off_is_an_error_and_no_reading() -> None:
    smu = _smu()
    assert smu.handle_line(":READ?") is None
    assert smu.handle_line(":MEAS:CURR?") is None
    assert smu.handle_line(":TRAC:ACT?") == "0"
    assert _errors(smu) == [-221, -221]


def test_readings_follow_the_port_at_each_reading() -> None:
    state = {"port": PortModel(g_S=1e-3)}
    smu = Keithley2450Emulator(lambda: state["port"], VirtualClock(), 3)
    smu.handle_line(":SOUR:VOLT 1;:SOUR:VOLT:ILIM 0.1;:OUTP ON")
    first = float(smu.handle_line(":READ?") or "nan")
    state["port"] = PortModel(g_S=2e-3)
    second = float(smu.handle_line(":READ?") or "nan")
    assert first == pytest.approx(1e-3, rel=1e-3)
    assert second == pytest.approx(2e-3, rel=1e-3)


def test_overflow_on_a_fixed_range() -> None:
    smu = _smu()
    smu.handle_line(":SOUR:VOLT 1;:SOUR:VOLT:ILIM 0.1;:SENS:CURR:RANG 100e-6;:OUTP ON")
    assert float(smu.handle_line(":READ?") or "0") == OVERFLOW_READING
    status = smu.handle_line(':READ? "defbuffer1", STAT')
    assert int(float(status or "0")) & 0x1  # measure status questionable


# ---------------------------------------------------------------- compliance


def test_compliance_trips_at_ilim() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        *RST
        :SOUR:FUNC VOLT
        :SOUR:VOLT 1
        :SOUR:VOLT:ILIM 100e-6
        :SENS:FUNC "CURR"
        :SENS:CURR:RANG:AUTO ON
        :OUTP ON
        :READ? "defbuffer1", READ, SOUR, SOURSTAT
        :SOUR:VOLT:ILIM:TRIP?
        :SOUR:VOLT:ILIM 10e-3
        :SOUR:VOLT:ILIM:TRIP?
        """,
    )
    reading, source, source_status = (float(x) for x in replies[0].split(","))
    # In compliance the SMU is a 100 uA current source; the 1 kohm then sits at 0.1 V.
    meter = _spec_for(K2450_MEASURE_CURRENT, 100e-6)
    assert abs(reading - 100e-6) < _bound(meter, 100e-6, 1.0)
    assert source == pytest.approx(0.1, abs=_bound(_spec_for(K2450_MEASURE_VOLTAGE, 0.2), 0.1, 1))
    assert int(source_status) & 0x08  # source function level was limited
    assert replies[1:] == ["1", "0"]


def test_current_source_voltage_limit_trips() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        :SOUR:FUNC CURR
        :SOUR:CURR 1e-3
        :SOUR:CURR:VLIM 0.5
        :SENS:FUNC "VOLT"
        :OUTP ON
        :READ?
        :SOUR:CURR:VLIM:TRIP?
        :SOUR:CURR:VLIM 21
        :READ?
        :SOUR:CURR:VLIM:TRIP?
        """,
    )
    assert float(replies[0]) == pytest.approx(0.5, rel=1e-3)
    assert replies[1] == "1"
    assert float(replies[2]) == pytest.approx(1.0, rel=2e-3)
    assert replies[3] == "0"


# ---------------------------------------------------------------- resistance


# A 10 ohm element between two 0.5 ohm leads: the force pair sees 11 ohm, the sense pair
# sees the element's own 10 ohm drop (10/11 of the force voltage).
LEADS = PortModel(g_S=1 / 11, sense_gain=10 / 11, four_wire=True)


def _ohms_bound(r_ohm: float, i_a: float, nplc: float, k: float = 5.0) -> float:
    """Bound on R = V/I: relative bounds of the V and I readings add (autoranged ranges)."""
    v = r_ohm * i_a
    v_spec = next(s for s in K2450_MEASURE_VOLTAGE if abs(v) <= s.full_scale)
    i_spec = next(s for s in K2450_MEASURE_CURRENT if abs(i_a) <= s.full_scale)
    return r_ohm * (_bound(v_spec, v, nplc, k) / abs(v) + _bound(i_spec, i_a, nplc, k) / abs(i_a))


def test_four_wire_resistance_excludes_leads_two_wire_includes_them() -> None:
    smu = _smu(LEADS)
    four = _run(
        smu,
        """
        *RST
        :SENS:FUNC "RES"
        :SENS:RES:RANG:AUTO ON
        :SENS:RES:OCOM ON
        :SENS:RES:RSEN ON
        :OUTP ON
        :READ?
        :READ?
        :OUTP OFF
        """,
    )
    # Auto ohms: 20 ohm range, 100 mA test current. Offset compensation takes a second
    # (zero) reading, so noise counts twice: k = 5 * sqrt(2).
    i_test = AUTO_OHMS_TEST_CURRENT_A[20.0]
    tol = _ohms_bound(10.0, i_test, 1.0, 5 * math.sqrt(2))
    for reading in four:
        assert abs(float(reading) - 10.0) < tol
    two = _run(smu, ":SENS:RES:RSEN OFF;:SENS:RES:OCOM OFF;:OUTP ON;:MEAS:RES?")
    assert abs(float(two[0]) - 11.0) < _ohms_bound(11.0, i_test, 1.0)
    assert smu.handle_line(":SENS:RES:RANG?") == "2.000000E+01"


def test_autorange_limits() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        :SOUR:VOLT 1
        :SOUR:VOLT:ILIM 0.1
        :SENS:CURR:RANG:AUTO ON
        :SENS:CURR:RANG:AUTO:ULIM 100e-6
        :SENS:CURR:RANG:AUTO:ULIM?
        :OUTP ON
        :READ?
        :SENS:CURR:RANG:AUTO:ULIM 1
        :SENS:CURR:RANG:AUTO:LLIM 100e-3
        :READ?
        :SENS:CURR:RANG?
        """,
    )
    assert replies[0] == "1.000000E-04"
    assert float(replies[1]) == OVERFLOW_READING  # 1 mA cannot fit below the 100 uA limit
    assert float(replies[2]) == pytest.approx(1e-3, rel=2e-3)
    assert replies[3] == "1.000000E-01"  # held at the 100 mA low limit
    smu.handle_line(":SENS:CURR:RANG:AUTO:ULIM 1e-6")  # below the low limit
    assert _errors(smu) == [-221]


def test_manual_ohms_with_a_small_read_voltage() -> None:
    smu = _smu(PortModel(g_S=1 / 4700))
    replies = _run(
        smu,
        """
        :SOUR:FUNC VOLT
        :SOUR:VOLT 0.1
        :SOUR:VOLT:ILIM 1e-3
        :SENS:FUNC "RES"
        :SENS:RES:NPLC 1
        :OUTP ON
        :READ? "defbuffer1", READ, SOUR, UNIT, SOURUNIT
        """,
    )
    reading, source, unit, source_unit = replies[0].split(",")
    assert abs(float(reading) - 4700) < _ohms_bound(4700, 0.1 / 4700, 1.0)
    assert float(source) == pytest.approx(0.1, abs=1e-3)  # readback of the 0.1 V source
    assert (unit, source_unit) == ("Ohm", "Volt DC")


def test_resistance_of_nothing_connected_overflows() -> None:
    smu = _smu(OPEN_CIRCUIT)
    smu.handle_line(':SENS:FUNC "RES";:OUTP ON')
    assert abs(float(smu.handle_line(":READ?") or "0")) == OVERFLOW_READING


# ---------------------------------------------------------------- noise and time


def test_noise_std_scales_as_nplc_power_through_the_emulator() -> None:
    smu = _smu(seed=5)
    smu.handle_line(":SOUR:VOLT 1;:SOUR:VOLT:ILIM 0.1;:SENS:CURR:RANG 10e-3;:OUTP ON")
    n = 1500
    nplcs = np.array([0.01, 0.1, 1.0])
    log_std = []
    for nplc in nplcs:
        smu.handle_line(f":SENS:CURR:NPLC {nplc};:TRAC:CLE;:SENS:COUN {n};:TRAC:TRIG")
        values = np.array(
            [float(x) for x in (smu.handle_line(f":TRAC:DATA? 1,{n}") or "").split(",")]
        )
        std = float(smu.handle_line(":TRAC:STAT:STDD?") or "nan")
        assert std == pytest.approx(values.std(ddof=1), rel=1e-5)
        log_std.append(math.log(std))
    x = np.log(nplcs)
    slope = np.polyfit(x, np.array(log_std), 1)[0]
    # Sampling error of log(sample std) is 1/sqrt(2(n-1)); the slope's is that / sqrt(Sxx).
    se_slope = 1 / math.sqrt(2 * (n - 1)) / math.sqrt(((x - x.mean()) ** 2).sum())
    # Pickup (2 ppm, non-integer NPLC) and quantisation (1 ppm LSD) add < 0.5 % to the
    # variances: a slope bias below 0.002.
    assert abs(slope - NOISE_EXPONENT) < 5 * se_slope + 0.002
    # And the 1 PLC std matches sigma_1PLC = 5 ppm of the 10 mA range within 5 SE.
    sigma = noise_sigma(_spec_for(K2450_MEASURE_CURRENT, 10e-3), 1.0)
    assert math.exp(log_std[2]) == pytest.approx(sigma, rel=5 / math.sqrt(2 * (n - 1)) + 0.01)


def test_measurement_time_on_the_virtual_clock() -> None:
    clock = VirtualClock()
    smu = Keithley2450Emulator(lambda: PortModel(g_S=1e-3), clock, 1, line_frequency_Hz=60.0)
    smu.handle_line(":SOUR:VOLT 1;:SOUR:VOLT:ILIM 0.1;:SENS:CURR:RANG 10e-3;:OUTP ON")
    smu.handle_line(":SOUR:VOLT:DEL 0.005;:SENS:CURR:NPLC 2;:SENS:CURR:AZER OFF")
    t0 = clock.now_s
    smu.handle_line(":READ?")
    assert clock.now_s - t0 == pytest.approx(0.005 + measurement_time_s(2, 60.0, autozero=False))
    smu.handle_line(":SENS:CURR:AZER ON")
    t0 = clock.now_s
    smu.handle_line(":READ?")
    assert clock.now_s - t0 == pytest.approx(0.005 + measurement_time_s(2, 60.0, autozero=True))


# ---------------------------------------------------------------- buffers


def test_buffer_example_sequence() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        *RST
        :SOUR:VOLT 1
        :SOUR:VOLT:ILIM 0.01
        :OUTP ON
        :TRACe:MAKE "testData", 100
        :SENS:FUNC "CURR"
        :COUN 5
        :READ? "testData", FORM, DATE, READ
        :TRAC:ACT? "testData"
        :TRAC:DATA? 1, 5, "testData", READ, REL
        :FETCh? "testData", READ
        :TRAC:ACT:STAR? "testData"
        :TRAC:ACT:END? "testData"
        :TRAC:POIN? "testData"
        """,
    )
    formatted, date, last = replies[0].split(",")
    assert formatted.endswith(("uA", "mA"))  # front-panel form of ~1 mA
    assert date == "01/01/2026"
    assert replies[1] == "5"
    data = [float(x) for x in replies[2].split(",")]
    readings, rel = data[0::2], data[1::2]
    assert readings[-1] == float(last)
    assert all(r == pytest.approx(1e-3, rel=2e-3) for r in readings)
    step = rel[1] - rel[0]
    assert step == pytest.approx(1e-3 + measurement_time_s(1.0, 50.0, autozero=True))
    assert np.allclose(np.diff(rel), step)
    assert float(replies[3]) == readings[-1]
    assert replies[4:] == ["1", "5", "100"]


def test_buffer_errors_and_management() -> None:
    smu = _smu()
    smu.handle_line(":OUTP ON;:TRAC:MAKE 'buf', 10;:COUN 3;:TRAC:TRIG 'buf'")
    assert smu.handle_line(":TRAC:ACT? 'buf'") == "3"
    assert smu.handle_line(":TRAC:DATA? 2, 4, 'buf'") is None  # only 3 readings
    smu.handle_line(":TRAC:MAKE 'buf', 10")  # exists already
    smu.handle_line(":TRAC:DEL 'defbuffer1'")
    smu.handle_line(":TRAC:MAKE 'bad name', 10")
    assert _errors(smu) == [-222, -221, -224, -224]
    smu.handle_line(":TRAC:CLE 'buf'")
    assert smu.handle_line(":TRAC:ACT? 'buf'") == "0"
    smu.handle_line(":TRAC:DEL 'buf'")
    assert smu.handle_line(":READ? 'buf'") is None
    assert _errors(smu) == [-224]
    # A full fill-continuous buffer wraps: the newest readings stay.
    smu.handle_line(":TRAC:MAKE 'small', 4;:COUN 6;:TRAC:TRIG 'small'")
    assert smu.handle_line(":TRAC:ACT? 'small'") == "4"


def test_linear_sweep_with_init() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        *RST
        :SENS:FUNC "CURR"
        :SENS:CURR:RANG:AUTO ON
        :SOUR:VOLT:ILIM 0.01
        :SOUR:SWE:VOLT:LIN 0.2, 1.0, 5, 0.001, 1, AUTO, OFF, OFF, "defbuffer1"
        :INIT
        *WAI
        :TRAC:ACT?
        :TRAC:DATA? 1, 5, "defbuffer1", SOUR, READ
        """,
    )
    assert replies[0] == "5"
    data = [float(x) for x in replies[1].split(",")]
    for source, reading in zip(data[0::2], data[1::2], strict=True):
        assert reading == pytest.approx(source / R_OHM, rel=2e-3)
    assert [round(s, 2) for s in data[0::2]] == [0.2, 0.4, 0.6, 0.8, 1.0]


# ---------------------------------------------------------------- settings and errors


def test_settings_round_trip_and_reset() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        :ROUT:TERM REAR
        :ROUT:TERM?
        :SOUR:FUNC CURR
        :SOUR:FUNC?
        :SOUR:CURR 1e-6
        :SOUR:CURR?
        :SENS:VOLT:NPLC 0.5
        :SENS:VOLT:NPLC?
        :SENS:VOLT:RSEN ON
        :SENS:VOLT:RSEN?
        :OUTP:SMOD HIMP
        :OUTP:CURR:SMOD?
        :SENS:CURR:RANG:AUTO?
        :SENS:COUN 7
        :SENS:COUN?
        *RST
        :SOUR:FUNC?
        :SOUR:VOLT:ILIM?
        :SOUR:CURR:VLIM?
        :SENS:COUN?
        :ROUT:TERM?
        """,
    )
    assert replies == [
        "REAR",
        "CURR",
        "1.000000E-06",
        "5.000000E-01",
        "1",
        "HIMP",
        "1",
        "7",
        "VOLT",
        "1.050000E-04",
        "2.100000E+01",
        "1",
        "FRON",
    ]


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (":SOUR:VOLT 211", -222),
        (":SOUR:VOLT:ILIM 1.1", -222),
        (":SOUR:CURR:VLIM 300", -222),
        (":SENS:CURR:NPLC 11", -222),
        (":SENS:CURR:NPLC 0.001", -222),
        (":SOUR:VOLT:RANG 2;:SOUR:VOLT:RANG:AUTO OFF;:SOUR:VOLT 5", -221),
        (':SENS:FUNC "POWER"', -224),
        (":SOUR:FUNC RES", -224),
        (":SOUR2:VOLT 1", -114),
        (":SENS:CURR:NPLC", -109),
        (":FORM REAL", -224),
        (":FETC?", -230),
        (":SOUR:VOLT:ILIM:TRIP", -100),
    ],
)
def test_instrument_errors(line: str, code: int) -> None:
    smu = _smu()
    smu.handle_line(line)
    assert _errors(smu) == [code]
    assert smu.handle_line("*IDN?") is not None


def test_third_party_driver_idioms() -> None:
    """Lines as PyMeasure's and QCoDeS's 2450 drivers send them."""
    smu = _smu()
    replies = _run(
        smu,
        """
        *RST;:stat:pres;:*CLS;
        :ROUTe:TERMinals FRON
        :SOUR:FUNC CURR
        :SOUR:CURR:RANG:AUTO 1
        :SOUR:CURR:VLIM 10
        :SENS:FUNC "VOLT"
        :SENS:VOLT:NPLC 1
        :SENS:VOLT:RANG:AUTO 1
        :SOUR:CURR:LEV 0.0001
        :OUTP ON
        :READ?
        :SENSe:FUNCtion "CURR:DC"
        :SENSe:FUNCtion?
        :MEASure? 'defbuffer1'
        :OUTPut?
        :SYSTem:LFRequency?
        """,
    )
    assert float(replies[0]) == pytest.approx(0.1, rel=2e-3)  # 100 uA into 1 kohm
    assert replies[1] == '"CURR:DC"'
    assert float(replies[2]) == pytest.approx(1e-4, rel=2e-3)
    assert replies[3:] == ["1", "50"]


def test_harmless_display_and_beeper_commands_are_accepted() -> None:
    smu = _smu()
    _run(
        smu,
        """
        :DISP:LIGH:STAT ON50
        :DISP:SCR HOME
        :DISP:USER1:TEXT "labrss"
        :DISP:USER2:TEXT "calibrating"
        :DISP:CLE
        :SYST:BEEP 1000, 0.1
        :STAT:CLE
        :SYST:CLE
        :ABOR
        :SENS:AZER:ONCE
        """,
    )


_FUZZ_SMU = _smu()


@given(st.text(max_size=120))
def test_fuzz_never_raises_and_stays_usable(line: str) -> None:
    # One instrument for all examples: state left by earlier garbage must not wedge it.
    smu = _FUZZ_SMU
    smu.handle_line("*CLS")
    smu.handle_line(":OUTP ON")
    reply = smu.handle_line(line)
    assert reply is None or isinstance(reply, str)
    assert smu.handle_line("*IDN?") == "KEITHLEY INSTRUMENTS,MODEL 2450,04512345,1.7.12b"


def test_memoised_parse_still_checks_the_language_and_converts_each_time() -> None:
    """A unit's parse is memoised (`ScpiDevice._execute_unit`): a unit that was accepted in
    SCPI mode is still refused in TSP mode, and its parameters are converted anew."""
    smu = _smu()
    assert smu.handle_line(":SOUR:VOLT 0.5;:SOUR:VOLT?") == "5.000000E-01"
    assert smu.handle_line(":SOUR:VOLT 0.5;:SOUR:VOLT?") == "5.000000E-01"  # memoised
    assert smu.handle_line(":SOUR:VOLT 0.25;:SOUR:VOLT?") == "2.500000E-01"
    smu.handle_line(":SOUR:VOLT 5000")
    assert _errors(smu) == [-222]  # the value is still checked (range)
    assert smu.handle_line(":SOUR:VOLT?") == "2.500000E-01"
    smu.language = "TSP"  # as after *LANG TSP and a power cycle, without re-registering
    assert smu.handle_line(":SOUR:VOLT?") is None
    assert _errors(smu) == [-285]
