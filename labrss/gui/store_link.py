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
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from labrss.gui.result_stream import ResultEvent
from labrss.gui.session import Session
from labrss.lab import Reading
from labrss.store import (
    Calibration,
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

    def attach(self, session: Session) -> int:
        """Open the store for ``session``'s station and register its board; the board id.

        A board is found again by identity, serial, simulated flag, simulator seed and
        preset (`Store.register_board`), so the calibrations stored by `labrss calibrate`
        for this board are found.
        """
        path = resolve_db_path(self._explicit, station_path=session.station.store.path)
        if self.store is None or self.store.path != path:
            self.close()
            self.store = Store(path)
        self.board_id = self.store.register_board(
            session.identities["board"],
            session.board_serial,
            session.rows,
            session.cols,
            session.branches,
            element_kind="memristor" if session.element_kind == "memristor" else "resistor",
            simulated=session.station.board.simulated,
            sim_seed=session.sim_seed,
            sim_preset=session.sim_preset,
            info=dict(session.board_info),
        )
        log.info("store %s: board id %d (%s)", path, self.board_id, session.board_serial)
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

    def cell_history(self, r: int, c: int) -> NDArray[np.void]:
        """Every stored reading of cell (r, c) of the connected board, oldest first.

        A structured array as `Store.readings` returns (fields ``run_id``, ``mask``,
        ``value``, ``unit``, ``wall_time``, ...); empty without a store or board.
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


class StoreRecorder:
    """Result-stream subscriber: keeps every reading the GUI takes in the store.

    On ``"connected"`` it registers the board; the first reading opens a run of kind
    `GUI_RUN_KIND` (settings: where the readings come from; identities: the session's
    provenance); each ``"reading"`` event is stored (conductance in S, with V, I, range,
    NPLC); ``"disconnected"`` completes the run. Store errors are logged, never raised.
    """

    def __init__(self, link: StoreLink) -> None:
        self.link = link
        self.session: Session | None = None
        self.run_id: int | None = None
        self._repeats: dict[tuple[int, int, int, str], int] = {}

    def __call__(self, event: ResultEvent) -> None:
        try:
            if event.kind == "connected":
                self.session = event.data
                self.link.attach(event.data)
            elif event.kind == "reading" and isinstance(event.data, Reading):
                self._store_reading(event.data)
            elif event.kind == "disconnected":
                self.finish()
                self.link.detach()
                self.session = None
        except (StoreError, OSError) as exc:
            log.error("store: %s", exc)

    def _store_reading(self, reading: Reading) -> None:
        store, board_id = self.link.store, self.link.board_id
        if store is None or board_id is None or self.session is None:
            return
        if self.run_id is None:
            self.run_id = store.start_run(
                GUI_RUN_KIND,
                board_id,
                settings={"source": "labrss gui", "what": "readings taken from the GUI"},
                identities=self.session.describe(),
            )
            self._repeats.clear()
        r, c = reading.cell
        slot = (r, c, reading.mask, reading.kind)
        repeat = self._repeats.get(slot, 0)
        self._repeats[slot] = repeat + 1
        value = reading.conductance_S
        store.add_readings(
            self.run_id,
            [
                ReadingRow(
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
            ],
        )

    def finish(self) -> None:
        """Complete the open GUI run, if any."""
        if self.run_id is not None and self.link.store is not None:
            self.link.store.finish_run(self.run_id, "completed")
        self.run_id = None


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
