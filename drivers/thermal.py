"""The temperature controller of a thermal stage: the interface labrss codes against.

A sample stage under the board (a heated block on a chilled base, a TEC plate) is run by a
temperature controller; `TemperatureController` is what labrss needs from one: the
reading, the set point (refused outside the station's `ThermalLimits` before anything is
sent), the ramp rate, whether the set point is still ramping, the heater output, and a
safe state. Drivers for particular controllers (`drivers.lakeshore336`) implement it and
are found through the entry point group ``labrss.thermal`` (`drivers.plugins`).

Temperatures are in degC at this interface (the stage of a room-temperature bench);
drivers convert from what their instrument speaks (kelvin on a Lake Shore).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

from drivers.errors import InstrumentLimitError

__all__ = ["TemperatureController", "ThermalLimits", "open_thermal"]


@dataclass(frozen=True)
class ThermalLimits:
    """What the stage may be asked to do (the station's ``[thermal]`` limits).

    Attributes:
        min_C, max_C: the set point range (degC); anything outside is refused before it
            is sent. The controller's own over-temperature cut-off is set a little above
            ``max_C`` (``cutoff_margin_K``) when the driver connects.
        max_ramp_K_per_min: the fastest ramp (K/min): thermal stress on the board.
        safe_C: where the stage is left when a run is interrupted or the bench is made
            safe (degC).
        cutoff_margin_K: the controller's hardware limit sits this far above ``max_C``.
    """

    min_C: float = 10.0
    max_C: float = 45.0
    max_ramp_K_per_min: float = 5.0
    safe_C: float = 25.0
    cutoff_margin_K: float = 5.0

    def __post_init__(self) -> None:
        for name in ("min_C", "max_C", "max_ramp_K_per_min", "safe_C", "cutoff_margin_K"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"thermal limit {name} = {getattr(self, name)} is not finite")
        if not self.min_C < self.max_C:
            raise ValueError(f"thermal limits: min_C = {self.min_C} is not below max_C")
        if not self.min_C <= self.safe_C <= self.max_C:
            raise ValueError(
                f"thermal limits: safe_C = {self.safe_C} is outside {self.min_C}..{self.max_C}"
            )
        if not self.max_ramp_K_per_min > 0:
            raise ValueError("thermal limits: max_ramp_K_per_min must be > 0")

    def check_setpoint(self, setpoint_C: float, instrument: str) -> float:
        """``setpoint_C`` if within ``min_C..max_C``, else InstrumentLimitError (nothing sent)."""
        value = float(setpoint_C)
        if not (math.isfinite(value) and self.min_C <= value <= self.max_C):
            raise InstrumentLimitError(
                f"set point {setpoint_C!r} degC is outside the station's thermal limits "
                f"{self.min_C:g}..{self.max_C:g} degC; nothing sent",
                instrument=instrument,
                command="SETP",
            )
        return value

    def check_ramp(self, rate_K_per_min: float, instrument: str) -> float:
        """``rate_K_per_min`` if in ``(0, max_ramp_K_per_min]``, else InstrumentLimitError."""
        value = float(rate_K_per_min)
        if not (math.isfinite(value) and 0 < value <= self.max_ramp_K_per_min):
            raise InstrumentLimitError(
                f"ramp rate {rate_K_per_min!r} K/min is outside the station's limit "
                f"0 < rate <= {self.max_ramp_K_per_min:g} K/min; nothing sent",
                instrument=instrument,
                command="RAMP",
            )
        return value


class TemperatureController(ABC):
    """A thermal stage's controller (module docstring). Not thread-safe."""

    name: str
    limits: ThermalLimits
    identity: str

    @abstractmethod
    def temperature_C(self) -> float:
        """The control sensor's reading (degC)."""

    @abstractmethod
    def setpoint_C(self) -> float:
        """The commanded set point (degC)."""

    @abstractmethod
    def set_setpoint_C(self, setpoint_C: float, *, ramp_K_per_min: float | None = None) -> None:
        """Go to ``setpoint_C`` (degC), ramping at ``ramp_K_per_min`` (default: the
        station's largest rate); both checked against the limits before anything is sent.
        Turns the heater on if it is off."""

    @abstractmethod
    def ramping(self) -> bool:
        """Whether the set point is still ramping towards the commanded one."""

    @abstractmethod
    def heater_percent(self) -> float:
        """The heater output (% of its range)."""

    @abstractmethod
    def heater_on(self) -> bool:
        """Whether the heater output is on (any range but off)."""

    def safe(self) -> None:
        """Leave the stage at the station's safe set point (ramped, heater on)."""
        self.set_setpoint_C(self.limits.safe_C)

    @abstractmethod
    def close(self) -> None:
        """Close the connection; the controller keeps holding its set point."""


def open_thermal(
    driver: str,
    resource: str,
    limits: ThermalLimits,
    *,
    timeout_s: float = 5.0,
    output: int = 1,
    sensor: str = "A",
    visa_library: str = "@py",
) -> TemperatureController:
    """Open the temperature controller at VISA ``resource`` with the named driver."""
    from drivers.plugins import ThermalConnection, find_thermal_driver

    connection = ThermalConnection(resource, limits, timeout_s, output, sensor, visa_library)
    return find_thermal_driver(driver).open(connection)
