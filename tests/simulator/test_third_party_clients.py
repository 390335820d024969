"""Clients nobody here wrote: PyMeasure's Keithley2450 and Keithley2400 drivers, unchanged,
against the simulated bench over real sockets (pyvisa-py), plus labrss's own 2400 driver.

The bench routes one cell of the board to the SMU; the values the clients return must be
the physics of that routed element: I = V * g_S of the port the board presents (ground
truth, read here only to check), within the instrument's datasheet accuracy.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymeasure.instruments.keithley import Keithley2400 as PyMeasure2400
from pymeasure.instruments.keithley import Keithley2450 as PyMeasure2450

from drivers.crossbar_board import CrossbarBoard
from drivers.keithley2400 import Keithley2400
from drivers.smu import SafetyLimits, open_smu
from simulator.bench import SimulatedBench

LIMITS = SafetyLimits(max_voltage_V=1.0, max_current_A=0.01)
VISA = {"visa_library": "@py", "read_termination": "\n", "write_termination": "\n"}


def _routed_bench(smu_model: str, seed: int) -> Iterator[tuple[SimulatedBench, float]]:
    with SimulatedBench("small", seed=seed, smu_model=smu_model) as bench:
        board = CrossbarBoard(bench.board_url, timeout_s=2.0, max_dac_voltage_V=0.5)
        board.set_cell_mask(1, 2, 0b11)
        board.route_cell(1, 2)
        with bench.lock:
            g_S = bench.model.smu_port().g_S
        yield bench, g_S
        board.close()


@pytest.fixture(scope="module")
def bench_2450() -> Iterator[tuple[SimulatedBench, float]]:
    yield from _routed_bench("2450", 31)


@pytest.fixture(scope="module")
def bench_2400() -> Iterator[tuple[SimulatedBench, float]]:
    yield from _routed_bench("2400", 32)


def test_pymeasure_keithley2450_measures_the_routed_cell(
    bench_2450: tuple[SimulatedBench, float],
) -> None:
    bench, g_S = bench_2450
    smu = PyMeasure2450(bench.smu_resource, **VISA)
    try:
        smu.reset()
        smu.apply_voltage(compliance_current=0.01)
        smu.measure_current(nplc=1)
        smu.source_voltage = 0.5
        smu.enable_source()
        current = smu.current
        # 1 mA range: 0.02 % + 60 nA; 2 V source 0.02 % + 300 uV (SPEC-2450).
        assert current == pytest.approx(0.5 * g_S, rel=2e-4 + 3e-4 / 0.5 + 60e-9 / current)
        # The averaging filter and the buffer statistics, through PyMeasure's properties.
        smu.current_filter_type = "REP"
        smu.current_filter_count = 5
        smu.current_filter_state = "ON"
        assert smu.current_filter_count == 5
        assert smu.current_filter_state == 1
        for _ in range(3):
            _ = smu.current
        assert smu.means == pytest.approx(0.5 * g_S, rel=1e-3)
        assert smu.buffer_points == 100000
        smu.trigger()  # *TRG
        smu.shutdown()
        assert smu.ask(":OUTP?").strip() != "1"
        assert smu.next_error[0] == 0
    finally:
        smu.adapter.close()
        bench.wait_until_idle()


def test_pymeasure_keithley2400_buffer_sweep_and_statistics(
    bench_2400: tuple[SimulatedBench, float],
) -> None:
    bench, g_S = bench_2400
    smu = PyMeasure2400(bench.smu_resource, **VISA)
    try:
        smu.reset()
        smu.reset_data_format()
        smu.apply_voltage(compliance_current=0.01)
        smu.measure_current(nplc=1, current=1e-3, auto_range=False)
        smu.source_voltage = 0.5
        smu.enable_source()
        current = smu.current
        # 1 mA range: 0.027 % + 60 nA; 2 V source 0.02 % + 600 uV (SPEC-2400).
        tolerance = 2.7e-4 + 60e-9 / current + 2e-4 + 6e-4 / 0.5
        assert current == pytest.approx(0.5 * g_S, rel=tolerance)
        smu.config_buffer(points=8)
        smu.start_buffer()
        smu.wait_for_buffer(timeout=10, interval=0.01)
        data = smu.buffer_data
        assert len(data) == 8 * 5
        assert smu.mean_current == pytest.approx(0.5 * g_S, rel=tolerance)
        assert smu.std_current < 1e-7
        values = smu.measure_all()
        assert values["current"] == pytest.approx(0.5 * g_S, rel=tolerance)
        assert values["resistance"] == pytest.approx(1 / g_S, rel=2 * tolerance)
        smu.shutdown()
        assert smu.source_enabled is False
        assert smu.next_error[0] == 0
    finally:
        smu.adapter.close()
        bench.wait_until_idle()


def test_labrss_2400_driver_on_the_simulated_2400(
    bench_2400: tuple[SimulatedBench, float],
) -> None:
    bench, g_S = bench_2400
    with open_smu("keithley2400", bench.smu_resource, LIMITS, timeout_s=5.0) as smu:
        assert isinstance(smu, Keithley2400)
        smu.configure_voltage_source(0.5, 5e-3)
        smu.configure_measurement(nplc=1.0, current_range_A=1e-3)
        with smu.output_on():
            reading = smu.measure()
            burst = smu.measure_many(4)
        tolerance = 2.7e-4 + 60e-9 / reading.current_A + 1.2e-4 + 3e-4 / 0.5
        assert reading.conductance_S == pytest.approx(g_S, rel=tolerance)
        assert not reading.limit_tripped
        assert [r.conductance_S for r in burst] == pytest.approx([g_S] * 4, rel=tolerance)
    bench.wait_until_idle()


def test_labrss_2400_driver_on_a_2450_in_scpi2400_mode() -> None:
    with SimulatedBench("small", seed=33) as bench:
        with bench.lock:
            bench.smu.handle_line("*LANG SCPI2400")
            bench.smu.power_cycle()  # type: ignore[union-attr]
        with open_smu("keithley2400", bench.smu_resource, LIMITS, timeout_s=5.0) as smu:
            assert smu.model == "2450"
            smu.configure_voltage_source(0.1, 1e-3)
            smu.configure_measurement(nplc=0.1)
            with smu.output_on():
                reading = smu.measure()
            assert reading.voltage_V == pytest.approx(0.1, abs=1e-3)
        bench.wait_until_idle()
