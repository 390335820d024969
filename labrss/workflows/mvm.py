"""Run a programmed network on the crossbar and compare the analog MVM with the digital one.

    from labrss.workflows.mvm import MVMSettings, run_mvm
    result = run_mvm(lab, store, program_result, x_test, y_test, settings=MVMSettings())
    print(result.vs_programmed.median_rel_l2, result.vs_target.accuracy_analog)

Layer by layer, tile by tile (program, run, reprogram; outputs accumulated digitally, ReLU
between layers digital): the tile's verified masks are written, the input vectors are
applied through the row DACs (``V / gain_r``, undoing each DAC's measured gain) and the
columns are read by the SMU (``path="smu"``: precision, one column at a time at virtual
ground) or by the board's TIAs and ADCs (``path="adc"``: every column at once, for speed).

**Reference reads** (``drift_compensation``, before each batch of ``batch_size`` vectors):
a zero-input read ``I0`` (every DAC offset and TIA/ADC offset) and a read with every tile
row at the full-scale voltage, whose expected currents come from the conductances measured
at verification. Each column's current is then corrected as ``(I - I0) / k_c`` with
``k_c = (I_ref - I0) / I_expected``: the read-out's gain error (ADC) and any drift of the
board since verification (temperature) cancel, the noise does not.

The analog outputs are compared (`labrss.metrics.mvm.compare`) with (a) the target network
and (b) the programmed, quantised network (the realised weights), and layer by layer with
the programmed layer applied to the same analog input. Everything is stored with the run
(kind ``mvm``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from drivers.board import Capability
from labrss.lab import Lab
from labrss.metrics.mvm import MVMComparison, compare, relative_l2_error
from labrss.store import Store
from labrss.workflows.program import (
    CancelledError,
    ProgramResult,
    Progress,
    ShouldStop,
    board_id_for,
    close_run_after,
)

__all__ = ["PATH_DESCRIPTIONS", "MVMResult", "MVMSettings", "resolve_path", "run_mvm"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

FloatArray = npt.NDArray[np.float64]

#: What each column read-out path needs from the bench.
PATH_NEEDS: dict[str, tuple[Capability, ...]] = {
    "adc": (Capability.DACS, Capability.ADCS),
    "smu": (Capability.DACS, Capability.MVM_SMU),
    "superposition": (),
}

#: What `MVMResult.summary` says about each read-out path.
PATH_DESCRIPTIONS: dict[str, str] = {
    "adc": "analog: rows on their DACs, every column on its TIA and ADC",
    "smu": "analog: rows on their DACs, each column read by the SMU at virtual ground",
    "superposition": (
        "by superposition: the SMU drives one row at a time through cell routing and reads "
        "each column's cell; a column's current is the sum over the rows (the bench has no "
        "row DACs and column read-out)"
    ),
}


ReadOut = Literal["smu", "adc", "superposition"]


def resolve_path(path: str, lab: Lab) -> ReadOut:
    """``"auto"``: the board's ADCs where it has them and its DACs, else the SMU on each
    column with the rows on the DACs, else superposition; any other path unchanged
    (ValueError if unknown)."""
    if path != "auto":
        if path not in PATH_NEEDS:
            raise ValueError(f"read-out path {path!r}: 'auto', 'smu', 'adc' or 'superposition'")
        return cast(ReadOut, path)
    if lab.board.mvm_mode == "superposition":
        return "superposition"
    return "adc" if Capability.ADCS in lab.capabilities else "smu"


#: Times an overflowed column read-out is repeated (at `OVERRANGE_SCALE` of the row
#: voltages) before its NaN is kept.
READ_RETRIES = 2
#: Row voltage factor of a repeated read-out after an overflow.
OVERRANGE_SCALE = 0.97


@dataclass(frozen=True)
class MVMSettings:
    """How `run_mvm` reads the columns (stored with the run).

    Attributes:
        path: ``"smu"``, ``"adc"`` or ``"superposition"`` column read-out (`Lab.read_columns`;
            superposition is what a bench without DACs and column read-out runs, and says
            so in its report).
        nplc: SMU integration time for the ``"smu"`` path and the reference reads
            (None: the station's).
        drift_compensation: reference reads before each batch (see the module docstring).
        batch_size: vectors per batch (one pair of reference reads each).
    """

    path: Literal["smu", "adc", "superposition"] = "adc"
    nplc: float | None = None
    drift_compensation: bool = True
    batch_size: int = 100

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        if self.path not in PATH_NEEDS:
            raise ValueError(f"mvm setting path = {self.path!r}: 'smu', 'adc' or 'superposition'")
        if self.batch_size < 1:
            raise ValueError(f"mvm setting batch_size = {self.batch_size!r}: must be >= 1")


@dataclass
class MVMResult:
    """The analog outputs and their comparison with the digital networks.

    Attributes:
        y_analog: (B, classes) analog scores; ``y_target``, ``y_programmed``: digital.
        layer_analog: each layer's analog pre-activation output (B, d_out).
        layer_rel_l2_median: per layer, median relative L2 error of the analog layer
            against the programmed layer applied to the same (analog) input.
        vs_target, vs_programmed: `labrss.metrics.mvm.MVMComparison` of the scores.
        clipped: hidden activations beyond the layer's ``x_max`` (clipped to it).
        column_gain: per layer and tile, the (batches, columns) reference-read gains k_c.
    """

    run_id: int | None
    program_run_id: int | None
    settings: MVMSettings
    x: FloatArray
    labels: npt.NDArray[np.int64] | None
    y_analog: FloatArray
    y_target: FloatArray
    y_programmed: FloatArray
    layer_analog: list[FloatArray]
    layer_rel_l2_median: list[float]
    vs_target: MVMComparison
    vs_programmed: MVMComparison
    clipped: int
    column_gain: list[list[FloatArray]] = field(default_factory=list)
    wall_time_s: float = math.nan
    instrument_time_s: float = math.nan

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures."""

        def acc(v: float | None) -> float | None:
            return None if v is None else float(v)

        return {
            "run_id": self.run_id,
            "program_run_id": self.program_run_id,
            "path": self.settings.path,
            "mvm": PATH_DESCRIPTIONS.get(self.settings.path, self.settings.path),
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
            "wall_time_s": self.wall_time_s,
            "instrument_time_s": self.instrument_time_s,
        }


def _tile_currents(
    lab: Lab,
    volts: FloatArray,
    g_measured: FloatArray,
    gain: FloatArray,
    v_ref: FloatArray,
    *,
    settings: MVMSettings,
    tick: Callable[[], None],
) -> tuple[FloatArray, list[FloatArray]]:
    """Column currents (B, n_columns) of one programmed tile for row voltages (B, n_rows)."""
    rows = lab.geometry.rows
    n_rows, n_cols = g_measured.shape
    nplc = settings.nplc if settings.path != "adc" else None
    out = np.empty((volts.shape[0], n_cols))
    gains: list[FloatArray] = []

    def read_once(v: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        full = np.zeros(rows)
        full[:n_rows] = v / gain[:n_rows]
        lab.apply_rows(full)
        reading = lab.read_columns(settings.path, nplc=nplc)
        cur = np.asarray(reading.currents_A[:n_cols], dtype=np.float64)
        return cur, np.asarray(reading.valid[:n_cols], dtype=bool)

    def read(v: FloatArray) -> FloatArray:
        cur, valid = read_once(v)
        for _ in range(READ_RETRIES):
            if valid.all():
                break
            # A column current just below a range's 105 % can overflow once the meter's gain
            # error and noise are added (autorange chose on the true value); reading the
            # same column again at OVERRANGE_SCALE of the voltages and scaling back stays
            # linear (the DAC offsets, ~0.5 mV, then carry a 3 % error: ~1e-5 of I).
            log.info(
                "column read-out overflowed (columns %s); reading at %.2f x V",
                np.flatnonzero(~valid).tolist(),
                OVERRANGE_SCALE,
            )
            again, ok = read_once(v * OVERRANGE_SCALE)
            fix = ~valid & ok
            cur[fix] = again[fix] / OVERRANGE_SCALE
            valid = valid | fix
        return np.where(valid, cur, math.nan)

    for start in range(0, volts.shape[0], settings.batch_size):
        stop = min(start + settings.batch_size, volts.shape[0])
        i0 = np.zeros(n_cols)
        k = np.ones(n_cols)
        if settings.drift_compensation:
            i0 = read(np.zeros(n_rows))
            expected = v_ref @ g_measured
            k = (read(v_ref) - i0) / expected
            gains.append(k)
        for b in range(start, stop):
            out[b] = (read(volts[b]) - i0) / k
            tick()
    lab.apply_rows(np.zeros(rows))
    return out, gains


def run_mvm(
    lab: Lab,
    store: Store | None,
    program: ProgramResult,
    x: npt.ArrayLike,
    labels: npt.ArrayLike | None = None,
    *,
    target: Any = None,
    settings: MVMSettings | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    note: str = "",
) -> MVMResult:
    """Run ``x`` (B, d_in) through the programmed network on the board; compare; store.

    ``target`` is the target `Network` (default: the network the program was made for).
    With a ``store``, the run (kind ``mvm``) holds the inputs, every layer's analog
    outputs and raw tile currents, the reference gains and the comparison.
    The board is left with every switch open and the DACs at 0 V.
    """
    cfg = settings or MVMSettings()
    cfg.validate()
    lab.require(*PATH_NEEDS[cfg.path], needed_by=f"run_mvm with path = {cfg.path!r}")
    started = time.perf_counter()
    instrument0 = lab.instrument_time_s
    xs = np.asarray(x, dtype=np.float64)
    if xs.ndim != 2 or xs.shape[1] != program.layers[0].plan.d_in:
        raise ValueError(
            f"inputs shape {xs.shape}, expected (B, {program.layers[0].plan.d_in}) for "
            f"{program.network.name}"
        )
    if not np.isfinite(xs).all():
        b, i = (int(v) for v in np.argwhere(~np.isfinite(xs))[0])
        raise ValueError(f"input[{b}, {i}] = {float(xs[b, i])!r}: inputs must be finite")
    ys = None if labels is None else np.asarray(labels, dtype=np.int64)
    if ys is not None and ys.shape != (xs.shape[0],):
        raise ValueError(f"labels shape {ys.shape}, expected ({xs.shape[0]},)")
    g = lab.geometry
    for lay in program.layers:
        if (lay.plan.board_rows, lay.plan.board_cols) != (g.rows, g.cols):
            raise ValueError(
                f"{lay.name} was programmed for a {lay.plan.board_rows}x{lay.plan.board_cols} "
                f"board, this board is {g.rows}x{g.cols}"
            )
    target_net = program.network if target is None else target
    checks = {(c.layer, c.tile): c for c in program.checks}
    run_id = None
    if store is not None:
        board_id = board_id_for(lab, store)
        run_id = store.start_run(
            "mvm",
            board_id,
            dataclasses.asdict(cfg)
            | {"program_run_id": program.run_id, "vectors": int(xs.shape[0])},
            lab.describe(),
            note=note,
        )
    total = xs.shape[0] * sum(lay.plan.n_tiles for lay in program.layers)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None and (done % 10 == 0 or done == total):
            progress(done, total, "MVM")

    try:
        h = xs
        clipped = 0
        layer_analog: list[FloatArray] = []
        layer_err: list[float] = []
        column_gain: list[list[FloatArray]] = []
        for li, lay in enumerate(program.layers):
            over = np.abs(h) > lay.x_max
            clipped += int(over.sum())
            xin = np.clip(h, -lay.x_max, lay.x_max)
            volts = lay.input_voltages(xin)
            currents: list[FloatArray] = []
            gains_l: list[FloatArray] = []
            for t in lay.plan.tiles:
                if should_stop is not None and should_stop():
                    raise CancelledError(f"mvm cancelled at layer {li} tile {t.index}")
                masks = np.zeros((g.rows, g.cols, g.branches), dtype=bool)
                masks[: t.n_rows, : t.n_columns] = lay.tile_masks(t.index)
                lab.set_masks(masks)
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
                cur, gains = _tile_currents(
                    lab, volts[t.index], g_meas, program.dac.gain, v_ref, settings=cfg, tick=tick
                )
                currents.append(cur)
                gains_l.append(np.asarray(gains))
                if store is not None and run_id is not None:
                    store.put_result(run_id, f"currents.L{li}T{t.index}", cur)
                    store.heartbeat(run_id)
            y = lay.outputs_from_currents(currents)
            layer_analog.append(y)
            column_gain.append(gains_l)
            layer_err.append(float(np.median(relative_l2_error(y, lay.effective(xin)))))
            h = np.maximum(y, 0.0) if li < len(program.layers) - 1 else y
        lab.open_all()
        y_analog = h
        y_target = target_net.forward(xs)
        y_prog = program.network_programmed.forward(xs)
        result = MVMResult(
            run_id=run_id,
            program_run_id=program.run_id,
            settings=cfg,
            x=xs,
            labels=ys,
            y_analog=y_analog,
            y_target=y_target,
            y_programmed=y_prog,
            layer_analog=layer_analog,
            layer_rel_l2_median=layer_err,
            vs_target=compare(y_analog, y_target, ys),
            vs_programmed=compare(y_analog, y_prog, ys),
            clipped=clipped,
            column_gain=column_gain,
            wall_time_s=time.perf_counter() - started,
            instrument_time_s=lab.instrument_time_s - instrument0,
        )
        if store is not None and run_id is not None:
            _save(store, run_id, result)
            store.finish_run(run_id, instrument_time_s=result.instrument_time_s)
        return result
    except BaseException as exc:
        if store is not None and run_id is not None:
            spent_s = lab.instrument_time_s - instrument0
            close_run_after(exc, store, run_id, instrument_time_s=spent_s, what="mvm")
        raise


def _save(store: Store, run_id: int, result: MVMResult) -> None:
    store.put_result(run_id, "x", result.x)
    if result.labels is not None:
        store.put_result(run_id, "labels", result.labels)
    store.put_result(run_id, "y_analog", result.y_analog)
    store.put_result(run_id, "y_target", result.y_target)
    store.put_result(run_id, "y_programmed", result.y_programmed)
    store.put_result(run_id, "rel_l2_vs_programmed", result.vs_programmed.rel_l2)
    store.put_result(run_id, "rel_l2_vs_target", result.vs_target.rel_l2)
    for li, y in enumerate(result.layer_analog):
        store.put_result(run_id, f"layer{li}.y_analog", y)
        for ti, k in enumerate(result.column_gain[li]):
            store.put_result(run_id, f"gain.L{li}T{ti}", k)
    store.put_value(run_id, "summary", result.summary())
