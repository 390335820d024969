"""RSS explorer: the shown subset and achieved value are labrss.rss.solve's for the bank."""

from __future__ import annotations

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from labrss.gui.main_window import MainWindow
from labrss.gui.tabs.rss_explorer_tab import format_value
from labrss.rss import solve
from tests.gui.conftest import rss_tab, store_calibration

pytestmark = pytest.mark.gui


def test_synthetic_bank_without_calibration(qtbot: QtBot, window: MainWindow) -> None:
    tab = rss_tab(window)
    assert tab.use_syn.isChecked() and not tab.use_cal.isEnabled()
    tab.syn_k.setValue(10)
    tab.syn_seed.setValue(5)
    tab.set_target(400e-6, "conductance")
    # the same bank, drawn as documented: R0 (1 + U[-tol, tol]) from default_rng(seed)
    rng = np.random.default_rng(5)
    g = 1.0 / (10e3 * (1.0 + rng.uniform(-0.2, 0.2, size=10)))
    ref = solve(g, 400e-6)
    assert tab.result is not None
    np.testing.assert_array_equal(tab.result.mask, ref.mask)
    assert float(tab.result.value) == float(ref.value)
    assert tab.achieved.text() == format_value(float(ref.value), "conductance")
    closed = ", ".join(str(k) for k in np.flatnonzero(ref.mask))
    assert tab.switches.text().endswith(f"closed: {closed}")
    # the target lies in the middle half of the reachable interval, so the error is at
    # most the worst case over that half that the precision curve reports for n = 10
    curve = tab.curve
    assert curve is not None and curve.n.tolist() == list(range(1, 11))
    assert curve.width_S[-1] / 4 < 400e-6 < 3 * curve.width_S[-1] / 4
    assert abs(float(ref.error)) <= curve.worst_error_S[-1]
    tab.interval.setCurrentIndex(tab.interval.findData("full"))
    assert tab.curve is not None and tab.curve.interval == "full"
    assert tab.curve.interval_lo_S[-1] == 0.0


def test_calibrated_cell_in_ohm(qtbot: QtBot, connected: MainWindow) -> None:
    assert connected.store.board_id is not None and connected.store.path is not None
    cal = store_calibration(connected.store.path, connected.store.board_id, (8, 8, 8), seed=9)
    tab = rss_tab(connected)
    tab.refresh_calibration()
    assert tab.use_cal.isChecked()
    tab.row.setValue(1)
    tab.col.setValue(2)  # the cell with the open branch 3
    tab.set_target(4_000.0, "resistance")
    assert tab.bank is not None and tab.bank.exclude.tolist() == [k == 3 for k in range(8)]

    # the solver's inputs, built as docs/store.md and docs/rss.md define them: element
    # k closed = a_k + c0 / K, open = c0 / K; series path r_s; faulty branches excluded
    a, c0 = cal.conductance_S[1, 2], cal.leakage_S[1, 2]
    exclude = np.arange(8) == 3
    h = np.full(8, c0 / 8)
    ref = solve(
        np.where(exclude, h, a + h),
        4_000.0,
        leakage_S=h,
        series_resistance_ohm=cal.series_ohm[1, 2],
        exclude=exclude,
        sigma_S=np.where(exclude, 0.0, cal.std_S[1, 2]),
        target_kind="resistance",
    )
    assert tab.result is not None
    np.testing.assert_array_equal(tab.result.mask, ref.mask)
    assert not bool(ref.mask[3])
    assert float(tab.result.value) == float(ref.value)
    assert tab.achieved.text() == format_value(float(ref.value), "resistance")
    # a calibration stored without a budget: the solver's independent propagation of std_S
    assert tab.sigma.text() == format_value(float(ref.sigma), "resistance") + " (k = 1)"
    assert "calibration run" in tab.source_label.text() and "1 excluded" in tab.source_label.text()

    # moving the slider solves again: the shown target and result follow
    tab.slider.setValue(tab.slider.maximum() // 2)
    lo, hi = tab.g_range_S
    target_ohm = 1.0 / (lo + (hi - lo) * 0.5)
    assert tab.target.value() == pytest.approx(target_ohm, abs=0.005)  # 2 decimals shown
    assert float(tab.result.target) == pytest.approx(target_ohm, abs=0.005)
