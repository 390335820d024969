"""The bench worker without instruments: results, errors, cancel, priorities, stop."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from PySide6.QtCore import QObject
from pytestqt.qtbot import QtBot

from labrss.gui.result_stream import ResultEvent, ResultStream
from labrss.gui.workers import (
    NORMAL,
    URGENT,
    BenchWorker,
    Job,
    JobCancelledError,
    JobContext,
    NotConnectedError,
    describe_error,
)
from labrss.lab import LabInputError

pytestmark = pytest.mark.gui


@pytest.fixture
def worker(qtbot: QtBot) -> Any:
    stream = ResultStream()
    w = BenchWorker(stream)
    w.start()
    yield w
    assert w.stop(timeout_s=10)
    assert not w.isRunning()


def test_result_and_callbacks_in_the_main_thread(qtbot: QtBot, worker: BenchWorker) -> None:
    main = threading.get_ident()
    seen: dict[str, Any] = {}

    def work(ctx: JobContext) -> int:
        seen["worker_thread"] = threading.get_ident()
        ctx.publish("note", 42)
        return 7

    events: list[ResultEvent] = []
    worker.stream.subscribe(events.append)
    worker.submit(
        Job("sum", work, on_done=lambda r: seen.update(result=r, cb=threading.get_ident()))
    )
    qtbot.waitUntil(lambda: "result" in seen and bool(events))
    assert seen["result"] == 7
    assert seen["worker_thread"] != main
    assert seen["cb"] == main  # callbacks run in the main thread
    assert (events[0].kind, events[0].data, events[0].source) == ("note", 42, "sum")


def test_errors_are_readable_and_reported(qtbot: QtBot, worker: BenchWorker) -> None:
    errors: list[BaseException] = []

    def bad(ctx: JobContext) -> None:
        raise LabInputError("row 9 not on the board (crossbar board SIM-0: rows 0..7)")

    worker.submit(Job("measure", bad, on_error=errors.append))
    qtbot.waitUntil(lambda: bool(errors))
    assert describe_error(errors[0]) == "row 9 not on the board (crossbar board SIM-0: rows 0..7)"
    assert describe_error(OSError("link down")) == "OSError: link down"

    worker.submit(Job("needs a lab", lambda ctx: ctx.lab, on_error=errors.append))
    qtbot.waitUntil(lambda: len(errors) == 2)
    assert isinstance(errors[1], NotConnectedError)
    assert "Connect" in str(errors[1])


def test_cancel_stops_between_steps(qtbot: QtBot, worker: BenchWorker) -> None:
    started = threading.Event()
    release = threading.Event()
    steps: list[int] = []
    cancelled: list[bool] = []

    def loop(ctx: JobContext) -> None:
        for i in range(1000):
            ctx.check_cancel()
            steps.append(i)
            started.set()
            release.wait(0.005)

    job = worker.submit(Job("loop", loop, on_cancelled=lambda: cancelled.append(True)))
    assert started.wait(5)
    assert worker.busy and worker.current_job is job
    worker.cancel_all()
    qtbot.waitUntil(lambda: bool(cancelled))
    assert 0 < len(steps) < 1000
    qtbot.waitUntil(lambda: not worker.busy)


def test_urgent_jobs_run_first_and_queued_cancelled_jobs_never_run(
    qtbot: QtBot, worker: BenchWorker
) -> None:
    gate = threading.Event()
    order: list[str] = []
    worker.submit(Job("blocker", lambda ctx: gate.wait(5)))
    queued = worker.submit(Job("normal", lambda ctx: order.append("normal"), priority=NORMAL))
    worker.submit(Job("later", lambda ctx: order.append("later"), priority=NORMAL))
    worker.submit(Job("safe", lambda ctx: order.append("safe"), priority=URGENT))
    queued.cancel()
    gate.set()
    qtbot.waitUntil(lambda: len(order) == 2 and not worker.busy)
    assert order == ["safe", "later"]


def test_check_cancel_raises() -> None:
    class FakeWorker(QObject):
        lab = None

    job = Job("x", lambda ctx: None)
    ctx = JobContext(FakeWorker(), job)  # type: ignore[arg-type]
    ctx.check_cancel()
    job.cancel()
    with pytest.raises(JobCancelledError, match="x: cancelled"):
        ctx.check_cancel()


class _SafeCounter:
    """Stands in for the `Lab`: counts safe-state requests."""

    def __init__(self) -> None:
        self.safe_calls = 0

    def safe(self) -> None:
        self.safe_calls += 1

    def close(self) -> None:
        pass


def test_a_cancel_that_finds_only_queued_jobs_leaves_the_bench_safe(
    qtbot: QtBot, worker: BenchWorker
) -> None:
    """The running job ends normally (its cell still routed) as the cancel lands: the
    queued jobs it cancels put the bench in the safe state all the same."""
    lab = _SafeCounter()
    worker.lab = lab  # type: ignore[assignment]
    gate = threading.Event()
    cancelled: list[str] = []
    worker.job_cancelled.connect(lambda job: cancelled.append(job.name))
    worker.submit(Job("finishing", lambda ctx: gate.wait(5)))
    queued = worker.submit(Job("queued", lambda ctx: None))
    queued.cancel()
    gate.set()
    qtbot.waitUntil(lambda: cancelled == ["queued"] and not worker.busy)
    assert lab.safe_calls == 1
    worker.lab = None
