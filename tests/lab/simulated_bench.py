"""Helpers for Lab tests on a simulated bench: stations, bench state, a second look."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyvisa
import serial

from labrss.station import Station, parse_station
from simulator.bench import SimulatedBench


def station_for(bench: SimulatedBench, **sections: dict[str, Any]) -> Station:
    """A station whose addresses are the bench's: exactly how a hardware station looks."""
    data: dict[str, dict[str, Any]] = {
        "smu": {"address": bench.smu_resource},
        "board": {"address": bench.board_url},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_station(data, source="test-station.toml")


@dataclass(frozen=True)
class BenchState:
    """The simulated bench's state, read from the model (ground truth side)."""

    board_safe: bool
    switches_closed: int
    routing: str
    dacs_zero: bool
    smu_output_on: bool

    @property
    def safe(self) -> bool:
        return (
            self.board_safe
            and self.switches_closed == 0
            and self.routing == "open"
            and self.dacs_zero
            and not self.smu_output_on
        )


def bench_state(bench: SimulatedBench) -> BenchState:
    with bench.lock:
        return BenchState(
            board_safe=bench.model.is_safe(),
            switches_closed=int(bench.model.switches.sum()),
            routing=bench.model.routing.mode,
            dacs_zero=not np.any(bench.model.dac_voltages_V),
            smu_output_on=bool(bench.smu.output_on),
        )


def second_look(bench: SimulatedBench) -> tuple[str, str, str]:
    """Ask the instruments themselves, as a second host: (SAFE?, SW:COUN?, :OUTP?)."""
    assert bench.wait_until_idle(), "Lab did not release the instruments"
    with serial.serial_for_url(bench.board_url, timeout=2.0) as port:
        port.write(b"SAFE?\n")
        safe = port.readline().decode().strip()
        port.write(b"SW:COUN?\n")
        count = port.readline().decode().strip()
    rm = pyvisa.ResourceManager("@py")
    smu = rm.open_resource(bench.smu_resource, read_termination="\n", write_termination="\n")
    try:
        output = str(smu.query(":OUTP?")).strip()  # type: ignore[attr-defined]
    finally:
        smu.close()
    assert bench.wait_until_idle()
    return safe, count, output
