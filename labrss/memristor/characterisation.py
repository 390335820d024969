"""Pure analysis for the memristor characterisation modules (arrays in, arrays out).

* `sweep_voltages`: one I-V cycle's staircase, 0 -> +V_set -> 0 -> -V_reset -> 0.
* `switching_voltages`: SET and RESET voltages of each cycle from the state read after
  every step (the first step of a polarity that moves the state by more than a relative
  threshold, confirmed by the next step).
* `log_checkpoints`: log-spaced cycle numbers at which an endurance run reads.
* `EnduranceCriterion`: when a device's switching window counts as closed.
* `log_time_points`: log-spaced times of a retention run.
* `drift_per_decade`: a retention trace's slope against log10 of time.

Sign convention everywhere: a positive voltage SETs (conductance up), a negative one
RESETs (down), as for `labrss.lab.Lab.pulse_branch`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def sweep_voltages(v_set_max_V: float, v_reset_max_V: float, step_V: float) -> FloatArray:
    """One cycle's staircase (V): step_V, 2 step_V, ..., +v_set_max, ..., step_V, then
    -step_V, ..., -v_reset_max, ..., -step_V (zero steps left out: they switch nothing).

    ``v_reset_max_V`` is a magnitude. Each branch ends exactly at its maximum. Length
    ``2 (n_set + n_reset) - 2`` with ``n = ceil(max / step)``.
    """
    if not (step_V > 0 and math.isfinite(step_V)):
        raise ValueError(f"I-V step {step_V!r} V must be > 0")
    out: list[float] = []
    for sign, vmax in ((1.0, v_set_max_V), (-1.0, v_reset_max_V)):
        if not (vmax > 0 and math.isfinite(vmax)):
            raise ValueError(f"I-V maximum {vmax!r} V must be > 0 (a magnitude)")
        n = max(1, math.ceil(vmax / step_V - 1e-9))
        up = np.minimum(np.arange(1, n + 1) * step_V, vmax)
        out.extend(sign * up)
        out.extend(sign * up[-2::-1])
    return np.asarray(out, dtype=np.float64)


def switching_voltages(
    voltages_V: npt.ArrayLike,
    conductance_S: npt.ArrayLike,
    *,
    initial_S: npt.ArrayLike | None = None,
    relative_change: float = 0.05,
) -> tuple[FloatArray, FloatArray]:
    """SET and RESET voltage (V) of each cycle; NaN where the device did not switch.

    ``voltages_V`` is one cycle's steps (`sweep_voltages`), ``conductance_S`` is (cycles,
    steps): the state read after each step. The SET voltage is the first positive step
    after which the state exceeds its value before the positive half by more than
    ``relative_change`` (and the next step too: one noisy read does not count); the RESET
    voltage (negative) the first negative step after which it is below its value before
    the negative half by that much. ``initial_S`` (cycles,) is the state before each
    cycle's first step (the previous cycle's last read, or a read before the first cycle);
    without it the first half is compared with its own first read, which misses a switch
    on the very first step. Vectorised over cycles: O(cycles x steps).
    """
    v = np.asarray(voltages_V, dtype=np.float64)
    g = np.atleast_2d(np.asarray(conductance_S, dtype=np.float64))
    if g.shape[1] != v.size:
        raise ValueError(f"{g.shape[1]} readings per cycle for {v.size} voltages")
    pos = np.flatnonzero(v > 0)
    neg = np.flatnonzero(v < 0)
    out: list[FloatArray] = []
    for idx, direction in ((pos, 1.0), (neg, -1.0)):
        if idx.size == 0:
            out.append(np.full(g.shape[0], np.nan))
            continue
        start = idx[0]
        # The state before this half: the read before its first step (the previous half's
        # last read, or the cycle's first read for a half that starts the cycle).
        if start > 0:
            before = g[:, start - 1]
        elif initial_S is not None:
            before = np.broadcast_to(np.asarray(initial_S, dtype=np.float64), g.shape[:1])
        else:
            before = g[:, 0]
        half = g[:, idx]
        moved = direction * (half - before[:, None]) > relative_change * np.abs(before)[:, None]
        confirmed = moved.copy()
        confirmed[:, :-1] &= moved[:, 1:]
        first = np.argmax(confirmed, axis=1)
        found = confirmed.any(axis=1)
        out.append(np.where(found, v[idx][first], np.nan))
    return out[0], out[1]


def log_checkpoints(max_cycles: int, per_decade: int = 10) -> npt.NDArray[np.int64]:
    """Cycle numbers 1 .. max_cycles, ``per_decade`` per decade (rounded, unique), always
    including 1 and max_cycles."""
    if max_cycles < 1 or per_decade < 1:
        raise ValueError(f"max_cycles {max_cycles} and per_decade {per_decade} must be >= 1")
    n = math.ceil(math.log10(max_cycles) * per_decade) + 1
    points = np.unique(np.rint(np.logspace(0, math.log10(max_cycles), max(n, 2))))
    return np.unique(np.concatenate([[1], points, [max_cycles]])).astype(np.int64)


def log_time_points(duration_s: float, first_s: float, per_decade: int = 5) -> FloatArray:
    """Times (s) from 0: 0, then first_s .. duration_s log-spaced, ``per_decade`` a decade."""
    if not (0 < first_s <= duration_s):
        raise ValueError(f"first point {first_s} s must be in (0, duration {duration_s} s]")
    decades = math.log10(duration_s / first_s)
    n = max(2, math.ceil(decades * per_decade) + 1)
    times = np.geomspace(first_s, duration_s, n) if decades > 0 else np.array([first_s])
    return np.concatenate([[0.0], times])


@dataclass(frozen=True)
class EnduranceCriterion:
    """When a device's switching window counts as closed (the endurance failure).

    A checkpoint fails when ``G_on / G_off < min_on_off_ratio`` or the window ``G_on -
    G_off`` is below ``min_window_fraction`` of the first checkpoint's window (off by
    default: cycle-to-cycle variation makes single windows noisy); the device fails at the
    first of ``patience`` failing checkpoints in a row. A worn-out device sticks at one
    state, so its ratio falls to 1.
    """

    min_on_off_ratio: float = 1.5
    min_window_fraction: float = 0.0
    patience: int = 2

    def __post_init__(self) -> None:
        if not (self.min_on_off_ratio >= 1.0 and math.isfinite(self.min_on_off_ratio)):
            raise ValueError(f"min_on_off_ratio {self.min_on_off_ratio} must be >= 1")
        if not 0.0 <= self.min_window_fraction < 1.0:
            raise ValueError(f"min_window_fraction {self.min_window_fraction} not in [0, 1)")
        if self.patience < 1:
            raise ValueError(f"patience {self.patience} must be >= 1")

    def failing(self, g_on_S: float, g_off_S: float, first_window_S: float) -> bool:
        """Whether one checkpoint fails."""
        window = g_on_S - g_off_S
        ratio = g_on_S / g_off_S if g_off_S > 0 else math.inf
        return bool(
            ratio < self.min_on_off_ratio or window < self.min_window_fraction * first_window_S
        )

    def failed_at(self, g_on_S: npt.ArrayLike, g_off_S: npt.ArrayLike) -> int | None:
        """Index of the checkpoint at which the device failed (first of ``patience`` in a
        row), or None."""
        on = np.asarray(g_on_S, dtype=np.float64)
        off = np.asarray(g_off_S, dtype=np.float64)
        if on.size == 0:
            return None
        first = on[0] - off[0]
        run = 0
        for i in range(on.size):
            run = run + 1 if self.failing(on[i], off[i], first) else 0
            if run >= self.patience:
                return i - self.patience + 1
        return None


def drift_per_decade(times_s: npt.ArrayLike, conductance_S: npt.ArrayLike) -> FloatArray:
    """Least-squares slope of G against log10(t) (S per decade of time), per device.

    ``conductance_S`` is (times, devices); points at t <= 0 are left out. NaN for a device
    with fewer than two points.
    """
    t = np.asarray(times_s, dtype=np.float64)
    g = np.asarray(conductance_S, dtype=np.float64)
    if g.ndim == 1:
        g = g[:, None]
    keep = t > 0
    x = np.log10(t[keep])
    y = g[keep]
    out = np.full(g.shape[1], np.nan)
    if x.size < 2:
        return out
    xc = x - x.mean()
    denom = float(xc @ xc)
    if denom == 0.0:
        return out
    ok = np.isfinite(y).all(axis=0)
    out[ok] = (xc @ (y[:, ok] - y[:, ok].mean(axis=0))) / denom
    return out
