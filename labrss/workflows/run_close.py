"""Closing a store run that an exception ended: one rule for every workflow.

A cancel (a workflow's ``should_stop``, the GUI's Stop: `CancelledError` and its
subclasses) or a Ctrl-C (`KeyboardInterrupt`) leaves the run ``interrupted``; any other
exception ``failed``. The exception is the run's note. What the run still holds in memory
(buffered readings) is saved first. A store error while closing is logged, never raised:
it must not mask the exception that ended the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from labrss.store import Store

log = logging.getLogger(__name__)

#: Longest note (characters) a closed run keeps of its exception.
NOTE_CHARS = 500


class CancelledError(RuntimeError):
    """The run was cancelled by its ``should_stop`` flag (the bench was left safe)."""


def status_after(exc: BaseException) -> Literal["interrupted", "failed"]:
    """``interrupted`` for a cancel or a Ctrl-C, ``failed`` for anything else."""
    return "interrupted" if isinstance(exc, CancelledError | KeyboardInterrupt) else "failed"


def close_run_after(
    exc: BaseException,
    store: Store,
    run_id: int,
    *,
    what: str,
    instrument_time_s: float | None = None,
    save: Callable[[], object] | None = None,
) -> None:
    """Close run ``run_id`` that ``exc`` ended (module docstring).

    ``save`` (e.g. a recorder's flush) runs first, so no reading taken is lost;
    ``instrument_time_s`` (s) is what the run spent on the bench, when known; ``what``
    names the run in the log lines of a store error.
    """
    if save is not None:
        try:
            save()
        except Exception as save_exc:  # never mask the original error
            log.error("could not save what %s run %d still held: %s", what, run_id, save_exc)
    note = (str(exc) or type(exc).__name__)[:NOTE_CHARS]
    try:
        store.finish_run(run_id, status_after(exc), instrument_time_s=instrument_time_s, note=note)
    except Exception as store_exc:  # never mask the original error
        log.error("could not close %s run %d: %s", what, run_id, store_exc)
