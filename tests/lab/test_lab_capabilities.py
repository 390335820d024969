"""`Lab` codes against the board interface: capabilities, up-front refusals, settling."""

from __future__ import annotations

import pytest

from drivers.board import Capability, MissingCapabilityError
from labrss.lab import Lab
from labrss.memristor import WriteVerifySettings
from labrss.station import parse_station
from labrss.workflows.drift import drift_study
from labrss.workflows.write_verify import write_verify
from simulator.bench import SimulatedBench
from tests.lab.simulated_bench import bench_state, station_for


def test_lab_reports_the_boards_capabilities_and_drivers(bench: SimulatedBench) -> None:
    with Lab(station_for(bench)) as lab:
        assert lab.capabilities == lab.board.capabilities
        assert Capability.PULSES not in lab.capabilities  # the small board holds resistors
        assert lab.board.mvm_mode == "analog"
        described = lab.describe()
        assert described["drivers"] == {"board": "crossbar", "smu": "keithley2450"}
        assert "dacs" in described["capabilities"] and "pulses" not in described["capabilities"]
        lab.require(Capability.DACS, Capability.ADCS, needed_by="an analog MVM")


def test_workflows_refuse_up_front_naming_the_missing_capability(bench: SimulatedBench) -> None:
    """Memristor workflows on a resistor board: refused before anything is switched."""
    with Lab(station_for(bench)) as lab:
        with pytest.raises(MissingCapabilityError) as exc:
            write_verify(lab, [(0, 0, 0)], [1e-5], WriteVerifySettings())
        assert "write-verify needs 'pulses' (a memristor pulse circuit)" in str(exc.value)
        assert str(exc.value).startswith("crossbar board SIM-3 at socket://")
        with pytest.raises(MissingCapabilityError, match="drift_study needs 'pulses'"):
            drift_study(lab, [(0, 0)], [1e-5])
        with pytest.raises(MissingCapabilityError, match="pulse_branch needs 'pulses'"):
            lab.pulse_branch(0, 0, 0, 1.0, 1e-4)
        assert lab.readings_taken == 0
        assert bench_state(bench).safe


def test_a_four_wire_station_on_a_bench_without_4_wire_is_refused(bench: SimulatedBench) -> None:
    station = station_for(bench, measurement={"four_wire": True})
    with Lab(station) as lab:
        lab.require_reads(needed_by="calibration")  # the crossbar board has 4-wire
        lab.board.capabilities = lab.board.capabilities - {Capability.FOUR_WIRE}
        with pytest.raises(MissingCapabilityError, match=r"calibration with \[measurement\]"):
            lab.require_reads(needed_by="calibration")
        with pytest.raises(MissingCapabilityError, match="a 4-wire cell read needs '4-wire'"):
            lab.measure_branch(0, 0, 0)
        assert lab.readings_taken == 0
        lab.measure_branch(0, 0, 0, four_wire=False)


def test_lab_waits_the_boards_settling_time_after_a_change() -> None:
    """A bench declaring settle_time_s gets that much (virtual) time after every switch or
    routing change before a reading, and none between readings of an unchanged setup."""

    def read_times(lab: Lab) -> tuple[float, float]:
        lab.measure_branch(0, 0, 1, nplc=0.01)
        t0 = lab.clock_s()
        lab.measure_branch(0, 0, 2, nplc=0.01)  # a new mask
        t1 = lab.clock_s()
        lab.measure_cell(0, 0, nplc=0.01)  # nothing changed
        return t1 - t0, lab.clock_s() - t1

    with Lab(parse_station({"simulator": {"board": "small", "seed": 3}})) as lab:
        changed0, unchanged0 = read_times(lab)
        lab.board.settle_time_s = 0.25
        changed, unchanged = read_times(lab)
    # virtual time: the same operations, plus exactly the declared wait
    assert changed == pytest.approx(changed0 + 0.25, abs=1e-9)
    assert unchanged == pytest.approx(unchanged0, abs=1e-9)


def test_an_unknown_board_driver_in_a_station_is_named() -> None:
    with pytest.raises(ValueError, match=r"\[board\] driver = 'acme'.*installed: crossbar"):
        parse_station({"board": {"driver": "acme"}})
