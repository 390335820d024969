"""`Lab`: the bench operations over the station's instruments, always leaving the bench safe."""

from labrss.lab.errors import BenchNotSafeError, LabError, LabInputError, SafetyLimitError
from labrss.lab.guarded_board import BoardDriverError, GuardedBoard
from labrss.lab.lab import Lab, PulseRecord
from labrss.lab.readings import ColumnReading, Reading

__all__ = [
    "BenchNotSafeError",
    "BoardDriverError",
    "ColumnReading",
    "GuardedBoard",
    "Lab",
    "LabError",
    "LabInputError",
    "PulseRecord",
    "Reading",
    "SafetyLimitError",
]
