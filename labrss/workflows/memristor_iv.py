"""I-V sweeps of memristor devices: the hysteresis loop and its SET/RESET voltages.

    from labrss.workflows.memristor_iv import IVSettings, iv_sweep
    result = iv_sweep(lab, devices, IVSettings(v_set_max_V=1.8, v_reset_max_V=1.5, cycles=3),
                      store=store)

A cycle is the staircase of `labrss.memristor.characterisation.sweep_voltages`:
0 -> +v_set_max -> 0 -> -v_reset_max -> 0 in steps of ``step_V``. **Pulsed** (the
default): at each step one pulse of that amplitude and ``width_s`` goes through the board's
pulse circuit, then the device is read alone at the (safe) read voltage: the loop is the
remanent state against the pulse amplitude, as ArC's pulsed curve tracer draws it.
**Staircase**: at each step the SMU holds the voltage across the device alone under a
current compliance (`Lab.source_branch`: a write, checked against ``[limits]
max_source_voltage_V`` and ``max_pulse_voltage_V``; the compliance sets the on state a DC
SET reaches) and measures the current there: the I-V loop itself, non-linear and
asymmetric on real devices; the device is then read at the read voltage as in the pulsed
mode. The SET and RESET voltages of each cycle are extracted from the reads
(`switching_voltages`: the first step of a polarity that moves the state by more than
``relative_change``, confirmed by the next). They depend on the pulse width, as on real
devices (a longer pulse switches at a lower amplitude).

Every amplitude is checked against the bench's pulse limits before the first pulse; reads
go through `Lab`'s guards. Stored (run kind ``memristor_iv``): every reading and pulse;
``voltage_V`` (step), ``conductance_S`` (device, cycle, step), ``current_A`` (device,
cycle, step: the current at the step voltage, staircase only, NaN when pulsed),
``sensed_V`` (the voltage the SMU sensed there: below the step when the compliance held),
``initial_S`` (device: the
read before the first cycle), ``set_V`` and ``reset_V`` (device, cycle), the device
coordinates.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from labrss.lab import Lab, LabInputError
from labrss.memristor.characterisation import sweep_voltages, switching_voltages
from labrss.store import Store
from labrss.workflows.memristor_module import (
    Branch,
    DataCallback,
    ModuleResult,
    ModuleRun,
    ProgressCallback,
    StopFlag,
    check_amplitude,
    device_arrays,
    require_pulses,
)

IVMode = Literal["pulsed", "staircase"]
IV_MODES: tuple[str, ...] = ("pulsed", "staircase")


@dataclass(frozen=True)
class IVSettings:
    """An I-V sweep (defaults for the simulated CMO/HfOx devices).

    Attributes:
        mode: ``pulsed`` (pulse, then read at the read voltage) or ``staircase`` (the SMU
            holds each step under ``compliance_A`` and measures the current, then a read).
        compliance_A: the current compliance of a staircase step (A).
        v_set_max_V, v_reset_max_V: largest amplitude of each polarity (V, magnitudes).
        step_V: staircase step (V).
        width_s: pulse width at each step (s).
        cycles: loops per device.
        reads: readings averaged per read.
        nplc, read_voltage_V: of the reads (None: the station's).
        relative_change: state change that counts as switching (`switching_voltages`).
    """

    mode: IVMode = "pulsed"
    v_set_max_V: float = 1.8
    v_reset_max_V: float = 1.5
    step_V: float = 0.05
    width_s: float = 1e-3
    cycles: int = 3
    reads: int = 1
    nplc: float | None = None
    read_voltage_V: float | None = None
    relative_change: float = 0.05
    compliance_A: float = 100e-6

    def __post_init__(self) -> None:
        if self.mode not in IV_MODES:
            raise ValueError(f"I-V mode {self.mode!r} is not one of {', '.join(IV_MODES)}")
        for name in (
            "v_set_max_V",
            "v_reset_max_V",
            "step_V",
            "width_s",
            "relative_change",
            "compliance_A",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"I-V {name} = {value!r}: must be > 0")
        if self.cycles < 1 or self.reads < 1:
            raise ValueError("I-V cycles and reads must be >= 1")

    def voltages_V(self) -> npt.NDArray[np.float64]:
        """One cycle's step voltages (V)."""
        return sweep_voltages(self.v_set_max_V, self.v_reset_max_V, self.step_V)


@dataclass
class IVResult(ModuleResult):
    """The loops: ``conductance_S[device, cycle, step]`` after each step of ``voltage_V``,
    and the extracted ``set_V`` / ``reset_V`` (device, cycle; NaN: no switching)."""

    voltage_V: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    conductance_S: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0, 0)))
    current_A: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0, 0)))
    initial_S: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    set_V: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    reset_V: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))

    def summary(self) -> dict[str, Any]:
        """JSON-ready: totals, threshold statistics over every device and cycle."""

        def stats(values: npt.NDArray[np.float64]) -> dict[str, Any]:
            ok = values[np.isfinite(values)]
            return {
                "switched": int(ok.size),
                "of": int(values.size),
                "median_V": float(np.median(ok)) if ok.size else None,
                "std_V": float(np.std(ok, ddof=1)) if ok.size > 1 else None,
            }

        return super().summary() | {
            "steps_per_cycle": int(self.voltage_V.size),
            "set": stats(self.set_V),
            "reset": stats(self.reset_V),
        }


def iv_sweep(
    lab: Lab,
    devices: list[Branch],
    settings: IVSettings | None = None,
    *,
    store: Store | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopFlag | None = None,
    on_data: DataCallback | None = None,
    note: str = "",
) -> IVResult:
    """Sweep each device ``cycles`` times (module docstring); cancel keeps whole cycles."""
    s = settings if settings is not None else IVSettings()
    if not devices:
        raise LabInputError("I-V: no devices")
    max_v, min_w, max_w = require_pulses(lab, "iv")
    check_amplitude("I-V v_set_max_V", s.v_set_max_V, max_v, lab)
    check_amplitude("I-V v_reset_max_V", s.v_reset_max_V, max_v, lab)
    if s.mode == "pulsed" and not min_w <= s.width_s <= max_w:
        raise LabInputError(f"I-V width_s = {s.width_s} s not in {min_w:g}..{max_w:g} s")
    if s.mode == "staircase":
        limits = lab.station.limits
        top = max(s.v_set_max_V, s.v_reset_max_V)
        if top > limits.max_source_voltage_V:
            raise LabInputError(
                f"staircase I-V to {top:g} V exceeds [limits] max_source_voltage_V = "
                f"{limits.max_source_voltage_V:g} V of {lab.station.name}"
            )
        if s.compliance_A > limits.compliance_current_A:
            raise LabInputError(
                f"I-V compliance {s.compliance_A:g} A exceeds [limits] compliance_current_A"
                f" = {limits.compliance_current_A:g} A"
            )
    volts = s.voltages_V()
    n_dev, n_steps = len(devices), volts.size
    g = np.full((n_dev, s.cycles, n_steps), np.nan)
    cur = np.full((n_dev, s.cycles, n_steps), np.nan)
    sensed = np.full((n_dev, s.cycles, n_steps), np.nan)
    g0 = np.full(n_dev, np.nan)  # each device's state before its first cycle
    result = IVResult(devices=list(devices), voltage_V=volts)
    with ModuleRun(
        lab,
        store,
        "iv",
        asdict(s)
        | {
            "read_voltage_used_V": (
                lab.station.measurement.read_voltage_V
                if s.read_voltage_V is None
                else s.read_voltage_V
            )
        },
        devices,
        note=note,
        progress=progress,
        should_stop=should_stop,
        on_data=on_data,
    ) as run:
        total = n_dev * s.cycles
        for i, device in enumerate(devices):
            g0[i] = run.read(device, reads=s.reads, nplc=s.nplc, read_voltage_V=s.read_voltage_V)
            for cycle in range(s.cycles):
                run.progress(i * s.cycles + cycle, total, f"{device}: cycle {cycle + 1}")
                for j, v in enumerate(volts):
                    if run.stop():
                        result.cancelled = True
                        break
                    if s.mode == "pulsed":
                        run.pulse(device, float(v), s.width_s)
                    else:
                        reading = lab.source_branch(*device, float(v), compliance_A=s.compliance_A)
                        run.record(reading)
                        cur[i, cycle, j] = reading.current_A
                        sensed[i, cycle, j] = reading.voltage_V
                    g[i, cycle, j] = run.read(
                        device, reads=s.reads, nplc=s.nplc, read_voltage_V=s.read_voltage_V
                    )
                    run.emit(
                        "iv",
                        device=i,
                        cycle=cycle,
                        voltage_V=float(v),
                        conductance_S=g[i, cycle, j],
                    )
                run.flush()
                if result.cancelled:
                    break
            if result.cancelled:
                break
        result.conductance_S = g
        result.current_A = cur
        result.initial_S = g0
        before = np.concatenate([g0[:, None], g[:, :-1, -1]], axis=1)  # (device, cycle)
        set_v, reset_v = switching_voltages(
            volts,
            g.reshape(-1, n_steps),
            initial_S=before.reshape(-1),
            relative_change=s.relative_change,
        )
        result.set_V = set_v.reshape(n_dev, s.cycles)
        result.reset_V = reset_v.reshape(n_dev, s.cycles)
        run.progress(total, total, "done")
        run.finish(
            result,
            {
                "voltage_V": (volts, ["step"]),
                "conductance_S": (g, ["device", "cycle", "step"]),
                "current_A": (cur, ["device", "cycle", "step"]),
                "sensed_V": (sensed, ["device", "cycle", "step"]),
                "initial_S": (g0, ["device"]),
                "set_V": (result.set_V, ["device", "cycle"]),
                "reset_V": (result.reset_V, ["device", "cycle"]),
                **device_arrays(devices),
            },
        )
    return result
