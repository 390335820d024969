"""Fixtures for Lab tests: a simulated bench reached through its addresses (the hardware path)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labrss.lab import Lab
from simulator.bench import SimulatedBench
from tests.lab.simulated_bench import BenchState, bench_state

BENCH_SEED = 3


@pytest.fixture
def bench() -> Iterator[SimulatedBench]:
    """A small (8x8x8) simulated bench, seed 3, no realtime pacing, on ephemeral ports."""
    with SimulatedBench("small", seed=BENCH_SEED) as b:
        yield b


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
