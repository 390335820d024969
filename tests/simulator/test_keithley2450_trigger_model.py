"""The 2450 emulator as scripts use it: sweeps, trigger model, buffers, filter and status.

Each test drives the emulator object directly with the command sequences of the reference
manual (2450-901-01): the sweep commands of section 6 ("SOURce subsystem"), the trigger
model of section 3 ("Trigger model": building blocks, predefined models, ``:TRIG:STAT?``),
the TRACe subsystem and the averaging filter. Numbers come from the physics model: a 1 kohm
resistor reads I = V / R within the datasheet accuracy; times are exact sums of the time
model (delays + conversions).
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator.clock import VirtualClock
from simulator.keithley2450_emulator import AUTO_SOURCE_DELAY_S, Keithley2450Emulator
from simulator.port_model import PortModel
from simulator.smu_physics import measurement_time_s

R_OHM = 1000.0
RESISTOR = PortModel(g_S=1 / R_OHM)


def _smu(seed: int = 3) -> Keithley2450Emulator:
    return Keithley2450Emulator(lambda: RESISTOR, VirtualClock(), seed)


def _run(smu: Keithley2450Emulator, script: str) -> list[str]:
    """Send each line; collect replies; fail on any queued error."""
    replies = []
    for line in script.strip().splitlines():
        reply = smu.handle_line(line.strip())
        if reply is not None:
            replies.append(reply)
    assert smu.handle_line(":SYST:ERR?") == '0,"No error"'
    return replies


def _errors(smu: Keithley2450Emulator) -> list[str]:
    out = []
    while (reply := smu.handle_line(":SYST:ERR?")) != '0,"No error"':
        assert reply is not None
        out.append(reply)
    return out


def _floats(reply: str) -> list[float]:
    return [float(x) for x in reply.split(",")]


# ---------------------------------------------------------------- sweeps


def test_sweep_clears_the_buffer_of_earlier_readings_and_turns_the_output_off() -> None:
    # Finding: readings made before a sweep stayed in defbuffer1, mixed with the sweep's.
    smu = _smu()
    replies = _run(
        smu,
        """
        *RST
        :SOUR:VOLT:ILIM 0.01
        :SOUR:VOLT 0.05
        :OUTP ON
        :READ?
        :READ?
        :READ?
        :SOUR:SWE:VOLT:LIN 0.2, 1.0, 5, 0.001
        :INIT
        *WAI
        :TRAC:ACT?
        :TRAC:DATA? 1, 5, "defbuffer1", SOUR, READ
        :OUTP?
        """,
    )
    assert replies[3] == "5"
    data = _floats(replies[4])
    assert [round(s, 3) for s in data[0::2]] == [0.2, 0.4, 0.6, 0.8, 1.0]
    for source, reading in zip(data[0::2], data[1::2], strict=True):
        assert reading == pytest.approx(source / R_OHM, rel=2e-3)
    # The sweep's model ends with SOURCE_OUTPUT OFF.
    assert replies[5] == "0"


def test_sweep_auto_delay_and_default_count_are_accepted_and_timed() -> None:
    # Finding: delay -1 (auto, the manual's default) was refused as out of range.
    smu = _smu()
    _run(smu, "*RST\n:SOUR:VOLT:ILIM 0.01\n:SENS:CURR:RANG 1e-3\n:SENS:CURR:NPLC 1")
    smu.handle_line(":SOUR:SWE:VOLT:LIN 0, 1, 3, -1")
    assert _errors(smu) == []
    t0 = smu.clock.now_s
    _run(smu, ":INIT\n*WAI")
    per_point = AUTO_SOURCE_DELAY_S + measurement_time_s(1.0, 50.0, autozero=True)
    assert smu.clock.now_s - t0 == pytest.approx(3 * per_point, rel=1e-9)


def test_refused_sweep_never_reruns_the_previous_one() -> None:
    # Finding: the second sweep (count 0 or delay -1) was refused and :INIT re-ran the first.
    smu = _smu()
    _run(smu, "*RST\n:SOUR:VOLT:ILIM 0.01\n:SOUR:SWE:VOLT:LIN 0, 1, 3, 0.001")
    replies = _run(
        smu,
        """
        :SOUR:SWE:VOLT:LIN 0, 0.5, 6, -1, 1, AUTO, OFF, OFF, "defbuffer1"
        :INIT
        *WAI
        :TRAC:ACT?
        :TRAC:DATA? 1, 6, "defbuffer1", SOUR
        """,
    )
    assert replies[0] == "6"
    assert [round(x, 3) for x in _floats(replies[1])] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]


def test_infinite_sweep_runs_until_abort() -> None:
    smu = _smu()
    _run(smu, "*RST\n:SOUR:VOLT:ILIM 0.01\n:SENS:CURR:NPLC 0.01\n:SOUR:SWE:VOLT:LIN 0, 1, 4, 0, 0")
    smu.handle_line(":INIT")
    state = smu.handle_line(":TRIG:STAT?")
    assert state is not None and state.startswith("RUNNING;RUNNING;")
    # *OPC? would wait forever on the instrument: refused, no reply, the model keeps running.
    assert smu.handle_line("*OPC?") is None
    assert [e.split(",")[0] for e in _errors(smu)] == ["-200"]
    for _ in range(20):
        smu.handle_line(":TRAC:ACT?")
    smu.handle_line(":ABOR")
    assert (
        smu.handle_line(
            ":TRIG:STAT?",
        ).split(";")[0]
        == "ABORTED"
    )  # type: ignore[union-attr]
    n = int(smu.handle_line(":TRAC:ACT?") or 0)
    assert n > 4  # more than one pass of the 4-point sweep
    levels = _floats(smu.handle_line(f':TRAC:DATA? 1, {n}, "defbuffer1", SOUR') or "")
    expected = [0.0, 1 / 3, 2 / 3, 1.0]
    assert levels == pytest.approx([expected[k % 4] for k in range(n)], abs=1e-3)


@pytest.mark.parametrize(
    ("command", "levels"),
    [
        (":SOUR:SWE:VOLT:LIN:STEP 0, 1, 0.25, 0", [0.0, 0.25, 0.5, 0.75, 1.0]),
        (":SOUR:SWE:VOLT:LIN:STEP 1, 0.5, 0.25, 0", [1.0, 0.75, 0.5]),
        (":SOUR:SWE:VOLT:LOG 0.001, 1, 4, 0", [0.001, 0.01, 0.1, 1.0]),
        (":SOUR:SWE:VOLT:LIN 0, 1, 3, 0, 1, BEST, ON, ON", [0.0, 0.5, 1.0, 1.0, 0.5, 0.0]),
    ],
)
def test_sweep_kinds_source_the_manual_levels(command: str, levels: list[float]) -> None:
    smu = _smu()
    n = len(levels)
    replies = _run(
        smu,
        f"""
        *RST
        :SOUR:VOLT:ILIM 0.01
        {command}
        :INIT
        *WAI
        :TRAC:DATA? 1, {n}, "defbuffer1", SOUR, READ
        """,
    )
    data = _floats(replies[0])
    assert data[0::2] == pytest.approx(levels, rel=1e-3, abs=5e-4)
    for source, reading in zip(data[0::2], data[1::2], strict=True):
        # Meter offsets: 200 uV on the 200 mV range over 1 kohm, plus the current offset.
        assert reading == pytest.approx(source / R_OHM, rel=2e-3, abs=3e-7)


def test_list_sweep_from_the_source_list() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        *RST
        :SOUR:VOLT:ILIM 0.01
        :SOUR:LIST:VOLT 0.1, 0.3, 0.2
        :SOUR:LIST:VOLT:APP 0.4
        :SOUR:LIST:VOLT:POIN?
        :SOUR:LIST:VOLT?
        :SOUR:SWE:VOLT:LIST 2, 0.01
        :INIT
        *WAI
        :TRAC:ACT?
        :TRAC:DATA? 1, 3, "defbuffer1", SOUR
        """,
    )
    assert replies[0] == "4"
    assert _floats(replies[1]) == pytest.approx([0.1, 0.3, 0.2, 0.4])
    assert replies[2] == "3"
    assert _floats(replies[3]) == pytest.approx([0.3, 0.2, 0.4], rel=1e-3)


def test_sweep_fixed_range_beyond_the_range_is_refused() -> None:
    smu = _smu()
    _run(smu, "*RST\n:SOUR:VOLT:ILIM 0.01\n:SOUR:VOLT:RANG 2")
    smu.handle_line(":SOUR:SWE:VOLT:LIN 0, 5, 3, 0, 1, FIXED")
    assert [e.split(",")[0] for e in _errors(smu)] == ["-221"]


# ---------------------------------------------------------------- trigger model


def test_trigger_state_and_block_list_of_a_sweep() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        *RST
        :SOUR:VOLT:ILIM 0.01
        :TRIG:STAT?
        :SOUR:SWE:VOLT:LIN 0, 1, 11, 0.01
        :TRIG:BLOC:LIST?
        :INIT
        *WAI
        :TRIG:STAT?
        """,
    )
    assert replies[0] == "EMPTY;EMPTY;0"
    listing = replies[1].split(";")
    assert [b.split()[1] for b in listing] == [
        "BUFFER_CLEAR",
        "CONFIG_RECALL",
        "SOURCE_OUTPUT",
        "DELAY_DYNAMIC",
        "MEASURE",
        "CONFIG_NEXT",
        "BRANCH_COUNTER",
        "BRANCH_COUNTER",
        "SOURCE_OUTPUT",
    ]
    assert replies[2] == "IDLE;IDLE;9"


def test_blocks_built_one_by_one_run_as_a_flow_chart() -> None:
    # A model from building blocks: clear, output on, 2 readings, a 10 ms delay, branch
    # back 3 times, output off: 6 readings, exactly 3 delays plus 6 conversions.
    smu = _smu()
    _run(
        smu,
        """
        *RST
        :SOUR:VOLT:ILIM 0.01
        :SENS:CURR:RANG 1e-3
        :SOUR:VOLT:DEL 0
        :SOUR:VOLT 0.5
        :TRIG:BLOC:BUFF:CLE 1, "defbuffer1"
        :TRIG:BLOC:SOUR:STAT 2, ON
        :TRIG:BLOC:MEAS 3, "defbuffer1", 2
        :TRIG:BLOC:DEL:CONS 4, 0.01
        :TRIG:BLOC:BRAN:COUN 5, 3, 3
        :TRIG:BLOC:SOUR:STAT 6, OFF
        """,
    )
    t0 = smu.clock.now_s
    replies = _run(smu, ":INIT\n*WAI\n:TRAC:ACT?\n:OUTP?\n:TRAC:STAT:AVER?")
    assert replies[:2] == ["6", "0"]
    assert float(replies[2]) == pytest.approx(0.5 / R_OHM, rel=2e-3)
    assert smu.clock.now_s - t0 == pytest.approx(
        3 * 0.01 + 6 * measurement_time_s(1.0, 50.0, autozero=True), rel=1e-9
    )


def test_wait_block_is_released_by_a_bus_trigger() -> None:
    smu = _smu()
    _run(
        smu,
        """
        *RST
        :SOUR:VOLT:ILIM 0.01
        :OUTP ON
        :TRIG:BLOC:BUFF:CLE 1
        :TRIG:BLOC:WAIT 2, COMMAND
        :TRIG:BLOC:MEAS 3
        :TRIG:BLOC:BRAN:COUN 4, 2, 2
        :INIT
        """,
    )
    smu.handle_line(":TRAC:ACT?")
    assert smu.handle_line(":TRIG:STAT?") == "WAITING;WAITING;2"
    assert smu.handle_line(":TRAC:ACT?") == "0"
    smu.handle_line("*TRG")
    smu.handle_line(":TRAC:ACT?")
    assert smu.handle_line(":TRAC:ACT?") == "1"
    smu.handle_line("*TRG")
    assert _run(smu, "*WAI\n:TRAC:ACT?\n:TRIG:STAT?") == ["2", "IDLE;IDLE;4"]


def test_simple_loop_and_duration_loop() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        *RST
        :SOUR:VOLT:ILIM 0.01
        :OUTP ON
        :TRAC:MAKE "loop", 100,
        :TRIG:LOAD "SimpleLoop", 5, 0.01, "loop"
        :INIT
        *WAI
        :TRAC:ACT? "loop"
        """,
    )
    assert replies == ["5"]
    _run(smu, ':SENS:CURR:NPLC 1\n:SOUR:VOLT:DEL 0\n:TRIG:LOAD "DurationLoop", 0.5, 0, "loop"')
    _run(smu, ':TRAC:CLE "loop"\n:OUTP OFF\n:INIT\n*WAI')
    per_reading = measurement_time_s(1.0, 50.0, autozero=True)
    # Readings start until 0.5 s have elapsed; the output was turned on by the model.
    n = int(smu.handle_line(':TRAC:ACT? "loop"') or 0)
    assert n == int(np.ceil(0.5 / per_reading))
    assert smu.handle_line(":OUTP?") == "1"


def test_user_delays_and_dynamic_delay_block() -> None:
    smu = _smu()
    _run(
        smu,
        """
        *RST
        :SOUR:VOLT:ILIM 0.01
        :OUTP ON
        :SOUR:VOLT:DEL 0
        :SENS:CURR:RANG 1e-3
        :SENS:CURR:DEL:USER2 0.25
        :SOUR:VOLT:DEL:USER1 0.125
        :SENS:CURR:DEL:USER2?
        :TRIG:BLOC:DEL:DYN 1, M2
        :TRIG:BLOC:DEL:DYN 2, S1
        :TRIG:BLOC:MEAS 3
        """,
    )
    t0 = smu.clock.now_s
    _run(smu, ":INIT\n*WAI")
    assert smu.clock.now_s - t0 == pytest.approx(
        0.375 + measurement_time_s(1.0, 50.0, autozero=True), rel=1e-9
    )


def test_measuring_while_a_model_runs_is_refused() -> None:
    smu = _smu()
    _run(smu, "*RST\n:SOUR:VOLT:ILIM 0.01\n:SOUR:SWE:VOLT:LIN 0, 1, 3, 1, 0")
    smu.handle_line(":INIT")
    assert smu.handle_line(":READ?") is None
    smu.handle_line(":ABOR")
    assert [e.split(",")[0] for e in _errors(smu)] == ["-221"]


def test_unemulated_models_and_blocks_say_so() -> None:
    smu = _smu()
    smu.handle_line(':TRIG:LOAD "LoopUntilEvent", 1')
    smu.handle_line(":TRIG:BLOC:BRAN:LIM:CONS 1, IN, 0, 1, 2")
    smu.handle_line(":TRIG:BLOC:WAIT 1, DIGIO1")
    smu.handle_line(":STAT:OPER:MAP 0, 4917, 4918")
    errors = _errors(smu)
    assert [e.split(",")[0] for e in errors] == ["-224", "-113", "-224", "-113"]
    assert all("not emulated" in e for e in errors)


# ---------------------------------------------------------------- buffers and formats


def test_trac_make_accepts_an_empty_style_argument() -> None:
    # Finding: :TRAC:MAKE "name", 100,  (QCoDeS sends an empty style) was a syntax error.
    smu = _smu()
    replies = _run(smu, ':TRAC:MAKE "buf", 100, \n:TRAC:POIN? "buf"')
    assert replies == ["100"]


def test_trace_statistics_peak_to_peak_and_clear() -> None:
    smu = _smu()
    _run(smu, "*RST\n:SOUR:VOLT:ILIM 0.01\n:OUTP ON")
    readings = []
    for level in (0.1, 0.3, 0.2):
        smu.handle_line(f":SOUR:VOLT {level}")
        readings.append(float(smu.handle_line(":READ?") or "nan"))
    replies = _run(smu, ":TRAC:STAT:PK2P?\n:TRAC:STAT:CLE\n:TRAC:STAT:AVER?\n:TRAC:ACT?")
    assert float(replies[0]) == pytest.approx(max(readings) - min(readings), rel=1e-6)
    assert float(replies[1]) == pytest.approx(9.91e37)  # no statistics since the clear
    assert replies[2] == "3"  # the readings themselves are kept
    smu.handle_line(":READ?")
    assert float(smu.handle_line(":TRAC:STAT:AVER?") or "nan") == pytest.approx(
        0.2 / R_OHM, rel=2e-3
    )


def test_time_timestamp_and_formatted_elements_follow_the_manual() -> None:
    # Finding: TIME had fractional seconds and FORM did not look like the front panel.
    smu = _smu()
    smu.clock.advance(3723.25)
    _run(
        smu,
        "*RST\n:SENS:FUNC 'VOLT'\n:SENS:VOLT:RANG 0.02\n:SOUR:FUNC CURR\n:OUTP ON",
    )
    smu.handle_line(":SOUR:CURR 2e-9")  # 2 uV across 1 kohm
    reply = smu.handle_line(':MEAS:VOLT? "defbuffer1", FORM, TIME, TSTAMP, DATE, READ')
    assert reply is not None
    form, time_, tstamp, date, reading = reply.split(",")
    assert time_ == "01:02:03"
    assert tstamp.startswith("01/01/2026 01:02:03.") and len(tstamp.split(".")[1]) == 9
    assert date == "01/01/2026"
    # 20 mV range: two integer digits and four decimals in mV, like "-00.0024 mV".
    assert form.endswith(" mV") and len(form.split()[0]) == len("-00.0024")
    assert float(form.split()[0]) * 1e-3 == pytest.approx(float(reading), abs=1e-7)


def test_ascii_precision() -> None:
    smu = _smu()
    _run(smu, "*RST\n:SOUR:VOLT:ILIM 0.01\n:OUTP ON\n:SOUR:VOLT 0.1")
    assert _run(smu, ":FORM:ASC:PREC?") == ["0"]
    _run(smu, ":FORM:ASC:PREC 3")
    reply = smu.handle_line(":READ?")
    assert reply is not None and len(reply.split("E")[0].lstrip("+-")) == 4  # d.dd
    _run(smu, ":FORM:ASC:PREC DEF")
    assert len((smu.handle_line(":READ?") or "").split("E")[0].lstrip("+-")) == 8


# ---------------------------------------------------------------- filter, status, display


def test_repeating_filter_averages_count_conversions() -> None:
    # Noise shrinks by sqrt(count) and a reading takes count conversions (time model).
    def spread(filter_on: bool) -> tuple[float, float]:
        smu = _smu(seed=11)
        _run(
            smu,
            "*RST\n:SOUR:VOLT:ILIM 0.01\n:SENS:CURR:RANG 1e-3\n:SENS:CURR:NPLC 0.01\n:OUTP ON",
        )
        _run(smu, ":SOUR:VOLT 0.5")
        if filter_on:
            _run(smu, ":SENS:CURR:AVER:TCON REP\n:SENS:CURR:AVER:COUN 16\n:SENS:CURR:AVER ON")
        t0 = smu.clock.now_s
        values = [float(smu.handle_line(":READ?") or "nan") for _ in range(200)]
        return float(np.std(values, ddof=1)), (smu.clock.now_s - t0) / 200

    plain_sd, plain_t = spread(False)
    filtered_sd, filtered_t = spread(True)
    # sqrt(16) = 4; the sample SDs of 200 readings are each within ~15 % (3 sigma).
    assert plain_sd / filtered_sd == pytest.approx(4.0, rel=0.3)
    conv = measurement_time_s(0.01, 50.0, autozero=True)
    assert plain_t == pytest.approx(AUTO_SOURCE_DELAY_S + conv, rel=1e-9)
    assert filtered_t == pytest.approx(AUTO_SOURCE_DELAY_S + 16 * conv, rel=1e-9)


def test_filter_settings_round_trip() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        :SENS:CURR:AVER:TCON MOV
        :SENS:CURR:AVER:COUNT 5
        :SENS:CURR:AVER ON
        :SENS:CURR:AVER:TCON?
        :SENS:CURR:AVER:COUN?
        :SENS:CURR:AVER?
        :SENS:VOLT:AVER?
        """,
    )
    assert replies == ["MOV", "5", "1", "0"]


def test_status_registers_display_and_bus_trigger_are_accepted() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        :STAT:OPER:ENAB 4096
        :STAT:OPER:ENAB?
        :STAT:OPER?
        :STAT:OPER:COND?
        :STAT:QUES:ENAB 8
        :STAT:QUES:EVEN?
        :STAT:PRES
        :STAT:QUES:ENAB?
        :DISP:LIGH:STAT ON75
        :DISP:LIGH:STAT?
        *TRG
        """,
    )
    assert replies == ["4096", "0", "0", "0", "0", "ON75"]
