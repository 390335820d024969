"""labrss's conformance suite (labrss.conformance) on every built-in board driver."""

from __future__ import annotations

from labrss.conformance import BoardConformance, simulated_station
from labrss.station import Station


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
