"""`labrss demo --network mnist1d-cnn`: a CNN calibrated, programmed and run on the bench.

    from labrss.workflows.cnn_demo import CNNDemoSettings, run_cnn_demo
    outcome = run_cnn_demo(CNNDemoSettings(network="mnist1d-cnn", vectors=300))

1. Open the store and the station. With no station: the embedded simulator with a
   32 x 32 board of 8 branches per cell (the default board's parts, `CNN_BOARD`): the
   MNIST-1D CNN needs 18 tiles there (60 on the default 16 x 16 board).
2. Reuse the board's latest calibration when it covers every cell and is younger than
   ``max_calibration_age_s``; otherwise calibrate (one-by-one design).
3. Load the shipped CNN (``mnist1d-cnn``: MNIST-1D signals; ``digits-cnn``: the digits
   images as ``(1, 8, 8)``) and its data; program, verify and repair every tile
   (`labrss.workflows.cnn.program_cnn`).
4. Run the first ``vectors`` test inputs through the board, tile by tile, every patch
   streamed through each tile once programmed (`labrss.workflows.cnn.run_cnn_mvm`).
5. Write the report (`labrss.report.demo_report`, the resistor demo's format) with the
   per-layer MVM error, tiles, cells and times.
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
from labrss.networks.files import load_network
from labrss.networks.sequential import SequentialNetwork
from labrss.report.demo_report import DemoReportData, write_demo_report
from labrss.station import Station, parse_station
from labrss.store import NoCalibrationError, Store, resolve_db_path
from labrss.workflows.cnn import CNNMVMResult, CNNProgramResult, program_cnn, run_cnn_mvm
from labrss.workflows.mvm import MVMSettings
from labrss.workflows.program import ProgramSettings, board_id_for

__all__ = ["CNN_BOARD", "CNN_NETWORKS", "CNNDemoOutcome", "CNNDemoSettings", "run_cnn_demo"]

#: The simulated board of the CNN demo (a board TOML: the default board's parts, 32 x 32).
CNN_BOARD = 'base = "default"\nname = "cnn32"\n\n[geometry]\nrows = 32\ncols = 32\nbranches = 8\n'
#: Networks the demo knows the data of.
CNN_NETWORKS = ("mnist1d-cnn", "digits-cnn")

StageProgress = Callable[[str, int, int, str], None]


@dataclass(frozen=True)
class CNNDemoSettings:
    """What `run_cnn_demo` does (see the module docstring)."""

    out_dir: Path = Path("labrss-demo")
    network: str = "mnist1d-cnn"
    vectors: int | None = 300
    path: Literal["smu", "adc"] = "adc"
    seed: int = 0
    max_calibration_age_s: float = 7 * 24 * 3600.0
    force_calibration: bool = False
    calibration: CalibrationSettings = field(
        default_factory=lambda: CalibrationSettings(design="single")
    )
    #: per-output-column scale: each output channel uses its pairs' whole conductance
    #: range (median MVM error 1.9 % vs 3.0 % per layer scale, docs/networks.md)
    program: ProgramSettings = field(default_factory=lambda: ProgramSettings(scale="column"))
    mvm: MVMSettings = field(default_factory=MVMSettings)


@dataclass
class CNNDemoOutcome:
    """What the CNN demo produced."""

    report_path: Path
    db_path: Path
    calibration_run_id: int
    calibrated_now: bool
    program: CNNProgramResult
    mvm: CNNMVMResult
    wall_time_s: float
    instrument_time_s: float
    calibration_wall_s: float = 0.0
    board: str = ""

    def summary(self) -> dict[str, Any]:
        """The JSON of `labrss demo --network ... --json` (the resistor demo's keys, plus
        tiles, cells and the per-layer MVM error)."""
        m = self.mvm.summary()
        p = self.program.summary()
        return {
            "report": str(self.report_path),
            "db": str(self.db_path),
            "network": self.program.network.name,
            "board": self.board,
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
            "layer_rel_l2_median": m["layer_rel_l2_median"],
            "tiles": p["tiles"],
            "tiles_per_layer": p["tiles_per_layer"],
            "cells_used": p["cells_used"],
            "cells_programmed": self.program.cells_programmed,
            "cells_repaired": self.program.cells_repaired,
            "cells_missed": self.program.cells_missed,
            "mvms": m["mvms"],
            "wall_time_s": self.wall_time_s,
            "instrument_time_s": self.instrument_time_s,
            "stage_wall_s": {
                "calibrate": self.calibration_wall_s,
                "program": self.program.wall_time_s,
                "mvm": self.mvm.wall_time_s,
            },
        }


def cnn_data(name: str) -> tuple[SequentialNetwork, np.ndarray, np.ndarray, np.ndarray]:
    """The shipped CNN ``name`` with its reference (train) inputs and test set."""
    if name not in CNN_NETWORKS:
        raise ValueError(f"demo network {name!r}: choose from {', '.join(CNN_NETWORKS)}")
    net = load_network(name)
    if name == "mnist1d-cnn":
        from labrss.networks.mnist1d import load_mnist1d

        m = load_mnist1d()
        return net, m.x_train, m.x_test, m.y_test
    from labrss.networks.digits import load_digits_split

    d = load_digits_split(0)
    return net, d.x_train.reshape(-1, 1, 8, 8), d.x_test.reshape(-1, 1, 8, 8), d.y_test


def cnn_station(out_dir: Path, seed: int = 0) -> Station:
    """The embedded simulator with the `CNN_BOARD` (its TOML written into ``out_dir``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    board = out_dir / "cnn32.toml"
    board.write_text(CNN_BOARD)
    return parse_station({"simulator": {"board": str(board), "seed": seed}})


def run_cnn_demo(
    settings: CNNDemoSettings | None = None,
    *,
    station: Station | None = None,
    db_path: str | Path | None = None,
    progress: StageProgress | None = None,
) -> CNNDemoOutcome:
    """Run the CNN demo (module docstring) and return its outcome."""
    cfg = settings or CNNDemoSettings()
    started = time.perf_counter()
    net, x_ref, x_all, y_all = cnn_data(cfg.network)
    n = x_all.shape[0] if cfg.vectors is None else min(int(cfg.vectors), x_all.shape[0])
    if n < 1:
        raise ValueError(f"demo setting vectors = {cfg.vectors!r}: need at least one vector")
    st = station if station is not None else cnn_station(Path(cfg.out_dir), cfg.seed)
    path = resolve_db_path(db_path, station_path=st.store.path)

    def stage(name: str) -> Callable[[int, int, str], None] | None:
        if progress is None:
            return None
        report = progress

        def cb(done: int, total: int, message: str) -> None:
            report(name, done, total, message)

        return cb

    with Store(path) as store, Lab(st) as lab:
        instrument0 = lab.instrument_time_s
        board_id = board_id_for(lab, store)
        try:
            cal = store.latest_calibration(board_id)
            current = bool(cal.measured.all()) and (
                time.time() - cal.ended_at <= cfg.max_calibration_age_s
            )
        except NoCalibrationError:
            current = False
        calibrated_now = False
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
        program = program_cnn(
            lab, store, net, x_ref, settings=cfg.program, progress=stage("program"),
            note="labrss demo (CNN)",
        )  # fmt: skip
        mvm_cfg = MVMSettings(
            path=cfg.path,
            nplc=cfg.mvm.nplc,
            drift_compensation=cfg.mvm.drift_compensation,
            batch_size=cfg.mvm.batch_size,
        )
        mvm = run_cnn_mvm(
            lab, store, program, x_all[:n], y_all[:n], settings=mvm_cfg,
            progress=stage("mvm"), note="labrss demo (CNN)",
        )  # fmt: skip
        instrument = lab.instrument_time_s - instrument0
        describe = lab.describe()
    wall = time.perf_counter() - started
    pred, meas = program.predicted_vs_measured()
    geometry = "{rows}x{cols}x{branches}".format(**describe["geometry"])
    summary: dict[str, Any] = {
        "station": describe["station"],
        "board": describe["identities"]["board"],
        "cells x branches": geometry,
        "network": net.name,
        "calibration run": cal.run_id,
        "calibrated now": calibrated_now,
        "program run": program.run_id,
        "mvm run": mvm.run_id,
        "test vectors": n,
        "column read-out": cfg.path,
        "tiles (per layer)": f"{program.tiles} ({program.summary()['tiles_per_layer']})",
        "cells used / programmed": f"{program.cells_used} / {program.cells_programmed}",
        "MVMs (vectors x tiles)": mvm.mvms,
        "median relative L2 error vs programmed": mvm.vs_programmed.median_rel_l2,
        "median relative L2 error per layer": ", ".join(
            f"{e:.3g}" for e in mvm.layer_rel_l2_median
        ),
        "argmax agreement with programmed": mvm.vs_programmed.argmax_agreement,
        "cells repaired / missed": f"{program.cells_repaired} / {program.cells_missed}",
        "wall time (s)": wall,
        "instrument time (s)": instrument,
    }
    accuracy = [
        ("digital, target network", float(mvm.vs_target.accuracy_digital or math.nan)),
        (
            "digital, programmed (quantised) network",
            float(mvm.vs_programmed.accuracy_digital or math.nan),
        ),
        ("analog, on the board", float(mvm.vs_target.accuracy_analog or math.nan)),
    ]
    report = write_demo_report(
        Path(cfg.out_dir),
        DemoReportData(
            title=f"labrss demo: {net.name} on {describe['station']}",
            summary=summary,
            element_S=np.asarray(cal.conductance_S),
            element_std_S=np.asarray(cal.std_S),
            predicted_S=pred,
            measured_S=meas,
            y_analog=mvm.y_analog,
            y_programmed=mvm.y_programmed,
            y_target=mvm.y_target,
            rel_l2=mvm.vs_programmed.rel_l2,
            accuracy=accuracy,
            notes=[
                f"Store: `{path}`. Each conv layer runs as its im2col kernel matrix: every "
                "tile is programmed once and every patch of every test signal streamed "
                "through it before the next tile (docs/networks.md).",
            ],
        ),
    )
    return CNNDemoOutcome(
        report_path=report,
        db_path=Path(path),
        calibration_run_id=cal.run_id,
        calibrated_now=calibrated_now,
        program=program,
        mvm=mvm,
        wall_time_s=wall,
        instrument_time_s=instrument,
        calibration_wall_s=calibration_s,
        board=geometry,
    )
