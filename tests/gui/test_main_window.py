"""Main window: the safe-state button, closing during work, the event loop never stalls,
settings remembered, every plot exported."""

from __future__ import annotations

import csv
import itertools
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from labrss.gui.main_window import MainWindow
from labrss.gui.settings import GuiSettings
from labrss.lab import Reading
from tests.gui.conftest import (
    board_tab,
    connect_tab,
    is_bench_safe,
    rss_tab,
    run_in_worker,
    store_calibration,
)

pytestmark = pytest.mark.gui


def test_safe_state_button(qtbot: QtBot, connected: MainWindow) -> None:
    run_in_worker(qtbot, connected, lambda ctx: ctx.lab.set_cell_mask(3, 3, 0xFF))
    assert run_in_worker(qtbot, connected, is_bench_safe) == (False, False)
    safe_events = []
    connected.stream.subscribe(lambda ev: safe_events.append(ev) if ev.kind == "safe" else None)
    assert connected.safe_button.isEnabled()
    qtbot.mouseClick(connected.safe_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(safe_events), timeout=10_000)
    assert safe_events[-1].data == {"is_safe": True}  # the board's SAFE? answered 1
    assert run_in_worker(qtbot, connected, is_bench_safe) == (True, True)


def _start_branch_measurements(qtbot: QtBot, win: MainWindow, cells: int) -> list[Reading]:
    """Queue 'Measure branches' on the first ``cells`` cells of the 8 x 8 board (row by
    row, 8 readings each); return the live list of readings."""
    readings: list[Reading] = []
    win.stream.subscribe(lambda ev: readings.append(ev.data) if ev.kind == "reading" else None)
    tab = board_tab(win)
    for i in range(cells):
        tab.selected = divmod(i, 8)
        tab.measure_branches()
    return readings


def test_close_during_work_asks_then_leaves_the_bench_safe(
    qtbot: QtBot, connected: MainWindow
) -> None:
    readings = _start_branch_measurements(qtbot, connected, cells=64)  # 512 readings
    qtbot.waitUntil(lambda: len(readings) >= 2, timeout=20_000)
    lab = connected.worker.lab
    assert lab is not None and lab.simulator is not None
    model = lab.simulator.model
    questions: list[str] = []

    def answer(_parent: object, _title: str, text: str, *, yes: bool) -> bool:
        questions.append(text)
        return yes

    # "No": the window stays open and the work goes on
    connected.ask = lambda p, t, x: answer(p, t, x, yes=False)
    assert not connected.close()
    assert connected.isVisible() and connected.worker.busy
    assert len(questions) == 1 and "running" in questions[0]

    # "Yes": cancelled within one reading, bench safe, instruments closed, window gone
    connected.ask = lambda p, t, x: answer(p, t, x, yes=True)
    assert connected.close()
    assert len(questions) == 2
    assert not connected.worker.isRunning()
    assert connected.worker.lab is None
    assert len(readings) < 64 * 8  # it did not run to the end
    assert model.is_safe()  # every switch open, routing open, DACs at 0 V


def _runqueue_waits_s() -> dict[str, float]:
    """Per thread of this process, the time it spent runnable but waiting for a CPU (s),
    from Linux's /proc/self/task/<tid>/schedstat; empty where that is not available."""
    waits: dict[str, float] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return waits
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as fh:
                waits[tid] = int(fh.read().split()[1]) * 1e-9
        except (OSError, IndexError, ValueError):
            continue  # the thread ended
    return waits


def _starved_s(before: dict[str, float], after: dict[str, float]) -> float:
    """The longest run-queue wait any thread of the process had between two samples."""
    deltas = [after[t] - before[t] for t in after.keys() & before.keys()]
    return max(deltas, default=0.0)


@pytest.mark.slow
def test_event_loop_never_stalls_during_instrument_work(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    """A 10 ms timer in the main thread; the largest gap between its ticks stays < 100 ms
    while the worker measures the 8 branches of a cell on a simulator paced in real time at NPLC 10:
    each reading integrates for 200 ms (10 cycles of 50 Hz), so any instrument I/O in the
    main thread would show as a gap of at least 200 ms, every reading.

    A gap counts the time the main thread ran, blocked or waited for the GIL: whatever our
    process did. Time the kernel kept our runnable threads off the CPU (other processes had
    it: the suite runs on 2 busy cores) is not the GUI's doing: per gap, the longest
    run-queue wait of any thread of the process (schedstat) is subtracted; a thread that
    holds the GIL while it waits for a CPU stalls the main thread that long.
    """
    station = tmp_path / "paced.toml"
    station.write_text(
        '[simulator]\nboard = "small"\nrealtime_factor = 1.0\n[measurement]\nnplc = 10\n'
    )
    assert connect_tab(window).load_station_file(str(station))
    qtbot.mouseClick(connect_tab(window).connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session is not None and not window.worker.busy, timeout=30_000)
    ticks: list[float] = []
    waits: list[dict[str, float]] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(
        lambda: (ticks.append(time.perf_counter()), waits.append(_runqueue_waits_s()))
    )
    board_tab(window).select_cell(0, 0)  # the selected cell's view updates live
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=10_000)
    readings = _start_branch_measurements(qtbot, window, cells=1)
    t0 = time.perf_counter()
    timer.start()
    qtbot.waitUntil(lambda: len(readings) == 8 and not window.worker.busy, timeout=60_000)
    timer.stop()
    elapsed = time.perf_counter() - t0
    gaps = np.diff(ticks)
    starved = np.array([_starved_s(a, b) for a, b in itertools.pairwise(waits)])
    stalls = gaps - starved
    print(  # shown with -s: the figures quoted in docs/gui.md
        f"event loop over {elapsed:.2f} s of instrument work: {len(ticks)} ticks, largest "
        f"stall {1e3 * stalls.max():.1f} ms, largest wall-clock gap {1e3 * gaps.max():.1f} ms"
    )
    assert elapsed > 8 * 0.2  # the pacing is in force: 200 ms of integration per reading
    assert len(ticks) > 50
    assert stalls.max() < 0.100, (
        f"largest event-loop stall {1e3 * stalls.max():.1f} ms "
        f"(wall-clock gap {1e3 * gaps[stalls.argmax()]:.1f} ms)"
    )


def test_settings_are_remembered(qtbot: QtBot, tmp_path: Path) -> None:
    station = tmp_path / "lab.toml"
    station.write_text('[simulator]\nboard = "small"\nseed = 3\n')
    ini = tmp_path / "settings.ini"
    first = MainWindow(GuiSettings(ini), tmp_path / "lab.db")
    qtbot.addWidget(first)
    first.show()
    assert connect_tab(first).load_station_file(str(station))
    first.tabs.setCurrentIndex(2)
    first.resize(900, 650)  # the offscreen screen is 800 x 800: Qt may adjust the size
    size = (first.width(), first.height())
    assert size != (1047, 774)  # what a window without saved geometry gets here
    board_tab(first).quantity.setCurrentIndex(board_tab(first).quantity.findData("R"))
    assert first.close()

    second = MainWindow(GuiSettings(ini), tmp_path / "lab.db")
    qtbot.addWidget(second)
    second.show()
    assert second.tabs.tabText(second.tabs.currentIndex()) == "RSS explorer"
    assert connect_tab(second).station_edit.text() == str(station)
    assert connect_tab(second).sim_seed.value() == 3
    assert (second.width(), second.height()) == size
    assert board_tab(second).quantity.currentData() == "R"
    assert second.close()


def test_export_every_plot(qtbot: QtBot, connected: MainWindow, tmp_path: Path) -> None:
    assert connected.store.board_id is not None and connected.store.path is not None
    cal = store_calibration(connected.store.path, connected.store.board_id, (8, 8, 8), seed=1)
    board_tab(connected).reload()
    board_tab(connected).select_cell(0, 0)
    qtbot.waitUntil(lambda: not connected.worker.busy, timeout=10_000)
    board_tab(connected).measure_cell()
    qtbot.waitUntil(lambda: board_tab(connected).last_reading is not None, timeout=10_000)
    rss_tab(connected).refresh_calibration()
    QApplication.processEvents()

    out = tmp_path / "export"
    out.mkdir()
    panels = [p for page in connected.tab_pages.values() for p in page.plots()]
    # Board (map, history), RSS explorer (bits vs n) first; then the calibrate, program,
    # MVM (two, with IR drop), memristor, characterise and temperature tabs' plots, exported
    # even before they hold data.
    assert len(panels) == 14
    for i, panel in enumerate(panels):
        written = panel.export(out / f"plot{i}")
        # The three part-1 plots hold data here (a CSV); the others may still be empty.
        expected = [".png", ".svg", ".csv"] if i < 3 else [".png", ".svg", ".csv"][: len(written)]
        assert [p.suffix for p in written] == expected and len(written) >= 2
        for path in written:
            assert path.stat().st_size > 0
        assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in written[1].read_bytes()[:2000]

    with (out / "plot0.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 64
    assert list(rows[0]) == ["row", "column", "G_S", "R_ohm", "deviation_pct", "u_G_ppm", "fault"]
    shown = board_tab(connected).maps["G"].values
    assert float(rows[8 * 4 + 6]["G_S"]) == shown[4, 6]  # full precision round trip
    assert rows[8 * 1 + 2]["fault"] == "1.0"
    del cal
    with (out / "plot1.csv").open() as fh:
        history = list(csv.DictReader(fh))
    assert len(history) == 1
    assert float(history[0]["G_S"]) == pytest.approx(
        board_tab(connected).last_reading.conductance_S,
        rel=1e-12,  # type: ignore[union-attr]
    )
    with (out / "plot2.csv").open() as fh:
        bits = list(csv.DictReader(fh))
    assert [int(float(r["n"])) for r in bits] == list(range(1, 9))
