"""The Program tab: a network (the built-in digits MLP, the built-in MNIST-1D and digits
CNNs, or a weights file: .npz, ONNX MLP or ONNX CNN), SLTH pruning with the pruned
network's own accuracy (MLPs), mapping options, Solve (the predicted weight error of
every logical cell), Program and verify (live progress, Cancel between tiles), predicted
vs measured with the repaired and missed cells marked.

Every step is a workflow function run in the bench worker: `labrss.networks.digits.
train_digits_mlp` / `labrss.networks.weights_file.load_weights` / `labrss.networks.
onnx_file.load_onnx`, `labrss.workflows.prune.prune_network` (the batch engine),
`labrss.workflows.program.map_network` and `program_network` (what `labrss program`
runs) for an MLP, `labrss.workflows.cnn.map_cnn` and `program_cnn` (what `labrss demo
--network` runs) for a CNN. The programmed result is published on the result stream
(``"program_done"``) for the MVM tab.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labrss.gui.plot_export import PlotData, PlotPanel, style_plot
from labrss.gui.result_stream import ResultEvent
from labrss.gui.session import Session
from labrss.gui.tabs.base import LabTab, TabContext
from labrss.gui.widgets.heatmap import CrossbarHeatMap
from labrss.gui.workers import Job, JobCancelledError, JobContext
from labrss.mapping.conductance import MappedLayer
from labrss.metrics.mvm import accuracy
from labrss.networks.model import Network
from labrss.networks.sequential import SequentialNetwork
from labrss.slth.pensia import SLTHResult
from labrss.store import Store
from labrss.workflows.cnn import CNNProgramResult, map_cnn, program_cnn
from labrss.workflows.program import (
    DAC_HEADROOM,
    CancelledError,
    ProgramResult,
    ProgramSettings,
    TileCheck,
    board_id_for,
    element_model,
    map_network,
    program_network,
)
from labrss.workflows.prune import PruneSettings, engine_for, prune_network

log = logging.getLogger(__name__)

DIGITS = "digits MLP (built-in)"
MNIST1D_CNN = "MNIST-1D CNN (built-in)"
DIGITS_CNN = "digits CNN (built-in)"
WEIGHTS_FILE = "weights file (.npz or .onnx)"
#: Built-in CNNs by source name: the `labrss.workflows.cnn_demo.cnn_data` names.
BUILTIN_CNNS = {MNIST1D_CNN: "mnist1d-cnn", DIGITS_CNN: "digits-cnn"}
#: Anything the tab programs: a dense MLP or a CNN.
AnyNetwork = Network | SequentialNetwork
AnyProgram = ProgramResult | CNNProgramResult


@dataclass(frozen=True)
class NetworkSource:
    """The network to program, its reference inputs (input ranges) and its test set.

    ``network`` is a dense `Network` or a CNN (`SequentialNetwork`); ``x_test``/
    ``y_test`` are None for a weights file without a matching test set;
    ``test_accuracy`` is the target network's own accuracy on it (NaN without labels).
    """

    network: AnyNetwork
    x_reference: NDArray[np.float64]
    x_test: NDArray[np.float64] | None
    y_test: NDArray[np.int64] | None
    test_accuracy: float
    description: str


@dataclass(frozen=True)
class SLTHOutcome:
    """A pruned random network and its own test accuracy (NaN without labels)."""

    ticket: SLTHResult
    test_accuracy: float


def load_network(
    source: str, *, hidden: int, seed: int, weights: str = "", reference: str = ""
) -> NetworkSource:
    """The digits MLP 64-``hidden``-10 (seeded), a built-in CNN with its training inputs as
    reference and its test set, or a weights file with its reference .npy.

    Raises ValueError / `labrss.networks.weights_file.WeightsFileError` /
    `labrss.networks.onnx_file.OnnxImportError` / OSError naming the file when it cannot
    be read.
    """
    if source in BUILTIN_CNNS:
        from labrss.workflows.cnn_demo import cnn_data

        net, x_train, x_cnn, y_cnn = cnn_data(BUILTIN_CNNS[source])
        acc = net.accuracy(x_cnn, y_cnn)
        return NetworkSource(
            net,
            np.asarray(x_train, dtype=np.float64),
            np.asarray(x_cnn, dtype=np.float64),
            np.asarray(y_cnn, dtype=np.int64),
            acc,
            f"{net.name} (CNN, {net.n_parameters} parameters): test accuracy {100 * acc:.2f} %",
        )
    if source == DIGITS:
        from labrss.networks.digits import train_digits_mlp

        model = train_digits_mlp((hidden,), seed)
        d = model.data
        return NetworkSource(
            model.network,
            d.x_train,
            d.x_test,
            d.y_test,
            model.test_accuracy,
            f"{model.network.name}: test accuracy {100 * model.test_accuracy:.2f} %",
        )
    from labrss.networks.weights_file import load_weights

    if not weights:
        raise ValueError("choose a weights file (.npz or .onnx)")
    if not reference:
        raise ValueError(f"{weights}: a reference inputs file (.npy, (B, d_in)) is needed")
    if weights.lower().endswith(".onnx"):
        from labrss.networks.onnx_file import load_onnx

        seq = load_onnx(weights)
        mlp = seq.to_network()
        if mlp is None:
            return _cnn_file_source(seq, weights, reference)
        network = mlp
    else:
        network = load_weights(weights)
    x_ref = np.asarray(np.load(Path(reference), allow_pickle=False), dtype=np.float64)
    if x_ref.ndim != 2 or x_ref.shape[1] != network.layers[0].d_in:
        raise ValueError(
            f"{reference}: reference inputs of shape {x_ref.shape}, expected "
            f"(B, {network.layers[0].d_in}) for {network.name}"
        )
    x_test: NDArray[np.float64] | None = None
    y_test: NDArray[np.int64] | None = None
    acc = float("nan")
    if network.layers[0].d_in == 64 and network.layers[-1].d_out == 10:
        from labrss.networks.digits import load_digits_split

        data = load_digits_split(seed)
        x_test, y_test = data.x_test, data.y_test
        acc = accuracy(network.forward(x_test), y_test)
    return NetworkSource(network, x_ref, x_test, y_test, acc, f"{network.name} from {weights}")


def _cnn_file_source(net: SequentialNetwork, weights: str, reference: str) -> NetworkSource:
    """An ONNX CNN with its reference inputs ``(B, *input_shape)`` (or flat); the test set
    of MNIST-1D or digits when the network takes their inputs and gives 10 scores."""
    x_ref = np.asarray(np.load(Path(reference), allow_pickle=False), dtype=np.float64)
    try:
        net.check_input(x_ref)
    except ValueError as exc:
        raise ValueError(f"{reference}: reference inputs for {weights}: {exc}") from None
    x_test: NDArray[np.float64] | None = None
    y_test: NDArray[np.int64] | None = None
    acc = float("nan")
    if net.d_out == 10 and net.d_in in (40, 64):
        from labrss.workflows.cnn_demo import cnn_data

        _, _, xt, yt = cnn_data("mnist1d-cnn" if net.d_in == 40 else "digits-cnn")
        x_test = np.asarray(xt, dtype=np.float64).reshape(xt.shape[0], *net.input_shape)
        y_test = np.asarray(yt, dtype=np.int64)
        acc = net.accuracy(x_test, y_test)
    text = f"{net.name} (CNN, {net.n_parameters} parameters) from {weights}"
    if math.isfinite(acc):
        text += f": test accuracy {100 * acc:.2f} %"
    return NetworkSource(net, x_ref, x_test, y_test, acc, text)


def prune(source: NetworkSource, n: int, seed: int) -> SLTHOutcome:
    """Prune the source network (SLTH) and measure the pruned network's own accuracy.

    Runs on the batch engine (`labrss.workflows.prune`): a large network on a
    LocalCluster or the ``$LABRSS_SCHEDULER`` cluster, a small one in this process;
    the same ticket as `prune_to_target` either way.
    """
    target = source.network
    if not isinstance(target, Network):
        raise ValueError(
            f"{target.name} is a CNN: the Program tab prunes MLPs; prune a CNN with "
            "`labrss prune --network FILE --method da-cunha|structured|...`"
        )
    settings = PruneSettings(n=n, seed=seed)
    ticket = prune_network(target, settings, None, engine=engine_for(target)).ticket
    assert isinstance(ticket, SLTHResult)  # pensia on an MLP: the SLTHResult path
    acc = float("nan")
    if source.x_test is not None and source.y_test is not None:
        acc = accuracy(ticket.network.forward(source.x_test), source.y_test)
    return SLTHOutcome(ticket, acc)


def predicted_error_ppm(layer: MappedLayer) -> NDArray[np.float64]:
    """Predicted weight error of each logical cell, ``(d_in + 1, d_out)``: ``|value -
    target|`` over the layer's largest ``|target|`` (ppm)."""
    scale = float(np.max(np.abs(layer.target_S))) or 1.0
    err: NDArray[np.float64] = 1e6 * np.abs(layer.value_S - layer.target_S) / scale
    return err


def checked_cells(checks: list[TileCheck]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Every verified cell's predicted and measured conductance (S), flattened in the order
    of the checks (`ProgramResult.predicted_vs_measured`; the same for a CNN's checks)."""
    if not checks:
        return np.zeros(0), np.zeros(0)
    pred = np.concatenate([c.predicted_S.ravel() for c in checks])
    meas = np.concatenate([c.measured_S.ravel() for c in checks])
    return pred, meas


def solve_job(
    network: AnyNetwork,
    x_reference: NDArray[np.float64],
    settings: ProgramSettings,
    db_path: str,
) -> Callable[[JobContext], list[MappedLayer]]:
    """Worker job: map every layer on the board's latest calibration (nothing switched)."""

    def run(ctx: JobContext) -> list[MappedLayer]:
        lab = ctx.lab
        with Store(db_path) as store:
            calibration = store.latest_calibration(board_id_for(lab, store))
        if isinstance(network, SequentialNetwork):  # the v_max program_cnn uses
            v_max_cnn = float(
                settings.v_max_V
                if settings.v_max_V is not None
                else DAC_HEADROOM * lab.station.limits.max_dac_voltage_V
            )
            _, mapped, _ = map_cnn(
                network,
                element_model(calibration),
                x_reference,
                v_max_V=v_max_cnn,
                settings=settings,
            )
            return mapped
        v_max = float(
            settings.v_max_V
            if settings.v_max_V is not None
            else DAC_HEADROOM * lab.max_row_voltage_V
        )
        layers, _ = map_network(
            network, element_model(calibration), x_reference, v_max_V=v_max, settings=settings
        )
        return layers

    return run


def program_job(
    source: NetworkSource, network: AnyNetwork, settings: ProgramSettings, db_path: str
) -> Callable[[JobContext], AnyProgram]:
    """Worker job: `program_network` (MLP) or `program_cnn` (CNN) with progress; Cancel
    stops it between tiles (the bench is left safe, the run marked interrupted)."""

    def run(ctx: JobContext) -> AnyProgram:
        def progress(done: int, total: int, text: str) -> None:
            ctx.progress(done, total, f"program: {text}")
            ctx.publish("program_progress", (done, total, text))

        result: AnyProgram
        with Store(db_path) as store:
            try:
                if isinstance(network, SequentialNetwork):
                    result = program_cnn(
                        ctx.lab,
                        store,
                        network,
                        source.x_reference,
                        settings=settings,
                        progress=progress,
                        should_stop=lambda: ctx.cancelled,
                        note="labrss gui",
                    )
                else:
                    result = program_network(
                        ctx.lab,
                        store,
                        network,
                        source.x_reference,
                        settings=settings,
                        progress=progress,
                        should_stop=lambda: ctx.cancelled,
                        note="labrss gui",
                    )
            except CancelledError as exc:
                raise JobCancelledError(str(exc)) from exc
        ctx.publish("program_done", (result, source))
        return result

    return run


def _spin(lo: int, hi: int, value: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setValue(value)
    return box


def _dspin(lo: float, hi: float, value: float, decimals: int, step: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setValue(value)
    return box


_SLTH_COLUMNS = ("layer", "shape", "max err %", "rms err %", "kept")


class ProgramTab(LabTab):
    """Choose a network, prune it (SLTH), solve, program and verify."""

    title = "Program"

    def __init__(self, ctx: TabContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.source: NetworkSource | None = None
        self.slth: SLTHOutcome | None = None
        self.layers: list[MappedLayer] = []
        self.result: AnyProgram | None = None
        self.job: Job | None = None

        # --- network
        self.source_box = QComboBox()
        self.source_box.addItems([DIGITS, MNIST1D_CNN, DIGITS_CNN, WEIGHTS_FILE])
        self.hidden = _spin(1, 256, 16)
        self.seed = _spin(0, 2**31 - 1, 0)
        self.weights_edit = QLineEdit()
        self.weights_edit.setPlaceholderText("weights .npz, or an ONNX MLP or CNN (.onnx)")
        self.reference_edit = QLineEdit()
        self.reference_edit.setPlaceholderText("reference inputs .npy (B, d_in or input shape)")
        self.load_button = QPushButton("Load network")
        self.load_button.clicked.connect(self.load)
        self.network_label = QLabel("No network loaded.")
        self.network_label.setWordWrap(True)
        net_box = QGroupBox("Network")
        net_form = QFormLayout(net_box)
        net_form.addRow("Source", self.source_box)
        net_form.addRow("Hidden units", self.hidden)
        net_form.addRow("Seed", self.seed)
        net_form.addRow("Weights", self.weights_edit)
        net_form.addRow("Reference", self.reference_edit)
        net_form.addRow(self.load_button)
        net_form.addRow(self.network_label)

        # --- SLTH
        self.slth_n = _spin(1, 200, 40)
        self.slth_seed = _spin(0, 2**31 - 1, 0)
        self.prune_button = QPushButton("Prune (SLTH)")
        self.prune_button.clicked.connect(self.prune)
        self.use_slth = QCheckBox("Program the weights the pruned network realises")
        self.slth_label = QLabel("Not pruned.")
        self.slth_label.setWordWrap(True)
        self.slth_table = QTableWidget(0, len(_SLTH_COLUMNS))
        self.slth_table.setHorizontalHeaderLabels(list(_SLTH_COLUMNS))
        self.slth_table.verticalHeader().setVisible(False)
        self.slth_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.slth_table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.slth_table.verticalHeader().setDefaultSectionSize(22)
        self.slth_table.setFixedHeight(76)
        slth_box = QGroupBox("Strong lottery ticket (Pensia et al.)")
        slth_layout = QVBoxLayout(slth_box)
        slth_row = QHBoxLayout()
        slth_row.addWidget(QLabel("n"))
        slth_row.addWidget(self.slth_n)
        slth_row.addWidget(QLabel("seed"))
        slth_row.addWidget(self.slth_seed)
        slth_row.addWidget(self.prune_button)
        slth_layout.addLayout(slth_row)
        slth_layout.addWidget(self.slth_label)
        slth_layout.addWidget(self.slth_table)
        slth_layout.addWidget(self.use_slth)

        # --- mapping and actions
        self.scale = QComboBox()
        self.scale.addItems(["layer", "column"])
        self.fill = _dspin(0.05, 1.0, 0.95, 2, 0.05)
        self.rel_tol = _dspin(0.0, 10.0, 0.3, 3, 0.05)
        self.repairs = _spin(0, 10, 2)
        map_box = QGroupBox("Mapping and verification")
        map_form = QFormLayout(map_box)
        map_form.addRow("Weight scale", self.scale)
        map_form.addRow("Fill of the cell range", self.fill)
        map_form.addRow("Tolerance (%)", self.rel_tol)
        map_form.addRow("Repair rounds", self.repairs)
        self.ir_drop = QCheckBox("IR-drop-aware (measure the wiring, solve for the MVM)")
        self.ir_drop.setToolTip(
            "Row reads of two known arrays fit the row/column wire and routing resistances; "
            "every tile is then solved so that the predicted MVM, wires included, realises "
            "the weights, and verified against that prediction (docs/ir-drop.md)."
        )
        map_form.addRow(self.ir_drop)
        self.solve_button = QPushButton("Solve")
        self.program_button = QPushButton("Program and verify")
        self.solve_button.clicked.connect(self.solve)
        self.program_button.clicked.connect(self.program)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the tile being programmed; the bench is safe")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status = QLabel("Load a network, then Solve or Program.")
        self.status.setWordWrap(True)
        actions = QHBoxLayout()
        actions.addWidget(self.solve_button)
        actions.addWidget(self.program_button)
        actions.addWidget(self.cancel_button)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(net_box)
        left_layout.addWidget(slth_box)
        left_layout.addWidget(map_box)
        left_layout.addLayout(actions)
        left_layout.addWidget(self.progress_bar)
        left_layout.addWidget(self.status)
        left_layout.addStretch(1)

        # --- plots
        self.layer_box = QComboBox()
        self.layer_box.currentIndexChanged.connect(self._draw_error_map)
        self.error_map = CrossbarHeatMap()
        self.error_map.plot.setLabel("bottom", "output (index)")
        self.error_map.plot.setLabel("left", "input (index; last row: bias)")
        self.error_map.plot.setAspectLocked(False)
        self.map_panel = ctx.setup_plot(
            PlotPanel("Predicted weight error", self.error_map, self._map_data)
        )
        map_widget = QWidget()
        map_layout = QVBoxLayout(map_widget)
        map_layout.setContentsMargins(0, 0, 0, 0)
        layer_row = QHBoxLayout()
        layer_row.addWidget(QLabel("Predicted weight error of"))
        layer_row.addWidget(self.layer_box, 1)
        map_layout.addLayout(layer_row)
        map_layout.addWidget(self.map_panel, 1)

        self.pvm_plot = pg.PlotWidget(background="w")
        style_plot(
            self.pvm_plot.getPlotItem(),
            left=("measured G", "S"),
            bottom=("predicted G", "S"),
        )
        self.pvm_plot.addLegend(offset=(10, 5))
        self.pvm_panel = ctx.setup_plot(
            PlotPanel("Predicted vs measured cell conductance", self.pvm_plot, self._pvm_data)
        )
        plots = QSplitter(Qt.Orientation.Vertical)
        plots.addWidget(map_widget)
        plots.addWidget(self.pvm_panel)

        # The option forms are taller than a 1280x800 screen leaves them: they scroll.
        left_scroll = QScrollArea()
        left_scroll.setWidget(left)
        left_scroll.setWidgetResizable(True)
        left_scroll.setFrameShape(QFrame.Shape.NoFrame)
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left_scroll.setMinimumWidth(left.minimumSizeHint().width() + 20)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left_scroll)
        splitter.addWidget(plots)
        splitter.setSizes([400, 880])
        QVBoxLayout(self).addWidget(splitter)
        self._update_buttons()

    # ------------------------------------------------------------------ settings
    def program_settings(self) -> ProgramSettings:
        """The mapping and verification options the widgets describe."""
        settings = ProgramSettings(
            scale=self.scale.currentText(),
            fill=self.fill.value(),
            rel_tol=self.rel_tol.value() / 100.0,
            max_repair_rounds=self.repairs.value(),
            ir_drop=self.ir_drop.isChecked(),
        )
        settings.validate()
        return settings

    def network_to_program(self) -> AnyNetwork:
        """The target network, or the weights the pruned network realises (SLTH, MLPs)."""
        if self.source is None:
            raise ValueError("load a network first")
        if self.use_slth.isChecked() and isinstance(self.source.network, Network):
            if self.slth is None:
                raise ValueError("prune the network first (SLTH), or untick its option")
            effective: Network = self.slth.ticket.effective
            return effective
        return self.source.network

    # ------------------------------------------------------------------ actions
    def load(self) -> None:
        """Train the digits MLP or read the weights file (in the worker)."""
        source = self.source_box.currentText()
        hidden, seed = self.hidden.value(), self.seed.value()
        weights, reference = self.weights_edit.text().strip(), self.reference_edit.text().strip()
        self.status.setText("Loading the network…")
        self.job = self.ctx.run(
            "load network",
            lambda ctx: load_network(
                source, hidden=hidden, seed=seed, weights=weights, reference=reference
            ),
            self._loaded,
            on_error=lambda exc: self._ended("Loading the network failed: see the log."),
        )
        self._update_buttons()

    def _loaded(self, source: NetworkSource) -> None:
        self.source = source
        self.slth = None
        self.layers = []
        self.network_label.setText(source.description)
        self.slth_label.setText("Not pruned.")
        self.slth_table.setRowCount(0)
        self._ended(f"Loaded {source.network.name}.")

    def prune(self) -> None:
        """Prune a seeded random network to the target (SLTH) and measure its accuracy."""
        source = self.source
        if source is None:
            self.ctx.report_error("SLTH pruning", "load a network first")
            return
        n, seed = self.slth_n.value(), self.slth_seed.value()
        self.status.setText(f"Pruning a random network (n = {n}, seed {seed})…")
        self.job = self.ctx.run(
            "SLTH pruning",
            lambda ctx: prune(source, n, seed),
            self._pruned,
            on_error=lambda exc: self._ended("Pruning failed: see the log."),
        )
        self._update_buttons()

    def _pruned(self, outcome: SLTHOutcome) -> None:
        self.slth = outcome
        t = outcome.ticket
        target = self.source.test_accuracy if self.source else float("nan")
        self.slth_label.setText(
            f"Pruned network ({len(t.network.layers)} layers, n = {t.n}, seed {t.seed}): "
            f"test accuracy {100 * outcome.test_accuracy:.2f} % (target "
            f"{100 * target:.2f} %); {t.kept_weights} of {t.total_weights} random weights kept."
        )
        self.slth_table.setRowCount(len(t.layers))
        for i, rep in enumerate(t.layers):
            cells = (
                str(rep.index),
                f"{rep.d_in}x{rep.d_out}",
                f"{100 * rep.max_error_rel:.3g}",
                f"{100 * rep.rms_error_rel:.3g}",
                f"{rep.kept_weights} / {rep.total_weights}",
            )
            for j, text in enumerate(cells):
                self.slth_table.setItem(i, j, QTableWidgetItem(text))
        self._ended("Pruned.")

    def solve(self) -> None:
        """Map every layer on the latest calibration; show the predicted error map."""
        try:
            network, settings, db = self._inputs()
        except ValueError as exc:
            self.ctx.report_error("solve", exc)
            return
        assert self.source is not None
        self.status.setText("Solving every cell…")
        self.job = self.ctx.run(
            "solve",
            solve_job(network, self.source.x_reference, settings, db),
            self._solved,
            on_error=lambda exc: self._ended("Solving failed: see the log."),
        )
        self._update_buttons()

    def _solved(self, layers: list[MappedLayer]) -> None:
        self.layers = layers
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        for lay in layers:
            self.layer_box.addItem(f"{lay.name}: {lay.plan.n_tiles} tiles")
        self.layer_box.blockSignals(False)
        self._draw_error_map()
        worst = max(float(np.nanmax(predicted_error_ppm(lay))) for lay in layers)
        self._ended(
            f"Solved {len(layers)} layers, {sum(lay.plan.n_tiles for lay in layers)} tiles; "
            f"largest predicted weight error {worst:.3g} ppm of the layer's largest weight."
        )

    def program(self) -> None:
        """Program and verify every tile (in the worker), repairing misses."""
        try:
            network, settings, db = self._inputs()
        except ValueError as exc:
            self.ctx.report_error("program", exc)
            return
        assert self.source is not None
        self.status.setText("Programming and verifying…")
        self.progress_bar.setValue(0)
        self.job = self.ctx.run(
            "program and verify",
            program_job(self.source, network, settings, db),
            self._programmed,
            on_error=lambda exc: self._ended("Programming failed: see the log."),
            on_cancelled=lambda: self._ended("Programming cancelled; the bench is safe."),
        )
        self._update_buttons()

    def cancel(self) -> None:
        """Cancel the running job (programming stops between tiles)."""
        if self.job is not None:
            self.job.cancel()
            self.status.setText("Cancelling after the current tile…")

    def _inputs(self) -> tuple[AnyNetwork, ProgramSettings, str]:
        session = self.ctx.session
        if session is None or session.db_path is None:
            raise ValueError("not connected to a bench (or no store)")
        return self.network_to_program(), self.program_settings(), str(session.db_path)

    def _programmed(self, result: AnyProgram) -> None:
        self.result = result
        self._solved(result.layers)
        self._draw_pvm()
        pred, meas = checked_cells(result.checks)
        on = self.marked_cells()[0]
        rel = np.abs(meas[on] / pred[on] - 1.0)
        kind = "CNN, " if isinstance(result, CNNProgramResult) else ""
        self._ended(
            f"Program run {result.run_id} ({kind}{len(result.checks)} tiles): "
            f"{result.cells_programmed} cells programmed, "
            f"{result.cells_repaired} repaired, {result.cells_missed} outside tolerance; "
            f"median |measured/predicted - 1| = {1e6 * float(np.median(rel)):.0f} ppm; "
            f"instrument time {result.instrument_time_s:.1f} s."
        )

    def _ended(self, text: str) -> None:
        self.job = None
        self.status.setText(text)
        self._update_buttons()

    # ------------------------------------------------------------------ plots
    def on_event(self, event: ResultEvent) -> None:
        if event.kind == "program_progress":
            done, total, _ = event.data
            self.progress_bar.setRange(0, max(int(total), 1))
            self.progress_bar.setValue(int(done))

    def _draw_error_map(self) -> None:
        i = self.layer_box.currentIndex()
        if not 0 <= i < len(self.layers):
            return
        err = predicted_error_ppm(self.layers[i])
        self.error_map.set_data(err, "predicted weight error (ppm of max |w|)", "")

    def _map_data(self) -> PlotData | None:
        i = self.layer_box.currentIndex()
        if not 0 <= i < len(self.layers):
            return None
        err = predicted_error_ppm(self.layers[i])
        rr, cc = np.meshgrid(np.arange(err.shape[0]), np.arange(err.shape[1]), indexing="ij")
        return PlotData.from_columns(
            input=rr.ravel().astype(float), output=cc.ravel().astype(float), error_ppm=err.ravel()
        )

    def marked_cells(self) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
        """Flat (programmed, repaired, missed) flags of every verified cell."""
        checks = self.result.checks if self.result else []
        if not checks:
            empty = np.zeros(0, dtype=bool)
            return empty, empty, empty
        return (
            np.concatenate([c.programmed.ravel() for c in checks]),
            np.concatenate([c.repaired.ravel() for c in checks]),
            np.concatenate([c.miss.ravel() for c in checks]),
        )

    def _draw_pvm(self) -> None:
        plot = self.pvm_plot.getPlotItem()
        plot.clear()
        if self.result is None:
            return
        pred, meas = checked_cells(self.result.checks)
        on, repaired, missed = self.marked_cells()
        ok = on & ~repaired & ~missed
        lo, hi = float(np.nanmin(pred[on])), float(np.nanmax(pred[on]))
        plot.plot(
            [lo, hi],
            [lo, hi],
            pen=pg.mkPen("#555", width=1, style=Qt.PenStyle.DashLine),
            name="measured = predicted",
        )
        plot.plot(
            pred[ok],
            meas[ok],
            pen=None,
            symbol="o",
            symbolSize=5,
            symbolBrush="#1976d2",
            symbolPen=None,
            name=f"verified ({int(ok.sum())})",
        )
        if repaired.any():
            plot.plot(
                pred[repaired],
                meas[repaired],
                pen=None,
                symbol="s",
                symbolSize=8,
                symbolBrush="#ff9800",
                name=f"repaired ({int(repaired.sum())})",
            )
        if missed.any():
            plot.plot(
                pred[missed],
                meas[missed],
                pen=None,
                symbol="x",
                symbolSize=10,
                symbolBrush="#d50000",
                name=f"outside tolerance ({int(missed.sum())})",
            )

    def _pvm_data(self) -> PlotData | None:
        if self.result is None:
            return None
        pred, meas = checked_cells(self.result.checks)
        on, repaired, missed = self.marked_cells()
        return PlotData.from_columns(
            predicted_S=pred,
            measured_S=meas,
            programmed=on.astype(float),
            repaired=repaired.astype(float),
            missed=missed.astype(float),
        )

    # ------------------------------------------------------------------ hooks
    def on_connected(self, session: Session) -> None:
        self._update_buttons()

    def on_disconnected(self) -> None:
        self._update_buttons()

    def set_busy(self, busy: bool) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        idle = self.job is None and not self.ctx.busy
        connected = self.ctx.session is not None
        loaded = self.source is not None
        mlp = loaded and isinstance(self.source.network if self.source else None, Network)
        self.load_button.setEnabled(idle)
        self.prune_button.setEnabled(idle and mlp)
        self.use_slth.setEnabled(mlp)
        self.cancel_button.setEnabled(self.job is not None)
        self.solve_button.setEnabled(idle and loaded and connected)
        self.program_button.setEnabled(idle and loaded and connected)

    def plots(self) -> list[PlotPanel]:
        return [self.map_panel, self.pvm_panel]

    def save_state(self) -> None:
        s = self.ctx.settings
        s.set_value(self.settings_key("source"), self.source_box.currentText())
        s.set_value(self.settings_key("hidden"), str(self.hidden.value()))
        s.set_value(self.settings_key("weights"), self.weights_edit.text())
        s.set_value(self.settings_key("reference"), self.reference_edit.text())

    def restore_state(self) -> None:
        s = self.ctx.settings
        source = s.value(self.settings_key("source"), DIGITS)
        if source in (DIGITS, WEIGHTS_FILE, *BUILTIN_CNNS):
            self.source_box.setCurrentText(source)
        hidden = s.value(self.settings_key("hidden"), "16")
        if hidden.isdigit():
            self.hidden.setValue(int(hidden))
        self.weights_edit.setText(s.value(self.settings_key("weights"), ""))
        self.reference_edit.setText(s.value(self.settings_key("reference"), ""))
