"""Retention: read devices at a safe read voltage every so often for a while.

    from labrss.workflows.memristor_retention import RetentionSettings, retention
    with Lab(station) as lab, Store(path) as store:
        devices = select_devices(lab, "0,0-1", "0-3")
        result = retention(lab, devices, RetentionSettings(interval_s=60, duration_s=86400),
                           store=store)

At each time point (from the start: 0, interval, 2 interval, ... up to ``duration_s``; or
log-spaced with ``log_spacing``), every device is read alone (``reads`` readings averaged)
at the read voltage (the station's, or ``read_voltage_V``: every read goes through `Lab`'s
guards, so a voltage that could disturb a memristor is refused there). Between points the
bench is left untouched (`Lab.wait_s`: a sleep on hardware, the virtual clock on the
simulator, so a month takes seconds). Stored (run kind ``memristor_retention``): every
reading; ``time_s`` (time), ``conductance_S`` (time, device), the device coordinates and
the per-device drift per decade of time, and ``age_s`` (device): each device's time since
this bench's last write to it when the run started (NaN if unknown), for the fit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from labrss.lab import Lab, LabInputError
from labrss.memristor.characterisation import drift_per_decade, log_time_points
from labrss.store import Store
from labrss.workflows.memristor_module import (
    Branch,
    DataCallback,
    ModuleResult,
    ModuleRun,
    ProgressCallback,
    StopFlag,
    device_arrays,
)


@dataclass(frozen=True)
class RetentionSettings:
    """What a retention run reads and when.

    Attributes:
        interval_s: time between reads (s); with ``log_spacing``, the first point after 0.
        duration_s: how long to follow the devices (s).
        log_spacing: log-spaced points (``points_per_decade``) instead of a fixed interval.
        points_per_decade: with ``log_spacing``.
        reads: readings averaged per device and point.
        nplc: integration time (None: the station's).
        read_voltage_V: read voltage (V; None: the station's). Checked by `Lab`'s guards.
    """

    interval_s: float = 60.0
    duration_s: float = 3600.0
    log_spacing: bool = False
    points_per_decade: int = 5
    reads: int = 1
    nplc: float | None = None
    read_voltage_V: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.interval_s) and self.interval_s > 0):
            raise ValueError(f"retention interval_s = {self.interval_s!r}: must be > 0 s")
        if not (math.isfinite(self.duration_s) and self.duration_s >= self.interval_s):
            raise ValueError(
                f"retention duration_s = {self.duration_s!r} must be >= interval_s = "
                f"{self.interval_s!r} s"
            )
        if self.reads < 1 or self.points_per_decade < 1:
            raise ValueError("retention reads and points_per_decade must be >= 1")
        if not self.log_spacing and self.duration_s / self.interval_s > 1e5:
            raise ValueError(
                f"retention: {self.duration_s / self.interval_s:.0f} points; use log_spacing "
                "or a longer interval (at most 1e5 points)"
            )

    def times_s(self) -> npt.NDArray[np.float64]:
        """The time points from the start (s), 0 first."""
        if self.log_spacing:
            return log_time_points(self.duration_s, self.interval_s, self.points_per_decade)
        n = math.floor(self.duration_s / self.interval_s + 1e-9)
        return np.arange(n + 1, dtype=np.float64) * self.interval_s


@dataclass
class RetentionResult(ModuleResult):
    """Retention of each device: ``conductance_S[time, device]`` at ``time_s`` (measured
    from the start, the mean bench-clock time of each point's reads)."""

    time_s: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    conductance_S: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    age_s: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """Each device's time since its last write by this `Lab` at the start (s; NaN:
    unknown, e.g. programmed in another session)."""

    def drift_S_per_decade(self) -> npt.NDArray[np.float64]:
        """Each device's slope of G against log10(t) (S per decade)."""
        return drift_per_decade(self.time_s, self.conductance_S)

    def summary(self) -> dict[str, Any]:
        """JSON-ready: totals and per device initial, final, relative change, drift."""
        g = self.conductance_S
        n = g.shape[0]
        drift = self.drift_S_per_decade()
        return super().summary() | {
            "points": n,
            "duration_s": float(self.time_s[-1]) if n else 0.0,
            "per_device": [
                {
                    "device": list(d),
                    "initial_S": float(g[0, i]) if n else None,
                    "final_S": float(g[-1, i]) if n else None,
                    "relative_change": float(g[-1, i] / g[0, i] - 1.0) if n else None,
                    "drift_S_per_decade": float(drift[i]),
                }
                for i, d in enumerate(self.devices)
            ],
        }


def retention(
    lab: Lab,
    devices: list[Branch],
    settings: RetentionSettings | None = None,
    *,
    store: Store | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopFlag | None = None,
    on_data: DataCallback | None = None,
    note: str = "",
) -> RetentionResult:
    """Follow ``devices`` over time (module docstring); cancel keeps the points so far."""
    s = settings if settings is not None else RetentionSettings()
    if not devices:
        raise LabInputError("retention: no devices")
    times = s.times_s()
    result = RetentionResult(devices=list(devices))
    with ModuleRun(
        lab,
        store,
        "retention",
        asdict(s),
        devices,
        note=note,
        progress=progress,
        should_stop=should_stop,
        on_data=on_data,
    ) as run:
        start = lab.clock_s()
        # each device's age at the start: since this bench's last write to it (NaN: unknown)
        age = np.array([start - lab.last_write_s.get(d, np.nan) for d in devices])
        result.age_s = age
        done_t: list[float] = []
        rows: list[list[float]] = []
        for i, t in enumerate(times):
            if run.stop():
                result.cancelled = True
                break
            lab.wait_s(max(0.0, start + float(t) - lab.clock_s()))
            run.progress(i, len(times), f"t = {t:g} s")
            t0 = lab.clock_s()
            rows.append(
                [
                    run.read(d, reads=s.reads, nplc=s.nplc, read_voltage_V=s.read_voltage_V)
                    for d in devices
                ]
            )
            done_t.append(0.5 * (t0 + lab.clock_s()) - start)
            run.emit("retention", time_s=done_t[-1], conductance_S=list(rows[-1]))
            run.flush()
        result.time_s = np.array(done_t)
        result.conductance_S = np.array(rows).reshape(len(done_t), len(devices))
        run.progress(len(times), len(times), "done")
        run.finish(
            result,
            {
                "time_s": (result.time_s, ["time"]),
                "conductance_S": (result.conductance_S, ["time", "device"]),
                "drift_S_per_decade": (result.drift_S_per_decade(), ["device"]),
                "age_s": (result.age_s, ["device"]),
                **device_arrays(devices),
            },
        )
    return result
