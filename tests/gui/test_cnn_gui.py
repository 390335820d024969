"""A CNN through the GUI: the Program tab loads an ONNX CNN, programs it tile by tile in the
worker (progress, Cancel), and the MVM tab runs it and shows digital, programmed and
analog accuracy and every layer's analog error, equal to the stored runs (small board)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from labrss.gui.main_window import MainWindow
from labrss.gui.tabs.mvm_tab import MVMTab, accuracy_rows
from labrss.gui.tabs.program_tab import WEIGHTS_FILE, ProgramTab, load_network
from labrss.networks.digits import load_digits_split
from labrss.networks.layers import Conv, Flatten, ReLU
from labrss.networks.model import Layer
from labrss.networks.onnx_file import save_onnx
from labrss.networks.sequential import SequentialNetwork
from labrss.store import Store
from labrss.workflows.cnn import CNNProgramResult, load_cnn_program
from tests.gui.conftest import calibrate_from_truth
from tests.gui.test_program_tab import TIMEOUT_MS, press, program_tab

pytestmark = pytest.mark.gui

VECTORS = 20


def _digits_cnn(tmp_path: Path) -> tuple[Path, Path]:
    """A small digits CNN (conv 1->2, 3x3, stride 2; dense 32->10 fitted by least squares
    on the conv features: ~80 % test accuracy) as ONNX, and its reference inputs."""
    d = load_digits_split(0)
    rng = np.random.default_rng(0)
    conv = Conv(rng.normal(size=(2, 1, 3, 3)), np.zeros(2), (2, 2), ((1, 1), (1, 1)))
    x = d.x_train.reshape(-1, 1, 8, 8)
    feats = np.maximum(conv(x), 0.0).reshape(x.shape[0], -1)
    # ridge regression on the centred features: small weights without the cancellations
    # of a plain least-squares fit (which the ADC floor would magnify)
    mean = feats.mean(axis=0)
    fc = feats - mean
    w = np.linalg.solve(fc.T @ fc + 30.0 * np.eye(fc.shape[1]), fc.T @ np.eye(10)[d.y_train])
    coef = np.r_[w, (0.1 - mean @ w)[None, :]]
    net = SequentialNetwork(
        [conv, ReLU(), Flatten(), Layer(coef[:-1], coef[-1])], (1, 8, 8), name="tiny digits CNN"
    )
    onnx = save_onnx(net, tmp_path / "cnn.onnx", dtype=np.float64)
    ref = tmp_path / "ref.npy"
    np.save(ref, x[:200])
    return onnx, ref


def mvm_tab(win: MainWindow) -> MVMTab:
    page = win.tab_pages[MVMTab.title]
    assert isinstance(page, MVMTab)
    return page


def _load_cnn(qtbot: QtBot, tab: ProgramTab, onnx: Path, ref: Path) -> None:
    tab.source_box.setCurrentText(WEIGHTS_FILE)
    tab.weights_edit.setText(str(onnx))
    tab.reference_edit.setText(str(ref))
    press(qtbot, tab.load_button)
    qtbot.waitUntil(lambda: tab.source is not None and tab.job is None, timeout=TIMEOUT_MS)


def test_onnx_cnn_source_and_bad_reference(tmp_path: Path) -> None:
    onnx, ref = _digits_cnn(tmp_path)
    src = load_network(WEIGHTS_FILE, hidden=4, seed=0, weights=str(onnx), reference=str(ref))
    assert isinstance(src.network, SequentialNetwork)
    assert src.x_test is not None and src.x_test.shape[1:] == (1, 8, 8)
    assert 0.7 < src.test_accuracy <= 1.0
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((5, 40)))
    with pytest.raises(ValueError, match=r"bad\.npy: reference inputs for .*cnn\.onnx"):
        load_network(WEIGHTS_FILE, hidden=4, seed=0, weights=str(onnx), reference=str(bad))


@pytest.mark.slow  # ~10 s: programs 17 tiles on the small board and runs 20 digits
def test_cnn_program_and_mvm_through_the_buttons(
    qtbot: QtBot, connected: MainWindow, tmp_path: Path
) -> None:
    calibrate_from_truth(qtbot, connected)
    session = connected.session
    assert session is not None and session.db_path is not None
    db = session.db_path
    onnx, ref = _digits_cnn(tmp_path)
    prog = program_tab(connected)
    _load_cnn(qtbot, prog, onnx, ref)
    assert "CNN" in prog.network_label.text()
    assert not prog.prune_button.isEnabled()  # the tab prunes MLPs only
    mvm = mvm_tab(connected)

    press(qtbot, prog.program_button)
    qtbot.waitUntil(lambda: prog.result is not None and prog.job is None, timeout=TIMEOUT_MS)
    result = prog.result
    assert isinstance(result, CNNProgramResult) and result.run_id is not None
    assert prog.progress_bar.value() == prog.progress_bar.maximum() == 1 + result.tiles
    assert result.cells_missed == 0
    assert prog.layer_box.count() == 2  # the error map lists the conv and the dense layer
    with Store(db) as store:
        stored = load_cnn_program(store, result.run_id)
    data = prog._pvm_data()
    assert data is not None
    pred = data.rows[:, data.columns.index("predicted_S")]
    np.testing.assert_array_equal(
        pred, np.concatenate([c.predicted_S.ravel() for c in stored.checks])
    )
    assert f"{stored.cells_programmed} cells programmed" in prog.status.text()

    qtbot.waitUntil(lambda: mvm.program is result, timeout=TIMEOUT_MS)
    mvm.vectors.setValue(VECTORS)
    mvm.path.setCurrentIndex(mvm.path.findData("adc"))
    press(qtbot, mvm.run_button)
    qtbot.waitUntil(lambda: mvm.result is not None and mvm.job is None, timeout=TIMEOUT_MS)
    r = mvm.result
    assert r is not None and r.run_id is not None and r.x.shape[0] == VECTORS
    with Store(db) as store:
        y_analog = store.get_result(r.run_id, "y_analog")
        summary = store.get_value(r.run_id, "summary")
    np.testing.assert_array_equal(y_analog, r.y_analog)
    rows = accuracy_rows(r)
    shown = [mvm.accuracy.item(i, 0) for i in range(3)]
    assert [item.text() for item in shown if item] == [f"{v:.2f}" for _, v in rows]
    assert rows[2][1] == pytest.approx(100 * summary["accuracy_analog"])
    # every layer's analog error, as stored; the ADC floor on 8 x 8 tiles: a few percent
    assert mvm.layers_box.isVisibleTo(mvm) and mvm.layers.rowCount() == 2
    for i, err in enumerate(summary["layer_rel_l2_median"]):
        item = mvm.layers.item(i, 1)
        assert item is not None and item.text() == f"{100 * err:.3g}"
        assert err < 0.03
    assert "17 tiles, each programmed once" in mvm.status.text()
    shots = os.environ.get("LABRSS_SCREENSHOTS")
    if shots:
        connected.tabs.setCurrentWidget(mvm)
        connected.grab().save(str(Path(shots) / "mvm_cnn.png"))
        connected.tabs.setCurrentWidget(prog)
        connected.grab().save(str(Path(shots) / "program_cnn.png"))


def test_cancel_stops_cnn_programming(qtbot: QtBot, connected: MainWindow, tmp_path: Path) -> None:
    calibrate_from_truth(qtbot, connected)
    session = connected.session
    assert session is not None and session.db_path is not None
    db = session.db_path
    onnx, ref = _digits_cnn(tmp_path)
    prog = program_tab(connected)
    _load_cnn(qtbot, prog, onnx, ref)
    press(qtbot, prog.program_button)
    qtbot.waitUntil(lambda: prog.progress_bar.value() >= 2, timeout=TIMEOUT_MS)
    prog.cancel_button.click()
    qtbot.waitUntil(lambda: prog.job is None, timeout=TIMEOUT_MS)
    assert prog.result is None
    assert "cancelled" in prog.status.text()
    with Store(db) as store:
        runs = [r for r in store.runs() if r.kind == "program"]
    assert [r.status for r in runs] == ["interrupted"]
