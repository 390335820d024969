"""The main job end to end: calibrate (or reuse), program the digits network, run, report.

    from labrss.workflows.demo import DemoSettings, run_demo
    outcome = run_demo(DemoSettings(out_dir="demo-report"))
    print(outcome.report_path, outcome.summary())

1. Open the store and the station (`Lab`; no station: the embedded simulator).
2. Reuse the board's latest calibration when it covers every cell and is younger than
   ``max_calibration_age_s``; otherwise run one (`calibration.run.CalibrationRun`).
3. Train the digits MLP (`labrss.networks.digits`, seeded).
4. Program, verify and repair it (`labrss.workflows.program.program_network`).
5. Run the test vectors through the board (`labrss.workflows.mvm.run_mvm`).
6. Write the report (`labrss.report.demo_report`).

With ``devices="memristor"`` (`labrss demo --devices memristor`; no station: the embedded
simulator's ``memristor`` preset) the network must stay resident
(`labrss.workflows.memristor_program`): the 6-input, 3-class digits task of
`resident_digits_task` on 7 rows x 3 pairs. The demo calibrates (the device states as
delivered), programs every bank (coarse levels + RSS), verifies, runs the test set, then
advances the bench clock (`Lab.wait_s`: virtual time on the simulator) to each of
``drift_times_s`` and runs the test set twice: with the program as it was (no
compensation) and after `resolve_program` (re-read and re-solve every bank: switches only).
The report adds pulses, device states and accuracy over virtual time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from calibration.run import CalibrationRun
from calibration.settings import CalibrationSettings
from labrss.lab import Lab
from labrss.networks.digits import train_digits_mlp
from labrss.report.demo_report import DemoReportData, FloatArray, write_demo_report
from labrss.station import Station, default_station, parse_station
from labrss.store import Calibration, NoCalibrationError, Store, resolve_db_path
from labrss.workflows.memristor_program import (
    MemristorProgramResult,
    MemristorProgramSettings,
    program_network_memristor,
    resident_digits_task,
    resolve_program,
)
from labrss.workflows.mvm import MVMResult, MVMSettings, resolve_path, run_mvm
from labrss.workflows.program import ProgramResult, ProgramSettings, board_id_for, program_network

__all__ = ["DemoOutcome", "DemoSettings", "run_demo"]

#: Stage progress: (stage name, work done, total work, message).
StageProgress = Callable[[str, int, int, str], None]


def _fast_calibration() -> CalibrationSettings:
    """The demo's calibration: one-by-one design, offset-compensated reads."""
    return CalibrationSettings(design="single")


@dataclass(frozen=True)
class DemoSettings:
    """What `run_demo` does.

    Attributes:
        out_dir: where the report goes.
        vectors: test vectors run through the board (None: the whole test set, 450).
        path: column read-out of the MVMs (``"adc"``: fast; ``"smu"``: precise, slow;
            ``"superposition"``: one row source at a time, what a bench without DACs runs;
            ``"auto"``: ``"adc"`` where the board has ADCs, else superposition).
        hidden: hidden layer widths of the digits MLP.
        seed: training and split seed.
        max_calibration_age_s: a stored calibration older than this is not reused (s).
        force_calibration: calibrate even when a current calibration exists.
        calibration: settings of a new calibration run.
        program: program/verify settings; mvm: MVM settings (``path`` overrides its path).
        devices: ``"resistor"`` (the digits MLP, tiled) or ``"memristor"`` (module
            docstring).
        drift_times_s: memristor demo: virtual times after programming (s) at which the
            test set is run again, with and without drift compensation.
        memristor_program: memristor demo: programming settings.
    """

    out_dir: Path = Path("labrss-demo")
    vectors: int | None = None
    path: Literal["auto", "smu", "adc", "superposition"] = "auto"
    hidden: tuple[int, ...] = (16,)
    seed: int = 0
    max_calibration_age_s: float = 7 * 24 * 3600.0
    force_calibration: bool = False
    calibration: CalibrationSettings = field(default_factory=_fast_calibration)
    program: ProgramSettings = field(default_factory=ProgramSettings)
    mvm: MVMSettings = field(default_factory=MVMSettings)
    devices: Literal["resistor", "memristor"] = "resistor"
    drift_times_s: tuple[float, ...] = (3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0)
    memristor_program: MemristorProgramSettings = field(default_factory=MemristorProgramSettings)


@dataclass(frozen=True)
class DriftPoint:
    """The test set run at one virtual time after programming, without and with drift
    compensation (re-solve, switches only)."""

    time_s: float
    without: MVMResult
    with_resolve: MVMResult
    resolved_program_run_id: int | None

    def summary(self) -> dict[str, Any]:
        """JSON-ready accuracies and errors."""
        return {
            "time_s": self.time_s,
            "accuracy_analog_without": self.without.vs_target.accuracy_analog,
            "accuracy_analog_resolved": self.with_resolve.vs_target.accuracy_analog,
            "median_rel_l2_error_without": self.without.vs_programmed.median_rel_l2,
            "median_rel_l2_error_resolved": self.with_resolve.vs_programmed.median_rel_l2,
            "resolved_program_run_id": self.resolved_program_run_id,
        }


@dataclass
class DemoOutcome:
    """What the demo produced."""

    report_path: Path
    db_path: Path
    calibration_run_id: int
    calibrated_now: bool
    program: ProgramResult
    mvm: MVMResult
    target_test_accuracy: float
    wall_time_s: float
    instrument_time_s: float
    calibration_wall_s: float = 0.0
    drift: list[DriftPoint] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The JSON summary of `labrss demo --json`."""
        m = self.mvm.summary()
        extra: dict[str, Any] = {}
        if isinstance(self.program, MemristorProgramResult):
            p = self.program.summary()
            states = self.program.device_states_S()
            extra = {
                "devices": "memristor",
                "pulses": p["pulses"],
                "pulses_per_bank": p["pulses_per_bank"],
                "pulse_time_s": p["pulse_time_s"],
                "stuck_devices": p["stuck_devices"],
                "median_device_state_S": float(np.nanmedian(states)) if states.size else None,
                "over_time": [d.summary() for d in self.drift],
            }
        return extra | {
            "report": str(self.report_path),
            "db": str(self.db_path),
            "calibration_run_id": self.calibration_run_id,
            "calibrated_now": self.calibrated_now,
            "program_run_id": self.program.run_id,
            "mvm_run_id": self.mvm.run_id,
            "vectors": m["vectors"],
            "read_out": m["path"],
            "accuracy_digital": m["accuracy_digital"],
            "accuracy_programmed": m["accuracy_programmed"],
            "accuracy_analog": m["accuracy_analog"],
            "median_rel_l2_error": m["median_rel_l2_error"],
            "median_rel_l2_error_vs_target": m["median_rel_l2_error_vs_target"],
            "argmax_agreement": m["argmax_agreement"],
            "cells_programmed": self.program.cells_programmed,
            "cells_repaired": self.program.cells_repaired,
            "cells_missed": self.program.cells_missed,
            "wall_time_s": self.wall_time_s,
            "instrument_time_s": self.instrument_time_s,
            "stage_wall_s": {
                "calibrate": self.calibration_wall_s,
                "program": self.program.wall_time_s,
                "mvm": self.mvm.wall_time_s,
            },
        }


def run_demo(
    settings: DemoSettings | None = None,
    *,
    station: Station | None = None,
    db_path: str | Path | None = None,
    progress: StageProgress | None = None,
) -> DemoOutcome:
    """Run the whole demo (see the module docstring) and return its outcome."""
    cfg = settings or DemoSettings()
    if cfg.devices == "memristor":
        return _run_memristor_demo(cfg, station=station, db_path=db_path, progress=progress)
    if cfg.devices != "resistor":
        raise ValueError(f"demo setting devices = {cfg.devices!r}: 'resistor' or 'memristor'")
    started = time.perf_counter()
    st = station if station is not None else default_station()
    path = resolve_db_path(db_path, station_path=st.store.path)

    def stage(name: str) -> Callable[[int, int, str], None] | None:
        if progress is None:
            return None
        report = progress

        def cb(done: int, total: int, message: str) -> None:
            report(name, done, total, message)

        return cb

    model = train_digits_mlp(cfg.hidden, cfg.seed)
    data = model.data
    n = data.x_test.shape[0] if cfg.vectors is None else min(int(cfg.vectors), data.x_test.shape[0])
    if n < 1:
        raise ValueError(f"demo setting vectors = {cfg.vectors!r}: need at least one vector")
    x_test, y_test = data.x_test[:n], data.y_test[:n]
    with Store(path) as store, Lab(st) as lab:
        instrument0 = lab.instrument_time_s
        board_id = board_id_for(lab, store)
        calibrated_now = False
        try:
            cal = store.latest_calibration(board_id)
            age = time.time() - cal.ended_at
            current = bool(cal.measured.all()) and age <= cfg.max_calibration_age_s
        except NoCalibrationError:
            current = False
        calibration_s = 0.0
        if cfg.force_calibration or not current:
            t_cal = time.perf_counter()
            cb = stage("calibrate")
            CalibrationRun(lab, store, cfg.calibration).run(
                progress=None if cb is None else (lambda p: cb(p.done, p.total, "calibrate")),
            )
            calibrated_now = True
            calibration_s = time.perf_counter() - t_cal
        cal = store.latest_calibration(board_id)
        program = program_network(
            lab,
            store,
            model.network,
            data.x_train,
            settings=cfg.program,
            progress=stage("program"),
            note="labrss demo",
        )
        read_out = resolve_path(cfg.path, lab)
        mvm_cfg = MVMSettings(
            path=read_out,
            nplc=cfg.mvm.nplc,
            drift_compensation=cfg.mvm.drift_compensation,
            batch_size=cfg.mvm.batch_size,
        )
        mvm = run_mvm(
            lab,
            store,
            program,
            x_test,
            y_test,
            settings=mvm_cfg,
            progress=stage("mvm"),
            note="labrss demo",
        )
        instrument = lab.instrument_time_s - instrument0
        describe = lab.describe()
    wall = time.perf_counter() - started
    pred, meas = program.predicted_vs_measured(programmed_only=True)
    outcome_summary: dict[str, Any] = {
        "station": describe["station"],
        "board": describe["identities"]["board"],
        "cells x branches": "{rows}x{cols}x{branches}".format(**describe["geometry"]),
        "calibration run": cal.run_id,
        "calibrated now": calibrated_now,
        "program run": program.run_id,
        "mvm run": mvm.run_id,
        "test vectors": n,
        "column read-out": read_out,
        "median relative L2 error vs programmed": mvm.vs_programmed.median_rel_l2,
        "median relative L2 error vs target": mvm.vs_target.median_rel_l2,
        "median SNR vs programmed (dB)": mvm.vs_programmed.snr_db_median,
        "argmax agreement with programmed": mvm.vs_programmed.argmax_agreement,
        "cells programmed": program.cells_programmed,
        "cells repaired": program.cells_repaired,
        "cells still outside tolerance": program.cells_missed,
        "wall time (s)": wall,
        "instrument time (s)": instrument,
    }
    acc_rows = _accuracy_rows(mvm, "analog, on the board")
    report = write_demo_report(
        cfg.out_dir,
        DemoReportData(
            title=f"labrss demo: {model.network.name} on {describe['station']}",
            summary=outcome_summary,
            **_mvm_report_fields(mvm, cal, pred, meas),
            accuracy=acc_rows,
            notes=[
                f"Store: `{path}`. Layer-wise median relative L2 error (analog layer vs the "
                f"programmed layer on the same input): {mvm.layer_rel_l2_median}.",
            ],
        ),
    )
    return DemoOutcome(
        report_path=report,
        db_path=Path(path),
        calibration_run_id=cal.run_id,
        calibrated_now=calibrated_now,
        program=program,
        mvm=mvm,
        target_test_accuracy=model.test_accuracy,
        wall_time_s=wall,
        instrument_time_s=instrument,
        calibration_wall_s=calibration_s,
    )


# ---------------------------------------------------------------------------- memristors
def memristor_station(seed: int = 0) -> Station:
    """The embedded simulator with the ``memristor`` preset (8x8 cells of 8 devices)."""
    return parse_station({"simulator": {"board": "memristor", "seed": seed}})


def _run_memristor_demo(
    cfg: DemoSettings,
    *,
    station: Station | None,
    db_path: str | Path | None,
    progress: StageProgress | None,
) -> DemoOutcome:
    """The memristor demo (module docstring)."""
    started = time.perf_counter()
    st = station if station is not None else memristor_station(cfg.seed)
    path = resolve_db_path(db_path, station_path=st.store.path)
    times = [float(t) for t in cfg.drift_times_s]
    if any(not (math.isfinite(t) and t > 0) for t in times) or times != sorted(times):
        raise ValueError(
            f"demo setting drift_times_s = {cfg.drift_times_s!r}: need increasing times > 0 s"
        )

    def stage(name: str) -> Callable[[int, int, str], None] | None:
        if progress is None:
            return None
        report = progress

        def cb(done: int, total: int, message: str) -> None:
            report(name, done, total, message)

        return cb

    task = resident_digits_task(cfg.seed)
    n = task.x_test.shape[0] if cfg.vectors is None else min(int(cfg.vectors), len(task.x_test))
    if n < 1:
        raise ValueError(f"demo setting vectors = {cfg.vectors!r}: need at least one vector")
    x_test, y_test = task.x_test[:n], task.y_test[:n]
    with Store(path) as store, Lab(st) as lab:
        read_out = resolve_path(cfg.path, lab)
        mvm_cfg = MVMSettings(
            path=read_out,
            nplc=cfg.mvm.nplc,
            drift_compensation=cfg.mvm.drift_compensation,
            batch_size=cfg.mvm.batch_size,
        )
        instrument0 = lab.instrument_time_s + lab.pulse_time_s
        t_cal = time.perf_counter()
        cal_cb = stage("calibrate")
        cal_result = CalibrationRun(lab, store, cfg.calibration).run(
            progress=None if cal_cb is None else (lambda p: cal_cb(p.done, p.total, "calibrate")),
        )
        calibration_s = time.perf_counter() - t_cal
        board_id = board_id_for(lab, store)
        cal = store.latest_calibration(board_id)
        program = program_network_memristor(
            lab,
            store,
            task.network,
            task.x_train,
            settings=cfg.memristor_program,
            progress=stage("program"),
            note="labrss demo --devices memristor",
        )
        programmed_at = lab.clock_s()
        mvm = run_mvm(lab, store, program, x_test, y_test, settings=mvm_cfg, progress=stage("mvm"))
        drift: list[DriftPoint] = []
        for i, t in enumerate(times):
            drift_cb = stage("drift")
            if drift_cb is not None:
                drift_cb(i, len(times), f"t = {t:.0f} s")
            lab.wait_s(max(0.0, programmed_at + t - lab.clock_s()))
            without = run_mvm(
                lab, store, program, x_test, y_test, settings=mvm_cfg, note=f"drift t={t:.0f} s"
            )
            resolved = resolve_program(lab, store, program, settings=cfg.memristor_program)
            with_resolve = run_mvm(
                lab,
                store,
                resolved,
                x_test,
                y_test,
                settings=mvm_cfg,
                note=f"drift t={t:.0f} s, re-solved",
            )
            drift.append(DriftPoint(t, without, with_resolve, resolved.run_id))
        if drift and progress is not None:
            progress("drift", len(times), len(times), "done")
        instrument = lab.instrument_time_s + lab.pulse_time_s - instrument0
        describe = lab.describe()
    wall = time.perf_counter() - started
    pred, meas = program.predicted_vs_measured(programmed_only=True)
    p_sum = program.summary()
    summary: dict[str, Any] = {
        "station": describe["station"],
        "board": describe["identities"]["board"],
        "cells x devices": "{rows}x{cols}x{branches}".format(**describe["geometry"]),
        "task": f"{task.network.name}: 6 inputs, 3 classes, one layer (resident)",
        "calibration run": cal_result.run_id,
        "program run": program.run_id,
        "mvm run": mvm.run_id,
        "test vectors": n,
        "column read-out": read_out,
        "banks programmed": p_sum["banks"],
        "pulses": p_sum["pulses"],
        "pulses per bank": p_sum["pulses_per_bank"],
        "pulse time (s)": p_sum["pulse_time_s"],
        "stuck devices": p_sum["stuck_devices"],
        "median |bank error| (measured vs target)": p_sum["median_abs_bank_error"],
        "median relative L2 error vs programmed": mvm.vs_programmed.median_rel_l2,
        "median relative L2 error vs target": mvm.vs_target.median_rel_l2,
        "argmax agreement with programmed": mvm.vs_programmed.argmax_agreement,
        "cells repaired (re-solve)": program.cells_repaired,
        "cells still outside tolerance": program.cells_missed,
        "wall time (s)": wall,
        "instrument time incl. pulses (s)": instrument,
    }
    acc_rows = _accuracy_rows(mvm, "analog, on the board, just programmed")
    over_time = [
        (
            d.time_s,
            float(d.without.vs_target.accuracy_analog or math.nan),
            float(d.with_resolve.vs_target.accuracy_analog or math.nan),
            d.without.vs_programmed.median_rel_l2,
            d.with_resolve.vs_programmed.median_rel_l2,
        )
        for d in drift
    ]
    report = write_demo_report(
        cfg.out_dir,
        DemoReportData(
            title=f"labrss demo: {task.network.name} on memristors ({describe['station']})",
            summary=summary,
            **_mvm_report_fields(mvm, cal, pred, meas),
            accuracy=acc_rows,
            over_time=over_time,
            device_states_S=program.device_states_S(),
            notes=[
                f"Store: `{path}`. The calibration histogram shows the device states as "
                "delivered (before programming); the device-state histogram the states the "
                "banks were measured in after coarse programming. Over virtual time the "
                "first column runs the program as verified; the second re-reads every bank "
                "and re-chooses its subset first (switches only, no pulse).",
            ],
        ),
    )
    return DemoOutcome(
        report_path=report,
        db_path=Path(path),
        calibration_run_id=cal_result.run_id,
        calibrated_now=True,
        program=program,
        mvm=mvm,
        target_test_accuracy=task.test_accuracy,
        wall_time_s=wall,
        instrument_time_s=instrument,
        calibration_wall_s=calibration_s,
        drift=drift,
    )


def _accuracy_rows(mvm: MVMResult, analog_label: str) -> list[tuple[str, float]]:
    """The report's accuracy table: target, programmed (digital) and analog."""
    return [
        ("digital, target network", float(mvm.vs_target.accuracy_digital or math.nan)),
        (
            "digital, programmed (quantised) network",
            float(mvm.vs_programmed.accuracy_digital or math.nan),
        ),
        (analog_label, float(mvm.vs_target.accuracy_analog or math.nan)),
    ]


def _mvm_report_fields(
    mvm: MVMResult, cal: Calibration, pred: FloatArray, meas: FloatArray
) -> dict[str, Any]:
    """The `DemoReportData` fields both demos fill the same way (calibration, MVM)."""
    return {
        "element_S": np.asarray(cal.conductance_S),
        "element_std_S": np.asarray(cal.std_S),
        "predicted_S": pred,
        "measured_S": meas,
        "y_analog": mvm.y_analog,
        "y_programmed": mvm.y_programmed,
        "y_target": mvm.y_target,
        "rel_l2": mvm.vs_programmed.rel_l2,
    }
