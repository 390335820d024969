"""End to end: the drivers against the simulated bench through real pyvisa-py and pyserial.

The simulator is a black box here (its addresses and its ground truth only): the drivers
implement the written protocols independently, and these tests make both sides talk.

Tolerances come from the Keithley 2450 datasheet (SPEC-2450, 1 PLC, 1 year; the numbers in
shared/research/crossbar_sim.md 9.4), which the emulator's per-instrument errors are drawn
within: current accuracy per range (gain + offset) and voltage accuracy on the 2 V range.
A conductance I/V then carries the sum of the relative current and voltage errors.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import numpy as np
import pytest

from drivers.crossbar_board import CrossbarBoard
from drivers.errors import (
    BoardError,
    BoardIdentityError,
    InstrumentCommandError,
    InstrumentError,
    InstrumentIdentityError,
    InstrumentModeError,
)
from drivers.keithley2450 import Keithley2450
from drivers.smu import SafetyLimits, SourceMeter, open_smu
from simulator.bench import SimulatedBench

LIMITS = SafetyLimits(max_voltage_V=1.0, max_current_A=0.01)
# 2450 current accuracy (gain, offset A) per measure range (A), SPEC-2450 at 1 PLC.
CURRENT_ACCURACY = {
    1e-6: (2.5e-4, 300e-12),
    1e-5: (2.5e-4, 700e-12),
    1e-4: (2.0e-4, 6e-9),
    1e-3: (2.0e-4, 60e-9),
    1e-2: (2.0e-4, 600e-9),
}
VOLTAGE_ACCURACY_2V = (1.2e-4, 300e-6)  # gain, offset (V) on the 2 V range
NOISE_MARGIN = 1.25  # random noise at 1 PLC is far below the accuracy terms (datasheet)


def conductance_tolerance(current_A: float, voltage_V: float, range_A: float) -> float:
    """Relative error bound of I/V from the datasheet accuracies (see module docstring)."""
    gain_i, offset_i = CURRENT_ACCURACY[range_A]
    gain_v, offset_v = VOLTAGE_ACCURACY_2V
    relative = gain_i + offset_i / abs(current_A) + gain_v + offset_v / abs(voltage_V)
    return NOISE_MARGIN * relative


@pytest.fixture(scope="module")
def bench() -> Iterator[SimulatedBench]:
    with SimulatedBench("small", seed=1) as simulated:
        yield simulated


@pytest.fixture
def board(bench: SimulatedBench) -> Iterator[CrossbarBoard]:
    driver = CrossbarBoard(bench.board_url, timeout_s=2.0, max_dac_voltage_V=0.5)
    yield driver
    driver.close()
    bench.wait_until_idle()


@pytest.fixture
def smu(bench: SimulatedBench, board: CrossbarBoard) -> Iterator[SourceMeter]:
    """The SMU; it needs ``board`` so that ``board``'s teardown (after this one) waits
    until both servers are idle for the next test."""
    driver = open_smu("keithley2450", bench.smu_resource, LIMITS, timeout_s=5.0)
    yield driver
    driver.shutdown()
    driver.close()


def test_board_identity_and_geometry(bench: SimulatedBench, board: CrossbarBoard) -> None:
    geometry = bench.model.geometry
    assert (board.geometry.rows, board.geometry.cols, board.geometry.branches) == (
        geometry.rows,
        geometry.cols,
        geometry.branches,
    )
    assert board.identity.startswith(f"LABRSS,XBAR-{geometry.rows}x{geometry.cols}x")
    assert board.info["element"] in {"resistor", "memristor"}
    assert board.is_safe()


def test_masks_reach_the_board_and_read_back(bench: SimulatedBench, board: CrossbarBoard) -> None:
    g = board.geometry
    masks = np.random.default_rng(3).random((g.rows, g.cols, g.branches)) < 0.3
    board.set_masks(masks)
    np.testing.assert_array_equal(board.masks(), masks)
    with bench.lock:
        np.testing.assert_array_equal(bench.model.switches, masks)
    assert board.closed_count() == int(masks.sum())
    board.set_branch(0, 0, 0, not masks[0, 0, 0])
    assert board.cell_mask(0, 0) & 1 == int(not masks[0, 0, 0])
    board.open_all()
    assert board.closed_count() == 0


def test_dacs_are_quantised_within_one_lsb(bench: SimulatedBench, board: CrossbarBoard) -> None:
    rows = board.geometry.rows
    wanted = np.random.default_rng(4).uniform(-0.5, 0.5, rows)
    got = board.set_dacs(wanted)
    np.testing.assert_allclose(got, wanted, rtol=0, atol=board.dac_lsb_V)
    with bench.lock:
        # the read-back is printed with %.9g: relative rounding at most 5e-9
        np.testing.assert_allclose(bench.model.dac_voltages_V, got, rtol=5e-9, atol=0)
    assert abs(board.set_dac(1, 0.123) - 0.123) <= board.dac_lsb_V
    board.zero_dacs()
    np.testing.assert_array_equal(board.dacs(), np.zeros(rows))


def test_a_reply_line_is_read_in_a_few_reads_not_byte_by_byte(
    board: CrossbarBoard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A socket:// port says only "readable" as its byte count: the driver still takes a
    whole reply in a couple of reads (one per byte was ~3 system calls a byte, a third of
    the demo's CPU), and the values are the same."""
    port = board._port  # the pyserial socket:// port the driver opened
    reads: list[int] = []
    read = port.read

    def counted(size: int = 1) -> bytes:
        data = read(size)
        reads.append(len(data))
        return data

    monkeypatch.setattr(port, "read", counted)
    rows = board.geometry.rows
    board.set_dacs(np.linspace(-0.4, 0.4, rows))
    reads.clear()
    codes = board.dacs()  # one reply of `rows` numbers
    assert len(codes) == rows
    reply_bytes = sum(reads)
    assert reply_bytes > 4 * rows  # several characters per number
    assert len(reads) <= 4, reads  # typically 2: the first byte, then the rest
    np.testing.assert_allclose(codes, np.linspace(-0.4, 0.4, rows), atol=board.dac_lsb_V)


def test_routing_and_the_safe_state(board: CrossbarBoard) -> None:
    board.route_cell(1, 2, four_wire=True)
    assert board.routing() == "CELL 1,2,4W"
    board.route_mvm_smu(3)
    assert board.routing() == "MVM SMU,3"
    board.route_mvm_adc()
    currents = board.read_adcs()
    assert currents.shape == (board.geometry.cols,)
    assert np.isfinite(currents).all()
    assert not board.is_safe() or board.closed_count() == 0
    board.set_cell_mask(0, 0, 0b11)
    board.safe()
    assert board.is_safe()
    assert board.routing() == "OPEN"
    assert board.closed_count() == 0
    assert 0.0 < board.temperature_C() < 100.0


def test_board_error_reply_names_code_and_command(board: CrossbarBoard) -> None:
    board.route_open()
    with pytest.raises(BoardError) as info:
        board.read_adc(0)
    assert info.value.code == -221
    assert info.value.command == "ADC:READ? 0"
    assert board.serial in str(info.value)
    assert board.errors() == [(-221, info.value.message)]


def test_dac_beyond_the_limit_is_refused_and_nothing_changes(
    bench: SimulatedBench, board: CrossbarBoard
) -> None:
    board.zero_dacs()
    with pytest.raises(InstrumentError, match="beyond the limit"):
        board.set_dac(0, 0.6)
    with bench.lock:
        assert bench.model.dac_voltages_V[0] == 0.0


def test_branch_conductance_matches_what_the_port_presents(
    bench: SimulatedBench, board: CrossbarBoard, smu: SourceMeter
) -> None:
    board.set_cell_mask(2, 3, 0b1)
    board.route_cell(2, 3)
    with bench.lock:
        port = bench.model.smu_port()
    smu.configure_voltage_source(1.0, 1e-3)
    smu.configure_measurement(nplc=1.0)
    with smu.output_on():
        reading = smu.measure()
    assert not reading.limit_tripped
    assert reading.instrument == smu.label
    tolerance = conductance_tolerance(reading.current_A, reading.voltage_V, reading.current_range_A)
    assert reading.conductance_S == pytest.approx(port.g_S, rel=tolerance)
    assert reading.resistance_ohm == pytest.approx(1 / port.g_S, rel=tolerance)
    board.safe()


def test_parallel_branches_and_four_wire(
    bench: SimulatedBench, board: CrossbarBoard, smu: SourceMeter
) -> None:
    board.set_cell_mask(4, 1, 0b1011)
    board.route_cell(4, 1, four_wire=True)
    with bench.lock:
        port = bench.model.smu_port()
    smu.configure_voltage_source(0.5, 1e-3)
    smu.configure_measurement(nplc=1.0, four_wire=True)
    with smu.output_on():
        reading = smu.measure()
    assert reading.four_wire
    # Remote sense regulates the sensed voltage, so I / V_sensed = g_S / sense_gain.
    tolerance = conductance_tolerance(reading.current_A, reading.voltage_V, reading.current_range_A)
    assert reading.conductance_S == pytest.approx(port.g_S / port.sense_gain, rel=tolerance)
    board.safe()


def test_buffered_readings(bench: SimulatedBench, board: CrossbarBoard, smu: SourceMeter) -> None:
    board.set_cell_mask(0, 5, 0b100)
    board.route_cell(0, 5)
    with bench.lock:
        port = bench.model.smu_port()
    smu.configure_voltage_source(1.0, 1e-3)
    smu.configure_measurement(nplc=0.1, current_range_A=1e-3)
    with smu.output_on():
        readings = smu.measure_many(5)
    assert len(readings) == 5
    times = [r.timestamp_s for r in readings]
    assert times == sorted(times) and times[-1] > times[0]
    for r in readings:
        assert r.current_range_A == 1e-3
        assert r.nplc == 0.1
        # At 0.1 PLC the noise grows as NPLC**-0.67 (about 4.7x the 1 PLC noise), still
        # well inside the 1 mA range's 60 nA offset term at ~100 uA.
        tol = conductance_tolerance(r.current_A, r.voltage_V, r.current_range_A)
        assert r.conductance_S == pytest.approx(port.g_S, rel=tol)
    board.safe()


def test_compliance_trips_and_is_reported(board: CrossbarBoard, smu: SourceMeter) -> None:
    board.set_cell_mask(3, 3, 0xFF)
    board.route_cell(3, 3)
    smu.configure_voltage_source(1.0, 1e-5)  # the bank draws far more than 10 uA at 1 V
    smu.configure_measurement(nplc=1.0)
    with smu.output_on():
        reading = smu.measure()
    assert reading.limit_tripped
    gain, offset = CURRENT_ACCURACY[reading.current_range_A]
    assert reading.current_A == pytest.approx(1e-5, abs=NOISE_MARGIN * (gain * 1e-5 + offset))
    assert reading.voltage_V < 1.0
    board.safe()


def test_overflow_on_a_fixed_range_is_nan_with_a_warning(
    board: CrossbarBoard, smu: SourceMeter
) -> None:
    board.set_cell_mask(1, 1, 0b1)
    board.route_cell(1, 1)
    smu.configure_voltage_source(0.1, 1e-3)
    smu.configure_measurement(nplc=1.0, current_range_A=1e-6)  # ~10 uA flows
    with smu.output_on(), pytest.warns(RuntimeWarning, match="current overflowed"):
        reading = smu.measure()
    assert math.isnan(reading.current_A)
    board.safe()


def test_error_queue_of_the_real_protocol(smu: SourceMeter) -> None:
    assert isinstance(smu, Keithley2450)
    smu.write(":SOUR:FOO 1")
    with pytest.raises(InstrumentCommandError) as info:
        smu.check_errors(":SOUR:FOO 1")
    assert info.value.code == -113
    assert info.value.command == ":SOUR:FOO 1"
    smu.check_errors()  # drained


def test_limits_refused_before_anything_reaches_the_smu(smu: SourceMeter) -> None:
    assert isinstance(smu, Keithley2450)
    smu.configure_voltage_source(0.2, 1e-3)
    with pytest.raises(InstrumentError, match="safety limit"):
        smu.configure_voltage_source(1.5, 1e-3)
    with pytest.raises(InstrumentError, match="safety limit"):
        smu.set_voltage(-1.01)
    assert smu.source_voltage_V == pytest.approx(0.2)
    assert smu.current_limit_A == pytest.approx(1e-3)


def test_shutdown_leaves_the_output_off(smu: SourceMeter) -> None:
    assert isinstance(smu, Keithley2450)
    smu.configure_voltage_source(0.3, 1e-3)
    smu.enable_output()
    assert smu.output_state
    smu.shutdown()
    assert not smu.output_state
    assert smu.source_voltage_V == 0.0


def test_second_host_gets_busy_error(bench: SimulatedBench, board: CrossbarBoard) -> None:
    with pytest.raises(BoardError, match="busy") as info:
        CrossbarBoard(bench.board_url, timeout_s=1.0)
    assert info.value.code == -200
    assert board.is_safe() in {True, False}  # the first host is undisturbed


def test_board_address_given_as_smu(bench: SimulatedBench) -> None:
    resource = f"TCPIP0::127.0.0.1::{bench.board_port}::SOCKET"
    with pytest.raises(InstrumentIdentityError) as info:
        open_smu("keithley2450", resource, LIMITS, timeout_s=2.0)
    assert resource in str(info.value)
    assert "LABRSS,XBAR" in str(info.value)
    bench.wait_until_idle()


def test_smu_address_given_as_board(bench: SimulatedBench) -> None:
    with pytest.raises(BoardIdentityError) as info:
        CrossbarBoard(f"socket://127.0.0.1:{bench.smu_port}", timeout_s=2.0)
    assert "KEITHLEY" in str(info.value)
    bench.wait_until_idle()


def test_smu_answering_a_different_model(bench: SimulatedBench) -> None:
    with pytest.raises(InstrumentIdentityError, match="MODEL 2450"):
        open_smu("keysight_b2900", bench.smu_resource, LIMITS, timeout_s=2.0)
    bench.wait_until_idle()


def test_2400_emulation_mode_is_refused() -> None:
    with SimulatedBench("small", seed=5) as bench:
        smu = open_smu("keithley2450", bench.smu_resource, LIMITS)
        assert isinstance(smu, Keithley2450)
        smu.write("*LANG SCPI2400")
        smu.close()
        bench.wait_until_idle()
        with bench.lock:
            bench.smu.power_cycle()
        with pytest.raises(InstrumentModeError, match="Command Set > SCPI"):
            open_smu("keithley2450", bench.smu_resource, LIMITS)


def test_bench_disconnecting_mid_run() -> None:
    bench = SimulatedBench("small", seed=6).start()
    try:
        board = CrossbarBoard(bench.board_url, timeout_s=0.5, retries=2)
        smu = open_smu("keithley2450", bench.smu_resource, LIMITS, timeout_s=0.5)
        board.set_cell_mask(0, 0, 1)
        smu.configure_voltage_source(0.1, 1e-3)
    finally:
        bench.stop()  # the server side closes both connections
    with pytest.raises(BoardError) as info:
        board.set_cell_mask(0, 1, 1)
    assert info.value.command == "SW:CELL 0,1,01"
    assert "giving up after 3 attempts" in str(info.value)
    with pytest.raises(InstrumentError) as smu_info:
        smu.set_voltage(0.2)
    assert "Keithley 2450" in str(smu_info.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        smu.shutdown()  # never raises on a dead link
        board.close()  # goes safe best effort, never raises
    smu.close()


# ---------------------------------------------------------------- Keysight B2902A bench
# B2901A/B2902A datasheet (B2900A series, 1 PLC, 23 +- 5 degC): current accuracy (gain,
# offset A) per range and voltage accuracy on the 2 V range.
B2900_CURRENT_ACCURACY = {
    1e-7: (6e-4, 100e-12),
    1e-6: (2.5e-4, 500e-12),
    1e-5: (2.5e-4, 1.5e-9),
    1e-4: (2e-4, 25e-9),
    1e-3: (2e-4, 200e-9),
}
B2900_VOLTAGE_ACCURACY_2V = (2e-4, 350e-6)


@pytest.fixture(scope="module")
def keysight_bench() -> Iterator[SimulatedBench]:
    with SimulatedBench("small", seed=2, smu_model="B2902A") as simulated:
        yield simulated


@pytest.mark.parametrize("channel", [1, 2])
def test_b2902a_channels_end_to_end(keysight_bench: SimulatedBench, channel: int) -> None:
    """Channel 1 is wired to the board's SMU port, channel 2 to nothing (open circuit)."""
    bench = keysight_bench
    board = CrossbarBoard(bench.board_url)
    smu = open_smu("keysight_b2900", bench.smu_resource, LIMITS, channel=channel)
    try:
        assert smu.model == "B2902A"
        board.set_cell_mask(2, 3, 0b1)
        board.route_cell(2, 3)
        with bench.lock:
            port = bench.model.smu_port()
        smu.configure_voltage_source(1.0, 1e-3)
        smu.configure_measurement(nplc=1.0)
        with smu.output_on():
            reading = smu.measure()
            burst = smu.measure_many(3)
        gain_i, offset_i = B2900_CURRENT_ACCURACY[reading.current_range_A]
        if channel == 1:
            gain_v, offset_v = B2900_VOLTAGE_ACCURACY_2V
            relative = gain_i + offset_i / reading.current_A + gain_v + offset_v / reading.voltage_V
            assert reading.conductance_S == pytest.approx(port.g_S, rel=NOISE_MARGIN * relative)
        else:
            assert abs(reading.current_A) <= NOISE_MARGIN * offset_i
        assert len(burst) == 3
        assert all(not r.limit_tripped for r in burst)
        assert [r.timestamp_s for r in burst] == sorted(r.timestamp_s for r in burst)
    finally:
        smu.shutdown()
        smu.close()
        board.close()
        bench.wait_until_idle()
