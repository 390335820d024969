"""labrss's conformance suite (labrss.conformance) on every built-in board driver."""

from __future__ import annotations

from labrss.conformance import BoardConformance, simulated_station
from labrss.lab import Lab
from labrss.station import Station
from labrss.workflows.selftest import run_selftest
from simulator.keysight34980a_emulator import Keysight34980AEmulator


class TestCrossbarResistor(BoardConformance):
    """The crossbar board protocol on the small resistor board, Keithley 2450."""

    @classmethod
    def station(cls) -> Station:
        return simulated_station("crossbar", board="small", seed=11)


class TestCrossbarMemristor(BoardConformance):
    """The crossbar board protocol on the memristor board (pulses), Keysight B2902A."""

    @classmethod
    def station(cls) -> Station:
        return simulated_station(
            "crossbar", board="memristor", seed=12, smu={"driver": "keysight_b2900"}
        )


class TestSwitchMatrix(BoardConformance):
    """The Keysight 34980A matrix driver on the simulated switch-matrix bench."""

    @classmethod
    def station(cls) -> Station:
        return simulated_station(
            "keysight34980a", board="switch-matrix", seed=13, simulator={"bench": "switch-matrix"}
        )


def test_the_matrix_driver_never_makes_before_it_breaks() -> None:
    """Protocol level: after every command that moved a relay, the emulator's record of what
    the SMU port was connected to shows one cell or nothing: never two cells, never a line
    on two buses (a short), never a half-guarded topology, through the whole self-test."""
    station = TestSwitchMatrix.station()
    with Lab(station) as lab:
        run_selftest(lab, None, nplc=0.1)
        for r, c in ((0, 0), (3, 3), (0, 3), (3, 0), (1, 2)):  # every kind of change
            lab.measure_branch(r, c, 0, nplc=0.01)
        assert lab.simulator is not None
        emulator = lab.simulator.board
        assert isinstance(emulator, Keysight34980AEmulator)
        log = list(emulator.topology_log)
        assert emulator.unmodelled_states == 0
    assert len(log) > 50
    bad = [t for t in log if not (t == "open" or (t.startswith("cells (") and t.count("(") == 1))]
    assert not bad, bad[:5]  # a close-before-open driver fails here (checked on purpose)
