"""The typed records that go into and come out of the store (`labrss.store.store.Store`).

Units are in the field names: conductances in siemens (``_S``), resistances in ohm
(``_ohm``), voltages in volt (``_V``), currents in ampere (``_A``), times in seconds
(``_s``). Absolute times (``*_at``, ``wall_time``) are POSIX seconds (UTC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from labrss.metrology.budget import ElementBudget

RunStatus = Literal["running", "completed", "interrupted", "failed"]
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)

FaultKind = Literal[
    "open",
    "short",
    "stuck_open",
    "stuck_closed",
    "memristor_stuck_on",
    "memristor_stuck_off",
    "memristor_worn_out",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)

ElementKind = Literal["resistor", "memristor", "mixed"]
ELEMENT_KINDS: tuple[str, ...] = get_args(ElementKind)

#: dtype of the structured array returned by `Store.readings` (NULL columns become NaN).
#: ``key``, ``quantity`` and ``unit`` are fixed-width strings sized to the longest value.
READING_NUMERIC_FIELDS: tuple[tuple[str, str], ...] = (
    ("run_id", "i8"),
    ("seq", "i8"),
    ("r", "i4"),
    ("c", "i4"),
    ("mask", "u8"),
    ("value", "f8"),
    ("voltage_V", "f8"),
    ("current_A", "f8"),
    ("current_range_A", "f8"),
    ("nplc", "f8"),
    ("four_wire", "?"),
    ("limit_tripped", "?"),
    ("instrument_time_s", "f8"),
    ("wall_time", "f8"),
)


def reading_key(r: int, c: int, mask: int, repeat: int = 0, tag: str = "") -> str:
    """The conventional reading key: ``"r,c,0xMASK,repeat[,tag]"``.

    Keys identify a reading within a run (UNIQUE (run, key)): a resumed run asks
    `Store.completed_keys` and skips the keys it finds. The key must therefore be a pure
    function of *what* is measured (cell, subset, repeat index, phase tag), never of *when*.
    """
    key = f"{r:d},{c:d},{mask:#x},{repeat:d}"
    return f"{key},{tag}" if tag else key


@dataclass(frozen=True, slots=True)
class ReadingRow:
    """One raw reading to store.

    ``value`` in ``unit`` is the measured ``quantity`` (for calibration: the subset's
    conductance in S, computed as I/V); the raw voltage and current are kept alongside so
    that any derived quantity can be recomputed. ``mask`` is the closed-switch subset of
    cell (r, c): bit k set = branch k closed. ``instrument_time_s`` is the instrument's
    time stamp; ``wall_time`` (POSIX s) defaults to the time of insertion.
    """

    key: str
    r: int
    c: int
    mask: int
    value: float
    quantity: str = "conductance"
    unit: str = "S"
    voltage_V: float | None = None
    current_A: float | None = None
    current_range_A: float | None = None
    nplc: float | None = None
    four_wire: bool = False
    limit_tripped: bool = False
    instrument_time_s: float | None = None
    wall_time: float | None = None


@dataclass(frozen=True, slots=True)
class BoardInfo:
    """A registered board: identity, geometry (rows x cols cells of ``branches`` each)."""

    id: int
    identity: str
    serial: str
    rows: int
    cols: int
    branches: int
    element_kind: ElementKind
    simulated: bool
    sim_seed: int | None
    sim_preset: str | None
    info: dict[str, Any]
    registered_at: float

    @property
    def shape(self) -> tuple[int, int, int]:
        """(rows, cols, branches)."""
        return (self.rows, self.cols, self.branches)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A run's provenance and state (one row of the ``runs`` table, plus its reading count).

    ``wall_time_s`` is the elapsed wall-clock time of this run (not of its parents);
    ``instrument_time_s`` is what the run reported as time spent by the instruments.
    ``parent_run_id`` is the interrupted run this one resumes.
    """

    id: int
    kind: str
    board_id: int
    status: RunStatus
    settings: dict[str, Any]
    identities: dict[str, Any]
    software_version: str
    started_at: float
    ended_at: float | None
    wall_time_s: float | None
    instrument_time_s: float | None
    parent_run_id: int | None
    note: str
    pid: int | None
    host: str | None
    heartbeat_at: float | None
    n_readings: int

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (every field)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


#: The components of an element's uncertainty budget (docs/metrology.md), in report order;
#: stored per element as ``u_<name>_S`` (schema 6).
UNCERTAINTY_COMPONENTS: tuple[str, ...] = (
    "statistical",
    "series",
    "leakage",
    "range",
    "offset",
    "scale",
    "temperature",
)


@dataclass(frozen=True, slots=True)
class CellEstimate:
    """The calibration estimates of one cell (r, c) of a run.

    ``conductance_S[k]``/``std_S[k]``: branch k's conductance a_k (closed minus open, S)
    and its combined standard uncertainty; NaN where not estimated. ``components`` maps
    each name of `UNCERTAINTY_COMPONENTS` to its (K,) part of ``std_S`` (S; the budget,
    docs/metrology.md); None for runs stored before schema 6, whose ``std_S`` is the
    statistical standard error alone. ``series_ohm``: the common series
    path; ``leakage_S``: the all-open conductance c0 (off-leakage of every branch plus any
    offset). ``chi2``/``dof``: the weighted residual sum of squares of the fit and its
    degrees of freedom; ``holdout_chi2``/``holdout_dof``: the same on the held-out
    validation subsets (the additivity check). NaN / -1 where not available.
    """

    r: int
    c: int
    conductance_S: NDArray[np.float64]
    std_S: NDArray[np.float64]
    series_ohm: float = math.nan
    series_std_ohm: float = math.nan
    leakage_S: float = math.nan
    leakage_std_S: float = math.nan
    chi2: float = math.nan
    dof: int = -1
    holdout_chi2: float = math.nan
    holdout_dof: int = -1
    n_readings: int = 0
    components: dict[str, NDArray[np.float64]] | None = None

    def __post_init__(self) -> None:
        g = np.asarray(self.conductance_S, dtype=np.float64)
        s = np.asarray(self.std_S, dtype=np.float64)
        if g.ndim != 1 or g.shape != s.shape:
            raise ValueError(
                f"cell ({self.r}, {self.c}): conductance_S and std_S must be 1-D arrays of "
                f"equal length, got shapes {g.shape} and {s.shape}"
            )
        object.__setattr__(self, "conductance_S", g)
        object.__setattr__(self, "std_S", s)
        if self.components is not None:
            comps = {}
            for name, value in self.components.items():
                if name not in UNCERTAINTY_COMPONENTS:
                    raise ValueError(
                        f"cell ({self.r}, {self.c}): unknown uncertainty component {name!r} "
                        f"(known: {', '.join(UNCERTAINTY_COMPONENTS)})"
                    )
                arr = np.asarray(value, dtype=np.float64)
                if arr.shape != g.shape:
                    raise ValueError(
                        f"cell ({self.r}, {self.c}): component {name!r} has shape "
                        f"{arr.shape}, the estimates {g.shape}"
                    )
                comps[name] = arr
            object.__setattr__(self, "components", comps)


@dataclass(frozen=True, slots=True)
class Fault:
    """A faulty branch k of cell (r, c), with the evidence that classified it (JSON-able)."""

    r: int
    c: int
    k: int
    kind: FaultKind
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Calibration:
    """The latest calibration of a board, merged per cell over completed calibration runs.

    Each cell takes its estimates (and faults) from the most recent completed calibration
    run that estimated it; ``cell_run_id`` says which (-1: never calibrated). Arrays are
    (rows, cols, branches) for elements and (rows, cols) for cells; NaN where unknown.
    ``excluded`` marks faulty branches (the solver must not use them).

    ``std_S`` is each element's combined standard uncertainty; ``components`` its budget
    (name -> (R, C, K) array, NaN where a cell's run stored none; None when no contributing
    run stored one). ``budget`` holds the correlations too (`labrss.metrology.budget.
    ElementBudget` over (R, C)): predicted banks use it (`ElementBudget.bank`); None when no
    contributing run stored a budget.
    """

    board_id: int
    run_id: int
    ended_at: float
    conductance_S: NDArray[np.float64]
    std_S: NDArray[np.float64]
    series_ohm: NDArray[np.float64]
    series_std_ohm: NDArray[np.float64]
    leakage_S: NDArray[np.float64]
    leakage_std_S: NDArray[np.float64]
    excluded: NDArray[np.bool_]
    measured: NDArray[np.bool_]
    cell_run_id: NDArray[np.int64]
    faults: tuple[Fault, ...]
    components: dict[str, NDArray[np.float64]] | None = None
    budget: ElementBudget | None = None

    @property
    def usable(self) -> NDArray[np.bool_]:
        """(R, C, K): measured, finite and not excluded as faulty."""
        ok: NDArray[np.bool_] = (
            self.measured[..., None] & ~self.excluded & np.isfinite(self.conductance_S)
        )
        return ok


def nan_to_none(x: float | None) -> float | None:
    """SQLite NULL for NaN (and for None)."""
    return None if x is None or math.isnan(x) else float(x)


__all__ = [
    "ELEMENT_KINDS",
    "FAULT_KINDS",
    "READING_NUMERIC_FIELDS",
    "RUN_STATUSES",
    "UNCERTAINTY_COMPONENTS",
    "BoardInfo",
    "Calibration",
    "CellEstimate",
    "ElementKind",
    "Fault",
    "FaultKind",
    "ReadingRow",
    "RunInfo",
    "RunStatus",
    "nan_to_none",
    "reading_key",
]


@dataclass(frozen=True)
class SwitchCounts:
    """One recording of a board's switch (relay) operation counts.

    Attributes:
        id: the record's id; board_id: the board.
        recorded_at: when (s since the epoch).
        rated_operations: the switches' rated life (operations), None if unlimited.
        counts: switch name (a matrix channel) -> operations counted by the instrument.
        where: switch name -> what it connects.
    """

    id: int
    board_id: int
    recorded_at: float
    rated_operations: int | None
    counts: dict[str, int]
    where: dict[str, str]

    def fraction_used(self) -> dict[str, float]:
        """Switch name -> operations / rated life (0 without a rated life)."""
        rated = self.rated_operations
        if rated is None or rated <= 0:
            return dict.fromkeys(self.counts, 0.0)
        return {name: count / rated for name, count in self.counts.items()}


@dataclass(frozen=True)
class ElementTCR:
    """A board's element temperature coefficients, merged per cell over its thermal
    calibration runs (the latest run that estimated a cell wins; docs/temperature.md).

    Arrays are (rows, cols, branches), NaN where unknown: ``tcr_ppm_per_K`` (the
    resistance TCR alpha, ppm/K), ``u_tcr_ppm_per_K`` (its standard uncertainty),
    ``conductance_S`` (the element at ``reference_C``), ``reference_C`` (degC).
    ``run_id`` (rows, cols): the thermal calibration run of each cell (-1: none).
    """

    board_id: int
    tcr_ppm_per_K: NDArray[np.float64]
    u_tcr_ppm_per_K: NDArray[np.float64]
    conductance_S: NDArray[np.float64]
    reference_C: NDArray[np.float64]
    run_id: NDArray[np.int64]

    @property
    def known(self) -> NDArray[np.bool_]:
        """(R, C, K): a finite TCR and uncertainty."""
        ok: NDArray[np.bool_] = np.isfinite(self.tcr_ppm_per_K) & np.isfinite(self.u_tcr_ppm_per_K)
        return ok
