"""The generic SCPI parser: header forms, compound commands, parameters, errors, fuzzing."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.scpi import (
    Bool,
    Call,
    Channels,
    Choice,
    ErrorQueue,
    Num,
    ScpiDevice,
    ScpiError,
    Str,
    parse_number,
    split_units,
)


class _Meter(ScpiDevice):
    """A small two-channel test instrument exercising every parameter type."""

    def __init__(self) -> None:
        super().__init__("test meter")
        self.level = {1: 0.0, 2: 0.0}
        self.limit = 0.1
        self.nplc = 1.0
        self.func = "VOLTAGE"
        self.output = False
        self.label = ""
        self.resets = 0
        self.add(
            "[:SOURce#2]:VOLTage[:LEVel][:IMMediate][:AMPLitude]",
            set=self._set_level,
            query=lambda c: f"{self.level[c.suffix()]:g}",
            params=[Num(-210, 210, 0.0, "V", "level")],
        )
        self.add(
            "[:SOURce#2]:VOLTage:ILIMit[:LEVel]",
            set=self._set_limit,
            query=lambda c: f"{self.limit:g}",
            params=[Num(1e-9, 1.05, 105e-6, "A", "limit")],
        )
        self.add(
            "[:SENSe[1]]:CURRent[:DC]:NPLCycles",
            set=self._set_nplc,
            query=lambda c: f"{self.nplc:g}",
            params=[Num(0.01, 10, 1, "", "NPLC")],
        )
        self.add(
            "[:SOURce#2]:FUNCtion[:MODE]",
            set=self._set_func,
            query=lambda c: self.func[:4],
            params=[Choice("VOLTage|CURRent", name="function")],
        )
        self.add(
            ":OUTPut[:STATe]",
            set=self._set_output,
            query=lambda c: str(int(self.output)),
            params=[Bool()],
        )
        self.add(":DISPlay:TEXT", set=self._set_label, params=[Str(name="text")])
        self.add(
            ":MEASure:CURRent[:DC]",
            query=lambda c: ",".join(str(ch) for ch in (c.args[0] if c.args else (1,))),
            query_params=[Channels(2, optional=True)],
        )
        self.add(":CONFlict", set=self._conflict)

    def identity(self) -> str:
        return "ACME,METER,0,1.0"

    def reset(self) -> None:
        self.resets += 1

    def _set_level(self, call: Call) -> None:
        self.level[call.suffix()] = call.args[0]

    def _set_limit(self, call: Call) -> None:
        self.limit = call.args[0]

    def _set_nplc(self, call: Call) -> None:
        self.nplc = call.args[0]

    def _set_func(self, call: Call) -> None:
        self.func = call.args[0]

    def _set_output(self, call: Call) -> None:
        self.output = call.args[0]

    def _set_label(self, call: Call) -> None:
        self.label = call.args[0]

    def _conflict(self, call: Call) -> None:
        raise ScpiError(-221, "test conflict")


@pytest.fixture
def meter() -> _Meter:
    return _Meter()


def _errors(device: ScpiDevice) -> list[int]:
    codes: list[int] = []
    while True:
        reply = device.handle_line(":SYST:ERR?")
        assert reply is not None
        code = int(reply.split(",", 1)[0])
        if code == 0:
            return codes
        codes.append(code)


# ---------------------------------------------------------------- header forms


@pytest.mark.parametrize(
    "line",
    [
        ":SOURce:VOLTage:LEVel:IMMediate:AMPLitude 1.5",
        ":SOUR:VOLT 1.5",
        "SOUR:VOLT 1.5",
        ":sour:volt:lev 1.5",
        ":VOLT 1.5",
        ":voltage:amplitude 1.5",
        ":SOUR1:VOLT:LEV:IMM 1.5",
        "  :SOUR:VOLT   1.5  ",
        ":SOUR:VOLT 1500mV",
        ":SOUR:VOLT 1.5V",
        ":SOUR:VOLT +1.5E0",
    ],
)
def test_header_and_number_forms_set_the_same_value(meter: _Meter, line: str) -> None:
    assert meter.handle_line(line) is None
    assert meter.level[1] == pytest.approx(1.5)
    assert _errors(meter) == []


def test_suffix_selects_channel_and_short_long_forms_mix(meter: _Meter) -> None:
    meter.handle_line(":SOURce2:VOLT 3;:sour1:voltage 2")
    assert meter.level == {1: 2.0, 2: 3.0}
    assert meter.handle_line(":SOUR2:VOLT?") == "3"
    assert meter.handle_line(":SENSe1:CURRent:DC:NPLCycles 0.1;:CURR:NPLC?") == "0.1"


def test_abbreviations_other_than_short_and_long_are_undefined(meter: _Meter) -> None:
    meter.handle_line(":SOURC:VOLT 1")  # neither SOUR nor SOURCE
    meter.handle_line(":SOUR:VOLTA 1")
    assert _errors(meter) == [-113, -113]


def test_suffix_out_of_range_and_suffix_where_none_allowed(meter: _Meter) -> None:
    meter.handle_line(":SOUR3:VOLT 1")
    meter.handle_line(":SENS2:CURR:NPLC 1")  # [:SENSe[1]]: only 1 is allowed
    meter.handle_line(":OUTP2 ON")  # OUTPut takes no suffix at all
    assert _errors(meter) == [-114, -114, -113]


# ---------------------------------------------------------------- compound + path rule


def test_compound_queries_join_replies_with_semicolons(meter: _Meter) -> None:
    reply = meter.handle_line("*IDN?;:SOUR:VOLT 2;:SOUR:VOLT?;:OUTP ON;:OUTP?")
    assert reply == "ACME,METER,0,1.0;2;1"


def test_path_rule_relative_header_after_semicolon(meter: _Meter) -> None:
    # After :SOUR2:VOLT the current node is SOUR2, so "VOLT:ILIM" is SOUR2:VOLT:ILIM.
    meter.handle_line(":SOUR2:VOLT 1;VOLT:ILIM 0.01")
    assert meter.limit == pytest.approx(0.01)
    assert meter.level[2] == 1.0
    # After :SOUR:VOLT:ILIM, "LEV" is relative to SOUR:VOLT:ILIM's parent: SOUR:VOLT:ILIM:LEV.
    meter.handle_line(":SOUR:VOLT:ILIM 0.02;ILIM:LEV 0.03")
    assert meter.limit == pytest.approx(0.03)
    # A common command does not change the path.
    meter.handle_line(":SOUR2:VOLT 4;*CLS;VOLT 5")
    assert meter.level[2] == 5.0
    # A leading colon resets to the root.
    meter.handle_line(":SOUR2:VOLT 6;:VOLT 7")
    assert meter.level == {1: 7.0, 2: 6.0}
    assert _errors(meter) == []


def test_trailing_semicolon_and_colon_before_common_command(meter: _Meter) -> None:
    # PyMeasure's 2450 reset sends "*RST;:stat:pres;:*CLS;" - accepted by the instrument.
    assert meter.handle_line("*RST;:SOUR:VOLT 2;:*CLS;") is None
    assert meter.resets == 1
    assert meter.level[1] == 2.0
    assert _errors(meter) == []


def test_relative_header_that_does_not_exist_at_the_path(meter: _Meter) -> None:
    meter.handle_line(":SOUR:VOLT 1;NPLC 1")  # SOUR:NPLC does not exist
    assert _errors(meter) == [-113]


def test_command_error_discards_rest_of_line_execution_error_does_not(meter: _Meter) -> None:
    assert meter.handle_line(":SOUR:VOLT 1;:BOGUS;:SOUR:VOLT 2;*IDN?") is None
    assert meter.level[1] == 1.0
    assert meter.handle_line(":SOUR:VOLT 3;:CONF;:SOUR:VOLT 4;*IDN?") == "ACME,METER,0,1.0"
    assert meter.level[1] == 4.0
    assert _errors(meter) == [-113, -221]


def test_split_units_respects_quotes_and_parentheses() -> None:
    assert split_units(':DISP:TEXT "a;b";:MEAS:CURR? (@1,2)') == [
        ':DISP:TEXT "a;b"',
        ":MEAS:CURR? (@1,2)",
    ]


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("text", "unit", "value"),
    [
        ("10mA", "A", 10e-3),
        ("10 MA", "A", 10e-3),  # with a unit, M is milli (IEEE 488.2)
        ("1MAV", "V", 1e6),  # MA is mega as a multiplier
        ("2.2kOHM", "OHM", 2.2e3),
        ("1MOHM", "OHM", 1e6),  # MOHM is mega-ohm
        ("5uV", "V", 5e-6),
        ("100n", "A", 100e-9),
        ("-.5", "", -0.5),
        ("1e-3", "", 1e-3),
        ("#H1F", "", 31.0),
        ("#B101", "", 5.0),
    ],
)
def test_parse_number_suffixes(text: str, unit: str, value: float) -> None:
    assert parse_number(text, unit) == pytest.approx(value)


@given(st.floats(min_value=-1e30, max_value=1e30, allow_nan=False, allow_infinity=False))
def test_parse_number_round_trips_nr3(x: float) -> None:
    assert parse_number(f"{x:.15E}") == pytest.approx(x, rel=1e-14, abs=1e-300)
    assert parse_number(repr(x)) == x


def test_min_max_def_and_updown(meter: _Meter) -> None:
    meter.handle_line(":SOUR:VOLT:ILIM MAX")
    assert meter.limit == 1.05
    meter.handle_line(":SOUR:VOLT:ILIM minimum")
    assert meter.limit == 1e-9
    meter.handle_line(":SOUR:VOLT:ILIM DEF")
    assert meter.limit == 105e-6
    meter.handle_line(":SOUR:VOLT:ILIM UP")  # not a ranged parameter
    assert _errors(meter) == [-224]


def test_booleans_and_character_data(meter: _Meter) -> None:
    for text, state in (("ON", True), ("0", False), ("1", True), ("off", False), ("2", True)):
        meter.handle_line(f":OUTP {text}")
        assert meter.output is state
    meter.handle_line(":FUNC curr")
    assert meter.func == "CURRENT"
    meter.handle_line(":FUNC RES")
    meter.handle_line(":FUNC 3")
    meter.handle_line(":OUTP MAYBE")
    assert _errors(meter) == [-224, -104, -104]


def test_quoted_strings_with_doubled_quotes(meter: _Meter) -> None:
    meter.handle_line(':DISP:TEXT "say ""hi"""')
    assert meter.label == 'say "hi"'
    meter.handle_line(":DISP:TEXT 'it''s'")
    assert meter.label == "it's"
    meter.handle_line(":DISP:TEXT bare")
    assert _errors(meter) == [-104]


def test_channel_lists(meter: _Meter) -> None:
    assert meter.handle_line(":MEAS:CURR? (@1,2)") == "1,2"
    assert meter.handle_line(":MEAS:CURR? (@2:1)") == "2,1"
    assert meter.handle_line(":MEAS:CURR?") == "1"
    assert meter.handle_line(":MEAS:CURR? (@3)") is None
    assert meter.handle_line(":MEAS:CURR? (@1,,2)") is None
    assert _errors(meter) == [-222, -102]


# ---------------------------------------------------------------- every error number

ERROR_CASES = [
    (-100, "*IDN"),  # query-only command sent as a set command
    (-100, ":DISP:TEXT?"),  # set-only command queried
    (-101, ":SOUR:VOLT 1\x07"),
    (-101, ":SOUR:VOLT 1\xe9"),
    (-101, ":SOUR$:VOLT 1"),
    (-102, ':DISP:TEXT "open'),
    (-102, ":SOUR::VOLT 1"),
    (-102, ":SOUR:VOLT 1;;*IDN?"),
    (-102, ":MEAS:CURR? (@1"),
    (-104, ":SOUR:VOLT one"),
    (-104, ':SOUR:VOLT "1"'),
    (-108, ":SOUR:VOLT 1,2"),
    (-108, "*CLS 1"),
    (-109, ":SOUR:VOLT"),
    (-113, ":NOSUCH:CMD 1"),
    (-113, "*XYZ"),
    (-114, ":SOUR9:VOLT 1"),
    (-131, ":SOUR:VOLT 1 furlong"),
    (-221, ":CONF"),
    (-222, ":SOUR:VOLT 211"),
    (-222, ":SENS:CURR:NPLC 0.001"),
    (-224, ":FUNC POWER"),
]


@pytest.mark.parametrize(("code", "line"), ERROR_CASES)
def test_error_numbers(meter: _Meter, code: int, line: str) -> None:
    assert meter.handle_line(line) is None
    assert _errors(meter) == [code]
    # The device stays usable.
    assert meter.handle_line("*IDN?") == "ACME,METER,0,1.0"


def test_error_reply_format_and_count(meter: _Meter) -> None:
    meter.handle_line(":SOUR:VOLT 300")
    meter.handle_line(":NOPE")
    assert meter.handle_line(":SYST:ERR:COUN?") == "2"
    first = meter.handle_line(":SYST:ERR:NEXT?")
    assert first is not None
    assert first.startswith('-222,"Data out of range;')
    assert "300" in first  # the detail names the value
    assert meter.handle_line(":SYST:ERR?") == '-113,"Undefined header;header :NOPE"'
    assert meter.handle_line(":SYST:ERR?") == '0,"No error"'


def test_queue_overflow_replaces_the_newest_entry(meter: _Meter) -> None:
    for _ in range(meter.ERROR_QUEUE_CAPACITY + 5):
        meter.handle_line(":NOPE")
    codes = _errors(meter)
    assert len(codes) == meter.ERROR_QUEUE_CAPACITY
    assert codes[:-1] == [-113] * (meter.ERROR_QUEUE_CAPACITY - 1)
    assert codes[-1] == -350


def test_error_queue_unit() -> None:
    queue = ErrorQueue(3)
    for code in (-1, -2, -3, -4):
        queue.push(code, "x")
    assert queue.codes() == [-1, -2, -350]
    assert queue.pop() == (-1, "x")
    queue.push(-5, "y")
    assert queue.codes() == [-2, -350, -5]
    with pytest.raises(ValueError, match="capacity"):
        ErrorQueue(1)


def test_input_buffer_overrun_for_an_over_long_line(meter: _Meter) -> None:
    line = ":SOUR:VOLT 1;" * 400  # 5200 bytes > MAX_LINE_BYTES
    assert meter.handle_line(line) is None
    assert meter.level[1] == 0.0  # nothing of the line executed
    assert meter.line_too_long(10_000) is None
    assert _errors(meter) == [-363, -363]


def test_query_interrupted_and_unterminated(meter: _Meter) -> None:
    meter.query_interrupted()
    meter.query_unterminated(":MEAS:CU")
    assert _errors(meter) == [-410, -420]


# ---------------------------------------------------------------- status registers


def test_esr_bits_and_status_byte(meter: _Meter) -> None:
    assert meter.handle_line("*ESR?") == "0"
    meter.handle_line(":NOPE")  # command error -> CME (32)
    meter.handle_line(":SOUR:VOLT 999")  # execution error -> EXE (16)
    assert meter.handle_line("*STB?") == "4"  # EAV: errors queued
    meter.handle_line("*ESE 48")
    assert meter.handle_line("*STB?") == "36"  # EAV + ESB
    meter.handle_line("*SRE 32")
    assert meter.handle_line("*STB?") == "100"  # + MSS
    assert meter.handle_line("*ESR?") == "48"
    assert meter.handle_line("*ESR?") == "0"  # reading clears it
    meter.handle_line("*OPC")
    assert meter.handle_line("*ESR?") == "1"
    assert meter.handle_line("*OPC?") == "1"
    meter.handle_line("*CLS")
    assert meter.handle_line("*STB?") == "0"
    meter.handle_line("*RST;*WAI")
    assert meter.resets == 1


# ---------------------------------------------------------------- fuzzing

_SCPI_ALPHABET = st.sampled_from(
    list(":;*?,()@\"' \t+-.#")
    + list("SOURVLTAGEMNPCIDF0123456789")
    + ["SOUR", "VOLT", "ILIM", "NPLC", "OUTP", "MEAS", "CURR", "ON", "OFF", "MAX", "(@1,2)"]
)


@given(st.text(max_size=200))
def test_fuzz_arbitrary_text_never_raises(line: str) -> None:
    meter = _Meter()
    reply = meter.handle_line(line)
    assert reply is None or isinstance(reply, str)
    assert meter.handle_line("*IDN?") == "ACME,METER,0,1.0"
    # Every queued error is a well-formed reply line.
    for _ in range(len(meter.errors)):
        entry = meter.handle_line(":SYST:ERR?")
        assert entry is not None
        code, _, message = entry.partition(",")
        assert int(code) < 0
        assert message.startswith('"')
        assert message.endswith('"')
        assert all(32 <= ord(ch) < 127 for ch in message)


@given(st.binary(max_size=300))
def test_fuzz_bytes_as_latin1_never_raise(data: bytes) -> None:
    meter = _Meter()
    line = data.decode("latin-1")
    meter.handle_line(line)
    if any(ord(ch) > 126 or (ord(ch) < 32 and ch not in "\t\r\n") for ch in line):
        # Bytes that are not printable ASCII are always reported, never silently ignored.
        assert len(meter.errors) > 0
    assert meter.handle_line("*IDN?;:SOUR:VOLT 1;:SOUR:VOLT?") == "ACME,METER,0,1.0;1"


def _query_units(line: str) -> int | None:
    """Number of query message units in ``line`` (None when it does not even split)."""
    try:
        units = split_units(line)
    except ScpiError:
        return None
    return sum(1 for u in units if u.strip() and u.split(maxsplit=1)[0].endswith("?"))


@given(
    st.lists(
        st.sampled_from(
            [
                "*IDN?",
                ":SOUR:VOLT?",
                "VOLT?",
                ":SOUR2:VOLT 3",
                ":NOPE?",
                ":SOUR:VOLT 999",
                ":MEAS:CURR? (@1,2)",
                ":MEAS:CURR? (@5)",
                ":OUTP?",
                "ILIM?",
                ":CONF",
                '"x"',
                "",
                ":SENS:CURR:NPLC?",
                "*ESR?",
                ":SOUR:VOLT:ILIM 2",
            ]
        ),
        min_size=1,
        max_size=6,
    ).map(";".join)
)
def test_fuzz_every_query_answers_or_queues_an_error(line: str) -> None:
    """No silent drop: with no error queued, each query unit produced one reply part."""
    meter = _Meter()
    reply = meter.handle_line(line)
    n_queries = _query_units(line)
    parts = [] if reply is None else reply.split(";")
    if len(meter.errors) == 0:
        assert n_queries == len(parts)
    else:
        assert len(parts) <= (n_queries or 0)


@given(st.lists(_SCPI_ALPHABET, max_size=30).map("".join))
def test_fuzz_scpi_like_text_gives_reply_or_error(line: str) -> None:
    meter = _Meter()
    before = len(meter.errors)
    reply = meter.handle_line(line)
    queries = line.count("?")
    if reply is None and queries and "*IDN?" in line and ";" not in line:
        # A lone query that produced nothing must have queued an error.
        assert len(meter.errors) > before
    assert meter.handle_line(":SYST:ERR:COUN?") is not None
    assert meter.handle_line("*IDN?") == "ACME,METER,0,1.0"


@given(
    st.sampled_from(["SOURce", "SOUR", "source", "sour"]),
    st.sampled_from(["", "1", "2"]),
    st.sampled_from(["VOLTage", "VOLT", "volt"]),
    st.sampled_from(["", ":LEV", ":LEVel", ":LEV:IMM", ":LEVEL:IMMEDIATE:AMPL"]),
    st.floats(min_value=-210, max_value=210, allow_nan=False),
)
def test_every_header_form_reaches_the_same_command(
    src: str, suffix: str, volt: str, tail: str, value: float
) -> None:
    meter = _Meter()
    meter.handle_line(f":{src}{suffix}:{volt}{tail} {value!r}")
    channel = int(suffix) if suffix else 1
    assert meter.level[channel] == value
    assert _errors(meter) == []


def test_num_rejects_nan_text_and_bool_rejects_strings() -> None:
    with pytest.raises(ScpiError) as info:
        Num(0, 1).convert("nan")
    assert info.value.code == -104
    with pytest.raises(ScpiError) as info:
        Bool().convert('"ON"')
    assert info.value.code == -104
    assert math.isinf(Num().hi)
