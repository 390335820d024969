"""The bench worker: one thread that owns the `Lab` and runs bench jobs one at a time.

`Lab` is not thread-safe, so every instrument operation of the GUI runs in one dedicated
`BenchWorker` thread (a `QThread` with a job queue): the main thread never blocks on I/O.
A `Job` is a plain function of a `JobContext`; the worker emits Qt signals when a job
starts, finishes, fails or is cancelled, and the main thread runs the job's callbacks.

Cancel: each job has a cancel flag (a `threading.Event`). Jobs call
`JobContext.check_cancel()` between readings, so a cancel takes effect within one reading
(one SMU integration plus the switching around it); `JobCancelledError` then ends the job and
the worker puts the bench in the safe state. Urgent jobs (safe state, disconnect) take a
lower ``priority`` number and run before anything queued.

    worker = BenchWorker(stream)
    worker.start()
    worker.submit(Job("measure cell", lambda ctx: ctx.lab.measure_cell(1, 2),
                      on_done=show_reading))
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from labrss.gui.result_stream import ResultEvent, ResultStream
from labrss.lab import Lab, LabError
from labrss.workflows.run_close import CancelledError

log = logging.getLogger(__name__)

#: Priority of urgent jobs (safe state, disconnect): they run before any queued job.
URGENT = 0
#: Priority of ordinary jobs.
NORMAL = 10


class JobCancelledError(CancelledError):
    """Raised by `JobContext.check_cancel` when the job's cancel flag is set.

    A `CancelledError`, so a workflow it stops records its run as ``interrupted``."""


class NotConnectedError(LabError):
    """A bench job needs an open `Lab` and the GUI is not connected."""


@dataclass(eq=False)
class Job:
    """One unit of bench work, run in the worker thread.

    Attributes:
        name: what the job does, for the status bar and the log ("measure cell (2, 3)").
        fn: the work; takes the `JobContext`, returns the result handed to ``on_done``.
        on_done: called in the main thread with the result.
        on_error: called in the main thread with the exception (instrument errors, bad
            input); the worker has already logged it and made the bench safe.
        on_cancelled: called in the main thread when the job was cancelled (before or
            while running).
        priority: `URGENT` or `NORMAL` (lower runs first; FIFO within a priority).
    """

    name: str
    fn: Callable[[JobContext], Any]
    on_done: Callable[[Any], None] | None = None
    on_error: Callable[[BaseException], None] | None = None
    on_cancelled: Callable[[], None] | None = None
    priority: int = NORMAL
    cancel_event: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Ask the job to stop at its next `JobContext.check_cancel` (thread-safe)."""
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        """Whether cancel was requested."""
        return self.cancel_event.is_set()


class JobContext:
    """What a running job may use: the `Lab`, its cancel flag, progress and the stream."""

    def __init__(self, worker: BenchWorker, job: Job) -> None:
        self._worker = worker
        self._job = job

    @property
    def lab(self) -> Lab:
        """The open `Lab` (`NotConnectedError` when the GUI is not connected)."""
        lab = self._worker.lab
        if lab is None:
            raise NotConnectedError("not connected to a bench: press Connect first")
        return lab

    @property
    def lab_or_none(self) -> Lab | None:
        """The open `Lab`, or None."""
        return self._worker.lab

    def set_lab(self, lab: Lab | None) -> None:
        """Install (connect) or remove (disconnect) the worker's `Lab`."""
        self._worker.lab = lab

    @property
    def cancelled(self) -> bool:
        """Whether the job was cancelled: the ``should_stop`` of workflow functions."""
        return self._job.cancel_event.is_set()

    def check_cancel(self) -> None:
        """Raise `JobCancelledError` if the job was cancelled; call between readings."""
        if self._job.cancel_event.is_set():
            raise JobCancelledError(f"{self._job.name}: cancelled")

    def progress(self, done: int, total: int, text: str = "") -> None:
        """Report progress (``done`` of ``total`` steps) to the GUI."""
        self._worker.progress.emit(self._job, int(done), int(total), text)

    def publish(self, kind: str, data: Any) -> None:
        """Publish a result on the result stream (delivered in the main thread)."""
        self._worker.stream.publish(ResultEvent(kind, data, source=self._job.name))


_STOP = object()


class _Dispatcher(QObject):
    """Lives in the main thread; runs the jobs' callbacks there (queued signals)."""

    @Slot(object, object)
    def done(self, job: Job, result: object) -> None:
        if job.on_done is not None:
            _guarded(job.name, job.on_done, result)

    @Slot(object, object)
    def failed(self, job: Job, exc: BaseException) -> None:
        if job.on_error is not None:
            _guarded(job.name, job.on_error, exc)

    @Slot(object)
    def cancelled(self, job: Job) -> None:
        if job.on_cancelled is not None:
            _guarded(job.name, job.on_cancelled)


def _guarded(name: str, fn: Callable[..., None], *args: object) -> None:
    """Run a GUI callback; a bug in it is logged, never raised into Qt's event loop."""
    try:
        fn(*args)
    except Exception as exc:  # a GUI bug must not kill the event loop
        log.error("%s: the GUI failed to show the result: %s: %s", name, type(exc).__name__, exc)
        log.debug("traceback", exc_info=True)


def describe_error(exc: BaseException) -> str:
    """A one-line readable message for an exception (no traceback)."""
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, LabError | ValueError) else f"{type(exc).__name__}: {text}"


class BenchWorker(QThread):
    """The thread that owns the `Lab` and runs `Job`\\ s one after the other.

    Signals (emitted from the worker thread, delivered queued to main-thread slots):
        job_started(job), job_done(job, result), job_failed(job, exception),
        job_cancelled(job), progress(job, done, total, text), busy_changed(busy).
    """

    job_started = Signal(object)
    job_done = Signal(object, object)
    job_failed = Signal(object, object)
    job_cancelled = Signal(object)
    progress = Signal(object, int, int, str)
    busy_changed = Signal(bool)

    def __init__(self, stream: ResultStream, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.stream = stream
        self.lab: Lab | None = None  # touched only in the worker thread (and after join)
        self._queue: queue.PriorityQueue[tuple[int, int, object]] = queue.PriorityQueue()
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._current: Job | None = None
        self._pending: set[Job] = set()
        self._dispatcher = _Dispatcher()
        self.job_done.connect(self._dispatcher.done)
        self.job_failed.connect(self._dispatcher.failed)
        self.job_cancelled.connect(self._dispatcher.cancelled)

    # ------------------------------------------------------------------ main-thread API
    def submit(self, job: Job) -> Job:
        """Queue ``job``; returns it (keep it to cancel it)."""
        with self._lock:
            self._pending.add(job)
        self._queue.put((job.priority, next(self._counter), job))
        return job

    @property
    def busy(self) -> bool:
        """Whether a job is running or queued."""
        with self._lock:
            return self._current is not None or bool(self._pending)

    @property
    def current_job(self) -> Job | None:
        """The job running now, if any."""
        with self._lock:
            return self._current

    def cancel_all(self) -> None:
        """Cancel the running job (at its next reading) and every queued one."""
        with self._lock:
            jobs = [*self._pending, *([self._current] if self._current else [])]
        for job in jobs:
            job.cancel()

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Cancel everything, close the `Lab` (bench safe), end the thread; True if it ended.

        The close runs in the worker thread (the `Lab` belongs to it) after the running
        job has stopped at its next reading.
        """
        self.cancel_all()
        if self.isRunning():
            self.submit(Job("close the bench", _close_lab, priority=URGENT - 1))
            self._queue.put((URGENT - 1, next(self._counter), _STOP))
            return self.wait(int(timeout_s * 1000))
        if self.lab is not None:  # never started: nothing else can be using it
            _close_lab_quietly(self.lab)
            self.lab = None
        return True

    # ------------------------------------------------------------------ worker thread
    def run(self) -> None:
        """The job loop (worker thread)."""
        while True:
            _, _, item = self._queue.get()
            if item is _STOP:
                break
            assert isinstance(item, Job)
            self._run_job(item)

    def _run_job(self, job: Job) -> None:
        with self._lock:
            self._pending.discard(job)
            if job.cancelled:
                cancelled_before = True
            else:
                cancelled_before = False
                self._current = job
        if cancelled_before:
            # A cancel leaves the bench safe even when it lands as the running job ends
            # normally (its last reading taken, the cell restored and still routed) and
            # only queued jobs are left to cancel.
            log.info("%s: cancelled before it started", job.name)
            self._safe_after(job)
            self.job_cancelled.emit(job)
            self._emit_busy()
            return
        self.busy_changed.emit(True)
        self.job_started.emit(job)
        try:
            result = job.fn(JobContext(self, job))
        except JobCancelledError:
            log.warning("%s: cancelled; putting the bench in the safe state", job.name)
            self._safe_after(job)
            self.job_cancelled.emit(job)
        except Exception as exc:
            log.error("%s failed: %s", job.name, describe_error(exc))
            log.debug("%s: traceback", job.name, exc_info=True)
            self._safe_after(job)
            self.job_failed.emit(job, exc)
        else:
            self.job_done.emit(job, result)
        finally:
            with self._lock:
                self._current = None
            self._emit_busy()

    def _emit_busy(self) -> None:
        self.busy_changed.emit(self.busy)

    def _safe_after(self, job: Job) -> None:
        """After a failed or cancelled job, leave the bench safe (best effort, logged)."""
        if self.lab is None:
            return
        try:
            self.lab.safe()
            self.stream.publish(ResultEvent("safe", {"is_safe": True}, source=job.name))
        except Exception as exc:
            log.error(
                "after '%s' the bench could not be made safe: %s", job.name, describe_error(exc)
            )


def _close_lab(ctx: JobContext) -> None:
    lab = ctx.lab_or_none
    ctx.set_lab(None)
    if lab is not None:
        _close_lab_quietly(lab)
        ctx.publish("disconnected", {"reason": "closing"})


def _close_lab_quietly(lab: Lab) -> None:
    try:
        lab.close()
        log.info("bench safe and closed")
    except Exception as exc:
        log.error("closing the bench: %s", describe_error(exc))
