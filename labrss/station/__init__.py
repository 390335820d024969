"""The station file: instruments, addresses and safety limits (simulator by default)."""

from labrss.station.config import (
    SIM_ADDRESS,
    BatchSettings,
    BoardSettings,
    MeasurementDefaults,
    SimulatorSettings,
    SMUSettings,
    Station,
    StationError,
    StationLimits,
    StoreSettings,
    default_station,
    load_station,
    parse_station,
)

__all__ = [
    "SIM_ADDRESS",
    "BatchSettings",
    "BoardSettings",
    "MeasurementDefaults",
    "SMUSettings",
    "SimulatorSettings",
    "Station",
    "StationError",
    "StationLimits",
    "StoreSettings",
    "default_station",
    "load_station",
    "parse_station",
]
