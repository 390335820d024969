"""``labrss station check``: is the station file right for the bench that is connected?

    result = check_station(Path("lab.toml"))
    print(result.table()); assert result.passed

Each step passes or fails with what to do about it, and a step that an earlier failure
makes impossible is skipped, saying so. Nothing is switched and nothing is sourced: the
instruments are opened through their drivers (whose connect queries identify them and read
their configuration; a driver may clear the status registers, as on any connect) and
queried, never set; the SMU is closed with its output left as it was. The only command
that could change anything is the board driver's close, which puts the board in its safe
state: nothing changes on a board that already reports the safe state, and the check says
when it did not. `labrss selftest` exercises the bench; this reads it.

The steps (`STEPS`):

* **station file**: it loads and validates (or the defaults, with no file);
* **VISA library**: the SMU's ``visa_library`` loads;
* **SMU identity**: its address answers the identify query, and the installed driver that
  recognises the reply is the one the station names (else: which one does);
* **SMU driver**: the driver connects (its own identity and mode checks);
* **SMU state**: the output is off (read back from the instrument);
* **SMU limits**: the compliance in force, read back, and the station's limits the driver
  enforces;
* **board identity**, **board driver**: the same for the board;
* **board geometry**: the board's geometry is the station's ``[board] geometry``;
* **board state**: the board reports its safe state;
* **board limits**: the station's DAC and pulse limits within what the board offers; the
  smallest element resistance the power check will use, and where it comes from; on
  memristor boards the read-disturb limits.

With a ``[thermal]`` section (a thermal stage, docs/temperature.md) four more
(`THERMAL_STEPS`): **thermal identity** and **thermal driver** as for the SMU (the driver's
connect sets the controller's own over-temperature cut-off ``cutoff_margin_K`` above
``max_C``, a safety setting); **thermal reading**: the stage's sensor reads a finite
temperature within ``min_C - 20 .. max_C + cutoff_margin_K`` (anything else is a sensor
fault or the wrong input); **thermal limits**: the station's limits, and that the stage is
safe: its heater off, or on with a set point inside ``min_C..max_C`` (a set point left
outside them by another program fails, with the fix).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from drivers.board import Board, Capability, format_capabilities
from drivers.discovery import Finding, discover
from drivers.errors import InstrumentError
from drivers.plugins import (
    BoardConnection,
    PluginError,
    SMUConnection,
    find_board_driver,
    find_smu_driver,
)
from drivers.smu import SafetyLimits, SourceMeter
from labrss.lab.lab import start_simulator
from labrss.lab.safety import min_element_resistance, read_disturb_limits
from labrss.lab.thermal_controller import open_station_thermal, thermal_visa_library
from labrss.station import Station, StationError, default_station, load_station
from labrss.station.config import DEFAULT_VISA_LIBRARY, format_geometry

__all__ = ["STEPS", "THERMAL_STEPS", "CheckStep", "StationCheck", "check_station"]

log = logging.getLogger(__name__)

STEPS: Final = (
    "station file",
    "VISA library",
    "SMU identity",
    "SMU driver",
    "SMU state",
    "SMU limits",
    "board identity",
    "board driver",
    "board geometry",
    "board state",
    "board limits",
)
THERMAL_STEPS: Final = ("thermal identity", "thermal driver", "thermal reading", "thermal limits")
"""Steps added when the station has a ``[thermal]`` section."""
THERMAL_READING_BELOW_K = 20.0
"""A stage reading more than this below ``min_C`` is a sensor fault (K)."""
Status = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class CheckStep:
    """One step: pass, fail or skip; what was seen; what to do (on a failure)."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StationCheck:
    """Every step of one check, in `STEPS` order."""

    station: str
    steps: tuple[CheckStep, ...]

    @property
    def passed(self) -> bool:
        """True when no step failed and none was skipped for a failure."""
        return all(s.status == "pass" for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "station": self.station,
            "passed": self.passed,
            "steps": [asdict(s) for s in self.steps],
        }

    def table(self) -> str:
        """One line per step, the fix under a failed one, then the verdict."""
        width = max(len(s.name) for s in self.steps)
        lines = [f"station check of {self.station}"]
        for s in self.steps:
            lines.append(f"  {s.status.upper():<4}  {s.name:<{width}}  {s.detail}")
            if s.fix:
                lines.append(f"        {'':<{width}}  fix: {s.fix}")
        failed = [s.name for s in self.steps if s.status == "fail"]
        lines.append(
            "all checks passed: next, labrss selftest --station FILE exercises the bench"
            if self.passed
            else f"FAILED: {', '.join(failed) or 'steps skipped'}"
        )
        return "\n".join(lines)


class _Steps:
    """Collects steps; `skip_rest` fills the steps a failure made impossible."""

    def __init__(self) -> None:
        self.steps: list[CheckStep] = []

    def add(
        self, name: str, status: Status, detail: str, fix: str | None = None, **figures: Any
    ) -> bool:
        self.steps.append(CheckStep(name, status, detail, fix, dict(figures)))
        return status == "pass"

    def skip(self, names: tuple[str, ...], why: str) -> None:
        for name in names:
            self.steps.append(CheckStep(name, "skip", f"not checked: {why}"))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _identity_step(
    steps: _Steps, name: str, kind: str, finding: Finding, *, configured: str, key: str
) -> bool:
    """Pass when the driver that recognises the reply is ``configured``."""
    if finding.status != "recognised":
        return steps.add(name, "fail", f"{finding.address}: {finding.reason}", finding.fix)
    drivers = (finding.driver, *finding.other_drivers)
    if configured in drivers:
        return steps.add(name, "pass", f"{finding.reply} ({configured})", reply=finding.reply)
    return steps.add(
        name,
        "fail",
        f"{finding.address} is a {finding.reply!r}, which the {finding.driver} driver drives, "
        f"not {configured}",
        f"set {key} = {finding.driver!r} (or give the address of the {kind} the file means)",
    )


def check_station(
    path: Path | str | None = None, *, station: Station | None = None, timeout_s: float = 2.0
) -> StationCheck:
    """Check the station file at ``path`` (None: the default, the embedded simulator)
    against what is connected (see the module docstring); or an already loaded ``station``.
    """
    steps = _Steps()
    name = str(path) if path is not None else "the default station"
    if station is None:
        try:
            station = load_station(path) if path is not None else default_station()
        except StationError as exc:
            missing = "station file not found" in str(exc)
            steps.add(
                "station file",
                "fail",
                _one_line(exc),
                "labrss discover --write FILE writes one for what is connected"
                if missing
                else "edit the key named (docs/station.md explains each)",
            )
            steps.skip(STEPS[1:], "the station file cannot be used")
            return StationCheck(name, tuple(steps.steps))
    name = station.name
    sim = " (the embedded simulator)"
    steps.add(
        "station file",
        "pass",
        f"SMU {station.smu.driver} at {station.smu.address}"
        f"{sim if station.smu.simulated else ''}, board {station.board.driver} at "
        f"{station.board.address}{sim if station.board.simulated else ''}",
    )
    thermal_steps = THERMAL_STEPS if station.thermal is not None else ()
    with _simulator(station, steps) as addresses:
        if addresses is None:
            steps.skip(STEPS[1:] + thermal_steps, "the embedded simulator could not start")
        else:
            _check_smu(station, addresses[0], steps, timeout_s)
            _check_board(station, addresses[1], addresses[2], steps, timeout_s)
            if station.thermal is not None:
                _check_thermal(station, addresses[3], steps, timeout_s)
    return StationCheck(name, tuple(steps.steps))


@contextlib.contextmanager
def _simulator(
    station: Station, steps: _Steps
) -> Iterator[tuple[str, str, dict[str, Any], str] | None]:
    """The (SMU, board) addresses to check, the board's options and the thermal stage's
    address (empty without ``[thermal]``); the embedded simulator's for ``"sim"`` (a
    simulated switch matrix brings its layout file)."""
    options = dict(station.board.options)
    thermal = station.thermal.address if station.thermal is not None else ""
    if not station.uses_simulator:
        yield station.smu.address, station.board.address, options, thermal
        return
    try:
        bench = start_simulator(station)
    except (StationError, PluginError, OSError, ValueError) as exc:
        steps.add("station file", "fail", f"the embedded simulator: {_one_line(exc)}")
        yield None
        return
    try:
        smu = bench.smu_resource if station.smu.simulated else station.smu.address
        board = bench.board_address if station.board.simulated else station.board.address
        if station.board.simulated and bench.matrix is not None:
            options.setdefault("layout", str(bench.matrix.layout_path))  # as `Lab` does
        if station.thermal is not None and station.thermal.simulated:
            thermal = bench.thermal_resource
        yield smu, board, options, thermal
    finally:
        bench.stop()


def _check_smu(station: Station, address: str, steps: _Steps, timeout_s: float) -> None:
    library = DEFAULT_VISA_LIBRARY if station.smu.simulated else station.smu.visa_library
    rest = STEPS[2:6]
    if not _visa_library_step(steps, library):
        steps.skip(rest, "the VISA library does not load")
        return
    finding = discover(
        visa_library=library,
        resources=[address],
        list_visa_resources=False,
        list_serial_ports=False,
        timeout_s=min(timeout_s, station.smu.timeout_s),
    ).findings[0]
    if not _identity_step(
        steps, "SMU identity", "SMU", finding, configured=station.smu.driver, key="[smu] driver"
    ):
        steps.skip(rest[1:], "the SMU was not identified")
        return
    limits = SafetyLimits(
        max_voltage_V=station.limits.max_source_voltage_V,
        max_current_A=station.limits.compliance_current_A,
    )
    try:
        smu = find_smu_driver(station.smu.driver).open(
            SMUConnection(
                address,
                limits,
                timeout_s=station.smu.timeout_s,
                channel=station.smu.channel,
                visa_library=library,
            )
        )
    except (InstrumentError, PluginError, ValueError, OSError) as exc:
        steps.add("SMU driver", "fail", _one_line(exc), "the message says what the driver needs")
        steps.skip(rest[2:], "the SMU driver did not connect")
        return
    try:
        steps.add("SMU driver", "pass", f"{smu.label} connected at {address}")
        _smu_state(smu, steps)
        _smu_limits(station, smu, steps)
    finally:
        smu.close()  # leaves the output as it is


def _check_thermal(station: Station, address: str, steps: _Steps, timeout_s: float) -> None:
    """The thermal stage's steps (`THERMAL_STEPS`, module docstring)."""
    th = station.thermal
    assert th is not None
    library = thermal_visa_library(th)
    finding = discover(
        visa_library=library,
        resources=[address],
        list_visa_resources=False,
        list_serial_ports=False,
        timeout_s=min(timeout_s, th.timeout_s),
    ).findings[0]
    if not _identity_step(
        steps,
        "thermal identity",
        "temperature controller",
        finding,
        configured=th.driver,
        key="[thermal] driver",
    ):
        steps.skip(THERMAL_STEPS[1:], "the temperature controller was not identified")
        return
    try:
        stage = open_station_thermal(th, address)
    except (InstrumentError, PluginError, ValueError, OSError) as exc:
        steps.add(
            "thermal driver", "fail", _one_line(exc), "the message says what the driver needs"
        )
        steps.skip(THERMAL_STEPS[2:], "the thermal driver did not connect")
        return
    lim = th.limits
    try:
        steps.add("thermal driver", "pass", f"{stage.identity} connected at {address}")
        try:
            reading = stage.temperature_C()
        except (InstrumentError, OSError, ValueError) as exc:
            steps.add("thermal reading", "fail", _one_line(exc), "check the sensor input")
            reading = math.nan
        else:
            low, high = lim.min_C - THERMAL_READING_BELOW_K, lim.max_C + lim.cutoff_margin_K
            if math.isfinite(reading) and low <= reading <= high:
                steps.add(
                    "thermal reading",
                    "pass",
                    f"input {th.sensor} reads {reading:.2f} degC",
                    temperature_C=reading,
                )
            else:
                steps.add(
                    "thermal reading",
                    "fail",
                    f"input {th.sensor} reads {reading!r} degC, outside {low:g}..{high:g}",
                    f"check the sensor on input {th.sensor} ([thermal] sensor) and its curve",
                    temperature_C=reading,
                )
        heater_on = stage.heater_on()
        setpoint = stage.setpoint_C()
        limits_text = (
            f"set points {lim.min_C:g}..{lim.max_C:g} degC, ramps <= "
            f"{lim.max_ramp_K_per_min:g} K/min, safe {lim.safe_C:g} degC, cut-off "
            f"{lim.max_C + lim.cutoff_margin_K:g} degC"
        )
        figures: dict[str, Any] = {"heater_on": heater_on, "setpoint_C": setpoint}
        if heater_on and not (math.isfinite(setpoint) and lim.min_C <= setpoint <= lim.max_C):
            steps.add(
                "thermal limits",
                "fail",
                f"the heater is on with set point {setpoint:g} degC, outside the station's "
                f"limits ({limits_text})",
                f"set the stage to {lim.safe_C:g} degC (safe_C) or turn its heater off at "
                "the front panel",
                **figures,
            )
        else:
            state = f"heater on, set point {setpoint:g} degC" if heater_on else "heater off"
            steps.add("thermal limits", "pass", f"{state}; {limits_text}", **figures)
    finally:
        stage.close()  # the controller keeps holding its set point


def _visa_library_step(steps: _Steps, library: str) -> bool:
    import pyvisa

    try:
        manager = pyvisa.ResourceManager(library)
    except Exception as exc:
        return steps.add(
            "VISA library",
            "fail",
            f"{library!r} does not load: {_one_line(exc)}",
            "install the vendor VISA (NI-VISA, Keysight IO Libraries) or set [smu] "
            'visa_library = "@py" (pyvisa-py)',
        )
    backend = type(manager.visalib).__module__.split(".")[0]
    if backend == "pyvisa_py":
        import pyvisa_py

        what = f"pyvisa-py {pyvisa_py.__version__}"
    else:
        what = f"{getattr(manager.visalib, 'library_path', library)}"
    return steps.add("VISA library", "pass", f"{library}: {what}")


def _read(read: Callable[[], Any]) -> tuple[Any, str | None]:
    try:
        return read(), None
    except NotImplementedError as exc:
        return None, str(exc)


def _smu_state(smu: SourceMeter, steps: _Steps) -> None:
    on, why = _read(smu.read_output_on)
    if why is not None:
        steps.add("SMU state", "skip", f"the driver cannot read the output state back ({why})")
    elif on:
        steps.add(
            "SMU state",
            "fail",
            "the output is ON",
            "turn it off at the front panel; labrss turns it off whenever it opens the station "
            "(labrss selftest checks that)",
            output_on=True,
        )
    else:
        steps.add("SMU state", "pass", "output off", output_on=False)


def _smu_limits(station: Station, smu: SourceMeter, steps: _Steps) -> None:
    compliance, why = _read(smu.read_compliance_A)
    limits = station.limits
    enforced = (
        f"the driver refuses |V| > {limits.max_source_voltage_V:g} V and a compliance above "
        f"{limits.compliance_current_A:g} A, and programs {limits.compliance_current_A:g} A "
        "before any output"
    )
    if why is not None:
        steps.add("SMU limits", "pass", f"{enforced} (no compliance read-back: {why})")
        return
    steps.add(
        "SMU limits",
        "pass",
        f"compliance in force {compliance:g} A; {enforced}",
        compliance_in_force_A=compliance,
    )


def _check_board(
    station: Station, address: str, options: dict[str, Any], steps: _Steps, timeout_s: float
) -> None:
    rest = STEPS[6:]
    try:
        driver = find_board_driver(station.board.driver)
    except (LookupError, PluginError) as exc:  # validated at load; a plug-in may break since
        steps.add("board identity", "fail", _one_line(exc))
        steps.skip(rest[1:], "the board driver cannot be loaded")
        return
    serial = "serial" in driver.recognition.transports and not address.upper().endswith(
        ("::INSTR", "::SOCKET")
    )
    visa_library = str(options.get("visa_library", DEFAULT_VISA_LIBRARY))
    finding = discover(
        visa_library=visa_library,
        resources=[] if serial else [address],
        ports=[address] if serial else [],
        list_visa_resources=False,
        list_serial_ports=False,
        timeout_s=min(timeout_s, station.board.timeout_s),
        known=None,
    ).findings[0]
    if not _identity_step(
        steps,
        "board identity",
        "board",
        finding,
        configured=station.board.driver,
        key="[board] driver",
    ):
        steps.skip(rest[1:], "the board was not identified")
        return
    try:
        board = driver.open(
            BoardConnection(
                address,
                timeout_s=station.board.timeout_s,
                retries=station.board.retries,
                max_dac_voltage_V=station.limits.max_dac_voltage_V,
                max_pulse_voltage_V=station.limits.max_pulse_voltage_V,
                options=options,
            )
        )
    except (InstrumentError, PluginError, ValueError, OSError) as exc:
        steps.add("board driver", "fail", _one_line(exc), "the message says what the driver needs")
        steps.skip(rest[2:], "the board driver did not connect")
        return
    try:
        steps.add(
            "board driver",
            "pass",
            f"{board.name}: {format_capabilities(board.capabilities)}",
            capabilities=sorted(c.value for c in board.capabilities),
        )
        _board_geometry(station, board, steps)
        _board_state(board, steps)
        _board_limits(station, board, steps)
    finally:
        board.close()


def _board_geometry(station: Station, board: Board, steps: _Steps) -> None:
    g = board.geometry
    have = (g.rows, g.cols, g.branches)
    text = format_geometry(have)
    expected = station.board.geometry
    if expected is None:
        steps.add(
            "board geometry",
            "pass",
            f"{text} ({board.element_kind}s); the file names none: add [board] geometry = "
            f'"{text}" to have labrss refuse another board',
            geometry=text,
        )
    elif expected == have:
        steps.add("board geometry", "pass", f"{text}, as the file says", geometry=text)
    else:
        steps.add(
            "board geometry",
            "fail",
            f"the board is {text}, the file says {format_geometry(expected)}",
            "another board is connected, or correct [board] geometry",
            geometry=text,
        )


def _board_state(board: Board, steps: _Steps) -> None:
    if board.is_safe():
        steps.add("board state", "pass", "safe (every switch open, routing open)", safe=True)
    else:
        steps.add(
            "board state",
            "fail",
            "the board does not report its safe state (switches or routing left closed)",
            "labrss puts it in the safe state when it opens the station (labrss selftest "
            "checks that); this check's close does too",
            safe=False,
        )


def _board_limits(station: Station, board: Board, steps: _Steps) -> None:
    limits = station.limits
    parts: list[str] = []
    problems: list[str] = []
    r_min, origin = min_element_resistance(limits, board.info)
    parts.append(f"power check with R_min {r_min:g} ohm ({origin})")
    if Capability.DACS in board.capabilities and math.isfinite(board.dac_range_V):
        parts.append(
            f"DACs +-{board.dac_range_V:g} V, station limit {limits.max_dac_voltage_V:g} V"
        )
        if limits.max_dac_voltage_V > board.dac_range_V:
            problems.append(
                f"[limits] max_dac_voltage_V = {limits.max_dac_voltage_V:g} V is beyond the "
                f"board's DAC range +-{board.dac_range_V:g} V (the driver clamps to it)"
            )
    pulse = board.pulse_limits
    if pulse is not None:
        parts.append(
            f"pulses up to {pulse.max_amplitude_V:g} V, station limit "
            f"{limits.max_pulse_voltage_V:g} V"
        )
    if board.element_kind != "resistor":
        rd = read_disturb_limits(limits, board.set_threshold_min_V, board.reset_threshold_min_V)
        parts.append(
            f"read disturb: SET threshold {rd.set_threshold_V:g} V ({rd.set_origin}), RESET "
            f"{rd.reset_threshold_V:g} V ({rd.reset_origin})"
        )
        if not (math.isfinite(rd.set_threshold_V) and math.isfinite(rd.reset_threshold_V)):
            problems.append(
                "the board reports no switching threshold: every memristor read will be "
                "refused until [limits] memristor_set_threshold_V / "
                "memristor_reset_threshold_V are set"
            )
    if problems:
        steps.add("board limits", "fail", "; ".join(parts), "; ".join(problems), r_min_ohm=r_min)
    else:
        steps.add("board limits", "pass", "; ".join(parts), r_min_ohm=r_min)
