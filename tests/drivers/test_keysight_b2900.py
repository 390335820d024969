"""Protocol tests of the Keysight B2900 driver: channel-aware SCPI, without I/O."""

from __future__ import annotations

import math
from typing import Any

import pytest

from drivers.adapters import ProtocolAdapter
from drivers.errors import (
    InstrumentCommandError,
    InstrumentError,
    InstrumentIdentityError,
    InstrumentLimitError,
)
from drivers.keysight_b2900 import KeysightB2900
from drivers.smu import SafetyLimits
from drivers.testing import expected_protocol

IDN = "Keysight Technologies,B2902A,MY51140001,3.4.2011.5100"
LIMITS = SafetyLimits(max_voltage_V=2.0, max_current_A=0.05)
NO_ERROR = (":SYST:ERR?", '+0,"No error"')


def init(ch: int, idn: str = IDN) -> list[tuple[str | None, str | None]]:
    return [("*IDN?", idn), ("*CLS", None), (f":OUTP{ch}?", "0")]


def source_setup(ch: int) -> list[tuple[str | None, str | None]]:
    return [
        (f":SOUR{ch}:FUNC:MODE VOLT", None),
        (f":SOUR{ch}:VOLT:MODE FIX", None),
        (f":SENS{ch}:CURR:PROT 0.001", None),
        (f":SOUR{ch}:VOLT:RANG:AUTO ON", None),
        (f":SOUR{ch}:VOLT 0.2", None),
        NO_ERROR,
    ]


def measure_setup(ch: int) -> list[tuple[str | None, str | None]]:
    return [
        (f':SENS{ch}:FUNC "CURR","VOLT"', None),
        (f":SENS{ch}:CURR:RANG 0.0001", None),
        (f":SENS{ch}:CURR:NPLC 0.1", None),
        (f":SENS{ch}:REM ON", None),
        (":FORM:ELEM:SENS VOLT,CURR,TIME", None),
        NO_ERROR,
    ]


def ready_pairs(ch: int) -> list[tuple[str | None, str | None]]:
    return [*init(ch), *source_setup(ch), *measure_setup(ch), (f":OUTP{ch} ON", None), NO_ERROR]


def maker(ch: int) -> Any:
    return lambda adapter: KeysightB2900(adapter, LIMITS, channel=ch)


def ready(smu: KeysightB2900) -> None:
    smu.configure_voltage_source(0.2, 1e-3)
    smu.configure_measurement(nplc=0.1, current_range_A=1e-4, four_wire=True)
    smu.enable_output()


@pytest.mark.parametrize("ch", [1, 2])
def test_init_traffic(ch: int) -> None:
    with expected_protocol(maker(ch), init(ch)) as smu:
        assert smu.model == "B2902A"
        assert smu.serial == "MY51140001"
        assert f"channel {ch}" in smu.name


def test_agilent_branded_b2901a_is_accepted() -> None:
    idn = "Agilent Technologies,B2901A,MY1234,2.0"
    with expected_protocol(maker(1), init(1, idn)) as smu:
        assert smu.model == "B2901A"


def test_channel_2_on_a_one_channel_model_is_refused() -> None:
    adapter = ProtocolAdapter([("*IDN?", "Keysight Technologies,B2901A,MY1,1.0")])
    with pytest.raises(InstrumentError, match="B2901A has 1 channel"):
        KeysightB2900(adapter, LIMITS, channel=2)


@pytest.mark.parametrize(
    "idn", ["KEITHLEY INSTRUMENTS,MODEL 2450,04512345,1.7.12b", "Keysight Technologies,34465A,X,1"]
)
def test_wrong_model_is_refused(idn: str) -> None:
    adapter = ProtocolAdapter([("*IDN?", idn)], name="USB0::0x2A8D::0x9201::MY1::INSTR")
    with pytest.raises(InstrumentIdentityError) as info:
        KeysightB2900(adapter, LIMITS)
    assert "USB0::0x2A8D::0x9201::MY1::INSTR" in str(info.value)
    assert repr(idn) in str(info.value)


@pytest.mark.parametrize(
    ("attribute", "value", "command"),
    [
        ("compliance_current_A", 0.01, ":SENS{ch}:CURR:PROT 0.01"),
        ("current_range_A", 1e-6, ":SENS{ch}:CURR:RANG 1e-06"),
        ("current_nplc", 0.0004, ":SENS{ch}:CURR:NPLC 0.0004"),
        ("four_wire", False, ":SENS{ch}:REM OFF"),
        ("source_voltage_range_V", 20.0, ":SOUR{ch}:VOLT:RANG 20"),
        ("trigger_count", 7, ":TRIG{ch}:COUN 7"),
        ("output_state", False, ":OUTP{ch} OFF"),
    ],
)
@pytest.mark.parametrize("ch", [1, 2])
def test_channel_aware_setters(attribute: str, value: Any, command: str, ch: int) -> None:
    with expected_protocol(maker(ch), [*init(ch), (command.format(ch=ch), None)]) as smu:
        setattr(smu, attribute, value)


@pytest.mark.parametrize(
    ("attribute", "command", "reply", "value"),
    [
        ("compliance_tripped", ":SENS{ch}:CURR:PROT:TRIP?", "1", True),
        ("source_voltage_V", ":SOUR{ch}:VOLT?", "+2.000000E-01", 0.2),
        ("current_nplc", ":SENS{ch}:CURR:NPLC?", "+1.000000E+00", 1.0),
        ("four_wire", ":SENS{ch}:REM?", "0", False),
    ],
)
@pytest.mark.parametrize("ch", [1, 2])
def test_channel_aware_getters(
    attribute: str, command: str, reply: str, value: Any, ch: int
) -> None:
    with expected_protocol(maker(ch), [*init(ch), (command.format(ch=ch), reply)]) as smu:
        assert getattr(smu, attribute) == value


@pytest.mark.parametrize("ch", [1, 2])
def test_configuration_traffic(ch: int) -> None:
    with expected_protocol(maker(ch), [*init(ch), *source_setup(ch), *measure_setup(ch)]) as smu:
        smu.configure_voltage_source(0.2, 1e-3)
        smu.configure_measurement(nplc=0.1, current_range_A=1e-4, four_wire=True)


def test_limits_refused_before_anything_is_sent() -> None:
    adapter = ProtocolAdapter(init(2))
    smu = KeysightB2900(adapter, LIMITS, channel=2)
    with pytest.raises(InstrumentLimitError, match="source voltage"):
        smu.configure_voltage_source(2.5, 1e-3)
    with pytest.raises(InstrumentLimitError, match="current compliance"):
        smu.configure_voltage_source(0.1, 0.1)
    assert adapter.written == ["*IDN?", "*CLS", ":OUTP2?"]


def test_error_queue_after_configuration() -> None:
    pairs = [*init(1), *source_setup(1)[:-1], (":SYST:ERR?", '-221,"Settings conflict"'), NO_ERROR]
    with (
        expected_protocol(maker(1), pairs) as smu,
        pytest.raises(InstrumentCommandError, match="Settings conflict") as info,
    ):
        smu.configure_voltage_source(0.2, 1e-3)
    assert info.value.code == -221


@pytest.mark.parametrize("ch", [1, 2])
def test_measure_traffic(ch: int) -> None:
    command = f":MEAS? (@{ch});:SENS{ch}:CURR:PROT:TRIP?;:SENS{ch}:CURR:RANG?"
    reply = "+2.000100E-01,+2.000000E-05,+1.234000E+00;0;+1.000000E-04"
    with expected_protocol(maker(ch), [*ready_pairs(ch), (command, reply)]) as smu:
        ready(smu)
        reading = smu.measure()
    assert reading.voltage_V == pytest.approx(0.20001)
    assert reading.current_A == pytest.approx(2e-5)
    assert reading.timestamp_s == pytest.approx(1.234)
    assert reading.four_wire is True
    assert reading.nplc == 0.1
    assert reading.current_range_A == 1e-4
    assert reading.resistance_ohm == pytest.approx(0.20001 / 2e-5)


def test_nan_value_becomes_nan_with_warning() -> None:
    command = ":MEAS? (@1);:SENS1:CURR:PROT:TRIP?;:SENS1:CURR:RANG?"
    reply = "+9.910000E+37,+2.0E-05,+1.0;0;+1.0E-04"
    with expected_protocol(maker(1), [*ready_pairs(1), (command, reply)]) as smu:
        ready(smu)
        with pytest.warns(RuntimeWarning, match="B2902A MY51140001.*voltage overflowed"):
            assert math.isnan(smu.measure().voltage_V)


def test_measure_many_traffic() -> None:
    fetch = ":FETC:ARR? (@2);:SENS2:CURR:PROT:TRIP?;:SENS2:CURR:RANG?"
    reply = "0.2,1E-05,0.0,0.2,1.1E-05,0.01;1;1E-04"
    pairs = [
        *ready_pairs(2),
        (":TRIG2:COUN 2", None),
        (":INIT (@2)", None),
        ("*OPC?", "1"),
        (fetch, reply),
        (":TRIG2:COUN 1", None),
    ]
    with expected_protocol(maker(2), pairs) as smu:
        ready(smu)
        readings = smu.measure_many(2)
    assert [r.current_A for r in readings] == pytest.approx([1e-5, 1.1e-5])
    assert [r.timestamp_s for r in readings] == pytest.approx([0.0, 0.01])
    assert all(r.limit_tripped for r in readings)


def test_measure_many_wrong_count_of_elements() -> None:
    fetch = ":FETC:ARR? (@1);:SENS1:CURR:PROT:TRIP?;:SENS1:CURR:RANG?"
    pairs = [
        *ready_pairs(1),
        (":TRIG1:COUN 2", None),
        (":INIT (@1)", None),
        ("*OPC?", "1"),
        (fetch, "0.2,1E-05,0.0;0;1E-04"),
        (":TRIG1:COUN 1", None),
    ]
    with (
        expected_protocol(maker(1), pairs) as smu,
        pytest.raises(InstrumentError, match="expected 6"),
    ):
        ready(smu)
        smu.measure_many(2)


def test_shutdown_traffic_is_channel_aware() -> None:
    pairs = [*ready_pairs(2), (":SOUR2:VOLT 0", None), (":OUTP2 OFF", None)]
    with expected_protocol(maker(2), pairs) as smu:
        ready(smu)
        smu.shutdown()
