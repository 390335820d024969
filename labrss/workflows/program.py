"""Program a network onto the crossbar, verify every cell by measurement, repair misses.

    from labrss.lab import Lab
    from labrss.store import Store
    from labrss.workflows.program import ProgramSettings, program_network
    with Lab() as lab, Store(path) as store:
        result = program_network(lab, store, network, x_reference=x_train)
        print(result.cells_programmed, result.cells_repaired, result.cells_missed)

Steps (docs/demo.md gives the numbers behind each choice):

1. **Map** every layer (`labrss.mapping.map_layer`) with the board's latest calibration
   (`Store.latest_calibration`; faulty and unmeasured branches excluded), input ranges
   from ``x_reference`` propagated through the target network. Bad weights (NaN, wrong
   shapes) and layers the board cannot realise raise *before anything is switched*.
2. **Row DAC gains** (`calibrate_row_dacs`): one reference branch per row is measured
   alone (guarded SMU read, every other switch open: exact to ~1e-4), then read again
   MVM-style with its row's DAC driven; the ratio is that DAC's gain (its offset cancels
   in a zero-input reference read).
3. **Program and verify** tile by tile: the masks are written (read back by the board),
   then each row ``r`` of the tile is driven alone at ``read_voltage_V`` while every
   column is read by the SMU at virtual ground (``ROUT:MVM SMU,c``). The other cells of a
   column then have 0 V across them, so ``G_rc = (I_c - I0_c) / (gain_r V_r)`` with
   ``I0`` the zero-input read. This is not fooled by the guard-lead leakage that makes a
   guarded single-cell read of a programmed board ~4 % high (docs/simulator.md). On a
   bench without DACs (a switching matrix, docs/switch-matrix.md) the same reads run by
   superposition (`verify_path`): the SMU drives row ``r`` through cell routing, one cell
   at a time, so each verification is a guarded cell read of the programmed array (its
   guard-lead artefact scales with the array's conductance: ~1e-4 on the simulated
   matrix bench's 1 Mohm-class array, figures in docs/switch-matrix.md).
4. **Repair** a miss (``|G_meas - G_pred| > tolerance``): re-measure the missed cells'
   elements one branch at a time by the same row read, update the element estimates,
   re-solve those pairs (`labrss.rss.solve_signed`, same targets) and program and verify
   again, up to ``max_repair_rounds``.
5. **Record** every verification reading and predicted vs measured per cell in the
   store (run kind ``program``), so that `labrss mvm` can run the programmed network.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from drivers.board import Capability
from labrss.lab import Lab, LabInputError
from labrss.lab.readings import ColumnPath
from labrss.mapping.conductance import MappedLayer, map_layer
from labrss.mapping.ir_drop import Wiring, transfer_matrix
from labrss.mapping.tiling import plan_tiles
from labrss.metrology.budget import ElementBudget
from labrss.networks.model import Layer, Network
from labrss.rss import solve_signed
from labrss.store import Calibration, ReadingRow, Store, reading_key
from labrss.workflows.boards import register_board
from labrss.workflows.ir_drop import WiringEstimate, compensate_tile, measure_wiring
from labrss.workflows.run_close import CancelledError, close_run_after, status_after

__all__ = [
    "DAC_HEADROOM",
    "CancelledError",
    "ElementModel",
    "MappedProgram",
    "ProgramResult",
    "ProgramSettings",
    "RowDacCalibration",
    "TileCheck",
    "board_id_for",
    "calibrate_row_dacs",
    "close_run_after",
    "element_model",
    "is_cnn_program",
    "load_mapped_program",
    "load_program",
    "map_network",
    "map_weights",
    "program_network",
    "save_mapped_program",
    "save_program",
    "stored_wiring",
    "verify_path",
    "verify_tile",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Progress callback: (work done, total work, message).
Progress = Callable[[int, int, str], None]
#: Cancel flag, polled between steps: return True to stop (the bench is left safe).
ShouldStop = Callable[[], bool]


#: Fraction of the station's DAC limit used for inputs by default: row voltages are set to
#: ``V / gain`` to undo each DAC's measured gain error (sigma ~1e-3), which must stay legal.
DAC_HEADROOM = 0.98


def check_settings(
    settings: object,
    what: str,
    checks: list[tuple[str, float, bool]],
    optional_positive: tuple[str, ...] = (),
) -> None:
    """Raise ValueError naming the first failed ``(name, value, ok)`` check of ``settings``.

    ``optional_positive`` names attributes that may be None and are otherwise finite and
    > 0. NaN always fails. ``what`` starts the message ("program setting").
    """
    checks = list(checks)
    for opt in optional_positive:
        value = getattr(settings, opt)
        if value is not None:
            checks.append((opt, value, math.isfinite(value) and value > 0))
    for name, value, ok in checks:
        if not ok or (isinstance(value, float) and math.isnan(value)):
            raise ValueError(f"{what} {name} = {value!r} is out of range")


@dataclass(frozen=True)
class ProgramSettings:
    """What `program_network` is asked to do (stored with the run).

    Attributes:
        v_max_V: largest DAC voltage for inputs (V); None: `DAC_HEADROOM` times
            `Lab.max_row_voltage_V` (the station's ``max_dac_voltage_V``, and on a board
            with memristors their read-disturb limit; room for the DAC gain
            pre-compensation).
        x_margin: input range ``x_max`` of each layer = this times the largest
            ``|activation|`` of ``x_reference`` (headroom for analog error in hidden
            layers).
        fill: fraction of the tightest cell pair's range the largest weight may use.
        scale: ``"layer"`` or ``"column"`` (see `labrss.mapping.map_layer`).
        read_voltage_V: verification row voltage (V); None: ``v_max_V``.
        nplc: SMU integration time for verification and DAC gain reads (None: station's).
        rel_tol: a cell is a miss when ``|G_meas - G_pred|`` exceeds
            ``rel_tol * G_pred + abs_tol_S + sigma_factor * sigma_pred``.
        abs_tol_S: absolute floor of the tolerance (S): SMU current noise over the read
            voltage, with margin.
        sigma_factor: how many predicted standard deviations (calibration) are allowed.
        max_repair_rounds: re-measure / re-solve / re-program rounds per tile.
        ir_drop: IR-drop-aware programming (docs/ir-drop.md): measure the wiring
            (`labrss.workflows.ir_drop.measure_wiring`), solve every tile for the predicted
            MVM (`labrss.workflows.ir_drop.compensate_tile`) and verify against it.
        ir_max_iterations, ir_tol: the compensation's iterations and its convergence
            criterion (the full nodal prediction and the linearised one within ``ir_tol``
            of the tile's largest target).
        ir_max_row_current_A: the wiring measurement's largest row current (A).
        ir_wiring_run: with ``ir_drop``, reuse the wiring an earlier IR-drop-aware program
            run of the same board measured (`stored_wiring`) instead of measuring it again
            (the wiring does not change between runs; its measurement is most of the
            extra bench time).
    """

    v_max_V: float | None = None
    x_margin: float = 1.25
    fill: float = 0.95
    scale: str = "layer"
    read_voltage_V: float | None = None
    nplc: float | None = None
    rel_tol: float = 0.003
    abs_tol_S: float = 2e-8
    sigma_factor: float = 4.0
    max_repair_rounds: int = 2
    ir_drop: bool = False
    ir_max_iterations: int = 6
    ir_tol: float = 1e-5
    ir_max_row_current_A: float = 5e-3
    ir_wiring_run: int | None = None

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        checks: list[tuple[str, float, bool]] = [
            ("x_margin", self.x_margin, self.x_margin >= 1.0),
            ("fill", self.fill, 0.0 < self.fill <= 1.0),
            ("rel_tol", self.rel_tol, self.rel_tol >= 0.0),
            ("abs_tol_S", self.abs_tol_S, self.abs_tol_S >= 0.0),
            ("sigma_factor", self.sigma_factor, self.sigma_factor >= 0.0),
            ("max_repair_rounds", self.max_repair_rounds, self.max_repair_rounds >= 0),
            ("ir_max_iterations", self.ir_max_iterations, self.ir_max_iterations >= 0),
            ("ir_tol", self.ir_tol, self.ir_tol > 0),
            ("ir_max_row_current_A", self.ir_max_row_current_A, self.ir_max_row_current_A > 0),
        ]
        check_settings(self, "program setting", checks, ("v_max_V", "read_voltage_V"))
        if self.ir_wiring_run is not None and not self.ir_drop:
            raise ValueError(
                f"program setting ir_wiring_run = {self.ir_wiring_run!r} needs ir_drop = True"
            )
        if self.scale not in ("layer", "column"):
            raise ValueError(f"program setting scale = {self.scale!r}: 'layer' or 'column'")


@dataclass(frozen=True)
class ElementModel:
    """The solver's view of the board: element conductances and uncertainties (R, C, K).

    ``elements_S`` is each branch's closed conductance with its share of the cell's
    off-leakage (``a_k + c0 / K``), ``leakage_S`` that share, so that a cell with mask
    ``m`` is ``sum_k leakage_S + sum_{k in m} (elements_S - leakage_S)`` as
    `labrss.mapping.map_layer` assumes. ``exclude`` marks faulty or unmeasured branches.

    ``sigma_S`` is each element's standard uncertainty *without* the calibration's common
    scale component (docs/metrology.md): programming compares cells measured on the same
    meter scale and maps weights by ratios, where that factor cancels. ``budget`` (the
    calibration's, with its correlations) makes `predicted_cells` add correlated sources
    linearly; without one (a calibration stored before the budget) the elements are taken
    as independent.
    """

    elements_S: FloatArray
    sigma_S: FloatArray
    leakage_S: FloatArray
    exclude: BoolArray
    budget: ElementBudget | None = None

    def predicted_cells(self, masks: BoolArray) -> tuple[FloatArray, FloatArray]:
        """Conductance and its standard uncertainty without the common scale (S) of every
        board cell for board ``masks`` (R, C, K)."""
        g = self.leakage_S.sum(-1) + np.where(masks, self.elements_S - self.leakage_S, 0.0).sum(-1)
        if self.budget is not None:
            closed = masks & ~self.exclude
            bank = self.budget.bank(closed)
            s = np.where(np.isfinite(bank.u_ratio_S), bank.u_ratio_S, 0.0)
            return np.asarray(g), np.asarray(s)
        s = np.sqrt(np.where(masks, self.sigma_S**2, 0.0).sum(-1))
        return np.asarray(g), np.asarray(s)


def element_model(calibration: Calibration) -> ElementModel:
    """The `ElementModel` of a stored calibration (NaN and faulty branches excluded)."""
    g = np.asarray(calibration.conductance_S, dtype=np.float64)
    k = g.shape[-1]
    usable = calibration.usable
    leak_cell = np.nan_to_num(np.asarray(calibration.leakage_S, dtype=np.float64), nan=0.0)
    leak = np.broadcast_to(np.maximum(leak_cell, 0.0)[..., None] / k, g.shape).copy()
    elements = np.where(usable, np.nan_to_num(g, nan=0.0) + leak, leak)
    std = np.asarray(calibration.std_S, dtype=np.float64)
    if calibration.components is not None:
        scale = np.nan_to_num(calibration.components["scale"], nan=0.0)
        std = np.sqrt(np.maximum(std**2 - scale**2, 0.0))
    sigma = np.where(usable, np.nan_to_num(std, nan=0.0), 0.0)
    return ElementModel(
        elements_S=elements,
        sigma_S=sigma,
        leakage_S=leak,
        exclude=~usable,
        budget=calibration.budget,
    )


@dataclass(frozen=True)
class RowDacCalibration:
    """Gain of each row DAC (actual / set voltage), measured through a reference branch.

    Attributes:
        gain: (R,) dimensionless, ~1.
        reference_cells: (R, 2) column and branch of each row's reference branch.
        reference_S: (R,) that branch's conductance from a guarded lone-cell read (S).
        read_voltage_V: the row voltage used (V).
    """

    gain: FloatArray
    reference_cells: npt.NDArray[np.int64]
    reference_S: FloatArray
    read_voltage_V: float


@dataclass(frozen=True)
class TileCheck:
    """Verification of one tile: predicted vs measured conductance of each of its cells.

    Arrays are (n_rows, n_columns) of the tile laid out on the board (column ``2p`` the
    positive cell of pair ``p``). ``measured_S`` is the final measurement (after repairs);
    ``first_measured_S`` the first one. ``miss`` is the final verdict, ``repaired`` the cells
    that missed at first and passed after a repair round.
    """

    layer: int
    tile: int
    predicted_S: FloatArray
    sigma_S: FloatArray
    first_measured_S: FloatArray
    measured_S: FloatArray
    tolerance_S: FloatArray
    programmed: BoolArray
    miss: BoolArray
    repaired: BoolArray
    rounds: int


@dataclass
class ProgramResult:
    """What `program_network` did (see the module docstring).

    ``layers`` are the mapped layers after repair: their masks and realised values are
    what the board holds tile by tile; ``network_programmed`` is the programmed,
    quantised network (`MappedLayer.effective` of each layer).
    """

    run_id: int | None
    board_id: int | None
    calibration_run_id: int
    network: Network
    layers: list[MappedLayer]
    x_max: list[float]
    dac: RowDacCalibration
    checks: list[TileCheck] = field(default_factory=list)
    wall_time_s: float = math.nan
    instrument_time_s: float = math.nan
    wiring: Wiring | None = None
    """IR-drop-aware runs: the measured wiring the tiles were solved with."""
    wiring_estimate: WiringEstimate | None = None
    """IR-drop-aware runs, in the session that measured it: the measurement and its fit."""
    compensation: list[dict[str, Any]] = field(default_factory=list)
    """IR-drop-aware runs: per tile, the compensation's iterations, predicted error per
    iteration and host time."""

    @property
    def network_programmed(self) -> Network:
        """The programmed, quantised network (realised weights and biases)."""
        return Network(
            [lay.effective for lay in self.layers], name=f"{self.network.name} (programmed)"
        )

    @property
    def cells_programmed(self) -> int:
        """Cells with at least one closed switch, over every tile."""
        return int(sum(int(c.programmed.sum()) for c in self.checks))

    @property
    def cells_repaired(self) -> int:
        """Cells that missed at first verification and passed after repair."""
        return int(sum(int(c.repaired.sum()) for c in self.checks))

    @property
    def cells_missed(self) -> int:
        """Cells still outside tolerance after every repair round."""
        return int(sum(int(c.miss.sum()) for c in self.checks))

    def predicted_vs_measured(
        self, *, programmed_only: bool = False
    ) -> tuple[FloatArray, FloatArray]:
        """Every verified cell's predicted and measured conductance (S), flattened
        (``programmed_only``: cells with a closed switch, not the open cells' leakage)."""
        if not self.checks:
            return np.zeros(0), np.zeros(0)
        pred = np.concatenate([c.predicted_S.ravel() for c in self.checks])
        meas = np.concatenate([c.measured_S.ravel() for c in self.checks])
        if programmed_only:
            on = np.concatenate([c.programmed.ravel() for c in self.checks])
            return pred[on], meas[on]
        return pred, meas

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts and times."""
        pred, meas = self.predicted_vs_measured(programmed_only=True)
        rel = np.abs(meas / pred - 1.0)
        return {
            "run_id": self.run_id,
            "calibration_run_id": self.calibration_run_id,
            "layers": len(self.layers),
            "tiles": len(self.checks),
            "cells_programmed": self.cells_programmed,
            "cells_repaired": self.cells_repaired,
            "cells_missed": self.cells_missed,
            "median_rel_cell_error": float(np.median(rel)) if rel.size else None,
            "max_weight_rel_error": [lay.max_rel_error for lay in self.layers],
            "wall_time_s": self.wall_time_s,
            "instrument_time_s": self.instrument_time_s,
            "ir_drop": self.wiring is not None,
            "ir_compensation_host_time_s": (
                float(sum(c["host_time_s"] for c in self.compensation))
                if self.compensation
                else None
            ),
            "wiring": None if self.wiring_estimate is None else self.wiring_estimate.summary(),
        }


# ---------------------------------------------------------------------------- mapping
def map_weights(
    weights: FloatArray,
    bias: FloatArray | None,
    inputs: npt.ArrayLike,
    model: ElementModel,
    *,
    v_max_V: float,
    settings: ProgramSettings,
    name: str,
) -> tuple[MappedLayer, float]:
    """Map one matrix layer (``weights`` (d_in, d_out), ``bias`` (d_out,)) on the
    calibrated board; nothing is switched. Returns the mapped layer and its ``x_max``:
    ``x_margin`` times the largest ``|input|`` of ``inputs`` (the layer's inputs over the
    reference set; 1 when they are all 0). Raises ValueError naming ``name`` for
    non-finite inputs or a target outside its cell's calibrated range.
    """
    vec = np.asarray(inputs, dtype=np.float64)
    peak = float(np.abs(vec).max()) if vec.size else 0.0
    if not math.isfinite(peak):
        raise ValueError(f"{name}: the reference inputs give a non-finite activation")
    xm = settings.x_margin * peak if peak > 0 else 1.0
    mapped = map_layer(
        weights,
        bias,
        model.elements_S,
        v_max_V=v_max_V,
        x_max=xm,
        sigma_S=model.sigma_S,
        leakage_S=model.leakage_S,
        exclude=model.exclude,
        scale="column" if settings.scale == "column" else "layer",
        fill=settings.fill,
        name=name,
    )
    if not mapped.all_reachable:
        i, j = (int(v) for v in np.argwhere(~mapped.reachable)[0])
        raise ValueError(
            f"{name}: target {float(mapped.target_S[i, j]):.4g} S of logical cell "
            f"({i}, {j}) is outside its calibrated range"
        )
    return mapped, xm


def map_network(
    network: Network,
    model: ElementModel,
    x_reference: npt.ArrayLike,
    *,
    v_max_V: float,
    settings: ProgramSettings,
) -> tuple[list[MappedLayer], list[float]]:
    """Map every layer of ``network`` on the calibrated board; nothing is switched.

    ``x_max`` of layer ``l`` is ``x_margin`` times the largest ``|input|`` of that layer
    over ``x_reference`` run through the target network. Raises ValueError /
    `labrss.mapping.tiling.LayerNotRealisableError` naming the layer and the value.
    """
    x = np.asarray(x_reference, dtype=np.float64)
    activations = network.activations(x)
    layers: list[MappedLayer] = []
    x_max: list[float] = []
    for index, layer in enumerate(network.layers):
        mapped, xm = map_weights(
            layer.weights,
            layer.bias,
            activations[index],
            model,
            v_max_V=v_max_V,
            settings=settings,
            name=f"{network.name} layer {index} ({layer.d_in}x{layer.d_out})",
        )
        layers.append(mapped)
        x_max.append(xm)
    return layers, x_max


# ---------------------------------------------------------------------------- board helpers
def board_id_for(lab: Lab, store: Store) -> int:
    """Register (or find) the lab's board in the store: `labrss.workflows.boards.register_board`
    (kept under this name for existing callers)."""
    return register_board(lab, store)


def _board_cells(rows: int, cols: int, tile_masks: BoolArray) -> BoolArray:
    """A tile's masks laid on a ``rows`` x ``cols`` board at its origin, the rest open."""
    n_rows, n_cols, k = tile_masks.shape
    full = np.zeros((rows, cols, k), dtype=bool)
    full[:n_rows, :n_cols] = tile_masks
    return full


def _board_masks(lab: Lab, tile_masks: BoolArray) -> BoolArray:
    g = lab.geometry
    return _board_cells(g.rows, g.cols, tile_masks)


def verify_path(lab: Lab) -> ColumnPath:
    """How verification reads the columns: the SMU at virtual ground on each column with
    the rows on their DACs (``"smu"``), or, on a bench without them, by superposition (the
    SMU drives one row at a time through cell routing)."""
    return "smu" if lab.board.mvm_mode == "analog" else "superposition"


def _zero_read(lab: Lab, nplc: float | None) -> FloatArray:
    lab.apply_rows(np.zeros(lab.geometry.rows))
    return np.asarray(lab.read_columns(verify_path(lab), nplc=nplc).currents_A, dtype=np.float64)


def calibrate_row_dacs(
    lab: Lab,
    model: ElementModel,
    *,
    read_voltage_V: float,
    nplc: float | None = None,
    reads: int = 1,
) -> RowDacCalibration:
    """Measure every row DAC's gain through one reference branch per row.

    ``reads`` readings are averaged for every lone-branch and column read (memristor
    references: their white read noise, ~0.2 uS, is ~1 % of a 20 uS device).

    Row ``r`` uses the largest usable branch of a cell in column ``r mod C`` (or the next
    column with one). Each reference branch is first measured alone by a guarded SMU read
    (every other switch open: the guard artefact is then ~1e-4, docs/simulator.md); then
    all reference branches are closed and rows are driven in passes, each pass one row
    per column (so each column carries exactly one driven cell). With ``I0`` the
    zero-input read (it holds every DAC's offset times the closed cells), the gain is
    ``(I_c - I0_c) / (G_ref V_set)``. Cost: R lone reads + ceil(R / C) + 1 column reads.
    Leaves every switch open and the DACs at 0 V.

    On a bench without row DACs (MVM by superposition) the SMU itself sources every row:
    there is no DAC gain to measure, every gain is 1 (the SMU's source accuracy is part of
    every reading, as in a cell read), and nothing is switched.
    """
    g = lab.geometry
    if Capability.DACS not in lab.capabilities:
        return RowDacCalibration(
            gain=np.ones(g.rows),
            reference_cells=np.full((g.rows, 2), -1, dtype=np.int64),
            reference_S=np.full(g.rows, math.nan),
            read_voltage_V=float(read_voltage_V),
        )
    refs = np.zeros((g.rows, 2), dtype=np.int64)
    for r in range(g.rows):
        found = False
        for dc in range(g.cols):
            c = (r + dc) % g.cols
            usable = np.flatnonzero(~model.exclude[r, c])
            if usable.size:
                # the element of largest conductance: the strongest signal
                k = int(usable[np.argmax(model.elements_S[r, c, usable])])
                refs[r] = (c, k)
                found = True
                break
        if not found:
            raise LabInputError(
                f"row {r}: no calibrated, fault-free branch to measure its DAC gain through"
            )
    lab.open_all()
    ref_S = np.empty(g.rows)
    for r in range(g.rows):
        c, k = (int(v) for v in refs[r])
        values = []
        for _ in range(reads):
            reading = lab.measure_branch(r, c, k, read_voltage_V=read_voltage_V, nplc=nplc)
            if reading.limit_tripped or not math.isfinite(reading.conductance_S):
                raise LabInputError(
                    f"row {r}: the reference branch ({r}, {c}, {k}) read tripped the limit "
                    f"({reading.conductance_S!r} S): a shorted element the calibration missed?"
                )
            values.append(reading.conductance_S)
        ref_S[r] = float(np.mean(values))
    masks = np.zeros((g.rows, g.cols, g.branches), dtype=bool)
    masks[np.arange(g.rows), refs[:, 0], refs[:, 1]] = True
    lab.set_masks(masks)
    gain = np.full(g.rows, math.nan)
    leak_cell = np.asarray(model.leakage_S, dtype=np.float64).sum(axis=-1)  # (R, C) S
    i0 = np.mean([_zero_read(lab, nplc) for _ in range(reads)], axis=0)
    passes: dict[int, list[int]] = {}
    for r in range(g.rows):
        passes.setdefault(int(refs[r, 0]), []).append(r)
    depth = max(len(v) for v in passes.values())
    for p in range(depth):
        rows = [v[p] for v in passes.values() if len(v) > p]
        volts = np.zeros(g.rows)
        volts[rows] = read_voltage_V
        q = lab.apply_rows(volts)
        cur = np.mean(
            [np.asarray(lab.read_columns("smu", nplc=nplc).currents_A) for _ in range(reads)],
            axis=0,
        )
        for r in rows:
            c = int(refs[r, 0])
            # The other rows driven in this pass reach column c through their (open)
            # cells' leakage: negligible for healthy cells, but a stuck-closed switch
            # conducts a whole branch (~10 uS on the default board, 10 % of a reference).
            others = [r2 for r2 in rows if r2 != r]
            stray = float(np.dot(q[others], leak_cell[others, c])) if others else 0.0
            gain[r] = (cur[c] - i0[c] - stray) / (ref_S[r] * q[r])
    lab.apply_rows(np.zeros(g.rows))
    lab.open_all()
    bad = ~(np.isfinite(gain) & (np.abs(gain - 1.0) < 0.1))
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise LabInputError(
            f"row {r}: DAC gain measured as {gain[r]!r} (expected ~1 within 10 %): check the "
            f"DAC of row {r} and its reference branch {tuple(int(v) for v in refs[r])}"
        )
    return RowDacCalibration(
        gain=gain, reference_cells=refs, reference_S=ref_S, read_voltage_V=float(read_voltage_V)
    )


def verify_tile(
    lab: Lab,
    n_rows: int,
    n_columns: int,
    dac: RowDacCalibration,
    *,
    rows: Sequence[int] | None = None,
    nplc: float | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Measure the conductance (S) of the cells of board rows ``0..n_rows-1``, columns
    ``0..n_columns-1`` as the board holds them, by MVM-style row reads.

    Row ``r`` is driven alone at ``dac.read_voltage_V`` (set ``V / gain_r``), every other
    row at 0 V, and every column is read by the SMU at virtual ground: the other cells of
    a column have no voltage across them, so ``G_rc = (I_c - I0_c) / (gain_r V_set)``.
    ``rows`` restricts the reads (NaN elsewhere). Returns the (n_rows, n_columns)
    conductances and the raw (n_rows, C) column currents (A; NaN for rows not read).
    Cost: ``len(rows) + 1`` column read-outs of C SMU readings each.
    """
    g = lab.geometry
    todo = list(range(n_rows)) if rows is None else sorted({int(r) for r in rows})
    meas = np.full((n_rows, n_columns), math.nan)
    raw = np.full((n_rows, g.cols), math.nan)
    if not todo:
        return meas, raw
    i0 = _zero_read(lab, nplc)
    for r in todo:
        volts = np.zeros(g.rows)
        volts[r] = dac.read_voltage_V / dac.gain[r]
        q = lab.apply_rows(volts)
        reading = lab.read_columns(verify_path(lab), nplc=nplc)
        cur = np.asarray(reading.currents_A, dtype=np.float64)
        raw[r] = cur
        meas[r] = (cur[:n_columns] - i0[:n_columns]) / (dac.gain[r] * q[r])
        meas[r, reading.limit_tripped[:n_columns]] = math.nan
    lab.apply_rows(np.zeros(g.rows))
    return meas, raw


# ---------------------------------------------------------------------------- repair
def _tile_cells(layer: MappedLayer, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """Logical (row, output) index grids (n_rows, n_pairs) of a tile."""
    t = layer.plan.tiles[tile]
    lrows = layer.plan.logical_rows(t)
    outs = np.arange(t.out_start, t.out_stop)
    return np.repeat(lrows[:, None], outs.size, 1), np.repeat(outs[None, :], lrows.size, 0)


def _remeasure_elements(
    lab: Lab,
    layer: MappedLayer,
    tile: int,
    cells: BoolArray,
    *,
    model: ElementModel,
    dac: RowDacCalibration,
    nplc: float | None,
    factor: FloatArray | None = None,
) -> ElementModel:
    """Re-measure every usable branch of the tile's ``cells`` (n_rows, n_columns) one at a
    time (row reads, the rest of the tile as programmed) and return the updated model.

    ``factor`` (n_rows, n_columns): IR-drop-aware runs divide each reading by its cell's
    predicted ``A / G`` (a row read measures the cell's transfer, not its own conductance).
    """
    t = layer.plan.tiles[tile]
    base = _board_masks(lab, layer.tile_masks(tile))
    k_total = lab.geometry.branches
    rows = np.flatnonzero(cells.any(axis=1))
    elements = model.elements_S.copy()
    for k in range(k_total):
        masks = base.copy()
        masks[: t.n_rows, : t.n_columns][cells] = False
        masks[: t.n_rows, : t.n_columns, k][cells] = True
        lab.set_masks(masks)
        meas, _ = verify_tile(lab, t.n_rows, t.n_columns, dac, rows=rows.tolist(), nplc=nplc)
        rr, cc = np.nonzero(cells)
        for r, c in zip(rr.tolist(), cc.tolist(), strict=True):
            if model.exclude[r, c, k] or not math.isfinite(meas[r, c]):
                continue
            # the cell's other branches are open: their share of the leakage stays
            own = meas[r, c] / (1.0 if factor is None else float(factor[r, c]))
            elements[r, c, k] = own - (model.leakage_S[r, c].sum() - model.leakage_S[r, c, k])
    return dataclasses.replace(model, elements_S=elements)


def _resolve(layer: MappedLayer, tile: int, pairs: BoolArray, model: ElementModel) -> MappedLayer:
    """Re-solve the tile's cell ``pairs`` (n_rows, n_pairs) for their existing targets."""
    li, lj = _tile_cells(layer, tile)
    li, lj = li[pairs], lj[pairs]
    br = layer.cell_row[li, lj]
    pc = 2 * layer.cell_pair[li, lj]
    gp, gn = model.elements_S[br, pc], model.elements_S[br, pc + 1]
    res = solve_signed(
        gp,
        gn,
        layer.target_S[li, lj],
        leakage_S=(model.leakage_S[br, pc], model.leakage_S[br, pc + 1]),
        exclude=(model.exclude[br, pc], model.exclude[br, pc + 1]),
        sigma_S=(model.sigma_S[br, pc], model.sigma_S[br, pc + 1]),
    )
    zero = layer.target_S[li, lj] == 0
    mp = np.where(zero[:, None], False, res.mask_pos)
    mn = np.where(zero[:, None], False, res.mask_neg)
    hp, hn = model.leakage_S[br, pc], model.leakage_S[br, pc + 1]
    mask_pos, mask_neg = layer.mask_pos.copy(), layer.mask_neg.copy()
    g_pos, g_neg = layer.g_pos_S.copy(), layer.g_neg_S.copy()
    value = layer.value_S.copy()
    mask_pos[li, lj], mask_neg[li, lj] = mp, mn
    g_pos[li, lj] = hp.sum(-1) + np.where(mp, gp - hp, 0.0).sum(-1)
    g_neg[li, lj] = hn.sum(-1) + np.where(mn, gn - hn, 0.0).sum(-1)
    value[li, lj] = g_pos[li, lj] - g_neg[li, lj]
    sigma = None
    if layer.sigma_S is not None:
        sigma = layer.sigma_S.copy()
        if res.sigma is not None:
            sigma[li, lj] = np.where(zero, 0.0, res.sigma)
    return dataclasses.replace(
        layer,
        mask_pos=mask_pos,
        mask_neg=mask_neg,
        g_pos_S=g_pos,
        g_neg_S=g_neg,
        value_S=value,
        sigma_S=sigma,
    )


def _tolerance(pred: FloatArray, sigma: FloatArray, settings: ProgramSettings) -> FloatArray:
    return np.asarray(
        settings.rel_tol * np.abs(pred) + settings.abs_tol_S + settings.sigma_factor * sigma
    )


def program_tile(
    lab: Lab,
    layer: MappedLayer,
    layer_index: int,
    tile: int,
    *,
    model: ElementModel,
    dac: RowDacCalibration,
    settings: ProgramSettings,
    wiring: Wiring | None = None,
    compensation: list[dict[str, Any]] | None = None,
) -> tuple[MappedLayer, ElementModel, TileCheck, list[ReadingRow]]:
    """Write one tile's masks, verify every cell, repair misses (see the module docstring).

    With ``wiring`` (IR-drop-aware), the tile is first solved for the predicted MVM
    (`labrss.workflows.ir_drop.compensate_tile`; its record is appended to
    ``compensation``) and verified against the predicted transfer.

    Returns the (possibly re-solved) layer, the (possibly updated) element model, the
    check and the verification readings to store.
    """
    t = layer.plan.tiles[tile]
    shape = (t.n_rows, t.n_columns)
    readings: list[ReadingRow] = []
    factor: FloatArray | None = None
    if wiring is not None:
        comp = compensate_tile(
            layer,
            tile,
            model,
            wiring,
            max_iterations=settings.ir_max_iterations,
            tol=settings.ir_tol,
        )
        layer = comp.layer
        if compensation is not None:
            compensation.append(
                {
                    "layer": layer_index,
                    "tile": tile,
                    "iterations": comp.iterations,
                    "history": comp.history,
                    "consistency": comp.consistency,
                    "host_time_s": comp.host_time_s,
                    "plain_predicted_S": comp.plain_predicted_S.tolist(),
                }
            )

    def predicted(lay: MappedLayer, mdl: ElementModel) -> tuple[FloatArray, FloatArray, BoolArray]:
        nonlocal factor
        masks = _board_masks(lab, lay.tile_masks(tile))
        g, s = mdl.predicted_cells(masks)
        if wiring is not None:
            a = transfer_matrix(g, wiring)
            with np.errstate(divide="ignore", invalid="ignore"):
                f = np.where(g > 0, a / g, 1.0)
            factor = f[: t.n_rows, : t.n_columns]
            g, s = a, s * f
        return g[: t.n_rows, : t.n_columns], s[: t.n_rows, : t.n_columns], masks

    def record(
        meas: FloatArray, raw: FloatArray, masks: BoolArray, rows: Sequence[int], rnd: int
    ) -> None:
        weights = 1 << np.arange(masks.shape[-1])
        for r in rows:
            for c in range(t.n_columns):
                mask = int((masks[r, c] * weights).sum())
                readings.append(
                    ReadingRow(
                        key=reading_key(r, c, mask, rnd, f"L{layer_index}T{tile}"),
                        r=r,
                        c=c,
                        mask=mask,
                        value=float(meas[r, c]),
                        voltage_V=dac.read_voltage_V,
                        current_A=float(raw[r, c]),
                        nplc=settings.nplc,
                    )
                )

    pred, sig, masks = predicted(layer, model)
    lab.set_masks(masks)
    meas, raw = verify_tile(lab, t.n_rows, t.n_columns, dac, nplc=settings.nplc)
    record(meas, raw, masks, range(t.n_rows), 0)
    first = meas.copy()
    tol = _tolerance(pred, sig, settings)
    miss = ~(np.abs(meas - pred) <= tol)
    ever_missed = miss.copy()
    rounds = 0
    while miss.any() and rounds < settings.max_repair_rounds:
        rounds += 1
        log.info(
            "%s tile %d: %d misses, repair round %d", layer.name, tile, int(miss.sum()), rounds
        )
        pair_cells = miss[:, 0::2] | miss[:, 1::2]
        cells = np.repeat(pair_cells, 2, axis=1)
        model = _remeasure_elements(
            lab, layer, tile, cells, model=model, dac=dac, nplc=settings.nplc, factor=factor
        )
        if wiring is None:
            layer = _resolve(layer, tile, pair_cells, model)
        else:
            layer = compensate_tile(
                layer,
                tile,
                model,
                wiring,
                pairs=pair_cells,
                max_iterations=settings.ir_max_iterations,
                tol=settings.ir_tol,
            ).layer
        pred, sig, masks = predicted(layer, model)
        lab.set_masks(masks)
        rows = np.flatnonzero(cells.any(axis=1)).tolist()
        new, raw = verify_tile(lab, t.n_rows, t.n_columns, dac, rows=rows, nplc=settings.nplc)
        record(new, raw, masks, rows, rounds)
        meas = np.where(np.isnan(new), meas, new)
        tol = _tolerance(pred, sig, settings)
        miss = ~(np.abs(meas - pred) <= tol)
    programmed = np.asarray(masks[: t.n_rows, : t.n_columns].any(-1), dtype=bool)
    check = TileCheck(
        layer=layer_index,
        tile=tile,
        predicted_S=pred,
        sigma_S=sig,
        first_measured_S=first,
        measured_S=meas,
        tolerance_S=tol,
        programmed=programmed,
        miss=miss,
        repaired=ever_missed & ~miss,
        rounds=rounds,
    )
    assert check.predicted_S.shape == shape
    return layer, model, check, readings


# ---------------------------------------------------------------------------- the workflow
def program_network(
    lab: Lab,
    store: Store,
    network: Network,
    x_reference: npt.ArrayLike,
    *,
    settings: ProgramSettings | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    note: str = "",
) -> ProgramResult:
    """Map, program, verify and repair every tile of ``network``; store the run.

    The board's latest calibration is taken from ``store`` (`NoCalibrationError` if
    none). Every layer is mapped before anything is switched. The run (kind
    ``program``) holds every verification reading, the per-cell predicted vs measured
    conductances and the programmed layers (`load_program` reads them back). The board
    is left with every switch open.
    """
    cfg = settings or ProgramSettings()
    cfg.validate()
    if Capability.DACS in lab.capabilities:
        lab.require(
            Capability.MVM_SMU,
            needed_by="program_network (MVM-style verification with the rows on their DACs)",
        )
    lab.require_reads(needed_by="program_network")
    started = time.perf_counter()
    instrument0 = lab.instrument_time_s
    board_id = board_id_for(lab, store)
    calibration = store.latest_calibration(board_id)
    model = element_model(calibration)
    reused = (
        None
        if cfg.ir_wiring_run is None
        else stored_wiring(store, cfg.ir_wiring_run, board_id, lab.geometry.rows, lab.geometry.cols)
    )
    # headroom for the DAC gain pre-compensation (V_set = V / gain, gains ~1 +- 1e-3)
    v_max = float(cfg.v_max_V if cfg.v_max_V is not None else DAC_HEADROOM * lab.max_row_voltage_V)
    layers, x_max = map_network(network, model, x_reference, v_max_V=v_max, settings=cfg)
    v_read = float(cfg.read_voltage_V if cfg.read_voltage_V is not None else v_max)
    total = 1 + sum(lay.plan.n_tiles for lay in layers)
    run_settings = dataclasses.asdict(cfg) | {
        "network": network.name,
        "sizes": list(network.sizes),
        "x_max": x_max,
        "v_max_V": v_max,
        "calibration_run_id": calibration.run_id,
    }
    run_id = store.start_run("program", board_id, run_settings, lab.describe(), note=note)
    try:
        if progress:
            progress(0, total, "DAC gains")
        dac = calibrate_row_dacs(lab, model, read_voltage_V=v_read, nplc=cfg.nplc)
        estimate: WiringEstimate | None = None
        if cfg.ir_drop:
            if verify_path(lab) != "smu":
                raise LabInputError(
                    "IR-drop-aware programming needs row DACs and the SMU on a column "
                    "(MVM routing); this bench runs MVMs by superposition, where the "
                    "wires carry one cell's current at a time"
                )
            if progress:
                progress(0, total, "wiring (IR drop)")
            if reused is None:
                estimate = measure_wiring(
                    lab,
                    model,
                    dac,
                    max_row_current_A=cfg.ir_max_row_current_A,
                    nplc=cfg.nplc,
                )
        result = ProgramResult(
            run_id=run_id,
            board_id=board_id,
            calibration_run_id=calibration.run_id,
            network=network,
            layers=layers,
            x_max=x_max,
            dac=dac,
            wiring=reused if estimate is None else estimate.wiring,
            wiring_estimate=estimate,
        )
        done = 1
        for li in range(len(layers)):
            for ti in range(layers[li].plan.n_tiles):
                if should_stop is not None and should_stop():
                    raise CancelledError(f"program run {run_id} cancelled at layer {li} tile {ti}")
                if progress:
                    progress(done, total, f"layer {li} tile {ti}")
                layers[li], model, check, readings = program_tile(
                    lab,
                    layers[li],
                    li,
                    ti,
                    model=model,
                    dac=dac,
                    settings=cfg,
                    wiring=result.wiring,
                    compensation=result.compensation,
                )
                result.checks.append(check)
                store.add_readings(run_id, readings)
                store.heartbeat(run_id)
                done += 1
        lab.open_all()
        if progress:
            progress(total, total, "done")
        result.wall_time_s = time.perf_counter() - started
        result.instrument_time_s = lab.instrument_time_s - instrument0
        save_program(store, result)
        store.finish_run(run_id, instrument_time_s=result.instrument_time_s)
        return result
    except BaseException as exc:
        spent_s = lab.instrument_time_s - instrument0
        close_run_after(exc, store, run_id, instrument_time_s=spent_s, what="program")
        if status_after(exc) == "interrupted":  # a cancel or a Ctrl-C: the bench safe now
            lab.safe()
        raise


# ---------------------------------------------------------------------------- persistence
_LAYER_ARRAYS = (
    "scale_S",
    "target_S",
    "value_S",
    "mask_pos",
    "mask_neg",
    "g_pos_S",
    "g_neg_S",
    "reachable",
    "range_fraction",
    "cell_row",
    "cell_pair",
    "tile_of",
    "weights",
    "bias",
)


def stored_wiring(store: Store, run_id: int, board_id: int, rows: int, cols: int) -> Wiring:
    """The wiring an IR-drop-aware program run measured (for `ProgramSettings.ir_wiring_run`).

    Raises ValueError naming the run when it is not a completed IR-drop-aware program run
    of board ``board_id`` with a ``rows`` x ``cols`` wiring.
    """
    info = store.run(run_id)
    where = f"{store.path}: run {run_id}"
    if info.kind != "program" or info.status != "completed":
        raise ValueError(f"{where} is a {info.status} {info.kind} run, not a completed program")
    if info.board_id != board_id:
        raise ValueError(f"{where} programmed board {info.board_id}, not this board ({board_id})")
    if not info.settings.get("ir_drop") or "ir_drop.wiring" not in store.result_names(run_id):
        raise ValueError(f"{where} was not IR-drop-aware: it holds no measured wiring")
    wiring = Wiring.from_json(store.get_value(run_id, "ir_drop.wiring"))
    if wiring.shape != (rows, cols):
        raise ValueError(f"{where}: its wiring is for {wiring.shape}, the board is {rows}x{cols}")
    return wiring


def save_program(store: Store, result: ProgramResult) -> None:
    """Store a program result in its run: layers, DAC gains, per-cell checks."""
    if result.run_id is None:
        raise ValueError("the program result has no run to store it in")
    save_mapped_program(
        store,
        result.run_id,
        network_name=result.network.name,
        x_max=result.x_max,
        layers=result.layers,
        dac=result.dac,
        checks=result.checks,
        summary=result.summary(),
    )
    run = result.run_id
    if result.wiring is not None:
        store.put_value(run, "ir_drop.wiring", result.wiring.to_json())
        store.put_value(run, "ir_drop.compensation", result.compensation)
        est = result.wiring_estimate
        if est is not None:
            store.put_value(run, "ir_drop.estimate", est.summary())
            store.put_value(run, "ir_drop.nominal", est.nominal.to_json())
            store.put_result(run, "ir_drop.measured_S", est.measured_S)
            store.put_result(run, "ir_drop.isolated_S", est.isolated_S)
            store.put_result(run, "ir_drop.std_ohm", est.fit.std_ohm)


def save_mapped_program(
    store: Store,
    run: int,
    *,
    network_name: str,
    x_max: list[float],
    layers: list[MappedLayer],
    dac: RowDacCalibration,
    checks: list[TileCheck],
    summary: dict[str, Any],
    meta_extra: dict[str, Any] | None = None,
) -> None:
    """The arrays any programmed network (MLP or CNN) stores: its mapped layers, the DAC
    gains and every tile's check, plus ``meta_extra`` in the ``program`` value
    (`load_mapped_program` reads them back)."""
    meta: dict[str, Any] = {"network": network_name, "x_max": x_max, "layers": []}
    meta |= meta_extra or {}
    for li, lay in enumerate(layers):
        for name in _LAYER_ARRAYS:
            store.put_result(run, f"layer{li}.{name}", np.asarray(getattr(lay, name)))
        if lay.sigma_S is not None:
            store.put_result(run, f"layer{li}.sigma_S", lay.sigma_S)
        meta["layers"].append(
            {
                "name": lay.name,
                "v_scale_V": lay.v_scale_V,
                "v_max_V": lay.v_max_V,
                "x_max": lay.x_max,
                "bias_V": lay.bias_V,
                "has_bias": lay.plan.has_bias,
                "board": [lay.plan.board_rows, lay.plan.board_cols],
            }
        )
    store.put_value(run, "program", meta)
    store.put_result(run, "dac.gain", dac.gain)
    store.put_result(run, "dac.reference_cells", dac.reference_cells)
    store.put_result(run, "dac.reference_S", dac.reference_S)
    store.put_value(run, "dac.read_voltage_V", dac.read_voltage_V)
    dims: dict[str, list[str]] = {}  # named dimensions for the netCDF/HDF5 export
    for c in checks:
        stem = f"check.L{c.layer}T{c.tile}"
        tile_dims = [f"L{c.layer}T{c.tile}.row", f"L{c.layer}T{c.tile}.column"]
        for name in ("predicted_S", "sigma_S", "first_measured_S", "measured_S", "tolerance_S"):
            store.put_result(run, f"{stem}.{name}", getattr(c, name))
            dims[f"{stem}.{name}"] = tile_dims
        for name in ("programmed", "miss", "repaired"):
            store.put_result(run, f"{stem}.{name}", getattr(c, name))
            dims[f"{stem}.{name}"] = tile_dims
        store.put_value(run, f"{stem}.rounds", c.rounds)
    store.put_value(run, "dims", dims)
    store.put_value(run, "summary", summary)


@dataclass(frozen=True)
class MappedProgram:
    """What `load_mapped_program` reads back: the ``program`` metadata, the mapped layers,
    the DAC gains and every tile's check of a completed program run."""

    meta: dict[str, Any]
    layers: list[MappedLayer]
    dac: RowDacCalibration
    checks: list[TileCheck]


def load_mapped_program(store: Store, run_id: int) -> MappedProgram:
    """The stored arrays of a completed program run (MLP or CNN, `save_mapped_program`).

    Raises ValueError naming the store and run when it is not a completed program run.
    """
    info = store.run(run_id)
    if info.kind != "program":
        raise ValueError(f"{store.path}: run {run_id} is a {info.kind} run, not a program run")
    if info.status != "completed":
        raise ValueError(f"{store.path}: program run {run_id} is {info.status}, not completed")
    meta = store.get_value(run_id, "program")
    layers: list[MappedLayer] = []
    names = store.result_names(run_id)
    for li, lm in enumerate(meta["layers"]):
        arrays = {n: store.get_result(run_id, f"layer{li}.{n}") for n in _LAYER_ARRAYS}
        w = arrays["weights"]
        plan = plan_tiles(
            w.shape[0],
            w.shape[1],
            lm["board"][0],
            lm["board"][1],
            bias=lm["has_bias"],
            layer=lm["name"],
        )
        sigma = (
            store.get_result(run_id, f"layer{li}.sigma_S")
            if f"layer{li}.sigma_S" in names
            else None
        )
        layers.append(
            MappedLayer(
                name=lm["name"],
                plan=plan,
                v_scale_V=float(lm["v_scale_V"]),
                v_max_V=float(lm["v_max_V"]),
                x_max=float(lm["x_max"]),
                bias_V=float(lm["bias_V"]),
                sigma_S=sigma,
                **arrays,
            )
        )
    dac = RowDacCalibration(
        gain=store.get_result(run_id, "dac.gain"),
        reference_cells=store.get_result(run_id, "dac.reference_cells"),
        reference_S=store.get_result(run_id, "dac.reference_S"),
        read_voltage_V=float(store.get_value(run_id, "dac.read_voltage_V")),
    )
    checks: list[TileCheck] = []
    for li, lay in enumerate(layers):
        for ti in range(lay.plan.n_tiles):
            stem = f"check.L{li}T{ti}"
            checks.append(
                TileCheck(
                    layer=li,
                    tile=ti,
                    predicted_S=store.get_result(run_id, f"{stem}.predicted_S"),
                    sigma_S=store.get_result(run_id, f"{stem}.sigma_S"),
                    first_measured_S=store.get_result(run_id, f"{stem}.first_measured_S"),
                    measured_S=store.get_result(run_id, f"{stem}.measured_S"),
                    tolerance_S=store.get_result(run_id, f"{stem}.tolerance_S"),
                    programmed=store.get_result(run_id, f"{stem}.programmed"),
                    miss=store.get_result(run_id, f"{stem}.miss"),
                    repaired=store.get_result(run_id, f"{stem}.repaired"),
                    rounds=int(store.get_value(run_id, f"{stem}.rounds")),
                )
            )
    return MappedProgram(meta, layers, dac, checks)


def is_cnn_program(store: Store, run_id: int) -> bool:
    """True when program run ``run_id`` holds a CNN (`labrss.workflows.cnn.program_cnn`):
    load it with `labrss.workflows.cnn.load_cnn_program`, not `load_program`."""
    names = store.result_names(run_id)
    if "program" in names:
        return bool(store.get_value(run_id, "program").get("cnn", False))
    # CNN runs stored before the layers were: their settings describe the CNN
    return "cnn" in store.run(run_id).settings


def load_program(store: Store, run_id: int) -> ProgramResult:
    """A program run's result read back from the store (for `labrss mvm`).

    Raises ValueError for a CNN program run, naming `load_cnn_program`.
    """
    if store.run(run_id).kind == "program" and is_cnn_program(store, run_id):
        raise ValueError(
            f"{store.path}: program run {run_id} holds a CNN: read it with "
            "labrss.workflows.cnn.load_cnn_program (labrss mvm does)"
        )
    mapped = load_mapped_program(store, run_id)
    info = store.run(run_id)
    layers = mapped.layers
    network = Network(
        [Layer(lay.weights, lay.bias) for lay in layers], name=str(mapped.meta["network"])
    )
    settings = info.settings
    wiring = None
    if settings.get("ir_drop"):
        wiring = Wiring.from_json(store.get_value(run_id, "ir_drop.wiring"))
    compensation = store.get_value(run_id, "ir_drop.compensation") if wiring is not None else []
    return ProgramResult(
        run_id=run_id,
        board_id=info.board_id,
        calibration_run_id=int(settings.get("calibration_run_id", -1)),
        network=network,
        layers=layers,
        x_max=[float(v) for v in mapped.meta["x_max"]],
        dac=mapped.dac,
        checks=mapped.checks,
        wall_time_s=float(info.wall_time_s or math.nan),
        instrument_time_s=float(info.instrument_time_s or math.nan),
        wiring=wiring,
        compensation=list(compensation or []),
    )
