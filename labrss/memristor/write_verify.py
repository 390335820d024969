"""The write-verify policy: which pulse to apply next, from the last reading (pure).

A closed loop in the family of ArC ONE's ``ConvergeToState``, MemTorch's ``naive_program``
and NeuRRAM's incremental-pulse write-verify (crossbar_sim.md 4.4, 6, 8.1)::

    policy = WriteVerifyPolicy(target_S=40e-6, settings=WriteVerifySettings(tolerance=0.01))
    step = policy.next(read())                 # a Pulse, or a Stop with the status
    while isinstance(step, Pulse):
        apply(step.amplitude_V, step.width_s)
        step = policy.next(read())

Rules, applied to each reading G (S) against the band ``|G - G_t| <= tolerance * G_t``:

* **In the band**: stop, ``ok``.
* **Polarity** from the sign of the error: SET (+) below the target, RESET (-) above.
* **Reversal** (the last pulse overshot): count it; the amplitude goes back to the
  polarity's start (as ArC does) and the width shrinks in proportion to the overshoot
  (``|error| / |last change|``, between 1/``width_factor``**3 and 1/``width_factor``), so
  the loop homes in instead of ringing. More than ``max_reversals``: stop, ``oscillating``.
* **No progress** (the last pulse, same polarity, moved G by less than ``progress_S``
  towards the target, i.e. within the read noise): the width grows by ``width_factor`` up
  to ``max_width_s``, then the amplitude by ``step_V`` up to the polarity's maximum (ISPP).
  At the largest pulse, ``stuck_pulses`` pulses in a row without progress: stop,
  ``stuck`` (a stuck device, or a target beyond this device's range).
* **Progress larger than the remaining error**: the same pulse again would overshoot, so
  the width shrinks in proportion (``|error| / |last change|``). **Progress less than a
  quarter of the remaining error**: the width grows by ``width_factor`` (far from the
  target, fewer pulses).
* ``max_pulses`` pulses without reaching the band: stop, ``timeout``.

Pulse widths respect ``[min_width_s, max_width_s]``, amplitudes ``[start, max]`` per
polarity; callers clip the maxima to the station's and board's limits
(`WriteVerifySettings.within`). Each decision is O(1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Literal

__all__ = [
    "STATUSES",
    "Pulse",
    "Status",
    "Stop",
    "WriteVerifyPolicy",
    "WriteVerifySettings",
]

Status = Literal["ok", "timeout", "stuck", "oscillating"]

FAR = 4.0
"""A pulse whose progress is less than 1/FAR of the remaining error is too weak: the next
one is wider (by ``width_factor``), so a device far from its target gets there in a few
doublings instead of many equal steps."""
STATUSES: tuple[Status, ...] = ("ok", "timeout", "stuck", "oscillating")


@dataclass(frozen=True)
class WriteVerifySettings:
    """Knobs of the write-verify loop (defaults for the simulated CMO/HfOx ReRAM).

    Attributes:
        tolerance: relative band, ``|G - G_t| <= tolerance * G_t``.
        set_start_V, reset_start_V: first amplitude of each polarity (V, magnitudes); above
            the devices' switching thresholds (0.8 V SET, 0.6 V RESET +- 3 x 0.05 V on the
            simulated boards, docs/simulator.md), inside ArC's 0.5-2.0 V sweep. 1.3 V SET,
            1.0 V RESET and 0.2 ms took the fewest pulses in a sweep on the simulated
            devices (docs/memristor.md).
        set_max_V, reset_max_V: largest amplitude of each polarity (V, magnitudes).
        step_V: amplitude increment when a pulse made no progress at the largest width (V).
        width_s: first pulse width (s), twice ArC ConvergeToState's 0.1 ms.
        min_width_s, max_width_s: width range (s).
        width_factor: growth of the width without progress, and the least shrink after a
            reversal (> 1).
        progress_S: smallest change towards the target that counts as progress (S); a
            few read-noise sigmas (0.2 uS at 90 uS on the simulated devices).
        max_pulses: pulse budget per device.
        max_reversals: polarity reversals allowed before ``oscillating``.
        stuck_pulses: pulses in a row without progress at the largest amplitude and width
            before ``stuck``.
    """

    tolerance: float = 0.01
    set_start_V: float = 1.3
    reset_start_V: float = 1.0
    set_max_V: float = 2.0
    reset_max_V: float = 2.0
    step_V: float = 0.1
    width_s: float = 2e-4
    min_width_s: float = 1e-7
    max_width_s: float = 1e-3
    width_factor: float = 2.0
    progress_S: float = 0.3e-6
    max_pulses: int = 100
    max_reversals: int = 20
    stuck_pulses: int = 4

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"write-verify setting {f.name} = {value!r}: not a number")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(
                    f"write-verify setting {f.name} = {value!r}: must be finite and > 0"
                )
        for name in ("max_pulses", "max_reversals", "stuck_pulses"):
            if not isinstance(getattr(self, name), int):
                raise ValueError(f"write-verify setting {name} must be an integer")
        if self.set_start_V > self.set_max_V or self.reset_start_V > self.reset_max_V:
            raise ValueError(
                f"write-verify settings: start amplitudes ({self.set_start_V}, "
                f"{self.reset_start_V} V) must not exceed the maxima ({self.set_max_V}, "
                f"{self.reset_max_V} V)"
            )
        if not self.min_width_s <= self.width_s <= self.max_width_s:
            raise ValueError(
                f"write-verify settings: width_s = {self.width_s} s not in "
                f"{self.min_width_s}..{self.max_width_s} s"
            )
        if self.width_factor <= 1:
            raise ValueError(
                f"write-verify setting width_factor = {self.width_factor}: must be > 1"
            )
        if self.tolerance >= 1:
            raise ValueError(f"write-verify setting tolerance = {self.tolerance}: must be < 1")

    def within(
        self, max_amplitude_V: float, min_width_s: float, max_width_s: float
    ) -> WriteVerifySettings:
        """These settings with amplitudes and widths clipped to a bench's limits.

        Raises ValueError when a start amplitude is beyond ``max_amplitude_V`` (the loop
        could not switch the devices at all) or the width ranges do not overlap.
        """
        if self.set_start_V > max_amplitude_V or self.reset_start_V > max_amplitude_V:
            raise ValueError(
                f"write-verify start amplitudes {self.set_start_V} / {self.reset_start_V} V "
                f"exceed the pulse limit {max_amplitude_V} V"
            )
        lo = max(self.min_width_s, min_width_s)
        hi = min(self.max_width_s, max_width_s)
        if lo > hi:
            raise ValueError(
                f"write-verify widths {self.min_width_s}..{self.max_width_s} s do not overlap "
                f"the pulse circuit's {min_width_s}..{max_width_s} s"
            )
        return replace(
            self,
            set_max_V=min(self.set_max_V, max_amplitude_V),
            reset_max_V=min(self.reset_max_V, max_amplitude_V),
            min_width_s=lo,
            max_width_s=hi,
            width_s=min(max(self.width_s, lo), hi),
        )


@dataclass(frozen=True)
class Pulse:
    """The next pulse: ``amplitude_V`` (V, signed: + SET, - RESET) and ``width_s`` (s)."""

    amplitude_V: float
    width_s: float


@dataclass(frozen=True)
class Stop:
    """The loop is over: ``status`` and why (``reason``)."""

    status: Status
    reason: str


class WriteVerifyPolicy:
    """The write-verify state machine for one device (see the module docstring).

    Args:
        target_S: target conductance (S), > 0.
        settings: the loop's knobs.

    Attributes:
        pulses: pulses decided so far; reversals: polarity reversals so far;
        last_status: the Stop once the loop has ended, else None.
    """

    def __init__(self, target_S: float, settings: WriteVerifySettings | None = None) -> None:
        if not (math.isfinite(target_S) and target_S > 0):
            raise ValueError(f"write-verify target {target_S!r} S: must be finite and > 0")
        self.target_S = float(target_S)
        self.settings = settings if settings is not None else WriteVerifySettings()
        self.band_S = self.settings.tolerance * self.target_S
        self.pulses = 0
        self.reversals = 0
        self.last_status: Stop | None = None
        self._last_g: float | None = None
        self._polarity = 0
        self._amplitude_V = 0.0
        self._width_s = self.settings.width_s
        self._idle = 0

    def _start(self, polarity: int) -> float:
        s = self.settings
        return s.set_start_V if polarity > 0 else s.reset_start_V

    def _max(self, polarity: int) -> float:
        s = self.settings
        return s.set_max_V if polarity > 0 else s.reset_max_V

    def _stop(self, status: Status, reason: str) -> Stop:
        self.last_status = Stop(status, reason)
        return self.last_status

    def next(self, conductance_S: float) -> Pulse | Stop:
        """The decision after reading ``conductance_S`` (S): the next Pulse, or Stop."""
        if self.last_status is not None:
            return self.last_status
        g = float(conductance_S)
        if not math.isfinite(g):
            raise ValueError(f"write-verify reading {conductance_S!r} S is not a number")
        s = self.settings
        error = g - self.target_S
        if abs(error) <= self.band_S:
            return self._stop("ok", f"within +-{s.tolerance:g} after {self.pulses} pulses")
        if self.pulses >= s.max_pulses:
            return self._stop("timeout", f"{s.max_pulses} pulses without reaching the band")
        polarity = 1 if error < 0 else -1
        last = self._last_g
        if last is None or self._polarity == 0:
            self._amplitude_V = self._start(polarity)
        elif polarity != self._polarity:
            self.reversals += 1
            if self.reversals > s.max_reversals:
                return self._stop("oscillating", f"{self.reversals} polarity reversals")
            change = abs(g - last)
            shrink = abs(error) / change if change > 0 else 1.0 / s.width_factor
            shrink = min(max(shrink, s.width_factor**-3), 1.0 / s.width_factor)
            self._width_s = max(self._width_s * shrink, s.min_width_s)
            self._amplitude_V = self._start(polarity)
            self._idle = 0
        else:
            progress = (g - last) * polarity
            if progress < s.progress_S:
                if self._width_s < s.max_width_s:
                    self._width_s = min(self._width_s * s.width_factor, s.max_width_s)
                elif self._amplitude_V < self._max(polarity):
                    # rounded to 1 uV so that repeated float steps land exactly on the max
                    stepped = round(self._amplitude_V + s.step_V, 6)
                    self._amplitude_V = min(stepped, self._max(polarity))
                else:
                    self._idle += 1
                    if self._idle >= s.stuck_pulses:
                        return self._stop(
                            "stuck",
                            f"{self._idle} pulses of {polarity * self._amplitude_V:+.3g} V, "
                            f"{self._width_s:.3g} s without progress: a stuck device or a "
                            "target beyond its range",
                        )
            else:
                self._idle = 0
                if progress > abs(error):
                    shrink = max(abs(error) / progress, s.width_factor**-3)
                    self._width_s = max(self._width_s * shrink, s.min_width_s)
                elif abs(error) > FAR * progress:
                    self._width_s = min(self._width_s * s.width_factor, s.max_width_s)
        self._polarity = polarity
        self._last_g = g
        self.pulses += 1
        return Pulse(polarity * self._amplitude_V, self._width_s)
