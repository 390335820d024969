"""The station file: instruments, addresses and safety limits (simulator by default)."""

from labrss.station.config import (
    DEFAULT_VISA_LIBRARY,
    SIM_ADDRESS,
    BatchSettings,
    BoardSettings,
    MeasurementDefaults,
    ReferenceStandard,
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
    "DEFAULT_VISA_LIBRARY",
    "SIM_ADDRESS",
    "BatchSettings",
    "BoardSettings",
    "MeasurementDefaults",
    "ReferenceStandard",
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
