"""The measurement store: SQLite database of boards, runs, raw readings, estimates and faults.

`Store` (``labrss.store.store``) is the database; the records it takes and returns live in
``labrss.store.records``; ``labrss.store.schema`` holds the versioned schema and its
migrations; ``labrss.store.paths`` says where the file lives; ``labrss.store.export`` writes
a run or a board's latest calibration as CSV or NPZ. See docs/store.md.
"""

from labrss.store.paths import DB_ENV_VAR, default_db_path, resolve_db_path
from labrss.store.records import (
    BoardInfo,
    Calibration,
    CellEstimate,
    ElementTCR,
    Fault,
    FaultKind,
    ReadingRow,
    RunInfo,
    RunStatus,
    SwitchCounts,
    reading_key,
)
from labrss.store.schema import SCHEMA_VERSION, StoreSchemaError
from labrss.store.store import DuplicateReadingError, NoCalibrationError, Store, StoreError

__all__ = [
    "DB_ENV_VAR",
    "SCHEMA_VERSION",
    "BoardInfo",
    "Calibration",
    "CellEstimate",
    "DuplicateReadingError",
    "ElementTCR",
    "Fault",
    "FaultKind",
    "NoCalibrationError",
    "ReadingRow",
    "RunInfo",
    "RunStatus",
    "Store",
    "StoreError",
    "StoreSchemaError",
    "SwitchCounts",
    "default_db_path",
    "reading_key",
    "resolve_db_path",
]
