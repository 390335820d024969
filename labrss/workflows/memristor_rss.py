"""RSS over memristor banks, and its comparison with write-verify alone (over `Lab`).

    from labrss.workflows.memristor_rss import BankSettings, program_bank_rss
    with Lab(station) as lab:
        bank = program_bank_rss(lab, 0, 3, 150e-6)   # coarse levels, measure, subset
        print(bank.mask, bank.measured_S, bank.error, bank.pulses)
        bank = resolve_bank(lab, bank, 120e-6)       # a new target: switches only

**RSS over a bank** (`program_bank_rss`):

1. *Coarse*: every branch of cell (r, c) is write-verified loosely (``coarse_tolerance``,
   10 % by default) to its level of `labrss.memristor.coarse_levels` (a geometric ladder
   inside the device range from ``BOARD:INFO?`` ``g_min_S``/``g_max_S``). Few pulses: the
   band is wide.
2. *Settle* (optional ``settle_s``): the devices relax fastest right after programming
   (CMO relaxation goes as ln(1 + t/1 s)); measuring after a wait leaves less drift for
   later (see `labrss.workflows.drift`).
3. *Measure*: each branch alone, ``reads_per_branch`` guarded reads averaged (the white
   read noise averages down), with its standard error.
4. *Choose the subset* with `labrss.rss.solve` (exact, K <= 44) for the fine target, set
   the mask, and verify by reading the programmed cell (``verify_reads`` averaged).

Stuck or worn-out devices are not excluded: they have a measured conductance like any
other, and the subset choice uses it. The common series path (leads, routing: ~0.3 ohm)
is neglected: 0.3 ohm x 200 uS = 6e-5 relative.

**Write-verify alone** (`program_bank_write_verify`): the same cell target split evenly
over the fewest branches that can hold it (each below 75 % of g_max), each write-verified
to the cell's tolerance, those switches closed, the cell verified the same way.

**Comparison** (`compare_methods`): for each method and setting, a fresh simulated bench
from the same station (same seed: the same devices in the same initial states) programs
the same cells to the same targets; it reports the precision reached (measured cell vs
target) against pulses and instrument time. Results are stored (run kind
``memristor_rss``) when a store is given. labrss knows only its measurements: a test or a
benchmark that wants the error against the simulator's truth passes an ``observe``
callback (`CellObserver`), called while each programmed cell holds its mask, and reads
the truth itself (benchmarks/bench_memristor_programming.py does).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from labrss.lab import Lab, LabInputError
from labrss.memristor import CoarsePlan, WriteVerifySettings, coarse_levels
from labrss.rss import solve
from labrss.station import Station
from labrss.store import Store
from labrss.workflows.run_close import close_run_after
from labrss.workflows.write_verify import (
    DeviceRecorder,
    DeviceResult,
    bench_settings,
    board_id_for,
    read_branch,
    valid_conductance_S,
    write_verify_device,
)

__all__ = [
    "BankResult",
    "BankSettings",
    "CellObserver",
    "MethodPoint",
    "compare_methods",
    "measure_cell_S",
    "program_bank_rss",
    "program_bank_write_verify",
    "resolve_bank",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

Method = Literal["rss", "write_verify"]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

CellObserver = Callable[[Lab, int, int, str], None]
"""``observe(lab, row, col, label)``: called while a programmed cell holds its mask
(``label`` says when: ``"programmed"``, or the drift study's ``"fixed"`` and
``"compensated"`` reads). For tests and benchmarks that compare a cell with the simulator's
truth; labrss itself never reads the truth (docs/architecture.md)."""


@dataclass(frozen=True)
class BankSettings:
    """How a bank is programmed.

    Attributes:
        coarse_tolerance: RSS: relative band of the coarse levels.
        tolerance: the cell's relative band. Write-verify alone: the band of each device
            (and so of the cell). RSS: the band of the predicted cell, re-rolling single
            branches (one pulse each) until the best subset is within it.
        max_rerolls: RSS: most re-rolls per bank.
        reads_per_verify: readings averaged per write-verify decision (write-verify alone).
        coarse_reads_per_verify: the same for RSS's coarse levels: one read (0.2 uS of read
            noise) is plenty for a band of several uS.
        reads_per_branch: RSS: readings averaged per branch measurement.
        verify_reads: readings averaged for the final cell verification.
        settle_s: RSS: wait between coarse programming and measurement (s, bench clock).
        nplc: SMU integration time (None: the station's).
        write_verify: the write-verify loop's other knobs (its tolerance is replaced).
    """

    coarse_tolerance: float = 0.1
    tolerance: float = 0.01
    reads_per_verify: int = 2
    coarse_reads_per_verify: int = 1
    reads_per_branch: int = 4
    verify_reads: int = 4
    settle_s: float = 0.0
    max_rerolls: int = 40
    nplc: float | None = None
    write_verify: WriteVerifySettings = field(default_factory=WriteVerifySettings)

    def __post_init__(self) -> None:
        for name in ("coarse_tolerance", "tolerance"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"bank setting {name} = {value!r}: need 0 < value < 1")
        for name in (
            "reads_per_verify",
            "coarse_reads_per_verify",
            "reads_per_branch",
            "verify_reads",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"bank setting {name} = {value!r}: need an integer >= 1")
        for name in ("max_rerolls",):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"bank setting {name} = {value!r}: need an integer >= 0")
        if not (math.isfinite(self.settle_s) and self.settle_s >= 0):
            raise ValueError(f"bank setting settle_s = {self.settle_s!r}: need >= 0 s")


@dataclass(frozen=True)
class BankResult:
    """A programmed bank (one cell).

    Attributes:
        method: ``rss`` or ``write_verify``.
        cell: ``(row, col)``; target_S: the cell target (S).
        devices: write-verify outcome of each programmed branch.
        branch_S: (K,) measured branch conductances (S; NaN where not measured).
        branch_sigma_S: (K,) their standard errors (S).
        mask: (K,) closed branches; predicted_S: the solver's value for the mask (S).
        measured_S: the programmed cell as read (S); error: (measured - target) / target.
        rerolls: RSS: single-branch re-rolls until the prediction was within tolerance.
        pulses: pulses applied to this bank; instrument_time_s: SMU integration plus
            pulse time spent on it (s); stuck: devices that ended ``stuck``.
        plan: the coarse plan (RSS), else None.
    """

    method: Method
    cell: tuple[int, int]
    target_S: float
    devices: tuple[DeviceResult, ...]
    branch_S: FloatArray
    branch_sigma_S: FloatArray
    mask: BoolArray
    predicted_S: float
    measured_S: float
    error: float
    pulses: int
    instrument_time_s: float
    plan: CoarsePlan | None = None
    rerolls: int = 0

    @property
    def stuck(self) -> int:
        """Devices of the bank whose write-verify ended ``stuck``."""
        return sum(d.status == "stuck" for d in self.devices)

    @property
    def mask_int(self) -> int:
        """The mask as an integer (bit k = branch k closed)."""
        return int(sum(1 << k for k in np.flatnonzero(self.mask)))


def _memristor_range(lab: Lab) -> tuple[float, float]:
    board = lab.board
    if not (math.isfinite(board.g_min_S) and math.isfinite(board.g_max_S)):
        raise LabInputError(
            f"{board.identity}: BOARD:INFO? gives no memristor range (g_min_S, g_max_S)"
        )
    return board.g_min_S, board.g_max_S


def _check_cell(lab: Lab, r: int, c: int, target_S: float) -> None:
    g = lab.geometry
    if not (0 <= r < g.rows and 0 <= c < g.cols):
        raise LabInputError(f"cell ({r}, {c}) not on the board ({g.rows}x{g.cols})")
    if lab.cell_kind(r, c) != "memristor":
        raise LabInputError(f"cell ({r}, {c}) holds resistors, not memristors")
    if not (math.isfinite(target_S) and target_S > 0):
        raise LabInputError(f"cell ({r}, {c}) target {target_S!r} S: must be > 0")


def measure_cell_S(
    lab: Lab,
    r: int,
    c: int,
    mask: int,
    *,
    reads: int,
    nplc: float | None,
    recorder: DeviceRecorder,
) -> float:
    """Set cell (r, c) to ``mask`` and return the mean of ``reads`` readings (S)."""
    values = [
        valid_conductance_S(lab.measure_subset(r, c, mask, nplc=nplc), recorder)
        for _ in range(reads)
    ]
    return float(np.mean(values))


def measure_branches(
    lab: Lab, r: int, c: int, *, reads: int, nplc: float | None, recorder: DeviceRecorder
) -> tuple[FloatArray, FloatArray]:
    """Each branch of cell (r, c) alone, ``reads`` readings averaged: mean and its sigma (S)."""
    k_all = lab.geometry.branches
    means = np.empty(k_all)
    sigmas = np.empty(k_all)
    for k in range(k_all):
        means[k], sigmas[k] = read_branch(lab, r, c, k, reads=reads, nplc=nplc, recorder=recorder)
    return means, sigmas


def _solve(
    target_S: float, branch_S: FloatArray, branch_sigma_S: FloatArray
) -> tuple[BoolArray, float]:
    """The best subset of the measured branches for ``target_S``: (mask, predicted S)."""
    sigma = np.where(np.isfinite(branch_sigma_S), branch_sigma_S, 0.0)
    result = solve(branch_S[None, :], np.array([target_S]), sigma_S=sigma[None, :])
    return np.asarray(result.mask[0], dtype=bool), float(result.value[0])


def _choose(
    lab: Lab,
    r: int,
    c: int,
    target_S: float,
    *,
    branch_S: FloatArray,
    branch_sigma_S: FloatArray,
    settings: BankSettings,
    recorder: DeviceRecorder,
) -> tuple[BoolArray, float, float]:
    """Solve the subset for ``target_S``, set it, read the cell: (mask, predicted, measured)."""
    mask, predicted = _solve(target_S, branch_S, branch_sigma_S)
    mask_int = int(sum(1 << int(k) for k in np.flatnonzero(mask)))
    measured = measure_cell_S(
        lab, r, c, mask_int, reads=settings.verify_reads, nplc=settings.nplc, recorder=recorder
    )
    return mask, predicted, measured


def _reroll(  # noqa: PLR0917 (private helper of program_bank_rss)
    lab: Lab,
    r: int,
    c: int,
    target_S: float,
    plan: CoarsePlan,
    devices: Sequence[DeviceResult],
    branch_S: FloatArray,
    branch_sigma_S: FloatArray,
    wv: WriteVerifySettings,
    s: BankSettings,
    rec: DeviceRecorder,
) -> int:
    """Re-roll single branches until the predicted cell is within the tolerance.

    While the best subset of the measured branches misses ``target_S`` by more than
    ``s.tolerance``, one branch (round robin, stuck devices skipped) gets one pulse of the
    loop's start amplitude and width towards its coarse level, and only that branch is
    measured again (``branch_S``, ``branch_sigma_S`` updated in place). The pulse's
    cycle-to-cycle noise makes the new value random: half of the 2**K subset sums move, a
    fresh chance that one lands near the target. Returns the number of re-rolls.
    """
    candidates = [k for k, d in enumerate(devices) if d.status != "stuck"]
    rerolls = 0
    _, predicted = _solve(target_S, branch_S, branch_sigma_S)
    while (
        candidates
        and abs(predicted - target_S) > s.tolerance * target_S
        and rerolls < s.max_rerolls
    ):
        k = candidates[rerolls % len(candidates)]
        up = branch_S[k] < plan.levels_S[k]
        amplitude = wv.set_start_V if up else -wv.reset_start_V
        rec.pulse(lab.pulse_branch(r, c, k, amplitude, wv.width_s))
        branch_S[k], branch_sigma_S[k] = read_branch(
            lab, r, c, k, reads=s.reads_per_branch, nplc=s.nplc, recorder=rec
        )
        _, predicted = _solve(target_S, branch_S, branch_sigma_S)
        rerolls += 1
    return rerolls


def program_bank_rss(
    lab: Lab,
    r: int,
    c: int,
    target_S: float,
    settings: BankSettings | None = None,
    *,
    plan: CoarsePlan | None = None,
    recorder: DeviceRecorder | None = None,
) -> BankResult:
    """Coarse levels, settle, measure, choose the subset (module docstring)."""
    s = settings if settings is not None else BankSettings()
    _check_cell(lab, r, c, target_S)
    rec = recorder if recorder is not None else DeviceRecorder(None, None, "rss")
    g_min, g_max = _memristor_range(lab)
    k_all = lab.geometry.branches
    if plan is None:
        plan = coarse_levels(g_min, g_max, k_all, tolerance=s.coarse_tolerance)
    if plan.levels_S.shape != (k_all,):
        raise LabInputError(f"coarse plan has {plan.levels_S.size} levels, the bank {k_all}")
    wv = bench_settings(lab, replace(s.write_verify, tolerance=plan.tolerance))
    time0 = lab.instrument_time_s + lab.pulse_time_s
    pulses0 = lab.pulses_applied
    devices = tuple(
        write_verify_device(
            lab,
            (r, c, k),
            float(plan.levels_S[k]),
            wv,
            rec,
            reads_per_verify=s.coarse_reads_per_verify,
            nplc=s.nplc,
        )
        for k in range(k_all)
    )
    if s.settle_s > 0:
        lab.wait_s(s.settle_s)
    branch_S, branch_sigma = measure_branches(
        lab, r, c, reads=s.reads_per_branch, nplc=s.nplc, recorder=rec
    )
    rerolls = _reroll(lab, r, c, target_S, plan, devices, branch_S, branch_sigma, wv, s, rec)
    mask, predicted, measured = _choose(
        lab,
        r,
        c,
        target_S,
        branch_S=branch_S,
        branch_sigma_S=branch_sigma,
        settings=s,
        recorder=rec,
    )
    return BankResult(
        rerolls=rerolls,
        method="rss",
        cell=(int(r), int(c)),
        target_S=float(target_S),
        devices=devices,
        branch_S=branch_S,
        branch_sigma_S=branch_sigma,
        mask=mask,
        predicted_S=predicted,
        measured_S=measured,
        error=(measured - target_S) / target_S,
        pulses=lab.pulses_applied - pulses0,
        instrument_time_s=lab.instrument_time_s + lab.pulse_time_s - time0,
        plan=plan,
    )


def resolve_bank(
    lab: Lab,
    bank: BankResult,
    target_S: float,
    settings: BankSettings | None = None,
    *,
    remeasure: bool = True,
    recorder: DeviceRecorder | None = None,
) -> BankResult:
    """A programmed bank re-solved for ``target_S`` (S): switches only, no pulse.

    ``remeasure`` re-reads every branch first (what drift compensation needs); otherwise
    the bank's last branch measurements are used.
    """
    s = settings if settings is not None else BankSettings()
    r, c = bank.cell
    _check_cell(lab, r, c, target_S)
    rec = recorder if recorder is not None else DeviceRecorder(None, None, "resolve")
    time0 = lab.instrument_time_s + lab.pulse_time_s
    if remeasure:
        branch_S, branch_sigma = measure_branches(
            lab, r, c, reads=s.reads_per_branch, nplc=s.nplc, recorder=rec
        )
    else:
        branch_S, branch_sigma = bank.branch_S, bank.branch_sigma_S
    mask, predicted, measured = _choose(
        lab,
        r,
        c,
        target_S,
        branch_S=branch_S,
        branch_sigma_S=branch_sigma,
        settings=s,
        recorder=rec,
    )
    return replace(
        bank,
        target_S=float(target_S),
        branch_S=branch_S,
        branch_sigma_S=branch_sigma,
        mask=mask,
        predicted_S=predicted,
        measured_S=measured,
        error=(measured - target_S) / target_S,
        pulses=0,
        instrument_time_s=lab.instrument_time_s + lab.pulse_time_s - time0,
    )


def program_bank_write_verify(
    lab: Lab,
    r: int,
    c: int,
    target_S: float,
    settings: BankSettings | None = None,
    *,
    recorder: DeviceRecorder | None = None,
) -> BankResult:
    """Write-verify alone: the target split over the fewest branches (module docstring)."""
    s = settings if settings is not None else BankSettings()
    _check_cell(lab, r, c, target_S)
    rec = recorder if recorder is not None else DeviceRecorder(None, None, "wvbank")
    g_min, g_max = _memristor_range(lab)
    k_all = lab.geometry.branches
    per_device_max = g_min + 0.75 * (g_max - g_min)
    used = max(1, math.ceil(target_S / per_device_max))
    if used > k_all or target_S / used < 1.05 * g_min:
        raise LabInputError(
            f"cell ({r}, {c}) target {target_S:.4g} S cannot be split over {k_all} devices of "
            f"{g_min:.3g}..{g_max:.3g} S"
        )
    wv = bench_settings(lab, replace(s.write_verify, tolerance=s.tolerance))
    time0 = lab.instrument_time_s + lab.pulse_time_s
    pulses0 = lab.pulses_applied
    devices = tuple(
        write_verify_device(
            lab,
            (r, c, k),
            target_S / used,
            wv,
            rec,
            reads_per_verify=s.reads_per_verify,
            nplc=s.nplc,
        )
        for k in range(used)
    )
    mask = np.zeros(k_all, dtype=bool)
    mask[:used] = True
    mask_int = (1 << used) - 1
    measured = measure_cell_S(lab, r, c, mask_int, reads=s.verify_reads, nplc=s.nplc, recorder=rec)
    finals = np.full(k_all, math.nan)
    finals[:used] = [d.final_S for d in devices]
    return BankResult(
        method="write_verify",
        cell=(int(r), int(c)),
        target_S=float(target_S),
        devices=devices,
        branch_S=finals,
        branch_sigma_S=np.full(k_all, math.nan),
        mask=mask,
        predicted_S=float(np.nansum(finals)),
        measured_S=measured,
        error=(measured - target_S) / target_S,
        pulses=lab.pulses_applied - pulses0,
        instrument_time_s=lab.instrument_time_s + lab.pulse_time_s - time0,
    )


# ---------------------------------------------------------------------------- comparison
@dataclass(frozen=True)
class MethodPoint:
    """One method at one setting over a set of cells (one fresh bench).

    Attributes:
        method: ``rss`` or ``write_verify``; setting: its tolerance (coarse for RSS).
        errors: (n,) measured relative errors of the cells.
        pulses: (n,) pulses per cell; instrument_time_s: (n,) per cell (s).
        stuck: devices that ended ``stuck``; failed: devices not ``ok``.
        bench_time_s: the bench clock's advance over all the cells (s).
        run_id: the store run, or None.
    """

    method: Method
    setting: float
    errors: FloatArray
    pulses: npt.NDArray[np.int64]
    instrument_time_s: FloatArray
    stuck: int
    failed: int
    bench_time_s: float
    run_id: int | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-ready medians and maxima."""
        abs_err = np.abs(self.errors)
        return {
            "method": self.method,
            "setting": self.setting,
            "cells": int(self.errors.size),
            "median_abs_error": float(np.median(abs_err)),
            "max_abs_error": float(np.max(abs_err)),
            "mean_pulses": float(np.mean(self.pulses)),
            "mean_instrument_time_s": float(np.mean(self.instrument_time_s)),
            "stuck": self.stuck,
            "failed": self.failed,
            "bench_time_s": self.bench_time_s,
            "run_id": self.run_id,
        }


def run_method(
    lab: Lab,
    method: Method,
    cells: Sequence[tuple[int, int]],
    targets_S: Sequence[float],
    settings: BankSettings,
    *,
    store: Store | None = None,
    note: str = "",
    observe: CellObserver | None = None,
) -> tuple[MethodPoint, list[BankResult]]:
    """Program every cell with one method on an open bench; the point and the banks.

    ``observe(lab, r, c, "programmed")`` is called after each cell is programmed, while it
    holds its chosen mask (`CellObserver`).
    """
    if len(cells) != len(targets_S) or not cells:
        raise LabInputError(f"{len(cells)} cells but {len(targets_S)} targets")
    for (r, c), t in zip(cells, targets_S, strict=True):
        _check_cell(lab, r, c, t)
    setting = settings.coarse_tolerance if method == "rss" else settings.tolerance
    run_id = None
    if store is not None:
        run_id = store.start_run(
            "memristor_rss",
            board_id_for(lab, store),
            {"method": method, "cells": [list(x) for x in cells]}
            | {"targets_S": [float(t) for t in targets_S]}
            | asdict(settings),
            lab.describe(),
            note=note,
        )
    recorder = DeviceRecorder(store, run_id, method)
    clock0 = lab.clock_s()
    banks: list[BankResult] = []
    try:
        for (r, c), target in zip(cells, targets_S, strict=True):
            if method == "rss":
                bank = program_bank_rss(lab, r, c, target, settings, recorder=recorder)
            else:
                bank = program_bank_write_verify(lab, r, c, target, settings, recorder=recorder)
            banks.append(bank)
            lab.set_cell_mask(r, c, bank.mask_int)
            if observe is not None:
                observe(lab, r, c, "programmed")
            recorder.flush()
    except BaseException as exc:
        if store is not None and run_id is not None:
            close_run_after(exc, store, run_id, what="memristor RSS", save=recorder.flush)
        raise
    point = MethodPoint(
        method=method,
        setting=setting,
        errors=np.array([b.error for b in banks]),
        pulses=np.array([b.pulses for b in banks], dtype=np.int64),
        instrument_time_s=np.array([b.instrument_time_s for b in banks]),
        stuck=sum(b.stuck for b in banks),
        failed=sum(d.status != "ok" for b in banks for d in b.devices),
        bench_time_s=lab.clock_s() - clock0,
        run_id=run_id,
    )
    if store is not None and run_id is not None:
        store.put_result(run_id, "masks", np.array([b.mask for b in banks]))
        store.put_result(run_id, "branch_S", np.array([b.branch_S for b in banks]))
        store.put_value(run_id, "summary", point.summary())
        store.finish_run(run_id, instrument_time_s=float(point.instrument_time_s.sum()))
    return point, banks


def compare_methods(
    station: Station,
    cells: Sequence[tuple[int, int]],
    targets_S: Sequence[float],
    *,
    wv_tolerances: Sequence[float] = (0.05, 0.02, 0.01, 0.005),
    rss_coarse_tolerances: Sequence[float] = (0.2, 0.1, 0.05),
    settings: BankSettings | None = None,
    store_factory: Callable[[], Store] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    observe: CellObserver | None = None,
) -> list[MethodPoint]:
    """Write-verify alone vs write-verify + RSS on the same devices (module docstring).

    Each (method, setting) opens a fresh ``Lab(station)``: with a simulated station the
    same seed gives the same devices in the same initial states, so every point starts
    from the same bench. ``store_factory`` opens the store for each point (one per bench:
    a store belongs to its thread). Complexity: one bench per point, each programming
    every cell. ``observe`` is passed to `run_method` for every point.
    """
    base = settings if settings is not None else BankSettings()
    if not (station.smu.simulated and station.board.simulated):
        log.warning(
            "%s: on hardware every point reprograms the same physical devices from where "
            "the previous point left them, not from the same initial states",
            station.name,
        )
    jobs: list[tuple[Method, BankSettings]] = [
        ("write_verify", replace(base, tolerance=t)) for t in wv_tolerances
    ] + [("rss", replace(base, coarse_tolerance=t)) for t in rss_coarse_tolerances]
    points: list[MethodPoint] = []
    for i, (method, job_settings) in enumerate(jobs):
        if progress is not None:
            progress(i, len(jobs), f"{method} {job_settings}")
        with Lab(station) as lab:
            if store_factory is not None:
                with store_factory() as store:
                    point, _ = run_method(
                        lab, method, cells, targets_S, job_settings, store=store, observe=observe
                    )
            else:
                point, _ = run_method(lab, method, cells, targets_S, job_settings, observe=observe)
        points.append(point)
    if progress is not None:
        progress(len(jobs), len(jobs), "done")
    return points
