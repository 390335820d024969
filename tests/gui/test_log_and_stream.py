"""The log panel receives records from any thread; the result stream delivers in order."""

from __future__ import annotations

import logging
import threading

import pytest
from pytestqt.qtbot import QtBot

from labrss.gui.log_panel import LogPanel
from labrss.gui.result_stream import ResultEvent, ResultStream, format_ohm, format_siemens

pytestmark = pytest.mark.gui


def test_log_records_from_a_thread_reach_the_panel(qtbot: QtBot) -> None:
    panel = LogPanel()
    qtbot.addWidget(panel)
    logger = logging.getLogger("labrss.test.gui")
    panel.install(logger)
    try:
        t = threading.Thread(target=lambda: logger.error("SMU at X: compliance reached"))
        t.start()
        t.join()
        qtbot.waitUntil(lambda: bool(panel.lines))
        assert panel.lines[-1].endswith("ERROR   labrss.test.gui: SMU at X: compliance reached")
        assert "compliance reached" in panel.toPlainText()
    finally:
        panel.uninstall()


def test_stream_delivers_in_order_and_survives_a_bad_subscriber(qtbot: QtBot) -> None:
    stream = ResultStream()
    got: list[int] = []

    def bad(event: ResultEvent) -> None:
        raise RuntimeError("boom")

    stream.subscribe(bad)
    stream.subscribe(lambda ev: got.append(ev.data))
    threads = [
        threading.Thread(target=lambda: [stream.publish(ResultEvent("n", i)) for i in range(50)])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    qtbot.waitUntil(lambda: len(got) == 50)
    assert got == list(range(50))


def test_si_formatting() -> None:
    assert format_ohm(12345.678) == "12.346 kΩ"
    assert format_siemens(8.1203e-4) == "812.03 µS"
    assert format_siemens(float("nan")) == "n/a S"
    assert format_ohm(float("inf")) == "∞ Ω"
    assert format_siemens(0.0) == "0 S"
