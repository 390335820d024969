"""The Keithley 2400 emulator, driven with the 2400 Series User's Manual's example programs.

The load is a fake 1 kohm `PortModel`; readings must be I = V / R within the 2400
datasheet accuracy (SPEC-2400 Rev. H, `smu_physics.K2400_*`).
"""

from __future__ import annotations

import itertools

import pytest

from simulator.clock import VirtualClock
from simulator.keithley2400_emulator import Keithley2400Emulator
from simulator.keithley2450_emulator import Keithley2450Emulator
from simulator.port_model import PortModel
from simulator.smu_physics import measurement_time_s

R_OHM = 1000.0
RESISTOR = PortModel(g_S=1 / R_OHM)


def _smu() -> Keithley2400Emulator:
    return Keithley2400Emulator(lambda: RESISTOR, VirtualClock(), 5)


def _run(smu: Keithley2400Emulator | Keithley2450Emulator, script: str) -> list[str]:
    replies = []
    for line in script.strip().splitlines():
        reply = smu.handle_line(line.strip())
        if reply is not None:
            replies.append(reply)
    assert smu.handle_line(":SYST:ERR?") == '0,"No error"'
    return replies


def _floats(reply: str) -> list[float]:
    return [float(x) for x in reply.split(",")]


def test_manual_linear_staircase_sweep() -> None:
    # User's manual section 10, "Remote sweep operation": a 1 mA..10 mA current sweep in
    # 1 mA steps, measuring voltage, 100 ms source delay. Compliance 20 V so that the
    # 1 kohm load stays below it (the manual's example uses 1 V into a small load).
    smu = _smu()
    replies = _run(
        smu,
        """
        *RST
        :SENS:FUNC:CONC OFF
        :SOUR:FUNC CURR
        :SENS:FUNC 'VOLT:DC'
        :SENS:VOLT:PROT 20
        :SOUR:CURR:START 1E-3
        :SOUR:CURR:STOP 10E-3
        :SOUR:CURR:STEP 1E-3
        :SOUR:CURR:MODE SWE
        :SOUR:SWE:RANG AUTO
        :SOUR:SWE:SPAC LIN
        :TRIG:COUN 10
        :SOUR:DEL 0.1
        :OUTP ON
        :READ?
        """,
    )
    data = _floats(replies[0])
    assert len(data) == 50  # 10 points x (V, I, R, TIME, STAT)
    volts = data[0::5]
    assert volts == pytest.approx([k * 1e-3 * R_OHM for k in range(1, 11)], rel=1e-3)
    times = data[3::5]
    assert all(b - a >= 0.1 for a, b in itertools.pairwise(times))
    # Current is not measured: the sourced quantity reads as the programmed level.
    assert data[1::5] == pytest.approx([k * 1e-3 for k in range(1, 11)])
    assert all(x == pytest.approx(9.91e37) for x in data[2::5])  # resistance off


def test_manual_data_store_and_statistics() -> None:
    # User's manual section 9, "Data store programming example": 10 readings into the
    # buffer, then :TRAC:DATA? and the :CALC3 statistics.
    smu = _smu()
    replies = _run(
        smu,
        """
        *RST
        :SOUR:VOLT 0.5
        :SENS:CURR:PROT 0.01
        :SENS:CURR:RANG 1e-3
        :TRAC:CLE
        :TRAC:POIN 10
        :TRIG:COUN 10
        :TRAC:FEED SENS
        :TRAC:FEED:CONT NEXT
        :OUTP ON
        :INIT
        *OPC?
        :TRAC:POIN:ACT?
        :TRAC:DATA?
        :CALC3:FORM MEAN
        :CALC3:DATA?
        :CALC3:FORM SDEV
        :CALC3:DATA?
        """,
    )
    assert replies[0] == "1"
    assert replies[1] == "+10"
    currents = _floats(replies[2])[1::5]
    assert len(currents) == 10
    mean = _floats(replies[3])[1]
    assert mean == pytest.approx(sum(currents) / 10, rel=1e-6)
    # 1 mA range: 0.027 % + 60 nA (SPEC-2400) on 500 uA, plus the 2 V source accuracy.
    assert mean == pytest.approx(0.5 / R_OHM, abs=0.5e-3 * 0.00047 + 60e-9 + 0.6e-6)
    assert _floats(replies[4])[1] < 1e-7


def test_buffer_full_sets_the_measurement_summary_bit_pymeasure_polls() -> None:
    smu = _smu()
    _run(
        smu,
        """
        *RST
        :STAT:PRES;*CLS;*SRE 1;:STAT:MEAS:ENAB 512;
        :TRAC:CLEAR;
        :TRAC:POIN 4
        :TRIG:COUN 4
        :TRAC:FEED SENSE;:TRAC:FEED:CONT NEXT;
        :OUTP ON
        :INIT
        """,
    )
    assert int(smu.handle_line("*STB?") or "0") & 65 != 65  # not full yet (1 ms per line)
    _run(smu, "*WAI")
    assert int(smu.handle_line("*STB?") or "0") & 65 == 65


def test_trigger_layers_timing_and_infinite_arm_count() -> None:
    smu = _smu()
    _run(smu, "*RST\n:SENS:CURR:RANG 1e-3\n:SOUR:DEL 0\n:ARM:COUN 3\n:TRIG:COUN 2\n:OUTP ON")
    t0 = smu.clock.now_s
    data = _floats(_run(smu, ":READ?")[0])
    assert len(data) == 6 * 5
    assert smu.clock.now_s - t0 == pytest.approx(6 * measurement_time_s(1.0, 50.0), rel=1e-9)
    _run(smu, ":ARM:COUN INF\n:TRIG:COUN 1\n:INIT")
    for _ in range(10):
        smu.handle_line(":SYST:ERR:COUN?")
    smu.handle_line(":ABOR")
    assert len(_floats(smu.handle_line(":FETC?") or "")) >= 5


def test_output_off_and_not_emulated_errors_use_the_instruments_numbers() -> None:
    smu = _smu()
    smu.handle_line(":INIT")
    smu.handle_line(":CALC2:LIM:STAT ON")
    smu.handle_line(":SOUR:MEM:SAVE 1")
    replies = [smu.handle_line(":SYST:ERR?") for _ in range(3)]
    assert replies[0] is not None and replies[0].startswith('803,"Output disabled')
    assert all(r is not None and "not emulated" in r for r in replies[1:])


def test_a_2450_after_lang_scpi2400_speaks_the_2400_set() -> None:
    smu = Keithley2450Emulator(lambda: RESISTOR, VirtualClock(), 5)
    _run(smu, "*LANG SCPI2400")
    smu.power_cycle()
    replies = _run(
        smu,
        """
        *LANG?
        :FORM:ELEM VOLT,CURR
        :SOUR:VOLT 0.2
        :SENS:CURR:PROT 0.01
        :OUTP ON
        :READ?
        """,
    )
    assert replies[0] == "SCPI2400"
    volts, amps = _floats(replies[1])
    assert amps == pytest.approx(volts / R_OHM, rel=2e-3)
    _run(smu, "*LANG SCPI")
    smu.power_cycle()
    assert smu.handle_line(":SOUR:VOLT:ILIM?") == "1.050000E-04"
