"""The simulator's virtual clock: instrument time that advances with simulated work.

Every simulated action that takes time on a real bench (an SMU aperture, a switch settling,
a DAC step) advances the clock by its duration. Drift and temperature are functions of this
clock, so a calibration that "takes an hour" ages the board by an hour even when it runs in
a second. Optional pacing makes the wall clock follow it (``realtime_factor > 0``).
"""

from __future__ import annotations

import threading
import time


class VirtualClock:
    """Monotonic simulated time in seconds, shared by the board model and the emulators.

    Thread-safe: the SMU and board servers run in different threads and both advance it.
    With ``realtime_factor = f > 0``, `advance(dt_s)` also sleeps ``dt_s / f`` wall seconds
    (``f = 1`` is real time, ``f = 10`` ten times faster); ``0`` (default) never sleeps.
    """

    def __init__(self, start_s: float = 0.0, realtime_factor: float = 0.0) -> None:
        if realtime_factor < 0:
            raise ValueError(f"realtime_factor must be >= 0, got {realtime_factor}")
        self._now_s = float(start_s)
        self.realtime_factor = float(realtime_factor)
        self._lock = threading.Lock()

    @property
    def now_s(self) -> float:
        """Current simulated time (s)."""
        with self._lock:
            return self._now_s

    def advance(self, dt_s: float) -> float:
        """Advance by ``dt_s`` seconds (>= 0) and return the new time (s)."""
        if dt_s < 0:
            raise ValueError(f"the virtual clock cannot go backwards (dt_s={dt_s})")
        with self._lock:
            self._now_s += dt_s
            now = self._now_s
        if self.realtime_factor > 0 and dt_s > 0:
            time.sleep(dt_s / self.realtime_factor)
        return now
