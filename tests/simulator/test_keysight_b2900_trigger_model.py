"""The B2900 emulator as measurement scripts use it: sweeps, lists, ARM/TRIG layers, data.

Command sequences follow the B2900 SCPI Command Reference (B2910-90030, Edition 2): the
SOURce subsystem (sweep and list, 4-93 to 4-109), the ARM / TRIGger / INITiate / ABORt /
IDLE subsystems, FETCh / READ / MEASure, FORMat (1-12 "Data Output Format", 4-34) and
TRACe (4-145 to 4-149), and the programming guide's staircase-sweep, list-sweep, buffer
and trigger examples. Values are the physics of a 1 kohm resistor within the B2900
datasheet accuracy; times are exact sums of the time model (source wait + delays +
conversions, or timer ticks).

Every test here fails on the emulator before the B2900 part of issue 13 (sweep and list
modes refused with -224, no ARM layer, no :READ, no :TRAC, no REAL formats, ...).
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from simulator.clock import VirtualClock
from simulator.keysight_b2900_emulator import AUTO_SOURCE_DELAY_S, KeysightB2900Emulator
from simulator.port_model import PortModel
from simulator.smu_physics import (
    B2900_MEASURE_CURRENT,
    B2900_SOURCE_VOLTAGE,
    NAN_READING,
    measurement_time_s,
    noise_sigma,
)

R_OHM = 1000.0
RESISTOR = PortModel(g_S=1 / R_OHM)
R2_OHM = 10e3
NPLC = 0.1
T_MEAS = measurement_time_s(NPLC, 50.0, autozero=False)
"""One conversion at NPLC 0.1 on 50 Hz (s)."""
FIXED_1MA = """
:SENS1:CURR:NPLC 0.1
:SENS1:CURR:RANG:AUTO OFF
:SENS1:CURR:RANG 1e-3
:SENS1:VOLT:RANG:AUTO OFF
:SENS1:VOLT:RANG 2
:SENS1:CURR:PROT 0.01
"""


def _smu(seed: int = 5, model: str = "B2902A") -> KeysightB2900Emulator:
    ports = [lambda: RESISTOR, lambda: PortModel(g_S=1 / R2_OHM)]
    return KeysightB2900Emulator(
        ports[: 1 if model == "B2901A" else 2], VirtualClock(), seed, model=model
    )


def _run(smu: KeysightB2900Emulator, script: str) -> list[str]:
    """Send each line; collect replies; fail on any queued error."""
    replies = []
    for line in script.strip().splitlines():
        reply = smu.handle_line(line.strip())
        if reply is not None:
            replies.append(reply)
    assert smu.handle_line(":SYST:ERR:ALL?") == '+0,"No error"'
    return replies


def _errors(smu: KeysightB2900Emulator) -> list[str]:
    out = []
    while (reply := smu.handle_line(":SYST:ERR?")) != '+0,"No error"':
        assert reply is not None
        out.append(reply)
    return out


def _floats(reply: str) -> np.ndarray:
    return np.array([float(x) for x in reply.split(",")])


def _current_bound(v_V: float | np.ndarray) -> np.ndarray:
    """|I - V/R| bound on the fixed 1 mA range: source error / R + ammeter accuracy."""
    v = np.abs(np.asarray(v_V, dtype=float))
    src = next(s for s in B2900_SOURCE_VOLTAGE if s.full_scale >= np.max(v))
    meter = next(s for s in B2900_MEASURE_CURRENT if s.full_scale == 1e-3)
    source = (src.gain * v + src.offset + src.resolution) / R_OHM
    pickup = 2e-6 * meter.full_scale  # 0.1 PLC is not a whole number of line cycles
    i = v / R_OHM
    return (
        source
        + meter.gain * i
        + meter.offset
        + 5 * noise_sigma(meter, NPLC)
        + meter.resolution
        + pickup
    )


# ---------------------------------------------------------------- sweeps and lists


def test_programming_guide_staircase_sweep_returns_the_ramp() -> None:
    # Finding: this sequence returned 11 readings at the fixed level 0 V (the mode and
    # the sweep commands were refused, -224/-113, and a script ignoring errors got them).
    smu = _smu()
    start_s = smu.clock.now_s
    replies = _run(
        smu,
        ":SOUR1:FUNC:MODE VOLT\n"
        ":SOUR1:VOLT:MODE SWE\n"
        ":SOUR1:VOLT:STAR 0\n"
        ":SOUR1:VOLT:STOP 1\n"
        ":SOUR1:VOLT:POIN 11\n"
        ':SENS1:FUNC "CURR"\n'
        + FIXED_1MA
        + """
        :TRIG1:SOUR AINT
        :TRIG1:COUN 11
        :OUTP1 ON
        :INIT (@1)
        *OPC?
        :FETC:ARR:VOLT? (@1)
        :FETC:ARR:CURR? (@1)
        :FETC:ARR:SOUR? (@1)
        :FETC:ARR:TIME? (@1)
        """,
    )
    assert replies[0] == "1"
    ramp = np.linspace(0.0, 1.0, 11)
    assert np.allclose(_floats(replies[3]), ramp, atol=1e-12)
    # :SENS:FUNC "CURR" adds current to the functions on; voltage stays on (*RST: both).
    assert np.allclose(_floats(replies[1]), ramp, atol=2e-3)
    currents = _floats(replies[2])
    assert np.all(np.abs(currents - ramp / R_OHM) < _current_bound(ramp))
    # Each step: the source wait after the step, then one conversion (AINT lock-step).
    times = _floats(replies[4])
    step_s = AUTO_SOURCE_DELAY_S + T_MEAS
    assert np.allclose(np.diff(times), step_s, rtol=0, atol=1e-12)
    assert smu.clock.now_s - start_s == pytest.approx(11 * step_s, abs=1e-12)


def test_sweep_couplings_step_center_span_direction_and_double() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        :SOUR:VOLT:STAR 1
        :SOUR:VOLT:STOP 2
        :SOUR:VOLT:STEP 0.25
        :SOUR:SWE:POIN?
        :SOUR:VOLT:CENT?
        :SOUR:VOLT:SPAN?
        :SOUR:SWE:POIN 3
        :SOUR:VOLT:STEP?
        :SOUR:VOLT:CENT 0
        :SOUR:VOLT:STAR?
        :SOUR:VOLT:STOP?
        :SOUR:VOLT:SPAN 2
        :SOUR:VOLT:STOP?
        :SOUR:VOLT:STEP?
        """,
    )
    assert replies == [
        "5",
        "+1.500000E+00",
        "+1.000000E+00",
        "+5.000000E-01",
        "-5.000000E-01",
        "+5.000000E-01",
        "+1.000000E+00",
        "+1.000000E+00",
    ]
    # A step that does not divide the span: the sweep stops at start + step (points - 1).
    sweep = _run(
        smu,
        """
        :SOUR:VOLT:MODE SWE
        :SOUR:VOLT:STAR 0
        :SOUR:VOLT:STOP 1
        :SOUR:VOLT:STEP 0.3
        :SOUR:SWE:POIN?
        :TRIG:COUN 4
        :READ:ARR:SOUR?
        :SOUR:SWE:DIR DOWN
        :READ:ARR:SOUR?
        :SOUR:SWE:DIR UP
        :SOUR:SWE:STA DOUB
        :TRIG:COUN 8
        :READ:ARR:SOUR?
        """,
    )
    assert sweep[0] == "4"
    assert np.allclose(_floats(sweep[1]), [0.0, 0.3, 0.6, 0.9])
    assert np.allclose(_floats(sweep[2]), [1.0, 0.7, 0.4, 0.1])
    assert np.allclose(_floats(sweep[3]), [0.0, 0.3, 0.6, 0.9, 0.9, 0.6, 0.3, 0.0])
    # Step and span of different polarity: refused (the manual: "causes an error").
    smu.handle_line(":SOUR:VOLT:STEP -0.1")
    assert [e.split(",")[0] for e in _errors(smu)] == ["-221"]


def test_log_sweep_and_current_sweep() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        :SOUR:FUNC:MODE CURR
        :SOUR:CURR:MODE SWE
        :SOUR:SWE:SPAC LOG
        :SOUR:CURR:STAR 1e-6
        :SOUR:CURR:STOP 1e-3
        :SOUR:CURR:POIN 4
        :SENS:VOLT:PROT 5
        :SENS:FUNC "VOLT"
        :TRIG:COUN 4
        :FORM:ELEM:SENS VOLT,SOUR
        :READ:ARR? (@1)
        """,
    )
    values = _floats(replies[0])
    volts, sources = values[0::2], values[1::2]
    assert np.allclose(sources, [1e-6, 1e-5, 1e-4, 1e-3], rtol=1e-12)
    # V = I R within 1 % (the current source's error on its low ranges dominates).
    assert np.allclose(volts, sources * R_OHM, rtol=1e-2, atol=1e-4)
    smu.handle_line(":SOUR:CURR:STAR 0;:INIT")
    assert [e.split(",")[0] for e in _errors(smu)] == ["-221"]  # LOG through 0


def test_programming_guide_list_sweep_with_append_and_repeat() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        :SOUR:FUNC:MODE VOLT
        :SOUR:VOLT:MODE LIST
        :SOUR:LIST:VOLT 0.1,0.5,-0.2
        :SOUR:LIST:VOLT:APP 0.9,0
        :SOUR:LIST:VOLT:POIN?
        :SOUR:LIST:VOLT?
        :SENS:FUNC "CURR"
        """
        + FIXED_1MA
        + """
        :TRIG:COUN 5
        :INIT
        :FETC:ARR:CURR?
        :FETC:ARR:SOUR?
        :TRIG:COUN 7
        :READ:ARR:SOUR?
        """,
    )
    levels = np.array([0.1, 0.5, -0.2, 0.9, 0.0])
    assert replies[0] == "5"
    assert np.allclose(_floats(replies[1]), levels)
    currents = _floats(replies[2])
    assert np.all(np.abs(currents - levels / R_OHM) < _current_bound(levels))
    assert np.allclose(_floats(replies[3]), levels)
    # More triggers than list points: the list starts over (emulator choice, documented).
    assert np.allclose(_floats(replies[4]), [*levels, 0.1, 0.5])


def test_triggered_level_in_fixed_mode_becomes_the_output_level() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        :SOUR:VOLT 0.2
        :SOUR:VOLT:TRIG?
        :SOUR:VOLT:TRIG 0.7
        :SOUR:VOLT?
        :TRIG:COUN 2
        :READ:ARR:SOUR?
        :SOUR:VOLT?
        """,
    )
    assert replies[0] == "+2.000000E-01"  # the triggered level follows the level...
    assert replies[1] == "+2.000000E-01"  # ...until set on its own
    assert np.allclose(_floats(replies[2]), [0.7, 0.7])
    assert replies[3] == "+7.000000E-01"


# ---------------------------------------------------------------- ARM / TRIGger layers


def test_arm_and_trigger_counts_delays_and_timers_in_instrument_time() -> None:
    smu = _smu()
    _run(smu, FIXED_1MA + ':SENS1:FUNC "CURR"\n:SOUR1:VOLT 0.5')
    t0 = smu.clock.now_s
    replies = _run(
        smu,
        """
        :ARM1:COUN 2
        :ARM1:DEL 0.01
        :TRIG1:COUN 3
        :TRIG1:SOUR TIM
        :TRIG1:TIM 0.05
        :TRIG1:ACQ:DEL 0.002
        :ARM1:COUN?
        :TRIG1:TRAN:TIM?
        :TRIG1:ACQ:DEL?
        :TRIG1:TRAN:DEL?
        :INIT (@1)
        *OPC?
        :FETC:ARR:TIME? (@1)
        """,
    )
    assert replies[:4] == ["2", "+5.000000E-02", "+2.000000E-03", "+0.000000E+00"]
    times = _floats(replies[5]) + smu.timer_zero_s - t0
    # Each ARM cycle: its delay, then timer ticks 0, 50, 100 ms; a measurement starts
    # its trigger delay after the tick. The second cycle starts when the first ends.
    first = 0.01 + np.array([0.0, 0.05, 0.10]) + 0.002
    second_start = first[-1] + T_MEAS + 0.01
    second = second_start + np.array([0.0, 0.05, 0.10]) + 0.002
    assert np.allclose(times, np.concatenate([first, second]), rtol=0, atol=1e-12)


def test_bus_triggers_waiting_and_refusals_instead_of_hangs() -> None:
    smu = _smu()
    replies = _run(
        smu,
        ":SOUR1:VOLT:MODE LIST\n:SOUR1:LIST:VOLT 0.1,0.2,0.3\n"
        + FIXED_1MA
        + """
        :TRIG1:SOUR BUS
        :TRIG1:COUN 3
        :INIT (@1)
        """,
    )
    assert replies == []
    # Waiting for *TRG: *OPC?, :IDLE? and :FETC would wait forever; the emulator refuses.
    for query in ("*OPC?", ":IDLE? (@1)", ":FETC:ARR:SOUR? (@1)"):
        assert smu.handle_line(query) is None
        assert [e.split(",")[0] for e in _errors(smu)] == ["-200"], query
    sources = []
    for _ in range(3):
        smu.handle_line("*TRG")
        smu.scheduler.run_to_end([0])  # the measurement ends before the next *TRG
    assert smu.handle_line(":IDLE? (@1)") == "1"
    sources = _floats(smu.handle_line(":FETC:ARR:SOUR? (@1)") or "")
    assert np.allclose(sources, [0.1, 0.2, 0.3])
    assert smu.handle_line(":INIT (@1);:INIT (@1)") is None
    assert [e.split(",")[0] for e in _errors(smu)] == ["-213"]  # Init ignored
    smu.handle_line(":ABOR (@1)")
    assert smu.handle_line("*OPC?") == "1"


def test_infinite_count_runs_until_abort_and_keeps_its_readings() -> None:
    smu = _smu()
    _run(smu, FIXED_1MA + ":TRIG1:COUN INF\n:TRIG1:SOUR TIM\n:TRIG1:TIM 0.01\n:INIT (@1)")
    assert smu.handle_line("*OPC?") is None
    assert [e.split(",")[0] for e in _errors(smu)] == ["-200"]
    for _ in range(30):
        smu.handle_line("*CLS")  # each host line lets >= 1 ms of instrument time pass
    smu.handle_line(":ABOR")
    assert smu.handle_line("*OPC?") == "1"
    n = len(_floats(smu.handle_line(":FETC:ARR:CURR? (@1)") or ""))
    assert n >= 3  # at least 30 ms at 10 ms per reading


def test_acquire_and_transient_actions_alone() -> None:
    smu = _smu()
    _run(smu, FIXED_1MA + ":SOUR1:VOLT 0.4\n:TRIG1:COUN 3")
    t0 = smu.clock.now_s
    replies = _run(smu, ":INIT:ACQ (@1)\n:FETC:ARR:TIME? (@1)\n:FETC:ARR:SOUR? (@1)")
    times = _floats(replies[0]) + smu.timer_zero_s - t0
    # No transient action: no source wait, conversions back to back.
    assert np.allclose(times, [0.0, T_MEAS, 2 * T_MEAS], rtol=0, atol=1e-12)
    assert np.allclose(_floats(replies[1]), 0.4)
    # A transient action alone changes the output and leaves the acquired data alone.
    _run(smu, ":SOUR1:VOLT:MODE SWE;:SOUR1:VOLT:STAR 0;:SOUR1:VOLT:STOP 1;:SOUR1:SWE:POIN 3")
    replies = _run(smu, ":INIT:TRAN (@1)\n:IDLE:TRAN? (@1)\n:FETC:ARR:SOUR? (@1)")
    assert replies[0] == "1"
    assert np.allclose(_floats(replies[1]), 0.4)


def test_two_channels_interleave_and_pad_as_the_reference_shows() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        :SOUR1:VOLT:MODE LIST
        :SOUR1:LIST:VOLT 0.1,0.2,0.3,0.4
        :TRIG1:COUN 4
        :SOUR2:VOLT:MODE LIST
        :SOUR2:LIST:VOLT 1,2
        :TRIG2:COUN 2
        :FORM:ELEM:SENS SOUR
        :READ:ARR? (@1,2)
        :FETC? (@1,2)
        :FETC:ARR? (@2,1)
        """,
    )
    nan = NAN_READING
    assert np.allclose(_floats(replies[0]), [0.1, 1, 0.2, 2, 0.3, nan, 0.4, nan])
    assert np.allclose(_floats(replies[1]), [0.4, 2])
    assert np.allclose(_floats(replies[2]), [1, 0.1, 2, 0.2, nan, 0.3, nan, 0.4])


def test_meas_is_a_spot_measurement_that_replaces_the_data_and_is_refused_while_running() -> None:
    smu = _smu()
    _run(smu, ":SOUR1:VOLT 0.3\n:TRIG1:COUN 5\n:TRIG1:SOUR BUS\n:INIT (@1)")
    assert smu.handle_line(":MEAS:CURR? (@1)") is None
    assert [e.split(",")[0] for e in _errors(smu)] == ["-221"]
    smu.handle_line(":ABOR (@1)")
    replies = _run(smu, ":MEAS:CURR? (@1)\n:FETC:ARR:CURR? (@1)")
    assert replies[0] == replies[1]  # the data are the spot reading only


def test_fetch_without_data_reads_not_a_number() -> None:
    smu = _smu()
    assert smu.handle_line(":FETC:ARR:CURR? (@2)") == "+9.910000E+37"


# ---------------------------------------------------------------- data formats


def test_real_64_and_real_32_definite_length_blocks_and_byte_order() -> None:
    smu = _smu()
    ascii_reply = _run(
        smu,
        ":SOUR1:VOLT:MODE LIST\n:SOUR1:LIST:VOLT 0.1,0.2,0.3\n:TRIG1:COUN 3\n"
        ":SENS1:CURR:PROT 0.01\n:FORM:ELEM:SENS CURR,SOUR\n:INIT (@1)\n:FETC:ARR? (@1)",
    )[0]
    expected = _floats(ascii_reply)
    smu.handle_line(":FORM REAL,64")
    assert smu.handle_line(":FORM?") == "REAL,64"
    block = (smu.handle_line(":FETC:ARR? (@1)") or "").encode("latin-1")
    assert block[:4] == b"#248"  # 6 values x 8 bytes
    assert struct.unpack(">6d", block[4:]) == pytest.approx(list(expected))
    smu.handle_line(":FORM:BORD SWAP")
    block = (smu.handle_line(":FETC:ARR? (@1)") or "").encode("latin-1")
    assert struct.unpack("<6d", block[4:]) == pytest.approx(list(expected))
    smu.handle_line(":FORM REAL,32;:FORM:BORD NORM;:FORM:ELEM:SENS VOLT,CURR")
    smu.handle_line(':SENS1:FUNC:OFF "VOLT";:INIT (@1)')
    block = (smu.handle_line(":FETC? (@1)") or "").encode("latin-1")
    assert block[:3] == b"#18"
    volt, curr = struct.unpack(">2f", block[3:])
    assert math.isnan(volt)  # 9.91E+37 in ASCII is NaN in IEEE-754
    assert abs(curr - 0.3 / R_OHM) < float(_current_bound(0.3)) + 1e-6  # autoranged
    assert _errors(smu) == []


# ---------------------------------------------------------------- trace buffer


def test_trace_buffer_feed_points_control_data_and_statistics() -> None:
    smu = _smu()
    replies = _run(
        smu,
        FIXED_1MA
        + """
        :SOUR1:VOLT:MODE LIST
        :SOUR1:LIST:VOLT 0.1,0.2,0.3,0.4,0.5,0.6
        :TRIG1:COUN 6
        :TRAC1:POIN 4
        :TRAC1:FEED SENS
        :TRAC1:FEED:CONT NEXT
        :INIT (@1)
        *WAI
        :TRAC1:POIN:ACT?
        :TRAC1:FEED:CONT?
        :TRAC1:FREE?
        :FORM:ELEM:SENS SOUR,TIME
        :TRAC1:DATA?
        :TRAC1:TST:FORM DELT
        :TRAC1:DATA? 1,2
        :FORM:ELEM:SENS CURR,SOUR,TIME,STAT
        :TRAC1:STAT:FORM MEAN
        :TRAC1:STAT:DATA?
        :TRAC1:STAT:FORM PKPK
        :TRAC1:STAT:DATA?
        """,
    )
    # The buffer stored 4 readings, then control went back to NEVer (buffer full).
    assert replies[:3] == ["4", "NEV", "0,4"]
    data = _floats(replies[3]).reshape(-1, 2)  # TIME, SOUR in the fixed order
    step_s = AUTO_SOURCE_DELAY_S + T_MEAS
    assert np.allclose(data[:, 0], np.arange(4) * step_s, atol=1e-12)  # ABS: from the first
    assert np.allclose(data[:, 1], [0.1, 0.2, 0.3, 0.4])
    delta = _floats(replies[4]).reshape(-1, 2)
    assert np.allclose(delta[:, 0], step_s, atol=1e-12)  # DELT: from the previous
    assert np.allclose(delta[:, 1], [0.2, 0.3])
    mean_i, mean_v = _floats(replies[5])  # CURR, SOUR (no TIME, no STATus statistic)
    assert mean_v == pytest.approx(0.25)
    assert abs(mean_i - 0.25 / R_OHM) < float(_current_bound(0.4))
    assert _floats(replies[6])[1] == pytest.approx(0.3)
    # Clearing or resizing while storing is refused; the data stay.
    smu.handle_line(":TRAC1:POIN 10;:TRAC1:FEED:CONT NEXT;:TRAC1:CLE;:TRAC1:POIN 20")
    assert [e.split(",")[0] for e in _errors(smu)] == ["-221", "-221"]
    assert smu.handle_line(":TRAC1:POIN:ACT?;:TRAC1:POIN?") == "4;10"
    assert _run(smu, ":TRAC1:FEED:CONT NEV\n:TRAC1:CLE\n:TRAC1:POIN:ACT?") == ["0"]
    smu.handle_line(":TRAC1:FEED MATH")
    assert "not emulated" in _errors(smu)[0]


# ---------------------------------------------------------------- output and system


def test_output_protection_turns_the_output_off_at_compliance_and_stops() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        :OUTP1:PROT?
        :OUTP1:PROT ON
        :SENS1:CURR:PROT 3e-4
        :SOUR1:VOLT:MODE SWE
        :SOUR1:VOLT:STAR 0.1
        :SOUR1:VOLT:STOP 0.5
        :SOUR1:SWE:POIN 5
        :TRIG1:COUN 5
        :INIT (@1)
        *OPC?
        :OUTP1?
        :FETC:ARR:SOUR? (@1)
        :FETC:ARR:STAT? (@1)
        """,
    )
    assert replies[0] == "0"
    assert replies[2] == "0"  # the output went off when the current reached 0.3 mA
    sources = _floats(replies[3])
    assert len(sources) < 5
    assert int(_floats(replies[4])[-1]) & 8  # the last reading is in compliance


def test_output_off_mode_auto_off_and_options() -> None:
    smu = _smu()
    replies = _run(
        smu,
        """
        :OUTP1:OFF:MODE?
        :OUTP1:OFF:MODE HIZ
        :OUTP1:OFF:MODE?
        :OUTP2:OFF:MODE ZERO
        :OUTP2:OFF:MODE?
        :OUTP1:OFF:AUTO ON
        :TRIG1:COUN 3
        :INIT (@1)
        :OUTP1?
        *OPC?
        :OUTP1?
        *OPT?
        """,
    )
    # Auto output-off happens when the operation ends, not after each reading.
    assert replies == ["NORM", "HIZ", "ZERO", "1", "1", "0", "0"]


def test_not_emulated_families_say_so() -> None:
    smu = _smu()
    for line, code in (
        (':CALC1:MATH:EXPR:DEF "V/I"', "-113"),
        (":SOUR1:FUNC:SHAP PULS", "-113"),
        (":TRIG1:SOUR EXT3", "-224"),
        (":ARM1:ACQ:TOUT ON", "-113"),
        (":STAT:OPER:ENAB 16", "-113"),
    ):
        smu.handle_line(line)
        errors = _errors(smu)
        assert [e.split(",")[0] for e in errors] == [code], line
        assert "not emulated" in errors[0], line


def test_sweep_steps_and_readings_report_their_stress_to_the_board() -> None:
    # Read disturb: the board hears, per source step and per reading, the force voltage and
    # how long it was held, so a sweep stresses a memristor as long as it really lasts.
    held: list[tuple[float, float, float]] = []
    port = PortModel(g_S=1 / R_OHM, held=lambda v, t, i: held.append((v, t, i)))
    smu = KeysightB2900Emulator([lambda: port], VirtualClock(), 3, model="B2901A")
    start_s = smu.clock.now_s
    _run(
        smu,
        FIXED_1MA
        + ":SOUR:VOLT:MODE SWE\n:SOUR:VOLT:STAR 0.1\n:SOUR:VOLT:STOP 0.3\n:SOUR:SWE:POIN 3\n"
        ":TRIG:COUN 3\n:INIT\n*WAI",
    )
    assert sum(t for _, t, _ in held) == pytest.approx(smu.clock.now_s - start_s, abs=1e-12)
    assert [round(v, 2) for v, _, _ in held] == [0.1, 0.1, 0.2, 0.2, 0.3, 0.3]
    assert {i for _, _, i in held} == {0.01}  # under the 10 mA compliance
