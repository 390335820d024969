"""CNNs on the crossbar: every conv and dense layer as tiled MVMs, each tile programmed once.

    from labrss.workflows.cnn import program_cnn, run_cnn_mvm
    with Lab() as lab, Store(path) as store:
        prog = program_cnn(lab, store, network, x_train)      # needs a calibration
        res = run_cnn_mvm(lab, store, prog, x_test, y_test)
        print(res.summary())

A convolution is a matrix product over im2col patches (`labrss.networks.layers.Conv`):
its kernel matrix ``(c_in * prod(kernel), c_out)`` plus the bias row is mapped and tiled
like a dense layer (`labrss.mapping.map_layer`), and every patch of every input is one
MVM through it. This module adds the CNN to the existing machinery without changing it:

* **Programming** (`program_cnn`): the input range ``x_max`` of each matrix layer is
  ``x_margin`` times the largest |patch entry| (|input| for dense) of ``x_reference``
  run through the target network; each layer is mapped with the board's latest
  calibration, the row DACs' gains measured, and every tile programmed, verified and
  repaired by `labrss.workflows.program.program_tile` (the same code as MLPs). The run
  (kind ``program``) stores every verification reading and each tile's predicted vs
  measured conductances.
* **MVM** (`run_cnn_mvm`): layer by layer, **tile by tile**: a tile's masks are written
  once and then *every patch of every input vector* is streamed through it (with the
  reference reads of `labrss.workflows.mvm`, per batch of ``batch_size`` vectors)
  before the next tile is programmed: a tile is never programmed twice per batch.
  Outputs of the row blocks are accumulated digitally; ReLU, flatten and reshape are
  digital. The analog scores are compared with the target network and with the
  programmed (quantised) network, and each layer's analog output with the programmed
  layer applied to the same analog input (median relative L2 error per layer).

Cost: ``sum over layers of tiles x (inputs x positions)`` MVMs, e.g. the MNIST-1D CNN on
a 32 x 32 board: 2 + 6 + 6 + 4 tiles and 19 + 10 + 5 + 1 vectors per signal.
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

from labrss.lab import Lab
from labrss.mapping.conductance import MappedLayer
from labrss.metrics.mvm import MVMComparison, compare, relative_l2_error
from labrss.networks.layers import Conv, Flatten, ReLU, Reshape
from labrss.networks.model import Layer
from labrss.networks.sequential import MatrixLayer, Op, SequentialNetwork
from labrss.store import Store
from labrss.workflows.mvm import MVMSettings, _tile_currents
from labrss.workflows.program import (
    DAC_HEADROOM,
    CancelledError,
    ElementModel,
    ProgramSettings,
    Progress,
    RowDacCalibration,
    ShouldStop,
    TileCheck,
    board_id_for,
    calibrate_row_dacs,
    close_run_after,
    element_model,
    load_mapped_program,
    map_weights,
    program_tile,
    save_mapped_program,
)

__all__ = [
    "CNNMVMResult",
    "CNNProgramResult",
    "layer_vectors",
    "load_cnn_program",
    "program_cnn",
    "run_cnn_mvm",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

FloatArray = npt.NDArray[np.float64]


def layer_vectors(network: SequentialNetwork, op_index: int, h: np.ndarray) -> np.ndarray:
    """The vectors a matrix layer multiplies for activations ``h`` ``(B, *shape)``:
    im2col patches ``(B * positions, P)`` of a convolution, ``h`` itself for dense."""
    op = network.ops[op_index]
    if isinstance(op, Conv):
        p = op.patches(h)
        return p.reshape(-1, op.patch_size)
    return np.asarray(h, dtype=np.float64).reshape(h.shape[0], -1)


def _fold(network: SequentialNetwork, op_index: int, y: np.ndarray, batch: int) -> np.ndarray:
    """Matrix-layer outputs ``(B * positions, O)`` back to activations ``(B, *shape)``."""
    op = network.ops[op_index]
    shape = network.shapes[op_index + 1]
    if isinstance(op, Conv):
        return op.fold(y.reshape(batch, *shape[1:], shape[0]))
    return y.reshape(batch, *shape)


@dataclass
class CNNProgramResult:
    """A CNN programmed on the board: one `MappedLayer` per conv/dense layer."""

    run_id: int | None
    board_id: int | None
    calibration_run_id: int
    network: SequentialNetwork
    matrices: list[MatrixLayer]
    layers: list[MappedLayer]
    x_max: list[float]
    dac: RowDacCalibration
    checks: list[TileCheck] = field(default_factory=list)
    wall_time_s: float = math.nan
    instrument_time_s: float = math.nan

    @property
    def network_programmed(self) -> SequentialNetwork:
        """The programmed, quantised network: each matrix replaced by its realised one."""
        ops: list[Op] = list(self.network.ops)
        for m, lay in zip(self.matrices, self.layers, strict=True):
            op = ops[m.op_index]
            if isinstance(op, Conv):
                w = lay.weights_eff.T.reshape(op.weights.shape)
                ops[m.op_index] = Conv(w, lay.bias_eff, op.stride, op.padding)
            else:
                ops[m.op_index] = Layer(lay.weights_eff, lay.bias_eff)
        return SequentialNetwork(
            ops, self.network.input_shape, name=f"{self.network.name} (programmed)"
        )

    @property
    def tiles(self) -> int:
        """Tiles programmed (over every layer)."""
        return sum(lay.plan.n_tiles for lay in self.layers)

    @property
    def cells_programmed(self) -> int:
        """Cells with at least one closed switch, over every tile."""
        return int(sum(int(c.programmed.sum()) for c in self.checks))

    @property
    def cells_used(self) -> int:
        """Board cells the tiles occupy (rows x columns, summed over tiles)."""
        return int(sum(c.predicted_S.size for c in self.checks))

    @property
    def cells_repaired(self) -> int:
        """Cells that missed at first verification and passed after repair."""
        return int(sum(int(c.repaired.sum()) for c in self.checks))

    @property
    def cells_missed(self) -> int:
        """Cells still outside tolerance after every repair round."""
        return int(sum(int(c.miss.sum()) for c in self.checks))

    def predicted_vs_measured(self) -> tuple[FloatArray, FloatArray]:
        """Programmed cells' predicted and measured conductance (S), flattened."""
        if not self.checks:
            return np.zeros(0), np.zeros(0)
        on = np.concatenate([c.programmed.ravel() for c in self.checks])
        pred = np.concatenate([c.predicted_S.ravel() for c in self.checks])[on]
        meas = np.concatenate([c.measured_S.ravel() for c in self.checks])[on]
        return pred, meas

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts and times."""
        pred, meas = self.predicted_vs_measured()
        rel = np.abs(meas / pred - 1.0) if pred.size else np.zeros(0)
        return {
            "run_id": self.run_id,
            "calibration_run_id": self.calibration_run_id,
            "network": self.network.name,
            "layers": len(self.layers),
            "tiles": self.tiles,
            "tiles_per_layer": [lay.plan.n_tiles for lay in self.layers],
            "cells_used": self.cells_used,
            "cells_programmed": self.cells_programmed,
            "cells_repaired": self.cells_repaired,
            "cells_missed": self.cells_missed,
            "median_rel_cell_error": float(np.median(rel)) if rel.size else None,
            "max_weight_rel_error": [lay.max_rel_error for lay in self.layers],
            "wall_time_s": self.wall_time_s,
            "instrument_time_s": self.instrument_time_s,
        }


def map_cnn(
    network: SequentialNetwork,
    model: ElementModel,
    x_reference: npt.ArrayLike,
    *,
    v_max_V: float,
    settings: ProgramSettings,
) -> tuple[list[MatrixLayer], list[MappedLayer], list[float]]:
    """Map every conv and dense layer of ``network`` (nothing is switched)."""
    acts = network.activations(x_reference)
    matrices = network.matrix_layers()
    layers: list[MappedLayer] = []
    x_max: list[float] = []
    for m in matrices:
        mapped, xm = map_weights(
            m.weights,
            m.bias,
            layer_vectors(network, m.op_index, acts[m.op_index]),
            model,
            v_max_V=v_max_V,
            settings=settings,
            name=f"{network.name} op {m.op_index} ({m.kind} {m.d_in}x{m.d_out})",
        )
        layers.append(mapped)
        x_max.append(xm)
    return matrices, layers, x_max


def program_cnn(
    lab: Lab,
    store: Store,
    network: SequentialNetwork,
    x_reference: npt.ArrayLike,
    *,
    settings: ProgramSettings | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    note: str = "",
) -> CNNProgramResult:
    """Map, program, verify and repair every tile of every conv and dense layer.

    Uses the board's latest calibration in ``store``; every layer is mapped before
    anything is switched. The run (kind ``program``) stores every verification reading
    and each tile's check; the board is left with every switch open.
    """
    cfg = settings or ProgramSettings()
    cfg.validate()
    if cfg.ir_drop:
        raise ValueError(
            "program setting ir_drop = True: IR-drop-aware programming is implemented for "
            "dense networks (program_network), not yet for CNNs (program_cnn)"
        )
    started = time.perf_counter()
    instrument0 = lab.instrument_time_s
    board_id = board_id_for(lab, store)
    calibration = store.latest_calibration(board_id)
    model = element_model(calibration)
    v_max = float(
        cfg.v_max_V
        if cfg.v_max_V is not None
        else DAC_HEADROOM * lab.station.limits.max_dac_voltage_V
    )
    matrices, layers, x_max = map_cnn(network, model, x_reference, v_max_V=v_max, settings=cfg)
    v_read = float(cfg.read_voltage_V if cfg.read_voltage_V is not None else v_max)
    total = 1 + sum(lay.plan.n_tiles for lay in layers)
    run_settings = dataclasses.asdict(cfg) | {
        "network": network.name,
        "cnn": network.describe(),
        "x_max": x_max,
        "v_max_V": v_max,
        "calibration_run_id": calibration.run_id,
    }
    run_id = store.start_run("program", board_id, run_settings, lab.describe(), note=note)
    try:
        if progress:
            progress(0, total, "DAC gains")
        dac = calibrate_row_dacs(lab, model, read_voltage_V=v_read, nplc=cfg.nplc)
        result = CNNProgramResult(
            run_id=run_id,
            board_id=board_id,
            calibration_run_id=calibration.run_id,
            network=network,
            matrices=matrices,
            layers=layers,
            x_max=x_max,
            dac=dac,
        )
        done = 1
        for li in range(len(layers)):
            for ti in range(layers[li].plan.n_tiles):
                if should_stop is not None and should_stop():
                    raise CancelledError(f"program run {run_id} cancelled at layer {li} tile {ti}")
                if progress:
                    progress(done, total, f"layer {li} tile {ti}")
                layers[li], model, check, readings = program_tile(
                    lab, layers[li], li, ti, model=model, dac=dac, settings=cfg
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
        _save_program(store, result)
        store.finish_run(run_id, instrument_time_s=result.instrument_time_s)
        return result
    except BaseException as exc:
        spent_s = lab.instrument_time_s - instrument0
        close_run_after(exc, store, run_id, instrument_time_s=spent_s, what="program")
        lab.safe()
        raise


def _save_program(store: Store, result: CNNProgramResult) -> None:
    """The MLP's stored layout (`save_mapped_program`) plus the network itself: every
    op's kind and settings in the ``program`` value, weights and biases as arrays."""
    run = result.run_id
    assert run is not None
    ops: list[dict[str, Any]] = []
    for i, op in enumerate(result.network.ops):
        if isinstance(op, Conv):
            ops.append(
                {"op": "conv", "stride": list(op.stride), "padding": [list(p) for p in op.padding]}
            )
        elif isinstance(op, Layer):
            ops.append({"op": "dense"})
        elif isinstance(op, ReLU):
            ops.append({"op": "relu"})
        elif isinstance(op, Flatten):
            ops.append({"op": "flatten"})
        else:
            ops.append({"op": "reshape", "shape": list(op.shape)})
        if isinstance(op, Conv | Layer):
            store.put_result(run, f"cnn.op{i}.weights", op.weights)
            store.put_result(run, f"cnn.op{i}.bias", op.bias)
    save_mapped_program(
        store,
        run,
        network_name=result.network.name,
        x_max=result.x_max,
        layers=result.layers,
        dac=result.dac,
        checks=result.checks,
        summary=result.summary(),
        meta_extra={
            "cnn": True,
            "ops": ops,
            "input_shape": list(result.network.input_shape),
            "matrix_ops": [m.op_index for m in result.matrices],
        },
    )


def load_cnn_program(store: Store, run_id: int) -> CNNProgramResult:
    """A stored CNN program run (`program_cnn`) read back, ready for `run_cnn_mvm`.

    Raises ValueError naming the store and run when it is not a completed CNN program
    run (an MLP run: `labrss.workflows.program.load_program`; a CNN run stored before
    the network was: program it again).
    """
    mapped = load_mapped_program(store, run_id)
    meta = mapped.meta
    if not meta.get("cnn"):
        raise ValueError(
            f"{store.path}: program run {run_id} holds no CNN (an MLP run, or a CNN run "
            "stored before CNN runs kept their network: program it again)"
        )
    ops: list[Op] = []
    for i, spec in enumerate(meta["ops"]):
        kind = spec["op"]
        if kind in ("conv", "dense"):
            w = store.get_result(run_id, f"cnn.op{i}.weights")
            b = store.get_result(run_id, f"cnn.op{i}.bias")
            if kind == "conv":
                padding = tuple((int(p0), int(p1)) for p0, p1 in spec["padding"])
                ops.append(Conv(w, b, tuple(int(v) for v in spec["stride"]), padding))
            else:
                ops.append(Layer(w, b))
        elif kind == "relu":
            ops.append(ReLU())
        elif kind == "flatten":
            ops.append(Flatten())
        elif kind == "reshape":
            ops.append(Reshape(tuple(int(v) for v in spec["shape"])))
        else:
            raise ValueError(f"{store.path}: program run {run_id}: unknown op {kind!r}")
    network = SequentialNetwork(ops, meta["input_shape"], name=str(meta["network"]))
    matrices = network.matrix_layers()
    if [m.op_index for m in matrices] != [int(v) for v in meta["matrix_ops"]]:
        raise ValueError(f"{store.path}: program run {run_id}: layers and network disagree")
    info = store.run(run_id)
    return CNNProgramResult(
        run_id=run_id,
        board_id=info.board_id,
        calibration_run_id=int(info.settings.get("calibration_run_id", -1)),
        network=network,
        matrices=matrices,
        layers=mapped.layers,
        x_max=[float(v) for v in meta["x_max"]],
        dac=mapped.dac,
        checks=mapped.checks,
        wall_time_s=float(info.wall_time_s or math.nan),
        instrument_time_s=float(info.instrument_time_s or math.nan),
    )


@dataclass
class CNNMVMResult:
    """The analog CNN outputs and their comparison with the digital networks.

    ``layer_rel_l2_median``: per matrix layer, the median relative L2 error of the
    analog layer output against the programmed layer on the same (analog) input vectors.
    ``mvms``: MVMs run (vectors streamed x tiles, reference reads not counted).
    """

    run_id: int | None
    settings: MVMSettings
    x: FloatArray
    labels: npt.NDArray[np.int64] | None
    y_analog: FloatArray
    y_target: FloatArray
    y_programmed: FloatArray
    layer_rel_l2_median: list[float]
    vs_target: MVMComparison
    vs_programmed: MVMComparison
    clipped: int
    mvms: int
    tile_programmings: int
    wall_time_s: float = math.nan
    instrument_time_s: float = math.nan

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures (the keys of `labrss.workflows.mvm.MVMResult.summary`)."""

        def acc(v: float | None) -> float | None:
            return None if v is None else float(v)

        return {
            "run_id": self.run_id,
            "path": self.settings.path,
            "vectors": int(self.x.shape[0]),
            "median_rel_l2_error": self.vs_programmed.median_rel_l2,
            "median_rel_l2_error_vs_target": self.vs_target.median_rel_l2,
            "snr_db_median": self.vs_programmed.snr_db_median,
            "argmax_agreement": self.vs_programmed.argmax_agreement,
            "accuracy_digital": acc(self.vs_target.accuracy_digital),
            "accuracy_programmed": acc(self.vs_programmed.accuracy_digital),
            "accuracy_analog": acc(self.vs_target.accuracy_analog),
            "layer_rel_l2_median": self.layer_rel_l2_median,
            "clipped": self.clipped,
            "mvms": self.mvms,
            "tile_programmings": self.tile_programmings,
            "wall_time_s": self.wall_time_s,
            "instrument_time_s": self.instrument_time_s,
        }


def run_cnn_mvm(
    lab: Lab,
    store: Store | None,
    program: CNNProgramResult,
    x: npt.ArrayLike,
    labels: npt.ArrayLike | None = None,
    *,
    settings: MVMSettings | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    note: str = "",
) -> CNNMVMResult:
    """Run the inputs ``x`` through the programmed CNN on the board (module docstring).

    With a ``store`` the run (kind ``mvm``) holds the inputs, the analog scores and the
    summary. The board is left with every switch open and the DACs at 0 V.
    """
    cfg = settings or MVMSettings()
    cfg.validate()
    started = time.perf_counter()
    instrument0 = lab.instrument_time_s
    net = program.network
    xs = net.check_input(x)
    if not np.isfinite(xs).all():
        raise ValueError("inputs must be finite")
    batch = xs.shape[0]
    ys = None if labels is None else np.asarray(labels, dtype=np.int64)
    if ys is not None and ys.shape != (batch,):
        raise ValueError(f"labels shape {ys.shape}, expected ({batch},)")
    g = lab.geometry
    for lay in program.layers:
        if (lay.plan.board_rows, lay.plan.board_cols) != (g.rows, g.cols):
            raise ValueError(
                f"{lay.name} was programmed for a {lay.plan.board_rows}x{lay.plan.board_cols} "
                f"board, this board is {g.rows}x{g.cols}"
            )
    checks = {(c.layer, c.tile): c for c in program.checks}
    by_op = {m.op_index: i for i, m in enumerate(program.matrices)}
    run_id = None
    if store is not None:
        run_id = store.start_run(
            "mvm",
            board_id_for(lab, store),
            dataclasses.asdict(cfg) | {"program_run_id": program.run_id, "vectors": batch},
            lab.describe(),
            note=note,
        )
    total = sum(  # MVMs, for the progress bar
        batch * m.positions * lay.plan.n_tiles
        for m, lay in zip(program.matrices, program.layers, strict=True)
    )
    h = xs
    done = 0
    mvms = 0
    programmings = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None and (done % 100 == 0 or done == total):
            progress(done, total, "CNN MVM")

    try:
        clipped = 0
        layer_err: list[float] = []
        for index, op in enumerate(net.ops):
            if index not in by_op:
                h = op(h)
                continue
            li = by_op[index]
            lay = program.layers[li]
            vec = layer_vectors(net, index, h)
            clipped += int((np.abs(vec) > lay.x_max).sum())
            vin = np.clip(vec, -lay.x_max, lay.x_max)
            volts = lay.input_voltages(vin)
            currents: list[FloatArray] = []
            for t in lay.plan.tiles:
                if should_stop is not None and should_stop():
                    raise CancelledError(f"CNN MVM cancelled at layer {li} tile {t.index}")
                masks = np.zeros((g.rows, g.cols, g.branches), dtype=bool)
                masks[: t.n_rows, : t.n_columns] = lay.tile_masks(t.index)
                lab.set_masks(masks)  # once per tile: every vector streams through it
                programmings += 1
                check = checks.get((li, t.index))
                g_pred = lay.tile_conductances(t.index)
                g_meas = (
                    g_pred
                    if check is None
                    else np.where(np.isfinite(check.measured_S), check.measured_S, g_pred)
                )
                v_ref = np.full(t.n_rows, lay.v_max_V)
                if t.has_bias:
                    v_ref[-1] = abs(lay.bias_V)
                cur, _ = _tile_currents(
                    lab, volts[t.index], g_meas, program.dac.gain, v_ref, settings=cfg, tick=tick
                )
                mvms += cur.shape[0]
                currents.append(cur)
                if store is not None and run_id is not None:
                    store.heartbeat(run_id)
            y = lay.outputs_from_currents(currents)
            layer_err.append(float(np.median(relative_l2_error(y, lay.effective(vin)))))
            h = _fold(net, index, y, batch)
        lab.open_all()
        y_analog = h.reshape(batch, -1)
        y_target = net.scores(xs)
        y_prog = program.network_programmed.scores(xs)
        result = CNNMVMResult(
            run_id=run_id,
            settings=cfg,
            x=xs,
            labels=ys,
            y_analog=y_analog,
            y_target=y_target,
            y_programmed=y_prog,
            layer_rel_l2_median=layer_err,
            vs_target=compare(y_analog, y_target, ys),
            vs_programmed=compare(y_analog, y_prog, ys),
            clipped=clipped,
            mvms=mvms,
            tile_programmings=programmings,
            wall_time_s=time.perf_counter() - started,
            instrument_time_s=lab.instrument_time_s - instrument0,
        )
        if store is not None and run_id is not None:
            store.put_result(run_id, "x", xs.reshape(batch, -1))
            if ys is not None:
                store.put_result(run_id, "labels", ys)
            store.put_result(run_id, "y_analog", y_analog)
            store.put_result(run_id, "y_target", y_target)
            store.put_result(run_id, "y_programmed", y_prog)
            store.put_value(run_id, "summary", result.summary())
            store.finish_run(run_id, instrument_time_s=result.instrument_time_s)
        return result
    except BaseException as exc:
        if store is not None and run_id is not None:
            spent_s = lab.instrument_time_s - instrument0
            close_run_after(exc, store, run_id, instrument_time_s=spent_s, what="mvm")
        raise
