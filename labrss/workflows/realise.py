"""Precise resistances on demand: program cells to target values and verify them.

The patent's own use case: a bank of imprecise elements, measured once, realises any value
in its range to about one part in 2^K. `realise` takes targets per cell (a resistance in
ohm or a conductance in S), solves each on the board's latest calibration
(`labrss.rss.solve`, exact), predicts the realised bank conductance with its full budget
(`labrss.metrology.budget`: correlated sources add linearly), programs the masks, verifies
each cell by measurement, and stores everything as a run (kind ``realise``).

    from labrss.workflows.realise import RealiseSettings, parse_targets, realise
    with Lab(station) as lab, Store(db) as store:
        result = realise(lab, store, parse_targets(["3,4=4.7k", "5,6=120uS"]),
                         RealiseSettings(tolerance=1e-4))
        for cell in result.cells:
            print(cell.r, cell.c, cell.predicted_S, cell.expanded_S, cell.measured_S)

The target is the bank's own conductance: the parallel branches of the cell as switched,
wiring excluded (``c0 + sum of the closed a_k``, as the calibration and the solver model
it). Every target is checked before anything is switched: the cell must be on the board,
calibrated, without a short or a stuck-closed switch (a branch that cannot be opened), and
the target inside the bank's reachable range; a `RealiseError` names the cell and the range.

Verification: each programmed cell is read by the SMU (guarded) with the other cells of
its row opened for the read and restored after it (a programmed row leaks the guard's
drop into the reading, docs/simulator.md), at +V and -V (``repeats`` pairs); the reading
through the cell's series path becomes the bank's conductance with the calibration's
r_s: ``G = y / (1 - r_s y)``. Its uncertainty is statistical (the pairs' scatter), the
meter's specification for the ranges read and the series path's. A cell meets a
``tolerance`` (relative) when its measured value is within it of the target.

Temperature: the calibration states each cell's elements at that cell's own board
temperature (the sensor read as the run reached it); `temperature_widening` widens the
temperature component by the board's temperature change since (the sensor, read now).
With ``temperature_range_C`` (``labrss realise --temperature-range 15:35``) the board's
per-element TCRs (``labrss calibrate --temperatures``) are used instead: each cell's
subset is chosen to minimise its worst error over the span
(`labrss.rss.thermal.solve_over_span`, the target following the board's common TCR, which
no subset can cancel and every ratio does), the prediction is carried to the present board
temperature by each element's own TCR, and the temperature component becomes each
element's TCR uncertainty times its distance from the TCR fit's reference temperature
(docs/temperature.md). Each cell then reports the predicted error over the span of the
plain mask (best at the span's middle) and of the compensated one.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labrss.lab import Lab
from labrss.lab.readings import reversal_conductance_S
from labrss.metrology.budget import BankUncertainty, ElementBudget
from labrss.metrology.smu_accuracy import AccuracyTableError, accuracy_for_model
from labrss.metrology.tcr import CommonTCR, split_common
from labrss.rss import solve
from labrss.rss.thermal import solve_over_span, span_errors
from labrss.store import Calibration, ElementTCR, ReadingRow, Store, reading_key
from labrss.workflows.boards import register_board
from labrss.workflows.run_close import close_run_after

__all__ = [
    "CellSpan",
    "RealiseError",
    "RealiseResult",
    "RealiseSettings",
    "RealisedCell",
    "Target",
    "board_leakage_rate",
    "carry_to_now",
    "cell_span",
    "cell_temperatures",
    "check_unique",
    "common_tcr",
    "datasheet_leakage_rate",
    "load_targets",
    "parse_quantity",
    "parse_targets",
    "parse_temperature_range",
    "parse_tolerance",
    "realise",
    "temperature_widening",
]

FloatArray = NDArray[np.float64]
TargetKind = Literal["resistance", "conductance"]

#: Progress callback: (cells done, cells, message).
Progress = Callable[[int, int, str], None]

_PREFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3, "u": 1e-6, "µ": 1e-6}
_PREFIX["n"] = 1e-9
_PREFIX["p"] = 1e-12
_QUANTITY = re.compile(
    r"^\s*(?P<num>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*"
    r"(?P<prefix>[kKMGmuµnp]?)\s*(?P<unit>S|ohms?|Ω|R)?\s*$"
)


class RealiseError(ValueError):
    """A target that cannot be realised, or bad input; the message names the cell (and the
    reachable range) or the text. Raised before anything is switched."""


@dataclass(frozen=True)
class Target:
    """One cell's target: ``value`` in ohm (``kind`` resistance) or S (conductance)."""

    r: int
    c: int
    value: float
    kind: TargetKind

    @property
    def target_S(self) -> float:
        """The target as the bank's conductance (S)."""
        return 1.0 / self.value if self.kind == "resistance" else self.value

    def text(self) -> str:
        """The target as written back: ``4700 ohm`` or ``0.00012 S``."""
        return f"{self.value:g} {'ohm' if self.kind == 'resistance' else 'S'}"


def parse_quantity(text: str) -> tuple[float, TargetKind]:
    """``"4.7k"`` -> (4700.0, resistance); ``"120uS"`` -> (1.2e-4, conductance).

    A value ending in ``S`` is a conductance (prefixes m, u/µ, n, p); otherwise it is a
    resistance in ohm (prefixes k, M, G; an optional ``ohm``/``Ω``/``R``). Raises
    RealiseError naming the text for anything else, or a non-positive value.
    """
    m = _QUANTITY.match(text)
    if not m:
        raise RealiseError(
            f"target {text!r}: expected a resistance (4.7k, 120, 1.5M ohm) or a conductance "
            "(120uS, 0.5mS)"
        )
    value = float(m["num"]) * _PREFIX[m["prefix"]]
    kind: TargetKind = "conductance" if m["unit"] == "S" else "resistance"
    if kind == "resistance" and m["prefix"] in ("m", "u", "µ", "n", "p"):
        raise RealiseError(f"target {text!r}: a resistance below 1 ohm? (write S for siemens)")
    if not (math.isfinite(value) and value > 0):
        raise RealiseError(f"target {text!r}: must be > 0")
    return value, kind


def _cell_of(text: str, where: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise RealiseError(f"{where}: cell {text!r} is not ROW,COL (0-based integers)")
    return int(parts[0]), int(parts[1])


def parse_targets(specs: Iterable[str]) -> list[Target]:
    """Targets from ``"ROW,COL=VALUE"`` texts (``"3,4=4.7k"``, ``"5,6=120uS"``)."""
    out = []
    for spec in specs:
        cell, sep, value = spec.partition("=")
        if not sep:
            raise RealiseError(f"target {spec!r}: expected ROW,COL=VALUE (e.g. 3,4=4.7k)")
        r, c = _cell_of(cell, f"target {spec!r}")
        number, kind = parse_quantity(value)
        out.append(Target(r, c, number, kind))
    check_unique(out)
    return out


def load_targets(path: str | Path) -> list[Target]:
    """Targets from a CSV file with a header: ``r,c,target`` (values as `parse_quantity`
    reads them) or ``r,c,target_ohm`` / ``r,c,target_S`` (plain numbers)."""
    file = Path(path)
    try:
        with file.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise RealiseError(f"{file}: cannot read the targets: {exc}") from None
    out = []
    for i, row in enumerate(rows, start=2):
        where = f"{file}:{i}"
        try:
            r, c = int(row["r"]), int(row["c"])
        except (KeyError, TypeError, ValueError):
            raise RealiseError(f"{where}: needs integer columns r and c") from None
        if row.get("target"):
            number, kind = parse_quantity(row["target"])
        elif row.get("target_ohm"):
            number, kind = _number(row["target_ohm"], where), "resistance"
        elif row.get("target_S"):
            number, kind = _number(row["target_S"], where), "conductance"
        else:
            raise RealiseError(f"{where}: needs a target, target_ohm or target_S column")
        out.append(Target(r, c, number, kind))
    if not out:
        raise RealiseError(f"{file}: no targets")
    check_unique(out)
    return out


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RealiseError(f"{where}: {text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise RealiseError(f"{where}: {text!r} must be > 0")
    return value


def check_unique(targets: Sequence[Target]) -> None:
    """RealiseError naming the first cell with two targets."""
    seen: set[tuple[int, int]] = set()
    for t in targets:
        if (t.r, t.c) in seen:
            raise RealiseError(f"cell ({t.r}, {t.c}) has two targets")
        seen.add((t.r, t.c))


def parse_tolerance(text: str) -> float:
    """A relative tolerance: ``"0.01%"`` -> 1e-4, ``"100ppm"`` -> 1e-4, ``"1e-4"``."""
    s = text.strip()
    scale = 1.0
    if s.endswith("%"):
        s, scale = s[:-1], 1e-2
    elif s.lower().endswith("ppm"):
        s, scale = s[:-3], 1e-6
    try:
        value = float(s) * scale
    except ValueError:
        raise RealiseError(f"tolerance {text!r}: expected 0.01%, 100ppm or 1e-4") from None
    if not (math.isfinite(value) and value > 0):
        raise RealiseError(f"tolerance {text!r}: must be > 0")
    return value


def parse_temperature_range(text: str) -> tuple[float, float]:
    """``"15:35"`` -> (15.0, 35.0) degC; RealiseError naming a bad text."""
    lo_text, sep, hi_text = text.partition(":")
    try:
        lo, hi = float(lo_text), float(hi_text)
    except ValueError:
        raise RealiseError(
            f"temperature range {text!r}: expected LOW:HIGH in degC, e.g. 15:35"
        ) from None
    if not (sep and math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise RealiseError(f"temperature range {text!r}: expected LOW:HIGH with LOW < HIGH")
    return lo, hi


#: Temperatures (as fractions of the span) at which each cell's predicted error is reported.
SPAN_POINTS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class RealiseSettings:
    """How `realise` works (stored with the run).

    Attributes:
        tolerance: relative tolerance a cell must meet (``|measured - target| <= tolerance x
            target``); None: no verdict.
        coverage_factor: k of the expanded uncertainty reported (U = k u).
        verify: measure every programmed cell.
        repeats: +V/-V reading pairs per verified cell.
        nplc, read_voltage_V: of the verification reads (None: the station's).
        temperature_range_C: (low, high) degC: choose subsets that hold over this span
            (the board's TCRs; module docstring); None: the best subset now.
    """

    tolerance: float | None = None
    coverage_factor: float = 2.0
    verify: bool = True
    repeats: int = 4
    nplc: float | None = None
    read_voltage_V: float | None = None
    temperature_range_C: tuple[float, float] | None = None

    def validate(self) -> RealiseSettings:
        """Raise RealiseError naming the first bad setting; return self."""
        if self.tolerance is not None and not (
            math.isfinite(self.tolerance) and self.tolerance > 0
        ):
            raise RealiseError(f"realise setting tolerance = {self.tolerance!r}: must be > 0")
        if not (math.isfinite(self.coverage_factor) and self.coverage_factor > 0):
            raise RealiseError(
                f"realise setting coverage_factor = {self.coverage_factor!r}: must be > 0"
            )
        if self.repeats < 2:
            raise RealiseError(f"realise setting repeats = {self.repeats!r}: must be >= 2")
        span = self.temperature_range_C
        if span is not None and not (
            len(span) == 2 and all(math.isfinite(x) for x in span) and span[0] < span[1]
        ):
            raise RealiseError(f"realise setting temperature_range_C = {span!r}: need LOW < HIGH")
        return self


@dataclass(frozen=True)
class RealisedCell:
    """One realised cell (S unless named otherwise).

    ``predicted_S`` is the bank conductance the calibration predicts for ``mask``,
    ``u_S`` its combined standard uncertainty with ``components`` (docs/metrology.md),
    ``expanded_S`` = k u. ``measured_S`` (NaN when not verified) is the bank's
    conductance measured after programming, ``u_measured_S`` its standard uncertainty.
    ``met``: the measured value is within the tolerance of the target (None without a
    tolerance or a measurement).
    """

    r: int
    c: int
    target: Target
    mask: int
    predicted_S: float
    u_S: float
    expanded_S: float
    components: dict[str, float]
    measured_S: float = math.nan
    u_measured_S: float = math.nan
    met: bool | None = None
    temperature: dict[str, Any] | None = None
    """With a temperature range: the span, the plain and compensated masks and their
    predicted errors (S) at ``temperatures_C`` (`SPAN_POINTS`), their worst errors over the
    span, the common TCR's drift no subset cancels, and the TCR-carried prediction."""

    @property
    def target_S(self) -> float:
        """The target as a conductance (S)."""
        return self.target.target_S

    @property
    def branches(self) -> tuple[int, ...]:
        """The closed branches."""
        return tuple(k for k in range(self.mask.bit_length()) if self.mask >> k & 1)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (NaN as None)."""

        def f(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "r": self.r,
            "c": self.c,
            "target": self.target.text(),
            "target_S": self.target_S,
            "mask": self.mask,
            "mask_hex": f"{self.mask:X}",
            "branches": list(self.branches),
            "predicted_S": f(self.predicted_S),
            "u_S": f(self.u_S),
            "U_S": f(self.expanded_S),
            "predicted_ohm": f(1.0 / self.predicted_S) if self.predicted_S > 0 else None,
            "components_S": {k: f(v) for k, v in self.components.items()},
            "measured_S": f(self.measured_S),
            "u_measured_S": f(self.u_measured_S),
            "met": self.met,
            "temperature": self.temperature,
        }


@dataclass
class RealiseResult:
    """What `realise` did: the run, the calibration used, every cell."""

    run_id: int
    calibration_run_id: int
    settings: RealiseSettings
    cells: list[RealisedCell] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: counts, median relative error of the prediction and of the
        measurement against the target."""
        pred = np.array([abs(c.predicted_S / c.target_S - 1.0) for c in self.cells])
        meas = np.array(
            [
                abs(c.measured_S / c.target_S - 1.0)
                for c in self.cells
                if math.isfinite(c.measured_S)
            ]
        )
        rel_u = np.array([c.expanded_S / c.predicted_S for c in self.cells])
        met = [c.met for c in self.cells if c.met is not None]
        extra: dict[str, Any] = {}
        spans = [c.temperature for c in self.cells if c.temperature is not None]
        if spans:
            plain = np.array([t["worst_plain_S"] / t["target_S"] for t in spans])
            comp = np.array([t["worst_compensated_S"] / t["target_S"] for t in spans])
            extra = {
                "temperature_range_C": spans[0]["range_C"],
                "common_tcr_ppm_per_K": spans[0]["common_tcr_ppm_per_K"],
                "median_rel_worst_error_plain": float(np.median(plain)),
                "median_rel_worst_error_compensated": float(np.median(comp)),
            }
        return {
            **extra,
            "run_id": self.run_id,
            "calibration_run_id": self.calibration_run_id,
            "cells": len(self.cells),
            "coverage_factor": self.settings.coverage_factor,
            "tolerance": self.settings.tolerance,
            "median_rel_error_predicted": float(np.median(pred)) if pred.size else None,
            "median_rel_error_measured": float(np.median(meas)) if meas.size else None,
            "median_rel_expanded_uncertainty": float(np.median(rel_u)) if rel_u.size else None,
            "met": sum(bool(m) for m in met) if met else None,
        }

    def to_json(self) -> dict[str, Any]:
        """The summary with a ``cells`` list (`RealisedCell.to_json`)."""
        return {**self.summary(), "cells": [c.to_json() for c in self.cells]}


def temperature_widening(
    budget: ElementBudget, cell_C: ArrayLike, cell_u_K: ArrayLike, now_C: float
) -> ElementBudget:
    """``budget`` (leading shape (R, C)) with each cell's temperature contributions widened
    by the board's temperature change since that cell was calibrated:
    ``u -> sqrt(u^2 + (T_now - T_cell)^2)``.

    ``cell_C``/``cell_u_K`` (R, C): the temperature each cell's estimates hold at and its
    uncertainty (the calibration run's results ``cell_temperature_C``/``_u_K``); a NaN
    cell, or a NaN ``now_C``, is left as it is.
    """
    t_cell = np.asarray(cell_C, dtype=np.float64)
    u_cell = np.asarray(cell_u_K, dtype=np.float64)
    if not math.isfinite(now_C):
        return budget
    ok = np.isfinite(t_cell) & np.isfinite(u_cell) & (u_cell > 0)
    factor = np.where(ok, np.hypot(u_cell, now_C - t_cell) / np.where(ok, u_cell, 1.0), 1.0)
    contrib = budget.contrib_S.copy()
    for i, src in enumerate(budget.sources):
        if src.category == "temperature":
            contrib[..., i] *= factor[..., None]
    return ElementBudget(budget.sources, budget.value_S, budget.cov_S2, contrib)


def cell_temperatures(store: Store, calibration: Calibration) -> tuple[FloatArray, FloatArray]:
    """(T degC, u K), (R, C): the temperature each calibrated cell's estimates hold at, from
    its run's results (NaN for runs stored without them)."""
    shape = calibration.measured.shape
    t_cell = np.full(shape, np.nan)
    u_cell = np.full(shape, np.nan)
    for rid in sorted({int(x) for x in np.unique(calibration.cell_run_id) if x >= 0}):
        names = store.result_names(rid)
        if not {"cell_temperature_C", "cell_temperature_u_K", "budget_cells"} <= set(names):
            continue
        cells = store.get_result(rid, "budget_cells").astype(np.int64)
        temps = store.get_result(rid, "cell_temperature_C")
        us = store.get_result(rid, "cell_temperature_u_K")
        for (r, c), tc, uc in zip(cells.tolist(), temps, us, strict=True):
            if calibration.cell_run_id[r, c] == rid:
                t_cell[r, c], u_cell[r, c] = tc, uc
    return t_cell, u_cell


@dataclass(frozen=True)
class _Plan:
    target: Target
    mask: int
    bank: BankUncertainty
    temperature: dict[str, Any] | None = None


def _mask_int(mask: NDArray[np.bool_]) -> int:
    return int(sum(1 << int(j) for j in np.flatnonzero(mask)))


@dataclass(frozen=True)
class CellSpan:
    """One cell's subsets over a span (`cell_span`): the compensated ``mask`` and the
    ``plain_mask`` (best at the span's middle), both as bool arrays over the branches, the
    JSON-ready ``info`` (`RealisedCell.temperature`), and the elements' TCR model."""

    mask: NDArray[np.bool_]
    plain_mask: NDArray[np.bool_]
    info: dict[str, Any]
    g_ref_S: FloatArray
    alpha_per_K: FloatArray
    u_alpha_per_K: FloatArray
    t_ref_C: FloatArray
    c0_S: float
    leakage: CellLeakage

    def conductance_at(self, temperature_C: float) -> FloatArray:
        """Each element's conductance at ``temperature_C`` by its own TCR (S)."""
        return np.asarray(
            self.g_ref_S / (1.0 + self.alpha_per_K * (temperature_C - self.t_ref_C)),
            dtype=np.float64,
        )

    def c0_at(self, temperature_C: float) -> float:
        """The cell's all-open conductance (off-leakage) at ``temperature_C`` (S)."""
        return self.leakage.c0_at(temperature_C)


@dataclass(frozen=True)
class CellLeakage:
    """A cell's off-leakage model: ``c0(T) = c0_S exp(rate_per_K (T - reference_C))``
    (S; the calibration's c0 at its cell temperature, the board's growth rate from the
    thermal calibration or the datasheet rule `LEAKAGE_DOUBLING_K`)."""

    c0_S: float
    reference_C: float
    rate_per_K: float
    u_rate_per_K: float = 0.0
    source: str = "datasheet"

    def c0_at(self, temperature_C: float) -> float:
        """c0 at ``temperature_C`` (S)."""
        return self.c0_S * math.exp(self.rate_per_K * (temperature_C - self.reference_C))

    def u_at(self, temperature_C: float) -> float:
        """Standard uncertainty of c0 at ``temperature_C`` from the rate's (S)."""
        return (
            self.c0_at(temperature_C) * abs(temperature_C - self.reference_C) * (self.u_rate_per_K)
        )


def board_leakage_rate(store: Store, board_id: int) -> tuple[float, float, str]:
    """The board's off-leakage growth rate (1/K), its uncertainty and where it comes from:
    the latest completed thermal calibration that fitted it, else the datasheet rule
    (doubling every `LEAKAGE_DOUBLING_K`, uncertainty a quarter of it)."""
    runs = [
        x
        for x in store.runs(kind="thermal_calibration")
        if x.status == "completed" and x.board_id == board_id
    ]
    for run in reversed(runs):
        if "summary" not in store.result_names(run.id):
            continue
        leak = store.get_value(run.id, "summary").get("leakage") or {}
        rate, u = leak.get("rate_per_K"), leak.get("u_rate_per_K")
        if isinstance(rate, float) and isinstance(u, float) and math.isfinite(rate + u):
            return rate, u, f"thermal calibration run {run.id}"
    return datasheet_leakage_rate()


def datasheet_leakage_rate() -> tuple[float, float, str]:
    """The off-leakage growth rate of the datasheet rule (1/K: doubling every
    `LEAKAGE_DOUBLING_K`), its uncertainty (a quarter of it) and that source."""
    rate = math.log(2.0) / LEAKAGE_DOUBLING_K
    return rate, 0.25 * rate, f"datasheet rule (doubling every {LEAKAGE_DOUBLING_K:g} K)"


def common_tcr(tcr: ElementTCR) -> CommonTCR:
    """The board's common TCR and spread; RealiseError when it has no TCRs."""
    common = split_common(tcr.tcr_ppm_per_K, tcr.u_tcr_ppm_per_K)
    if not math.isfinite(common.common_ppm_per_K):
        raise RealiseError("the board has no element TCRs: run `labrss calibrate --temperatures`")
    return common


def cell_span(  # noqa: PLR0917 (the cell, its target and the span)
    calibration: Calibration,
    tcr: ElementTCR,
    r: int,
    c: int,
    target_S: float,
    span_C: tuple[float, float],
    common: CommonTCR | None = None,
    *,
    leakage_rate: tuple[float, float, str] | None = None,
    c0_reference_C: float = math.nan,
) -> CellSpan:
    """Cell (r, c)'s plain and compensated subsets for ``target_S`` (the bank's own
    value, S) over ``span_C`` (module docstring; the target follows the common TCR).

    The bank is ``c0(T) + sum of the closed elements``: the cell's off-leakage c0 is
    carried from ``c0_reference_C`` (the calibration's cell temperature; NaN: the span's
    middle) by ``leakage_rate`` ((rate 1/K, its uncertainty, source), `board_leakage_rate`;
    None: the datasheet rule), so the solver sees its drift (at the span's ends exactly;
    its curvature between them is in the reported errors). RealiseError for a cell
    without a TCR for every usable element. Pure: nothing sent."""
    lo, hi = span_C
    t0 = 0.5 * (lo + hi)
    common = common if common is not None else common_tcr(tcr)
    alpha_c = common.common_ppm_per_K * 1e-6
    k = calibration.conductance_S.shape[2]
    usable = calibration.usable[r, c] & tcr.known[r, c]
    if not usable.any() or not tcr.known[r, c][calibration.usable[r, c]].all():
        raise RealiseError(
            f"cell ({r}, {c}) has no temperature coefficients for every usable element: "
            f"run `labrss calibrate --temperatures ... --cells {r},{c}` first"
        )
    model = CellSpan(
        np.zeros(k, dtype=bool),
        np.zeros(k, dtype=bool),
        {},
        np.where(usable, tcr.conductance_S[r, c], 0.0),
        np.where(usable, tcr.tcr_ppm_per_K[r, c], 0.0) * 1e-6,
        np.where(usable, tcr.u_tcr_ppm_per_K[r, c], 0.0) * 1e-6,
        np.where(usable, tcr.reference_C[r, c], t0),
        float(np.nan_to_num(calibration.leakage_S[r, c], nan=0.0)),
        CellLeakage(0.0, t0, 0.0),
    )
    rate, u_rate, rate_from = leakage_rate or datasheet_leakage_rate()
    c0_ref = c0_reference_C if math.isfinite(c0_reference_C) else t0
    model = dataclasses.replace(
        model, leakage=CellLeakage(model.c0_S, c0_ref, rate, u_rate, rate_from)
    )
    g0 = model.conductance_at(t0)
    slope = -model.alpha_per_K * g0
    d_lo, d_hi = lo - t0, hi - t0

    def goal(t_c: float) -> float:
        """What the elements must sum to at ``t_c``: the target (following the common
        TCR) less the cell's off-leakage there."""
        return target_S * (1.0 - alpha_c * (t_c - t0)) - model.c0_at(t_c)

    # the solver's goal is linear in T: the chord of goal() through the span's ends
    g_lo, g_hi = goal(lo), goal(hi)
    chord_slope = (g_hi - g_lo) / (d_hi - d_lo)
    chord_t0 = g_lo - d_lo * chord_slope
    plain = solve(g0[None, :], [goal(t0)], exclude=~usable[None, :])
    plain_mask = np.asarray(plain.mask, dtype=bool)[0]
    comp = solve_over_span(
        g0,
        slope,
        [chord_t0],
        span_K=(d_lo, d_hi),
        target_slopes_S_per_K=[chord_slope],
        exclude=~usable,
    )
    mask = comp.mask[0]
    temps = [lo + f * (hi - lo) for f in SPAN_POINTS]
    chord_errs = span_errors(
        np.stack([g0, g0]),
        np.stack([slope, slope]),
        np.stack([plain_mask, mask]),
        [chord_t0, chord_t0],
        [x - t0 for x in temps],
        target_slopes_S_per_K=[chord_slope, chord_slope],
    )
    # from the chord back to the leakage's own curve between the ends
    bend = np.array([chord_t0 + (x - t0) * chord_slope - goal(x) for x in temps])
    errs = chord_errs + bend[None, :]
    info = {
        "range_C": [lo, hi],
        "reference_C": t0,
        "target_S": target_S,
        "common_tcr_ppm_per_K": common.common_ppm_per_K,
        "tcr_spread_ppm_per_K": common.spread_ppm_per_K,
        "common_drift_S": abs(alpha_c * target_S) * 0.5 * (hi - lo),
        "temperatures_C": temps,
        "plain_mask": _mask_int(plain_mask),
        "compensated_mask": _mask_int(mask),
        "errors_plain_S": errs[0].tolist(),
        "errors_compensated_S": errs[1].tolist(),
        "worst_plain_S": float(np.abs(errs[0]).max()),
        "worst_compensated_S": float(np.abs(errs[1]).max()),
        "error_at_reference_plain_S": float(errs[0][2]),
        "error_at_reference_compensated_S": float(errs[1][2]),
        "leakage_S": [model.c0_at(x) for x in temps],
        "leakage_rate_per_K": rate,
        "leakage_rate_from": rate_from,
        "u_slope_S_per_K": float(np.sqrt(((g0 * model.u_alpha_per_K)[mask] ** 2).sum())),
        # the compensated worst error's standard uncertainty from the TCR estimates alone
        "u_worst_compensated_S": 0.5
        * (hi - lo)
        * float(np.sqrt(((g0 * model.u_alpha_per_K)[mask] ** 2).sum())),
        "worst_plain_bound_S": _worst_bound(
            calibration, model, r, c, plain_mask, errs[0], temps, t0
        ),
        "worst_compensated_bound_S": _worst_bound(
            calibration, model, r, c, mask, errs[1], temps, t0
        ),
        "method": comp.method,
    }
    return dataclasses.replace(model, mask=mask, plain_mask=plain_mask, info=info)


LEAKAGE_DOUBLING_K = 10.0
"""The switches' off-leakage doubles every this many kelvin (the CMOS junction rule of
thumb analog-switch datasheets show): the cell's all-open c0 drifts by it over a span. Used
when no thermal calibration measured the board's own rate (`board_leakage_rate`)."""
BOUND_COVERAGE = 2.0
"""Coverage factor of the predicted worst error's bound (k = 2)."""
_UNCOMMON = ("statistical", "series", "leakage", "offset")
"""Budget components that differ from cell to cell (the common scale, range gain and
board temperature are common to every cell and cancel in ratios, like the common TCR)."""


def _worst_bound(  # noqa: PLR0917 (the cell, a mask and its predicted errors)
    calibration: Calibration,
    model: CellSpan,
    r: int,
    c: int,
    mask: NDArray[np.bool_],
    errors_S: FloatArray,
    temps_C: Sequence[float],
    t0_C: float,
) -> float:
    """A bound (S) the mask's true worst error over the span stays within (k = 2), relative
    to the target that follows the common TCR: at each reported temperature T the
    predicted error (the off-leakage's drift, ``model.leakage``, is in it) plus k times the
    error's standard uncertainty:
    the calibration's cell-to-cell components at T0 (`_UNCOMMON`), each element's TCR
    uncertainty over ``T - T0`` and the leakage model's (issue 17: the prediction must
    cover the truth)."""
    budget = calibration.budget
    if budget is not None:
        cell = ElementBudget(
            budget.sources, budget.value_S[r, c], budget.cov_S2[r, c], budget.contrib_S[r, c]
        )
        comps = cell.bank(mask).components
        u_t0 = math.sqrt(sum(float(comps[n]) ** 2 for n in _UNCOMMON if n in comps))
    else:
        s = np.where(mask, np.nan_to_num(calibration.std_S[r, c]), 0.0)
        u_t0 = float(np.sqrt((s**2).sum()))
    g0 = model.conductance_at(t0_C)
    u_slope = float(np.sqrt(((g0 * model.u_alpha_per_K)[mask] ** 2).sum()))
    worst = 0.0
    for e, t in zip(errors_S, temps_C, strict=True):
        d = t - t0_C
        u = math.sqrt(u_t0**2 + (d * u_slope) ** 2 + model.leakage.u_at(t) ** 2)
        worst = max(worst, abs(float(e)) + BOUND_COVERAGE * u)
    return worst


def plan_over_span(  # noqa: PLR0917 (the plans, the span and the leakage)
    calibration: Calibration,
    tcr: ElementTCR,
    plans: Sequence[_Plan],
    span_C: tuple[float, float],
    now_C: float,
    leakage_rate: tuple[float, float, str] | None = None,
    cell_C: FloatArray | None = None,
) -> list[_Plan]:
    """Re-solve ``plans`` (already checked by `plan_targets`) for the span (module
    docstring): masks, predictions at ``now_C`` and the temperature component from each
    element's TCR; RealiseError for a cell without TCRs. Nothing is switched."""
    common = common_tcr(tcr)
    k = calibration.conductance_S.shape[2]
    out = []
    for plan in plans:
        r, c = plan.target.r, plan.target.c
        span = cell_span(
            calibration,
            tcr,
            r,
            c,
            plan.target.target_S,
            span_C,
            common,
            leakage_rate=leakage_rate,
            c0_reference_C=float(cell_C[r, c]) if cell_C is not None else math.nan,
        )
        mask = span.mask
        # the prediction now, carried by each element's own TCR
        now = 0.5 * sum(span_C) if not math.isfinite(now_C) else now_C
        g_now = span.conductance_at(now)
        value_now = float(g_now[mask].sum() + span.c0_at(now))
        u_temp = float(
            np.sqrt((((g_now * span.u_alpha_per_K * (now - span.t_ref_C))[mask]) ** 2).sum())
        )
        bank = plan.bank
        if not np.array_equal(_bits(plan.mask, k), mask):
            bank = _bank_for(calibration, plan, mask)
        comps = {name: np.asarray(v) for name, v in bank.components.items()}
        old = float(comps.get("temperature", np.asarray(0.0)))
        comps["temperature"] = np.asarray(u_temp)
        u_all = math.sqrt(max(float(bank.u_S) ** 2 - old**2, 0.0) + u_temp**2)
        new_bank = BankUncertainty(np.asarray(value_now), np.asarray(u_all), comps)
        info = {
            **span.info,
            "predicted_now_S": value_now,
            "board_C": now_C if math.isfinite(now_C) else None,
        }
        out.append(_Plan(plan.target, _mask_int(mask), new_bank, info))
    return out


def carry_to_now(
    calibration: Calibration, tcr: ElementTCR, plans: Sequence[_Plan], now_C: float
) -> list[_Plan]:
    """The plans' predictions carried to ``now_C`` by each element's own TCR, where every
    usable element of the cell has one (other cells are left as they are): the value from
    the TCR model, and the temperature component
    ``sqrt(sum (g_i u(alpha_i) (T_now - T_ref,i))^2)`` instead of the bill-of-materials
    widening (issue 11's budget, docs/temperature.md). Masks are unchanged."""
    k = calibration.conductance_S.shape[2]
    out = []
    for plan in plans:
        r, c = plan.target.r, plan.target.c
        usable = calibration.usable[r, c]
        if not (usable.any() and tcr.known[r, c][usable].all()):
            out.append(plan)
            continue
        mask = _bits(plan.mask, k)
        g_ref = np.where(usable, tcr.conductance_S[r, c], 0.0)
        alpha = np.where(usable, tcr.tcr_ppm_per_K[r, c], 0.0) * 1e-6
        u_alpha = np.where(usable, tcr.u_tcr_ppm_per_K[r, c], 0.0) * 1e-6
        t_ref = np.where(usable, tcr.reference_C[r, c], now_C)
        g_now = g_ref / (1.0 + alpha * (now_C - t_ref))
        c0 = float(np.nan_to_num(calibration.leakage_S[r, c], nan=0.0))
        value_now = float(g_now[mask].sum() + c0)
        u_temp = float(np.sqrt((((g_now * u_alpha * (now_C - t_ref))[mask]) ** 2).sum()))
        comps = {name: np.asarray(v) for name, v in plan.bank.components.items()}
        old = float(comps.get("temperature", np.asarray(0.0)))
        comps["temperature"] = np.asarray(u_temp)
        u_all = math.sqrt(max(float(plan.bank.u_S) ** 2 - old**2, 0.0) + u_temp**2)
        bank = BankUncertainty(np.asarray(value_now), np.asarray(u_all), comps)
        out.append(_Plan(plan.target, plan.mask, bank, plan.temperature))
    return out


def _bits(mask: int, k: int) -> NDArray[np.bool_]:
    return np.array([(mask >> j) & 1 for j in range(k)], dtype=bool)


def _bank_for(calibration: Calibration, plan: _Plan, mask: NDArray[np.bool_]) -> BankUncertainty:
    """The calibration's budget for another mask of the plan's cell."""
    r, c = plan.target.r, plan.target.c
    budget = calibration.budget
    if budget is not None:
        cell = ElementBudget(
            budget.sources, budget.value_S[r, c], budget.cov_S2[r, c], budget.contrib_S[r, c]
        )
        return cell.bank(mask)
    s = np.where(mask, np.nan_to_num(calibration.std_S[r, c]), 0.0)
    stat = float(np.sqrt((s**2).sum() + calibration.leakage_std_S[r, c] ** 2))
    value = float(np.nansum(np.where(mask, calibration.conductance_S[r, c], 0.0)))
    return BankUncertainty(np.asarray(value), np.asarray(stat), {"statistical": np.asarray(stat)})


def _faulty(calibration: Calibration, r: int, c: int) -> str | None:
    for fault in calibration.faults:
        if (fault.r, fault.c) == (r, c) and fault.kind in ("short", "stuck_closed"):
            return f"branch {fault.k} is {fault.kind.replace('_', ' ')}"
    return None


def plan_targets(
    calibration: Calibration, targets: Sequence[Target], budget: ElementBudget | None
) -> list[_Plan]:
    """Solve every target on the calibration and predict its bank; nothing is switched.

    Raises RealiseError for the first unknown, uncalibrated or faulty cell, or a target
    outside its bank's reachable range (naming the range in S and ohm).
    """
    rows, cols, k = calibration.conductance_S.shape
    for t in targets:
        if not (0 <= t.r < rows and 0 <= t.c < cols):
            raise RealiseError(
                f"cell ({t.r}, {t.c}) is not on the board (rows 0..{rows - 1}, cols 0..{cols - 1})"
            )
        if not calibration.measured[t.r, t.c]:
            raise RealiseError(
                f"cell ({t.r}, {t.c}) has no calibration: run `labrss calibrate --cells "
                f"{t.r},{t.c}` first"
            )
        why = _faulty(calibration, t.r, t.c)
        if why is not None:
            raise RealiseError(f"cell ({t.r}, {t.c}) is faulty ({why}): it cannot be realised")
    idx = np.array([(t.r, t.c) for t in targets], dtype=np.int64).reshape(-1, 2)
    a = calibration.conductance_S[idx[:, 0], idx[:, 1]]
    usable = calibration.usable[idx[:, 0], idx[:, 1]]
    if not usable.any(axis=1).all():
        i = int(np.flatnonzero(~usable.any(axis=1))[0])
        raise RealiseError(f"cell ({targets[i].r}, {targets[i].c}) has no usable element")
    c0 = np.nan_to_num(calibration.leakage_S[idx[:, 0], idx[:, 1]], nan=0.0).clip(min=0.0)
    leak = np.broadcast_to(c0[:, None] / k, a.shape)
    elements = np.where(usable, np.nan_to_num(a, nan=0.0) + leak, leak)
    wanted = np.array([t.target_S for t in targets])
    result = solve(elements, wanted, leakage_S=leak, exclude=~usable)
    for i, t in enumerate(targets):
        if not bool(result.reachable[i]):
            lo, hi = float(result.reachable_lo[i]), float(result.reachable_hi[i])
            raise RealiseError(
                f"cell ({t.r}, {t.c}): target {t.text()} ({t.target_S:.6g} S) is outside the "
                f"bank's reachable range {lo:.6g} .. {hi:.6g} S "
                f"({1 / hi:.6g} .. {1 / lo if lo > 0 else math.inf:.6g} ohm)"
            )
    masks = np.asarray(result.mask, dtype=bool)
    plans = []
    for i, t in enumerate(targets):
        mask_int = int(sum(1 << int(j) for j in np.flatnonzero(masks[i])))
        if budget is not None:
            cell = ElementBudget(
                budget.sources,
                budget.value_S[t.r, t.c],
                budget.cov_S2[t.r, t.c],
                budget.contrib_S[t.r, t.c],
            )
            bank = cell.bank(masks[i])
        else:  # a calibration stored before the budget: its std_S, independent elements
            s = np.where(masks[i], np.nan_to_num(calibration.std_S[t.r, t.c]), 0.0)
            stat = float(np.sqrt((s**2).sum() + calibration.leakage_std_S[t.r, t.c] ** 2))
            value = float(result.value[i])
            bank = BankUncertainty(
                np.asarray(value), np.asarray(stat), {"statistical": np.asarray(stat)}
            )
        plans.append(_Plan(t, mask_int, bank))
    return plans


def _verify(
    lab: Lab,
    store: Store,
    run_id: int,
    plan: _Plan,
    *,
    calibration: Calibration,
    settings: RealiseSettings,
) -> tuple[float, float]:
    """Measure the programmed bank (S) and its standard uncertainty (module docstring)."""
    t = plan.target
    board_masks = lab.masks()
    row = board_masks[t.r]
    others = [c for c in range(row.shape[0]) if c != t.c and row[c].any()]
    for c in others:
        lab.set_cell_mask(t.r, c, 0)
    v = float(settings.read_voltage_V or lab.station.measurement.read_voltage_V)
    pairs: list[float] = []
    rows: list[ReadingRow] = []
    ranges: set[float] = set()
    volts: list[float] = []
    try:
        for rep in range(settings.repeats):
            plus = lab.measure_cell(t.r, t.c, nplc=settings.nplc, read_voltage_V=abs(v))
            minus = lab.measure_cell(t.r, t.c, nplc=settings.nplc, read_voltage_V=-abs(v))
            for sign, reading in (("+", plus), ("-", minus)):
                rows.append(
                    ReadingRow(
                        key=reading_key(t.r, t.c, plan.mask, rep, f"v{sign}"),
                        r=t.r,
                        c=t.c,
                        mask=plan.mask,
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
                ranges.add(float(reading.current_range_A))
                volts.append(float(reading.voltage_V))
            pair_S = reversal_conductance_S(plus, minus)
            if pair_S is not None:
                pairs.append(pair_S)
    finally:
        for c in others:
            lab.set_cell_mask(t.r, c, int(sum(1 << int(j) for j in np.flatnonzero(row[c]))))
    store.add_readings(run_id, rows)
    y = np.asarray(pairs, dtype=np.float64)
    y = y[np.isfinite(y)]
    if y.size < 2:
        return math.nan, math.nan
    rs = float(np.nan_to_num(calibration.series_ohm[t.r, t.c], nan=0.0))
    u_rs = float(np.nan_to_num(calibration.series_std_ohm[t.r, t.c], nan=0.0))
    mean = float(y.mean())
    g = mean / (1.0 - rs * mean)
    dgdy = 1.0 / (1.0 - rs * mean) ** 2
    u_stat = float(y.std(ddof=1) / math.sqrt(y.size)) * dgdy
    u_series = g**2 * u_rs
    u_meter = math.nan
    try:
        acc = accuracy_for_model(lab.smu.model)
        u_i = max(acc.current_range(r).u_gain for r in ranges)
        u_v = max(acc.voltage_range_for(x).u_gain for x in volts)
        u_meter = g * math.hypot(u_i, u_v)
    except AccuracyTableError:
        pass
    return g, math.sqrt(u_stat**2 + u_series**2 + u_meter**2)


def realise(
    lab: Lab,
    store: Store,
    targets: Sequence[Target],
    settings: RealiseSettings | None = None,
    *,
    progress: Progress | None = None,
) -> RealiseResult:
    """Realise ``targets`` on the lab's board (module docstring); a stored run.

    Raises:
        RealiseError: a bad target or setting (before anything is switched).
        NoCalibrationError: the board has no calibration yet.
    """
    settings = (settings or RealiseSettings()).validate()
    if not targets:
        raise RealiseError("no targets")
    board_id = register_board(lab, store)
    calibration = store.latest_calibration(board_id)
    budget = calibration.budget
    now_C = math.nan
    cells_C: tuple[FloatArray, FloatArray] | None = None
    if budget is not None or settings.temperature_range_C is not None:
        try:
            now_C = float(lab.board.temperature_C())
        except Exception:  # no sensor: the temperature component stays the calibration's
            now_C = math.nan
        cells_C = cell_temperatures(store, calibration)
    if budget is not None:
        assert cells_C is not None
        budget = temperature_widening(budget, *cells_C, now_C)
    plans = plan_targets(calibration, targets, budget)
    if settings.temperature_range_C is not None:
        tcr = store.latest_tcr(board_id)
        if tcr is None:
            raise RealiseError(
                "--temperature-range needs the elements' temperature coefficients: run "
                "`labrss calibrate --temperatures 20,30,40` (a thermal stage) first"
            )
        assert cells_C is not None
        plans = plan_over_span(
            calibration,
            tcr,
            plans,
            settings.temperature_range_C,
            now_C,
            board_leakage_rate(store, board_id),
            cells_C[0],
        )
    elif math.isfinite(now_C):
        tcr = store.latest_tcr(board_id)
        if tcr is not None:
            plans = carry_to_now(calibration, tcr, plans, now_C)
    run_id = store.start_run(
        "realise",
        board_id,
        settings={
            **dataclasses.asdict(settings),
            "targets": [f"{t.r},{t.c}={t.text()}" for t in targets],
            "calibration_run_id": calibration.run_id,
        },
        identities={**lab.identities, "station": lab.station.name},
    )
    result = RealiseResult(run_id, calibration.run_id, settings)
    try:
        for i, plan in enumerate(plans):
            lab.set_cell_mask(plan.target.r, plan.target.c, plan.mask)
            if progress is not None:
                progress(
                    i + 1, 2 * len(plans), f"programmed cell ({plan.target.r}, {plan.target.c})"
                )
        for i, plan in enumerate(plans):
            measured = u_measured = math.nan
            if settings.verify:
                measured, u_measured = _verify(
                    lab, store, run_id, plan, calibration=calibration, settings=settings
                )
            t = plan.target
            met = None
            if settings.tolerance is not None and math.isfinite(measured):
                met = abs(measured - t.target_S) <= settings.tolerance * t.target_S
            u = float(plan.bank.u_S)
            result.cells.append(
                RealisedCell(
                    r=t.r,
                    c=t.c,
                    target=t,
                    mask=plan.mask,
                    predicted_S=float(plan.bank.value_S),
                    u_S=u,
                    expanded_S=settings.coverage_factor * u,
                    components={n: float(v) for n, v in plan.bank.components.items()},
                    measured_S=measured,
                    u_measured_S=u_measured,
                    met=met,
                    temperature=plan.temperature,
                )
            )
            if progress is not None:
                progress(len(plans) + i + 1, 2 * len(plans), f"verified cell ({t.r}, {t.c})")
    except BaseException as exc:
        close_run_after(exc, store, run_id, what="realise")
        raise
    _store_result(store, result, now_C)
    store.finish_run(run_id, "completed")
    return result


def _store_result(store: Store, result: RealiseResult, now_C: float) -> None:
    cells = result.cells
    store.put_result(result.run_id, "cells", np.array([[c.r, c.c] for c in cells], dtype=np.int64))
    store.put_result(result.run_id, "masks", np.array([c.mask for c in cells], dtype=np.uint64))
    for name in ("target_S", "predicted_S", "u_S", "measured_S", "u_measured_S"):
        store.put_result(
            result.run_id, name, np.array([getattr(c, name) for c in cells], dtype=np.float64)
        )
    store.put_value(
        result.run_id,
        "summary",
        {**result.summary(), "board_temperature_C": now_C if math.isfinite(now_C) else None},
    )
    store.put_value(result.run_id, "cell_budgets", [c.to_json() for c in cells])
