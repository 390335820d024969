"""Fit the device model to stored characterisation runs, per device and for the population,
and write it as a board file the simulator loads.

    from labrss.workflows.memristor_fit import fit_runs, board_toml
    with Store(path) as store:
        fit = fit_runs(store, [form_run, iv_staircase_run, iv_pulsed_run, retention_run])
    Path("my_devices.toml").write_text(board_toml(fit))   # labrss sim --board my_devices.toml

What each run kind gives (`labrss.memristor.fit` for the equations):

* ``memristor_form``: forming voltage, virgin and formed conductance per device; the
  clamp voltage ``I_cc / G_formed``;
* ``memristor_iv`` staircase: V0 of the sinh conduction law by polarity, from the points
  below switching of each half (the state read before the step as G);
* ``memristor_iv`` pulsed: g_min / g_max (2nd / 98th percentile of the device's reads),
  and V_th, V_ref of each polarity per cycle (`fit_threshold`, the exponent, levels and
  shape held at the documented values), the device's median over cycles;
* ``memristor_retention``: the relaxation per unit of ln(1 + t / 1 s), t counted from
  each device's last write (the run's ``age_s``; from the run's start when unknown);
* ``memristor_endurance``: pulses to failure (2 x cycles) of the failed devices.

The population is the mean and spread of each (log-normal for the virgin conductance and
the endurance). `board_toml` writes the ``[memristor]`` keys that were fitted, on top of
a base preset, so a user can simulate their own devices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from labrss.memristor.fit import (
    Spread,
    fit_conduction,
    fit_drift,
    fit_forming,
    fit_threshold,
    lognormal,
    normal,
)
from labrss.store import Store, StoreError

Branch = tuple[int, int, int]

#: Pulse-law parameters held during the threshold fit: the documented device model's
#: (docs/simulator.md, `[memristor]`): (exponent, levels, shape) per polarity, w_ref.
HELD = {"set": (3.0, 97.0, 0.5), "reset": (1.0, 100.0, 0.25)}
REFERENCE_WIDTH_S = 1e-4
_FORMED_ABOVE_S = 2e-6
"""A device whose reads stay below this is virgin: no switching or relaxation to fit."""

#: Per-device quantities, in the order of `DeviceModelFit.table`.
QUANTITIES = (
    "forming_V",
    "virgin_S",
    "formed_S",
    "clamp_V",
    "iv_v0_set_V",
    "iv_v0_reset_V",
    "g_min_S",
    "g_max_S",
    "set_threshold_V",
    "set_reference_V",
    "reset_threshold_V",
    "reset_reference_V",
    "drift_S_per_ln",
    "endurance_pulses",
)


@dataclass
class DeviceModelFit:
    """Fitted parameters per device (`QUANTITIES`, NaN where no run informed it) and the
    population spreads; ``runs`` are the runs used."""

    devices: dict[Branch, dict[str, float]] = field(default_factory=dict)
    runs: list[int] = field(default_factory=list)
    compliance_A: float = math.nan

    def put(self, device: Branch, name: str, value: float) -> None:
        """Set one quantity of one device."""
        self.devices.setdefault(device, dict.fromkeys(QUANTITIES, math.nan))[name] = value

    def column(self, name: str) -> npt.NDArray[np.float64]:
        """One quantity over the devices (sorted)."""
        return np.array([self.devices[d][name] for d in sorted(self.devices)], np.float64)

    def population(self) -> dict[str, Spread]:
        """Mean and spread of each quantity (log-normal: virgin_S, endurance_pulses)."""
        out: dict[str, Spread] = {}
        for name in QUANTITIES:
            values = self.column(name)
            out[name] = (
                lognormal(values) if name in ("virgin_S", "endurance_pulses") else normal(values)
            )
        return out

    def table(self) -> tuple[list[Branch], npt.NDArray[np.float64]]:
        """(devices, array (device, quantity)) for export."""
        keys = sorted(self.devices)
        return keys, np.array([[self.devices[d][q] for q in QUANTITIES] for d in keys])

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the runs, the population, every device."""

        def num(x: float) -> float | None:
            return None if not math.isfinite(x) else float(x)

        return {
            "runs": self.runs,
            "population": {
                k: {"centre": num(s.centre), "sigma": num(s.sigma), "n": s.n}
                for k, s in self.population().items()
                if s.n
            },
            "devices": [
                {"device": list(d), **{q: num(v) for q, v in self.devices[d].items()}}
                for d in sorted(self.devices)
            ],
        }


def _devices_of(store: Store, run_id: int) -> list[Branch]:
    return [tuple(int(x) for x in d) for d in store.run(run_id).settings["devices"]]  # type: ignore[misc]


def _fit_form(store: Store, run_id: int, fit: DeviceModelFit) -> None:
    rows = store.get_result(run_id, "forming")
    compliance = float(store.run(run_id).settings["compliance_A"])
    fit.compliance_A = compliance
    for row in rows:
        d = (int(row["r"]), int(row["c"]), int(row["k"]))
        if row["status"] in ("formed", "not_formed", "failed"):
            fit.put(d, "virgin_S", float(row["initial_S"]))
        if row["status"] == "formed":
            fit.put(d, "forming_V", float(row["forming_V"]))
            fit.put(d, "formed_S", float(row["formed_S"]))
            fit.put(d, "clamp_V", fit_forming(compliance, [row["formed_S"]]).centre)


def _halves(volts: npt.NDArray[np.float64]) -> dict[str, npt.NDArray[np.int64]]:
    return {"set": np.flatnonzero(volts > 0), "reset": np.flatnonzero(volts < 0)}


def _fit_iv(store: Store, run_id: int, fit: DeviceModelFit) -> None:
    info = store.run(run_id)
    settings = info.settings
    volts = store.get_result(run_id, "voltage_V")
    g = store.get_result(run_id, "conductance_S")
    g0 = store.get_result(run_id, "initial_S")
    devices = _devices_of(store, run_id)
    halves = _halves(volts)
    if settings.get("mode") == "staircase":
        current = store.get_result(run_id, "current_A")
        names = store.result_names(run_id)
        sensed = store.get_result(run_id, "sensed_V") if "sensed_V" in names else None
        limit = float(settings.get("compliance_A") or np.inf)
        read_v = float(settings.get("read_voltage_used_V") or 0.1)
        for i, d in enumerate(devices):
            if np.nanmedian(g[i]) < _FORMED_ABOVE_S:
                continue  # a virgin device
            for pol, key in (("set", "iv_v0_set_V"), ("reset", "iv_v0_reset_V")):
                v_pts, i_pts, g_pts = [], [], []
                for cycle in range(g.shape[1]):
                    before = np.concatenate(
                        [[g0[i] if cycle == 0 else g[i, cycle - 1, -1]], g[i, cycle, :-1]]
                    )
                    idx = halves[pol]
                    base = before[idx[0]]
                    for j in idx:
                        # below switching: the state read before this step is still the
                        # half's starting state (within 2 %), and the step is rising
                        rising = abs(volts[j]) >= abs(volts[j - 1]) if j > idx[0] else True
                        if not rising or abs(before[j] / base - 1.0) > 0.02:
                            break
                        if abs(current[i, cycle, j]) >= 0.9 * limit:
                            break  # the compliance holds the current: not the device's law
                        v_pts.append(volts[j] if sensed is None else sensed[i, cycle, j])
                        i_pts.append(current[i, cycle, j])
                        g_pts.append(before[j])
                v0, _ = fit_conduction(v_pts, i_pts, g_pts, read_v)
                fit.put(d, key, v0)
        return
    width = float(settings["width_s"])
    for i, d in enumerate(devices):
        reads = g[i][np.isfinite(g[i])]
        if reads.size < 4 or np.median(reads) < _FORMED_ABOVE_S:
            continue  # not measured, or a virgin device (nothing switches)
        lo, hi = float(np.percentile(reads, 2)), float(np.percentile(reads, 98))
        fit.put(d, "g_min_S", lo)
        fit.put(d, "g_max_S", hi)
        span = hi - lo
        per: dict[str, list[tuple[float, float]]] = {"set": [], "reset": []}
        for cycle in range(g.shape[1]):
            trace = g[i, cycle]
            if not np.isfinite(trace).all():
                continue
            start = g0[i] if cycle == 0 else g[i, cycle - 1, -1]
            for pol, idx in halves.items():
                x0 = float((trace[idx[0] - 1] if idx[0] > 0 else start) - lo) / span
                x = (trace[idx] - lo) / span
                exponent, levels, shape = HELD[pol]
                th, ref, _ = fit_threshold(
                    volts[idx],
                    np.clip(x, 0.0, 1.0),
                    float(np.clip(x0, 0.0, 1.0)),
                    width,
                    exponent=exponent,
                    levels=levels,
                    shape=shape,
                    reference_width_s=REFERENCE_WIDTH_S,
                )
                per[pol].append((th, ref))
        for pol in ("set", "reset"):
            if per[pol]:
                arr = np.array(per[pol])
                fit.put(d, f"{pol}_threshold_V", float(np.median(arr[:, 0])))
                fit.put(d, f"{pol}_reference_V", float(np.median(arr[:, 1])))


def _fit_retention(store: Store, run_id: int, fit: DeviceModelFit) -> None:
    t = store.get_result(run_id, "time_s")
    g = store.get_result(run_id, "conductance_S")
    names = store.result_names(run_id)
    age = store.get_result(run_id, "age_s") if "age_s" in names else np.full(g.shape[1], np.nan)
    for i, d in enumerate(_devices_of(store, run_id)):
        if np.nanmedian(g[:, i]) < _FORMED_ABOVE_S:
            continue  # a virgin device does not relax
        a, _ = fit_drift(t + (age[i] if np.isfinite(age[i]) else 0.0), g[:, i])
        fit.put(d, "drift_S_per_ln", a)


def _fit_endurance(store: Store, run_id: int, fit: DeviceModelFit) -> None:
    for row in store.get_result(run_id, "endurance"):
        if row["status"] == "failed":
            d = (int(row["r"]), int(row["c"]), int(row["k"]))
            fit.put(d, "endurance_pulses", 2.0 * float(row["cycles_to_failure"]))


_FITTERS = {
    "memristor_form": _fit_form,
    "memristor_iv": _fit_iv,
    "memristor_retention": _fit_retention,
    "memristor_endurance": _fit_endurance,
}


def fit_runs(store: Store, run_ids: Sequence[int]) -> DeviceModelFit:
    """Fit every device of the given runs (module docstring). Runs of other kinds are
    refused; runs that did not complete are refused too (their arrays may be partial)."""
    fit = DeviceModelFit(runs=[int(r) for r in run_ids])
    for run_id in run_ids:
        info = store.run(run_id)
        fitter = _FITTERS.get(info.kind)
        if fitter is None:
            raise StoreError(
                f"run {run_id} is a {info.kind} run: the device fit uses "
                f"{', '.join(sorted(_FITTERS))} runs"
            )
        if info.status != "completed":
            raise StoreError(f"run {run_id} is {info.status}: fit completed runs only")
        fitter(store, run_id, fit)
    return fit


def board_parameters(fit: DeviceModelFit) -> dict[str, float]:
    """The simulator's ``[memristor]`` keys the fit determines (population values)."""
    pop = fit.population()
    out: dict[str, float] = {}

    def put(key: str, value: float) -> None:
        if math.isfinite(value):
            out[key] = float(value)

    if pop["forming_V"].n:
        put("forming_V", pop["forming_V"].centre)
        put("forming_sigma_V", pop["forming_V"].sigma)
    if pop["virgin_S"].n:
        put("virgin_S", pop["virgin_S"].centre)
        put("virgin_sigma_decades", pop["virgin_S"].sigma)
    put("compliance_clamp_V", pop["clamp_V"].centre)
    put("iv_v0_set_V", pop["iv_v0_set_V"].centre)
    put("iv_v0_reset_V", pop["iv_v0_reset_V"].centre)
    if pop["g_min_S"].n and pop["g_max_S"].n:
        g_min, g_max = pop["g_min_S"], pop["g_max_S"]
        put("g_min_S", g_min.centre)
        put("g_max_S", g_max.centre)
        put("range_sigma", min(g_max.sigma / g_max.centre, 0.3))
    for pol in ("set", "reset"):
        put(f"{pol}_threshold_V", pop[f"{pol}_threshold_V"].centre)
        put(f"{pol}_reference_V", pop[f"{pol}_reference_V"].centre)
    sigmas = [pop[f"{p}_threshold_V"].sigma for p in ("set", "reset")]
    finite = [s for s in sigmas if math.isfinite(s)]
    if finite:
        put("threshold_sigma_V", float(np.mean(finite)))
    if pop["drift_S_per_ln"].n:
        put("drift_S_per_ln", pop["drift_S_per_ln"].centre)
        put("drift_sigma_S_per_ln", pop["drift_S_per_ln"].sigma)
    if pop["endurance_pulses"].n:
        put("endurance_cycles", pop["endurance_pulses"].centre)
        put("endurance_sigma_decades", pop["endurance_pulses"].sigma)
    # Keep the simulator's own consistency rules (a fit of few devices can break them).
    th_sigma = out.get("threshold_sigma_V", 0.05)
    for pol in ("set", "reset"):
        th, ref = out.get(f"{pol}_threshold_V"), out.get(f"{pol}_reference_V")
        if th is not None and ref is not None and ref <= th + 3 * th_sigma:
            out[f"{pol}_reference_V"] = th + 3 * th_sigma + 0.01
    if "forming_V" in out and out.get("forming_sigma_V", 0.0) * 3 >= out["forming_V"]:
        out["forming_sigma_V"] = out["forming_V"] / 4
    return out


def board_toml(fit: DeviceModelFit, base: str = "memristor_unformed") -> str:
    """A board file: ``base`` plus the fitted ``[memristor]`` keys (`board_parameters`)."""
    lines = [
        f"# Device model fitted by labrss to runs {', '.join(map(str, fit.runs))}",
        "# (labrss.workflows.memristor_fit): load with `labrss sim --board THIS_FILE`.",
        f'base = "{base}"',
        "",
        "[memristor]",
    ]
    lines += [f"{k} = {v!r}" for k, v in board_parameters(fit).items()]
    return "\n".join(lines) + "\n"
