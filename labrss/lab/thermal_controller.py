"""Opening a station's temperature controller (``[thermal]``): one place for `Lab` and
``labrss station check``, so both talk to the stage through the same settings."""

from __future__ import annotations

from drivers.thermal import TemperatureController, open_thermal
from labrss.station.config import DEFAULT_VISA_LIBRARY, ThermalSettings

__all__ = ["open_station_thermal", "thermal_visa_library"]


def thermal_visa_library(th: ThermalSettings) -> str:
    """The pyvisa backend for the stage: the embedded simulator's stage is always reached
    through pyvisa-py (its loopback socket), a real one through ``visa_library``."""
    return DEFAULT_VISA_LIBRARY if th.simulated else th.visa_library


def open_station_thermal(th: ThermalSettings, address: str) -> TemperatureController:
    """The controller of ``th`` at ``address`` (the simulator's resource for ``"sim"``),
    with the station's limits, output, sensor and timeout (s)."""
    return open_thermal(
        th.driver,
        address,
        th.limits,
        timeout_s=th.timeout_s,
        output=th.output,
        sensor=th.sensor,
        visa_library=thermal_visa_library(th),
    )
