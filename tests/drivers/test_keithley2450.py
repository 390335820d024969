"""Protocol tests of the Keithley 2450 driver: the exact SCPI traffic, without I/O."""

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
    InstrumentTimeoutError,
)
from drivers.keithley2450 import Keithley2450
from drivers.smu import SafetyLimits, SeriesPoint
from drivers.testing import TIMEOUT, expected_protocol

IDN = "KEITHLEY INSTRUMENTS,MODEL 2450,04512345,1.7.12b"
Pairs = list[tuple[str | None, Reply]]
INIT: Pairs = [
    ("*IDN?", IDN),
    ("*LANG?", "SCPI"),
    ("*CLS", None),
    (":OUTP?", "0"),
]
NO_ERROR: tuple[str | None, str | None] = (":SYST:ERR?", '0,"No error;0;0 0"')
LIMITS = SafetyLimits(max_voltage_V=1.0, max_current_A=0.01)
MEASURE = ':READ? "defbuffer1",READ,SOUR,REL;:SOUR:VOLT:ILIM:TRIP?;:SENS:CURR:RANG?'
NO_ERROR_REPLY = '0,"No error;0;0 0"'


def checked(*commands: str, reply: str = NO_ERROR_REPLY) -> tuple[str, str]:
    """A configuration as the driver sends it: the commands and the error query, one line."""
    return (";".join([*commands, ":SYST:ERR?"]), reply)


SOURCE_SETUP: Pairs = [
    checked(
        ":SOUR:FUNC VOLT",
        ":SOUR:VOLT:ILIM 0.001",
        ":SOUR:VOLT:RANG:AUTO ON",
        ":SOUR:VOLT:READ:BACK ON",
        ":SOUR:VOLT 0.1",
    )
]
MEASURE_SETUP: Pairs = [
    checked(
        ':SENS:FUNC "CURR"', ":SENS:CURR:RANG:AUTO ON", ":SENS:CURR:NPLC 1", ":SENS:CURR:RSEN OFF"
    )
]
READY: Pairs = INIT + SOURCE_SETUP + MEASURE_SETUP + [(":OUTP ON", None), NO_ERROR]


def make(adapter: ProtocolAdapter) -> Keithley2450:
    return Keithley2450(adapter, LIMITS)


def ready(smu: Keithley2450) -> None:
    smu.configure_voltage_source(0.1, 1e-3)
    smu.configure_measurement(nplc=1)
    smu.enable_output()


def test_init_traffic_and_identity() -> None:
    with expected_protocol(make, INIT, name="TCPIP0::10.0.0.5::5025::SOCKET") as smu:
        assert smu.identity == IDN
        assert smu.model == "2450"
        assert smu.serial == "04512345"
        assert smu.label == "2450 04512345"
        assert smu.output_enabled is False
        assert "TCPIP0::10.0.0.5::5025::SOCKET" in smu.name


def test_init_reads_output_already_on() -> None:
    with expected_protocol(make, [*INIT[:3], (":OUTP?", "1")]) as smu:
        assert smu.output_enabled is True


@pytest.mark.parametrize(
    "idn",
    [
        "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1234567,C30",
        "Keysight Technologies,B2902A,MY5114,3.4",
        "LABRSS,XBAR-8x8x8,SIM-1,1.0.0",
        "garbage",
    ],
)
def test_wrong_model_is_refused_naming_address_and_answer(idn: str) -> None:
    adapter = ProtocolAdapter([("*IDN?", idn)], name="GPIB0::18::INSTR")
    with pytest.raises(InstrumentIdentityError) as info:
        Keithley2450(adapter, LIMITS)
    assert "GPIB0::18::INSTR" in str(info.value)
    assert repr(idn) in str(info.value)
    assert info.value.command == "*IDN?"
    adapter.assert_done()


@pytest.mark.parametrize("language", ["SCPI2400", "TSP"])
def test_non_native_command_set_is_refused_with_instructions(language: str) -> None:
    adapter = ProtocolAdapter([("*IDN?", IDN), ("*LANG?", language)])
    with pytest.raises(InstrumentModeError) as info:
        Keithley2450(adapter, LIMITS)
    text = str(info.value)
    assert language in text
    assert "Command Set > SCPI" in text
    assert "*LANG SCPI" in text
    assert "power-cycle" in text
    adapter.assert_done()


SETTERS: list[tuple[str, Any, str]] = [
    ("source_function", "voltage", ":SOUR:FUNC VOLT"),
    ("source_function", "current", ":SOUR:FUNC CURR"),
    ("source_voltage_range_V", 2.0, ":SOUR:VOLT:RANG 2"),
    ("source_voltage_range_V", 0.02, ":SOUR:VOLT:RANG 0.02"),
    ("source_voltage_autorange", True, ":SOUR:VOLT:RANG:AUTO ON"),
    ("source_readback", False, ":SOUR:VOLT:READ:BACK OFF"),
    ("current_limit_A", 1e-5, ":SOUR:VOLT:ILIM 1e-05"),
    ("sense_function", "resistance", ':SENS:FUNC "RES"'),
    ("current_range_A", 1e-3, ":SENS:CURR:RANG 0.001"),
    ("current_autorange", False, ":SENS:CURR:RANG:AUTO OFF"),
    ("current_nplc", 0.01, ":SENS:CURR:NPLC 0.01"),
    ("current_nplc", 10, ":SENS:CURR:NPLC 10"),
    ("four_wire", True, ":SENS:CURR:RSEN ON"),
    ("measure_count", 5, ":SENS:COUN 5"),
    ("output_state", False, ":OUTP OFF"),
]


@pytest.mark.parametrize(("attribute", "value", "command"), SETTERS)
def test_property_setters(attribute: str, value: Any, command: str) -> None:
    with expected_protocol(make, [*INIT, (command, None)]) as smu:
        setattr(smu, attribute, value)


def test_source_voltage_setter_checks_the_error_queue() -> None:
    with expected_protocol(make, [*INIT, (":SOUR:VOLT -0.25", None), NO_ERROR]) as smu:
        smu.source_voltage_V = -0.25


GETTERS: list[tuple[str, str, str, Any]] = [
    ("source_function", ":SOUR:FUNC?", "VOLT", "voltage"),
    ("source_voltage_V", ":SOUR:VOLT?", "1.000000E-01", 0.1),
    ("source_voltage_range_V", ":SOUR:VOLT:RANG?", "2.000000E+00", 2.0),
    ("source_voltage_autorange", ":SOUR:VOLT:RANG:AUTO?", "1", True),
    ("current_limit_A", ":SOUR:VOLT:ILIM?", "1.000000E-03", 1e-3),
    ("current_limit_tripped", ":SOUR:VOLT:ILIM:TRIP?", "1", True),
    ("current_limit_tripped", ":SOUR:VOLT:ILIM:TRIP?", "0", False),
    ("current_range_A", ":SENS:CURR:RANG?", "1.000000E-06", 1e-6),
    ("current_autorange", ":SENS:CURR:RANG:AUTO?", "0", False),
    ("current_nplc", ":SENS:CURR:NPLC?", "1", 1.0),
    ("four_wire", ":SENS:CURR:RSEN?", "1", True),
    ("measure_count", ":SENS:COUN?", "10", 10),
    ("output_state", ":OUTP?", "1", True),
    ("language", "*LANG?", "SCPI", "SCPI"),
]


@pytest.mark.parametrize(("attribute", "command", "reply", "value"), GETTERS)
def test_property_getters(attribute: str, command: str, reply: str, value: Any) -> None:
    with expected_protocol(make, [*INIT, (command, reply)]) as smu:
        assert getattr(smu, attribute) == value


def test_unreadable_getter_reply_names_the_command() -> None:
    with (
        expected_protocol(make, [*INIT, (":SOUR:VOLT:ILIM:TRIP?", "maybe")]) as smu,
        pytest.raises(InstrumentError, match=r"ILIM:TRIP\?"),
    ):
        _ = smu.current_limit_tripped


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("current_nplc", 0.001),
        ("current_nplc", 11),
        ("current_nplc", math.nan),
        ("current_range_A", 2e-3),
        ("source_voltage_range_V", 5.0),
        ("source_function", "power"),
        ("source_voltage_V", 1.5),  # beyond the 1 V safety limit
        ("current_limit_A", 0.02),  # beyond the 10 mA safety limit
        ("measure_count", 0),
    ],
)
def test_strict_validators_refuse_and_send_nothing(attribute: str, value: Any) -> None:
    with expected_protocol(make, INIT) as smu, pytest.raises(ValueError, match=attribute):
        setattr(smu, attribute, value)


def test_configure_voltage_source_sets_compliance_before_level() -> None:
    with expected_protocol(make, INIT + SOURCE_SETUP) as smu:
        smu.configure_voltage_source(0.1, 1e-3)
        assert smu.compliance_A == 1e-3
        assert smu.level_V == 0.1


def test_configure_voltage_source_with_fixed_range() -> None:
    pairs: Pairs = [
        checked(
            ":SOUR:FUNC VOLT",
            ":SOUR:VOLT:ILIM 0.005",
            ":SOUR:VOLT:RANG 2",
            ":SOUR:VOLT:READ:BACK ON",
            ":SOUR:VOLT -0.5",
        )
    ]
    with expected_protocol(make, INIT + pairs) as smu:
        smu.configure_voltage_source(-0.5, 5e-3, source_range_V=2.0)


@pytest.mark.parametrize(
    ("level_V", "compliance_A", "what"),
    [
        (1.01, 1e-3, "source voltage"),
        (-2.0, 1e-3, "source voltage"),
        (math.inf, 1e-3, "source voltage"),
        (0.1, 0.011, "current compliance"),
        (0.1, 0.0, "current compliance"),
        (0.1, -1e-3, "current compliance"),
    ],
)
def test_limits_refused_before_anything_is_sent(
    level_V: float, compliance_A: float, what: str
) -> None:
    adapter = ProtocolAdapter(INIT)
    smu = Keithley2450(adapter, LIMITS)
    with pytest.raises(InstrumentLimitError, match=what) as info:
        smu.configure_voltage_source(level_V, compliance_A)
    assert "Keithley 2450 04512345" in str(info.value)
    assert info.value.command == "configure_voltage_source"
    assert adapter.written == [command for command, _ in INIT]
    adapter.assert_done()


def test_set_voltage_limit_refused_and_nothing_sent() -> None:
    adapter = ProtocolAdapter(INIT + SOURCE_SETUP)
    smu = Keithley2450(adapter, LIMITS)
    smu.configure_voltage_source(0.1, 1e-3)
    sent = len(adapter.written)
    with pytest.raises(InstrumentLimitError, match="beyond the safety limit"):
        smu.set_voltage(1.2)
    assert len(adapter.written) == sent
    adapter.assert_done()


def test_set_voltage_traffic() -> None:
    with expected_protocol(make, INIT + SOURCE_SETUP + [checked(":SOUR:VOLT 0.2")]) as smu:
        smu.configure_voltage_source(0.1, 1e-3)
        smu.set_voltage(0.2)
        assert smu.level_V == 0.2


def test_set_voltage_before_compliance_is_refused() -> None:
    with (
        expected_protocol(make, INIT) as smu,
        pytest.raises(InstrumentError, match="configure_voltage_source"),
    ):
        smu.set_voltage(0.1)


def test_error_queue_after_configuration_raises_with_all_errors() -> None:
    pairs: Pairs = [
        checked(
            ':SENS:FUNC "CURR"',
            ":SENS:CURR:RANG 0.001",
            ":SENS:CURR:NPLC 2",
            ":SENS:CURR:RSEN ON",
            reply='-222,"Data out of range;1;2023/01/01 12:00:00.0"',
        ),
        (":SYST:ERR?", '-113,"Undefined header;1;2023/01/01 12:00:00.0"'),
        NO_ERROR,
    ]
    with (
        expected_protocol(make, INIT + pairs) as smu,
        pytest.raises(InstrumentCommandError) as info,
    ):
        smu.configure_measurement(nplc=2, current_range_A=1e-3, four_wire=True)
    error = info.value
    assert error.code == -222
    assert [code for code, _ in error.errors] == [-222, -113]
    assert ":SENS:CURR:NPLC 2" in str(error)
    assert "Keithley 2450 04512345" in str(error)


def test_enable_output_before_compliance_is_refused_and_nothing_sent() -> None:
    adapter = ProtocolAdapter(INIT)
    smu = Keithley2450(adapter, LIMITS)
    with pytest.raises(InstrumentError, match="compliance"):
        smu.enable_output()
    assert adapter.written == [command for command, _ in INIT]


def test_output_context_manager_turns_off_even_on_error() -> None:
    pairs = INIT + SOURCE_SETUP + [(":OUTP ON", None), NO_ERROR, (":OUTP OFF", None)]
    with expected_protocol(make, pairs) as smu:
        smu.configure_voltage_source(0.1, 1e-3)
        with pytest.raises(RuntimeError, match="inside"), smu.output_on():
            assert smu.output_enabled
            raise RuntimeError("inside")
        assert not smu.output_enabled


def test_measure_traffic_and_parsing() -> None:
    reply = "1.000123E-04,1.000045E-01,2.5;0;1.000000E-04"
    with expected_protocol(make, [*READY, (MEASURE, reply)]) as smu:
        ready(smu)
        reading = smu.measure()
    assert reading.current_A == pytest.approx(1.000123e-4)
    assert reading.voltage_V == pytest.approx(0.1000045)
    assert reading.timestamp_s == 2.5
    assert reading.limit_tripped is False
    assert reading.current_range_A == 1e-4
    assert reading.nplc == 1.0
    assert reading.four_wire is False
    assert reading.instrument == "2450 04512345"
    assert reading.resistance_ohm == pytest.approx(0.1000045 / 1.000123e-4)


def test_measure_reports_limit_tripped() -> None:
    reply = "1.000000E-03,3.1E-02,0.1;1;1.000000E-03"
    with expected_protocol(make, [*READY, (MEASURE, reply)]) as smu:
        ready(smu)
        assert smu.measure().limit_tripped is True


@pytest.mark.parametrize("overflow", ["9.9E37", "-9.9E37", "9.91E37"])
def test_overflow_becomes_nan_with_a_warning(overflow: str) -> None:
    reply = f"{overflow},1.0E-01,0.1;0;1.0E-06"
    with expected_protocol(make, [*READY, (MEASURE, reply)]) as smu:
        ready(smu)
        with pytest.warns(RuntimeWarning, match="Keithley 2450 04512345.*current overflowed"):
            reading = smu.measure()
    assert math.isnan(reading.current_A)
    assert reading.voltage_V == pytest.approx(0.1)


def test_measure_with_output_off_is_refused_before_sending() -> None:
    adapter = ProtocolAdapter(INIT + SOURCE_SETUP + MEASURE_SETUP)
    smu = Keithley2450(adapter, LIMITS)
    smu.configure_voltage_source(0.1, 1e-3)
    smu.configure_measurement(nplc=1)
    with pytest.raises(InstrumentError, match="output is off"):
        smu.measure()
    adapter.assert_done()


def test_measure_timeout_names_the_command() -> None:
    with expected_protocol(make, [*READY, (MEASURE, TIMEOUT)]) as smu:
        ready(smu)
        with pytest.raises(InstrumentTimeoutError) as info:
            smu.measure()
    assert info.value.command == MEASURE
    assert "Keithley 2450 04512345" in str(info.value)


@pytest.mark.parametrize(
    "reply", ["1.0E-04,1.0E-01;0;1E-4", "1.0E-04,1.0E-01,0.1;0", "a,b,c;0;1", "1,2,3;7;1"]
)
def test_malformed_reading_reply_raises(reply: str) -> None:
    with expected_protocol(make, [*READY, (MEASURE, reply)]) as smu:
        ready(smu)
        with pytest.raises(InstrumentError, match="READ"):
            smu.measure()


CONFIGURED: Pairs = INIT + SOURCE_SETUP + MEASURE_SETUP
ONCE = f":OUTP ON;{MEASURE};:OUTP OFF;:SYST:ERR?"
OK_REPLY = '1.000123E-04,1.000045E-01,2.5;0;1.000000E-04;0,"No error;0;0 0"'


def configured(smu: Keithley2450) -> None:
    smu.configure_voltage_source(0.1, 1e-3)
    smu.configure_measurement(nplc=1)


def test_measure_once_is_one_line_ending_with_the_output_off_and_the_error_queue() -> None:
    pairs: Pairs = [
        *CONFIGURED,
        (ONCE, OK_REPLY),
        (ONCE, OK_REPLY),  # same level: not sent again
        (f":SOUR:VOLT -0.1;{ONCE}", OK_REPLY.replace("1.000045E-01", "-1.000045E-01")),
        (f":SOUR:VOLT 0.1;{ONCE}", OK_REPLY),
    ]
    with expected_protocol(make, pairs) as smu:
        configured(smu)
        first = smu.measure_once()
        assert smu.measure_once(0.1).current_A == first.current_A
        assert smu.measure_once(-0.1).voltage_V == pytest.approx(-0.1000045)
        assert smu.level_V == -0.1
        reading = smu.measure_once(0.1)
        assert not smu.output_enabled
    assert reading.current_A == pytest.approx(1.000123e-4)
    assert reading.current_range_A == 1e-4
    assert reading.timestamp_s == 2.5
    assert not reading.limit_tripped


def test_measure_once_error_drains_the_queue_turns_the_output_off_and_forgets_the_level() -> None:
    error = '-221,"Settings conflict;1;2023/01/01 12:00:00.0"'
    pairs: Pairs = [
        *CONFIGURED,
        (f":SOUR:VOLT 0.2;{ONCE}", OK_REPLY.replace('0,"No error;0;0 0"', error)),
        (":SYST:ERR?", '-113,"Undefined header;1;2023/01/01 12:00:00.0"'),
        NO_ERROR,
        (":OUTP OFF", None),
        (f":SOUR:VOLT 0.2;{ONCE}", OK_REPLY),  # the level is sent again
    ]
    with expected_protocol(make, pairs) as smu:
        configured(smu)
        with pytest.raises(InstrumentCommandError) as info:
            smu.measure_once(0.2)
        assert [code for code, _ in info.value.errors] == [-221, -113]
        assert info.value.command == f":SOUR:VOLT 0.2;{ONCE}"
        assert smu.level_V is None
        assert not smu.output_enabled
        smu.measure_once(0.2)


@pytest.mark.parametrize(
    "reply",
    [
        TIMEOUT,
        "1.0E-04,1.0E-01,0.1;0;1E-4",
        '1.0E-04,1.0E-01;0;1E-4;0,"No error"',
        "x;0;1;nonsense",
    ],
)
def test_measure_once_failure_turns_the_output_off_and_names_the_line(reply: Reply) -> None:
    pairs: Pairs = [*CONFIGURED, (ONCE, reply), (":OUTP OFF", None)]
    with expected_protocol(make, pairs) as smu:
        configured(smu)
        with pytest.raises(InstrumentError) as info:
            smu.measure_once()
    assert info.value.command == ONCE
    assert "Keithley 2450 04512345" in str(info.value)


def test_measure_once_refuses_before_sending() -> None:
    adapter = ProtocolAdapter(INIT + SOURCE_SETUP)
    smu = Keithley2450(adapter, LIMITS)
    with pytest.raises(InstrumentError, match="compliance"):
        smu.measure_once()
    smu.configure_voltage_source(0.1, 1e-3)
    with pytest.raises(InstrumentError, match="configure_measurement"):
        smu.measure_once()
    with pytest.raises(InstrumentLimitError, match="safety limit"):
        smu.measure_once(1.5)
    adapter.assert_done()


def test_configure_measurement_sends_only_what_changed() -> None:
    pairs: Pairs = [
        *CONFIGURED,
        checked(":SENS:CURR:RANG 1e-06"),
        checked(":SENS:CURR:RANG:AUTO ON", ":SENS:CURR:NPLC 2"),
        checked(":SENS:CURR:RSEN ON"),
        ("*RST", None),
        ("*CLS", None),
        NO_ERROR,
        *MEASURE_SETUP,  # after a reset everything again
    ]
    with expected_protocol(make, pairs) as smu:
        configured(smu)
        smu.configure_measurement(nplc=1)  # nothing changed: nothing sent
        smu.configure_measurement(nplc=1, current_range_A=1e-6)
        smu.configure_measurement(nplc=2)
        smu.configure_measurement(nplc=2, four_wire=True)
        assert smu.four_wire_sense
        smu.reset()
        smu.configure_measurement(nplc=1)


def test_a_failed_configuration_is_sent_whole_next_time() -> None:
    pairs: Pairs = [
        *CONFIGURED,
        checked(":SENS:CURR:NPLC 2", reply='-222,"Data out of range;1;2023/01/01 12:00:00.0"'),
        NO_ERROR,
        checked(
            ':SENS:FUNC "CURR"',
            ":SENS:CURR:RANG:AUTO ON",
            ":SENS:CURR:NPLC 2",
            ":SENS:CURR:RSEN OFF",
        ),
    ]
    with expected_protocol(make, pairs) as smu:
        configured(smu)
        with pytest.raises(InstrumentCommandError):
            smu.configure_measurement(nplc=2)
        smu.configure_measurement(nplc=2)


def test_measure_many_buffered_traffic() -> None:
    fetch = ':TRAC:DATA? 1,3,"defbuffer1",READ,SOUR,REL;:SOUR:VOLT:ILIM:TRIP?;:SENS:CURR:RANG?'
    reply = "1.0E-04,0.1,0.00,1.1E-04,0.1,0.02,1.2E-04,0.1,0.04;0;1.0E-04"
    pairs: Pairs = [
        *READY,
        (":SENS:COUN 3", None),
        (':TRAC:CLE "defbuffer1"', None),
        (':TRAC:TRIG "defbuffer1"', None),
        (fetch, reply),
        (":SENS:COUN 1", None),
    ]
    with expected_protocol(make, pairs) as smu:
        ready(smu)
        readings = smu.measure_many(3)
    assert [r.current_A for r in readings] == pytest.approx([1.0e-4, 1.1e-4, 1.2e-4])
    assert [r.timestamp_s for r in readings] == pytest.approx([0.0, 0.02, 0.04])
    assert all(not r.limit_tripped for r in readings)


def test_measure_many_restores_count_when_the_fetch_fails() -> None:
    fetch = ':TRAC:DATA? 1,2,"defbuffer1",READ,SOUR,REL;:SOUR:VOLT:ILIM:TRIP?;:SENS:CURR:RANG?'
    pairs: Pairs = [
        *READY,
        (":SENS:COUN 2", None),
        (':TRAC:CLE "defbuffer1"', None),
        (':TRAC:TRIG "defbuffer1"', None),
        (fetch, TIMEOUT),
        (":SENS:COUN 1", None),
    ]
    with expected_protocol(make, pairs) as smu:
        ready(smu)
        with pytest.raises(InstrumentTimeoutError):
            smu.measure_many(2)


def test_reset_traffic() -> None:
    pairs = [*INIT, ("*RST", None), ("*CLS", None), NO_ERROR]
    with expected_protocol(make, pairs) as smu:
        smu.reset()
        assert smu.compliance_A is None


def test_shutdown_traffic() -> None:
    with expected_protocol(make, [*READY, (":SOUR:VOLT 0", None), (":OUTP OFF", None)]) as smu:
        ready(smu)
        smu.shutdown()
        assert not smu.output_enabled


class DeadAdapter(ProtocolAdapter):
    """A link that died after connecting: every write fails."""

    dead = False

    def write(self, command: str) -> None:
        if self.dead:
            raise InstrumentError("link failure", instrument=self.instrument, command=command)
        super().write(command)


def test_shutdown_never_raises_on_a_dead_link(caplog: pytest.LogCaptureFixture) -> None:
    adapter = DeadAdapter(INIT)
    smu = Keithley2450(adapter, LIMITS)
    adapter.dead = True
    smu.shutdown()  # must not raise
    assert not smu.output_enabled
    assert "shutdown step ':SOUR:VOLT 0' failed" in caplog.text
    assert "shutdown step ':OUTP OFF' failed" in caplog.text


def test_context_manager_shuts_down_and_closes() -> None:
    adapter = ProtocolAdapter([*READY, (":SOUR:VOLT 0", None), (":OUTP OFF", None)])
    with Keithley2450(adapter, LIMITS) as smu:
        ready(smu)
    assert adapter.closed
    adapter.assert_done()


def _read(current: str, volts: str, trip: str = "0", range_a: str = "1.000000E-06") -> str:
    return f"{current},{volts},2.5;{trip};{range_a}"


def test_measure_series_sends_what_configure_and_measure_once_would_in_one_line() -> None:
    """Per point the settings that changed, the level when it changed, output on, a
    reading, output off; one error query at the end: the readings in order, and the
    driver knows the level and range it left."""
    read = f":OUTP ON;{MEASURE};:OUTP OFF"
    line = ";".join(
        [
            ":SENS:CURR:RANG 1e-06",
            read,
            ":SOUR:VOLT -0.1",
            read,
            ":SENS:CURR:RANG 1e-05",
            ":SOUR:VOLT 0.1",
            read,
            ":SOUR:VOLT -0.1",
            read,
            ":SYST:ERR?",
        ]
    )
    reply = ";".join(
        [
            _read("1.0E-07", "1.0E-01"),
            _read("-1.0E-07", "-1.0E-01", trip="1"),
            _read("1.1E-07", "1.0E-01", range_a="1.000000E-05"),
            _read("-1.1E-07", "-1.0E-01", range_a="1.000000E-05"),
            NO_ERROR_REPLY,
        ]
    )
    pairs: Pairs = [*CONFIGURED, (line, reply), (f":SOUR:VOLT 0.1;{ONCE}", OK_REPLY)]
    with expected_protocol(make, pairs) as smu:
        configured(smu)
        readings = smu.measure_series(
            [
                SeriesPoint(0.1, 1e-6),
                SeriesPoint(-0.1, 1e-6),
                SeriesPoint(0.1, 1e-5),
                SeriesPoint(-0.1, 1e-5),
            ],
            nplc=1,
        )
        assert [r.current_A for r in readings] == [1e-7, -1e-7, 1.1e-7, -1.1e-7]
        assert [r.limit_tripped for r in readings] == [False, True, False, False]
        assert [r.current_range_A for r in readings] == [1e-6, 1e-6, 1e-5, 1e-5]
        assert smu.level_V == -0.1 and smu.fixed_current_range_A == 1e-5
        assert not smu.output_enabled
        smu.configure_measurement(nplc=1, current_range_A=1e-5)  # known: nothing sent
        smu.measure_once(0.1)


def test_measure_series_splits_into_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Keithley2450, "series_line_points", 2)
    read = f":OUTP ON;{MEASURE};:OUTP OFF"
    pairs: Pairs = [
        *CONFIGURED,
        (
            f"{read};{read};:SYST:ERR?",
            f"{_read('1E-7', '0.1')};{_read('2E-7', '0.1')};{NO_ERROR_REPLY}",
        ),
        (f"{read};:SYST:ERR?", f"{_read('3E-7', '0.1')};{NO_ERROR_REPLY}"),
    ]
    with expected_protocol(make, pairs) as smu:
        configured(smu)
        readings = smu.measure_series([SeriesPoint(0.1)] * 3, nplc=1)
    assert [r.current_A for r in readings] == [1e-7, 2e-7, 3e-7]


def test_measure_series_failure_turns_the_output_off_and_forgets_the_settings() -> None:
    error = '-221,"Settings conflict;1;2023/01/01 12:00:00.0"'
    read = f":OUTP ON;{MEASURE};:OUTP OFF"
    line = f":SENS:CURR:RANG 1e-06;{read};:SOUR:VOLT -0.1;{read};:SYST:ERR?"
    pairs: Pairs = [
        *CONFIGURED,
        (line, f"{_read('1E-7', '0.1')};{_read('1E-7', '-0.1')};{error}"),
        NO_ERROR,
        (":OUTP OFF", None),
        *MEASURE_SETUP,  # everything again: the settings are unknown
    ]
    with expected_protocol(make, pairs) as smu:
        configured(smu)
        with pytest.raises(InstrumentCommandError) as info:
            smu.measure_series([SeriesPoint(0.1, 1e-6), SeriesPoint(-0.1, 1e-6)], nplc=1)
        assert info.value.command == line
        assert smu.level_V is None and not smu.output_enabled
        smu.configure_measurement(nplc=1)


def test_measure_series_refuses_before_sending() -> None:
    adapter = ProtocolAdapter(INIT + SOURCE_SETUP + MEASURE_SETUP)
    smu = Keithley2450(adapter, LIMITS)
    with pytest.raises(InstrumentError, match="compliance"):
        smu.measure_series([SeriesPoint(0.1)], nplc=1)
    configured(smu)
    with pytest.raises(InstrumentLimitError, match="safety limit"):
        smu.measure_series([SeriesPoint(0.1), SeriesPoint(1.5)], nplc=1)
    adapter.assert_done()
