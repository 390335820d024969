"""The meter's systematic errors of a calibration's readings, as budget sources.

A calibration reading is a conductance ``g = (I+ - I-) / (V+ - V-)`` from a +V/-V pair (or
``I / V`` without reversal). The SMU measured each current on a current range and each
voltage (the source read-back) on a voltage range; the datasheet bounds each range's gain
error (fraction of reading) and offset (fraction of range), `labrss.metrology.smu_accuracy`.
A range's errors are fixed for the instrument, so they shift every reading taken on that
range together: one budget `Source` per range and kind, with the per-reading sensitivity

    dg/de_I(r) = (I+ [r+ = r] - I- [r- = r]) / dV        dg/do_I(r) = ([r+ = r] - [r- = r]) / dV
    dg/de_V(v) = -g (V+ [v+ = v] - V- [v- = v]) / dV     dg/do_V(v) = -g ([v+ = v] - [v- = v]) / dV

(reversal: the two reads of a pair share their ranges, so both offsets cancel exactly).
After range linking (`labrss.metrology.range_link`) a linked range's gain is replaced by
its group's reference range gain plus the errors of the link estimates on its path.
`reading_sources` returns the sources and the (cells, M, S) matrix of shifts (S per one
standard uncertainty of each source); `calibration.run` pushes them through each cell's
fit (`calibration.estimation.parameter_sensitivity`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from labrss.metrology.budget import Source
from labrss.metrology.range_link import ChainSolution
from labrss.metrology.smu_accuracy import RangeAccuracy, SMUAccuracy, si_format

__all__ = ["PairArrays", "TemperatureSpread", "reading_sources"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PairArrays:
    """The raw values of every fit reading (cells, M): the +V read and the -V read (NaN
    without reversal), currents already corrected by the range links.

    ``i_*`` current (A), ``v_*`` sensed voltage (V), ``r_*`` current range (A), ``g`` the
    pair's conductance (S).
    """

    g: FloatArray
    i_p: FloatArray
    i_m: FloatArray
    v_p: FloatArray
    v_m: FloatArray
    r_p: FloatArray
    r_m: FloatArray


def _same(a: FloatArray, value: float) -> NDArray[np.bool_]:
    out: NDArray[np.bool_] = np.isclose(a, value, rtol=1e-6, atol=0.0)
    return out


def reading_sources(
    pairs: PairArrays,
    accuracy: SMUAccuracy,
    chain: ChainSolution | None = None,
) -> tuple[list[Source], FloatArray]:
    """Sources and per-reading shifts (cells, M, S) in S per standard uncertainty.

    Current-range gains are ``range`` sources, except the main linked group's reference
    range, which is ``scale`` (it multiplies every linked reading alike), as is the voltage
    range's gain when the run used one voltage range; offsets are ``offset`` sources; link
    estimates ``range`` sources. Sources that shift no reading are left out.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        reversal = np.isfinite(pairs.v_m)
        i_m = np.where(reversal, pairs.i_m, 0.0)
        v_m = np.where(reversal, pairs.v_m, 0.0)
        dv = pairs.v_p - v_m
        g = pairs.g
        valid = np.isfinite(g) & np.isfinite(dv) & (dv != 0)
        dv = np.where(valid, dv, 1.0)
    r_m = np.where(reversal, pairs.r_m, np.nan)
    current_ranges = sorted(
        {float(x) for x in np.concatenate([pairs.r_p[valid], r_m[valid & reversal]])}
    )
    rows_i = {r: accuracy.current_range(r) for r in current_ranges}

    limits = np.array([row.full_scale * accuracy.overrange for row in accuracy.voltage])
    scales = np.array([row.full_scale for row in accuracy.voltage])

    def v_range(values: FloatArray) -> FloatArray:
        """The autoranged voltage range of each read-back (V; NaN for none)."""
        mag = np.abs(values)
        idx = np.minimum(np.searchsorted(limits, np.nan_to_num(mag), side="left"), scales.size - 1)
        out: FloatArray = np.where(np.isfinite(mag) & (mag > 0), scales[idx], np.nan)
        return out

    vr_p = v_range(np.where(valid, pairs.v_p, np.nan))
    vr_m = v_range(np.where(valid & reversal, pairs.v_m, np.nan))
    voltage_ranges = sorted(
        {float(x) for x in np.concatenate([vr_p[valid], vr_m[valid]]) if np.isfinite(x)}
    )
    rows_v = {v: accuracy.voltage_range(v) for v in voltage_ranges}

    sources: list[Source] = []
    columns: list[FloatArray] = []

    def add(source: Source, shift: FloatArray) -> None:
        shift = np.where(valid, shift, 0.0)
        if np.any(shift != 0):
            sources.append(source)
            columns.append(shift * source.u)

    def gain_i(ranges: Sequence[float], signs: Sequence[int]) -> FloatArray:
        num = np.zeros_like(g)
        for r, s in zip(ranges, signs, strict=True):
            num += s * (pairs.i_p * _same(pairs.r_p, r) - i_m * _same(r_m, r))
        return num / dv

    note_i = f"{accuracy.family} datasheet: {accuracy.datasheet}"
    linked_groups: dict[float, list[float]] = {}
    for r in current_ranges:
        ref = chain.reference_A.get(r, r) if chain is not None else r
        linked_groups.setdefault(ref, []).append(r)
    for ref, members in sorted(linked_groups.items()):
        row: RangeAccuracy = rows_i.get(ref) or accuracy.current_range(ref)
        is_main = chain is not None and chain.main_reference_A == ref and len(members) > 1
        name = f"gain {row.label}" + (" (reference range of the links)" if is_main else "")
        add(
            Source(
                name,
                "scale" if is_main else "range",
                row.u_gain,
                "1",
                f"{row.gain * 100:.3g} % of reading / {accuracy.spec_sigmas:g}; {note_i}",
            ),
            gain_i(members, [1] * len(members)),
        )
    if chain is not None:
        for idx, est in enumerate(chain.links):
            members = [r for r in current_ranges if idx in chain.path.get(r, {})]
            if not members:
                continue
            signs = [chain.path[r][idx] for r in members]
            lo, hi = si_format(est.lo_A, "A"), si_format(est.hi_A, "A")
            add(
                Source(
                    f"link I {lo} / I {hi}",
                    "range",
                    est.u,
                    "1",
                    f"range link from {est.n} paired reads (Type A)",
                ),
                gain_i(members, signs),
            )
    one_v = len(voltage_ranges) == 1
    for v in voltage_ranges:
        row = rows_v[v]
        shift = -g * (pairs.v_p * _same(vr_p, v) - v_m * _same(vr_m, v)) / dv
        add(
            Source(
                f"gain {row.label}",
                "scale" if one_v else "range",
                row.u_gain,
                "1",
                f"{row.gain * 100:.3g} % of reading / {accuracy.spec_sigmas:g}; {note_i}",
            ),
            shift,
        )
    for r in current_ranges:
        row = rows_i[r]
        shift = (_same(pairs.r_p, r).astype(float) - _same(r_m, r).astype(float)) / dv
        add(
            Source(f"offset {row.label}", "offset", row.u_offset, "A", f"datasheet; {note_i}"),
            shift,
        )
    for v in voltage_ranges:
        row = rows_v[v]
        shift = -g * (_same(vr_p, v).astype(float) - _same(vr_m, v).astype(float)) / dv
        add(
            Source(f"offset {row.label}", "offset", row.u_offset, "V", f"datasheet; {note_i}"),
            shift,
        )
    matrix = np.stack(columns, axis=-1) if columns else np.zeros((*g.shape, 0))
    return sources, matrix


@dataclass(frozen=True)
class TemperatureSpread:
    """The board temperature of each cell's readings, for the temperature component.

    The board's sensor is read when a run moves to a new cell (and once after the last);
    a cell's estimates hold at ``cell_C`` (the mean of the samples before and after its
    readings), within ``cell_u_K`` (their difference over sqrt(12): the change during the
    cell's readings, with the sensor's resolution over sqrt(12)). ``tcr_per_K`` (relative
    change of resistance per K, per cell: resistor cells the board's bill-of-materials TCR,
    memristor cells 0, not modelled) makes the component ``|tcr| a_k u``, one source for the
    board. Using an estimate at another temperature T adds ``tcr a_k (T - cell_C)``:
    `labrss.workflows.realise` widens the component by it (issue 17's temperature-
    compensated subsets compensate it instead).
    """

    cell_C: FloatArray
    cell_u_K: FloatArray
    tcr_per_K: FloatArray
    tcr_source: str

    @classmethod
    def from_samples(
        cls,
        cells: Sequence[tuple[int, int]],
        samples: Sequence[tuple[int, int, float]],
        *,
        resolution_C: float,
        tcr_per_K: FloatArray,
        tcr_source: str,
    ) -> TemperatureSpread:
        """From the samples ``(r, c, degC)`` taken as the run reached each cell (in order;
        ``r = c = -1`` for the one after the last cell). NaN for a cell without samples."""
        t = np.full(len(cells), np.nan)
        u = np.full(len(cells), np.nan)
        index = {tuple(rc): i for i, rc in enumerate(cells)}
        for j, (r, c, value) in enumerate(samples):
            i = index.get((r, c))
            if i is None or not np.isfinite(value):
                continue
            after = samples[j + 1][2] if j + 1 < len(samples) else value
            after = after if np.isfinite(after) else value
            t[i] = 0.5 * (value + after)
            u[i] = float(np.sqrt(((after - value) ** 2 + resolution_C**2) / 12.0))
        return cls(t, u, np.asarray(tcr_per_K, dtype=np.float64), tcr_source)

    @property
    def mean_C(self) -> float:
        """The run's mean board temperature (degC; NaN without samples)."""
        ok = np.isfinite(self.cell_C)
        return float(self.cell_C[ok].mean()) if ok.any() else float("nan")

    @property
    def u_K(self) -> float:
        """The rms of the cells' temperature uncertainties (K), the source's nominal u."""
        ok = np.isfinite(self.cell_u_K)
        return float(np.sqrt(np.mean(self.cell_u_K[ok] ** 2))) if ok.any() else 0.0

    def source(self) -> Source:
        """The budget source (category ``temperature``); each cell's contributions carry its
        own ``cell_u_K``."""
        return Source(
            "board temperature",
            "temperature",
            self.u_K,
            "K",
            f"each cell at its own sensor temperature (mean {self.mean_C:.2f} degC), within "
            f"the change during its readings (rms {self.u_K:.3g} K); TCR {self.tcr_source}",
        )
