"""Protocol tests of the Keithley 2400 driver: the exact SCPI traffic, without I/O."""

from __future__ import annotations

import math
from typing import Any

import pytest

from drivers.adapters import ProtocolAdapter, Reply
from drivers.errors import (
    InstrumentCommandError,
    InstrumentError,
    InstrumentIdentityError,
    InstrumentLimitError,
    InstrumentModeError,
)
from drivers.keithley2400 import Keithley2400
from drivers.keithley2450 import Keithley2450
from drivers.smu import SafetyLimits
from drivers.testing import expected_protocol

IDN = "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1234567,C33   Oct 10 2008 12:00:00/A02  /S/K"
IDN_2450 = "KEITHLEY INSTRUMENTS,MODEL 2450,04512345,1.7.12b"
Pairs = list[tuple[str | None, Reply]]
INIT: Pairs = [("*IDN?", IDN), ("*CLS", None), (":OUTP?", "0")]
NO_ERROR: tuple[str, str] = (":SYST:ERR?", '0,"No error"')
LIMITS = SafetyLimits(max_voltage_V=1.0, max_current_A=0.01)
MEASURE = ":READ?;:SENS:CURR:PROT:TRIP?;:SENS:CURR:RANG?"
SOURCE_SETUP: Pairs = [
    (":SOUR:FUNC VOLT", None),
    (":SOUR:VOLT:MODE FIX", None),
    (":SENS:CURR:PROT 0.001", None),
    (":SOUR:VOLT:RANG:AUTO ON", None),
    (":SOUR:VOLT 0.1", None),
    NO_ERROR,
]
MEASURE_SETUP: Pairs = [
    (":SENS:FUNC:CONC ON", None),
    (':SENS:FUNC "VOLT","CURR"', None),
    (":SENS:CURR:RANG:AUTO ON", None),
    (":SENS:CURR:NPLC 1", None),
    (":SYST:RSEN OFF", None),
    (":FORM:ELEM VOLT,CURR,TIME", None),
    (":ARM:COUN 1", None),
    (":TRIG:COUN 1", None),
    NO_ERROR,
]
READY: Pairs = INIT + SOURCE_SETUP + MEASURE_SETUP + [(":OUTP ON", None), NO_ERROR]


def make(adapter: ProtocolAdapter) -> Keithley2400:
    return Keithley2400(adapter, LIMITS)


def ready(smu: Keithley2400) -> None:
    smu.configure_voltage_source(0.1, 1e-3)
    smu.configure_measurement(nplc=1)
    smu.enable_output()


def test_init_traffic_and_identity() -> None:
    with expected_protocol(make, INIT, name="GPIB0::24::INSTR") as smu:
        assert smu.model == "2400"
        assert smu.serial == "1234567"
        assert smu.label == "2400 1234567"
        assert smu.output_enabled is False
        assert "GPIB0::24::INSTR" in smu.name


def test_a_2450_in_scpi2400_mode_is_accepted() -> None:
    pairs: Pairs = [("*IDN?", IDN_2450), ("*LANG?", "SCPI2400"), ("*CLS", None), (":OUTP?", "1")]
    with expected_protocol(make, pairs) as smu:
        assert smu.model == "2450"
        assert smu.output_enabled is True
        assert 10e-9 in smu.current_ranges_A


def test_a_2450_in_its_native_mode_is_refused_naming_the_2450_driver() -> None:
    adapter = ProtocolAdapter([("*IDN?", IDN_2450), ("*LANG?", "SCPI")])
    with pytest.raises(InstrumentModeError) as info:
        Keithley2400(adapter, LIMITS)
    assert '"keithley2450"' in str(info.value)
    assert "*LANG SCPI2400" in str(info.value)
    adapter.assert_done()


def test_the_2450_driver_refusal_says_how_to_use_the_2400_driver() -> None:
    adapter = ProtocolAdapter([("*IDN?", IDN_2450), ("*LANG?", "SCPI2400")])
    with pytest.raises(InstrumentModeError) as info:
        Keithley2450(adapter, LIMITS)
    text = str(info.value)
    assert 'driver = "keithley2400"' in text
    assert "*LANG SCPI" in text
    adapter.assert_done()


@pytest.mark.parametrize(
    "idn",
    [
        "Keysight Technologies,B2902A,MY5114,3.4",
        "KEITHLEY INSTRUMENTS INC.,MODEL 2000,1,A",
        "garbage",
    ],
)
def test_wrong_model_is_refused_naming_address_and_answer(idn: str) -> None:
    adapter = ProtocolAdapter([("*IDN?", idn)], name="GPIB0::24::INSTR")
    with pytest.raises(InstrumentIdentityError) as info:
        Keithley2400(adapter, LIMITS)
    assert "GPIB0::24::INSTR" in str(info.value)
    assert repr(idn) in str(info.value)
    adapter.assert_done()


SETTERS: list[tuple[str, Any, str]] = [
    ("source_voltage_range_V", 2.0, ":SOUR:VOLT:RANG 2"),
    ("compliance_current_A", 1e-5, ":SENS:CURR:PROT 1e-05"),
    ("current_range_A", 1e-3, ":SENS:CURR:RANG 0.001"),
    ("current_nplc", 0.01, ":SENS:CURR:NPLC 0.01"),
    ("four_wire", True, ":SYST:RSEN ON"),
    ("trigger_count", 5, ":TRIG:COUN 5"),
]


@pytest.mark.parametrize(("attribute", "value", "command"), SETTERS)
def test_property_setters(attribute: str, value: Any, command: str) -> None:
    with expected_protocol(make, [*INIT, (command, None)]) as smu:
        setattr(smu, attribute, value)


GETTERS: list[tuple[str, str, str, Any]] = [
    ("source_voltage_V", ":SOUR:VOLT?", "+1.000000E-01", 0.1),
    ("compliance_current_A", ":SENS:CURR:PROT?", "+1.050000E-04", 105e-6),
    ("compliance_tripped", ":SENS:CURR:PROT:TRIP?", "1", True),
    ("current_range_A", ":SENS:CURR:RANG?", "+1.000000E-04", 1e-4),
    ("four_wire", ":SYST:RSEN?", "0", False),
    ("trigger_count", ":TRIG:COUN?", "+10", 10),
    ("output_state", ":OUTP?", "1", True),
]


@pytest.mark.parametrize(("attribute", "command", "reply", "value"), GETTERS)
def test_property_getters(attribute: str, command: str, reply: str, value: Any) -> None:
    with expected_protocol(make, [*INIT, (command, reply)]) as smu:
        assert getattr(smu, attribute) == value


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("current_nplc", 0.001),
        ("current_nplc", 11),
        ("current_range_A", 10e-9),  # the 2400 has no 10 nA range
        ("source_voltage_range_V", 0.02),
        ("source_voltage_V", 1.5),  # beyond the 1 V safety limit
        ("compliance_current_A", 0.02),  # beyond the 10 mA safety limit
        ("trigger_count", 2501),
    ],
)
def test_strict_validators_refuse_and_send_nothing(attribute: str, value: Any) -> None:
    with expected_protocol(make, INIT) as smu, pytest.raises(ValueError, match=attribute):
        setattr(smu, attribute, value)


def test_configure_voltage_source_sets_compliance_before_level() -> None:
    with expected_protocol(make, INIT + SOURCE_SETUP) as smu:
        smu.configure_voltage_source(0.1, 1e-3)
        assert smu.compliance_A == 1e-3


@pytest.mark.parametrize(("level_V", "compliance_A"), [(1.01, 1e-3), (0.1, 0.011), (0.1, 0.0)])
def test_limits_refused_before_anything_is_sent(level_V: float, compliance_A: float) -> None:
    adapter = ProtocolAdapter(INIT)
    smu = Keithley2400(adapter, LIMITS)
    with pytest.raises(InstrumentLimitError):
        smu.configure_voltage_source(level_V, compliance_A)
    assert adapter.written == [command for command, _ in INIT]


def test_output_on_before_compliance_is_refused_by_every_public_path() -> None:
    adapter = ProtocolAdapter(INIT)
    smu = Keithley2400(adapter, LIMITS)
    with pytest.raises(InstrumentError, match="compliance"):
        smu.enable_output()
    with pytest.raises(InstrumentError, match="compliance"):
        smu.output_state = True
    with pytest.raises(InstrumentError, match="compliance"), smu.output_on():
        pass
    assert adapter.written == [command for command, _ in INIT]


def test_output_state_true_after_compliance_goes_through_enable_output() -> None:
    pairs = INIT + SOURCE_SETUP + [(":OUTP ON", None), NO_ERROR, (":OUTP OFF", None)]
    with expected_protocol(make, pairs) as smu:
        smu.configure_voltage_source(0.1, 1e-3)
        smu.output_state = True
        assert smu.output_enabled
        smu.output_state = False
        assert not smu.output_enabled


def test_measure_traffic_and_parsing() -> None:
    reply = "+1.000045E-01,+1.000123E-04,+2.500000E+00;0;+1.000000E-04"
    with expected_protocol(make, [*READY, (MEASURE, reply)]) as smu:
        ready(smu)
        reading = smu.measure()
    assert reading.voltage_V == pytest.approx(0.1000045)
    assert reading.current_A == pytest.approx(1.000123e-4)
    assert reading.timestamp_s == 2.5
    assert reading.limit_tripped is False
    assert reading.current_range_A == 1e-4
    assert reading.nplc == 1.0
    assert reading.instrument == "2400 1234567"


def test_overflow_becomes_nan_with_a_warning() -> None:
    reply = "+1.000000E-01,+9.900000E+37,+1.0E-01;1;+1.000000E-03"
    with expected_protocol(make, [*READY, (MEASURE, reply)]) as smu:
        ready(smu)
        with pytest.warns(RuntimeWarning, match="current overflowed"):
            reading = smu.measure()
    assert math.isnan(reading.current_A)
    assert reading.limit_tripped


def test_measure_many_traffic() -> None:
    reply = "+0.1,+1.0E-04,+0.00,+0.1,+1.1E-04,+0.02,+0.1,+1.2E-04,+0.04;0;+1.000000E-04"
    pairs: Pairs = [*READY, (":TRIG:COUN 3", None), (MEASURE, reply), (":TRIG:COUN 1", None)]
    with expected_protocol(make, pairs) as smu:
        ready(smu)
        readings = smu.measure_many(3)
    assert [r.current_A for r in readings] == pytest.approx([1.0e-4, 1.1e-4, 1.2e-4])


def test_measure_with_output_off_is_refused_before_sending() -> None:
    adapter = ProtocolAdapter(INIT + SOURCE_SETUP + MEASURE_SETUP)
    smu = Keithley2400(adapter, LIMITS)
    smu.configure_voltage_source(0.1, 1e-3)
    smu.configure_measurement(nplc=1)
    with pytest.raises(InstrumentError, match="output is off"):
        smu.measure()
    adapter.assert_done()


def test_error_queue_after_configuration_raises() -> None:
    pairs: Pairs = [
        *MEASURE_SETUP[:-1],
        (":SYST:ERR?", '-113,"Undefined header"'),
        NO_ERROR,
    ]
    with expected_protocol(make, INIT + pairs) as smu, pytest.raises(InstrumentCommandError):
        smu.configure_measurement(nplc=1)


def test_shutdown_and_context_manager() -> None:
    adapter = ProtocolAdapter([*READY, (":SOUR:VOLT 0", None), (":OUTP OFF", None)])
    with Keithley2400(adapter, LIMITS) as smu:
        ready(smu)
    assert adapter.closed
    adapter.assert_done()
