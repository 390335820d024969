"""Screenshots of the GUI's tabs after a real run, at 1280 x 800, for docs/gui.md.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_screenshots.py [OUT_DIR]

What it does, all through the GUI's own machinery on the embedded simulator: discovery
of the simulator's instruments in the Connect tab; a station
file (a 16 x 16 x 8 board like the default preset, seed 1, with injected faults: one
open resistor, one stuck-open and one stuck-closed switch), Connect; a calibration run (the
weighing design of `calibration.run.CalibrationRun`, in the GUI's bench worker, stored in
a fresh database); the Board tab reloads it, a faulty cell is selected and measured
branch by branch; the RSS explorer solves that cell for 120 uS, its switches are written
and the cell measured (printed: predicted against measured); the explorer then shows a
healthy cell. Then the Calibrate tab shows that run (reopened from the store), the Program
tab loads the digits MLP 64-16-10, prunes it (SLTH, n = 40) and programs and verifies it
(its own buttons), the MVM tab runs 200 test images through the ADC read-out; finally the
GUI reconnects to the ``memristor`` preset and the Memristor tab reads a bank and
write-verifies one branch. Each tab is grabbed with `QWidget.grab()` into
OUT_DIR/<tab>.png (default: next to this script). Takes two to three minutes.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PySide6.QtWidgets import QApplication

from calibration.run import CalibrationRun, RunProgress
from calibration.settings import CalibrationSettings
from labrss.gui.app import make_application
from labrss.gui.main_window import MainWindow
from labrss.gui.settings import GuiSettings
from labrss.gui.tabs.board_tab import BoardTab
from labrss.gui.tabs.calibrate_tab import CalibrateTab
from labrss.gui.tabs.characterise_tab import CharacteriseTab
from labrss.gui.tabs.memristor_tab import MemristorTab
from labrss.gui.tabs.mvm_tab import MVMTab
from labrss.gui.tabs.program_tab import DIGITS, ProgramTab
from labrss.gui.tabs.rss_explorer_tab import RSSExplorerTab
from labrss.gui.workers import Job, JobContext
from labrss.store import Store

SIZE = (1280, 800)

BOARD_TOML = """\
# The default board, with injected faults (for the screenshots).
base = "default"
name = "screenshot"

[geometry]
rows = 16
cols = 16
branches = 8

[element]
nominal_scheme = "ladder"
nominal_ohm = 10e3
ladder_ratio = 1.8
tolerance = 0.05

[faults]
open_resistor_count = 1
stuck_open_count = 1
stuck_closed_count = 1
"""


def wait(app: QApplication, condition: object, timeout_s: float = 300.0) -> None:
    """Run the event loop until ``condition()`` is true."""
    end = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout_s} s")
        app.processEvents()
        time.sleep(0.01)


def settle(app: QApplication, seconds: float = 0.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def calibrate_job(db: Path) -> Callable[[JobContext], object]:
    """Worker job: a calibration run on the GUI's own Lab, stored in ``db``."""

    def run(ctx: JobContext) -> object:
        def progress(p: RunProgress) -> None:
            ctx.progress(p.done, p.total, f"calibration: {p.done}/{p.total} readings")

        with Store(db) as store:
            result = CalibrationRun(ctx.lab, store, CalibrationSettings()).run(
                progress=progress, should_stop=lambda: ctx.cancelled
            )
        return result

    return run


def grab(
    app: QApplication, window: MainWindow, pages: list[tuple[object, str]], out_dir: Path
) -> None:
    """Show each page and save the window as OUT_DIR/<name>.png."""
    for page, name in pages:
        window.tabs.setCurrentWidget(page)  # type: ignore[arg-type]
        settle(app)
        image = window.grab()
        path = out_dir / f"{name}.png"
        image.save(str(path))
        print(f"{path}: {image.width()} x {image.height()}")


def main(out_dir: Path) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="labrss-screens-"))
    (tmp / "board.toml").write_text(BOARD_TOML)
    station = tmp / "station.toml"
    station.write_text('[simulator]\nboard = "board.toml"\nseed = 1\n[store]\npath = "lab.db"\n')
    app = make_application()
    logging.getLogger().setLevel(logging.INFO)
    logging.captureWarnings(True)  # driver warnings go to the log panel
    window = MainWindow(GuiSettings(tmp / "settings.ini"), tmp / "lab.db")
    window.ask = lambda *args: True
    window.resize(*SIZE)
    window.show()

    tab = window.connect_tab
    assert tab.load_station_file(str(station))
    # discovery (its own thread): the embedded simulator's instruments, found and recognised
    tab.discovery.list_system.setChecked(False)  # the machine's own ports are not the point
    tab.discovery.include_sim.setChecked(True)
    tab.discovery.refresh()
    wait(app, lambda: tab.discovery.report is not None and not tab.discovery.running)
    tab.connect_bench()
    wait(app, lambda: window.session is not None and not window.worker.busy)

    done: list[object] = []
    window.worker.submit(
        Job("calibration (weighing design)", calibrate_job(tmp / "lab.db"), on_done=done.append)
    )
    wait(app, lambda: bool(done) and not window.worker.busy)
    print("calibration:", getattr(done[0], "summary", done[0]))

    board = window.tab_pages[BoardTab.title]
    rss = window.tab_pages[RSSExplorerTab.title]
    assert isinstance(board, BoardTab) and isinstance(rss, RSSExplorerTab)
    board.reload()
    cal = board.calibration
    assert cal is not None
    r, c = (cal.faults[0].r, cal.faults[0].c) if cal.faults else (5, 9)
    board.select_cell(r, c)
    wait(app, lambda: not window.worker.busy)
    board.measure_branches()
    wait(app, lambda: not window.worker.busy)

    # the RSS explorer solves the faulty cell for 120 uS; its switches are written to the
    # board and the cell measured: the Board tab shows the reading next to the prediction
    rss.refresh_calibration()
    rss.row.setValue(r)
    rss.col.setValue(c)
    rss.set_target(120e-6, "conductance")
    assert rss.result is not None
    mask = sum(1 << k for k, closed in enumerate(rss.result.mask) if closed)
    predicted = float(rss.result.value)
    window.worker.submit(Job("program", lambda ctx: ctx.lab.set_cell_mask(r, c, mask)))
    wait(app, lambda: not window.worker.busy)
    board.read_switches()
    board.last_reading = None
    board.measure_cell()
    wait(app, lambda: board.last_reading is not None)
    assert board.last_reading is not None
    measured = board.last_reading.conductance_S
    print(
        f"cell ({r}, {c}), switches {mask:#x}: predicted {predicted:.6e} S, measured "
        f"{measured:.6e} S ({1e6 * (measured / predicted - 1):+.0f} ppm)"
    )
    board._on_hover(r, c)
    # the uncertainty budget of branch 0 and of the cell as switched (docs/metrology.md)
    board.table.setCurrentCell(0, 0)
    board.cell_pages.setCurrentWidget(board.budget_box)

    # the explorer's screenshot: a healthy cell
    rss.row.setValue(4)
    rss.col.setValue(6)
    rss.set_target(120e-6, "conductance")

    pages: list[tuple[object, str]] = [(tab, "connect"), (board, "board"), (rss, "rss_explorer")]

    # Calibrate: the run above, reopened from the store
    cal_tab = window.tab_pages[CalibrateTab.title]
    assert isinstance(cal_tab, CalibrateTab)
    cal_tab.refresh_runs()
    cal_tab.open_run(int(getattr(done[0], "run_id")))  # noqa: B009
    pages.append((cal_tab, "calibrate"))

    # Program: the digits MLP, pruned (SLTH), then programmed and verified
    prog = window.tab_pages[ProgramTab.title]
    assert isinstance(prog, ProgramTab)
    prog.source_box.setCurrentText(DIGITS)
    prog.hidden.setValue(16)
    prog.load_button.click()
    wait(app, lambda: prog.source is not None and prog.job is None)
    prog.prune_button.click()
    wait(app, lambda: prog.slth is not None and prog.job is None)
    prog.program_button.click()
    wait(app, lambda: prog.result is not None and prog.job is None)
    print("program:", prog.status.text())
    pages.append((prog, "program"))

    # MVM: 200 test images through the ADC read-out
    mvm = window.tab_pages[MVMTab.title]
    assert isinstance(mvm, MVMTab)
    wait(app, lambda: mvm.program is not None)
    mvm.vectors.setValue(200)
    mvm.run_button.click()
    wait(app, lambda: mvm.result is not None and mvm.job is None)
    print("mvm:", mvm.status.text())
    pages.append((mvm, "mvm"))
    grab(app, window, pages, out_dir)

    # Memristor: reconnect to the memristor preset; read a bank, write-verify a branch
    tab.disconnect_bench()
    wait(app, lambda: window.session is None and not window.worker.busy)
    tab.station_edit.setText("")
    tab.sim_board.setCurrentText("memristor")
    tab.connect_bench()
    wait(app, lambda: window.session is not None and not window.worker.busy)
    mem = window.tab_pages[MemristorTab.title]
    assert isinstance(mem, MemristorTab)
    mem.row.setValue(2)
    mem.col.setValue(3)
    mem.read_button.click()
    wait(app, lambda: mem.bank_cell == (2, 3) and mem.job is None)
    mem.branch.setValue(4)
    mem.target_uS.setValue(round(1.4e6 * mem.bank[4].conductance_S, 2))
    mem.wv_button.click()
    wait(app, lambda: mem.outcome is not None)
    wait(app, lambda: mem.job is None and not window.worker.busy)
    print("memristor:", mem.wv_status.text())
    grab(app, window, [(mem, "memristor")], out_dir)

    # Characterise: a pulsed I-V of two devices, with a sequence in the list
    ch = window.tab_pages[CharacteriseTab.title]
    assert isinstance(ch, CharacteriseTab)
    ch.module.setCurrentText("retention")
    ch.cells.setText("2,3")
    ch.branches.setText("0-1")
    ch.set_field("duration_s", 86400)
    ch.set_field("log_spacing", True)
    ch.add_module_step()
    ch.add_wait_step(3600)
    ch.module.setCurrentText("iv")
    ch.set_field("cycles", 2)
    ch.run_button.click()
    wait(app, lambda: ch.last_result is not None and ch.job is None and not window.worker.busy)
    print("characterise:", ch.status.text())
    grab(app, window, [(ch, "characterise")], out_dir)
    window.close()
    return 0


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    sys.exit(main(target))
