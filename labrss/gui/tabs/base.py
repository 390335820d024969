"""What every tab gets (`TabContext`) and what it offers (`LabTab`).

A tab is a `LabTab` subclass built from a `TabContext`: the bench worker (submit jobs),
the result stream (subscribe), the store link, the settings, and the current `Session`.
The main window calls the hooks: ``on_connected``, ``on_disconnected``, ``set_busy``,
``save_state``/``restore_state``; result-stream events go to ``on_event``. Later tabs
(Calibrate, Program, MVM) are new subclasses registered in `labrss.gui.tabs`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

from PySide6.QtWidgets import QWidget

from labrss.gui.plot_export import PlotPanel
from labrss.gui.result_stream import ResultEvent, ResultStream
from labrss.gui.session import Session
from labrss.gui.settings import GuiSettings
from labrss.gui.store_link import StoreLink
from labrss.gui.widgets.dialogs import show_error
from labrss.gui.workers import BenchWorker, Job, JobContext, describe_error

log = logging.getLogger(__name__)


class TabContext:
    """The services the main window shares with its tabs (main thread)."""

    def __init__(
        self,
        window: QWidget,
        worker: BenchWorker,
        stream: ResultStream,
        store: StoreLink,
        settings: GuiSettings,
    ) -> None:
        self.window = window
        self.worker = worker
        self.stream = stream
        self.store = store
        self.settings = settings
        self.session: Session | None = None
        self.busy = False
        self.error_dialogs: list[QWidget] = []

    def run(
        self,
        name: str,
        fn: Callable[[JobContext], Any],
        on_done: Callable[[Any], None] | None = None,
        *,
        on_error: Callable[[BaseException], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        priority: int | None = None,
    ) -> Job:
        """Run ``fn`` in the bench worker; errors become a dialog plus a log line."""

        def failed(exc: BaseException) -> None:
            self.report_error(name, exc)
            if on_error is not None:
                on_error(exc)

        job = Job(name, fn, on_done=on_done, on_error=failed, on_cancelled=on_cancelled)
        if priority is not None:
            job.priority = priority
        return self.worker.submit(job)

    def report_error(self, what: str, exc: BaseException | str) -> None:
        """Show a readable, non-blocking error dialog (the worker already logged it)."""
        text = exc if isinstance(exc, str) else describe_error(exc)
        if isinstance(exc, str):
            log.error("%s: %s", what, text)
        dialog = show_error(self.window, "labrss", f"{what} failed", text)
        self.error_dialogs = [d for d in self.error_dialogs if d.isVisible()] + [dialog]

    def setup_plot(self, panel: PlotPanel) -> PlotPanel:
        """Wire a plot panel's export to the remembered export directory."""
        panel.export_dir = lambda: self.settings.export_dir
        panel.on_exported = self._remember_dir
        return panel

    def _remember_dir(self, paths: list[Any]) -> None:
        if paths:
            self.settings.export_dir = str(paths[0].parent)


class LabTab(QWidget):
    """Base class of the main window's tabs; override the hooks you need."""

    #: The tab's title (also its settings key).
    title: ClassVar[str] = "Tab"

    def __init__(self, ctx: TabContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx

    def on_event(self, event: ResultEvent) -> None:
        """A result-stream event (main thread)."""

    def on_connected(self, session: Session) -> None:
        """The bench is open."""

    def on_disconnected(self) -> None:
        """The bench was closed (or the connection failed)."""

    def set_busy(self, busy: bool) -> None:
        """The worker is running (True) or idle (False): enable or disable bench actions."""

    def plots(self) -> list[PlotPanel]:
        """The tab's exportable plots."""
        return []

    def settings_key(self, name: str) -> str:
        """A settings key private to this tab."""
        return f"tabs/{self.title.lower().replace(' ', '_')}/{name}"

    def save_state(self) -> None:
        """Remember what the user chose (QSettings) before the window closes."""

    def restore_state(self) -> None:
        """Restore what `save_state` saved."""
