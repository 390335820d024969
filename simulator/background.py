"""Overlapped instrument operations (trigger models, sweeps, ARM/TRIG layers) in instrument time.

A real SMU runs a started trigger model in the background: the host may send other commands
meanwhile, ``:TRIG:STAT?`` reports RUNNING, ``:ABOR`` stops it, ``*TRG`` releases a block
that waits for a bus trigger, and ``*WAI`` / ``*OPC?`` return when it ends. `BackgroundRun`
gives the emulators the same behaviour on the virtual clock, independently of the transport
(the same engine serves a socket, VXI-11 or a direct call).

The operation is a generator of steps: each step does one timed action (a reading, a delay)
on the instrument, advancing the virtual clock itself, and yields `TICK` with the number of
the block it executed; it yields `WAIT` when it needs a bus trigger. The emulator lets it
progress:

* before every host line, to the instrument time that passed since the previous line
  (the wall time between lines, at least `LINE_TIME_S`): a host that sleeps and polls sees
  readings arrive as it would on the instrument;
* to its end on ``*WAI`` / ``*OPC?`` (deterministic: the clock moves by exactly the steps'
  durations), which is what scripts that want reproducible data use.

Costs: O(1) per step plus the step's own work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Final

TICK: Final = "tick"
WAIT: Final = "wait"
LINE_TIME_S: Final = 1e-3
"""Instrument time (s) that passes at least per host line while an operation runs: the
command transfer and parsing time of a LAN instrument, so that a host polling in a tight loop
still sees the operation progress."""
MAX_IDLE_STEPS: Final = 100_000
"""Steps in a row that take no instrument time before the run is declared stuck (a trigger
model looping on branches only would hang a real instrument; the emulator fails it)."""

Step = tuple[str, int]
"""(TICK or WAIT, block number) yielded by an operation's generator."""


class BackgroundRun:
    """One started operation; states as the 2450 names them (IDLE, RUNNING, WAITING, ...).

    Args:
        steps: the operation's generator (see the module docstring).
        now_s: returns the instrument's present time (the virtual clock).
        open_ended: the operation never ends by itself (an infinite count, a loop until
            ``:ABOR``); ``*WAI`` / ``*OPC?`` cannot wait for it.
        on_error: called with an exception raised by a step (the run becomes FAILED).
        on_end: called once when the run ends (IDLE, ABORTED or FAILED).
    """

    def __init__(
        self,
        steps: Generator[Step, None, None],
        now_s: Callable[[], float],
        *,
        open_ended: bool,
        on_error: Callable[[Exception], None],
        on_end: Callable[[], None],
    ) -> None:
        self._steps = steps
        self._now_s = now_s
        self.open_ended = open_ended
        self._on_error = on_error
        self._on_end = on_end
        self.state = "RUNNING"
        self.block = 0
        self._last_wall_s = time.monotonic()

    @property
    def active(self) -> bool:
        """Running or waiting for a trigger (not yet ended)."""
        return self.state in ("RUNNING", "WAITING")

    def _step(self) -> None:
        try:
            kind, self.block = next(self._steps)
        except StopIteration:
            self._end("IDLE")
            return
        except Exception as exc:  # a step's instrument error: the model stops, error queued
            self._on_error(exc)
            self._end("FAILED")
            return
        if kind == WAIT:
            self.state = "WAITING"

    def _end(self, state: str) -> None:
        self.state = state
        self._on_end()

    def run_until(self, t_s: float) -> None:
        """Execute steps while running and the instrument time is before ``t_s``."""
        idle = 0
        while self.state == "RUNNING" and self._now_s() < t_s:
            before = self._now_s()
            self._step()
            idle = idle + 1 if self._now_s() == before else 0
            if idle > MAX_IDLE_STEPS:
                self._on_error(RuntimeError("operation stuck: no step takes instrument time"))
                self._end("FAILED")

    def progress(self) -> None:
        """Let the run progress by the wall time since the previous call (>= LINE_TIME_S)."""
        wall = time.monotonic()
        elapsed = max(wall - self._last_wall_s, LINE_TIME_S)
        self._last_wall_s = wall
        if self.active:
            self.run_until(self._now_s() + elapsed)

    def run_to_end(self) -> bool:
        """Run to the end in instrument time; False (nothing run) if it cannot end by itself."""
        if self.state == "WAITING" or (self.active and self.open_ended):
            return False
        idle = 0
        while self.state == "RUNNING":
            before = self._now_s()
            self._step()
            idle = idle + 1 if self._now_s() == before else 0
            if idle > MAX_IDLE_STEPS:
                self._on_error(RuntimeError("operation stuck: no step takes instrument time"))
                self._end("FAILED")
        return self.state != "WAITING"

    def trigger(self) -> None:
        """A bus trigger (``*TRG``): a run waiting for one continues."""
        if self.state == "WAITING":
            self.state = "RUNNING"

    def abort(self) -> None:
        """``:ABOR``: stop at once; the readings already made are kept."""
        if self.active:
            self._steps.close()
            self._end("ABORTED")
