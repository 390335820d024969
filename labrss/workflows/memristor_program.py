"""Program a network onto a memristor board, resident: coarse levels + RSS per cell.

    from labrss.workflows.memristor_program import program_network_memristor
    with Lab(station) as lab, Store(path) as store:
        result = program_network_memristor(lab, store, network, x_reference=x_train)
        print(result.pulses, result.cells_missed)
        # later, after drift: switches only, no pulse
        result = resolve_program(lab, store, result)

Why resident: programming a memristor bank costs ~35 pulses (coarse write-verify of 8
devices, `labrss.workflows.memristor_rss`), and a tile that is programmed, run and
reprogrammed would re-pulse the same devices for every tile and every batch. So the
network must fit the board as one tile: one layer whose ``d_in + 1`` rows (the bias row)
fit the board's rows and whose ``d_out`` differential pairs fit its columns. Anything larger
is refused, naming the layer and the board size, before anything is switched or pulsed.
(Several layers would all start at cell (0, 0) in `labrss.workflows.mvm`: they could not be
resident together, so they are refused too.)

Steps:

1. **Plan** (nothing switched): the coarse plan of every bank (`labrss.memristor.
   coarse_levels` over the board's ``g_min_S``/``g_max_S``) has a working range
   ``[lo, hi]`` of cell targets where its subset sums are densest. Each weight ``u`` (the
   bias row scaled as in `labrss.mapping.map_layer`) gets the pair targets
   ``G+- = mid +- s u / 2`` with ``mid = (lo + hi) / 2`` and the scale
   ``s = fill (hi - lo) / max |u|`` (S per weight unit): every target inside the working
   range, ``G+ - G- = s u``. A zero weight is its pair with every switch open (an exact
   zero, no pulse).
2. **Program** every cell of a nonzero pair with `program_bank_rss` (coarse write-verify of
   each device, measure each branch, choose the subset), every pulse, read and device
   outcome recorded in the run (results ``pulses``, ``devices``; readings).
3. **Verify** by measurement as `labrss.workflows.program` does: row DAC gains, then the
   resident masks are written and each row is driven alone while the SMU reads every column
   at virtual ground. A cell whose read differs from its prediction (the sum of its measured
   branches) by more than the tolerance is **repaired** with `resolve_bank` (re-read its
   branches, re-choose the subset: switches only), up to ``max_repair_rounds``.
4. **Store** the run as a ``program`` run (`labrss.workflows.program.save_program`, so
   `labrss mvm` loads it) plus the banks (``memristor.*`` results: cells, targets, branch
   conductances and sigmas, masks, pulses) and the device states.

Drift compensation (`resolve_program`): re-read every programmed bank's branches, re-choose
each subset for the same target (switches only, no pulse), verify again; a new
`MemristorProgramResult` whose masks and predictions are the compensated ones.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from drivers.board import Capability
from labrss.lab import Lab, LabInputError
from labrss.mapping.conductance import MappedLayer
from labrss.mapping.tiling import LayerNotRealisableError, plan_tiles
from labrss.memristor import CoarsePlan, coarse_levels
from labrss.networks.model import Network
from labrss.store import NoCalibrationError, Store
from labrss.workflows.boards import register_board
from labrss.workflows.memristor_rss import BankResult, BankSettings, program_bank_rss, resolve_bank
from labrss.workflows.program import (
    DAC_HEADROOM,
    CancelledError,
    ElementModel,
    ProgramResult,
    Progress,
    ShouldStop,
    TileCheck,
    calibrate_row_dacs,
    check_settings,
    load_program,
    save_program,
    verify_tile,
)
from labrss.workflows.run_close import close_run_after
from labrss.workflows.write_verify import DeviceRecorder

__all__ = [
    "RESIDENT_DIGITS_CLASSES",
    "MemristorProgramResult",
    "MemristorProgramSettings",
    "ResidentTask",
    "check_resident",
    "load_memristor_program",
    "program_network_memristor",
    "resident_digits_task",
    "resolve_program",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class MemristorProgramSettings:
    """What `program_network_memristor` is asked to do (stored with the run).

    Attributes:
        bank: how each bank is programmed (`BankSettings`: coarse tolerance, reads, ...).
        fill: fraction of the working range's half-width the largest weight may use.
        x_margin: input range ``x_max`` = this times the largest ``|x_reference|``.
        v_max_V: largest DAC voltage for inputs (V); None: `DAC_HEADROOM` times
            `Lab.max_row_voltage_V`: the station's ``max_dac_voltage_V`` and the devices'
            read-disturb limit in both polarities (``[limits] read_disturb_fraction`` of
            the smallest switching threshold: 0.45 V / 3 = 0.15 V on the simulated CMO
            devices, so 0.147 V). MVM inputs take either sign, so both polarities count.
        read_voltage_V: verification row voltage (V); None: ``v_max_V``. `Lab` refuses it
            above the read-disturb limit of its polarity.
        nplc: SMU integration time for verification (None: the station's).
        rel_tol, abs_tol_S, sigma_factor: a cell misses when ``|G_meas - G_pred|`` exceeds
            ``rel_tol G_pred + abs_tol_S + sigma_factor sigma_pred``; the default 1 %
            covers the devices' relaxation between the branch reads and the verification
            (~0.1 uS per unit of ln t per device, docs/simulator.md) on a ~140 uS cell.
        max_repair_rounds: re-solve rounds (switches only) for missed cells.
        dac_reads: readings averaged per DAC gain read: the reference is a memristor,
            whose read noise (~0.2 uS) on a ~60 uS device gives a ~3e-3 gain error from
            one read, ~1e-3 from 8.
    """

    bank: BankSettings = field(default_factory=BankSettings)
    fill: float = 0.95
    x_margin: float = 1.25
    v_max_V: float | None = None
    read_voltage_V: float | None = None
    nplc: float | None = None
    rel_tol: float = 0.01
    abs_tol_S: float = 2e-8
    sigma_factor: float = 4.0
    max_repair_rounds: int = 1
    dac_reads: int = 8

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        checks: list[tuple[str, float, bool]] = [
            ("fill", self.fill, 0.0 < self.fill <= 1.0),
            ("x_margin", self.x_margin, self.x_margin >= 1.0),
            ("rel_tol", self.rel_tol, self.rel_tol >= 0.0),
            ("abs_tol_S", self.abs_tol_S, self.abs_tol_S >= 0.0),
            ("sigma_factor", self.sigma_factor, self.sigma_factor >= 0.0),
            ("max_repair_rounds", self.max_repair_rounds, self.max_repair_rounds >= 0),
            ("dac_reads", self.dac_reads, self.dac_reads >= 1),
        ]
        check_settings(self, "memristor program setting", checks, ("v_max_V", "read_voltage_V"))

    def to_json(self) -> dict[str, Any]:
        """The settings as stored with the run."""
        return dataclasses.asdict(self)


@dataclass
class MemristorProgramResult(ProgramResult):
    """A resident memristor program: the `ProgramResult` `labrss mvm` runs, plus its banks.

    Attributes:
        banks: one `BankResult` per programmed cell (zero-weight pairs have none).
        plan: the coarse plan every bank was programmed to.
        pulses: pulses applied by this run; pulse_time_s: their time (s).
        resolved_from: the program run this one re-solved (drift compensation), or None.
    """

    banks: list[BankResult] = field(default_factory=list)
    plan: CoarsePlan | None = None
    pulses: int = 0
    pulse_time_s: float = 0.0
    resolved_from: int | None = None

    def device_states_S(self) -> FloatArray:
        """(cells, K) measured conductance of every programmed device (S), bank order."""
        if not self.banks:
            return np.zeros((0, 0))
        return np.array([b.branch_S for b in self.banks])

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts and times, with the pulses and the banks' errors."""
        out = super().summary()
        errors = np.array([abs(b.error) for b in self.banks])
        out |= {
            "devices": "memristor",
            "banks": len(self.banks),
            "pulses": self.pulses,
            "pulses_per_bank": self.pulses / len(self.banks) if self.banks else None,
            "pulse_time_s": self.pulse_time_s,
            "stuck_devices": sum(b.stuck for b in self.banks),
            "median_abs_bank_error": float(np.median(errors)) if errors.size else None,
            "resolved_from": self.resolved_from,
        }
        return out


# ---------------------------------------------------------------------------- the task
RESIDENT_DIGITS_CLASSES: tuple[int, int, int] = (2, 6, 7)
"""The digits classes of `resident_digits_task`: the best of all 120 triples by 5-fold
cross-validation on the training set alone (99.0 %), so the test set did not choose them."""

#: Pixel blocks of the 8x8 image: rows 0-2, 3-4, 5-7 by columns 0-3, 4-7 (3 x 2 blocks).
_BLOCK_ROWS = ((0, 3), (3, 5), (5, 8))
_BLOCK_COLS = ((0, 4), (4, 8))


@dataclass(frozen=True)
class ResidentTask:
    """A small classification task whose network stays resident on an 8x8 board.

    ``network``: one layer, 6 inputs (+ bias row: 7 board rows) to 3 classes (6 columns);
    inputs are mean pixel values in [0, 1]; labels are class indices 0..2 (the digits
    ``classes``).
    """

    network: Network
    classes: tuple[int, ...]
    x_train: FloatArray
    y_train: npt.NDArray[np.int64]
    x_test: FloatArray
    y_test: npt.NDArray[np.int64]
    test_accuracy: float


def _block_features(x: FloatArray) -> FloatArray:
    img = x.reshape(-1, 8, 8)
    cols = [
        img[:, r0:r1, c0:c1].mean(axis=(1, 2)) for r0, r1 in _BLOCK_ROWS for c0, c1 in _BLOCK_COLS
    ]
    return np.stack(cols, axis=1)


def resident_digits_task(seed: int = 0) -> ResidentTask:
    """The digits images of `RESIDENT_DIGITS_CLASSES` as 3 x 2 blocks of mean pixel value
    (6 inputs in [0, 1]), and a multinomial logistic regression on them (a one-layer network
    6 -> 3, trained in milliseconds, deterministic for a ``seed``'s split).

    Why this task: a memristor program must stay resident (module docstring); the 8x8
    `memristor` preset holds 7 rows (6 inputs and the bias) by 4 differential pairs, so a
    6-input, 3-class layer fits with a column pair to spare. Block means keep the inputs
    non-negative pixel intensities (what the row DACs would get from an image sensor).
    Complexity: one lbfgs fit on ~400 x 6 samples.
    """
    from sklearn.linear_model import LogisticRegression

    from labrss.networks.digits import load_digits_split

    data = load_digits_split(seed)
    classes = RESIDENT_DIGITS_CLASSES

    def pick(x: FloatArray, y: npt.NDArray[np.int64]) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        keep = np.isin(y, classes)
        labels = np.searchsorted(np.array(classes), y[keep]).astype(np.int64)
        return _block_features(x[keep]), labels

    x_tr, y_tr = pick(data.x_train, data.y_train)
    x_te, y_te = pick(data.x_test, data.y_test)
    model = LogisticRegression(max_iter=5000).fit(x_tr, y_tr)
    network = Network(
        [(np.asarray(model.coef_, dtype=np.float64).T, np.asarray(model.intercept_, np.float64))],
        name=f"digits {'/'.join(str(c) for c in classes)} 3x2 blocks",
    )
    acc = float(np.mean(np.argmax(network.forward(x_te), axis=1) == y_te))
    return ResidentTask(network, classes, x_tr, y_tr, x_te, y_te, acc)


# ---------------------------------------------------------------------------- checks
def check_resident(network: Network, rows: int, cols: int) -> None:
    """Refuse a network that cannot stay resident on a ``rows`` x ``cols`` board.

    Raises:
        LayerNotRealisableError: naming the layer, its size and the board size.
    """
    if len(network.layers) != 1:
        lay = network.layers[1]
        raise LayerNotRealisableError(
            f"{network.name} layer 1 ({lay.d_in}x{lay.d_out}): a memristor program must stay "
            f"resident on the {rows}x{cols} board and every layer of an MVM starts at cell "
            f"(0, 0), so only one-layer networks can be programmed (this one has "
            f"{len(network.layers)})"
        )
    lay = network.layers[0]
    name = f"{network.name} layer 0 ({lay.d_in}x{lay.d_out})"
    plan = plan_tiles(lay.d_in, lay.d_out, rows, cols, bias=True, layer=name)
    if plan.n_tiles != 1:
        raise LayerNotRealisableError(
            f"{name}: needs {lay.d_in + 1} rows (inputs and bias) and {2 * lay.d_out} "
            f"columns (differential pairs), the {rows}x{cols} board holds {rows} rows and "
            f"{cols} columns: {plan.n_tiles} tiles, but a memristor program must stay "
            "resident (re-tiling would reprogram the devices, ~35 pulses per bank)"
        )


def _memristor_range(lab: Lab) -> tuple[float, float]:
    board = lab.board
    if not (math.isfinite(board.g_min_S) and math.isfinite(board.g_max_S)):
        raise LabInputError(
            f"{board.identity}: BOARD:INFO? gives no memristor range (g_min_S, g_max_S): "
            "not a memristor board"
        )
    return float(board.g_min_S), float(board.g_max_S)


# ---------------------------------------------------------------------------- mapping
@dataclass(frozen=True)
class _Targets:
    """The layer's mapping before anything is programmed."""

    layer: MappedLayer  # masks empty, values NaN: filled after programming
    pos_S: FloatArray  # (d_in + 1, d_out) target of each + cell (S); NaN: zero weight
    neg_S: FloatArray
    scale_S: float


def _plan_targets(
    network: Network,
    x_reference: npt.ArrayLike,
    plan: CoarsePlan,
    *,
    rows: int,
    cols: int,
    branches: int,
    v_max_V: float,
    settings: MemristorProgramSettings,
) -> _Targets:
    lay = network.layers[0]
    name = f"{network.name} layer 0 ({lay.d_in}x{lay.d_out})"
    w = np.asarray(lay.weights, dtype=np.float64)
    b = np.asarray(lay.bias, dtype=np.float64)
    for label, arr in (("weight", w), ("bias", b)):
        bad = ~np.isfinite(arr)
        if bad.any():
            idx = [int(i) for i in np.argwhere(bad)[0]]
            raise ValueError(f"{name}: {label}{idx} = {float(arr[tuple(idx)])!r}: must be finite")
    x = np.asarray(x_reference, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != lay.d_in or x.shape[0] == 0:
        raise ValueError(f"{name}: reference inputs shape {x.shape}, expected (B, {lay.d_in})")
    peak = float(np.abs(x).max())
    if not math.isfinite(peak):
        raise ValueError(f"{name}: the reference inputs are not finite")
    x_max = settings.x_margin * peak if peak > 0 else 1.0
    v_scale = v_max_V / x_max
    u = np.vstack([w, (b * v_scale / v_max_V)[None, :]])
    peak_u = float(np.abs(u).max())
    lo, hi = plan.target_lo_S, plan.target_hi_S
    mid = 0.5 * (lo + hi)
    s = settings.fill * (hi - lo) / peak_u if peak_u > 0 else 1.0
    zero = u == 0
    pos = np.where(zero, math.nan, mid + 0.5 * s * u)
    neg = np.where(zero, math.nan, mid - 0.5 * s * u)
    tplan = plan_tiles(lay.d_in, lay.d_out, rows, cols, bias=True, layer=name)
    n_out = lay.d_out
    rows_total = lay.d_in + 1
    cell_row = np.repeat(np.arange(rows_total)[:, None], n_out, axis=1)
    cell_pair = np.repeat(np.arange(n_out)[None, :], rows_total, axis=0)
    mapped = MappedLayer(
        name=name,
        plan=tplan,
        scale_S=np.full(n_out, s),
        v_scale_V=v_scale,
        v_max_V=float(v_max_V),
        x_max=float(x_max),
        bias_V=float(v_max_V),
        target_S=s * u,
        value_S=np.zeros_like(u),
        mask_pos=np.zeros((rows_total, n_out, branches), dtype=bool),
        mask_neg=np.zeros((rows_total, n_out, branches), dtype=bool),
        g_pos_S=np.zeros_like(u),
        g_neg_S=np.zeros_like(u),
        sigma_S=np.zeros_like(u),
        reachable=np.ones(u.shape, dtype=bool),
        range_fraction=np.abs(0.5 * s * u) / (0.5 * (hi - lo)),
        cell_row=cell_row,
        cell_pair=cell_pair,
        tile_of=np.zeros(u.shape, dtype=np.int64),
        weights=w,
        bias=b,
    )
    return _Targets(layer=mapped, pos_S=pos, neg_S=neg, scale_S=s)


def _layer_from_banks(layer: MappedLayer, banks: list[BankResult]) -> MappedLayer:
    """The mapped layer with the banks' masks and predicted conductances (the board's
    cell (i, 2j) is the + cell of logical (i, j), (i, 2j + 1) the - cell)."""
    mask_pos = np.zeros_like(layer.mask_pos)
    mask_neg = np.zeros_like(layer.mask_neg)
    g_pos = np.zeros_like(layer.g_pos_S)
    g_neg = np.zeros_like(layer.g_neg_S)
    var = np.zeros_like(layer.g_pos_S)
    for bank in banks:
        r, c = bank.cell
        j, side = divmod(c, 2)
        sig = np.where(np.isfinite(bank.branch_sigma_S), bank.branch_sigma_S, 0.0)
        var[r, j] += float((sig[bank.mask] ** 2).sum())
        if side == 0:
            mask_pos[r, j], g_pos[r, j] = bank.mask, bank.predicted_S
        else:
            mask_neg[r, j], g_neg[r, j] = bank.mask, bank.predicted_S
    return dataclasses.replace(
        layer,
        mask_pos=mask_pos,
        mask_neg=mask_neg,
        g_pos_S=g_pos,
        g_neg_S=g_neg,
        value_S=g_pos - g_neg,
        sigma_S=np.sqrt(var),
    )


def _dac_model(lab: Lab, banks: list[BankResult]) -> ElementModel:
    """An element model for `calibrate_row_dacs`: the banks' measured branches (the
    reference of a row is then a programmed device of known, large conductance: the
    strongest signal over the read noise); a row without a bank may use any cell (the DAC
    gain read measures its reference branch alone first, so the model only has to pick a
    branch that conducts)."""
    g = lab.geometry
    g_min, g_max = _memristor_range(lab)
    elements = np.full((g.rows, g.cols, g.branches), 0.5 * (g_min + g_max))
    exclude = np.zeros(elements.shape, dtype=bool)
    banked_rows = {bank.cell[0] for bank in banks}
    for r in banked_rows:
        exclude[r] = True
    for bank in banks:
        r, c = bank.cell
        elements[r, c] = np.where(np.isfinite(bank.branch_S), bank.branch_S, g_min)
        exclude[r, c] = ~np.isfinite(bank.branch_S)
    zeros = np.zeros_like(elements)
    return ElementModel(elements_S=elements, sigma_S=zeros, leakage_S=zeros, exclude=exclude)


def _verify(
    lab: Lab,
    layer: MappedLayer,
    banks: list[BankResult],
    dac_check: tuple[Any, MemristorProgramSettings],
    recorder: DeviceRecorder,
) -> tuple[MappedLayer, list[BankResult], TileCheck]:
    """Write the resident masks, verify every cell by row reads, repair misses by
    re-solving their banks (switches only)."""
    dac, cfg = dac_check
    t = layer.plan.tiles[0]
    g = lab.geometry

    def board_masks(lay: MappedLayer) -> BoolArray:
        full = np.zeros((g.rows, g.cols, g.branches), dtype=bool)
        full[: t.n_rows, : t.n_columns] = lay.tile_masks(0)
        return full

    def predicted(lay: MappedLayer) -> tuple[FloatArray, FloatArray]:
        pred = lay.tile_conductances(0)
        sig = np.zeros_like(pred)
        for bank in banks:
            r, c = bank.cell
            s = np.where(np.isfinite(bank.branch_sigma_S), bank.branch_sigma_S, 0.0)
            sig[r, c] = math.sqrt(float((s[bank.mask] ** 2).sum()))
        return pred, sig

    lab.set_masks(board_masks(layer))
    meas, _ = verify_tile(lab, t.n_rows, t.n_columns, dac, nplc=cfg.nplc)
    first = meas.copy()
    pred, sig = predicted(layer)
    programmed = np.asarray(layer.tile_masks(0).any(-1), dtype=bool)
    tol = cfg.rel_tol * np.abs(pred) + cfg.abs_tol_S + cfg.sigma_factor * sig
    miss = programmed & ~(np.abs(meas - pred) <= tol)
    ever = miss.copy()
    rounds = 0
    by_cell = {b.cell: i for i, b in enumerate(banks)}
    while miss.any() and rounds < cfg.max_repair_rounds:
        rounds += 1
        lab.open_all()
        for r, c in (tuple(int(v) for v in rc) for rc in np.argwhere(miss)):
            i = by_cell[(r, c)]
            banks[i] = resolve_bank(lab, banks[i], banks[i].target_S, cfg.bank, recorder=recorder)
        layer = _layer_from_banks(layer, banks)
        lab.set_masks(board_masks(layer))
        rows = sorted({int(r) for r, _ in np.argwhere(miss)})
        new, _ = verify_tile(lab, t.n_rows, t.n_columns, dac, rows=rows, nplc=cfg.nplc)
        meas = np.where(np.isnan(new), meas, new)
        pred, sig = predicted(layer)
        tol = cfg.rel_tol * np.abs(pred) + cfg.abs_tol_S + cfg.sigma_factor * sig
        miss = programmed & ~(np.abs(meas - pred) <= tol)
    check = TileCheck(
        layer=0,
        tile=0,
        predicted_S=pred,
        sigma_S=sig,
        first_measured_S=first,
        measured_S=meas,
        tolerance_S=tol,
        programmed=programmed,
        miss=miss,
        repaired=ever & ~miss,
        rounds=rounds,
    )
    return layer, banks, check


# ---------------------------------------------------------------------------- workflow
def program_network_memristor(
    lab: Lab,
    store: Store,
    network: Network,
    x_reference: npt.ArrayLike,
    *,
    settings: MemristorProgramSettings | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    note: str = "",
) -> MemristorProgramResult:
    """Program ``network`` resident on the lab's memristor board (module docstring).

    Raises, before anything is switched or pulsed: `LayerNotRealisableError` (the network
    does not fit as one tile, naming the layer and the board size), `LabInputError` (not a
    memristor board, or a cell it needs holds resistors), ValueError (bad weights or
    reference inputs). The board is left with every switch open; the devices keep their
    programmed states.
    """
    cfg = settings or MemristorProgramSettings()
    cfg.validate()
    lab.require(Capability.PULSES, needed_by="program_network_memristor")
    g = lab.geometry
    check_resident(network, g.rows, g.cols)
    g_min, g_max = _memristor_range(lab)
    lay0 = network.layers[0]
    for r in range(lay0.d_in + 1):
        for c in range(2 * lay0.d_out):
            if lab.cell_kind(r, c) != "memristor":
                raise LabInputError(
                    f"{network.name}: cell ({r}, {c}) of {lab.board.identity} holds resistors; "
                    "a memristor program needs memristor cells for every weight"
                )
    plan = coarse_levels(g_min, g_max, g.branches, tolerance=cfg.bank.coarse_tolerance)
    v_max = float(cfg.v_max_V if cfg.v_max_V is not None else DAC_HEADROOM * lab.max_row_voltage_V)
    targets = _plan_targets(
        network,
        x_reference,
        plan,
        rows=g.rows,
        cols=g.cols,
        branches=g.branches,
        v_max_V=v_max,
        settings=cfg,
    )
    v_read = float(cfg.read_voltage_V if cfg.read_voltage_V is not None else v_max)
    started = time.perf_counter()
    instrument0 = lab.instrument_time_s
    pulses0 = lab.pulses_applied
    pulse_time0 = lab.pulse_time_s
    board_id = register_board(lab, store)
    try:
        calibration_run_id = store.latest_calibration(board_id).run_id
    except NoCalibrationError:
        calibration_run_id = -1  # the banks measure their own branches
    run_settings = cfg.to_json() | {
        "devices": "memristor",
        "network": network.name,
        "sizes": list(network.sizes),
        "x_max": [targets.layer.x_max],
        "v_max_V": v_max,
        "scale_S": targets.scale_S,
        "coarse_levels_S": [float(v) for v in plan.levels_S],
        "working_range_S": [plan.target_lo_S, plan.target_hi_S],
        "calibration_run_id": calibration_run_id,
    }
    run_id = store.start_run("program", board_id, run_settings, lab.describe(), note=note)
    recorder = DeviceRecorder(store, run_id, "memprog")
    cells = [
        (int(i), 2 * int(j) + side, float(t[i, j]))
        for i, j in np.argwhere(np.isfinite(targets.pos_S))
        for side, t in ((0, targets.pos_S), (1, targets.neg_S))
    ]
    total = len(cells) + 2
    try:
        lab.open_all()
        banks: list[BankResult] = []
        for n, (r, c, target) in enumerate(cells):
            if should_stop is not None and should_stop():
                raise CancelledError(f"program run {run_id} cancelled at cell ({r}, {c})")
            if progress:
                progress(n, total, f"bank ({r}, {c})")
            banks.append(
                program_bank_rss(lab, r, c, target, cfg.bank, plan=plan, recorder=recorder)
            )
            lab.open_all()
            recorder.flush()
        layer = _layer_from_banks(targets.layer, banks)
        if progress:
            progress(len(cells), total, "DAC gains")
        dac = calibrate_row_dacs(
            lab,
            _dac_model(lab, banks),
            read_voltage_V=v_read,
            nplc=cfg.nplc,
            reads=cfg.dac_reads,
        )
        if progress:
            progress(len(cells) + 1, total, "verify")
        layer, banks, check = _verify(lab, layer, banks, (dac, cfg), recorder)
        lab.open_all()
        result = MemristorProgramResult(
            run_id=run_id,
            board_id=board_id,
            calibration_run_id=calibration_run_id,
            network=network,
            layers=[layer],
            x_max=[layer.x_max],
            dac=dac,
            checks=[check],
            wall_time_s=time.perf_counter() - started,
            instrument_time_s=lab.instrument_time_s - instrument0,
            banks=banks,
            plan=plan,
            pulses=lab.pulses_applied - pulses0,
            pulse_time_s=lab.pulse_time_s - pulse_time0,
        )
        recorder.flush()
        _save_banks(store, run_id, result)
        save_program(store, result)
        store.finish_run(run_id, instrument_time_s=result.instrument_time_s + result.pulse_time_s)
        if progress:
            progress(total, total, "done")
        return result
    except BaseException as exc:
        spent_s = lab.instrument_time_s - instrument0
        close_run_after(
            exc, store, run_id, what="program", instrument_time_s=spent_s, save=recorder.flush
        )
        lab.safe()
        raise


def resolve_program(
    lab: Lab,
    store: Store | None,
    program: MemristorProgramResult,
    *,
    settings: MemristorProgramSettings | None = None,
    note: str = "",
) -> MemristorProgramResult:
    """Drift compensation: re-read every bank, re-choose its subset for the same target
    (switches only: no pulse), verify again. With a ``store`` the compensated program is a
    new ``program`` run (``resolved_from`` the old one) that `labrss mvm` can run.

    Raises:
        LabInputError: a pulse was applied (it must not be), or the program has no banks.
    """
    cfg = settings or MemristorProgramSettings()
    cfg.validate()
    if not program.banks:
        raise LabInputError(f"program run {program.run_id} has no memristor banks to re-solve")
    started = time.perf_counter()
    instrument0 = lab.instrument_time_s
    pulses0 = lab.pulses_applied
    run_id = None
    board_id = None
    if store is not None:
        board_id = register_board(lab, store)
        meta = store.run(program.run_id).settings if program.run_id is not None else {}
        run_id = store.start_run(
            "program",
            board_id,
            dict(meta) | {"resolved_from": program.run_id},
            lab.describe(),
            note=note or f"drift compensation of program run {program.run_id}",
        )
    recorder = DeviceRecorder(store, run_id, "resolve")
    try:
        lab.open_all()
        banks = [
            resolve_bank(lab, b, b.target_S, cfg.bank, recorder=recorder) for b in program.banks
        ]
        lab.open_all()
        layer = _layer_from_banks(program.layers[0], banks)
        layer, banks, check = _verify(lab, layer, banks, (program.dac, cfg), recorder)
        lab.open_all()
        if lab.pulses_applied != pulses0:
            raise LabInputError(
                f"re-solving program run {program.run_id} applied "
                f"{lab.pulses_applied - pulses0} pulses: it must be switches only"
            )
        result = dataclasses.replace(
            program,
            run_id=run_id,
            board_id=board_id if board_id is not None else program.board_id,
            layers=[layer],
            checks=[check],
            banks=banks,
            pulses=0,
            pulse_time_s=0.0,
            wall_time_s=time.perf_counter() - started,
            instrument_time_s=lab.instrument_time_s - instrument0,
            resolved_from=program.run_id,
        )
        if store is not None and run_id is not None:
            recorder.flush()
            _save_banks(store, run_id, result)
            save_program(store, result)
            store.finish_run(run_id, instrument_time_s=result.instrument_time_s)
        return result
    except BaseException as exc:
        if store is not None and run_id is not None:
            close_run_after(exc, store, run_id, what="program")
        lab.safe()
        raise


# ---------------------------------------------------------------------------- persistence
def _save_banks(store: Store, run_id: int, result: MemristorProgramResult) -> None:
    banks = result.banks
    store.put_result(run_id, "memristor.cells", np.array([b.cell for b in banks], np.int64))
    store.put_result(run_id, "memristor.targets_S", np.array([b.target_S for b in banks]))
    store.put_result(run_id, "memristor.branch_S", result.device_states_S())
    store.put_result(
        run_id, "memristor.branch_sigma_S", np.array([b.branch_sigma_S for b in banks])
    )
    store.put_result(run_id, "memristor.masks", np.array([b.mask for b in banks]))
    store.put_result(run_id, "memristor.pulses", np.array([b.pulses for b in banks], np.int64))
    store.put_result(run_id, "memristor.measured_S", np.array([b.measured_S for b in banks]))
    store.put_result(run_id, "memristor.predicted_S", np.array([b.predicted_S for b in banks]))
    if result.plan is not None:
        store.put_result(run_id, "memristor.coarse_levels_S", result.plan.levels_S)
    store.put_value(
        run_id,
        "memristor",
        {
            "pulses": result.pulses,
            "pulse_time_s": result.pulse_time_s,
            "resolved_from": result.resolved_from,
            "working_range_S": None
            if result.plan is None
            else [result.plan.target_lo_S, result.plan.target_hi_S],
            "coarse_tolerance": None if result.plan is None else result.plan.tolerance,
        },
    )


def load_memristor_program(store: Store, run_id: int) -> MemristorProgramResult:
    """A memristor program run read back (for `labrss mvm --resolve`).

    Raises:
        ValueError: the run is not a completed memristor program run.
    """
    base = load_program(store, run_id)
    names = store.result_names(run_id)
    if "memristor.cells" not in names:
        raise ValueError(f"{store.path}: program run {run_id} is not a memristor program")
    meta = store.get_value(run_id, "memristor")
    cells = store.get_result(run_id, "memristor.cells")
    targets = store.get_result(run_id, "memristor.targets_S")
    branch = store.get_result(run_id, "memristor.branch_S")
    sigma = store.get_result(run_id, "memristor.branch_sigma_S")
    masks = store.get_result(run_id, "memristor.masks")
    pulses = store.get_result(run_id, "memristor.pulses")
    measured = store.get_result(run_id, "memristor.measured_S")
    predicted = store.get_result(run_id, "memristor.predicted_S")
    plan = None
    if "memristor.coarse_levels_S" in names and meta.get("working_range_S"):
        lo, hi = meta["working_range_S"]
        plan = CoarsePlan(
            levels_S=store.get_result(run_id, "memristor.coarse_levels_S"),
            tolerance=float(meta["coarse_tolerance"]),
            target_lo_S=float(lo),
            target_hi_S=float(hi),
        )
    banks = [
        BankResult(
            method="rss",
            cell=(int(cells[i, 0]), int(cells[i, 1])),
            target_S=float(targets[i]),
            devices=(),
            branch_S=np.asarray(branch[i], dtype=np.float64),
            branch_sigma_S=np.asarray(sigma[i], dtype=np.float64),
            mask=np.asarray(masks[i], dtype=bool),
            predicted_S=float(predicted[i]),
            measured_S=float(measured[i]),
            error=(float(measured[i]) - float(targets[i])) / float(targets[i]),
            pulses=int(pulses[i]),
            instrument_time_s=math.nan,
            plan=plan,
        )
        for i in range(len(cells))
    ]
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(ProgramResult)}
    return MemristorProgramResult(
        **fields,
        banks=banks,
        plan=plan,
        pulses=int(meta.get("pulses", 0)),
        pulse_time_s=float(meta.get("pulse_time_s", 0.0)),
        resolved_from=meta.get("resolved_from"),
    )
