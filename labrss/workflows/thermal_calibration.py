"""Calibration at several temperatures: each element's temperature coefficient.

What ``labrss calibrate --temperatures 20,30,40`` and the GUI call::

    outcome = run_thermal_calibration(
        ThermalCalibrationSettings((20.0, 30.0, 40.0), CalibrationSettings(cells=...)),
        station=station, db_path=None, progress=print)
    print(outcome.run_id, outcome.common.common_ppm_per_K, outcome.common.spread_ppm_per_K)

For each set point in turn: the stage goes there (`labrss.lab.stage.go_to_temperature`:
limits checked before anything is sent, then the station's stability criterion with its
timeout), and an ordinary calibration run (`calibration.run.CalibrationRun`, its own
stored run with every reading) calibrates the cells, each stated at the board
temperature its own sensor read. When every point is done, each element's TCR is fitted
(`labrss.metrology.tcr.fit_tcr`) and stored per element (`Store.put_tcr`); the common
TCR and the spread are the run's summary. Finally the stage goes back to the station's
safe set point.

The run (kind ``thermal_calibration``) records its points as it goes (value ``points``).
Interrupted (``should_stop``, Ctrl-C, an instrument failure, a stability timeout), it is
stored as interrupted with the points done so far, and the stage is sent to the safe set
point; ``resume=RUN`` starts a new run from it that skips the finished points, resumes an
interrupted calibration where it stopped, and re-waits for stability first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calibration.run import CalibrationInterruptedError, CalibrationRun, RunProgress, resume_run
from calibration.settings import CalibrationSettings, SettingsError
from labrss.lab import Lab
from labrss.lab.stage import ThermalWaitStoppedError, go_to_temperature
from labrss.metrology.tcr import (
    CommonTCR,
    LeakageRate,
    TCRFit,
    fit_leakage_rate,
    fit_tcr,
    split_common,
)
from labrss.station import Station, default_station
from labrss.store import Store, StoreError, resolve_db_path
from labrss.workflows.boards import register_board

__all__ = [
    "KIND",
    "ThermalCalibrationOutcome",
    "ThermalCalibrationSettings",
    "parse_temperatures",
    "run_thermal_calibration",
]

KIND = "thermal_calibration"
"""The store's run kind."""
MIN_POINTS = 2

#: Progress callback: (message).
Progress = Callable[[str], None]


def parse_temperatures(text: str) -> tuple[float, ...]:
    """``"20,30,40"`` -> (20.0, 30.0, 40.0) (degC); SettingsError naming a bad entry."""
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise SettingsError(
                f"temperatures {text!r}: {part.strip()!r} is not a number (degC)"
            ) from None
        if not math.isfinite(value):
            raise SettingsError(f"temperatures {text!r}: {part.strip()!r} is not finite")
        values.append(value)
    return tuple(values)


@dataclass(frozen=True)
class ThermalCalibrationSettings:
    """What to do: ``temperatures_C`` in order; the calibration at each; the ramp (K/min,
    None: the station's largest)."""

    temperatures_C: tuple[float, ...]
    calibration: CalibrationSettings = field(default_factory=CalibrationSettings)
    ramp_K_per_min: float | None = None

    def validate(self, station: Station) -> ThermalCalibrationSettings:
        """Check against the station's stage (before anything is sent); SettingsError."""
        th = station.thermal
        if th is None:
            raise SettingsError(
                f"{station.name} has no [thermal] section: calibrating at several "
                "temperatures needs a thermal stage (docs/temperature.md)"
            )
        temps = self.temperatures_C
        if len(temps) < MIN_POINTS or len(set(temps)) != len(temps):
            raise SettingsError(
                f"temperatures {list(temps)}: need at least {MIN_POINTS} different set points"
            )
        lim = th.limits
        for t in temps:
            if not lim.min_C <= t <= lim.max_C:
                raise SettingsError(
                    f"temperature {t:g} degC is outside the station's [thermal] limits "
                    f"min_C = {lim.min_C:g} .. max_C = {lim.max_C:g} degC"
                )
        if self.ramp_K_per_min is not None and not (
            0 < self.ramp_K_per_min <= lim.max_ramp_K_per_min
        ):
            raise SettingsError(
                f"ramp {self.ramp_K_per_min:g} K/min is outside 0 .. [thermal] "
                f"max_ramp_K_per_min = {lim.max_ramp_K_per_min:g}"
            )
        self.calibration.validate()
        return self

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (stored with the run)."""
        return {
            "temperatures_C": list(self.temperatures_C),
            "calibration": self.calibration.to_json(),
            "ramp_K_per_min": self.ramp_K_per_min,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ThermalCalibrationSettings:
        """Back from `to_json`."""
        return cls(
            tuple(float(t) for t in data["temperatures_C"]),
            CalibrationSettings.from_json(data["calibration"]),
            data.get("ramp_K_per_min"),
        )


@dataclass(frozen=True)
class ThermalCalibrationOutcome:
    """The run, its points and the fit.

    Attributes:
        run_id: the thermal calibration run; status: ``completed`` or ``interrupted``.
        points: per set point: ``setpoint_C``, ``calibration_run_id``, ``status``,
            ``board_C`` (the board's sensor when stable), ``waited_s``.
        cells: the calibrated cells, in the order of the fit's first axis.
        fit: per element (cells, K) (None unless completed).
        common: the common TCR and the spread (None unless completed).
        leakage: the cells' off-leakage growth rate (None unless completed).
        db_path: the store.
    """

    run_id: int
    status: str
    points: tuple[dict[str, Any], ...]
    cells: tuple[tuple[int, int], ...]
    fit: TCRFit | None
    common: CommonTCR | None
    db_path: Path
    leakage: LeakageRate | None = None
    """The cells' off-leakage growth with temperature (None unless completed)."""


def _points_from(store: Store, parent: int | None, temps: Sequence[float]) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = [
        {"setpoint_C": t, "calibration_run_id": None, "status": "pending"} for t in temps
    ]
    if parent is None:
        return points
    names = store.result_names(parent)
    if "points" in names:
        for old, new in zip(store.get_value(parent, "points"), points, strict=True):
            new.update(old)
    return points


def _calibrate_point(  # noqa: PLR0917 (private helper)
    lab: Lab,
    store: Store,
    point: dict[str, Any],
    settings: CalibrationSettings,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
) -> None:
    """Calibrate at the present temperature (or finish the point's interrupted run)."""
    previous = point.get("calibration_run_id")
    if previous is not None and point["status"] == "interrupted":
        run = resume_run(lab, store, int(previous))
    else:
        run = CalibrationRun(lab, store, settings)

    last_cell: list[tuple[int, int] | None] = [None]

    def cal_progress(rp: RunProgress) -> None:
        if progress is not None and rp.cell is not None and rp.cell != last_cell[0]:
            last_cell[0] = rp.cell
            progress(
                f"{point['setpoint_C']:g} degC: calibrating cell {rp.cell} "
                f"({rp.done}/{rp.total} readings)"
            )

    try:
        result = run.run(progress=cal_progress, should_stop=should_stop)
    except CalibrationInterruptedError as exc:
        point.update(calibration_run_id=exc.run_id, status="interrupted")
        raise
    point.update(calibration_run_id=result.run_id, status=result.status)


def _fit(
    store: Store, points: Sequence[dict[str, Any]]
) -> tuple[list[tuple[int, int]], TCRFit, LeakageRate]:
    """Fit every cell calibrated at every point (their lineage's estimates): the elements'
    TCRs and the cells' off-leakage growth rate."""
    per_point: list[dict[tuple[int, int], tuple[np.ndarray, np.ndarray, float, float]]] = []
    leak_point: list[dict[tuple[int, int], tuple[float, float]]] = []
    for p in points:
        rid = int(p["calibration_run_id"])
        temps: dict[tuple[int, int], tuple[float, float]] = {}
        names = store.result_names(rid)
        if {"cell_temperature_C", "cell_temperature_u_K", "budget_cells"} <= set(names):
            run_cells = store.get_result(rid, "budget_cells").astype(np.int64)
            tc = store.get_result(rid, "cell_temperature_C")
            uc = store.get_result(rid, "cell_temperature_u_K")
            for (r, c), t_c, u_k in zip(run_cells.tolist(), tc, uc, strict=True):
                temps[(r, c)] = (float(t_c), float(u_k))
        fallback = float(p.get("board_C") or math.nan)
        entry = {}
        leak: dict[tuple[int, int], tuple[float, float]] = {}
        for est in store.estimates(rid):
            leak[(est.r, est.c)] = (est.leakage_S, est.leakage_std_S)
            comps = est.components
            if comps is not None:
                parts = [
                    comps[n] for n in ("statistical", "series", "leakage", "offset") if n in comps
                ]
                u_el = np.sqrt(np.sum([np.nan_to_num(x) ** 2 for x in parts], axis=0))
            else:
                u_el = est.std_S
            t_cell, u_cell = temps.get((est.r, est.c), (fallback, 0.01))
            entry[(est.r, est.c)] = (est.conductance_S, u_el, t_cell, u_cell)
        per_point.append(entry)
        leak_point.append(leak)
    cells = sorted(set.intersection(*(set(e) for e in per_point)))
    if not cells:
        raise StoreError("no cell was calibrated at every temperature of the run")
    g = np.array([[e[rc][0] for rc in cells] for e in per_point])
    u = np.array([[e[rc][1] for rc in cells] for e in per_point])
    t = np.array([[e[rc][2] for rc in cells] for e in per_point])
    ut = np.array([[e[rc][3] for rc in cells] for e in per_point])
    c0 = np.array([[lp.get(rc, (np.nan, np.nan))[0] for rc in cells] for lp in leak_point])
    u0 = np.array([[lp.get(rc, (np.nan, np.nan))[1] for rc in cells] for lp in leak_point])
    return cells, fit_tcr(t, g, u, ut), fit_leakage_rate(t, c0, u0)


def run_thermal_calibration(
    settings: ThermalCalibrationSettings | None = None,
    *,
    station: Station | None = None,
    db_path: str | Path | None = None,
    resume: int | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ThermalCalibrationOutcome:
    """Calibrate at each temperature and fit the TCRs (module docstring).

    ``settings`` is ignored with ``resume`` (the stored ones are used).

    Raises:
        SettingsError: bad temperatures or settings, or no thermal stage (before anything
            is switched or sent). StoreError: a run that cannot be resumed.
        ThermalStabilityError: no stability within the timeout (the run is stored as
            interrupted; the stage goes to its safe set point).
        CalibrationInterruptedError, instrument errors: likewise stored as interrupted.
    """
    st = station if station is not None else default_station()
    path = Path(resolve_db_path(db_path, station_path=st.store.path))
    with Store(path) as store:
        if resume is not None:
            info = store.run(resume)
            if info.kind != KIND:
                raise StoreError(f"run {resume} is a {info.kind} run, not a {KIND} run")
            settings = ThermalCalibrationSettings.from_json(info.settings)
        if settings is None:
            raise SettingsError("no temperatures given")
        settings = settings.validate(st)
        with Lab(st) as lab:
            board_id = register_board(lab, store)
            run_id = store.start_run(
                KIND,
                board_id,
                settings=settings.to_json(),
                identities={
                    **lab.identities,
                    "thermal": lab.thermal.identity,
                    "station": st.name,
                },
                parent_run_id=resume,
            )
            points = _points_from(store, resume, settings.temperatures_C)
            try:
                for index, point in enumerate(points):
                    if point["status"] == "completed":
                        continue
                    settled = go_to_temperature(
                        lab,
                        float(point["setpoint_C"]),
                        ramp_K_per_min=settings.ramp_K_per_min,
                        progress=progress,
                        should_stop=should_stop,
                    )
                    point.update(board_C=settled.board_C, waited_s=settled.waited_s)
                    store.put_value(
                        run_id,
                        f"stage_samples_{index}",
                        [s.to_json() for s in settled.samples[-60:]],
                    )
                    _calibrate_point(lab, store, point, settings.calibration, progress, should_stop)
                    store.put_value(run_id, "points", points)
                    if point["status"] != "completed":
                        raise ThermalWaitStoppedError("stopped during the calibration")
            except (ThermalWaitStoppedError, KeyboardInterrupt) as exc:
                store.put_value(run_id, "points", points)
                store.finish_run(run_id, "interrupted", note=str(exc)[:500])
                lab.thermal.safe()
                if progress is not None:
                    progress(f"run {run_id} interrupted; resume with --resume {run_id}")
                if isinstance(exc, KeyboardInterrupt):
                    raise
                return ThermalCalibrationOutcome(
                    run_id, "interrupted", tuple(points), (), None, None, path
                )
            except BaseException as exc:
                store.put_value(run_id, "points", points)
                store.finish_run(run_id, "interrupted", note=f"{type(exc).__name__}: {exc}"[:500])
                raise  # Lab's exit sends the stage to its safe set point
            cells, fit, leakage = _fit(store, points)
            store.put_tcr(
                run_id,
                cells,
                tcr_ppm_per_K=fit.tcr_ppm_per_K,
                u_tcr_ppm_per_K=fit.u_tcr_ppm_per_K,
                conductance_S=fit.conductance_S,
                reference_C=fit.reference_C,
            )
            common = split_common(fit.tcr_ppm_per_K, fit.u_tcr_ppm_per_K)
            store.put_value(
                run_id,
                "summary",
                {
                    "points": points,
                    "cells": len(cells),
                    "common_tcr": common.to_json(),
                    "median_u_tcr_ppm_per_K": float(np.nanmedian(fit.u_tcr_ppm_per_K)),
                    "leakage": leakage.to_json(),
                },
            )
            store.finish_run(run_id, "completed")
            lab.thermal.safe()
            if progress is not None:
                progress(
                    f"TCR of {int(np.isfinite(fit.tcr_ppm_per_K).sum())} elements: common "
                    f"{common.common_ppm_per_K:.2f} ppm/K, spread {common.spread_ppm_per_K:.2f} "
                    f"ppm/K; stage back to {lab.thermal.limits.safe_C:g} degC"
                )
            return ThermalCalibrationOutcome(
                run_id, "completed", tuple(points), tuple(cells), fit, common, path, leakage
            )
