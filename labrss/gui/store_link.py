"""The GUI's link to the measurement store: board lookup, calibrations, cell histories,
and `StoreRecorder`, the result-stream subscriber that keeps every GUI reading.

The `Store` is opened in the main thread and used only there (a `Store` belongs to the
thread that opened it); its reads are small indexed queries. The database path follows
docs/store.md: ``LABRSS_DB``, else the station's ``[store] path``, else the per-user
default.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from labrss.gui.result_stream import ResultEvent
from labrss.gui.session import Session
from labrss.lab import Reading
from labrss.station import Station
from labrss.store import (
    Calibration,
    ElementTCR,
    NoCalibrationError,
    ReadingRow,
    Store,
    StoreError,
    reading_key,
    resolve_db_path,
)

log = logging.getLogger(__name__)

#: Run kind of the readings taken from the GUI's Board tab.
GUI_RUN_KIND = "gui_readings"


class StoreLink:
    """The store as the GUI uses it (main thread only).

    Args:
        path: the database file; None: resolved from ``LABRSS_DB`` and the station when a
            session starts (`attach`).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self._explicit = Path(path) if path is not None else None
        self.store: Store | None = None
        self.board_id: int | None = None

    @property
    def path(self) -> Path | None:
        """The open database's path."""
        return self.store.path if self.store is not None else None

    def resolve_path(self, station: Station) -> Path:
        """The database for ``station``: the explicit path, ``LABRSS_DB``, the station's
        ``[store] path`` or the per-user default (docs/store.md)."""
        return resolve_db_path(self._explicit, station_path=station.store.path)

    def attach(self, session: Session) -> int | None:
        """Open (for reading, in this thread) the store the connect job registered
        ``session``'s board in; the board id (None: no store)."""
        if session.db_path is None or session.board_id is None:
            self.board_id = None
            return None
        if self.store is None or self.store.path != session.db_path:
            self.close()
            self.store = Store(session.db_path)
        self.board_id = session.board_id
        log.info("store %s: board id %d (%s)", session.db_path, self.board_id, session.board_serial)
        return self.board_id

    def detach(self) -> None:
        """Forget the board (the store stays open for reading)."""
        self.board_id = None

    def close(self) -> None:
        """Close the store (idempotent)."""
        if self.store is not None:
            self.store.close()
        self.store = None
        self.board_id = None

    def latest_calibration(self) -> Calibration | None:
        """The connected board's latest calibration, or None if it has none (or no board)."""
        if self.store is None or self.board_id is None:
            return None
        try:
            return self.store.latest_calibration(self.board_id)
        except NoCalibrationError:
            return None

    def latest_tcr(self) -> ElementTCR | None:
        """The connected board's element TCRs (``labrss calibrate --temperatures``), or None."""
        if self.store is None or self.board_id is None:
            return None
        return self.store.latest_tcr(self.board_id)

    def leakage_model(
        self, calibration: Calibration
    ) -> tuple[tuple[float, float, str], NDArray[np.float64]] | None:
        """The board's off-leakage growth rate (`labrss.workflows.realise.
        board_leakage_rate`) and each cell's calibration temperature (degC), for the span
        solver as `labrss realise` calls it; None without a store or board."""
        if self.store is None or self.board_id is None:
            return None
        from labrss.workflows.realise import board_leakage_rate, cell_temperatures

        return (
            board_leakage_rate(self.store, self.board_id),
            cell_temperatures(self.store, calibration)[0],
        )

    def cell_temperature_u_K(self, calibration: Calibration) -> NDArray[np.float64] | None:
        """(R, C): each calibrated cell's temperature uncertainty during its calibration (K,
        NaN where unknown), for the budget's temperature row; None without a store."""
        if self.store is None:
            return None
        from labrss.workflows.realise import cell_temperatures

        return cell_temperatures(self.store, calibration)[1]

    def cell_history(self, r: int, c: int) -> NDArray[np.void]:
        """Every stored reading of cell (r, c) of the connected board, oldest first.

        A structured array with the numeric fields of `Store.readings` (``run_id``,
        ``mask``, ``value``, ``wall_time``, ...); empty without a store or board. The store
        has no per-cell query, so each run's readings are read and filtered: O(readings of
        the board): 41 ms measured for a 16 x 16 x 8 calibration (8704 readings).
        """
        if self.store is None or self.board_id is None:
            return np.zeros(0, dtype=[("value", "f8")])
        parts = [
            rows[(rows["r"] == r) & (rows["c"] == c)]
            for run in self.store.runs(self.board_id)
            if run.n_readings
            for rows in (self.store.readings(run.id, lineage=False),)
        ]
        if not parts:
            return np.zeros(0, dtype=[("value", "f8")])
        common = [
            name for name in parts[0].dtype.names or () if name not in ("key", "quantity", "unit")
        ]
        merged = np.concatenate([p[common] for p in parts]) if len(parts) > 1 else parts[0][common]
        order = np.argsort(merged["wall_time"], kind="stable")
        out: NDArray[np.void] = merged[order]
        return out


class _ReadingWriter(threading.Thread):
    """Writes GUI readings to the store in its own thread, in batches.

    Each commit is a synchronous (fsync'ed) SQLite transaction that takes milliseconds on
    a disk, hundreds for the first one: never in the main thread. The thread opens its own
    `Store` (a Store belongs to the thread that opened it), starts the run at the first
    reading, and writes whatever has queued up as one batch (at most `BATCH` rows).
    """

    BATCH = 256

    def __init__(self, path: Path, board_id: int, identities: dict[str, object]) -> None:
        super().__init__(name="labrss-gui-store-writer", daemon=True)
        self.path = path
        self.board_id = board_id
        self.identities = identities
        self.run_id: int | None = None
        self.written = 0
        self._queue: queue.SimpleQueue[ReadingRow | None] = queue.SimpleQueue()

    def put(self, row: ReadingRow) -> None:
        self._queue.put(row)

    def close(self, timeout_s: float = 30.0) -> None:
        """Write what is queued, complete the run, close the store; wait for it."""
        self._queue.put(None)
        self.join(timeout_s)
        if self.is_alive():
            log.error("store %s: the reading writer did not finish in %g s", self.path, timeout_s)

    def run(self) -> None:
        try:
            with Store(self.path) as store:
                self._loop(store)
        except (StoreError, OSError) as exc:
            log.error("store %s: GUI readings not stored: %s", self.path, exc)

    def _loop(self, store: Store) -> None:
        done = False
        while not done:
            first = self._queue.get()
            batch: list[ReadingRow] = []
            if first is None:
                done = True
            else:
                batch.append(first)
            while len(batch) < self.BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    done = True
                    break
                batch.append(item)
            if batch:
                if self.run_id is None:
                    self.run_id = store.start_run(
                        GUI_RUN_KIND,
                        self.board_id,
                        settings={"source": "labrss gui", "what": "readings taken in the GUI"},
                        identities=self.identities,
                    )
                store.add_readings(self.run_id, batch)
                self.written += len(batch)
        if self.run_id is not None:
            store.finish_run(self.run_id, "completed")


class StoreRecorder:
    """Result-stream subscriber: keeps every reading the GUI takes in the store.

    On ``"connected"`` it opens the store the connect job registered the board in
    (`StoreLink.attach`) and starts a writer thread; the first reading opens a run of kind
    `GUI_RUN_KIND` (settings: where the readings come from; identities: the session's
    provenance); each ``"reading"`` event is queued and stored in batches (conductance in
    S, with V, I, range, NPLC);
    ``"disconnected"`` writes what is left and completes the run. Store errors are
    logged, never raised.
    """

    def __init__(self, link: StoreLink) -> None:
        self.link = link
        self.session: Session | None = None
        self._writer: _ReadingWriter | None = None
        self._repeats: dict[tuple[int, int, int, str], int] = {}

    @property
    def run_id(self) -> int | None:
        """The run the readings go to (None until the first one is written)."""
        return self._writer.run_id if self._writer is not None else None

    @property
    def written(self) -> int:
        """Readings written by the current writer."""
        return self._writer.written if self._writer is not None else 0

    def __call__(self, event: ResultEvent) -> None:
        try:
            if event.kind == "connected":
                self.finish()
                self.session = event.data
                board_id = self.link.attach(event.data)
                if self.link.path is not None and board_id is not None:
                    self._writer = _ReadingWriter(self.link.path, board_id, event.data.describe())
                    self._writer.start()
                    self._repeats.clear()
            elif event.kind == "reading" and isinstance(event.data, Reading):
                if self._writer is not None:
                    self._writer.put(self._row(event.data))
            elif event.kind == "disconnected":
                self.finish()
                self.link.detach()
                self.session = None
        except (StoreError, OSError) as exc:
            log.error("store: %s", exc)

    def _row(self, reading: Reading) -> ReadingRow:
        r, c = reading.cell
        slot = (r, c, reading.mask, reading.kind)
        repeat = self._repeats.get(slot, 0)
        self._repeats[slot] = repeat + 1
        value = reading.conductance_S
        return ReadingRow(
            key=reading_key(r, c, reading.mask, repeat, reading.kind),
            r=r,
            c=c,
            mask=reading.mask,
            value=value if math.isfinite(value) else math.nan,
            voltage_V=_finite_or_none(reading.voltage_V),
            current_A=_finite_or_none(reading.current_A),
            current_range_A=_finite_or_none(reading.current_range_A),
            nplc=reading.nplc,
            four_wire=reading.four_wire,
            limit_tripped=reading.limit_tripped,
            instrument_time_s=_finite_or_none(reading.time_s),
        )

    def finish(self) -> None:
        """Write the queued readings and complete the GUI run (waits for the writer)."""
        if self._writer is not None:
            self._writer.close()
        self._writer = None


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
