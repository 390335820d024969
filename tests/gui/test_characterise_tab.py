"""The Characterise tab: a module run through its button (stored, plotted live point by
point), a sequence built in the list, saved, loaded and run, and cancel."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from labrss.gui.main_window import MainWindow
from labrss.gui.tabs.characterise_tab import CharacteriseTab, module_fields, parse_field
from labrss.store import Store
from tests.gui.test_memristor_gui import TIMEOUT_MS, connect_preset, press

pytestmark = pytest.mark.gui


def characterise_tab(win: MainWindow) -> CharacteriseTab:
    page = win.tab_pages[CharacteriseTab.title]
    assert isinstance(page, CharacteriseTab)
    return page


def test_form_fields() -> None:
    names = [n for n, _ in module_fields("iv")]
    assert names[:3] == ["mode", "v_set_max_V", "v_reset_max_V"]
    assert [n for n, _ in module_fields("form")][:2] == ["v_start_V", "v_stop_V"]
    assert [n for n, _ in module_fields("seek")][:2] == ["target_S", "reads"]
    assert parse_field("1e-5") == 1e-5 and parse_field("3") == 3 and parse_field("") is None
    assert parse_field("true") is True and parse_field("pulsed") == "pulsed"


def test_iv_module_and_a_sequence(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    connect_preset(qtbot, window, "memristor")
    tab = characterise_tab(window)
    window.tabs.setCurrentWidget(tab)
    tab.module.setCurrentText("iv")
    tab.cells.setText("0,0")
    tab.branches.setText("0")
    tab.set_field("step_V", 0.2)
    tab.set_field("cycles", 1)
    press(qtbot, tab.run_button)
    qtbot.waitUntil(lambda: tab.last_result is not None and tab.job is None, timeout=TIMEOUT_MS)
    result = tab.last_result
    assert result is not None and not result.cancelled
    steps = result.summary()["steps_per_cycle"]
    assert tab.points() == steps  # every point was drawn as it came
    assert f"Run {result.run_id}: completed" in tab.status.text()
    with Store(tmp_path / "lab.db") as store:
        assert store.run(result.run_id or -1).kind == "memristor_iv"

    # a sequence: retention, a wait, seek; saved, cleared, loaded, run
    tab.module.setCurrentText("retention")
    tab.set_field("interval_s", 60)
    tab.set_field("duration_s", 120)
    tab.add_module_step()
    tab.add_wait_step(30.0)
    tab.module.setCurrentText("seek")
    tab.set_field("target_S", 3e-5)
    tab.set_field("tolerance", 0.05)
    tab.add_module_step()
    tab.steps.setCurrentCell(2, 0)
    tab.move_step(-1)  # seek before the wait
    saved = tab.save_file(tmp_path / "seq.json")
    tab.steps.setRowCount(0)
    tab.load_file(saved)
    assert [tab.steps.item(r, 0).text() for r in range(3)] == ["retention", "seek", "wait"]
    press(qtbot, tab.run_seq_button)
    qtbot.waitUntil(lambda: tab.sequence_result is not None, timeout=TIMEOUT_MS)
    assert tab.steps_done == ["1", "2", "3"]
    seq = tab.sequence_result
    assert seq is not None and not seq.cancelled
    assert tab.resume_run.value() == seq.run_id
    with Store(tmp_path / "lab.db") as store:
        assert store.run(seq.run_id or -1).status == "completed"
        kinds = [s["module"] for s in store.get_value(seq.run_id or -1, "steps")]
    assert kinds == ["retention", "seek", "wait"]
