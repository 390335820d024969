"""Forming: a voltage ramp under a current compliance until the device forms.

    from labrss.workflows.memristor_form import FormSettings, form
    result = form(lab, devices, FormSettings(v_stop_V=3.0, compliance_A=30e-6), store=store)

A virgin memristor is an intact oxide (~0.1 uS); a high enough voltage grows its first
filament, and the current compliance is what stops that filament at a usable on state
(the compliance sets it: G ~ I_cc / 0.45 V on the simulated devices) instead of a hard
breakdown. Per device: its state is read first (at the safe read voltage); a device that
already conducts like a formed one (above ``formed_above_S``) is skipped (``already``).
Otherwise the SMU ramps the device alone (`Lab.source_branch`: every other switch open)
from ``v_start_V`` to ``v_stop_V`` in ``step_V``, ``readings_per_step`` readings per
step (the dwell), under ``compliance_A``; the device has formed when a reading reaches
``formed_current_fraction`` of the compliance or trips it. The ramp stops there, and the
formed state is read at the read voltage. A device still virgin at ``v_stop_V`` is
``not_formed``; a formed one that does not read above ``formed_above_S`` afterwards is
``failed``. The ramp's voltages are writes: they are checked against ``[limits]
max_source_voltage_V`` and ``max_pulse_voltage_V`` (a forming ramp needs both raised to
the devices' forming voltages, e.g. 3 V) before anything is sent.

Stored (run kind ``memristor_form``): every reading (ramp steps and reads); ``ramp``
(a record per step: device, voltage_V, current_A, tripped) and ``forming`` (per device:
status, forming_V, forming_current_A, formed_S, steps).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from labrss.lab import Lab, LabInputError
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

RAMP_DTYPE = np.dtype(
    [("device", "i4"), ("voltage_V", "f8"), ("current_A", "f8"), ("tripped", "?")]
)
FORMING_DTYPE = np.dtype(
    [
        ("r", "i4"),
        ("c", "i4"),
        ("k", "i4"),
        ("status", "U10"),
        ("forming_V", "f8"),
        ("forming_current_A", "f8"),
        ("initial_S", "f8"),
        ("formed_S", "f8"),
        ("steps", "i4"),
    ]
)
STATUSES = ("formed", "not_formed", "already", "failed", "cancelled")


@dataclass(frozen=True)
class FormSettings:
    """A forming ramp (defaults for the simulated virgin CMO/HfOx devices).

    Attributes:
        v_start_V, v_stop_V, step_V: the ramp (V; positive: forming by SET polarity).
        compliance_A: current compliance during the ramp (A): sets the formed state.
        readings_per_step: readings at each step (the dwell).
        formed_current_fraction: a reading at this fraction of the compliance means formed.
        formed_above_S: a read above this conductance (S) is a formed device.
        reads: readings averaged for the read before and after.
        nplc: integration time of every reading (None: the station's).
    """

    v_start_V: float = 1.0
    v_stop_V: float = 3.0
    step_V: float = 0.05
    compliance_A: float = 30e-6
    readings_per_step: int = 2
    formed_current_fraction: float = 0.5
    formed_above_S: float = 2e-6
    reads: int = 2
    nplc: float | None = None

    def __post_init__(self) -> None:
        for name in ("v_start_V", "v_stop_V", "step_V", "compliance_A", "formed_above_S"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"forming {name} = {value!r}: must be > 0")
        if self.v_stop_V < self.v_start_V:
            raise ValueError(
                f"forming v_stop_V = {self.v_stop_V} is below v_start_V = {self.v_start_V}"
            )
        if not 0 < self.formed_current_fraction <= 1:
            raise ValueError("forming formed_current_fraction must be in (0, 1]")
        if self.readings_per_step < 1 or self.reads < 1:
            raise ValueError("forming readings_per_step and reads must be >= 1")

    def ramp_V(self) -> npt.NDArray[np.float64]:
        """The ramp's voltages (V), ending exactly at ``v_stop_V``."""
        n = math.floor((self.v_stop_V - self.v_start_V) / self.step_V + 1e-9)
        v = self.v_start_V + self.step_V * np.arange(n + 1, dtype=np.float64)
        if v[-1] < self.v_stop_V - 1e-12:
            v = np.append(v, self.v_stop_V)
        return np.asarray(v, dtype=np.float64)


@dataclass
class FormResult(ModuleResult):
    """Per-device forming outcomes (`FORMING_DTYPE`) and the ramps (`RAMP_DTYPE`)."""

    outcomes: npt.NDArray[np.void] = field(default_factory=lambda: np.zeros(0, FORMING_DTYPE))
    ramp: npt.NDArray[np.void] = field(default_factory=lambda: np.zeros(0, RAMP_DTYPE))

    def yield_fraction(self) -> float:
        """Formed (now or before) over the devices tried."""
        n = self.outcomes.size
        ok = np.isin(self.outcomes["status"], ("formed", "already")).sum()
        return float(ok / n) if n else math.nan

    def summary(self) -> dict[str, Any]:
        """JSON-ready: yield, forming voltage statistics, devices that did not form."""
        formed = self.outcomes[self.outcomes["status"] == "formed"]
        v = formed["forming_V"]
        return super().summary() | {
            "status_counts": {
                s: int(np.sum(self.outcomes["status"] == s))
                for s in STATUSES
                if np.any(self.outcomes["status"] == s)
            },
            "yield": self.yield_fraction(),
            "median_forming_V": float(np.median(v)) if v.size else None,
            "std_forming_V": float(np.std(v, ddof=1)) if v.size > 1 else None,
            "median_formed_S": float(np.median(formed["formed_S"])) if v.size else None,
            "not_formed": [
                [int(o["r"]), int(o["c"]), int(o["k"])]
                for o in self.outcomes
                if o["status"] in ("not_formed", "failed")
            ],
        }


def form(
    lab: Lab,
    devices: list[Branch],
    settings: FormSettings | None = None,
    *,
    store: Store | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopFlag | None = None,
    on_data: DataCallback | None = None,
    note: str = "",
) -> FormResult:
    """Form each device (module docstring)."""
    s = settings if settings is not None else FormSettings()
    if not devices:
        raise LabInputError("forming: no devices")
    require_pulses(lab, "form")
    limits = lab.station.limits
    top = float(max(abs(s.v_start_V), abs(s.v_stop_V)))
    for key, limit in (
        ("max_source_voltage_V", limits.max_source_voltage_V),
        ("max_pulse_voltage_V", limits.max_pulse_voltage_V),
    ):
        if top > limit:
            raise LabInputError(
                f"forming ramp to {top:g} V exceeds [limits] {key} = {limit:g} V of "
                f"{lab.station.name}: raise it to the devices' forming voltage (a forming "
                "ramp is a write)"
            )
    if s.compliance_A > limits.compliance_current_A:
        raise LabInputError(
            f"forming compliance {s.compliance_A:g} A exceeds [limits] compliance_current_A "
            f"= {limits.compliance_current_A:g} A"
        )
    volts = s.ramp_V()
    result = FormResult(devices=list(devices))
    ramp: list[tuple[Any, ...]] = []
    outcomes: list[tuple[Any, ...]] = []
    with ModuleRun(
        lab,
        store,
        "form",
        asdict(s),
        devices,
        note=note,
        progress=progress,
        should_stop=should_stop,
        on_data=on_data,
    ) as run:
        for i, device in enumerate(devices):
            if run.stop():
                result.cancelled = True
                break
            run.progress(i, len(devices), f"forming {device}")
            g0 = run.read(device, reads=s.reads, nplc=s.nplc)
            if g0 > s.formed_above_S:
                outcomes.append((*device, "already", math.nan, math.nan, g0, g0, 0))
                continue
            status, v_form, i_form, steps = "not_formed", math.nan, math.nan, 0
            for v in volts:
                for _ in range(s.readings_per_step):
                    reading = lab.source_branch(*device, float(v), compliance_A=s.compliance_A)
                    run.record(reading)
                    steps += 1
                    ramp.append((i, float(v), reading.current_A, reading.limit_tripped))
                    run.emit(
                        "form", device=i, voltage_V=float(v), current_A=float(reading.current_A)
                    )
                    if reading.limit_tripped or (
                        abs(reading.current_A) >= s.formed_current_fraction * s.compliance_A
                    ):
                        status, v_form, i_form = "formed", float(v), float(reading.current_A)
                        break
                if status == "formed" or run.stop():
                    break
            g1 = run.read(device, reads=s.reads, nplc=s.nplc)
            if status == "formed" and g1 <= s.formed_above_S:
                status = "failed"
            if status != "formed" and run.stop():
                status, result.cancelled = "cancelled", True
            outcomes.append((*device, status, v_form, i_form, g0, g1, steps))
            run.flush()
            if result.cancelled:
                break
        result.outcomes = np.array(outcomes, dtype=FORMING_DTYPE)
        result.ramp = np.array(ramp, dtype=RAMP_DTYPE)
        run.progress(len(devices), len(devices), "done")
        run.finish(
            result,
            {"ramp": (result.ramp, ["ramp_step"]), "forming": (result.outcomes, ["device"])},
        )
    return result
