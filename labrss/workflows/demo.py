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
from labrss.report.demo_report import DemoReportData, write_demo_report
from labrss.station import Station, default_station
from labrss.store import NoCalibrationError, Store, resolve_db_path
from labrss.workflows.mvm import MVMResult, MVMSettings, run_mvm
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
        path: column read-out of the MVMs (``"adc"``: fast; ``"smu"``: precise, slow).
        hidden: hidden layer widths of the digits MLP.
        seed: training and split seed.
        max_calibration_age_s: a stored calibration older than this is not reused (s).
        force_calibration: calibrate even when a current calibration exists.
        calibration: settings of a new calibration run.
        program: program/verify settings; mvm: MVM settings (``path`` overrides its path).
    """

    out_dir: Path = Path("labrss-demo")
    vectors: int | None = None
    path: Literal["smu", "adc"] = "adc"
    hidden: tuple[int, ...] = (16,)
    seed: int = 0
    max_calibration_age_s: float = 7 * 24 * 3600.0
    force_calibration: bool = False
    calibration: CalibrationSettings = field(default_factory=_fast_calibration)
    program: ProgramSettings = field(default_factory=ProgramSettings)
    mvm: MVMSettings = field(default_factory=MVMSettings)


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

    def summary(self) -> dict[str, Any]:
        """The JSON summary of `labrss demo --json`."""
        m = self.mvm.summary()
        return {
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
        mvm_cfg = MVMSettings(
            path=cfg.path,
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
        "column read-out": cfg.path,
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
    acc_rows = [
        ("digital, target network", float(mvm.vs_target.accuracy_digital or math.nan)),
        (
            "digital, programmed (quantised) network",
            float(mvm.vs_programmed.accuracy_digital or math.nan),
        ),
        ("analog, on the board", float(mvm.vs_target.accuracy_analog or math.nan)),
    ]
    report = write_demo_report(
        cfg.out_dir,
        DemoReportData(
            title=f"labrss demo: {model.network.name} on {describe['station']}",
            summary=outcome_summary,
            element_S=np.asarray(cal.conductance_S),
            element_std_S=np.asarray(cal.std_S),
            predicted_S=pred,
            measured_S=meas,
            y_analog=mvm.y_analog,
            y_programmed=mvm.y_programmed,
            y_target=mvm.y_target,
            rel_l2=mvm.vs_programmed.rel_l2,
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
