"""The B2900's source output values: FIXed level, staircase SWEep and LIST, per channel.

Follows the SOURce subsystem of the B2900 SCPI Command Reference (B2910-90030, 4-93 to
4-109): each source function (VOLT, CURR) has its mode, triggered level, start, stop and
step and list; the number of sweep points is one setting per channel
(``:SOUR:SWE:POIN`` and ``:SOUR:<f>:POIN`` are the same). The couplings are the manual's:

* ``start = center - span/2``, ``stop = center + span/2`` (the last command wins);
* ``step = span / (points - 1)`` (``points = 1`` sets step 0); changing points or span
  keeps the other and recomputes step; changing step keeps span and sets
  ``points = floor(span / step) + 1``; step and span must have the same sign;
* the sweep runs from start to ``start + step (points - 1)`` even when that is not stop
  (DOWN: from stop to ``stop - step (points - 1)``); LOG spacing ignores step;
* ``:SOUR:SWE:STA DOUB`` sweeps there and back (2 x points steps, the turning point twice).

Pure functions and a dataclass, no I/O; O(points) to build a sweep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from simulator.scpi import ScpiError

MAX_POINTS = 2500
"""Sweep points and list length limit (B2900 SCPI Command Reference, Edition 2)."""
FUNCTIONS = ("VOLT", "CURR")


@dataclass
class SourceProgram:
    """Everything the TRANsient action of one channel outputs, per source function."""

    mode: dict[str, str] = field(default_factory=lambda: {"VOLT": "FIX", "CURR": "FIX"})
    triggered: dict[str, float] = field(default_factory=lambda: {"VOLT": 0.0, "CURR": 0.0})
    start: dict[str, float] = field(default_factory=lambda: {"VOLT": 0.0, "CURR": 0.0})
    stop: dict[str, float] = field(default_factory=lambda: {"VOLT": 0.0, "CURR": 0.0})
    step: dict[str, float] = field(default_factory=lambda: {"VOLT": 0.0, "CURR": 0.0})
    points: int = 1
    spacing: str = "LIN"
    stair: str = "SING"
    direction: str = "UP"
    ranging: str = "BEST"
    lists: dict[str, list[float]] = field(default_factory=lambda: {"VOLT": [0.0], "CURR": [0.0]})

    # ------------------------------------------------------------------ couplings
    def set_start_stop(self, fn: str, start: float, stop: float) -> None:
        """New start and stop (also via center/span): points kept, step recomputed."""
        self.start[fn], self.stop[fn] = start, stop
        self.step[fn] = self._step_for(fn, self.points)

    def set_points(self, points: int) -> None:
        """New point count for both functions: span kept, step recomputed."""
        self.points = points
        for fn in FUNCTIONS:
            self.step[fn] = self._step_for(fn, points)

    def set_step(self, fn: str, step: float, where: str) -> None:
        """New step: span kept, points = floor(span / step) + 1 (the manual's coupling)."""
        span = self.stop[fn] - self.start[fn]
        if step == 0.0:
            raise ScpiError(-222, f"{where}: step 0 (use points 1 for a single step)")
        if span != 0.0 and math.copysign(1.0, span) != math.copysign(1.0, step):
            raise ScpiError(
                -221, f"{where}: step {step:g} and span {span:g} have different polarity"
            )
        points = math.floor(abs(span / step) * (1 + 1e-12)) + 1
        if points > MAX_POINTS:
            raise ScpiError(
                -222, f"{where}: step {step:g} makes {points} points (at most {MAX_POINTS})"
            )
        self.points = points
        self.step[fn] = step
        other = "CURR" if fn == "VOLT" else "VOLT"
        self.step[other] = self._step_for(other, points)

    def _step_for(self, fn: str, points: int) -> float:
        return 0.0 if points == 1 else (self.stop[fn] - self.start[fn]) / (points - 1)

    def center(self, fn: str) -> float:
        """(start + stop) / 2."""
        return (self.start[fn] + self.stop[fn]) / 2

    def span(self, fn: str) -> float:
        """stop - start."""
        return self.stop[fn] - self.start[fn]

    # ------------------------------------------------------------------ values
    def values(self, fn: str, where: str) -> list[float]:
        """The levels the TRANsient action outputs, one per trigger, for function ``fn``."""
        mode = self.mode[fn]
        if mode == "FIX":
            return [self.triggered[fn]]
        if mode == "LIST":
            return list(self.lists[fn])
        return self.sweep(fn, where)

    def sweep(self, fn: str, where: str) -> list[float]:
        """The staircase sweep's levels (LIN or LOG, UP or DOWN, SINGle or DOUBle)."""
        n = self.points
        start, stop = self.start[fn], self.stop[fn]
        if self.spacing == "LOG":
            if n > 1 and (start == 0.0 or stop == 0.0 or (start > 0) != (stop > 0)):
                raise ScpiError(
                    -221,
                    f"{where}: a LOG sweep needs start and stop of the same sign, not 0 "
                    f"(start {start:g}, stop {stop:g})",
                )
            if n == 1:
                levels = [start]
            else:
                sign = 1.0 if start > 0 else -1.0
                levels = list(sign * np.geomspace(abs(start), abs(stop), n))
            if self.direction == "DOWN":
                levels.reverse()
        else:
            step = self.step[fn]
            if self.direction == "DOWN":
                levels = [stop - k * step for k in range(n)]
            else:
                levels = [start + k * step for k in range(n)]
        if self.stair == "DOUB":
            levels = levels + levels[::-1]
        return [float(v) for v in levels]
