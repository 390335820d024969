"""Drift of programmed memristor banks, and its compensation by re-solving (over `Lab`).

    from labrss.workflows.drift import DriftSettings, drift_study
    with Lab(station) as lab:
        study = drift_study(lab, [(0, 0), (0, 1)], [150e-6, 120e-6], DriftSettings())
        print(study.times_s, study.time_within_s(compensated=False),
              study.time_within_s(compensated=True))

Memristors relax after programming (the CMO/HfOx law of aihwkit: the mean conductance drops
by 0.089 uS per unit of ln(1 + t/1 s), with a spread of 0.042 uS per unit, docs/simulator.md),
so a bank programmed to a target slowly leaves it. RSS banks can be compensated without a
single pulse (crossbar_sim.md 2.3 compensates globally by a read-out scale; here the
device-level equivalent): **re-read** every branch and **re-solve** the subset for the
same target, then switch. Switches only: no pulse, so no wear and no programming noise.

`drift_study` programs each cell with RSS (`labrss.workflows.memristor_rss`), then at each
checkpoint after programming (bench clock: `Lab.wait_s`, virtual on the simulator) it
measures each cell twice, in the same minute:

* **fixed**: with the mask chosen at programming time (no compensation);
* **compensated**: after re-reading the branches and re-solving (the mask may change).

The time a bank stays within tolerance is the last checkpoint before its first miss
(a lower bound; the checkpoints are log-spaced). Stored (``store`` given) as a run of kind
``drift``: every read (`Store.add_readings`), the programming pulses (``pulses``) and the
arrays ``times_s``, ``error_fixed``, ``error_compensated``, ``masks_compensated`` and a JSON
``summary``. The errors are measured ones: labrss never reads the simulator's truth; a test
or benchmark compares with it through ``observe`` (`CellObserver`), called after each
fixed read (``"fixed"``) and each re-solve (``"compensated"``) while the cell holds the
mask just read.

Cost per checkpoint and cell: ``verify_reads`` reads (fixed) plus K x ``reads_per_branch``
+ ``verify_reads`` reads (compensated).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from drivers.board import Capability
from labrss.lab import Lab, LabInputError
from labrss.store import Store
from labrss.workflows.memristor_rss import (
    BankResult,
    BankSettings,
    CellObserver,
    measure_cell_S,
    program_bank_rss,
    resolve_bank,
)
from labrss.workflows.run_close import close_run_after
from labrss.workflows.write_verify import DeviceRecorder, board_id_for

__all__ = ["DEFAULT_TIMES_S", "DriftSettings", "DriftStudy", "drift_study"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

FloatArray = npt.NDArray[np.float64]

DEFAULT_TIMES_S: tuple[float, ...] = (
    10.0,
    60.0,
    600.0,
    3600.0,
    6 * 3600.0,
    86400.0,
    3 * 86400.0,
    7 * 86400.0,
    30 * 86400.0,
)
"""Checkpoints after programming (s): 10 s to 30 days, about log-spaced (drift goes as ln t)."""


@dataclass(frozen=True)
class DriftSettings:
    """A drift study.

    Attributes:
        tolerance: relative band a cell must stay within.
        times_s: checkpoints after the end of programming (s, increasing, > 0).
        bank: how the banks are programmed and read (`BankSettings`); its ``tolerance`` is
            the programming band (tighter than ``tolerance``, so there is room to drift).
    """

    tolerance: float = 0.01
    times_s: tuple[float, ...] = DEFAULT_TIMES_S
    bank: BankSettings = field(default_factory=lambda: BankSettings(tolerance=0.002))

    def __post_init__(self) -> None:
        if not 0 < self.tolerance < 1:
            raise ValueError(f"drift tolerance = {self.tolerance!r}: need 0 < tolerance < 1")
        times = np.asarray(self.times_s, dtype=np.float64)
        if times.ndim != 1 or times.size == 0:
            raise ValueError(f"drift times_s = {self.times_s!r}: need a non-empty list")
        if not np.all(np.isfinite(times)) or times[0] <= 0 or np.any(np.diff(times) <= 0):
            raise ValueError(
                f"drift times_s = {self.times_s!r}: need finite, positive, increasing times"
            )


@dataclass
class DriftStudy:
    """Errors of programmed banks over time, without and with compensation.

    Attributes:
        cells: ``(row, col)`` per bank; targets_S: (n,) targets (S).
        times_s: (T,) checkpoints after programming (s).
        error_fixed, error_compensated: (T, n) measured relative errors.
        masks_compensated: (T, n, K) masks chosen by each re-solve.
        tolerance: the band; programmed: the banks right after programming.
        pulses: pulses spent programming (none afterwards).
        run_id: the store run, or None.
    """

    cells: list[tuple[int, int]]
    targets_S: FloatArray
    times_s: FloatArray
    error_fixed: FloatArray
    error_compensated: FloatArray
    masks_compensated: npt.NDArray[np.bool_]
    tolerance: float
    programmed: list[BankResult]
    pulses: int
    run_id: int | None = None

    def time_within_s(self, *, compensated: bool) -> FloatArray:
        """Per bank, the last checkpoint (s) before its first miss of the tolerance.

        0 when the first checkpoint already misses; the last checkpoint when none does
        (the bank stayed within for the whole study).
        """
        err = self.error_compensated if compensated else self.error_fixed
        miss = np.abs(err) > self.tolerance
        out = np.empty(len(self.cells))
        for j in range(len(self.cells)):
            first = np.flatnonzero(miss[:, j])
            if first.size == 0:
                out[j] = self.times_s[-1]
            else:
                out[j] = 0.0 if first[0] == 0 else self.times_s[first[0] - 1]
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-ready medians per checkpoint and times within tolerance."""
        return {
            "run_id": self.run_id,
            "tolerance": self.tolerance,
            "cells": [list(c) for c in self.cells],
            "times_s": self.times_s.tolist(),
            "median_abs_error_fixed": np.median(np.abs(self.error_fixed), axis=1).tolist(),
            "median_abs_error_compensated": np.median(
                np.abs(self.error_compensated), axis=1
            ).tolist(),
            "time_within_s_fixed": self.time_within_s(compensated=False).tolist(),
            "time_within_s_compensated": self.time_within_s(compensated=True).tolist(),
            "programming_pulses": self.pulses,
            "pulses_after_programming": 0,
        }


HEARTBEAT_EVERY_S = 600.0
"""Real waits are cut into steps of this (s), each followed by a store heartbeat, so that
a week-long wait on hardware never looks like a dead run (`Store.mark_interrupted_runs`)."""


def _wait_alive(lab: Lab, seconds: float, store: Store | None, run_id: int | None) -> None:
    """`Lab.wait_s`, with a heartbeat every `HEARTBEAT_EVERY_S` of a real (not virtual) wait."""
    virtual = lab.station.smu.simulated and lab.station.board.simulated
    if virtual or store is None or run_id is None:
        lab.wait_s(seconds)
        return
    remaining = seconds
    while remaining > 0:
        step = min(HEARTBEAT_EVERY_S, remaining)
        lab.wait_s(step)
        remaining -= step
        store.heartbeat(run_id)


def drift_study(
    lab: Lab,
    cells: Sequence[tuple[int, int]],
    targets_S: Sequence[float],
    settings: DriftSettings | None = None,
    *,
    store: Store | None = None,
    note: str = "",
    progress: Callable[[int, int, str], None] | None = None,
    observe: CellObserver | None = None,
) -> DriftStudy:
    """Program the banks, then follow them over time with and without re-solving.

    Everything is checked before the first pulse (cells, targets, settings). Returns the
    `DriftStudy` (module docstring). ``observe(lab, r, c, "fixed" | "compensated")`` is
    called at each checkpoint after each read (module docstring).
    """
    s = settings if settings is not None else DriftSettings()
    lab.require(Capability.PULSES, needed_by="drift_study")
    if len(cells) != len(targets_S) or not cells:
        raise LabInputError(f"{len(cells)} cells but {len(targets_S)} targets")
    g = lab.geometry
    for r, c in cells:
        if not (0 <= r < g.rows and 0 <= c < g.cols):
            raise LabInputError(f"cell ({r}, {c}) not on the board ({g.rows}x{g.cols})")
        if lab.cell_kind(r, c) != "memristor":
            raise LabInputError(f"cell ({r}, {c}) holds resistors, not memristors")
    run_id = None
    if store is not None:
        run_id = store.start_run(
            "drift",
            board_id_for(lab, store),
            {"cells": [list(x) for x in cells], "targets_S": [float(t) for t in targets_S]}
            | {"tolerance": s.tolerance, "times_s": list(s.times_s), "bank": asdict(s.bank)},
            lab.describe(),
            note=note,
        )
    recorder = DeviceRecorder(store, run_id, "drift")
    n, n_t, k_all = len(cells), len(s.times_s), g.branches
    err_fixed = np.full((n_t, n), math.nan)
    err_comp = np.full((n_t, n), math.nan)
    masks = np.zeros((n_t, n, k_all), dtype=bool)
    total = n + n_t
    time0 = lab.instrument_time_s + lab.pulse_time_s
    try:
        pulses0 = lab.pulses_applied
        programmed: list[BankResult] = []
        for j, ((r, c), target) in enumerate(zip(cells, targets_S, strict=True)):
            if progress is not None:
                progress(j, total, f"programming cell ({r}, {c})")
            programmed.append(program_bank_rss(lab, r, c, float(target), s.bank, recorder=recorder))
            recorder.flush()
        pulses = lab.pulses_applied - pulses0
        t0 = lab.clock_s()
        current = list(programmed)
        for i, t in enumerate(s.times_s):
            if progress is not None:
                progress(n + i, total, f"checkpoint {t:g} s")
            _wait_alive(lab, max(0.0, t0 + t - lab.clock_s()), store, run_id)
            for j, (bank, target) in enumerate(zip(programmed, targets_S, strict=True)):
                r, c = bank.cell
                fixed = measure_cell_S(
                    lab,
                    r,
                    c,
                    bank.mask_int,
                    reads=s.bank.verify_reads,
                    nplc=s.bank.nplc,
                    recorder=recorder,
                )
                err_fixed[i, j] = (fixed - target) / target
                if observe is not None:
                    observe(lab, r, c, "fixed")
                current[j] = resolve_bank(lab, current[j], float(target), s.bank, recorder=recorder)
                err_comp[i, j] = current[j].error
                if observe is not None:
                    observe(lab, r, c, "compensated")
                masks[i, j] = current[j].mask
            recorder.flush()
        lab.open_all()
    except BaseException as exc:
        if store is not None and run_id is not None:
            close_run_after(exc, store, run_id, what="drift", save=recorder.flush)
        raise
    study = DriftStudy(
        cells=[(int(r), int(c)) for r, c in cells],
        targets_S=np.asarray(targets_S, dtype=np.float64),
        times_s=np.asarray(s.times_s, dtype=np.float64),
        error_fixed=err_fixed,
        error_compensated=err_comp,
        masks_compensated=masks,
        tolerance=s.tolerance,
        programmed=programmed,
        pulses=pulses,
        run_id=run_id,
    )
    if progress is not None:
        progress(total, total, "done")
    if store is not None and run_id is not None:
        for name in (
            "times_s",
            "error_fixed",
            "error_compensated",
            "masks_compensated",
        ):
            store.put_result(run_id, name, getattr(study, name))
        store.put_value(run_id, "summary", study.summary())
        store.finish_run(run_id, instrument_time_s=lab.instrument_time_s + lab.pulse_time_s - time0)
    return study
