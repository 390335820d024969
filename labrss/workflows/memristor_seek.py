"""Seek: converge devices to a target state within a tolerance, with the pulse history.

    from labrss.workflows.memristor_seek import seek
    result = seek(lab, devices, 40e-6, WriteVerifySettings(tolerance=0.02), store=store)

The write-verify loop (`labrss.memristor.WriteVerifyPolicy`: polarity from the error,
width and amplitude stepping, stop ``ok`` | ``timeout`` | ``stuck`` | ``oscillating``) as
a module of its own, recording the whole history: after each pulse, its amplitude and
width, the state read and the bench clock. Pulses stay within the station's and board's
limits (`labrss.workflows.write_verify.bench_settings`); reads go through `Lab`'s guards.
Stored (run kind ``memristor_seek``): every reading and pulse; ``history`` (one record
per read: device, step, amplitude_V, width_s, conductance_S, clock_s; step 0 is the
initial read) and ``seek`` (per device: `labrss.workflows.write_verify.DEVICE_DTYPE`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from labrss.lab import Lab, LabInputError
from labrss.memristor import Pulse, WriteVerifyPolicy, WriteVerifySettings
from labrss.store import Store
from labrss.workflows.memristor_module import (
    Branch,
    DataCallback,
    ModuleResult,
    ModuleRun,
    ProgressCallback,
    StopFlag,
    require_pulses,
)
from labrss.workflows.write_verify import DEVICE_DTYPE, DeviceResult, bench_settings

HISTORY_DTYPE = np.dtype(
    [
        ("device", "i4"),
        ("step", "i4"),
        ("amplitude_V", "f8"),
        ("width_s", "f8"),
        ("conductance_S", "f8"),
        ("clock_s", "f8"),
    ]
)


@dataclass
class SeekResult(ModuleResult):
    """Per-device outcomes (`DeviceResult`) and the pulse history (`HISTORY_DTYPE`)."""

    outcomes: list[DeviceResult] = field(default_factory=list)
    history: npt.NDArray[np.void] = field(default_factory=lambda: np.zeros(0, HISTORY_DTYPE))

    def summary(self) -> dict[str, Any]:
        """JSON-ready: totals and per device status, pulses, final state and error."""
        counts: dict[str, int] = {}
        for d in self.outcomes:
            counts[d.status] = counts.get(d.status, 0) + 1
        return super().summary() | {
            "status_counts": counts,
            "per_device": [
                {
                    "device": list(d.branch),
                    "status": d.status,
                    "pulses": d.pulses,
                    "target_S": d.target_S,
                    "final_S": d.final_S,
                    "error": d.error,
                }
                for d in self.outcomes
            ],
        }


def seek(
    lab: Lab,
    devices: list[Branch],
    targets_S: float | Sequence[float],
    settings: WriteVerifySettings | None = None,
    *,
    reads: int = 2,
    nplc: float | None = None,
    store: Store | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopFlag | None = None,
    on_data: DataCallback | None = None,
    note: str = "",
) -> SeekResult:
    """Converge each device to its target (one value for all, or one per device)."""
    require_pulses(lab, "seek")
    s = bench_settings(lab, settings if settings is not None else WriteVerifySettings())
    targets = (
        [float(targets_S)] * len(devices)
        if isinstance(targets_S, int | float)
        else [float(t) for t in targets_S]
    )
    if not devices or len(targets) != len(devices):
        raise LabInputError(f"seek: {len(devices)} devices and {len(targets)} targets")
    if any(not (t > 0) for t in targets):
        raise LabInputError(f"seek: targets must be > 0 S, got {targets}")
    if reads < 1:
        raise LabInputError(f"seek: reads = {reads}: need >= 1")
    result = SeekResult(devices=list(devices))
    history: list[tuple[Any, ...]] = []
    run_settings = asdict(s) | {"targets_S": targets, "reads": reads, "nplc": nplc}
    with ModuleRun(
        lab,
        store,
        "seek",
        run_settings,
        devices,
        note=note,
        progress=progress,
        should_stop=should_stop,
        on_data=on_data,
    ) as run:
        for i, (device, target) in enumerate(zip(devices, targets, strict=True)):
            if run.stop():
                result.cancelled = True
                break
            run.progress(i, len(devices), f"device {device}")
            policy = WriteVerifyPolicy(target, s)
            time0 = run.instrument_time_s()
            g = run.read(device, reads=reads, nplc=nplc)
            initial = g
            history.append((i, 0, 0.0, 0.0, g, lab.clock_s()))
            run.emit("seek", device=i, pulse=0, conductance_S=g, target_S=target)
            step = policy.next(g)
            while isinstance(step, Pulse):
                if run.stop():
                    result.cancelled = True
                    break
                run.pulse(device, step.amplitude_V, step.width_s)
                g = run.read(device, reads=reads, nplc=nplc)
                history.append((i, policy.pulses, step.amplitude_V, step.width_s, g, lab.clock_s()))
                run.emit("seek", device=i, pulse=policy.pulses, conductance_S=g, target_S=target)
                step = policy.next(g)
            if isinstance(step, Pulse):  # cancelled mid-device
                break
            result.outcomes.append(
                DeviceResult(
                    branch=device,
                    target_S=target,
                    initial_S=initial,
                    final_S=g,
                    error=(g - target) / target,
                    pulses=policy.pulses,
                    reversals=policy.reversals,
                    status=step.status,
                    reason=step.reason,
                    instrument_time_s=run.instrument_time_s() - time0,
                )
            )
            run.flush()
        result.history = np.array(history, dtype=HISTORY_DTYPE)
        run.progress(len(devices), len(devices), "done")
        run.finish(
            result,
            {
                "history": (result.history, ["step"]),
                "seek": (
                    np.array([d.row() for d in result.outcomes], dtype=DEVICE_DTYPE),
                    ["device"],
                ),
            },
        )
    return result
