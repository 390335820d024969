"""IR-drop-aware programming: measure the wiring, predict the MVM, compensate the subsets.

    from labrss.workflows.ir_drop import measure_wiring
    from labrss.workflows.program import ProgramSettings, program_network
    result = program_network(lab, store, net, x_train, settings=ProgramSettings(ir_drop=True))

On a large crossbar the row and column wires and the routing switches make every cell
conduct less in an MVM than alone (docs/ir-drop.md). The MVM stays linear, ``I = V @ A``,
with a transfer ``A`` that the host can predict from the cells' own conductances and the
wiring (`labrss.mapping.ir_drop`). The steps:

1. **Wiring** (`measure_wiring`): start from the board's nominal values (``BOARD:INFO?``
   ``wire_segment_ohm`` and ``routing_switch_ohm``, a layout's design values) and refine
   them by row reads of a known array (`wiring_design`: calibrated cells, row and column
   loads that vary independently so that rows and columns can be told apart), each row
   driven alone at
   a voltage that keeps its current below ``max_row_current_A``, every column read by the
   SMU at virtual ground, exactly as verification reads (``R`` column read-outs of ``C``
   SMU readings). `labrss.mapping.ir_drop.fit_wiring` fits each row's entry and each
   column's exit resistance and the two segment resistances (``R + C + 2`` parameters on
   ``R C`` readings) with the nominal values as a prior.
2. **Compensation** (`compensate_tile`), per tile before it is written: solve the tile's
   pairs, predict ``A`` of the whole board as it will be programmed, take each cell's
   factor ``f = A / G`` and solve again with every element scaled by its cell's ``f`` (so
   the solver aims at what the cell will contribute *in the MVM*), until the full nodal
   prediction agrees with the scaled (linearised) one within ``ir_tol`` of the tile's
   largest target: from then on the predicted MVM matches the network's weights as well as
   the subset sum can (its quantisation), and more iterations change nothing.
3. **Verification** compares the row reads with the *predicted transfer* instead of the
   isolated cell conductance; the programmed network (`MappedLayer.value_S`) is the
   predicted MVM's weights.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from labrss.lab import Lab, LabInputError
from labrss.mapping.conductance import MappedLayer
from labrss.mapping.ir_drop import Wiring, WiringFit, fit_wiring, transfer_matrix

if TYPE_CHECKING:
    from labrss.workflows.program import ElementModel, ProgramResult, RowDacCalibration

__all__ = [
    "DEFAULT_MAX_ROW_CURRENT_A",
    "PositionProfile",
    "ProfileSource",
    "TileCompensation",
    "WiringEstimate",
    "compensate_tile",
    "measure_wiring",
    "nominal_wiring",
    "position_profile",
    "wiring_design",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Largest current one row's DAC sources during the wiring measurement (A): 5 mA, within
#: what an op-amp DAC buffer drives without a gain change (the large board's row of 64
#: fully closed cells takes ~19 mA at 1 V, so its rows are read at ~0.26 V).
DEFAULT_MAX_ROW_CURRENT_A = 5e-3


def _info_float(info: dict[str, str], key: str, default: float) -> float:
    try:
        value = float(info[key])
    except (KeyError, ValueError):
        return default
    return value if math.isfinite(value) and value >= 0 else default


def nominal_wiring(info: dict[str, str], rows: int, cols: int) -> Wiring:
    """The board's nominal wiring from its ``BOARD:INFO?`` keys (0 where it states none):
    a line's entry / exit is its routing switch plus one edge segment."""
    seg = _info_float(info, "wire_segment_ohm", 0.0)
    route = _info_float(info, "routing_switch_ohm", 0.0)
    return Wiring.uniform(rows, cols, segment_ohm=seg, entry_ohm=route + seg, exit_ohm=route + seg)


@dataclass(frozen=True)
class WiringEstimate:
    """The measured wiring and how it was obtained (stored with the program run).

    Attributes:
        wiring: the fitted wiring (SMU column read-out, as verification reads).
        nominal: the board's nominal wiring the fit started from.
        fit: the fit's result (uncertainties, residuals before and after).
        read_voltage_V: the row voltage of the measurement (V).
        readings: SMU readings taken; instrument_time_s, wall_time_s: its cost (s).
        measured_S, isolated_S: (2, R, C) measured transfers and the calibrated cells'
            own conductances of the two measured arrays (S).
    """

    wiring: Wiring
    nominal: Wiring
    fit: WiringFit
    read_voltage_V: float
    readings: int
    instrument_time_s: float
    wall_time_s: float
    measured_S: FloatArray
    isolated_S: FloatArray

    def summary(self) -> dict[str, object]:
        w = self.wiring
        return {
            "row_entry_ohm_median": float(np.median(w.row_entry_ohm)),
            "col_exit_ohm_median": float(np.median(w.col_exit_ohm)),
            "row_segment_ohm": w.row_segment_ohm,
            "col_segment_ohm": w.col_segment_ohm,
            "residual_rel_rms": self.fit.residual_rel_rms,
            "residual_rel_rms_nominal": self.fit.residual_rel_rms_nominal,
            "read_voltage_V": self.read_voltage_V,
            "readings": self.readings,
            "instrument_time_s": self.instrument_time_s,
            "wall_time_s": self.wall_time_s,
        }


def wiring_design(model: ElementModel, seed: int = 0) -> list[BoolArray]:
    """The two arrays of the wiring measurement, masks (R, C, K) each: every cell holds
    its largest usable branch, and all its usable branches with probability ``d_r e_c``
    in the first array and ``(1.1 - d_r)(1.1 - e_c)`` in the second (``d``, ``e`` drawn
    uniformly in [0.1, 1] per row and per column, seeded).

    Why not simply every switch closed: cells of one ladder are then nearly alike, and on a
    uniform array a row's entry resistance and a column's exit resistance lower the reads
    almost the same way (through the row's and the column's total conductance). Row and
    column densities that vary independently (10x) separate rows from columns; the second
    array loads the rows the first loads lightly and vice versa, which separates a row's
    entry resistance (its drop grows with the row's load) from a factor on the whole row
    (the DAC gain estimate's error, the meter's scale). The largest branch keeps every
    cell readable.
    """
    exclude = np.asarray(model.exclude, dtype=bool)
    rows, cols, _ = exclude.shape
    rng = np.random.default_rng(seed)
    d = rng.uniform(0.1, 1.0, rows)
    e = rng.uniform(0.1, 1.0, cols)
    u = rng.random((rows, cols))
    g = np.where(exclude, -np.inf, np.asarray(model.elements_S, dtype=np.float64))
    best = np.argmax(g, axis=-1)
    rr, cc = np.nonzero(~exclude.all(axis=-1))
    out = []
    densities = (np.outer(d, e), np.outer(1.1 - d, 1.1 - e))
    for density in densities:
        masks = np.where((u < density)[..., None], ~exclude, False)
        masks[rr, cc, best[rr, cc]] = True
        out.append(masks)
    return out


def measure_wiring(
    lab: Lab,
    model: ElementModel,
    dac: RowDacCalibration,
    *,
    max_row_current_A: float = DEFAULT_MAX_ROW_CURRENT_A,
    read_voltage_V: float | None = None,
    nplc: float | None = None,
    nominal: Wiring | None = None,
) -> WiringEstimate:
    """Estimate the board's wiring by row reads of a known array (`wiring_design`).

    Each row is driven alone at ``min(read_voltage_V, max_row_current_A / sum_c G[r, c])``
    (the row's calibrated conductance; default voltage: the DAC calibration's), every other
    row at 0 V and every column read by the SMU at virtual ground (`verify_tile`), so no
    column carries more than one cell's current and no row more than ``max_row_current_A``.
    Faulty branches stay open. Leaves every switch open and the DACs at 0 V.
    Cost: ``2 (R + 1)`` column read-outs of ``C`` SMU readings.
    """
    from labrss.workflows.program import verify_tile  # program imports this module

    if not (math.isfinite(max_row_current_A) and max_row_current_A > 0):
        raise ValueError(f"max_row_current_A = {max_row_current_A!r}: must be finite and > 0")
    started = time.perf_counter()
    instrument0 = lab.instrument_time_s
    g = lab.geometry
    designs = wiring_design(model)
    isolated = np.stack([model.predicted_cells(m)[0] for m in designs])
    row_sum = isolated.sum(axis=2).max(axis=0)
    v_max = float(dac.read_voltage_V if read_voltage_V is None else read_voltage_V)
    volts = np.minimum(v_max, max_row_current_A / np.maximum(row_sum, 1e-30))
    v_read = float(volts.min())
    if not v_read > 0:
        raise LabInputError("measure_wiring: no usable row voltage (check the calibration)")
    read_dac = dataclasses.replace(dac, read_voltage_V=v_read)
    measured = np.empty_like(isolated)
    try:
        for i, masks in enumerate(designs):
            lab.set_masks(masks)
            measured[i], _ = verify_tile(lab, g.rows, g.cols, read_dac, nplc=nplc)
    finally:
        lab.apply_rows(np.zeros(g.rows))
        lab.open_all()
    base = nominal if nominal is not None else nominal_wiring(dict(lab.board.info), g.rows, g.cols)
    fit = fit_wiring(isolated, measured, base)
    log.info(
        "wiring fitted: row entry median %.4g ohm, column exit median %.4g ohm, segments "
        "%.4g / %.4g ohm; residual rms %.3g (nominal %.3g)",
        float(np.median(fit.wiring.row_entry_ohm)),
        float(np.median(fit.wiring.col_exit_ohm)),
        fit.wiring.row_segment_ohm,
        fit.wiring.col_segment_ohm,
        fit.residual_rel_rms,
        fit.residual_rel_rms_nominal,
    )
    return WiringEstimate(
        wiring=fit.wiring,
        nominal=base,
        fit=fit,
        read_voltage_V=v_read,
        readings=len(designs) * (g.rows + 1) * g.cols,
        instrument_time_s=lab.instrument_time_s - instrument0,
        wall_time_s=time.perf_counter() - started,
        measured_S=measured,
        isolated_S=np.asarray(isolated, dtype=np.float64),
    )


@dataclass(frozen=True)
class TileCompensation:
    """What `compensate_tile` did.

    Attributes:
        layer: the layer with the tile's masks re-solved; ``g_pos_S``, ``g_neg_S`` and
            ``value_S`` of the tile's cells are the *predicted MVM* values (transfer ``A``).
        predicted_S: (n_rows, n_columns) predicted transfer of the tile's cells (S): what
            verification's row reads should measure.
        isolated_S: the same cells' own conductances (S).
        factor: (n_rows, n_columns) ``A / G`` of the final masks.
        history: per iteration, the largest ``|A+ - A- - target|`` over the tile relative
            to its largest ``|target|`` (iteration 0: the plain, isolated solve).
        consistency: per iteration, the largest difference between the full prediction
            and the scaled (linearised) one, relative to the largest ``|target|``.
        host_time_s: wall time of the compensation (s).
        plain_predicted_S: (n_rows, n_columns) the predicted transfer of the plain
            (uncompensated) solve's masks: what the tile would have done without it.
    """

    layer: MappedLayer
    predicted_S: FloatArray
    isolated_S: FloatArray
    factor: FloatArray
    plain_predicted_S: FloatArray
    history: list[float] = field(default_factory=list)
    consistency: list[float] = field(default_factory=list)
    host_time_s: float = math.nan

    @property
    def iterations(self) -> int:
        return max(len(self.history) - 1, 0)


def _scaled(model: ElementModel, factor: FloatArray) -> ElementModel:
    f = factor[..., None]
    return dataclasses.replace(
        model,
        elements_S=model.elements_S * f,
        leakage_S=model.leakage_S * f,
        sigma_S=model.sigma_S * f,
        budget=None,
    )


def compensate_tile(
    layer: MappedLayer,
    tile: int,
    model: ElementModel,
    wiring: Wiring,
    *,
    pairs: BoolArray | None = None,
    max_iterations: int = 6,
    tol: float = 1e-5,
) -> TileCompensation:
    """Re-solve a tile's cell pairs so that the *predicted MVM* realises the targets.

    ``pairs`` (n_rows, n_pairs) restricts the re-solve (default: every pair of the tile;
    the others keep their masks; every cell outside the tile is open). Iteration ``k``:
    solve with every element of cell ``(r, c)`` scaled by ``f_k[r, c]`` (``f_0 = 1``: the
    plain solve),
    predict the board's transfer ``A`` with `labrss.mapping.ir_drop.transfer_matrix`,
    ``f_{k+1} = A / G``. Stops when the full prediction and the scaled one agree within
    ``tol`` times the tile's largest ``|target|`` (then the predicted MVM's error is the
    subset sum's own quantisation; the masks are a fixed point), when two iterations in a
    row predict no smaller error than the best so far (few elements per cell: the masks
    cycle between near-equivalent subsets), or after ``max_iterations``; keeps the
    iteration of smallest predicted error. Cost per iteration: one `solve_signed` of the
    pairs and one `transfer_matrix` of the board.
    """
    from labrss.workflows.program import _board_cells, _resolve, _tile_cells

    started = time.perf_counter()
    t = layer.plan.tiles[tile]
    rows_b, cols_b = model.elements_S.shape[:2]
    n_r, n_c = t.n_rows, t.n_columns
    todo = np.ones((n_r, t.n_pairs), dtype=bool) if pairs is None else np.asarray(pairs, bool)
    cells_todo = np.repeat(todo, 2, axis=1)
    li, lj = _tile_cells(layer, tile)
    target = layer.target_S[li, lj]  # (n_rows, n_pairs)
    scale = float(np.abs(target).max()) or 1.0
    factor = np.ones((rows_b, cols_b))
    best: tuple[float, MappedLayer, FloatArray, FloatArray] | None = None
    history: list[float] = []
    consistency: list[float] = []
    plain_a: FloatArray | None = None
    current = layer
    for _ in range(max_iterations + 1):
        scaled = _scaled(model, factor)
        current = _resolve(layer, tile, todo, scaled)
        masks = _board_cells(rows_b, cols_b, current.tile_masks(tile))
        g_iso, _ = model.predicted_cells(masks)
        a = transfer_matrix(g_iso, wiring)
        linear, _ = scaled.predicted_cells(masks)
        tile_a = a[:n_r, :n_c]
        eff = tile_a[:, 0::2] - tile_a[:, 1::2]
        err = float(np.abs(np.where(todo, eff - target, 0.0)).max()) / scale
        gap = float(np.abs((a - linear)[:n_r, :n_c][cells_todo]).max(initial=0.0)) / scale
        history.append(err)
        consistency.append(gap)
        if plain_a is None:
            plain_a = np.asarray(tile_a.copy())
        if best is None or err < best[0]:
            best = (err, current, tile_a, g_iso[:n_r, :n_c])
        with np.errstate(divide="ignore", invalid="ignore"):
            new_f = np.where(g_iso > 0, a / g_iso, 1.0)
        factor = np.where(np.isfinite(new_f), new_f, 1.0)
        if gap <= tol:
            break  # a fixed point: the masks no longer change the factors
        if len(history) >= 3 and min(history[-2:]) >= best[0]:
            break  # discrete masks cycling: two iterations without a better prediction
    assert best is not None and plain_a is not None
    _, chosen, tile_a, tile_g = best
    # the predicted MVM values of the tile's cells become the layer's realised values
    g_pos, g_neg = chosen.g_pos_S.copy(), chosen.g_neg_S.copy()
    lrows = layer.plan.logical_rows(t)
    outs = np.arange(t.out_start, t.out_stop)
    sel = np.ix_(lrows, outs)
    gp_t, gn_t = g_pos[sel], g_neg[sel]
    gp_t = np.where(todo, tile_a[:, 0::2], gp_t)
    gn_t = np.where(todo, tile_a[:, 1::2], gn_t)
    g_pos[sel], g_neg[sel] = gp_t, gn_t
    value = chosen.value_S.copy()
    value[sel] = np.where(todo, gp_t - gn_t, value[sel])
    out_layer = dataclasses.replace(chosen, g_pos_S=g_pos, g_neg_S=g_neg, value_S=value)
    with np.errstate(divide="ignore", invalid="ignore"):
        f_tile = np.where(tile_g > 0, tile_a / tile_g, 1.0)
    return TileCompensation(
        layer=out_layer,
        predicted_S=np.asarray(tile_a),
        isolated_S=np.asarray(tile_g),
        factor=np.asarray(f_tile),
        plain_predicted_S=plain_a,
        history=history,
        consistency=consistency,
        host_time_s=time.perf_counter() - started,
    )


#: What a `PositionProfile` holds: the program's verification reads, its own masks as its
#: measured wiring predicts them, or (IR-drop-aware programs) its plain solve's masks so
#: predicted.
ProfileSource = Literal["measured", "predicted", "plain_predicted"]


@dataclass(frozen=True)
class PositionProfile:
    """A program's weight error by position on the board (the GUI's MVM tab plots it).

    The error of cell pair ``(r, p)`` (board row ``r``, column pair ``p``) is ``(A+ - A-
    - target) / max|target|`` of its layer, ``A`` the row-read (verification) values,
    which are the MVM's own transfer, or a model's prediction of them.

    Attributes:
        row_rms: (R,) rms over every tile and column pair of each board row (NaN: unused).
        pair_rms: (C // 2,) rms over every tile and row of each column pair.
        source: what the values are (`ProfileSource`).
        run_id: the program run.
        label: the same in words, with the program run.
    """

    row_rms: FloatArray
    pair_rms: FloatArray
    source: ProfileSource
    run_id: int | None
    label: str


def position_profile(
    program: ProgramResult, source: ProfileSource = "measured"
) -> PositionProfile | None:
    """The weight error of ``program`` by board row and column pair.

    ``source``: ``"measured"``, by verification (row reads, after repairs);
    ``"predicted"``, the final masks as the fitted wiring predicts them (the transfer
    verification compared with); ``"plain_predicted"``, the plain solve's masks as the
    fitted wiring predicts them (what the board would have done without compensation).
    Both predictions exist for IR-drop-aware programs only (None for others: a plain
    program has no wiring to predict with). Compare like with like: measured with
    measured, predicted with predicted. Cost: O(cells), no bench access.
    """
    if not program.checks:
        return None
    if source != "measured" and not (program.compensation and program.wiring is not None):
        return None
    from labrss.workflows.program import _tile_cells

    rows_b, cols_b = program.layers[0].plan.board_rows, program.layers[0].plan.board_cols
    sq_r, n_r = np.zeros(rows_b), np.zeros(rows_b)
    sq_p, n_p = np.zeros(cols_b // 2), np.zeros(cols_b // 2)
    plain_by_tile = {(int(c["layer"]), int(c["tile"])): c for c in program.compensation}
    for check in program.checks:
        lay = program.layers[check.layer]
        li, lj = _tile_cells(lay, check.tile)
        target = lay.target_S[li, lj]
        scale = float(np.abs(lay.target_S).max()) or 1.0
        if source == "plain_predicted":
            record = plain_by_tile.get((check.layer, check.tile))
            if record is None or "plain_predicted_S" not in record:
                continue
            values = np.asarray(record["plain_predicted_S"], dtype=np.float64)
        elif source == "predicted":
            values = np.asarray(check.predicted_S, dtype=np.float64)
        else:
            values = np.asarray(check.measured_S, dtype=np.float64)
        err = (values[:, 0::2] - values[:, 1::2] - target) / scale
        ok = np.isfinite(err)
        e2 = np.where(ok, err**2, 0.0)
        n_rows, n_pairs = err.shape
        sq_r[:n_rows] += e2.sum(axis=1)
        n_r[:n_rows] += ok.sum(axis=1)
        sq_p[:n_pairs] += e2.sum(axis=0)
        n_p[:n_pairs] += ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        row_rms = np.where(n_r > 0, np.sqrt(sq_r / np.maximum(n_r, 1)), np.nan)
        pair_rms = np.where(n_p > 0, np.sqrt(sq_p / np.maximum(n_p, 1)), np.nan)
    kind = "IR-drop-aware" if program.compensation else "plain"
    label = {
        "measured": f"run {program.run_id} ({kind}): measured by verification",
        "predicted": f"run {program.run_id} ({kind}): predicted with the measured wiring",
        "plain_predicted": f"run {program.run_id}: plain masks, predicted with the measured wiring",
    }[source]
    return PositionProfile(
        row_rms=row_rms, pair_rms=pair_rms, source=source, run_id=program.run_id, label=label
    )
