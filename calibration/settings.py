"""What a calibration run is asked to do (`CalibrationSettings`), and the ``--cells`` syntax.

Settings are plain data, stored as JSON with every run (``runs.settings_json``) so that a
resume repeats exactly the same plan. Values left ``None`` (NPLC, read voltage) take the
station's ``[measurement]`` defaults when the run starts; the resolved values are what is
stored.

Cell selections (`parse_cells`): ``ROWS,COLS`` where each part is ``*`` (every line), a
single index ``N``, or an inclusive range ``A-B``; several parts joined by ``+``
(``0-3+8,*``: rows 0..3 and 8, every column). Indices are checked against the board when the
run starts (`resolve_cells`), before anything is switched.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

__all__ = [
    "DESIGNS",
    "CalibrationSettings",
    "CellSelection",
    "DesignName",
    "SettingsError",
    "parse_cells",
    "resolve_cells",
]

DesignName = Literal["single", "weighing"]
DESIGNS: tuple[DesignName, ...] = ("single", "weighing")


class SettingsError(ValueError):
    """A calibration setting that cannot be used; the message names the setting and value."""


@dataclass(frozen=True)
class CellSelection:
    """Rows and columns to calibrate (``None``: every one); the cells are their product."""

    rows: tuple[int, ...] | None = None
    cols: tuple[int, ...] | None = None

    def to_text(self) -> str:
        """The ``ROWS,COLS`` form `parse_cells` reads back."""

        def part(values: tuple[int, ...] | None) -> str:
            return "*" if values is None else "+".join(str(v) for v in values)

        return f"{part(self.rows)},{part(self.cols)}"


def _parse_part(text: str, what: str, whole: str) -> tuple[int, ...] | None:
    text = text.strip()
    if text in ("*", ""):
        if text == "":
            raise SettingsError(f"cells {whole!r}: empty {what} selection")
        return None
    values: list[int] = []
    for piece in text.split("+"):
        piece = piece.strip()
        lo_text, sep, hi_text = piece.partition("-")
        if not lo_text.isdigit() or (sep and not hi_text.isdigit()):
            raise SettingsError(
                f"cells {whole!r}: {what} {piece!r} is not N, A-B or * (0-based indices)"
            )
        lo = int(lo_text)
        hi = int(hi_text) if sep else lo
        if hi < lo:
            raise SettingsError(f"cells {whole!r}: {what} range {piece!r} runs backwards")
        values.extend(range(lo, hi + 1))
    return tuple(sorted(set(values)))


def parse_cells(text: str) -> CellSelection:
    """Parse ``ROWS,COLS`` (see the module docstring); `SettingsError` names the bad part."""
    parts = text.split(",")
    if len(parts) != 2:
        raise SettingsError(
            f"cells {text!r}: expected ROWS,COLS (e.g. '0-3,*', '2,5', '0+4+8,0-7')"
        )
    return CellSelection(_parse_part(parts[0], "rows", text), _parse_part(parts[1], "cols", text))


def resolve_cells(selection: CellSelection, rows: int, cols: int) -> list[tuple[int, int]]:
    """The selected cells in measurement order (row-major) on a rows x cols board.

    `SettingsError` names an index that is not on the board.
    """
    r_sel = tuple(range(rows)) if selection.rows is None else selection.rows
    c_sel = tuple(range(cols)) if selection.cols is None else selection.cols
    for what, values, size in (("row", r_sel, rows), ("column", c_sel, cols)):
        bad = [v for v in values if not 0 <= v < size]
        if bad:
            raise SettingsError(
                f"cells {selection.to_text()!r}: {what} {bad[0]} is not on the board "
                f"({what}s 0..{size - 1})"
            )
    return [(r, c) for r in r_sel for c in c_sel]


@dataclass(frozen=True)
class CalibrationSettings:
    """What a calibration run measures and how.

    Attributes:
        cells: the cells to calibrate (default: every cell).
        design: ``"single"`` (one-by-one: each branch alone, plus the empty and full
            subsets; the default) or ``"weighing"`` (S-matrix subsets, least squares).
            One-by-one is the default because it is the more precise design with the
            SMU's autorange (measured: weighing standard errors 17x larger on the default
            board, docs/calibration.md): a branch read alone gets the range that fits it,
            and the meter's noise scales with the range. On a fixed range weighing wins
            (0.475x the one-by-one standard error at equal readings).
        nplc: SMU integration time (power-line cycles); None = the station's.
        read_voltage_V: SMU source voltage (V); None = the station's. Checked against the
            station's voltage and per-element power limits before anything is switched.
        repeats: passes of the design per cell (>= 1); standard errors fall as
            1/sqrt(repeats).
        reversal: offset-compensated reads: every subset is read at +V and at -V and the
            conductance is ``(I+ - I-) / (V+ - V-)``, which cancels the meter's current and
            voltage offsets on every range (and thermal EMFs). Without it the offsets of the
            ranges that autorange picks bias the estimates (about 1e-3 relative for the
            smallest branches of the default board on a Keithley 2450).
        holdout: held-out random subsets per cell (weighing design) for the additivity
            check; not used in the fit.
        fit_series: estimate each cell's common series path r_s (ohm) by nonlinear least
            squares (else r_s = 0 is assumed).
        series_prior_ohm: where a cell's readings cannot identify r_s better than this
            (ohm; at low NPLC on a fixed high range its curvature is buried in noise), r_s is
            taken as 0 within this, a budget source of its own (docs/metrology.md): a
            crossbar's routing, leads and wires are well below 1 ohm.
        k_sigma: fault thresholds in standard errors (`calibration.faults`).
        band_margin: relative widening of the healthy band from the board's bill of
            materials (temperature coefficient, drift).
        drift_cells: how many of the calibrated cells to re-measure for drift (0: none);
            the first cells of the plan, every branch alone.
        drift_rounds: re-measurements of that sample (>= 2 when drift_cells > 0).
        drift_interval_s: time between rounds (s): virtual time on the embedded simulator,
            wall time (sleep) on hardware.
        batch_size: readings committed to the store per transaction.
        seed: seed of the held-out subsets (the plan is a pure function of the settings).
        noise_repeats: +V/-V reads of one subset (the first cell's, every branch closed)
            repeated this many times: their scatter estimates the meter's noise scale with
            ``noise_repeats - 1`` degrees of freedom more than the fits' residuals give (one
            per cell with the one-by-one design), so that a calibration of a few cells
            still knows its statistical uncertainty (0: none).
        range_link: after the design, read a few subsets on two adjacent current ranges
            and express every range's gain relative to one reference range (docs/
            metrology.md): the inter-range gain mismatch (up to 0.05 % by datasheet) drops
            out, one common scale factor remains. Needs ``reversal``; skipped on a fixed
            range.
        link_subsets: subsets read per pair of adjacent ranges (one per cell, the solver
            picks those at ~85 % of the lower range).
        link_repeats: +V/-V reads of each subset on each range of its link; the link's
            standard uncertainty falls as 1/sqrt(link_subsets x link_repeats).
        anchor: when the station declares a reference standard (``[reference]``), measure
            it and anchor the absolute scale to its certificate.
        reference_repeats: the standard's cell is measured with ``repeats x
            reference_repeats`` passes of the design: the anchor's own statistical and
            series-path uncertainty fall as 1/sqrt(passes), below the certificate's.
        reference: the reference standard's certificate used by the run (filled from the
            station when the run starts, stored with the run; None: none).
    """

    cells: CellSelection = field(default_factory=CellSelection)
    design: DesignName = "single"
    nplc: float | None = None
    read_voltage_V: float | None = None
    repeats: int = 1
    reversal: bool = True
    holdout: int = 4
    fit_series: bool = True
    series_prior_ohm: float = 1.0
    k_sigma: float = 5.0
    band_margin: float = 0.02
    drift_cells: int = 0
    drift_rounds: int = 3
    drift_interval_s: float = 600.0
    batch_size: int = 20
    seed: int = 0
    noise_repeats: int = 20
    range_link: bool = True
    link_subsets: int = 4
    link_repeats: int = 16
    anchor: bool = True
    reference_repeats: int = 12
    reference: dict[str, Any] | None = None

    def validate(self) -> CalibrationSettings:
        """Check every value (independent of the board); return self.

        Raises:
            SettingsError: naming the first bad setting and its value.
        """
        if self.design not in DESIGNS:
            raise SettingsError(f"design {self.design!r} is not one of {', '.join(DESIGNS)}")
        checks: list[tuple[str, object, bool, str]] = [
            ("repeats", self.repeats, _is_int(self.repeats) and self.repeats >= 1, ">= 1"),
            ("holdout", self.holdout, _is_int(self.holdout) and self.holdout >= 0, ">= 0"),
            ("k_sigma", self.k_sigma, _finite(self.k_sigma) and self.k_sigma > 0, "> 0"),
            (
                "series_prior_ohm",
                self.series_prior_ohm,
                _finite(self.series_prior_ohm) and self.series_prior_ohm > 0,
                "> 0",
            ),
            (
                "band_margin",
                self.band_margin,
                _finite(self.band_margin) and 0 <= self.band_margin < 1,
                "in [0, 1)",
            ),
            (
                "drift_cells",
                self.drift_cells,
                _is_int(self.drift_cells) and self.drift_cells >= 0,
                ">= 0",
            ),
            (
                "drift_rounds",
                self.drift_rounds,
                _is_int(self.drift_rounds) and (self.drift_cells == 0 or self.drift_rounds >= 2),
                ">= 2 when drift_cells > 0",
            ),
            (
                "drift_interval_s",
                self.drift_interval_s,
                _finite(self.drift_interval_s) and self.drift_interval_s >= 0,
                ">= 0",
            ),
            (
                "batch_size",
                self.batch_size,
                _is_int(self.batch_size) and self.batch_size >= 1,
                ">= 1",
            ),
            ("seed", self.seed, _is_int(self.seed) and self.seed >= 0, ">= 0"),
            (
                "link_subsets",
                self.link_subsets,
                _is_int(self.link_subsets) and self.link_subsets >= 1,
                ">= 1",
            ),
            (
                "noise_repeats",
                self.noise_repeats,
                _is_int(self.noise_repeats)
                and (self.noise_repeats == 0 or self.noise_repeats >= 3),
                "0 or >= 3",
            ),
            (
                "reference_repeats",
                self.reference_repeats,
                _is_int(self.reference_repeats) and self.reference_repeats >= 1,
                ">= 1",
            ),
            (
                "link_repeats",
                self.link_repeats,
                _is_int(self.link_repeats) and self.link_repeats >= 2,
                ">= 2",
            ),
        ]
        if self.nplc is not None:
            checks.append(("nplc", self.nplc, _finite(self.nplc) and self.nplc > 0, "> 0"))
        if self.read_voltage_V is not None:
            checks.append(
                (
                    "read_voltage_V",
                    self.read_voltage_V,
                    _finite(self.read_voltage_V) and self.read_voltage_V != 0,
                    "finite and non-zero",
                )
            )
        for name, value, ok, rule in checks:
            if not ok:
                raise SettingsError(f"calibration setting {name} = {value!r}: must be {rule}")
        return self

    def resolved(self, nplc: float, read_voltage_V: float) -> CalibrationSettings:
        """A copy with the station defaults filled in (what a run stores)."""
        return replace(
            self,
            nplc=float(self.nplc if self.nplc is not None else nplc),
            read_voltage_V=float(
                self.read_voltage_V if self.read_voltage_V is not None else read_voltage_V
            ),
        )

    def passes(self, cell: tuple[int, int]) -> int:
        """Design passes of ``cell``: ``repeats``, times ``reference_repeats`` for the
        reference standard's cell."""
        ref = self.reference
        if ref is not None and tuple(int(v) for v in ref["cell"]) == tuple(cell):
            return self.repeats * self.reference_repeats
        return self.repeats

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; `from_json` reads it back."""
        data = asdict(self)
        data["cells"] = self.cells.to_text()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CalibrationSettings:
        """Settings from `to_json` output (e.g. a stored run's settings, for a resume)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"unknown calibration settings {unknown}")
        values = dict(data)
        if "cells" in values:
            values["cells"] = parse_cells(str(values["cells"]))
        return cls(**values).validate()


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
