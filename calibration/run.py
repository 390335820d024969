"""Scripted calibration runs over `Lab`, every reading kept in the `Store`, resumable.

    from calibration.run import CalibrationRun, resume_run
    from calibration.settings import CalibrationSettings, parse_cells

    with Lab(station) as lab, Store(db_path) as store:
        result = CalibrationRun(lab, store, CalibrationSettings(
            cells=parse_cells("0-3,*"), design="weighing", nplc=1.0)).run()
        print(result.run_id, result.summary)
        # after a crash:  resume_run(lab, store, run_id).run()

What a run does, in order (docs/calibration.md has the reasoning and the figures):

1. **Checks** (before anything is switched or stored): the settings, the cells against the
   board, NPLC and read voltage against the station's limits (voltage and worst-case power
   per element).
2. **Plan**: a list of readings that is a pure function of the settings and the board's
   geometry: per cell (row-major), ``repeats`` passes of the design's subsets, then the
   held-out subsets; then the drift rounds. With ``reversal`` every subset is read at +V
   then -V. Each reading has a store key ``"r,c,0xMASK,repeat,TAG"`` (TAG: the role, the
   design row and the polarity), so a resume knows exactly what is missing.
3. **Measure**: every other cell is opened first (`Lab.open_all`), and `Lab` opens the
   previous cell before it closes branches in the next: each cell is measured with every
   other cell open, where the guarded read is accurate (on a fully programmed board the
   guard current makes it ~4 % high, docs/simulator.md). Readings go to the store in
   batches of ``batch_size`` (one transaction each). ``should_stop()`` is polled between
   readings; stopping, or an instrument failure, stores what was measured and marks the
   run ``interrupted``.
4. **Estimate** (`estimate_cells`): per cell, weighted least squares (`calibration.
   estimation.fit_weighing`) of the branch conductances a_k (S), the all-open conductance c0
   (off-leakage, S) and the common series path r_s (ohm), with standard errors; the noise
   model is sigma_j = s x (current range of reading j) / |V| (an SMU's noise is a fixed
   fraction of the range, SPEC-2450) with the scale s pooled over every cell's residuals.
   Held-out subsets test additivity. Faults (`calibration.faults`) from a healthy band built
   from the board's bill of materials (``BOARD:INFO?``: ``nominal_ohm``, ``tolerance``,
   ``switch_on_ohm``).
5. **Store**: estimates, faults with evidence, the drift report and a summary; the run is
   marked ``completed``.

Resume (`resume_run`): a new run whose parent is the interrupted one, with the parent's
stored settings; it measures only the keys that no run of the lineage holds and estimates
from the whole lineage's readings. Determinism and its limits are in docs/calibration.md:
the plan (order and keys) is deterministic, so the readings stored before the crash are
exactly those an uninterrupted run takes first; the readings measured after the resume come
from a new session of the instruments (a real meter's noise is not replayable; the
simulator's noise stream restarts with its seed), so the resumed estimates equal the
uninterrupted run's within their standard errors, not bit for bit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from calibration.budget import PairArrays, TemperatureSpread, reading_sources
from calibration.designs import holdout_subsets, one_by_one, s_matrix_design
from calibration.drift import DriftReport, fit_drift
from calibration.estimation import (
    WeighingFit,
    fit_weighing,
    holdout_check,
    parameter_sensitivity,
)
from calibration.faults import FaultFinding, FaultReport, NominalBand, classify_faults
from calibration.settings import (
    CalibrationSettings,
    SettingsError,
    resolve_cells,
)
from labrss.lab import Lab, LabInputError
from labrss.lab.safety import check_source_voltage
from labrss.metrology.budget import Category, ElementBudget, Source, combine_components
from labrss.metrology.range_link import (
    ChainSolution,
    LinkEstimate,
    LinkPlan,
    estimate_links,
    plan_links,
    solve_chain,
)
from labrss.metrology.reference import AnchorResult, anchor, expected_branch_conductance
from labrss.metrology.smu_accuracy import SMUAccuracy, accuracy_for_model
from labrss.station import ReferenceStandard
from labrss.station.config import NPLC_MAX, NPLC_MIN
from labrss.store import CellEstimate, Fault, ReadingRow, Store, StoreError, reading_key
from labrss.workflows.boards import register_board

__all__ = [
    "ASSUMED_OFF_LEAKAGE_S",
    "CalibrationResult",
    "CalibrationRun",
    "CellResult",
    "PlannedReading",
    "RunProgress",
    "band_from_board_info",
    "build_plan",
    "design_rows",
    "estimate_cells",
    "link_scatter",
    "memristor_band_from_board_info",
    "repeat_scatter",
    "resume_run",
]

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
Role = Literal["fit", "holdout", "drift", "link", "noise"]

ASSUMED_OFF_LEAKAGE_S = 1e-9
"""Off-leakage per open branch (S) assumed for the healthy band when the board does not
report one: 1 nA/V, the CMOS analog-switch class (ADG1414: nA-level off leakage over
temperature); the default simulated board's switches leak 1e-11..1e-10 S."""

SWITCH_ON_SPREAD = 0.5
"""Relative spread allowed around the board's typical ``switch_on_ohm`` (a datasheet
typical value, not a bound: +-50 % covers the ADG1414's flatness and temperature)."""

DEFAULT_TCR_PPM_PER_K = 100.0
"""Resistor temperature coefficient (ppm/K) assumed when the board reports none: the
common thick-film class (thick film +-100/200/300 ppm/K, thin film +-25/50/100)."""

DEFAULT_TEMPERATURE_RESOLUTION_C = 0.1
"""Board temperature sensor resolution (degC) assumed when the board reports none."""

_TAG_ROLE = {"fit": "f", "holdout": "h", "drift": "d", "link": "l", "noise": "n"}


class CalibrationInterruptedError(Exception):
    """Raised by `CalibrationRun.run` after an instrument failure marked the run interrupted.

    ``run_id`` names the run to resume; ``__cause__`` is the failure.
    """

    def __init__(self, message: str, run_id: int) -> None:
        super().__init__(message)
        self.run_id = run_id


@dataclass(frozen=True)
class PlannedReading:
    """One reading of the plan: cell, subset mask, pass (or drift round), role, row, sign."""

    r: int
    c: int
    mask: int
    repeat: int
    role: Role
    row: int
    sign: int

    @property
    def key(self) -> str:
        """The store key: a pure function of what is measured."""
        tag = f"{_TAG_ROLE[self.role]}{self.row}{'+' if self.sign > 0 else '-'}"
        return reading_key(self.r, self.c, self.mask, self.repeat, tag)


@dataclass(frozen=True)
class RunProgress:
    """Progress of a run: readings done of the total (this session's and the stored ones),
    instrument time (s, integration apertures) and wall time (s) of this session, and the
    cell being measured."""

    done: int
    total: int
    measured_now: int
    instrument_time_s: float
    wall_time_s: float
    cell: tuple[int, int] | None

    def _eta(self, elapsed: float) -> float:
        if self.measured_now <= 0:
            return math.nan
        return elapsed / self.measured_now * (self.total - self.done)

    @property
    def eta_instrument_s(self) -> float:
        """Remaining instrument time (s), extrapolated from this session's rate."""
        return self._eta(self.instrument_time_s)

    @property
    def eta_wall_s(self) -> float:
        """Remaining wall time (s), extrapolated from this session's rate."""
        return self._eta(self.wall_time_s)


ProgressCallback = Callable[[RunProgress], None]
StopFlag = Callable[[], bool]


@dataclass(frozen=True)
class CellResult:
    """Estimates of one cell (arrays over its n branches; S, ohm)."""

    r: int
    c: int
    conductance_S: FloatArray
    std_S: FloatArray
    leakage_S: float
    leakage_std_S: float
    series_ohm: float
    series_std_ohm: float
    chi2: float
    dof: int
    holdout_chi2: float
    holdout_dof: int
    n_readings: int
    components: Mapping[str, FloatArray] | None = None

    def to_store(self) -> CellEstimate:
        """The store's record of this cell."""
        return CellEstimate(
            r=self.r,
            c=self.c,
            conductance_S=self.conductance_S,
            std_S=self.std_S,
            series_ohm=self.series_ohm,
            series_std_ohm=self.series_std_ohm,
            leakage_S=self.leakage_S,
            leakage_std_S=self.leakage_std_S,
            chi2=self.chi2,
            dof=self.dof,
            holdout_chi2=self.holdout_chi2,
            holdout_dof=self.holdout_dof,
            n_readings=self.n_readings,
            components=dict(self.components) if self.components is not None else None,
        )


@dataclass(frozen=True)
class CalibrationResult:
    """What a run produced. ``status`` is ``completed`` or ``interrupted`` (stopped by
    ``should_stop``; resume with `resume_run`). Estimates are empty when interrupted."""

    run_id: int
    status: Literal["completed", "interrupted"]
    settings: CalibrationSettings
    cells: tuple[CellResult, ...]
    faults: tuple[Fault, ...]
    drift: DriftReport | None
    noise_scale: float
    summary: dict[str, Any] = field(default_factory=dict)

    def conductance_S(self) -> FloatArray:
        """(cells, n) element conductances in plan order."""
        return np.array([c.conductance_S for c in self.cells])

    def std_S(self) -> FloatArray:
        """(cells, n) standard errors in plan order."""
        return np.array([c.std_S for c in self.cells])


# ---------------------------------------------------------------------------- plan
def design_rows(
    design: str, n: int, *, holdout: int, seed: int, cell: tuple[int, int]
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """(fit rows of one pass, held-out rows) for a cell: 0/1 matrices (M, n), (H, n).

    ``single``: the empty subset, each branch alone, the full subset twice (M = n + 3;
    the three subset sizes identify r_s, the repeated full subset leaves one degree of
    freedom per pass for the noise). ``weighing``: the empty subset, the S-matrix rows, the
    full subset (M = m + 2, m the S-matrix order >= n). Held-out subsets (weighing only):
    ``holdout`` random subsets not in the design, drawn from ``(seed, r, c)``.
    """
    if design == "single":
        X = np.vstack([one_by_one(n, with_empty=True, with_full=True).X, np.ones((1, n), np.uint8)])
        return X, np.zeros((0, n), np.uint8)
    if design != "weighing":
        raise SettingsError(f"design {design!r} is not one of single, weighing")
    X = s_matrix_design(n, with_empty=True, with_full=True).X
    free = (1 << n) - 1 - len({tuple(row) for row in X if row.any()})
    count = min(holdout, free)
    rng = np.random.default_rng([seed, cell[0], cell[1]])
    hold = holdout_subsets(n, count, rng, exclude=X) if count else np.zeros((0, n), np.uint8)
    return X, hold


def _mask(row: NDArray[np.uint8]) -> int:
    return int(sum(1 << int(k) for k in np.flatnonzero(row)))


def build_plan(
    settings: CalibrationSettings, cells: Sequence[tuple[int, int]], n: int
) -> list[PlannedReading]:
    """Every reading of a run, in measurement order (see the module docstring)."""
    signs = (1, -1) if settings.reversal else (1,)
    plan: list[PlannedReading] = []
    for r, c in cells:
        X, hold = design_rows(
            settings.design, n, holdout=settings.holdout, seed=settings.seed, cell=(r, c)
        )
        for rep in range(settings.passes((r, c))):
            for j, row in enumerate(X):
                for s in signs:
                    plan.append(PlannedReading(r, c, _mask(row), rep, "fit", j, s))
        for j, row in enumerate(hold):
            for s in signs:
                plan.append(PlannedReading(r, c, _mask(row), 0, "holdout", j, s))
        if (r, c) == tuple(cells[0]):
            full = (1 << n) - 1
            for rep in range(settings.noise_repeats):
                for s in signs:
                    plan.append(PlannedReading(r, c, full, rep, "noise", 0, s))
    for rnd in range(settings.drift_rounds if settings.drift_cells else 0):
        for r, c in cells[: settings.drift_cells]:
            for k in range(n):
                for s in signs:
                    plan.append(PlannedReading(r, c, 1 << k, rnd, "drift", k, s))
    return plan


SERIES_MAX_READINGS = 16
"""Most readings taken as one series (`Lab.measure_subset_series`): a stop request or an
interruption waits for at most this many (~0.4 s at 1 PLC)."""


def series_groups(
    readings: Sequence[tuple[PlannedReading, float | None]],
) -> Iterator[list[tuple[PlannedReading, float | None]]]:
    """Consecutive planned readings (each with its fixed current range, None: the
    station's) grouped into series that need nothing between them: one cell and subset,
    one role and, for drift rounds (a wait between rounds), one round; at most
    `SERIES_MAX_READINGS` each. The order is kept."""
    group: list[tuple[PlannedReading, float | None]] = []
    for item in readings:
        p = item[0]
        if group:
            q = group[0][0]
            if (
                len(group) >= SERIES_MAX_READINGS
                or (p.r, p.c, p.mask, p.role) != (q.r, q.c, q.mask, q.role)
                or (p.role == "drift" and p.repeat != q.repeat)
            ):
                yield group
                group = []
        group.append(item)
    if group:
        yield group


def link_readings(
    link_plan: LinkPlan, cells: Sequence[tuple[int, int]], repeats: int
) -> list[tuple[PlannedReading, float]]:
    """The range-link readings of ``link_plan`` with their fixed current range (A).

    Per subset, ``repeats`` times: the lower range at +V and -V, then the upper range at
    +V and -V (interleaved, so slow drift cancels in each ratio). Role ``link``, row
    ``2 x link + (0 lower, 1 upper)``; keys as every reading's.
    """
    out: list[tuple[PlannedReading, float]] = []
    for sub in link_plan.subsets:
        r, c = cells[sub.cell]
        ranges = link_plan.links[sub.link]
        for rep in range(repeats):
            for side in (0, 1):
                for sign in (1, -1):
                    p = PlannedReading(r, c, sub.mask, rep, "link", 2 * sub.link + side, sign)
                    out.append((p, ranges[side]))
    return out


def link_estimates(
    link_plan: LinkPlan,
    cells: Sequence[tuple[int, int]],
    repeats: int,
    readings: NDArray[np.void],
) -> tuple[LinkEstimate, ...]:
    """Each link's ``e_lo - e_hi`` from the stored link readings: the mean of
    ``ln(g_lo / g_hi)`` over the +V/-V pairs of every subset and repeat."""
    planned = [p for p, _ in link_readings(link_plan, cells, repeats)]
    pairs = _combine(planned, readings, True, 1.0)
    samples: list[list[float]] = [[] for _ in link_plan.links]
    for sub in link_plan.subsets:
        r, c = cells[sub.cell]
        for rep in range(repeats):
            lo = pairs.get((r, c, "link", rep, 2 * sub.link))
            hi = pairs.get((r, c, "link", rep, 2 * sub.link + 1))
            if lo is None or hi is None or not (lo.g_S > 0 and hi.g_S > 0):
                continue
            samples[sub.link].append(math.log(lo.g_S / hi.g_S))
    return estimate_links(link_plan.links, samples)


def link_scatter(
    link_plan: LinkPlan,
    cells: Sequence[tuple[int, int]],
    repeats: int,
    readings: NDArray[np.void],
    accuracy: SMUAccuracy | None,
) -> list[tuple[float, int]]:
    """(chi-square, dof) of every link subset's repeated reads on each of its two ranges
    (`repeat_scatter`): the noise scale seen with many degrees of freedom."""
    planned = [p for p, _ in link_readings(link_plan, cells, repeats)]
    pairs = _combine(planned, readings, True, 1.0, accuracy=accuracy)
    out = []
    for sub in link_plan.subsets:
        r, c = cells[sub.cell]
        for side in (0, 1):
            reads = [
                pairs[(r, c, "link", rep, 2 * sub.link + side)]
                for rep in range(repeats)
                if (r, c, "link", rep, 2 * sub.link + side) in pairs
            ]
            out.append(repeat_scatter([p.g_S for p in reads], [p.rel_sigma for p in reads]))
    return out


# ---------------------------------------------------------------------------- bands
def _floats(text: str | None) -> list[float]:
    if not text:
        return []
    try:
        values = [float(x) for x in text.replace(",", "/").split("/") if x.strip()]
    except ValueError:
        return []
    return [v for v in values if math.isfinite(v) and v > 0]


def band_from_board_info(info: Mapping[str, str], n: int, *, margin: float) -> NominalBand | None:
    """The healthy band from the board's bill of materials (``BOARD:INFO?``), or None.

    ``nominal_ohm`` (one value, or one per branch ``/``-separated) or
    ``nominal_min_ohm``/``nominal_max_ohm``; ``tolerance`` (relative; 20 % when absent);
    ``switch_on_ohm`` typical (+-`SWITCH_ON_SPREAD`); off-leakage `ASSUMED_OFF_LEAKAGE_S`.
    """
    nominal = _floats(info.get("nominal_ohm"))
    tol_list = _floats(info.get("tolerance"))
    tol = tol_list[0] if tol_list and tol_list[0] < 1 else 0.2
    if len(nominal) in (1, n):
        R_lo = R_hi = np.broadcast_to(np.asarray(nominal, float), (n,))
    else:
        lo = _floats(info.get("nominal_min_ohm"))
        hi = _floats(info.get("nominal_max_ohm"))
        if not (lo and hi):
            return None
        R_lo, R_hi = np.full(n, lo[0]), np.full(n, hi[0])
    on = _floats(info.get("switch_on_ohm"))
    r_on = on[0] if on else 0.0
    on_lo, on_hi = r_on * (1 - SWITCH_ON_SPREAD), r_on * (1 + SWITCH_ON_SPREAD)
    low = 1.0 / (R_hi * (1 + tol) + on_hi) - ASSUMED_OFF_LEAKAGE_S
    high = 1.0 / (R_lo * (1 - tol) + on_lo)
    return NominalBand(
        low * (1 - margin), high * (1 + margin), n * ASSUMED_OFF_LEAKAGE_S * (1 + margin)
    )


def memristor_band_from_board_info(
    info: Mapping[str, str], n: int, *, margin: float
) -> NominalBand | None:
    """The healthy band of memristor branches from ``BOARD:INFO?``'s device range, or None.

    A healthy device can sit anywhere in its range (it is programmed there), so the band
    is the nominal range ``g_min_S .. g_max_S`` widened by the device-to-device spread of
    the range (``tolerance``, 20 % when absent: the simulator's 5 % range spread clipped
    at 3 sigma is 15 %), in series with the switch (``switch_on_ohm`` +-`SWITCH_ON_SPREAD`)
    less the off-leakage. Stuck-on/off devices sit at a bound of their range, inside the
    band: calibration cannot tell them (programming finds them).
    """
    g_lo = _floats(info.get("g_min_S"))
    g_hi = _floats(info.get("g_max_S"))
    if not (g_lo and g_hi) or not g_lo[0] < g_hi[0]:
        return None
    tol_list = _floats(info.get("tolerance"))
    tol = tol_list[0] if tol_list and tol_list[0] < 1 else 0.2
    on = _floats(info.get("switch_on_ohm"))
    r_on = on[0] if on else 0.0
    on_lo, on_hi = r_on * (1 - SWITCH_ON_SPREAD), r_on * (1 + SWITCH_ON_SPREAD)
    low = 1.0 / (1.0 / (g_lo[0] * (1 - tol)) + on_hi) - ASSUMED_OFF_LEAKAGE_S
    high = 1.0 / (1.0 / (g_hi[0] * (1 + tol)) + on_lo)
    return NominalBand(
        np.full(n, low * (1 - margin)),
        np.full(n, high * (1 + margin)),
        n * ASSUMED_OFF_LEAKAGE_S * (1 + margin),
    )


def _band_from_estimates(a: FloatArray, margin: float) -> NominalBand:
    """A coarse band when the board reports no nominal values: the per-branch median of
    the estimates, x/÷ 2 (finds opens, shorts and stuck switches, not degraded parts)."""
    med = np.nanmedian(np.where(a > 0, a, np.nan), axis=0)
    med = np.where(np.isfinite(med) & (med > 0), med, np.nanmax(np.abs(a)) or 1.0)
    return NominalBand(
        med / 2 * (1 - margin), med * 2 * (1 + margin), a.shape[1] * ASSUMED_OFF_LEAKAGE_S
    )


# ---------------------------------------------------------------------------- estimation
@dataclass(frozen=True)
class _Pair:
    g_S: float
    rel_sigma: float  # sigma in units of the noise scale s (S per unit s)
    tripped: bool
    time_s: float
    i_p: float = math.nan  # the +V read's current (A, range-link corrected) ...
    i_m: float = math.nan  # ... and the -V read's (NaN without reversal)
    v_p: float = math.nan  # sensed voltages (V)
    v_m: float = math.nan
    r_p: float = math.nan  # current ranges (A)
    r_m: float = math.nan


def _voltage_range(accuracy: SMUAccuracy | None, volts: float) -> float:
    """The voltage range a read-back of ``volts`` was autoranged to (V), 0 if unknown."""
    if accuracy is None or not math.isfinite(volts) or volts == 0:
        return 0.0
    return accuracy.voltage_range_for(volts).full_scale


def _combine(
    plan: Sequence[PlannedReading],
    readings: NDArray[np.void],
    reversal: bool,
    voltage_V: float,
    *,
    accuracy: SMUAccuracy | None = None,
    correction: Mapping[float, float] | None = None,
) -> dict[tuple[int, int, str, int, int], _Pair]:
    """Per (r, c, role, repeat, row): the conductance of the +V/-V pair (or the +V reading).

    ``correction`` maps a current range (A) to its range-link correction ``d_r``: currents
    read on it are divided by ``1 + d_r``. The noise model (sigma in units of the pooled
    scale s): an SMU's noise is a fixed fraction of the range on both meters (SPEC-2450
    noise column: 5 ppm of range for current and voltage), so
    ``sigma_g = s sqrt(R_I+^2 + R_I-^2 + g^2 (R_V+^2 + R_V-^2)) / |dV|`` (R: the ranges).
    """
    by_key = {str(rec["key"]): rec for rec in readings}
    corr = dict(correction or {})
    out: dict[tuple[int, int, str, int, int], _Pair] = {}

    def current(rec: np.void) -> tuple[float, float]:
        rng = float(rec["current_range_A"])
        d = corr.get(rng, 0.0)
        for key, value in corr.items():
            if math.isclose(key, rng, rel_tol=1e-6):
                d = value
        return float(rec["current_A"]) / (1.0 + d), rng

    for p in plan:
        if p.sign < 0:
            continue
        plus = by_key.get(p.key)
        if plus is None:
            continue
        ident = (p.r, p.c, p.role, p.repeat, p.row)
        i_p, r_p = current(plus)
        v_p = float(plus["voltage_V"])
        i_m = v_m = r_m = math.nan
        if reversal:
            minus_key = PlannedReading(p.r, p.c, p.mask, p.repeat, p.role, p.row, -1).key
            minus = by_key.get(minus_key)
            if minus is None:
                continue
            i_m, r_m = current(minus)
            v_m = float(minus["voltage_V"])
            tripped = bool(plus["limit_tripped"]) or bool(minus["limit_tripped"])
            dv = v_p - v_m
            di = i_p - i_m
            g = di / dv if dv != 0 and math.isfinite(di) else math.nan
            rv2 = _voltage_range(accuracy, v_p) ** 2 + _voltage_range(accuracy, v_m) ** 2
            num = math.sqrt(r_p**2 + r_m**2 + (g**2 if math.isfinite(g) else 0.0) * rv2)
            rel = num / abs(dv) if dv != 0 else math.nan
            t = 0.5 * (float(plus["instrument_time_s"]) + float(minus["instrument_time_s"]))
        else:
            tripped = bool(plus["limit_tripped"])
            g = i_p / v_p if v_p != 0 and math.isfinite(i_p) else math.nan
            rv = _voltage_range(accuracy, v_p)
            num = math.hypot(r_p, (g if math.isfinite(g) else 0.0) * rv)
            rel = num / abs(v_p) if v_p != 0 else math.nan
            t = float(plus["instrument_time_s"])
        if tripped:
            g = math.nan
        if not math.isfinite(rel) or rel <= 0:
            rel = 1.0 / abs(voltage_V)
        out[ident] = _Pair(g, rel, tripped, t, i_p, i_m, v_p, v_m, r_p, r_m)
    return out


def _fit_group(
    X: NDArray[np.uint8], y: FloatArray, rel: FloatArray, fit_series: bool
) -> WeighingFit | None:
    for series in (fit_series, False) if fit_series else (False,):
        try:
            return fit_weighing(X, y, sigma_S=rel, fit_series=series)
        except ValueError:
            continue
    return None


def estimate_cells(
    plan: Sequence[PlannedReading],
    readings: NDArray[np.void],
    settings: CalibrationSettings,
    *,
    cells: Sequence[tuple[int, int]],
    n: int,
    band: NominalBand | None,
    memristor_cells: Sequence[bool] | None = None,
    memristor_band: NominalBand | None = None,
    accuracy: SMUAccuracy | None = None,
    chain: ChainSolution | None = None,
    temperature: TemperatureSpread | None = None,
    reference: ReferenceStandard | None = None,
    on_date: datetime.date | None = None,
    noise_terms: Sequence[tuple[float, int]] = (),
) -> tuple[list[CellResult], FaultReport, float, dict[str, Any]]:
    """Estimates, fault report, noise scale s and diagnostics from a run's readings.

    With ``accuracy`` (the SMU model's datasheet table) every estimate gets its GUM budget
    (`calibration.budget`, `labrss.metrology.budget`): the meter's per-range errors pushed
    through each cell's fit, range links (``chain``: readings on linked ranges are
    corrected to the group's reference range) and the board temperature (``temperature``);
    ``CellResult.std_S`` is then the combined standard uncertainty, the components are in
    ``CellResult.components`` and the whole budget (with correlations) in the diagnostics
    under ``"budget"``. ``noise_terms`` (chi-square, dof) of repeated reads taken outside
    the plan (the range links', `repeat_scatter`) join the pooled noise scale of the
    resistor cells, as do the plan's own ``noise`` reads. Without ``accuracy``, ``std_S`` is
    the statistical (Type A) part alone.
    With ``reference`` (a standard on one of ``cells``) every estimate is anchored to its
    certificate (`labrss.metrology.reference.anchor`; ``on_date`` dates the calibration for
    the standard's drift); the diagnostics' ``"anchor"`` says how (or why not).

    ``readings``: `Store.readings` of the run (its lineage). Cells whose readings are not
    all there get NaN estimates. See the module docstring for the model.

    ``memristor_cells`` (one flag per cell, default none) marks memristor cells: they form
    their own group with their own pooled noise scale (a memristor's read noise, ~0.1 uS,
    is ~20x the SMU's floor on a resistor cell: pooling both would inflate the resistor
    cells' standard errors and blunt their fault tests) and their own healthy band,
    ``memristor_band`` (else one from their estimates). The returned scale is the resistor
    group's (the memristor group's when there are only memristor cells); both are in the
    diagnostics.
    """
    V = float(settings.read_voltage_V or 0.0) or 1.0
    pairs = _combine(
        plan,
        readings,
        settings.reversal,
        V,
        accuracy=accuracy,
        correction=chain.correction if chain is not None else None,
    )
    n_cells = len(cells)
    designs = [
        design_rows(settings.design, n, holdout=settings.holdout, seed=settings.seed, cell=rc)
        for rc in cells
    ]
    X_pass = designs[0][0] if designs else np.zeros((0, n), np.uint8)
    Xf = np.tile(X_pass, (settings.repeats, 1))
    M = Xf.shape[0]
    # the reference standard's cell may have more passes: arrays are padded to the longest
    passes = np.array([settings.passes(rc) for rc in cells], dtype=np.int64)
    M_max = int(passes.max()) * X_pass.shape[0] if n_cells else M
    y = np.full((n_cells, M_max), np.nan)
    rel = np.ones((n_cells, M_max))
    tripped = np.zeros((n_cells, M_max), bool)
    raw = {
        name: np.full((n_cells, M_max), np.nan)
        for name in ("i_p", "i_m", "v_p", "v_m", "r_p", "r_m")
    }
    for i, (r, c) in enumerate(cells):
        for rep in range(int(passes[i])):
            for j in range(X_pass.shape[0]):
                pair = pairs.get((r, c, "fit", rep, j))
                if pair is not None:
                    m = rep * X_pass.shape[0] + j
                    y[i, m], rel[i, m], tripped[i, m] = pair.g_S, pair.rel_sigma, pair.tripped
                    for name, arr in raw.items():
                        arr[i, m] = getattr(pair, name)
    complete = np.array(
        [
            all(
                (r, c, "fit", rep, j) in pairs
                for rep in range(int(passes[i]))
                for j in range(len(X_pass))
            )
            for i, (r, c) in enumerate(cells)
        ],
        bool,
    )
    width = passes * X_pass.shape[0]  # readings per cell
    a = np.full((n_cells, n), np.nan)
    s = np.full((n_cells, n), np.nan)
    c0 = np.full(n_cells, np.nan)
    c0_s = np.full(n_cells, np.nan)
    rs = np.full(n_cells, np.nan)
    rs_s = np.full(n_cells, np.nan)
    chi2 = np.full(n_cells, np.nan)
    dof = np.full(n_cells, -1, np.int64)
    # A cell with a tripped or missing fit reading is fitted on its own (the design may no
    # longer identify every branch: its estimates are then NaN, "unknown").
    valid_all = np.array([np.isfinite(y[i, : width[i]]).all() for i in range(n_cells)], bool)
    clean = complete & ~tripped.any(axis=1) & valid_all
    fits: dict[int, tuple[WeighingFit, int]] = {}
    for count in sorted(set(passes.tolist())):
        idx = np.flatnonzero(clean & (passes == count))
        if idx.size == 0:
            continue
        m_c = count * X_pass.shape[0]
        X_c = np.tile(X_pass, (count, 1))
        fit = _fit_group(X_c, y[idx, :m_c], rel[idx, :m_c], settings.fit_series)
        if fit is not None:
            for pos, cell_i in enumerate(idx):
                fits[int(cell_i)] = (fit, pos)
        else:
            clean[idx] = False
    for ci in (int(x) for x in np.flatnonzero(complete & ~clean)):
        m_c = int(width[ci])
        X_c = np.tile(X_pass, (int(passes[ci]), 1))
        keep = np.isfinite(y[ci, :m_c])
        cols_used = X_c[keep].sum(axis=0) > 0
        if keep.sum() <= int(cols_used.sum()) + 1:
            continue
        one_fit = _fit_group(X_c, y[ci : ci + 1, :m_c], rel[ci : ci + 1, :m_c], settings.fit_series)
        if one_fit is not None:
            fits[ci] = (one_fit, 0)
    # The noise scale s, pooled over the cleanly fitted cells of each group (resistor
    # cells 0, memristor cells 1; chi2 relative to rel).
    group = np.zeros(n_cells, np.int64)
    if memristor_cells is not None:
        if len(memristor_cells) != n_cells:
            raise ValueError(
                f"memristor_cells has {len(memristor_cells)} flags for {n_cells} cells"
            )
        group = np.asarray(memristor_cells, bool).astype(np.int64)
    # repeated reads of one subset: their scatter about their mean (the noise probe, and
    # the range links' repeats given as noise_terms)
    extra_chi = [0.0, 0.0]
    extra_dof = [0, 0]
    if cells and settings.noise_repeats:
        r0, c0_cell = cells[0]
        probe = [
            pairs[(r0, c0_cell, "noise", rep, 0)]
            for rep in range(settings.noise_repeats)
            if (r0, c0_cell, "noise", rep, 0) in pairs
        ]
        chi, d = repeat_scatter([p.g_S for p in probe], [p.rel_sigma for p in probe])
        extra_chi[group[0]] += chi
        extra_dof[group[0]] += d
    for chi, d in noise_terms:
        extra_chi[0] += chi
        extra_dof[0] += d

    def pooled() -> tuple[list[float], list[int]]:
        chi_sums = list(extra_chi)
        dof_sums = list(extra_dof)
        for i, (fit, pos) in fits.items():
            if clean[i] and fit.dof[pos] > 0:
                chi_sums[group[i]] += float(fit.chi2[pos])
                dof_sums[group[i]] += int(fit.dof[pos])
        return chi_sums, dof_sums

    # A series path the cell's readings cannot pin down better than series_prior_ohm (its
    # standard error larger, or an estimate far outside it: at low NPLC on a high range the
    # curvature that identifies r_s is buried in noise and a free r_s only adds noise and
    # nonlinearity) is set to 0 instead, within series_prior_ohm (a shared source below).
    chi_sums, dof_sums = pooled()
    provisional = [
        math.sqrt(c / d) if d else math.nan for c, d in zip(chi_sums, dof_sums, strict=True)
    ]
    prior = settings.series_prior_ohm
    unidentified: list[int] = []
    for i, (fit, pos) in list(fits.items()):
        if not fit.series_fitted:
            continue
        s_i = provisional[group[i]]
        rs_std = float(fit.series_std_ohm[pos]) * (s_i if math.isfinite(s_i) else 1.0)
        rs_val = float(fit.series_ohm[pos])
        if rs_std > prior or abs(rs_val) > 5.0 * max(rs_std, prior):
            m_c = int(width[i])
            X_c = np.tile(X_pass, (int(passes[i]), 1))
            refit = _fit_group(X_c, y[i : i + 1, :m_c], rel[i : i + 1, :m_c], False)
            if refit is not None:
                fits[i] = (refit, 0)
                unidentified.append(i)
    chi_sums, dof_sums = pooled()
    scales = [math.sqrt(c / d) if d else math.nan for c, d in zip(chi_sums, dof_sums, strict=True)]
    cell_scale = np.array([scales[g] for g in group], dtype=np.float64)
    for i, (fit, pos) in fits.items():
        scale = float(cell_scale[i])
        a[i] = fit.conductance_S[pos]
        s[i] = fit.std_S[pos] * scale
        c0[i] = fit.leakage_S[pos]
        c0_s[i] = fit.leakage_std_S[pos] * scale
        rs[i] = fit.series_ohm[pos] if fit.series_fitted else math.nan
        rs_s[i] = fit.series_std_ohm[pos] * scale if fit.series_fitted else math.nan
        chi2[i] = fit.chi2[pos] / scale**2 if scale > 0 else math.nan
        dof[i] = int(fit.dof[pos])
    # Held-out additivity check.
    h_chi2 = np.full(n_cells, np.nan)
    h_dof = np.full(n_cells, -1, np.int64)
    for i, (r, c) in enumerate(cells):
        hold = designs[i][1]
        if i not in fits or hold.shape[0] == 0:
            continue
        fit, pos = fits[i]
        scale = float(cell_scale[i])
        yh = np.full(hold.shape[0], np.nan)
        rh = np.ones(hold.shape[0])
        for j in range(hold.shape[0]):
            pair = pairs.get((r, c, "holdout", 0, j))
            if pair is not None:
                yh[j], rh[j] = pair.g_S, pair.rel_sigma
        one = _select(fit, pos, scale)
        check = holdout_check(one, hold, yh[None, :], sigma_S=(rh * scale)[None, :])
        h_chi2[i] = float(check.chi2[0])
        h_dof[i] = int(check.dof[0])
    # Faults, per group with the group's band and noise scale.
    y_faults = np.where(tripped, np.inf, y)[:, :M]
    parts: list[tuple[NDArray[np.intp], FaultReport]] = []
    for g, g_band in ((0, band), (1, memristor_band)):
        idx = np.flatnonzero(group == g)
        if idx.size == 0:
            continue
        if g_band is None:
            g_band = _band_from_estimates(a[idx], settings.band_margin)
        g_scale = scales[g]
        parts.append(
            (
                idx,
                classify_faults(
                    a[idx],
                    s[idx],
                    c0[idx],
                    c0_s[idx],
                    g_band,
                    k_sigma=settings.k_sigma,
                    X=Xf,
                    y_S=y_faults[idx],
                    limit_tripped=tripped[idx, :M],
                    sigma_S=rel[idx, :M] * g_scale if math.isfinite(g_scale) else None,
                ),
            )
        )
    report = _merge_reports(parts, n_cells, n)
    scale = scales[0] if dof_sums[0] or not dof_sums[1] else scales[1]
    budget: ElementBudget | None = None
    components: dict[Category, FloatArray] | None = None
    anchor_info: dict[str, Any] = {}
    u_combined = s
    if accuracy is not None:
        budget = _cell_budget(
            fits,
            cell_scale,
            PairArrays(g=y, **raw),
            accuracy,
            chain=chain,
            temperature=temperature,
            n=n,
            series_prior=(settings.series_prior_ohm, unidentified, y),
            own_tcr=(
                {
                    (list(cells).index(reference.cell), reference.branch): (
                        reference.tcr_ppm_per_K * 1e-6
                    )
                }
                if reference is not None and reference.cell in cells
                else None
            ),
        )
        if reference is not None:
            anchored = _anchor(budget, reference, cells, temperature, on_date)
            if isinstance(anchored, str):
                anchor_info = {"status": "not anchored", "reason": anchored}
            else:
                budget, result = anchored
                f = result.factor
                a = budget.value_S[:, 1:]
                c0 = budget.value_S[:, 0]
                rs = rs * f
                rs_s = rs_s * f
                c0_s = c0_s / f
                anchor_info = {
                    "status": "anchored",
                    "factor": f,
                    "measured_S": result.measured_S,
                    "expected_S": result.expected_S,
                    "u_relative": result.u_relative,
                    "sources": {s.name: s.u for s in result.sources},
                }
        components = budget.components()
        u_combined = combine_components(components)
    n_read = np.zeros(n_cells, np.int64)
    for i, (r, c) in enumerate(cells):
        n_read[i] = sum(1 for key in pairs if key[0] == r and key[1] == c and key[2] != "drift")
    results = [
        CellResult(
            r=r,
            c=c,
            conductance_S=a[i],
            std_S=u_combined[i],
            leakage_S=float(c0[i]),
            leakage_std_S=float(c0_s[i]),
            series_ohm=float(rs[i]),
            series_std_ohm=float(rs_s[i]),
            chi2=float(chi2[i]),
            dof=int(dof[i]),
            holdout_chi2=float(h_chi2[i]),
            holdout_dof=int(h_dof[i]),
            n_readings=int(n_read[i]) * (2 if settings.reversal else 1),
            components=None
            if components is None
            else {cat: np.asarray(v[i]) for cat, v in components.items()},
        )
        for i, (r, c) in enumerate(cells)
    ]
    diagnostics: dict[str, Any] = {
        "noise_scale": scale,
        "noise_scale_resistor": scales[0],
        "noise_scale_memristor": scales[1],
        "memristor_cells": int(group.sum()),
        "noise_dof": sum(dof_sums),
        "cells_complete": int(complete.sum()),
        "cells_fitted": len(fits),
        "series_unidentified_cells": len(unidentified),
        "holdout_flagged": int(
            sum(
                1
                for i in range(n_cells)
                if h_dof[i] > 0 and _chi2_sf(h_chi2[i], int(h_dof[i])) < 1e-3
            )
        ),
    }
    if budget is not None:
        diagnostics["budget"] = budget
    if reference is not None and accuracy is not None:
        diagnostics["anchor"] = anchor_info
    return results, report, scale, diagnostics


def _anchor(
    budget: ElementBudget,
    reference: ReferenceStandard,
    cells: Sequence[tuple[int, int]],
    temperature: TemperatureSpread | None,
    on_date: datetime.date | None,
) -> tuple[ElementBudget, AnchorResult] | str:
    """Anchor ``budget`` to the standard (module docstring of
    `labrss.metrology.reference`), or the reason it cannot be done."""
    if reference.cell not in cells:
        return f"the reference cell {reference.cell} was not calibrated"
    i = list(cells).index(reference.cell)
    k = reference.branch
    c0 = float(budget.value_S[i, 0])
    c0 = c0 if math.isfinite(c0) and c0 > 0 else 0.0
    t_cal = float(temperature.cell_C[i]) if temperature is not None else math.nan
    if not math.isfinite(t_cal):
        t_cal = reference.certificate_temperature_C
    expected = expected_branch_conductance(
        reference.resistance_ohm,
        leakage_S=c0,
        temperature_C=t_cal,
        certificate_temperature_C=reference.certificate_temperature_C,
        tcr_ppm_per_K=reference.tcr_ppm_per_K,
    )
    cert = [
        Source(
            "reference certificate",
            "scale",
            reference.standard_uncertainty_ohm / reference.resistance_ohm,
            "1",
            f"U = {reference.expanded_uncertainty_ohm:g} ohm (k = {reference.coverage_factor:g}) "
            f"on {reference.resistance_ohm:g} ohm, certificate of {reference.certificate_date}",
        ),
        Source(
            "reference temperature",
            "scale",
            abs(reference.tcr_ppm_per_K) * 1e-6 * reference.temperature_uncertainty_K,
            "1",
            f"TCR {reference.tcr_ppm_per_K:g} ppm/K x {reference.temperature_uncertainty_K:g} K",
        ),
        Source(
            "reference off-leakage",
            "scale",
            c0 / math.sqrt(12.0) / expected,
            "1",
            "its switch's open conductance: somewhere in [0, c0] of its cell",
        ),
    ]
    if reference.drift_ppm_per_year > 0 and reference.certificate_date and on_date is not None:
        age_years = max(
            (on_date - datetime.date.fromisoformat(reference.certificate_date)).days / 365.25,
            0.0,
        )
        cert.append(
            Source(
                "reference drift",
                "scale",
                reference.drift_ppm_per_year * 1e-6 * age_years / math.sqrt(3.0),
                "1",
                f"{reference.drift_ppm_per_year:g} ppm/year x {age_years:.2f} years "
                "since the certificate (rectangular)",
            )
        )
    try:
        return anchor(budget, i, k, expected, cert)
    except ValueError as exc:
        return str(exc)


def _cell_budget(
    fits: Mapping[int, tuple[WeighingFit, int]],
    cell_scale: FloatArray,
    pairs: PairArrays,
    accuracy: SMUAccuracy,
    *,
    chain: ChainSolution | None,
    temperature: TemperatureSpread | None,
    n: int,
    series_prior: tuple[float, Sequence[int], FloatArray] | None = None,
    own_tcr: Mapping[tuple[int, int], float] | None = None,
) -> ElementBudget:
    """The budget of every cell (NaN for cells without a fit): the fit's covariance times
    the pooled noise scale squared (Type A), the meter's sources pushed through each fit
    (``L @ D``), and the board temperature."""
    n_cells = pairs.g.shape[0]
    sources, shifts = reading_sources(pairs, accuracy, chain)
    value = np.full((n_cells, n + 1), np.nan)
    cov = np.full((n_cells, n + 2, n + 2), np.nan)
    contrib = np.zeros((n_cells, n + 1, len(sources)))
    sensitivities: dict[int, FloatArray] = {}
    for i, (fit, pos) in fits.items():
        key = id(fit)
        if key not in sensitivities:
            sensitivities[key] = parameter_sensitivity(fit)
        L = sensitivities[key][pos]
        scale = float(cell_scale[i])
        p_lin = n + 1
        value[i, 0] = fit.leakage_S[pos]
        value[i, 1:] = fit.conductance_S[pos]
        c = np.zeros((n + 2, n + 2))
        full = fit.covariance[pos] * scale**2
        c[:p_lin, :p_lin] = full[:p_lin, :p_lin]
        if fit.series_fitted:
            c[:p_lin, -1] = full[:p_lin, -1]
            c[-1, :p_lin] = full[-1, :p_lin]
            c[-1, -1] = full[-1, -1]
        cov[i] = c
        contrib[i] = L[:p_lin] @ np.nan_to_num(shifts[i, : L.shape[1]])
    budget = ElementBudget(tuple(sources), value, cov, contrib)
    if series_prior is not None and series_prior[1]:
        # r_s taken as 0 where the readings could not identify it: if it is rho, every
        # reading is lower by ~rho y^2, and the estimates move by L (-rho y^2)
        u_rs, cells_unfitted, y = series_prior
        s_contrib = np.zeros((n_cells, n + 1, 1))
        for i in cells_unfitted:
            fit, pos = fits[i]
            L = parameter_sensitivity(fit)[pos]
            y_i = np.nan_to_num(y[i, : L.shape[1]])
            s_contrib[i, :, 0] = -(L[: n + 1] @ y_i**2) * u_rs
        budget = budget.with_sources(
            [
                Source(
                    "series path (not identified)",
                    "range",
                    u_rs,
                    "ohm",
                    f"cells whose readings could not pin r_s below {u_rs:g} ohm: r_s = 0 "
                    f"within {u_rs:g} ohm (series_prior_ohm)",
                )
            ],
            s_contrib,
        )
    if temperature is not None and temperature.u_K > 0:
        tcr = np.broadcast_to(temperature.tcr_per_K, (n_cells,))[:, None] * np.ones((1, n))
        for (i, k), alpha in (own_tcr or {}).items():
            tcr[i, k] = alpha  # an element of known TCR: the reference standard
        u_cell = np.nan_to_num(temperature.cell_u_K, nan=temperature.u_K)
        t_contrib = np.zeros((n_cells, n + 1, 1))
        # R(T) = R (1 + tcr dT): the conductance moves by -tcr a dT
        t_contrib[:, 1:, 0] = -tcr * np.nan_to_num(value[:, 1:]) * u_cell[:, None]
        budget = budget.with_sources([temperature.source()], t_contrib)
    return budget


def repeat_scatter(g_S: Sequence[float], rel_sigma: Sequence[float]) -> tuple[float, int]:
    """(chi-square, dof) of repeated reads of one subset about their weighted mean, in units
    of the noise model's sigma (``rel_sigma``): they estimate the noise scale s^2 as
    chi-square / dof. NaN reads are ignored; fewer than two give (0, 0)."""
    g = np.asarray(g_S, dtype=np.float64)
    rel = np.asarray(rel_sigma, dtype=np.float64)
    ok = np.isfinite(g) & np.isfinite(rel) & (rel > 0)
    g, rel = g[ok], rel[ok]
    if g.size < 2:
        return 0.0, 0
    w = 1.0 / rel**2
    mean = float((w * g).sum() / w.sum())
    return float((w * (g - mean) ** 2).sum()), int(g.size - 1)


def _merge_reports(
    parts: Sequence[tuple[NDArray[np.intp], FaultReport]], n_cells: int, n: int
) -> FaultReport:
    """One report for the batch from the reports of groups of its cells (``idx``: the
    batch positions of a group's cells), findings in batch order."""
    excluded = np.zeros((n_cells, n), bool)
    out_of_band = np.zeros((n_cells, n), bool)
    unknown = np.zeros((n_cells, n), bool)
    remeasure = np.zeros(n_cells, bool)
    leaky = np.zeros(n_cells, bool)
    findings: list[FaultFinding] = []
    for idx, part in parts:
        excluded[idx] = part.excluded
        out_of_band[idx] = part.out_of_band
        unknown[idx] = part.unknown
        remeasure[idx] = part.remeasure
        leaky[idx] = part.leaky
        findings.extend(dataclasses.replace(f, cell=int(idx[f.cell])) for f in part.findings)
    findings.sort(key=lambda f: (f.cell, f.k))
    return FaultReport(tuple(findings), excluded, out_of_band, unknown, remeasure, leaky)


def _chi2_sf(x: float, dof: int) -> float:
    from scipy import stats  # type: ignore[import-untyped]

    return float(stats.chi2.sf(x, dof))


def _select(fit: WeighingFit, pos: int, scale: float) -> WeighingFit:
    """One cell of a batched fit, as a fit of one cell, its covariance in S^2 (the fit ran
    with sigma in units of the noise scale)."""
    sl = slice(pos, pos + 1)
    return WeighingFit(
        X=fit.X,
        conductance_S=fit.conductance_S[sl],
        std_S=fit.std_S[sl],
        leakage_S=fit.leakage_S[sl],
        leakage_std_S=fit.leakage_std_S[sl],
        series_ohm=fit.series_ohm[sl],
        series_std_ohm=fit.series_std_ohm[sl],
        covariance=fit.covariance[sl] * scale**2,
        fitted_S=fit.fitted_S[sl],
        residual_S=fit.residual_S[sl],
        sigma_S=fit.sigma_S[sl],
        chi2=fit.chi2[sl],
        dof=fit.dof[sl],
        p_value=fit.p_value[sl],
        sigma_estimated=fit.sigma_estimated,
        series_fitted=fit.series_fitted,
        converged=fit.converged[sl],
        iterations=fit.iterations,
    )


def _drift_report(
    plan: Sequence[PlannedReading],
    readings: NDArray[np.void],
    settings: CalibrationSettings,
    cells: Sequence[tuple[int, int]],
    n: int,
) -> tuple[DriftReport, list[tuple[int, int, int]]] | None:
    if not settings.drift_cells:
        return None
    pairs = _combine(plan, readings, settings.reversal, float(settings.read_voltage_V or 1.0))
    elements = [(r, c, k) for r, c in cells[: settings.drift_cells] for k in range(n)]
    rounds = settings.drift_rounds
    g = np.full((len(elements), rounds), np.nan)
    t = np.full((len(elements), rounds), np.nan)
    for e, (r, c, k) in enumerate(elements):
        for rnd in range(rounds):
            pair = pairs.get((r, c, "drift", rnd, k))
            if pair is not None:
                g[e, rnd], t[e, rnd] = pair.g_S, pair.time_s
    return fit_drift(t, g), elements


# ---------------------------------------------------------------------------- the run
class CalibrationRun:
    """A calibration run of ``lab``'s board, stored in ``store`` (module docstring).

    ``parent_run_id`` (use `resume_run`) makes it the resume of an interrupted run.
    ``wait_s`` waits between drift rounds (default `Lab.wait_s`: the embedded simulator's
    virtual clock, else a sleep).
    """

    def __init__(
        self,
        lab: Lab,
        store: Store,
        settings: CalibrationSettings | None = None,
        *,
        parent_run_id: int | None = None,
        wait_s: Callable[[float], None] | None = None,
    ) -> None:
        self.lab = lab
        self.store = store
        self.requested = (settings or CalibrationSettings()).validate()
        lab.require_reads(needed_by="calibration")
        self.parent_run_id = parent_run_id
        self._wait = wait_s
        self.run_id: int | None = None
        self.accuracy: SMUAccuracy | None = None
        self._temperatures: list[tuple[int, int, float, float]] = []

    # ---------------------------------------------------------------- checks
    def check(self) -> tuple[CalibrationSettings, list[tuple[int, int]], int]:
        """Resolve and check everything against the station and the board; nothing is
        switched. Returns (resolved settings, cells in order, branches).

        Raises:
            SettingsError: bad cells or settings; SafetyLimitError: a read voltage beyond
            the station's voltage or power limits; LabInputError: NPLC out of range.
        """
        lab = self.lab
        m = lab.station.measurement
        settings = self.requested.resolved(m.nplc, m.read_voltage_V)
        g = lab.geometry
        cells = resolve_cells(settings.cells, g.rows, g.cols)
        nplc = float(settings.nplc or 0.0)
        if not NPLC_MIN <= nplc <= NPLC_MAX:
            raise LabInputError(
                f"calibration NPLC {nplc!r} outside the station's range {NPLC_MIN}..{NPLC_MAX}"
            )
        r_min = (lab.min_element_resistance_ohm, str(lab.describe()["min_element_resistance_from"]))
        check_source_voltage(
            float(settings.read_voltage_V or 0.0),
            lab.station.limits,
            r_min,
            what="calibration read voltage",
        )
        # Memristor cells: the read-disturb limits, at +V and (reversal) -V.
        for sign in (1.0, -1.0) if settings.reversal else (1.0,):
            lab.check_read_voltage(sign * float(settings.read_voltage_V or 0.0), cells)
        if settings.drift_cells > len(cells):
            raise SettingsError(
                f"calibration setting drift_cells = {settings.drift_cells}: only "
                f"{len(cells)} cells are selected"
            )
        self.accuracy = accuracy_for_model(lab.smu.model, lab.station.smu.driver)
        if settings.anchor and settings.reference is None and lab.station.reference is not None:
            settings = dataclasses.replace(settings, reference=lab.station.reference.to_json())
        if settings.reference is not None:
            ref = ReferenceStandard.from_json(settings.reference)
            r, c = ref.cell
            if not (0 <= r < g.rows and 0 <= c < g.cols and 0 <= ref.branch < g.branches):
                raise SettingsError(
                    f"reference standard at cell {ref.cell}, branch {ref.branch} is not on the "
                    f"board ({g.rows}x{g.cols}x{g.branches}): check [reference] in "
                    f"{lab.station.name}"
                )
            if ref.cell not in cells:
                cells.append(ref.cell)  # measured with the selection: it anchors the scale
        return settings, cells, g.branches

    def _register_board(self) -> int:
        """The board's id in the store (registered on first sight) by
        `labrss.workflows.boards.register_board`, the one registration every workflow uses
        (a mixed board registers as ``mixed``)."""
        return register_board(self.lab, self.store)

    # ---------------------------------------------------------------- measure
    def run(
        self,
        progress: ProgressCallback | None = None,
        should_stop: StopFlag | None = None,
    ) -> CalibrationResult:
        """Measure what is missing, then estimate and store (module docstring).

        Returns the result (``status`` ``interrupted`` when ``should_stop`` stopped it).

        Raises:
            CalibrationInterruptedError: an instrument failed; the run is stored as interrupted
                (the failure is the ``__cause__``).
        """
        settings, cells, n = self.check()
        board_id = self._register_board()
        lab = self.lab
        identities: dict[str, object] = {
            **lab.identities,
            "board_serial": lab.board.serial,
            "station": lab.station.name,
        }
        if lab.simulated:
            identities["simulator"] = {
                "board": lab.station.simulator.board,
                "seed": lab.station.simulator.seed,
            }
        run_id = self.store.start_run(
            "calibration",
            board_id,
            settings=settings.to_json(),
            identities=identities,
            parent_run_id=self.parent_run_id,
        )
        self.run_id = run_id
        plan = build_plan(settings, cells, n)
        done_keys = (
            self.store.completed_keys(self.parent_run_id)
            if self.parent_run_id is not None
            else set()
        )
        todo = [p for p in plan if p.key not in done_keys]
        start_wall = time.monotonic()
        start_instr = lab.instrument_time_s
        buffer: list[ReadingRow] = []
        measured = 0
        last_drift_round = -1
        last_cell: tuple[int, int] | None = None

        def flush() -> None:
            if buffer:
                self.store.add_readings(run_id, buffer)
                buffer.clear()

        total = [len(plan), len(plan) - len(todo)]  # readings planned, stored before

        def report(cell: tuple[int, int] | None) -> None:
            if progress is not None:
                progress(
                    RunProgress(
                        done=total[1] + measured,
                        total=total[0],
                        measured_now=measured,
                        instrument_time_s=lab.instrument_time_s - start_instr,
                        wall_time_s=time.monotonic() - start_wall,
                        cell=cell,
                    )
                )

        def stop_requested() -> bool:
            if should_stop is None or not should_stop():
                return False
            flush()
            self.store.finish_run(
                run_id,
                "interrupted",
                instrument_time_s=lab.instrument_time_s - start_instr,
                note="stopped on request",
            )
            lab.open_all()
            return True

        def interrupted() -> CalibrationResult:
            return CalibrationResult(
                run_id,
                "interrupted",
                settings,
                (),
                (),
                None,
                math.nan,
                {"run_id": run_id, "status": "interrupted", "readings": measured},
            )

        def take(group: Sequence[tuple[PlannedReading, float | None]]) -> None:
            """The readings of ``group`` (one cell and subset; each with its sign and
            fixed current range, None: the station's), in one `Lab.measure_subset_series`."""
            nonlocal measured
            first = group[0][0]
            readings = lab.measure_subset_series(
                first.r,
                first.c,
                first.mask,
                [(p.sign * float(settings.read_voltage_V or 0.0), rng) for p, rng in group],
                nplc=settings.nplc,
            )
            for (p, _), reading in zip(group, readings, strict=True):
                buffer.append(
                    ReadingRow(
                        key=p.key,
                        r=p.r,
                        c=p.c,
                        mask=p.mask,
                        value=reading.conductance_S
                        if math.isfinite(reading.conductance_S)
                        else math.nan,
                        voltage_V=reading.voltage_V,
                        current_A=reading.current_A,
                        current_range_A=reading.current_range_A,
                        nplc=reading.nplc,
                        four_wire=reading.four_wire,
                        limit_tripped=reading.limit_tripped,
                        instrument_time_s=reading.time_s,
                    )
                )
                measured += 1
                if len(buffer) >= settings.batch_size:
                    flush()
                report((p.r, p.c))

        link_plan: LinkPlan | None = None
        try:
            lab.open_all()  # every other cell open: the guarded read is accurate
            report(None)
            for group in series_groups([(p, None) for p in todo]):
                if stop_requested():
                    return interrupted()
                p = group[0][0]
                if (p.r, p.c) != last_cell and p.role != "drift":
                    self._sample_temperature(p.r, p.c)
                    last_cell = (p.r, p.c)
                if p.role == "drift" and p.repeat != last_drift_round:
                    if p.repeat > 0:
                        flush()
                        self._wait_between_rounds(settings.drift_interval_s)
                    last_drift_round = p.repeat
                take(group)
            if todo:
                self._sample_temperature(-1, -1)  # after the last cell
            flush()
            # Range linking: planned from the design's readings (all stored now, so a
            # resumed run plans the very same links and measures only what is missing).
            link_plan, link_list = self._plan_links(run_id, settings, cells, n, plan)
            link_todo = [(p, rng) for p, rng in link_list if p.key not in done_keys]
            total[0] += len(link_list)
            total[1] += len(link_list) - len(link_todo)
            for link_group in series_groups(link_todo):
                if stop_requested():
                    return interrupted()
                take(link_group)
            flush()
            lab.open_all()
        except BaseException as exc:
            self._abandon(run_id, buffer, exc, lab.instrument_time_s - start_instr)
            if isinstance(exc, Exception) and not isinstance(exc, StoreError):
                raise CalibrationInterruptedError(
                    f"calibration run {run_id} interrupted after {measured} readings of this "
                    f"session: {exc}; resume it with `labrss calibrate --resume {run_id}`",
                    run_id,
                ) from exc
            raise
        return self._finish(
            run_id,
            settings=settings,
            cells=cells,
            n=n,
            plan=plan,
            wall_s=time.monotonic() - start_wall,
            instrument_s=lab.instrument_time_s - start_instr,
            link_plan=link_plan,
        )

    def _plan_links(
        self,
        run_id: int,
        settings: CalibrationSettings,
        cells: list[tuple[int, int]],
        n: int,
        plan: list[PlannedReading],
    ) -> tuple[LinkPlan | None, list[tuple[PlannedReading, float]]]:
        """The range-link plan (`labrss.metrology.range_link.plan_links`) from the run's
        design readings, and its readings with their fixed current range (A)."""
        if not (settings.range_link and settings.reversal) or self.accuracy is None:
            return None, []
        readings = self.store.readings(run_id)
        results, report, _, _ = estimate_cells(
            plan, readings, settings, cells=cells, n=n, band=None, accuracy=None
        )
        fit_keys = {p.key for p in plan if p.role == "fit"}
        used = {
            float(rec["current_range_A"])
            for rec in readings
            if str(rec["key"]) in fit_keys and math.isfinite(float(rec["current_range_A"]))
        }
        bank = np.array([np.concatenate([[c.leakage_S], c.conductance_S]) for c in results])
        exclude = np.array(report.excluded, dtype=bool)
        for i, (r, c) in enumerate(cells):
            # memristor cells' read noise (~20x the meter's) would blur the links
            if self.lab.board.info.get("element") in ("memristor", "mixed") and (
                self.lab.cell_kind(r, c) == "memristor"
            ):
                exclude[i] = True
        link_plan = plan_links(
            [row.full_scale for row in self.accuracy.current],
            sorted(used),
            bank_S=bank.reshape(len(cells), n + 1),
            series_ohm=np.array([c.series_ohm for c in results]),
            exclude=exclude,
            voltage_V=float(settings.read_voltage_V or 0.0),
            per_link=settings.link_subsets,
        )
        return link_plan, link_readings(link_plan, cells, settings.link_repeats)

    def _wait_between_rounds(self, interval_s: float) -> None:
        if self._wait is not None:
            self._wait(interval_s)
        else:  # sleeps on hardware, advances the virtual clock on the simulator
            self.lab.wait_s(interval_s)

    def _sample_temperature(self, r: int, c: int) -> None:
        """One board temperature sample as the run reaches cell (r, c) (-1, -1: after the
        last), for the temperature component; a board without a sensor gives NaN."""
        try:
            value = float(self.lab.board.temperature_C())
        except Exception as exc:  # a sensor failure must not stop a calibration
            log.warning("board temperature not available: %s", exc)
            value = math.nan
        self._temperatures.append((r, c, self.lab.instrument_time_s, value))

    def _temperature_spread(
        self,
        run_id: int,
        board_info: Mapping[str, str],
        cells: Sequence[tuple[int, int]],
        memristor_cells: Sequence[bool],
    ) -> TemperatureSpread:
        """Each cell's board temperature (samples of this session and of the runs it
        resumes, `TemperatureSpread.from_samples`) and the board's resistor TCR
        (`DEFAULT_TCR_PPM_PER_K` if not reported)."""
        samples: list[tuple[int, int, float]] = []
        for rid in reversed(self.store.lineage(run_id)[1:]):
            if "board_temperature_C" in self.store.result_names(rid):
                arr = self.store.get_result(rid, "board_temperature_C")
                if arr.ndim == 2 and arr.shape[1] == 4:
                    samples += [(int(a), int(b), float(v)) for a, b, _, v in arr]
        samples += [(r, c, v) for r, c, _, v in self._temperatures]
        if self._temperatures:
            self.store.put_result(
                run_id, "board_temperature_C", np.asarray(self._temperatures, dtype=np.float64)
            )
        tcr_values = _floats(board_info.get("tcr_ppm_per_K"))
        if tcr_values:
            tcr, source = tcr_values[0], f"{tcr_values[0]:g} ppm/K (board bill of materials)"
        else:
            tcr = DEFAULT_TCR_PPM_PER_K
            source = f"{tcr:g} ppm/K (assumed: the board reports none)"
        per_cell = np.where(np.asarray(memristor_cells, dtype=bool), 0.0, tcr * 1e-6)
        resolution = _floats(board_info.get("temperature_resolution_C"))
        return TemperatureSpread.from_samples(
            cells,
            samples,
            resolution_C=resolution[0] if resolution else DEFAULT_TEMPERATURE_RESOLUTION_C,
            tcr_per_K=per_cell,
            tcr_source=source,
        )

    def _abandon(
        self, run_id: int, buffer: list[ReadingRow], exc: BaseException, instrument_s: float
    ) -> None:
        """Keep what was measured and mark the run interrupted (best effort)."""
        # The batch in flight may be lost if the store fails too; the rest is committed.
        with contextlib.suppress(Exception):
            if buffer:
                self.store.add_readings(run_id, buffer)
                buffer.clear()
        # If the store itself failed, it marks the run interrupted on its next open.
        with contextlib.suppress(Exception):
            self.store.finish_run(
                run_id,
                "interrupted",
                instrument_time_s=instrument_s,
                note=f"{type(exc).__name__}: {exc}"[:500],
            )

    def _finish(
        self,
        run_id: int,
        *,
        settings: CalibrationSettings,
        cells: list[tuple[int, int]],
        n: int,
        plan: list[PlannedReading],
        wall_s: float,
        instrument_s: float,
        link_plan: LinkPlan | None = None,
    ) -> CalibrationResult:
        readings = self.store.readings(run_id)
        chain: ChainSolution | None = None
        links: tuple[LinkEstimate, ...] = ()
        noise_terms: list[tuple[float, int]] = []
        if link_plan is not None and link_plan.links:
            links = link_estimates(link_plan, cells, settings.link_repeats, readings)
            noise_terms = link_scatter(
                link_plan, cells, settings.link_repeats, readings, self.accuracy
            )
            fit_keys = {p.key for p in plan if p.role == "fit"}
            weights: dict[float, float] = {}
            for rec in readings:
                if str(rec["key"]) in fit_keys and math.isfinite(float(rec["current_range_A"])):
                    rng = float(rec["current_range_A"])
                    weights[rng] = weights.get(rng, 0.0) + 1.0
            if any(math.isfinite(e.delta) for e in links):
                # every range on a link's path, not only those the fit read on: with the
                # one-by-one design the full subset lands two ranges above the singles and
                # no fit reading falls on the range between, which must still chain them
                # (without it the full reading kept its range's gain error, ~60 ppm on the
                # thin-film board, and the series path came out ~0.05 ohm low)
                on_links = {r for e in links if math.isfinite(e.delta) for r in (e.lo_A, e.hi_A)}
                chain = solve_chain(
                    sorted(set(weights) | on_links),
                    links,
                    weights,
                    u_gain={row.full_scale: row.u_gain for row in self.accuracy.current}
                    if self.accuracy is not None
                    else None,
                )
        board_info = self.lab.board.info
        kind = board_info.get("element", "resistor")
        memristor_cells = [
            kind == "memristor" or (kind == "mixed" and self.lab.cell_kind(r, c) == "memristor")
            for r, c in cells
        ]
        band = band_from_board_info(board_info, n, margin=settings.band_margin)
        mem_band = memristor_band_from_board_info(board_info, n, margin=settings.band_margin)
        temperature = self._temperature_spread(run_id, board_info, cells, memristor_cells)
        results, report, scale, diag = estimate_cells(
            plan,
            readings,
            settings,
            cells=cells,
            n=n,
            band=band,
            memristor_cells=memristor_cells,
            memristor_band=mem_band,
            accuracy=self.accuracy,
            chain=chain,
            temperature=temperature,
            reference=ReferenceStandard.from_json(settings.reference)
            if settings.reference is not None
            else None,
            on_date=datetime.date.today(),
            noise_terms=noise_terms,
        )
        anchor_info = diag.pop("anchor", None)
        budget = diag.pop("budget", None)
        faults = [
            Fault(cells[f.cell][0], cells[f.cell][1], f.k, f.kind, dict(f.evidence))
            for f in report.findings
        ]
        self.store.put_estimates(run_id, [c.to_store() for c in results])
        if budget is not None:
            self.store.put_budget(run_id, cells, budget)
            self.store.put_result(run_id, "cell_temperature_C", temperature.cell_C)
            self.store.put_result(run_id, "cell_temperature_u_K", temperature.cell_u_K)
        self.store.put_faults(run_id, faults)
        drift = _drift_report(plan, readings, settings, cells, n)
        if drift is not None:
            rep, elements = drift
            self.store.put_result(run_id, "drift_elements", np.array(elements, np.int64))
            self.store.put_result(run_id, "drift_relative_per_hour", rep.relative_per_hour)
            self.store.put_result(run_id, "drift_relative_per_hour_std", rep.relative_per_hour_std)
            self.store.put_result(run_id, "drift_total_change_rel", rep.total_change_rel)
            self.store.put_result(run_id, "drift_repeatability_rel", rep.repeatability_rel)
        # Wall and instrument time of the whole lineage (a resume adds its parents').
        lineage = self.store.lineage(run_id)
        wall_total = wall_s
        instr_total = instrument_s
        for rid in lineage[1:]:
            info = self.store.run(rid)
            wall_total += info.wall_time_s or 0.0
            instr_total += info.instrument_time_s or 0.0
        a = np.array([c.conductance_S for c in results])
        s = np.array([c.std_S for c in results])
        usable = np.isfinite(a) & np.isfinite(s) & ~report.excluded & (a > 0)
        rel = s[usable] / a[usable]
        s_stat = np.array(
            [c.components["statistical"] if c.components is not None else c.std_S for c in results]
        )
        rel_stat = s_stat[usable] / a[usable]
        n_elements = len(cells) * n
        summary: dict[str, Any] = {
            "run_id": run_id,
            "status": "completed",
            "design": settings.design,
            "cells": len(cells),
            "elements": n_elements,
            "faults": len(faults),
            "fault_kinds": {
                k: sum(1 for f in faults if f.kind == k) for k in sorted({f.kind for f in faults})
            },
            # the combined standard uncertainty (the budget), and its statistical part
            "median_relative_uncertainty": float(np.median(rel)) if rel.size else math.nan,
            "median_relative_uncertainty_statistical": float(np.median(rel_stat))
            if rel_stat.size
            else math.nan,
            "smu_accuracy_table": self.accuracy.source if self.accuracy is not None else None,
            "temperature_C": temperature.mean_C,
            "temperature_u_K": temperature.u_K,
            "tcr_ppm_per_K": temperature.tcr_source,
            "range_links": [
                {
                    "lower_A": e.lo_A,
                    "upper_A": e.hi_A,
                    "gain_difference": e.delta,
                    "u": e.u,
                    "pairs": e.n,
                }
                for e in links
            ],
            "range_reference_A": chain.main_reference_A if chain is not None else None,
            "anchor": anchor_info,
            "readings": len(readings),
            "readings_per_element": len(plan) / n_elements if n_elements else math.nan,
            "wall_time_s": wall_total,
            "instrument_time_s": instr_total,
            "wall_time_per_element_s": wall_total / n_elements if n_elements else math.nan,
            "instrument_time_per_element_s": instr_total / n_elements if n_elements else math.nan,
            "median_series_ohm": _nanmedian([c.series_ohm for c in results]),
            "median_leakage_S": _nanmedian([c.leakage_S for c in results]),
            "resumed_from": lineage[1:],
            # cells whose estimates are unreliable (a short, or huge readings no branch
            # explains) and cells whose leakage no branch explains: measure them again
            "remeasure_cells": [list(cells[i]) for i in np.flatnonzero(report.remeasure)],
            "leaky_cells": [list(cells[i]) for i in np.flatnonzero(report.leaky)],
            **diag,
        }
        if drift is not None:
            summary["drift"] = drift[0].summary()
        self.store.put_value(run_id, "summary", summary)
        self.store.finish_run(run_id, "completed", instrument_time_s=instrument_s)
        return CalibrationResult(
            run_id,
            "completed",
            settings,
            tuple(results),
            tuple(faults),
            drift[0] if drift is not None else None,
            scale,
            summary,
        )


def _nanmedian(values: Sequence[float]) -> float:
    arr = np.asarray(values, float)
    arr = arr[np.isfinite(arr)]
    return float(np.median(arr)) if arr.size else math.nan


def resume_run(
    lab: Lab,
    store: Store,
    run_id: int,
    *,
    wait_s: Callable[[float], None] | None = None,
) -> CalibrationRun:
    """A run that finishes interrupted (or failed) calibration run ``run_id``.

    The parent's stored settings are reused; the board must be the same (identity and
    serial). `StoreError` names the run when it cannot be resumed.
    """
    info = store.run(run_id)
    if info.kind != "calibration":
        raise StoreError(f"run {run_id} is a {info.kind} run, not a calibration run")
    if info.status not in ("interrupted", "failed"):
        hint = ""
        if info.status == "running":
            hint = (
                f"; if its process (pid {info.pid} on {info.host}) is gone, mark it "
                f"interrupted: `labrss runs --mark-interrupted {run_id}` or, in the GUI, "
                "Calibrate > Past runs > Mark interrupted"
            )
        raise StoreError(
            f"run {run_id} is {info.status}: only interrupted or failed runs can be resumed" + hint
        )
    board = store.board(info.board_id)
    if (board.identity, board.serial) != (lab.board.identity, lab.board.serial):
        raise StoreError(
            f"run {run_id} calibrated board {board.serial} ({board.identity}); the station's "
            f"board is {lab.board.serial} ({lab.board.identity})"
        )
    settings = CalibrationSettings.from_json(info.settings)
    return CalibrationRun(lab, store, settings, parent_run_id=run_id, wait_s=wait_s)
