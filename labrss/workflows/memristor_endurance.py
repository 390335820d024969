"""Endurance: SET/RESET cycles with reads, the window against the cycle, until failure.

    from labrss.workflows.memristor_endurance import EnduranceSettings, endurance
    result = endurance(lab, devices, EnduranceSettings(max_cycles=10_000), store=store)

Each device in turn is cycled: one SET pulse (``set_V``, ``width_s``) then one RESET pulse
(``-reset_V``); at log-spaced checkpoints (``per_decade``) the device is read after the
SET (G_on) and after the RESET (G_off). The device stops at `EnduranceCriterion` (the
window closed or the on/off ratio collapsed for ``patience`` checkpoints in a row: a stuck
or worn-out device) or at ``max_cycles``. Every pulse amplitude is checked against the
bench's limits before the first pulse. Stored (run kind ``memristor_endurance``): every
reading and pulse; ``checkpoints`` (a record per checkpoint: device, cycle, g_on_S,
g_off_S) and ``endurance`` (per device: cycles to failure or -1, first and last window,
status ``failed`` | ``survived`` | ``cancelled``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from labrss.lab import Lab, LabInputError
from labrss.memristor.characterisation import EnduranceCriterion, log_checkpoints
from labrss.store import Store
from labrss.workflows.memristor_module import (
    Branch,
    DataCallback,
    ModuleResult,
    ModuleRun,
    ProgressCallback,
    StopFlag,
    check_amplitude,
    require_pulses,
)

CHECKPOINT_DTYPE = np.dtype(
    [("device", "i4"), ("cycle", "i8"), ("g_on_S", "f8"), ("g_off_S", "f8")]
)
DEVICE_DTYPE = np.dtype(
    [
        ("r", "i4"),
        ("c", "i4"),
        ("k", "i4"),
        ("cycles", "i8"),
        ("cycles_to_failure", "i8"),
        ("first_window_S", "f8"),
        ("last_window_S", "f8"),
        ("status", "U10"),
    ]
)


@dataclass(frozen=True)
class EnduranceSettings:
    """Endurance cycling (defaults for the simulated CMO/HfOx devices).

    Attributes:
        set_V, reset_V: pulse amplitudes (V, magnitudes; RESET is applied negative).
        width_s: pulse width (s).
        max_cycles: stop a surviving device here.
        per_decade: read checkpoints per decade of cycles.
        reads: readings averaged per state read.
        nplc: integration time (None: the station's).
        min_on_off_ratio, min_window_fraction, patience: the failure criterion
            (`EnduranceCriterion`).
    """

    set_V: float = 2.0
    reset_V: float = 2.0
    width_s: float = 1e-3
    max_cycles: int = 10_000
    per_decade: int = 10
    reads: int = 1
    nplc: float | None = None
    min_on_off_ratio: float = 1.5
    min_window_fraction: float = 0.0
    patience: int = 2

    def __post_init__(self) -> None:
        for name in ("set_V", "reset_V", "width_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"endurance {name} = {value!r}: must be > 0 (a magnitude)")
        if self.max_cycles < 1 or self.per_decade < 1 or self.reads < 1:
            raise ValueError("endurance max_cycles, per_decade and reads must be >= 1")
        self.criterion()  # validates the criterion's fields

    def criterion(self) -> EnduranceCriterion:
        """The failure criterion."""
        return EnduranceCriterion(self.min_on_off_ratio, self.min_window_fraction, self.patience)


@dataclass
class EnduranceResult(ModuleResult):
    """Per-checkpoint states and per-device outcomes (`CHECKPOINT_DTYPE`, `DEVICE_DTYPE`)."""

    checkpoints: npt.NDArray[np.void] = field(default_factory=lambda: np.zeros(0, CHECKPOINT_DTYPE))
    outcomes: npt.NDArray[np.void] = field(default_factory=lambda: np.zeros(0, DEVICE_DTYPE))

    def summary(self) -> dict[str, Any]:
        """JSON-ready: totals, failures and cycles to failure."""
        failed = self.outcomes[self.outcomes["status"] == "failed"]
        return super().summary() | {
            "failed": int(failed.size),
            "survived": int(np.sum(self.outcomes["status"] == "survived")),
            "median_cycles_to_failure": (
                float(np.median(failed["cycles_to_failure"])) if failed.size else None
            ),
            "per_device": [
                {name: row[name].item() for name in DEVICE_DTYPE.names or ()}
                for row in self.outcomes
            ],
        }


def endurance(
    lab: Lab,
    devices: list[Branch],
    settings: EnduranceSettings | None = None,
    *,
    store: Store | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopFlag | None = None,
    on_data: DataCallback | None = None,
    note: str = "",
) -> EnduranceResult:
    """Cycle each device to failure or ``max_cycles`` (module docstring)."""
    s = settings if settings is not None else EnduranceSettings()
    if not devices:
        raise LabInputError("endurance: no devices")
    max_v, min_w, max_w = require_pulses(lab, "endurance")
    check_amplitude("endurance set_V", s.set_V, max_v, lab)
    check_amplitude("endurance reset_V", s.reset_V, max_v, lab)
    if not min_w <= s.width_s <= max_w:
        raise LabInputError(f"endurance width_s = {s.width_s} s not in {min_w:g}..{max_w:g} s")
    criterion = s.criterion()
    marks = set(log_checkpoints(s.max_cycles, s.per_decade).tolist())
    result = EnduranceResult(devices=list(devices))
    points: list[tuple[int, int, float, float]] = []
    outcomes: list[tuple[Any, ...]] = []
    total = len(devices) * s.max_cycles
    with ModuleRun(
        lab,
        store,
        "endurance",
        asdict(s),
        devices,
        note=note,
        progress=progress,
        should_stop=should_stop,
        on_data=on_data,
    ) as run:
        for i, device in enumerate(devices):
            on: list[float] = []
            off: list[float] = []
            cycles, failed_at, status = 0, None, "survived"
            for cycle in range(1, s.max_cycles + 1):
                if run.stop():
                    status, result.cancelled = "cancelled", True
                    break
                run.pulse(device, s.set_V, s.width_s)
                if cycle in marks:
                    on.append(run.read(device, reads=s.reads, nplc=s.nplc))
                run.pulse(device, -s.reset_V, s.width_s)
                cycles = cycle
                if cycle in marks:
                    off.append(run.read(device, reads=s.reads, nplc=s.nplc))
                    points.append((i, cycle, on[-1], off[-1]))
                    run.emit("endurance", device=i, cycle=cycle, g_on_S=on[-1], g_off_S=off[-1])
                    run.flush()
                    run.progress(i * s.max_cycles + cycle, total, f"{device}: cycle {cycle}")
                    at = criterion.failed_at(on, off)
                    if at is not None:
                        failed_at, status = points[len(points) - len(on) + at][1], "failed"
                        break
            outcomes.append(
                (
                    *device,
                    cycles,
                    -1 if failed_at is None else failed_at,
                    on[0] - off[0] if on else math.nan,
                    on[-1] - off[-1] if on and off else math.nan,
                    status,
                )
            )
            if result.cancelled:
                break
        result.checkpoints = np.array(points, dtype=CHECKPOINT_DTYPE)
        result.outcomes = np.array(outcomes, dtype=DEVICE_DTYPE)
        run.progress(total, total, "done")
        run.finish(
            result,
            {
                "checkpoints": (result.checkpoints, ["checkpoint"]),
                "endurance": (result.outcomes, ["device"]),
            },
        )
    return result
