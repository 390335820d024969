"""The B2900 programming guide's examples, unchanged, over pyvisa-py and a real socket.

A script written for the instrument talks to the simulated bench exactly as to a B2902A on
the LAN (``TCPIP0::host::port::SOCKET``): the staircase sweep, the list sweep with the
trace buffer and bus triggers, and the binary REAL,64 transfer that pyvisa decodes as an
IEEE 488.2 definite-length block. The bench routes one cell to channel 1; the values must be
the physics of that cell, I = V g_S (ground truth read here only to check), within the
B2900 datasheet accuracy.

PyMeasure ships no B2900 class in its released versions (0.16: ``pymeasure.instruments.
keysight`` and ``.agilent`` have none), so no third-party B2900 driver runs here.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import pyvisa

from drivers.crossbar_board import CrossbarBoard
from simulator.bench import SimulatedBench

VISA = {"read_termination": "\n", "write_termination": "\n"}
# 1 mA range at 1 PLC: 0.02 % + 200 nA; 2 V source: 0.02 % + 350 uV (B2900 datasheet, as in
# tests/drivers/test_drivers_on_simulated_bench.py).
GAIN, OFFSET_A, SOURCE_GAIN, SOURCE_OFFSET_V = 2e-4, 200e-9, 2e-4, 350e-6


@pytest.fixture(scope="module")
def routed() -> Iterator[tuple[pyvisa.resources.MessageBasedResource, SimulatedBench, float]]:
    with SimulatedBench("small", seed=41, smu_model="B2902A") as bench:
        board = CrossbarBoard(bench.board_url, timeout_s=2.0, max_dac_voltage_V=0.5)
        board.set_cell_mask(1, 2, 0b11)
        board.route_cell(1, 2)
        with bench.lock:
            g_S = bench.model.smu_port().g_S
        rm = pyvisa.ResourceManager("@py")
        inst = rm.open_resource(bench.smu_resource, **VISA)
        assert isinstance(inst, pyvisa.resources.MessageBasedResource)
        inst.timeout = 10_000
        try:
            yield inst, bench, g_S
        finally:
            inst.write(":OUTP1 OFF")
            inst.close()
            rm.close()
            board.safe()
            board.close()
            bench.wait_until_idle()


def _tolerance(v: np.ndarray, g_S: float) -> np.ndarray:
    return (SOURCE_GAIN * np.abs(v) + SOURCE_OFFSET_V) * g_S + GAIN * np.abs(v) * g_S + OFFSET_A


def test_staircase_sweep_over_the_socket_ascii_and_real64(
    routed: tuple[pyvisa.resources.MessageBasedResource, SimulatedBench, float],
) -> None:
    inst, _, g_S = routed
    for command in (
        "*RST",
        ":SOUR1:FUNC:MODE VOLT",
        ":SOUR1:VOLT:MODE SWE",
        ":SOUR1:VOLT:STAR 0",
        ":SOUR1:VOLT:STOP 0.5",
        ":SOUR1:VOLT:POIN 6",
        ':SENS1:FUNC "CURR"',
        ":SENS1:CURR:NPLC 1",
        ":SENS1:CURR:RANG:AUTO OFF",
        ":SENS1:CURR:RANG 1e-3",
        ":SENS1:CURR:PROT 0.01",
        ":TRIG1:SOUR AINT",
        ":TRIG1:COUN 6",
        ":OUTP1 ON",
        ":INIT (@1)",
    ):
        inst.write(command)
    assert inst.query("*OPC?").strip() == "1"
    volts = np.array(inst.query_ascii_values(":FETC:ARR:SOUR? (@1)"))
    currents = np.array(inst.query_ascii_values(":FETC:ARR:CURR? (@1)"))
    assert np.allclose(volts, np.linspace(0.0, 0.5, 6))
    assert np.all(np.abs(currents - volts * g_S) < _tolerance(volts, g_S))
    # The same data as IEEE-754 doubles in a definite-length block, normal byte order.
    inst.write(":FORM REAL,64")
    binary = inst.query_binary_values(
        ":FETC:ARR:CURR? (@1)", datatype="d", is_big_endian=True, container=np.array
    )
    inst.write(":FORM:BORD SWAP")
    swapped = inst.query_binary_values(
        ":FETC:ARR:CURR? (@1)", datatype="d", is_big_endian=False, container=np.array
    )
    inst.write(":FORM ASC;:FORM:BORD NORM")
    assert np.allclose(binary, currents, rtol=1e-6, atol=0)  # ASCII has 7 digits
    assert np.array_equal(binary, swapped)
    assert inst.query(":SYST:ERR?").strip() == '+0,"No error"'


def test_list_sweep_with_bus_triggers_and_the_trace_buffer_over_the_socket(
    routed: tuple[pyvisa.resources.MessageBasedResource, SimulatedBench, float],
) -> None:
    inst, _, g_S = routed
    levels = [0.1, 0.4, 0.2, 0.3]
    for command in (
        "*RST",
        ":SOUR1:VOLT:MODE LIST",
        ":SOUR1:LIST:VOLT " + ",".join(str(v) for v in levels),
        ":SENS1:CURR:NPLC 0.1",
        ":SENS1:CURR:RANG:AUTO OFF",
        ":SENS1:CURR:RANG 1e-3",
        ":SENS1:CURR:PROT 0.01",
        ":TRAC1:CLE",
        ":TRAC1:POIN 10",
        ":TRAC1:FEED SENS",
        ":TRAC1:FEED:CONT NEXT",
        ":TRIG1:SOUR BUS",
        ":TRIG1:COUN 4",
        ":INIT (@1)",
    ):
        inst.write(command)
    for expected in range(1, 5):
        inst.write("*TRG")
        # Poll until this step's reading is stored (each line lets instrument time pass),
        # as a script does before sending the next trigger.
        stored = 0
        for _ in range(200):
            stored = int(inst.query(":TRAC1:POIN:ACT?"))
            if stored == expected:
                break
        assert stored == expected
    assert inst.query(":IDLE? (@1)").strip() == "1"
    inst.write(":FORM:ELEM:SENS CURR,SOUR")
    data = np.array(inst.query_ascii_values(":TRAC1:DATA?")).reshape(-1, 2)
    assert np.allclose(data[:, 1], levels)
    assert np.all(np.abs(data[:, 0] - data[:, 1] * g_S) < 3 * _tolerance(data[:, 1], g_S))
    inst.write(":TRAC1:STAT:FORM MEAN")
    mean_i, mean_v = inst.query_ascii_values(":TRAC1:STAT:DATA?")
    assert mean_v == pytest.approx(np.mean(levels))
    assert mean_i == pytest.approx(float(np.mean(data[:, 0])), rel=1e-6)
    assert inst.query(":SYST:ERR?").strip() == '+0,"No error"'
