"""Fixtures for Lab tests: a simulated bench reached through its addresses (the hardware path)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import pyvisa
import serial

from labrss.lab import Lab
from labrss.station import Station, parse_station
from simulator.bench import SimulatedBench

BENCH_SEED = 3


@pytest.fixture
def bench() -> Iterator[SimulatedBench]:
    """A small (8x8x8) simulated bench, seed 3, no realtime pacing, on ephemeral ports."""
    with SimulatedBench("small", seed=BENCH_SEED) as b:
        yield b


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


@pytest.fixture
def state_at_disconnect(monkeypatch: pytest.MonkeyPatch, bench: SimulatedBench) -> list[BenchState]:
    """The bench state at the moment each Lab lets go of its instruments.

    The board goes safe on link loss by itself, so what Lab did must be seen before it
    disconnects: this records the model state when `Lab._disconnect` is entered.
    """
    states: list[BenchState] = []
    original = Lab._disconnect

    def spy(lab: Lab) -> None:
        states.append(bench_state(bench))
        original(lab)

    monkeypatch.setattr(Lab, "_disconnect", spy)
    return states


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
