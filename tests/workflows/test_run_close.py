"""One rule for closing a run an exception ended (labrss.workflows.run_close)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labrss.store import Store
from labrss.workflows.run_close import CancelledError, close_run_after


def _run(store: Store) -> int:
    board = store.register_board("LABRSS,CROSSBAR-SIM,SIM-0001,1.0", "SIM-0001", 4, 3, 8)
    return store.start_run("mvm", board, {})


@pytest.mark.parametrize(
    ("exc", "status", "note"),
    [
        (CancelledError("stop"), "interrupted", "stop"),
        (KeyboardInterrupt(), "interrupted", "KeyboardInterrupt"),
        (RuntimeError("SMU gone"), "failed", "SMU gone"),
        (OSError(), "failed", "OSError"),
    ],
)
def test_close_run_after_an_error(
    tmp_path: Path, exc: BaseException, status: str, note: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Store(tmp_path / "lab.db") as store:
        run = _run(store)
        close_run_after(exc, store, run, instrument_time_s=1.5, what="mvm")
        info = store.run(run)
        assert (info.status, info.instrument_time_s, info.note) == (status, 1.5, note)
        # closing it again is a store error: logged, never raised over the run's own error
        close_run_after(exc, store, run, instrument_time_s=1.5, what="mvm")
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"could not close mvm run {run}"
    ]


def test_what_the_run_still_holds_is_saved_first(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The save runs before the run is closed; a failing save is logged and the run is
    closed all the same (neither masks the exception that ended the run)."""
    order: list[str] = []
    with Store(tmp_path / "lab.db") as store:
        run = _run(store)

        def save() -> None:
            order.append(store.run(run).status)

        close_run_after(KeyboardInterrupt(), store, run, what="drift", save=save)
        assert order == ["running"] and store.run(run).status == "interrupted"
        assert store.run(run).instrument_time_s is None  # not known: not invented

        other = _run(store)

        def broken() -> None:
            raise OSError("disk full")

        close_run_after(RuntimeError("x" * 600), store, other, what="drift", save=broken)
        info = store.run(other)
        assert info.status == "failed" and info.note == "x" * 500
    assert [r.getMessage() for r in caplog.records] == [
        f"could not save what drift run {other} still held: disk full"
    ]
