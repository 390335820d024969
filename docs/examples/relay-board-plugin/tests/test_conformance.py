"""labrss's conformance suite run against the relay board's emulator (no hardware needed).

pytest tests/          # from the plug-in's directory, with the plug-in installed
"""

from __future__ import annotations

from labrss.conformance import BoardConformance, simulated_station
from labrss.station import Station


class TestRelayBoard(BoardConformance):
    """Every conformance test, on the embedded simulator's board behind this driver's
    emulator (the driver's ``simulator = "labrss_relayboard.emulator:RelayBoardProtocol"``)."""

    @classmethod
    def station(cls) -> Station:
        return simulated_station("relayboard", board="small", seed=7)
