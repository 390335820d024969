"""Lake Shore Model 335 / 336 temperature controller (a thermal stage's closed loop).

Commands from the Lake Shore Model 336 user's manual, chapter 6 "Remote Operation",
section 6.6 "Command Descriptions" (the Model 335's manual, chapter 6, has the same
commands for its two outputs); docs/thermal-stage.md lists the ones used with their
replies. Reached through VISA: the 336's Ethernet port (TCP 7777,
``TCPIP0::host::7777::SOCKET``), or GPIB / the USB virtual COM port (``ASRL...``).

    from drivers.lakeshore336 import LakeShore336
    from drivers.thermal import ThermalLimits
    stage = open_thermal(  # drivers.thermal"lakeshore336", "TCPIP0::192.168.1.20::7777::SOCKET",
                         ThermalLimits(min_C=10, max_C=45, max_ramp_K_per_min=5))
    stage.set_setpoint_C(30.0)          # ramped, heater range high if it was off
    stage.temperature_C(), stage.ramping(), stage.heater_percent()

On connect the driver asks ``*IDN?`` (a Model 335 or 336), clears the status (``*CLS``)
and sets the control input's temperature limit (``TLIMIT``) to the station's ``max_C``
plus its margin: above it the controller itself switches every heater off, whatever the
host does. It changes nothing else.

The controller speaks kelvin (``KRDG?``, ``SETP``: the control input's units are kelvin,
the factory default); this driver converts to degC at its interface. Set point and ramp
are checked against the station's limits before anything is sent. The 336 has no SCPI
error queue: a refused command sets a bit of the standard event status register, which
``*ESR?`` reads (and clears); every setting is followed by that check.
"""

from __future__ import annotations

import logging
from typing import Final

from drivers.adapters import Adapter
from drivers.errors import InstrumentCommandError, InstrumentError, InstrumentIdentityError
from drivers.instrument import (
    SCPIInstrument,
    control,
    format_float,
    measurement,
    parse_bool,
    strict_discrete_set,
    strict_range,
)
from drivers.plugins import Recognition, ThermalConnection, ThermalDriver
from drivers.thermal import TemperatureController, ThermalLimits

__all__ = ["DRIVER", "KELVIN_OFFSET", "LakeShore336"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

KELVIN_OFFSET: Final = 273.15
"""0 degC in kelvin."""
MODELS: Final = ("MODEL335", "MODEL336")
HEATER_RANGES: Final = {"off": "0", "low": "1", "medium": "2", "high": "3"}
"""The heater ranges of outputs 1 and 2 and their RANGE codes."""
RAMP_RANGE_K_PER_MIN: Final = (0.1, 100.0)
"""The controller's ramp rates (K/min); 0 would mean an instant step."""
SETPOINT_RANGE_K: Final = (0.0, 1500.0)
ESR_ERRORS: Final = {
    32: "command error",
    16: "execution error",
    8: "device error",
    4: "query error",
}
"""Standard event status register bits that mean a refused command."""


def _parse_ramp(reply: str) -> float:
    """``RAMP?`` reply ``<on>,<rate>`` as the rate (K/min), 0 when the ramp is off."""
    on, rate = reply.split(",")
    return float(rate) if int(on) else 0.0


def _format_ramp(rate: float) -> str:
    """A ramp rate (K/min; 0: off) as ``RAMP``'s ``<on>,<rate>``."""
    return f"1,{rate:.1f}" if rate > 0 else "0,0"


def _ramp_ok(value: float, values: tuple[float, float]) -> float:
    """0 (ramp off) or a rate within ``values``."""
    return value if value == 0 else strict_range(value, values)


class LakeShore336(SCPIInstrument, TemperatureController):
    """A Lake Shore 335/336 running a stage on one output (module docstring).

    Args:
        adapter: the connection (a VISAAdapter, or a ProtocolAdapter in tests).
        limits: the station's thermal limits.
        output: the heater output (loop) that runs the stage, 1 or 2.
        sensor: its control input, ``"A"``..``"D"``.
    """

    setpoint_K = control(
        "SETP? {ch}",
        "SETP {ch},{value}",
        """Control the loop's set point (K; within the station's limits). Prefer
        set_setpoint_C, which also turns the heater on and ramps.""",
        validator=strict_range,
        values=lambda tc: (tc.limits.min_C + KELVIN_OFFSET, tc.limits.max_C + KELVIN_OFFSET),
        get_process=float,
        set_process=lambda v: f"{v:.3f}",
        check_set_errors=True,
    )
    ramp_K_per_min = control(
        "RAMP? {ch}",
        "RAMP {ch},{value}",
        """Control the set point ramp (K/min; 0 = off, else 0.1..the station's limit).""",
        validator=_ramp_ok,
        values=lambda tc: (RAMP_RANGE_K_PER_MIN[0], tc.limits.max_ramp_K_per_min),
        get_process=_parse_ramp,
        set_process=_format_ramp,
        check_set_errors=True,
    )
    ramp_active = measurement(
        "RAMPST? {ch}", """Get whether the set point is ramping (bool).""", get_process=parse_bool
    )
    heater_range = control(
        "RANGE? {ch}",
        "RANGE {ch},{value}",
        """Control the heater range: "off", "low", "medium" or "high".""",
        validator=strict_discrete_set,
        values=tuple(HEATER_RANGES),
        map_values=HEATER_RANGES,
        check_set_errors=True,
    )
    heater_output_percent = measurement(
        "HTR? {ch}", """Get the heater output (% of the range).""", get_process=float
    )
    reading_K = measurement(
        "KRDG? {inp}", """Get the control input's reading (K).""", get_process=float
    )
    reading_status = measurement(
        "RDGST? {inp}",
        """Get the control input's reading status bits (0: a valid reading).""",
        get_process=int,
    )
    temperature_limit_K = control(
        "TLIMIT? {inp}",
        "TLIMIT {inp},{value}",
        """Control the input's temperature limit (K; 0 = off): above it the controller
        switches every heater output off.""",
        validator=strict_range,
        values=SETPOINT_RANGE_K,
        get_process=float,
        set_process=format_float,
        check_set_errors=True,
    )

    def __init__(
        self, adapter: Adapter, limits: ThermalLimits, *, output: int = 1, sensor: str = "A"
    ) -> None:
        if output not in (1, 2):
            raise ValueError(f"Lake Shore 336: output {output} is not 1 or 2")
        if sensor.upper() not in ("A", "B", "C", "D"):
            raise ValueError(f"Lake Shore 336: sensor {sensor!r} is not one of A..D")
        super().__init__(adapter, f"Lake Shore 336 at {adapter.name}")
        self.channel = output
        self.sensor = sensor.upper()
        self.limits = limits
        identity = self.identify()
        fields = [f.strip() for f in identity.split(",")]
        if len(fields) < 3 or fields[0].upper() != "LSCI" or fields[1].upper() not in MODELS:
            raise InstrumentIdentityError(
                f"expected a Lake Shore Model 335 or 336 at {adapter.name}, but *IDN? answered "
                f"{identity!r}",
                instrument=self.name,
                command="*IDN?",
            )
        self.identity = identity
        self.model = fields[1].upper().removeprefix("MODEL")
        self.serial = fields[2].split("/")[0]
        self.rename(f"Lake Shore {self.model} {self.serial} at {adapter.name}")
        self.clear_status()
        self.temperature_limit_K = limits.max_C + limits.cutoff_margin_K + KELVIN_OFFSET

    # ------------------------------------------------------------------ SCPIInstrument
    def format_command(self, template: str, **fields: object) -> str:
        """Fill ``{ch}`` (the output) and ``{inp}`` (the control input)."""
        return template.format(ch=self.channel, inp=self.sensor, **fields)

    def ask(self, command: str) -> str:
        """A query; the 336 ends replies with CR LF, the CR is dropped here."""
        return super().ask(command).strip()

    def check_errors(self, command: str | None = None) -> None:
        """Raise InstrumentCommandError if ``*ESR?`` reports a refused command."""
        try:
            esr = int(self.ask("*ESR?"))
        except ValueError:
            raise InstrumentError(
                "malformed *ESR? reply", instrument=self.name, command="*ESR?"
            ) from None
        errors = [(bit, text) for bit, text in ESR_ERRORS.items() if esr & bit]
        if errors:
            raise InstrumentCommandError(errors, instrument=self.name, command=command)

    # ------------------------------------------------------------------ interface
    def temperature_C(self) -> float:
        """The control input's reading (degC); InstrumentError for an invalid reading."""
        status = self.reading_status
        if status != 0:
            raise InstrumentError(
                f"input {self.sensor} reports an invalid reading (status {status})",
                instrument=self.name,
                command=f"RDGST? {self.sensor}",
            )
        return round(self.reading_K - KELVIN_OFFSET, 3)

    def setpoint_C(self) -> float:
        """The commanded set point (degC)."""
        return round(self.setpoint_K - KELVIN_OFFSET, 3)

    def set_setpoint_C(self, setpoint_C: float, *, ramp_K_per_min: float | None = None) -> None:
        """Ramp to ``setpoint_C`` (degC) at ``ramp_K_per_min`` (default the station's
        largest); the heater goes to its high range if it was off. Everything is checked
        against the limits before anything is sent."""
        value = self.limits.check_setpoint(setpoint_C, self.name)
        rate = self.limits.check_ramp(
            self.limits.max_ramp_K_per_min if ramp_K_per_min is None else ramp_K_per_min,
            self.name,
        )
        self.ramp_K_per_min = rate
        self.setpoint_K = value + KELVIN_OFFSET
        if self.heater_range == "off":
            self.heater_range = "high"

    def ramping(self) -> bool:
        """Whether the set point is still ramping."""
        return self.ramp_active

    def heater_percent(self) -> float:
        """The heater output (% of its range)."""
        return self.heater_output_percent

    def heater_on(self) -> bool:
        """Whether the heater range is not off."""
        return self.heater_range != "off"

    def close(self) -> None:
        """Close the connection (the loop keeps holding its set point)."""
        self.adapter.close()


def _open(connection: ThermalConnection) -> TemperatureController:
    from drivers.adapters import VISAAdapter

    adapter = VISAAdapter(
        connection.resource,
        timeout_s=connection.timeout_s,
        visa_library=connection.visa_library,
        instrument=f"lakeshore336 at {connection.resource}",
    )
    try:
        return LakeShore336(
            adapter, connection.limits, output=connection.output, sensor=connection.sensor
        )
    except BaseException:
        adapter.close()
        raise


DRIVER: Final = ThermalDriver(
    open=_open,
    description="Lake Shore Model 335/336 temperature controller (stage loop, kelvin)",
    recognition=Recognition(query="*IDN?", pattern=r"^LSCI,MODEL33[56],"),
    simulator="336",
)
"""The ``lakeshore336`` entry point of ``labrss.thermal`` (pyproject.toml)."""
