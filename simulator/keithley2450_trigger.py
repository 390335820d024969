"""The Keithley 2450 trigger model: building blocks, predefined models and sweep levels.

Reference Manual 2450-901-01, section 3 "Trigger model" and the ``:TRIGger:BLOCk:...``,
``:TRIGger:LOAD`` and ``:SOURce:SWEep:...`` pages. The emulator
(`simulator.keithley2450_emulator`) executes the blocks; this module holds what they are:

* `Block`: one building block (its kind and parameters), listed by ``:TRIG:BLOC:LIST?``;
* `sweep_blocks`: the trigger model a ``:SOUR:SWE:...`` command builds (the manual's sweep
  model: clear the buffer, recall the first point of the sweep's source list, output on,
  delay, measure, next point, branch back ``points`` times, branch back ``count`` times,
  output off);
* `simple_loop_blocks`, `duration_loop_blocks`: the predefined models;
* `linear_levels`, `step_levels`, `log_levels`: the source levels of each sweep kind.

Pure data and arithmetic; no I/O. O(points) per sweep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

SWEEP_LIST = "sweep"
"""Name of the internal source configuration list a sweep command creates."""
MAX_BLOCKS = 63
"""Highest block number (the 2450 accepts blocks 1..63)."""


@dataclass(frozen=True)
class SweepPoint:
    """One point of a source configuration list: the source level and its source delay."""

    level: float
    delay_s: float | None
    """Delay before the measurement (s); None is the source auto delay."""


@dataclass
class SourceList:
    """A source configuration list (what a sweep command stores): one function, points."""

    function: str
    points: list[SweepPoint]
    range_mode: str = "BEST"
    fail_abort: bool = True


@dataclass(frozen=True)
class Block:
    """One trigger-model building block.

    ``kind`` is the 2450's block name (``BUFFER_CLEAR``, ``MEASURE``, ``DELAY_CONSTANT``,
    ``DELAY_DYNAMIC``, ``BRANCH_ALWAYS``, ``BRANCH_COUNTER``, ``BRANCH_COUNTER_RESET``,
    ``BRANCH_ONCE``, ``BRANCH_ONCE_EXCLUDED``, ``SOURCE_OUTPUT``, ``CONFIG_RECALL``,
    ``CONFIG_NEXT``, ``CONFIG_PREV``, ``WAIT``, ``NOTIFY``, ``NOP``) or ``DURATION`` (the
    emulator's form of the Duration Loop's background measurement).
    """

    kind: str
    buffer: str = "defbuffer1"
    count: int | None = 1
    """MEASURE: readings (None: infinite); BRANCH_COUNTER: target count."""
    time_s: float = 0.0
    target: int = 0
    """Branch destination block, or the counter block of BRANCH_COUNTER_RESET."""
    state: bool = False
    """SOURCE_OUTPUT on/off; WAIT: clear detected events on entering."""
    name: str = ""
    """DELAY_DYNAMIC user delay (M1..M5, S1..S5); CONFIG_*: list name; WAIT: event."""
    index: int = 1
    extra: dict[str, float] = field(default_factory=dict)

    def describe(self, number: int) -> str:
        """``<n>) <KIND> <parameters>``, as the front panel lists the model."""
        kind = self.kind
        if kind == "BUFFER_CLEAR":
            text = f"BUFFER: {self.buffer}"
        elif kind == "MEASURE":
            text = f"BUFFER: {self.buffer} COUNT: {'INF' if self.count is None else self.count}"
        elif kind == "DELAY_CONSTANT":
            text = f"DELAY: {self.time_s:.9f}"
        elif kind == "DELAY_DYNAMIC":
            text = f"USER: {self.name}"
        elif kind in ("BRANCH_ALWAYS", "BRANCH_ONCE", "BRANCH_ONCE_EXCLUDED"):
            text = f"BRANCH_BLOCK: {self.target}"
        elif kind == "BRANCH_COUNTER":
            text = f"VALUE: {self.count} BRANCH_BLOCK: {self.target}"
        elif kind == "BRANCH_COUNTER_RESET":
            text = f"COUNTER: {self.target}"
        elif kind == "SOURCE_OUTPUT":
            text = f"OUTPUT: {'ON' if self.state else 'OFF'}"
        elif kind == "CONFIG_RECALL":
            text = f"SOURCE: {self.name} INDEX: {self.index}"
        elif kind in ("CONFIG_NEXT", "CONFIG_PREV"):
            text = f"SOURCE: {self.name}"
        elif kind == "WAIT":
            text = f"EVENT: {self.name} CLEAR: {'ENTER' if self.state else 'NEVER'}"
        elif kind == "NOTIFY":
            text = f"EVENT: NOTIFY{self.index}"
        elif kind == "DURATION":
            text = f"BUFFER: {self.buffer} DURATION: {self.time_s:.9f}"
        else:
            text = ""
        return f"{number}) {kind} {text}".rstrip()


def sweep_blocks(points: int, count: int, delay_s: float | None, buffer: str) -> dict[int, Block]:
    """The trigger model a sweep command builds (count 0: repeat until ``:ABOR``).

    The delay of each point lives in the source list (the source delay of the point), so
    the model's delay block is the source list's; here it is part of each point.
    """
    blocks = {
        1: Block("BUFFER_CLEAR", buffer=buffer),
        2: Block("CONFIG_RECALL", name=SWEEP_LIST, index=1),
        3: Block("SOURCE_OUTPUT", state=True),
        4: Block("DELAY_DYNAMIC", name="S1", time_s=-1.0 if delay_s is None else delay_s),
        5: Block("MEASURE", buffer=buffer, count=1),
        6: Block("CONFIG_NEXT", name=SWEEP_LIST),
        7: Block("BRANCH_COUNTER", count=points, target=4),
    }
    if count == 0:
        blocks[8] = Block("BRANCH_ALWAYS", target=2)
    else:
        blocks[8] = Block("BRANCH_COUNTER", count=count, target=2)
    blocks[9] = Block("SOURCE_OUTPUT", state=False)
    return blocks


def simple_loop_blocks(count: int, delay_s: float, buffer: str) -> dict[int, Block]:
    """``:TRIG:LOAD "SimpleLoop", count, delay, "buffer"``: delay, measure, ``count`` times."""
    return {
        1: Block("DELAY_CONSTANT", time_s=delay_s),
        2: Block("MEASURE", buffer=buffer, count=1),
        3: Block("BRANCH_COUNTER", count=count, target=1),
    }


def duration_loop_blocks(duration_s: float, delay_s: float, buffer: str) -> dict[int, Block]:
    """``:TRIG:LOAD "DurationLoop", duration, delay, "buffer"``: output on, then readings
    (each after ``delay``) until ``duration`` has elapsed."""
    return {
        1: Block("SOURCE_OUTPUT", state=True),
        2: Block("DURATION", buffer=buffer, time_s=duration_s, extra={"delay_s": delay_s}),
    }


def linear_levels(start: float, stop: float, points: int) -> list[float]:
    """``:SOUR:SWE:<f>:LIN``: ``points`` equally spaced levels from start to stop."""
    return [float(x) for x in np.linspace(start, stop, points)]


def step_levels(start: float, stop: float, step: float) -> list[float]:
    """``:SOUR:SWE:<f>:LIN:STEP``: start, start +- step, ... up to stop (step > 0).

    Points = floor(|stop - start| / step) + 1 (the manual's formula); a rounding guard of
    1e-9 of a step keeps an exact multiple from losing its last point.
    """
    if not step > 0:
        raise ValueError("step must be > 0")
    n = math.floor(abs(stop - start) / step + 1e-9) + 1
    sign = 1.0 if stop >= start else -1.0
    return [start + sign * step * k for k in range(n)]


def log_levels(start: float, stop: float, points: int, asymptote: float = 0.0) -> list[float]:
    """``:SOUR:SWE:<f>:LOG``: levels equally spaced in log10(|level - asymptote|).

    Start and stop must lie on the same side of the asymptote and differ from it.
    """
    a, b = start - asymptote, stop - asymptote
    if a == 0 or b == 0 or (a > 0) != (b > 0):
        raise ValueError("start and stop must be on the same side of the asymptote")
    sign = 1.0 if a > 0 else -1.0
    exps = np.linspace(math.log10(abs(a)), math.log10(abs(b)), points)
    return [float(asymptote + sign * 10.0**e) for e in exps]
