"""Validators, value formatting and parsing, and the declarative property machinery."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.adapters import ProtocolAdapter
from drivers.errors import InstrumentCommandError, InstrumentError
from drivers.instrument import (
    SCPIInstrument,
    control,
    format_bool,
    format_float,
    measurement,
    parse_bool,
    parse_scpi_error,
    setting,
    strict_discrete_set,
    strict_range,
)


class Meter(SCPIInstrument):
    channel = 2
    level_V = control(
        ":SOUR{ch}:VOLT?",
        ":SOUR{ch}:VOLT {value}",
        "Control the level (V; float strictly -1..1).",
        validator=strict_range,
        values=(-1.0, 1.0),
        get_process=float,
        set_process=format_float,
        check_set_errors=True,
    )
    mode = control(
        ":MODE?",
        ":MODE {value}",
        "Control the mode.",
        validator=strict_discrete_set,
        values=("fast", "slow"),
        map_values={"fast": "FAST", "slow": "SLOW"},
    )
    temperature_C = measurement(":TEMP?", "Measure the temperature (degC).", get_process=float)
    beep = setting(":BEEP {value}", "Set the beeper (bool).", set_process=format_bool)


def test_strict_range_accepts_the_closed_interval_only() -> None:
    assert strict_range(1.0, (-1.0, 1.0)) == 1.0
    for bad in (1.0000001, -2.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="not in the range"):
            strict_range(bad, (-1.0, 1.0))


def test_strict_discrete_set_lists_the_choices() -> None:
    assert strict_discrete_set(2, (1, 2)) == 2
    with pytest.raises(ValueError, match="not one of 1, 2"):
        strict_discrete_set(3, (1, 2))


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_float_round_trips_to_9_significant_digits(value: float) -> None:
    text = format_float(value)
    assert " " not in text
    assert float(text) == pytest.approx(value, rel=5e-9, abs=0.0)


@given(
    st.integers(min_value=-999, max_value=999),
    st.text(alphabet=st.characters(codec="ascii", categories=["L", "N", "P", "Zs"]), max_size=40),
)
def test_scpi_error_round_trip(code: int, message: str) -> None:
    assert parse_scpi_error(f'{code},"{message}"') == (code, message)
    assert parse_scpi_error(f'{code:+d}, "{message}"') == (code, message)


@given(st.text(max_size=20))
def test_scpi_error_parser_raises_only_value_error(text: str) -> None:
    try:
        code, _ = parse_scpi_error(text)
    except ValueError:
        return
    assert isinstance(code, int)


@pytest.mark.parametrize(
    ("reply", "value"), [("1", True), ("ON", True), ("0", False), ("off", False)]
)
def test_parse_bool(reply: str, value: bool) -> None:
    assert parse_bool(reply) is value


def test_parse_bool_refuses_other_text() -> None:
    with pytest.raises(ValueError, match="not an SCPI boolean"):
        parse_bool("2")


def test_control_formats_channel_and_checks_errors() -> None:
    adapter = ProtocolAdapter([(":SOUR2:VOLT 0.5", None), (":SYST:ERR?", '0,"No error"')])
    meter = Meter(adapter, "meter")
    meter.level_V = 0.5
    adapter.assert_done()


def test_control_set_error_raises_command_error_naming_command() -> None:
    adapter = ProtocolAdapter(
        [
            (":SOUR2:VOLT 0.5", None),
            (":SYST:ERR?", '-221,"Settings conflict"'),
            (":SYST:ERR?", '0,"No error"'),
        ]
    )
    meter = Meter(adapter, "meter")
    with pytest.raises(InstrumentCommandError) as info:
        meter.level_V = 0.5
    assert info.value.command == ":SOUR2:VOLT 0.5"
    assert info.value.errors == [(-221, "Settings conflict")]


def test_validator_error_names_instrument_property_and_command() -> None:
    adapter = ProtocolAdapter([])
    meter = Meter(adapter, "meter at X")
    with pytest.raises(
        ValueError, match=r"meter at X: level_V = 2 refused.*':SOUR2:VOLT'.*nothing sent"
    ):
        meter.level_V = 2
    adapter.assert_done()


def test_map_values_both_directions() -> None:
    adapter = ProtocolAdapter([(":MODE SLOW", None), (":MODE?", "FAST"), (":MODE?", "MEDIUM")])
    meter = Meter(adapter, "meter")
    meter.mode = "slow"
    assert meter.mode == "fast"
    with pytest.raises(InstrumentError, match="cannot interpret reply 'MEDIUM'"):
        _ = meter.mode


def test_read_only_and_write_only() -> None:
    adapter = ProtocolAdapter([(":TEMP?", "23.5"), (":BEEP OFF", None)])
    meter = Meter(adapter, "meter")
    assert meter.temperature_C == 23.5
    meter.beep = False
    with pytest.raises(AttributeError, match="read-only"):
        meter.temperature_C = 3.0
    with pytest.raises(AttributeError, match="write-only"):
        _ = meter.beep
    assert "degC" in (Meter.temperature_C.__doc__ or "")


def test_error_queue_drain_is_bounded() -> None:
    adapter = ProtocolAdapter([(":SYST:ERR?", '-350,"Queue overflow"')] * 32)
    meter = Meter(adapter, "meter")
    assert len(meter.read_errors()) == 32
    adapter.assert_done()


def test_malformed_error_reply() -> None:
    adapter = ProtocolAdapter([(":SYST:ERR?", "huh")])
    with pytest.raises(InstrumentError, match="malformed error-queue reply"):
        Meter(adapter, "meter").next_error()


def test_ask_floats_checks_count() -> None:
    adapter = ProtocolAdapter([(":X?", "1,2"), (":X?", "1,a")])
    meter = Meter(adapter, "meter")
    with pytest.raises(InstrumentError, match="expected 3"):
        meter.ask_floats(":X?", 3)
    with pytest.raises(InstrumentError, match="not a list of numbers"):
        meter.ask_floats(":X?")
