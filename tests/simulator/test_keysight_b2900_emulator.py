"""The Keysight B2901A/B2902A emulator: spot measurements, both channels, compliance, ohms.

Loads are fake `PortModel`s. Tolerances come from the B2900 datasheet numbers in
`smu_physics`: accuracy (gain x reading + offset) + 5 sigma of noise + one LSD.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.clock import VirtualClock
from simulator.keysight_b2900_emulator import KeysightB2900Emulator
from simulator.port_model import PortModel
from simulator.smu_physics import (
    AUTO_OHMS_TEST_CURRENT_A,
    B2900_MEASURE_CURRENT,
    B2900_MEASURE_VOLTAGE,
    B2900_SOURCE_VOLTAGE,
    NAN_READING,
    RangeSpec,
    measurement_time_s,
    noise_sigma,
)

R1_OHM = 1000.0
R2_OHM = 100e3
CH1 = PortModel(g_S=1 / R1_OHM)
CH2 = PortModel(g_S=1 / R2_OHM)
# 10 ohm element between two 0.5 ohm leads (see the 2450 tests).
LEADS = PortModel(g_S=1 / 11, sense_gain=10 / 11, four_wire=True)


def _smu(*ports: PortModel, model: str = "B2902A", seed: int = 2) -> KeysightB2900Emulator:
    callables = [lambda p=p: p for p in (ports or (CH1, CH2))]
    return KeysightB2900Emulator(callables, VirtualClock(), seed, model=model)


def _run(smu: KeysightB2900Emulator, script: str) -> list[str]:
    replies = []
    for line in script.strip().splitlines():
        reply = smu.handle_line(line.strip())
        if reply is not None:
            replies.append(reply)
    assert smu.handle_line(":SYST:ERR?") == '+0,"No error"'
    return replies


def _errors(smu: KeysightB2900Emulator) -> list[int]:
    codes = []
    while (reply := smu.handle_line(":SYST:ERR?")) != '+0,"No error"':
        assert reply is not None
        codes.append(int(reply.split(",")[0]))
    return codes


def _spec(specs: tuple[RangeSpec, ...], value: float) -> RangeSpec:
    """The range autorange uses for ``value`` (smallest whose 105 % holds it)."""
    return next(s for s in specs if abs(value) <= s.max_reading)


def _bound(specs: tuple[RangeSpec, ...], value: float, nplc: float = 1.0) -> float:
    spec = _spec(specs, value)
    pickup = 2e-6 * spec.full_scale if nplc != round(nplc) else 0.0
    return (
        spec.gain * abs(value)
        + spec.offset
        + 5 * noise_sigma(spec, nplc)
        + spec.resolution
        + pickup
    )


def _current_bound(v_V: float, r_ohm: float, nplc: float = 1.0) -> float:
    """Source error (B2900 voltage source) through the load, plus the ammeter's bound."""
    src = _spec(B2900_SOURCE_VOLTAGE, v_V)
    return (src.gain * abs(v_V) + src.offset + src.resolution) / r_ohm + _bound(
        B2900_MEASURE_CURRENT, v_V / r_ohm, nplc
    )


def test_identity_and_models() -> None:
    assert _smu().handle_line("*IDN?") == "Keysight Technologies,B2902A,MY51140001,3.4.2011.5100"
    one = _smu(CH1, model="B2901A")
    assert (one.handle_line("*IDN?") or "").split(",")[1] == "B2901A"
    one.handle_line(":SOUR2:VOLT 1")
    one.handle_line(":MEAS:CURR? (@2)")
    assert _errors(one) == [-114, -222]
    with pytest.raises(ValueError, match="channel"):
        KeysightB2900Emulator([lambda: CH1, lambda: CH2], VirtualClock(), 0, model="B2901A")
    with pytest.raises(ValueError, match="model"):
        KeysightB2900Emulator([lambda: CH1], VirtualClock(), 0, model="B2987A")


def test_spot_current_measurement_on_both_channels() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        *RST
        :SOUR1:FUNC:MODE VOLT
        :SOUR1:VOLT:MODE FIX
        :SOUR1:VOLT 0.1
        :SENS1:FUNC "CURR"
        :SENS1:CURR:NPLC 1
        :SENS1:CURR:PROT 0.01
        :SOUR2:FUNC:MODE VOLT
        :SOUR2:VOLT 2
        :SENS2:CURR:PROT 0.01
        :SENS2:CURR:NPLC 0.1
        :OUTP1 ON
        :OUTP2 ON
        :MEAS:CURR? (@1)
        :MEAS:CURR? (@1,2)
        :MEAS:CURR? (@2)
        """,
    )
    i1 = [float(replies[0]), float(replies[1].split(",")[0])]
    i2 = [float(replies[1].split(",")[1]), float(replies[2])]
    for value in i1:
        assert abs(value - 0.1 / R1_OHM) < _current_bound(0.1, R1_OHM)
    for value in i2:
        assert abs(value - 2.0 / R2_OHM) < _current_bound(2.0, R2_OHM, 0.1)


def test_unconnected_channel_reads_only_offset_and_noise() -> None:
    smu = _smu(CH1)  # a B2902A whose channel 2 is wired to nothing
    smu.handle_line(":SOUR2:VOLT 1;:SENS2:CURR:PROT 1e-3;:OUTP2 ON")
    reading = float(smu.handle_line(":MEAS:CURR? (@2)") or "nan")
    assert abs(reading) < _bound(B2900_MEASURE_CURRENT, 0.0)


def test_compliance_trips() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        :SOUR1:VOLT 1
        :SENS1:CURR:PROT 1e-5
        :OUTP1 ON
        :MEAS:CURR? (@1)
        :SENS1:CURR:PROT:TRIP?
        :SENS1:VOLT:PROT:TRIP?
        :SENS1:CURR:PROT 0.01
        :SENS1:CURR:PROT:TRIP?
        """,
    )
    assert abs(float(replies[0]) - 1e-5) < _bound(B2900_MEASURE_CURRENT, 1e-5)
    assert replies[1:] == ["1", "0", "0"]


def test_measure_with_format_elements_in_fixed_order() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        :SOUR1:VOLT 0.5
        :SENS1:CURR:PROT 0.01
        :SENS1:FUNC "VOLT","CURR"
        :FORM:ELEM:SENS SOUR,CURR,VOLT
        :MEAS? (@1)
        :SENS1:FUNC "RES"
        :FORM:ELEM:SENS RES,CURR,VOLT
        :FORM:ELEM:SENS?
        :MEAS? (@1)
        :SENS1:FUNC:OFF "VOLT"
        :MEAS? (@1)
        """,
    )
    volt, curr, source = (float(x) for x in replies[0].split(","))  # VOLT, CURR, SOUR
    assert abs(volt - 0.5) < _bound(B2900_MEASURE_VOLTAGE, 0.5) + 5e-4
    assert abs(curr - 0.5e-3) < _current_bound(0.5, R1_OHM)
    assert source == 0.5
    assert replies[1] == "VOLT,CURR,RES"
    _, _, res = (float(x) for x in replies[2].split(","))
    assert res == pytest.approx(R1_OHM, rel=2e-3)
    assert float(replies[3].split(",")[0]) == NAN_READING  # VOLT off: 9.91E+37
    assert replies[3].startswith("+9.910000E+37")


def test_manual_ohms_two_channels_and_auto_ohms_four_wire() -> None:
    smu = _smu(CH1, LEADS)
    replies = _run(
        smu,
        """
        :SOUR1:VOLT 0.2
        :SENS1:CURR:PROT 0.01
        :SENS1:RES:MODE MAN
        :MEAS:RES? (@1)
        :SENS2:RES:MODE AUTO
        :SENS2:RES:RANG:AUTO ON
        :SENS2:REM ON
        :MEAS:RES? (@2)
        :SENS2:RES:RANG?
        :SENS2:REM OFF
        :MEAS:RES? (@2)
        """,
    )
    v_bound = _bound(B2900_MEASURE_VOLTAGE, 0.2)
    i_bound = _bound(B2900_MEASURE_CURRENT, 0.2e-3)
    assert abs(float(replies[0]) - R1_OHM) < R1_OHM * (v_bound / 0.2 + i_bound / 0.2e-3)
    i_test = AUTO_OHMS_TEST_CURRENT_A[20.0]  # 100 mA on the 20 ohm range
    for reading, r_true in ((replies[1], 10.0), (replies[3], 11.0)):
        v = r_true * i_test
        tol = r_true * (
            _bound(B2900_MEASURE_VOLTAGE, v) / v + _bound(B2900_MEASURE_CURRENT, i_test) / i_test
        )
        assert abs(float(reading) - r_true) < tol
    assert replies[2] == "+2.000000E+01"


def test_meas_turns_the_output_on_unless_auto_on_is_off() -> None:
    smu = _smu()
    smu.handle_line(":SOUR1:VOLT 0.1;:SENS1:CURR:PROT 0.01")
    assert smu.handle_line(":OUTP1?") == "0"
    assert smu.handle_line(":MEAS:CURR? (@1)") is not None
    assert smu.handle_line(":OUTP1?") == "1"
    smu.handle_line(":OUTP2:ON:AUTO OFF")
    assert smu.handle_line(":MEAS:CURR? (@2)") is None
    assert _errors(smu) == [-221]
    smu.handle_line(":OUTP1:OFF:AUTO ON;:MEAS:CURR? (@1)")
    assert smu.handle_line(":OUTP1?") == "0"


def test_triggered_burst_and_fetch_arrays() -> None:
    clock = VirtualClock()
    smu = KeysightB2900Emulator([lambda: CH1], clock, 4, model="B2901A")
    replies = _run(
        smu,
        """
        :SOUR:VOLT 1
        :SENS:CURR:PROT 0.01
        :SENS:CURR:NPLC 0.1
        :SENS:CURR:RANG:AUTO OFF
        :SENS:CURR:RANG 1e-3
        :TRIG:SOUR AINT
        :TRIG:COUN 10
        :INIT (@1)
        :FETC:ARR:CURR? (@1)
        :FETC:ARR:TIME? (@1)
        :FETC:CURR? (@1)
        """,
    )
    currents = np.array([float(x) for x in replies[0].split(",")])
    times = np.array([float(x) for x in replies[1].split(",")])
    assert currents.size == times.size == 10
    assert np.all(np.abs(currents - 1e-3) < _current_bound(1.0, R1_OHM, 0.1))
    step = 1e-3 + measurement_time_s(0.1, 50.0, autozero=False)  # source delay + aperture
    assert np.allclose(np.diff(times), step)
    assert float(replies[2]) == currents[-1]


def test_settings_round_trip_and_errors() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        :SOUR2:FUNC:MODE CURR
        :SOUR2:FUNC:MODE?
        :SOUR2:CURR 1e-6
        :SOUR2:CURR?
        :SENS2:VOLT:PROT 5
        :SENS2:VOLT:PROT?
        :SENS1:CURR:APER 0.02
        :SENS1:CURR:NPLC?
        :SENS1:CURR:RANG 1e-4
        :SENS1:CURR:RANG?
        :SENS1:CURR:RANG:AUTO?
        :SYST:LFR 60
        :SYST:LFR?
        *RST
        :SOUR2:FUNC:MODE?
        :SENS1:CURR:PROT?
        """,
    )
    assert replies == [
        "CURR",
        "+1.000000E-06",
        "+5.000000E+00",
        "+1.000000E+00",
        "+1.000000E-04",
        "0",
        "60",
        "VOLT",
        "+1.000000E-04",
    ]
    for line, code in (
        (":SENS1:CURR:NPLC 1000", -222),
        (":SOUR1:VOLT 300", -222),
        (":SOUR1:PULS:WIDT 1e-3", -113),
        (':SENS1:FUNC "POW"', -224),
        (":SYST:LFR 55", -224),
        (":TRIG1:SOUR EXT1", -224),
        (":OUTP1 ON;:OUTP1:LOW FLO", -221),
    ):
        smu.handle_line(line)
        assert _errors(smu) == [code], line


def test_error_queue_holds_30_entries() -> None:
    smu = _smu()
    for _ in range(40):
        smu.handle_line(":NOPE")
    codes = _errors(smu)
    assert len(codes) == 30
    assert codes[-1] == -350


_FUZZ_SMU = _smu()


@given(st.text(max_size=120))
def test_fuzz_never_raises_and_stays_usable(line: str) -> None:
    # One instrument for all examples: state left by earlier garbage must not wedge it.
    smu = _FUZZ_SMU
    smu.handle_line("*CLS")
    reply = smu.handle_line(line)
    assert reply is None or isinstance(reply, str)
    assert (smu.handle_line("*IDN?") or "").startswith("Keysight Technologies,B2902A")
