"""The calibration workflow: open the station and the store, run (or resume) a calibration.

What `labrss calibrate` and the GUI call::

    outcome = run_calibration(CalibrationSettings(design="weighing"), station=None,
                              db_path=None, progress=print, should_stop=lambda: False)
    print(outcome.result.run_id, outcome.result.summary)

Everything is checked before anything is switched (`CalibrationRun.check`): the cells
against the board, NPLC and the read voltage against the station's limits. The bench is
left safe on every exit path (`Lab`), and the run is stored as interrupted when an
instrument fails or ``should_stop`` returns True (resume with ``resume=RUN``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from calibration.run import (
    CalibrationResult,
    CalibrationRun,
    ProgressCallback,
    StopFlag,
    resume_run,
)
from calibration.settings import CalibrationSettings
from labrss.lab import Lab
from labrss.station import Station, default_station
from labrss.store import Store, resolve_db_path

__all__ = ["CalibrationOutcome", "run_calibration"]


@dataclass(frozen=True)
class CalibrationOutcome:
    """The result of a run and where it is stored."""

    result: CalibrationResult
    db_path: Path
    station_name: str
    simulated: bool


def run_calibration(
    settings: CalibrationSettings | None = None,
    *,
    station: Station | None = None,
    db_path: str | Path | None = None,
    resume: int | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopFlag | None = None,
) -> CalibrationOutcome:
    """Run a calibration (or finish interrupted run ``resume``) on ``station``.

    ``station`` None: the embedded simulator. ``db_path``: the store (default from
    `labrss.store.resolve_db_path`: ``LABRSS_DB``, the station's ``[store] path``, the
    per-user default). ``settings`` is ignored with ``resume`` (the stored ones are used).

    Raises:
        SettingsError, LabInputError, SafetyLimitError: bad input, before anything is
            switched; StoreError: a run that cannot be resumed; CalibrationInterruptedError: an
            instrument failed mid-run (stored as interrupted); instrument errors while
            opening the station.
    """
    st = station if station is not None else default_station()
    path = resolve_db_path(db_path, station_path=st.store.path)
    settings = (settings or CalibrationSettings()).validate()
    with Store(path) as store, Lab(st) as lab:
        run = (
            resume_run(lab, store, resume)
            if resume is not None
            else CalibrationRun(lab, store, settings)
        )
        result = run.run(progress=progress, should_stop=should_stop)
        return CalibrationOutcome(result, Path(path), st.name, lab.simulated)
