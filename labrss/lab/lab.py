"""`Lab`: the bench operations over a station's instruments, always leaving the bench safe.

    from labrss.lab import Lab
    with Lab() as lab:                       # no station: the embedded simulator
        r = lab.measure_branch(2, 3, 0)      # ohm, S, with the reading's metadata
        print(r.resistance_ohm, r.conductance_S, r.limit_tripped)

`Lab` opens the SMU (`drivers.smu.open_smu`) and the board (`drivers.board.Board`), each
through the driver the station names (installed drivers are plug-ins: `drivers.plugins`),
from the station's addresses; an address of ``"sim"`` (the default) is replaced by the
embedded simulator's (`simulator.bench.SimulatedBench`, started on loopback ports), so
hardware and simulator share one code path.

Benches differ: `Lab` codes against the board interface only, and an operation that needs
what the bench lacks (row DACs, ADCs, a pulse circuit, 4-wire sense: the board's
``capabilities``) raises `drivers.board.MissingCapabilityError` naming it before anything
is sent; `require` lets a workflow check everything it needs up front.

Safety:
* Every request is checked against the station's limits (source voltage, DAC voltage,
  worst-case power per element: see `labrss.lab.safety`) before anything is switched.
* On a board with memristors, every read and MVM voltage is also kept below a safe
  fraction of the devices' switching thresholds (read disturb: ``[limits]
  read_disturb_fraction`` times the smallest threshold of each polarity, from
  ``BOARD:INFO?`` or the station; `read_disturb_limits`, `labrss.lab.safety`).
* The SMU's compliance comes from the station and is set before the output goes on; the
  output is on only while a reading is taken (and while columns are read at 0 V).
* Break-before-make: the board opens before it closes within one command and on every
  routing change; `Lab` also opens the previous cell it measured before it closes branches
  in a new one.
* No hot switching: the SMU output is off whenever a switch changes (it is on only during
  a reading), and no switch changes while the DACs may drive the rows. Before
  `set_cell_mask`, `set_masks`, `open_all` or a cell read changes a switch with the board
  in MVM routing and a DAC not at 0 V, `Lab` zeroes every DAC and opens the routing first
  (so `apply_rows` must be called again before the next `read_columns`).
* Leaving the ``with`` block by any path (normal exit, exception, KeyboardInterrupt), and
  any failure while opening, puts the bench in the safe state: SMU output at 0 V and off,
  every switch open, every DAC at 0 V, routing open. Clean-up is best effort on each
  instrument and never masks the exception that ended the block.

Memristor boards: `pulse_branch` applies programming pulses through the board's pulse
circuit, refused before anything is sent beyond ``[limits] max_pulse_voltage_V``, the
worst-case pulse power per element, or the board's ``PULSe:LIMits?``; `cell_kind` tells
resistor from memristor cells; `wait_s` lets time pass (a sleep on hardware; on the
embedded simulator it advances the virtual clock, so drift studies of days run in
seconds); `clock_s` is the bench's clock.

A `Lab` is not thread-safe: use it from one thread (the GUI runs it in a worker thread).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from drivers.board import Board, BoardGeometry, Capability, CellKind, SwitchWear
from drivers.errors import (
    BoardError,
    InstrumentCommandError,
    InstrumentError,
    InstrumentIdentityError,
    InstrumentLimitError,
)
from drivers.plugins import (
    BoardConnection,
    PluginError,
    UnknownDriverError,
    board_drivers,
    find_board_driver,
)
from drivers.smu import SafetyLimits, SeriesPoint, SMUReading, SourceMeter, open_smu
from drivers.thermal import TemperatureController
from labrss.lab.errors import BenchNotSafeError, LabError, LabInputError, SafetyLimitError
from labrss.lab.guarded_board import BoardDriverError, GuardedBoard
from labrss.lab.readings import ColumnPath, ColumnReading, Reading, ReadingKind
from labrss.lab.safety import (
    NO_TOLERANCE_MARGIN,
    ReadDisturbLimits,
    check_row_voltages,
    check_source_voltage,
    min_element_resistance,
    read_disturb_limits,
)
from labrss.lab.switch_wear import RelayWearWarning, wear_warnings
from labrss.lab.thermal_controller import open_station_thermal
from labrss.station import Station, StationError, default_station
from labrss.station.config import (
    DEFAULT_VISA_LIBRARY,
    NPLC_MAX,
    NPLC_MIN,
    format_geometry,
)

if TYPE_CHECKING:
    from simulator.bench import SimulatedBench

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

_Routing = tuple[str, int, int, bool]
"""What `Lab` last routed: (kind, row, col, four_wire); kinds "cell", "mvm_adc", "mvm_smu"."""


@dataclass(frozen=True)
class PulseRecord:
    """Programming pulses applied by `Lab.pulse_branch` (one ``PULSe`` command).

    Attributes:
        branch: ``(row, col, branch)``.
        amplitude_V: pulse amplitude (V): > 0 SET (towards higher conductance), < 0 RESET.
        width_s: width of each pulse (s).
        count: number of pulses.
        duration_s: time the board's pulse circuit took (s): isolation, pulses, gaps.
        clock_s: the bench clock (`Lab.clock_s`) when the command completed (s).
    """

    branch: tuple[int, int, int]
    amplitude_V: float
    width_s: float
    count: int
    duration_s: float
    clock_s: float


def _check_range(current_range_A: float | None) -> None:
    """A fixed current range must be finite and > 0 (A); None: the station's."""
    if current_range_A is not None and not (math.isfinite(current_range_A) and current_range_A > 0):
        raise LabInputError(f"current range {current_range_A!r} A must be finite and > 0")


class Lab:
    """The bench of one station, as a context manager (see the module docstring).

    Args:
        station: the station to open; ``None`` is `labrss.station.default_station()`:
            everything on the embedded simulator.

    Attributes (while open):
        station: the station in use.
        simulated: whether any instrument is the embedded simulator's.
        simulator: the embedded `SimulatedBench` when one was started, else None (its
            ``model`` holds the ground truth: for tests and studies only).
        smu, board: the drivers, for what `Lab` does not offer; switching through them
            behind `Lab`'s back invalidates its routing bookkeeping (call `safe()` after).
        geometry: the board's (rows, cols, branches).
        identities: ``{"smu": *IDN? reply, "board": *IDN? reply}``.
        instrument_time_s: integration time accumulated over every SMU reading taken (s):
            NPLC / line frequency per reading, instrument time as opposed to wall time.
        readings_taken: how many SMU readings `Lab` has taken.
        pulses_applied: programming pulses `Lab` has applied (each pulse of a burst counts).
        pulse_time_s: time the board's pulse circuit spent on them (s, instrument time).
    """

    def __init__(self, station: Station | None = None) -> None:
        self.station: Station = station if station is not None else default_station()
        self.simulator: SimulatedBench | None = None
        self._smu: SourceMeter | None = None
        self._board: Board | None = None
        self._thermal: TemperatureController | None = None
        self._r_min: tuple[float, str] = (math.nan, "")
        self._read_disturb: ReadDisturbLimits | None = None
        self.last_write_s: dict[tuple[int, int, int], float] = {}
        """Bench clock (`clock_s`) at the end of the last write (pulse or source step) of
        each branch this `Lab` wrote: when its device was last programmed (retention)."""
        self._sourced_branch: tuple[int, int, int] | None = None
        """The branch `source_branch` left alone closed on the board (None: unknown)."""
        self._smu_source: tuple[float, float] | None = None
        self._smu_measure: tuple[float, float | None, bool] | None = None
        self._routing: _Routing | None = None
        self._measured_cell: tuple[int, int] | None = None
        self._measured_mask: int | None = None  # the mask `_measured_cell` was given
        self._row_voltages_V: npt.NDArray[np.float64] = np.zeros(0)
        self._unsettled = True
        self._wear_warned: set[str] = set()
        self.instrument_time_s = 0.0
        self.readings_taken = 0
        self.pulses_applied = 0
        self.pulse_time_s = 0.0

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Lab:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(exc)

    def open(self) -> Lab:
        """Open the station: simulator if needed, SMU, board, identity checks, safe state.

        On any failure everything opened so far is made safe and closed, then the error
        propagates (identity mismatches as `InstrumentIdentityError` naming the station
        file, the address and what answered).
        """
        if self._board is not None:
            return self
        try:
            self._open()
        except BaseException as exc:
            self.close(exc)
            raise
        return self

    def _open(self) -> None:
        st = self.station
        smu_address, board_address = st.smu.address, st.board.address
        if st.uses_simulator:
            if st.smu.simulated != st.board.simulated:
                log.warning(
                    "%s: only one instrument is simulated; the simulated SMU measures the "
                    "simulated board only",
                    st.name,
                )
            self.simulator = self._start_simulator()
            if st.smu.simulated:
                smu_address = self.simulator.smu_resource
            if st.board.simulated:
                board_address = self.simulator.board_address

        limits = SafetyLimits(
            max_voltage_V=st.limits.max_source_voltage_V,
            max_current_A=st.limits.compliance_current_A,
        )
        try:
            self._smu = open_smu(
                st.smu.driver,
                smu_address,
                limits,
                timeout_s=st.smu.timeout_s,
                channel=st.smu.channel,
                visa_library=DEFAULT_VISA_LIBRARY if st.smu.simulated else st.smu.visa_library,
            )
        except InstrumentIdentityError as exc:
            raise InstrumentIdentityError(
                f"{exc.detail}; {st.name} says [smu] driver = {st.smu.driver!r} at "
                f"{smu_address!r}: fix the driver or the address",
                instrument=exc.instrument,
                command=exc.command,
            ) from exc
        self._board = self._open_board(board_address)
        self._check_geometry(board_address)
        self._thermal = self._open_thermal()
        self._warn_wear()
        self._r_min = min_element_resistance(st.limits, self._board.info)
        if self._board.element_kind != "resistor":
            self._read_disturb = read_disturb_limits(
                st.limits, self._board.set_threshold_min_V, self._board.reset_threshold_min_V
            )
        log.info(
            "opened %s: SMU %s at %s, board %s at %s; R_min %.4g ohm from %s",
            st.name,
            self._smu.identity,
            smu_address,
            self._board.identity,
            board_address,
            *self._r_min,
        )
        self.safe()

    def _check_geometry(self, address: str) -> None:
        """Refuse a board whose geometry is not the station's ``[board] geometry``."""
        expected = self.station.board.geometry
        board = self._board
        assert board is not None
        g = board.geometry
        if expected is None or (g.rows, g.cols, g.branches) == expected:
            return
        raise InstrumentIdentityError(
            f"the board at {address!r} is {g.rows}x{g.cols}x{g.branches} but "
            f"{self.station.name} says [board] geometry = {format_geometry(expected)!r}: "
            "another board is connected, or the station file is wrong",
            instrument=board.name,
        )

    def _open_board(self, address: str) -> Board:
        """The station's board through its driver (a plug-in, `drivers.plugins`)."""
        st = self.station
        try:
            driver = find_board_driver(st.board.driver)
        except (UnknownDriverError, PluginError) as exc:
            raise StationError(st.name, "[board] driver", st.board.driver, str(exc)) from exc
        installed = board_drivers().get(st.board.driver)
        label = installed.label if installed is not None else repr(st.board.driver)
        options = dict(st.board.options)
        matrix = self.simulator.matrix if self.simulator is not None else None
        if st.board.simulated and matrix is not None:
            options.setdefault("layout", str(matrix.layout_path))  # the simulated wiring
        connection = BoardConnection(
            address,
            timeout_s=st.board.timeout_s,
            retries=st.board.retries,
            max_dac_voltage_V=st.limits.max_dac_voltage_V,
            max_pulse_voltage_V=st.limits.max_pulse_voltage_V,
            options=options,
        )
        try:
            board = driver.open(connection)
        except (StationError, PluginError):
            raise
        except InstrumentIdentityError as exc:
            raise type(exc)(
                f"{exc.detail}; {st.name} says [board] driver = {st.board.driver!r} at "
                f"[board] address = {address!r}: fix the driver or the address",
                instrument=exc.instrument,
                command=exc.command,
            ) from exc
        except (InstrumentError, ValueError, KeyboardInterrupt):
            raise
        except Exception as exc:  # a plug-in's own failure, named with the driver
            raise BoardDriverError(
                f"failed ({type(exc).__name__}: {exc})",
                driver=label,
                operation=f"open({address!r})",
                instrument=f"board driver {label} at {address}",
            ) from exc
        if not isinstance(board, Board):
            raise PluginError(
                f"board driver {label}: open() returned a {type(board).__name__}, "
                "not a drivers.board.Board"
            )
        try:
            return GuardedBoard(board, label)
        except BaseException:
            with contextlib.suppress(Exception):
                board.close()
            raise

    def _board_emulator(self) -> Callable[[Any], Any] | None:
        """A plug-in's own protocol emulator (``BoardDriver.simulator = "module:attr"``)."""
        driver = find_board_driver(self.station.board.driver)
        ref = driver.simulator
        if ref is None or ":" not in ref:
            return None
        module_name, _, attribute = ref.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise PluginError(
                f"board driver {self.station.board.driver!r}: its simulator {ref!r} cannot be "
                f"loaded: {exc}"
            ) from exc
        if not callable(factory):
            raise PluginError(
                f"board driver {self.station.board.driver!r}: its simulator {ref!r} is not callable"
            )
        return cast(Callable[[Any], Any], factory)

    def _open_thermal(self) -> TemperatureController | None:
        """The station's temperature controller (``[thermal]``), or None without one."""
        th = self.station.thermal
        if th is None:
            return None
        address = th.address
        if th.simulated:
            if self.simulator is None or self.simulator.thermal is None:
                raise LabError(f"{self.station.name}: the simulated thermal stage is not running")
            address = self.simulator.thermal_resource
        controller = open_station_thermal(th, address)
        log.info("opened the thermal stage %s at %s", controller.identity, address)
        return controller

    @property
    def has_thermal(self) -> bool:
        """Whether the station has a thermal stage (``[thermal]``) and it is open."""
        return self._thermal is not None

    @property
    def thermal(self) -> TemperatureController:
        """The thermal stage's controller; LabError naming the station without one."""
        if self._thermal is None:
            raise LabError(
                f"{self.station.name} has no thermal stage: add a [thermal] section "
                "(docs/temperature.md)"
            )
        return self._thermal

    def _start_simulator(self) -> SimulatedBench:
        from simulator.bench import SimulatedBench

        sim = self.station.simulator
        protocol = self._board_emulator() if self.station.board.simulated else None
        th = self.station.thermal
        try:
            bench = SimulatedBench(
                sim.board,
                sim.seed,
                smu_model=sim.smu_model,
                realtime_factor=sim.realtime_factor,
                board_protocol=protocol,
                bench=sim.bench,
                thermal=th is not None and th.simulated,
            )
        except (ValueError, OSError) as exc:  # bad preset name or board file
            raise StationError(
                self.station.name, "[simulator] board", sim.board, f"cannot build the board: {exc}"
            ) from exc
        return bench.start()

    def switch_wear(self) -> SwitchWear | None:
        """The board's per-switch operation counts (``switch-counts``), else None."""
        board = self._require_board()
        if Capability.SWITCH_COUNTS not in board.capabilities:
            return None
        return board.switch_wear()

    def _warn_wear(self, stacklevel: int = 5) -> None:
        """Warn (`RelayWearWarning`, and the log) for each switch newly near its rated life;
        ``stacklevel`` points the warning at the caller's ``with Lab(...)`` line."""
        try:
            wear = self.switch_wear()
        except Exception as exc:  # the counters are advisory: never fail a bench over them
            log.warning("could not read the switch counts: %s", exc)
            return
        if wear is None:
            return
        for name, message in wear_warnings(wear, self._require_board().name).items():
            key = f"{name}:{'past' if 'is PAST' in message else 'near'}"  # warn again past it
            if key not in self._wear_warned:
                self._wear_warned.add(key)
                log.warning("%s", message)
                warnings.warn(message, RelayWearWarning, stacklevel=stacklevel)

    def close(self, exc: BaseException | None = None) -> None:
        """Make the bench safe, then close the instruments and stop the simulator.

        ``exc`` is the exception ending the caller's block, if any: a failure to reach the
        safe state is then only logged (never masking ``exc``); with no ``exc`` it raises
        `BenchNotSafeError` (after closing everything). Idempotent.
        """
        if exc is None and self._board is not None:
            self._warn_wear(stacklevel=4)  # a long run may have crossed the threshold
        try:
            if exc is not None and self._thermal is not None:
                self._thermal_safe()
            if self._smu is not None or self._board is not None:
                self.safe()
        except Exception as cleanup:
            if exc is None:
                raise
            log.error("while handling %r, the bench could not be made safe: %s", exc, cleanup)
        finally:
            self._disconnect()

    def _thermal_safe(self) -> None:
        """An interrupted block leaves the stage ramping to the station's safe set point
        (best effort: logged, never raised over the interruption)."""
        assert self._thermal is not None
        try:
            self._thermal.safe()
            log.warning(
                "the thermal stage is ramping to its safe set point %.2f degC",
                self._thermal.limits.safe_C,
            )
        except Exception as cleanup:
            log.error("the thermal stage could not be sent to its safe set point: %s", cleanup)

    def _disconnect(self) -> None:
        """Close the board, then the SMU, then stop the simulator (best effort on each)."""
        closers: list[tuple[str, Callable[[], None]]] = []
        if self._board is not None:
            closers.append(("board", self._board.close))
        if self._thermal is not None:
            closers.append(("thermal stage", self._thermal.close))
        if self._smu is not None:
            closers.append(("SMU", self._smu.close))
        if self.simulator is not None:
            closers.append(("simulator", self.simulator.stop))
        self._board = None
        self._thermal = None
        self._smu = None
        for name, closer in closers:
            try:
                closer()
            except Exception as exc:
                log.error("closing the %s failed: %s", name, exc)
        self.simulator = None
        self._forget_state()

    def safe(self) -> None:
        """Put the bench in the safe state; best effort on each instrument.

        SMU: `shutdown()` (0 V, output off), confirmed by an error-queue query. Board:
        ``SAFE`` (every switch open, routing open, every DAC at 0 V), confirmed by
        ``SAFE?``; if that fails, each of the three separately.

        Raises:
            BenchNotSafeError: something could not be made safe (after trying everything).
        """
        failures: list[str] = []
        first: BaseException | None = None
        if self._smu is not None:
            try:
                self._smu.shutdown()
                # shutdown() only writes (SCPI set commands have no reply); the error-queue
                # query is answered after every preceding command has run (instruments
                # execute in order), so its reply confirms the output really is off.
                self._smu.check_errors("shutdown")
            except InstrumentCommandError as exc:
                log.warning("SMU error queue at shutdown (the output is off): %s", exc)
            except Exception as exc:
                failures.append(f"SMU shutdown: {exc}")
                first = first or exc
        if self._board is not None:
            try:
                self._board.safe()
                if not self._board.is_safe():
                    raise BenchNotSafeError(f"{self._board.identity}: SAFE? answers 0 after SAFE")
            except Exception as exc:
                failures.append(f"board SAFE: {exc}")
                first = first or exc
                link_gone = (isinstance(exc, BoardError) and exc.code is None) or (
                    isinstance(exc, BoardDriverError) and exc.link_lost
                )
                if link_gone:
                    steps = []  # the link is gone: the board goes safe on link loss by itself
                else:
                    board = self._board
                    steps = [board.open_all, board.route_open]
                    if board.has(Capability.DACS):
                        steps.insert(1, board.zero_dacs)
                for step in steps:
                    try:
                        step()
                    except Exception as step_exc:
                        failures.append(f"board {step.__name__}: {step_exc}")
        self._forget_state()
        if failures:
            raise BenchNotSafeError(
                "the bench could not be made safe; check by hand that the SMU output is off, "
                "every switch is open and the DACs are at 0 V: " + "; ".join(failures)
            ) from first

    def _forget_state(self) -> None:
        self._sourced_branch = None
        self._smu_source = None
        self._smu_measure = None
        self._routing = None
        self._measured_cell = None
        self._unsettled = True
        rows = self._board.geometry.rows if self._board is not None else 0
        self._row_voltages_V = np.zeros(rows)

    # ------------------------------------------------------------------ properties
    def _require_board(self) -> Board:
        if self._board is None:
            raise LabError("the Lab is not open: use `with Lab(station) as lab:`")
        return self._board

    def _require_smu(self) -> SourceMeter:
        if self._smu is None:
            raise LabError("the Lab is not open: use `with Lab(station) as lab:`")
        return self._smu

    @property
    def smu(self) -> SourceMeter:
        """The SMU driver (see the class docstring before using it directly)."""
        return self._require_smu()

    @property
    def board(self) -> Board:
        """The board driver (see the class docstring before using it directly)."""
        return self._require_board()

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What the board has (`drivers.board.Capability`)."""
        return self._require_board().capabilities

    def require(self, *capabilities: Capability, needed_by: str) -> None:
        """Refuse, before anything is sent, what the bench cannot do.

        Raises:
            MissingCapabilityError: naming every absent capability and ``needed_by``.
        """
        self._require_board().require(*capabilities, needed_by=needed_by)

    def require_reads(self, *, needed_by: str) -> None:
        """Refuse a workflow whose default cell reads the bench cannot take (the station's
        ``[measurement] four_wire = true`` on a bench without 4-wire sense)."""
        if self.station.measurement.four_wire:
            self.require(
                Capability.FOUR_WIRE,
                needed_by=f"{needed_by} with [measurement] four_wire = true ({self.station.name})",
            )

    @property
    def simulated(self) -> bool:
        """Whether any instrument of the station is the embedded simulator's."""
        return self.station.uses_simulator

    @property
    def geometry(self) -> BoardGeometry:
        """The board's rows, cols and branches."""
        return self._require_board().geometry

    @property
    def identities(self) -> dict[str, str]:
        """The instruments' ``*IDN?`` replies: ``{"smu": ..., "board": ...}``."""
        return {"smu": self._require_smu().identity, "board": self._require_board().identity}

    @property
    def min_element_resistance_ohm(self) -> float:
        """The smallest element resistance (ohm) assumed by the power check."""
        self._require_board()
        return self._r_min[0]

    @property
    def read_disturb_limits(self) -> ReadDisturbLimits | None:
        """The read / MVM voltage limits on memristor cells (None on a resistor board)."""
        self._require_board()
        return self._read_disturb

    def check_read_voltage(
        self, read_voltage_V: float, cells: list[tuple[int, int]] | None = None
    ) -> None:
        """Refuse, before anything is switched, a cell-read voltage that a read of any of
        ``cells`` (default: every cell) would not be allowed: the station's voltage and
        power limits and, on a board with memristors, the read-disturb limits
        (`SafetyLimitError`). For runs that check their settings up front (a calibration
        reads each cell at +V and, with reversal, -V: check both)."""
        g = self.geometry
        chosen = (
            cells if cells is not None else [(r, c) for r in range(g.rows) for c in range(g.cols)]
        )
        kinds: dict[str, tuple[int, int]] = {}
        for r, c in chosen:
            kinds.setdefault(self.cell_kind(r, c) if self._read_disturb else "any", (r, c))
        for cell in kinds.values():
            self._read_voltage(read_voltage_V, cell)

    @property
    def max_row_voltage_V(self) -> float:
        """Largest |row DAC voltage| (V) `apply_rows` accepts in both polarities: the
        station's ``max_dac_voltage_V``, and on a board with memristors the read-disturb
        limit of both polarities (when a threshold is unknown, `apply_rows` refuses every
        non-zero voltage on such a board, naming the setting to give)."""
        self._require_board()
        limit = self.station.limits.max_dac_voltage_V
        if self._read_disturb is not None and math.isfinite(self._read_disturb.max_either_V):
            return min(limit, self._read_disturb.max_either_V)
        return limit

    # ------------------------------------------------------------------ validation
    def _check_cell(self, r: int, c: int) -> None:
        g = self.geometry
        for name, value, size in (("row", r, g.rows), ("column", c, g.cols)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise LabInputError(f"{name} must be an integer, got {value!r}")
            if not 0 <= value < size:
                raise LabInputError(
                    f"{name} {value} not on the board "
                    f"({self.board.identity}: {name}s 0..{size - 1})"
                )

    def _check_mask(self, mask: int) -> None:
        k = self.geometry.branches
        if isinstance(mask, bool) or not isinstance(mask, int | np.integer):
            raise LabInputError(f"mask must be an integer, got {mask!r}")
        if not 0 <= mask < 1 << k:
            raise LabInputError(f"mask {mask:#x} has bits beyond the board's {k} branches")

    def _nplc(self, nplc: float | None) -> float:
        value = self.station.measurement.nplc if nplc is None else float(nplc)
        if not NPLC_MIN <= value <= NPLC_MAX:
            raise LabInputError(f"NPLC {value!r} outside {NPLC_MIN}..{NPLC_MAX}")
        return value

    def _four_wire(self, four_wire: bool | None) -> bool:
        value = self.station.measurement.four_wire if four_wire is None else bool(four_wire)
        if value:
            self.require(Capability.FOUR_WIRE, needed_by="a 4-wire cell read")
        return value

    def _read_voltage(self, read_voltage_V: float | None, cell: tuple[int, int]) -> float:
        value = (
            self.station.measurement.read_voltage_V
            if read_voltage_V is None
            else float(read_voltage_V)
        )
        if value == 0.0:
            raise LabInputError("read voltage must be non-zero (R = V / I)")
        check_source_voltage(value, self.station.limits, self._r_min)
        if self._read_disturb is not None:
            # Guarded cell routing: +V on the read cell, -V on the other closed cells.
            read_cell_is_memristor = self.cell_kind(*cell) == "memristor"
            polarities = ("same", "opposite") if read_cell_is_memristor else ("opposite",)
            self._read_disturb.check(value, what="read voltage", polarities=polarities)
        return value

    # ------------------------------------------------------------------ SMU
    def _configure_smu(
        self,
        level_V: float,
        nplc: float,
        four_wire: bool,
        current_range_A: float | None,
        *,
        defer_level: bool = False,
        measurement: bool = True,
    ) -> SourceMeter:
        """Send only what changed: compliance and level, then the measurement settings.

        ``defer_level``: a changed level (same compliance) is left to the reading
        (`SourceMeter.measure_once`), which sets it in the same exchange; the caller
        records it in ``_smu_source`` once the reading succeeded. ``measurement`` False:
        the measurement settings too are left to the readings (`SourceMeter.measure_series`)."""
        smu = self._require_smu()
        source = (level_V, self.station.limits.compliance_current_A)
        if self._smu_source is None or self._smu_source[1] != source[1]:
            self._smu_source = None
            smu.configure_voltage_source(level_V, source[1])
            self._smu_source = source
        elif self._smu_source != source and not defer_level:
            self._smu_source = None
            smu.set_voltage(level_V)
            self._smu_source = source
        measure = (nplc, current_range_A, four_wire)
        if measurement and self._smu_measure != measure:
            self._smu_measure = None
            smu.configure_measurement(
                nplc=nplc, current_range_A=current_range_A, four_wire=four_wire
            )
            self._smu_measure = measure
        return smu

    def _account(self, reading: SMUReading) -> None:
        self.readings_taken += 1
        self.instrument_time_s += reading.nplc / self.station.measurement.line_frequency_Hz

    @contextmanager
    def _output_on(self, smu: SourceMeter) -> Iterator[None]:
        """SMU output on for the block, off after it, confirmed before anything else happens.

        ``:OUTP OFF`` has no reply, so the error-queue query that follows is the proof that
        the instrument executed it (commands run in order) before `Lab` switches anything:
        no hot switching. On any failure the whole bench goes safe.
        """
        try:
            with smu.output_on():
                yield
            smu.check_errors("output off")
        except BaseException:
            self._safe_after_failure()
            raise

    def _safe_after_failure(self) -> None:
        try:
            self.safe()
        except Exception as exc:
            log.error("after a failed operation the bench could not be made safe: %s", exc)

    # ------------------------------------------------------------------ cell reads
    def _route(self, routing: _Routing) -> None:
        if self._routing == routing:
            return
        board = self._require_board()
        self._routing = None
        self._unsettled = True
        kind, r, c, four_wire = routing
        if kind == "cell":
            board.route_cell(r, c, four_wire=four_wire)
        elif kind == "mvm_adc":
            board.route_mvm_adc()
        else:
            board.route_mvm_smu(c)
        self._routing = routing

    def _settle(self) -> None:
        """Wait out the board's declared settling time after a switch or routing change
        (``Board.settle_time_s``; 0 on the crossbar board, whose commands include it)."""
        settle_s = self._require_board().settle_time_s
        if self._unsettled and settle_s > 0:
            self._pass_time(settle_s)
        self._unsettled = False

    def _read_cell(
        self,
        r: int,
        c: int,
        mask: int,
        kind: ReadingKind,
        *,
        level_V: float,
        nplc: float,
        four_wire: bool,
        current_range_A: float | None = None,
    ) -> Reading:
        smu = self._configure_smu(
            level_V,
            nplc,
            four_wire,
            self.station.measurement.current_range_A
            if current_range_A is None
            else current_range_A,
            defer_level=True,
        )
        self._route(("cell", r, c, four_wire))
        self._settle()
        source = (level_V, self.station.limits.compliance_current_A)
        new_level = None if self._smu_source == source else level_V
        try:
            # Output on for this reading alone; off and confirmed (error queue read) when
            # it returns, in one exchange where the driver can: nothing is switched hot.
            self._smu_source = None
            raw = smu.measure_once(new_level)
            self._smu_source = source
        except BaseException:
            self._safe_after_failure()
            raise
        return self._reading(raw, (int(r), int(c)), int(mask), kind, level_V)

    def _reading(
        self, raw: SMUReading, cell: tuple[int, int], mask: int, kind: ReadingKind, level_V: float
    ) -> Reading:
        """The `Reading` of an SMU reading of ``cell`` holding ``mask`` (accounted)."""
        self._account(raw)
        return Reading(
            resistance_ohm=raw.resistance_ohm,
            conductance_S=raw.conductance_S,
            voltage_V=raw.voltage_V,
            current_A=raw.current_A,
            limit_tripped=raw.limit_tripped,
            current_range_A=raw.current_range_A,
            nplc=raw.nplc,
            four_wire=raw.four_wire,
            time_s=raw.timestamp_s,
            instrument=raw.instrument,
            cell=cell,
            mask=mask,
            kind=kind,
            source_voltage_V=level_V,
        )

    def measure_subset(
        self,
        r: int,
        c: int,
        mask: int,
        *,
        nplc: float | None = None,
        read_voltage_V: float | None = None,
        four_wire: bool | None = None,
        current_range_A: float | None = None,
    ) -> Reading:
        """Measure cell (r, c) with exactly the branches of ``mask`` closed.

        The previous cell `Lab` measured is opened first (break-before-make between
        cells), the mask is written and verified, the cell is routed (guarded, 2- or
        4-wire), then the SMU sources ``read_voltage_V`` (V; default from the station) and
        measures the current for ``nplc`` power-line cycles (default from the station).
        The cell keeps ``mask`` afterwards. Every check (indices, mask, voltage and power
        limits) happens before anything is switched. ``current_range_A`` fixes the SMU's
        current range for this read (A; default: the station's, autorange when it has none):
        calibration's range linking reads one subset on two adjacent ranges.

        Returns:
            the `Reading` (R in ohm, G in S, with the SMU's metadata).
        """
        return self._measure_mask(
            r,
            c,
            mask,
            "subset",
            nplc=nplc,
            read_voltage_V=read_voltage_V,
            four_wire=four_wire,
            current_range_A=current_range_A,
        )

    def measure_branch(
        self,
        r: int,
        c: int,
        k: int,
        *,
        nplc: float | None = None,
        read_voltage_V: float | None = None,
        four_wire: bool | None = None,
    ) -> Reading:
        """Measure branch k of cell (r, c) alone: `measure_subset` with mask ``1 << k``."""
        branches = self.geometry.branches
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k < branches:
            raise LabInputError(f"branch {k!r} not on the board (branches 0..{branches - 1})")
        return self._measure_mask(
            r,
            c,
            1 << int(k),
            "branch",
            nplc=nplc,
            read_voltage_V=read_voltage_V,
            four_wire=four_wire,
        )

    def _measure_mask(
        self,
        r: int,
        c: int,
        mask: int,
        kind: ReadingKind,
        *,
        nplc: float | None,
        read_voltage_V: float | None,
        four_wire: bool | None,
        current_range_A: float | None = None,
    ) -> Reading:
        self._check_cell(r, c)
        self._check_mask(mask)
        _check_range(current_range_A)
        level_V = self._read_voltage(read_voltage_V, (int(r), int(c)))
        nplc_ = self._nplc(nplc)
        wires4 = self._four_wire(four_wire)
        cell = (int(r), int(c))
        self._hold_mask(cell, int(mask))
        return self._read_cell(
            cell[0],
            cell[1],
            int(mask),
            kind,
            level_V=level_V,
            nplc=nplc_,
            four_wire=wires4,
            current_range_A=current_range_A,
        )

    def measure_subset_series(
        self,
        r: int,
        c: int,
        mask: int,
        points: Sequence[tuple[float | None, float | None]],
        *,
        nplc: float | None = None,
        four_wire: bool | None = None,
    ) -> list[Reading]:
        """`measure_subset` for each point ``(read_voltage_V, current_range_A)`` of
        ``points`` in order (None: the station's), the cell held at ``mask`` throughout:
        a subset read at +V and -V, or on two adjacent ranges (calibration's reversal and
        range links). Each reading has the output on for it alone, as in `measure_subset`;
        the SMU driver may send several in one exchange (`SourceMeter.measure_series`).

        Every check happens before anything is switched. On a failure the bench goes safe
        and none of the series' readings are returned (a calibration resumed measures
        them again).
        """
        self._check_cell(r, c)
        self._check_mask(mask)
        cell = (int(r), int(c))
        resolved: list[tuple[float, float | None]] = []
        for read_voltage_V, current_range_A in points:
            _check_range(current_range_A)
            resolved.append(
                (
                    self._read_voltage(read_voltage_V, cell),
                    self.station.measurement.current_range_A
                    if current_range_A is None
                    else current_range_A,
                )
            )
        nplc_ = self._nplc(nplc)
        wires4 = self._four_wire(four_wire)
        if not resolved:
            return []
        self._hold_mask(cell, int(mask))
        smu = self._configure_smu(
            resolved[0][0], nplc_, wires4, resolved[0][1], defer_level=True, measurement=False
        )
        self._route(("cell", cell[0], cell[1], wires4))
        self._settle()
        try:
            # the level and the measurement settings are the readings' business now
            self._smu_source = self._smu_measure = None
            raws = smu.measure_series(
                [SeriesPoint(level, range_A) for level, range_A in resolved],
                nplc=nplc_,
                four_wire=wires4,
            )
            self._smu_source = (resolved[-1][0], self.station.limits.compliance_current_A)
            self._smu_measure = (nplc_, resolved[-1][1], wires4)
        except BaseException:
            self._safe_after_failure()
            raise
        return [
            self._reading(raw, cell, int(mask), "subset", level)
            for raw, (level, _) in zip(raws, resolved, strict=True)
        ]

    def _hold_mask(self, cell: tuple[int, int], mask: int) -> None:
        """Cell ``cell`` holding exactly ``mask``, the previous cell measured opened first
        (break-before-make between cells); nothing is written when it holds it already."""
        board = self._require_board()
        try:
            self._cold()
            if self._measured_cell is not None and self._measured_cell != cell:
                previous = self._measured_cell
                board.set_cell_mask(*previous, 0)
                self._measured_cell = None
            if self._sourced_branch is not None and (
                self._sourced_branch[:2] != cell or 1 << self._sourced_branch[2] != int(mask)
            ):
                self._sourced_branch = None
            if self._measured_cell != cell or self._measured_mask != int(mask):
                # a cell that already holds the mask (the previous reading's, nothing
                # switched since) is not written again: repeated reads of one subset (range
                # links, noise probes) do not cycle relays
                board.set_cell_mask(cell[0], cell[1], int(mask))
                self._unsettled = True
            self._measured_cell = cell
            self._measured_mask = int(mask)
        except BaseException:
            self._safe_after_failure()
            raise

    def measure_cell(
        self,
        r: int,
        c: int,
        *,
        nplc: float | None = None,
        read_voltage_V: float | None = None,
        four_wire: bool | None = None,
    ) -> Reading:
        """Measure cell (r, c) as currently programmed, without changing any switch.

        The guarded cell routing makes the reading that cell's alone whatever the other
        cells hold (up to wire resistance). The reading's ``mask`` is the cell's mask as
        the board reports it.
        """
        self._check_cell(r, c)
        level_V = self._read_voltage(read_voltage_V, (int(r), int(c)))
        nplc_ = self._nplc(nplc)
        wires4 = self._four_wire(four_wire)
        mask = self._require_board().cell_mask(int(r), int(c))
        return self._read_cell(
            int(r), int(c), mask, "cell", level_V=level_V, nplc=nplc_, four_wire=wires4
        )

    @contextmanager
    def holding_cell(
        self,
        r: int,
        c: int,
        mask: int,
        *,
        nplc: float | None = None,
        read_voltage_V: float | None = None,
    ) -> Iterator[SourceMeter]:
        """Cell (r, c) with ``mask`` closed, routed, the SMU sourcing the read voltage with
        its output on, for the ``with`` block (readings with ``smu.measure()``).

        Set up exactly as `measure_subset` (which takes one reading first, with every
        check). The output goes off when the block ends; if the block raises (an
        interruption, a failure), the whole bench goes safe before the exception propagates.
        """
        self.measure_subset(r, c, mask, nplc=nplc, read_voltage_V=read_voltage_V)
        smu = self._require_smu()
        with self._output_on(smu):
            yield smu

    # ------------------------------------------------------------------ switches
    def _cold(self) -> None:
        """No hot switching: before a switch changes, if the rows may be driven (MVM
        routing with a DAC not at 0 V), zero every DAC and open the routing. When `Lab` does
        not know the routing (after a safe state or a failure) the board is asked. The SMU
        output is already off (`_output_on` confirms it after each read)."""
        if not np.any(self._row_voltages_V != 0.0):
            return
        board = self._require_board()
        if self._routing is None:
            mvm = board.routing().startswith("MVM")
        else:
            mvm = self._routing[0] in ("mvm_adc", "mvm_smu")
        if not mvm:
            return
        log.info("rows driven in MVM routing: DACs to 0 V and routing open before switching")
        try:
            board.zero_dacs()
            self._row_voltages_V = np.zeros(self.geometry.rows)
            self._routing = None
            board.route_open()
        except BaseException:
            self._safe_after_failure()
            raise

    def set_cell_mask(self, r: int, c: int, mask: int) -> None:
        """Program cell (r, c)'s switches to ``mask`` (bit k = branch k), verified by read-back.

        Never hot: DACs driving the rows in MVM routing are zeroed and the routing opened
        first (module docstring)."""
        self._sourced_branch = None
        self._check_cell(r, c)
        self._check_mask(mask)
        self._cold()
        self._require_board().set_cell_mask(int(r), int(c), int(mask), verify=True)
        self._unsettled = True
        if self._measured_cell == (r, c):
            self._measured_cell = None

    def set_masks(self, masks: npt.ArrayLike) -> None:
        """Program every switch from an (R, C, K) bool array, row by row, verified by read-back.

        Never hot: DACs driving the rows in MVM routing are zeroed and the routing opened
        first (module docstring)."""
        self._sourced_branch = None
        g = self.geometry
        array = np.asarray(masks)
        if array.shape != (g.rows, g.cols, g.branches):
            raise LabInputError(
                f"masks must have shape (R, C, K) = {(g.rows, g.cols, g.branches)}, "
                f"got {array.shape}"
            )
        if array.dtype != np.bool_:
            if not np.isin(array, (0, 1)).all():
                raise LabInputError("masks must be boolean (or 0/1)")
            array = array.astype(bool)
        self._cold()
        self._require_board().set_masks(array, verify=True)
        self._unsettled = True
        self._measured_cell = None

    def masks(self) -> npt.NDArray[np.bool_]:
        """Every switch as the board reports it: (R, C, K) bool."""
        result: npt.NDArray[np.bool_] = self._require_board().masks()
        return result

    def open_all(self) -> None:
        """Open every switch on the board (never hot: see `set_masks`)."""
        self._sourced_branch = None
        self._cold()
        self._require_board().open_all()
        self._measured_cell = None
        self._unsettled = True

    # ------------------------------------------------------------------ MVM
    def apply_rows(self, volts_V: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Set every row DAC (V); returns the quantised voltages the board set (V).

        Checked against ``[limits] max_dac_voltage_V``, the power per element and, on a
        board with memristors, the read-disturb limit of each row voltage's polarity, before
        any DAC is written. The DACs drive the rows only in MVM routing (`read_columns`).

        On a bench without DACs (an MVM by superposition, ``board.mvm_mode``) nothing is
        set: the voltages are kept for `read_columns` ``"superposition"``, where the SMU
        sources each in turn; they are checked against ``[limits] max_source_voltage_V``
        and the power per element instead, and returned as they are.
        """
        rows = self.geometry.rows
        volts = np.asarray(volts_V, dtype=np.float64)
        if volts.shape != (rows,):
            raise LabInputError(f"row voltages must have shape ({rows},), got {volts.shape}")
        if Capability.DACS not in self.capabilities:
            for row, volts_row in enumerate(volts):
                check_source_voltage(
                    float(volts_row), self.station.limits, self._r_min, what=f"row {row} voltage"
                )
                if self._read_disturb is not None:
                    self._read_disturb.check(
                        float(volts_row), what=f"row {row} voltage", polarities=("same",)
                    )
            self._row_voltages_V = volts.copy()
            return volts.copy()
        check_row_voltages(volts, self.station.limits, self._r_min)
        if self._read_disturb is not None:
            for row, volts_row in enumerate(volts):
                self._read_disturb.check(
                    float(volts_row), what=f"row {row} voltage", polarities=("same",)
                )
        try:
            quantised = np.asarray(
                self._require_board().set_dacs([float(v) for v in volts]), dtype=np.float64
            )
        except BaseException:
            self._safe_after_failure()
            raise
        self._row_voltages_V = quantised.copy()
        return quantised

    def read_columns(self, path: ColumnPath, *, nplc: float | None = None) -> ColumnReading:
        """Read every column's current (A) with the rows at the voltages of `apply_rows`.

        ``"superposition"`` (any bench: what a bench without DACs or a column read-out
        does): for each row with a non-zero voltage, the SMU sources that voltage on the
        row through cell routing (the other rows at 0 V, the other columns guarded) and
        each column's cell current is read, output off while the routing changes; a
        column's current is the sum over the rows. The network is linear, so the sum of
        the one-source responses is the all-sources response (superposition), up to what
        the guarded routing adds (wires, guard leads). Cost: (rows driven) x C SMU
        readings and as many routing changes.

        ``"adc"``: route ``MVM ADC`` and convert every column at once (NaN and
        limit_tripped where a column overflows the ADC's full scale). ``"smu"``: the SMU
        sources 0 V (virtual ground) and each column in turn is routed to it
        (``ROUT:MVM SMU,c``, the other columns on their TIAs) and measured for ``nplc``
        power-line cycles, on the autorange (``[measurement] current_range_A`` is for cell
        reads). The column current flows INTO the SMU's HI terminal while the SMU reports
        current out of HI as positive, so the column current is the negated reading.
        """
        board = self._require_board()
        cols = self.geometry.cols
        if path == "adc":
            if nplc is not None:
                raise LabInputError("nplc applies to the SMU path only, not to the ADCs")
            self.require(Capability.DACS, Capability.ADCS, needed_by="read_columns('adc')")
            try:
                self._route(("mvm_adc", -1, -1, False))
                self._settle()
                currents = np.asarray(board.read_adcs(), dtype=np.float64)
            except BaseException:
                self._safe_after_failure()
                raise
            full_scale = board.adc_range_A
            return ColumnReading(
                path="adc",
                currents_A=currents,
                limit_tripped=~np.isfinite(currents),
                row_voltages_V=self._row_voltages_V.copy(),
                current_range_A=np.full(cols, full_scale),
                time_s=np.full(cols, math.nan),
                nplc=None,
                instrument=board.identity,
            )
        if path == "superposition":
            return self._read_columns_superposition(nplc)
        if path != "smu":
            raise LabInputError(
                f"column read path must be 'smu', 'adc' or 'superposition', got {path!r}"
            )
        self.require(Capability.DACS, Capability.MVM_SMU, needed_by="read_columns('smu')")
        nplc_ = self._nplc(nplc)
        # Autorange: column currents sum a whole column, far beyond one branch's range.
        smu = self._configure_smu(0.0, nplc_, False, None)
        currents = np.empty(cols)
        tripped = np.zeros(cols, dtype=bool)
        ranges = np.empty(cols)
        times = np.empty(cols)
        with self._output_on(smu):
            for c in range(cols):
                self._route(("mvm_smu", -1, c, False))
                self._settle()
                raw = smu.measure()
                self._account(raw)
                currents[c] = -raw.current_A
                tripped[c] = raw.limit_tripped
                ranges[c] = raw.current_range_A
                times[c] = raw.timestamp_s
        return ColumnReading(
            path="smu",
            currents_A=currents,
            limit_tripped=tripped,
            row_voltages_V=self._row_voltages_V.copy(),
            current_range_A=ranges,
            time_s=times,
            nplc=nplc_,
            instrument=smu.identity,
        )

    def _read_columns_superposition(self, nplc: float | None) -> ColumnReading:
        """`read_columns` ``"superposition"``: one row source at a time (see there)."""
        g = self.geometry
        nplc_ = self._nplc(nplc)
        volts = self._row_voltages_V.copy()
        if volts.shape != (g.rows,):
            volts = np.zeros(g.rows)
        currents = np.zeros(g.cols)
        tripped = np.zeros(g.cols, dtype=bool)
        ranges = np.zeros(g.cols)
        times = np.full(g.cols, math.nan)
        for r in np.flatnonzero(volts != 0.0):
            # autorange: a cell's current at the row voltage, not one branch's at the read V
            smu = self._configure_smu(float(volts[r]), nplc_, False, None)
            for c in range(g.cols):
                self._route(("cell", int(r), c, False))
                self._settle()
                with self._output_on(smu):
                    raw = smu.measure()
                self._account(raw)
                currents[c] += raw.current_A
                tripped[c] |= raw.limit_tripped
                ranges[c] = max(ranges[c], raw.current_range_A)
                times[c] = raw.timestamp_s
        return ColumnReading(
            path="superposition",
            currents_A=currents,
            limit_tripped=tripped,
            row_voltages_V=volts,
            current_range_A=ranges,
            time_s=times,
            nplc=nplc_,
            instrument=self._require_smu().identity,
        )

    # ------------------------------------------------------------------ memristors
    def cell_kind(self, r: int, c: int) -> CellKind:
        """``"resistor"`` or ``"memristor"``: the kind of cell (r, c)'s elements."""
        self._check_cell(r, c)
        return self._require_board().cell_kind(int(r), int(c))

    def _check_pulse_power(self, amplitude_V: float) -> None:
        """Refuse a pulse that could put more than the station's power into its element.

        The element is at most the memristor bound ``g_max_S`` from ``BOARD:INFO?`` (with
        the same margin as a nominal value without a tolerance), else ``1 / R_min``; the
        whole amplitude is across it: P = V**2 * G_max.
        """
        board = self._require_board()
        limits = self.station.limits
        if math.isfinite(board.g_max_S) and board.g_max_S > 0:
            g_max = board.g_max_S * (1 + NO_TOLERANCE_MARGIN)
            origin = f"BOARD:INFO? g_max_S x {1 + NO_TOLERANCE_MARGIN}"
        else:
            g_max, origin = 1.0 / self._r_min[0], f"1 / R_min from {self._r_min[1]}"
        power_W = amplitude_V * amplitude_V * g_max
        if power_W > limits.max_power_per_element_W:
            raise SafetyLimitError(
                f"pulse amplitude {amplitude_V!r} V could put {power_W:.4g} W into the "
                f"device (V^2 x G_max, G_max = {g_max:.4g} S from {origin}), beyond [limits] "
                f"max_power_per_element_W = {limits.max_power_per_element_W!r} W; nothing "
                "was sent",
                quantity="pulse power per element",
                value=power_W,
                limit=limits.max_power_per_element_W,
                limit_key="[limits] max_power_per_element_W",
            )

    def pulse_branch(  # noqa: PLR0917 (the order of the board's PULSe command)
        self, r: int, c: int, k: int, amplitude_V: float, width_s: float, count: int = 1
    ) -> PulseRecord:
        """Apply ``count`` programming pulses to memristor branch k of cell (r, c).

        ``amplitude_V`` (V) is signed: > 0 SET (conductance up), < 0 RESET (down);
        ``width_s`` (s) per pulse. The board isolates the branch for the pulses and restores
        every switch and the routing afterwards (docs/board-protocol.md, "Pulses"); the SMU
        output is off (`Lab` turns it on only while it reads).

        Refused before anything is sent: |amplitude| beyond ``[limits]
        max_pulse_voltage_V`` or a pulse power beyond ``max_power_per_element_W``
        (`SafetyLimitError`); bad indices or a resistor branch (`LabInputError`); a width,
        count or amplitude beyond the board's ``PULSe:LIMits?`` (the driver's
        `InstrumentLimitError`).
        """
        self._check_cell(r, c)
        branches = self.geometry.branches
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k < branches:
            raise LabInputError(f"branch {k!r} not on the board (branches 0..{branches - 1})")
        amplitude = float(amplitude_V)
        limit = self.station.limits.max_pulse_voltage_V
        if not math.isfinite(amplitude) or abs(amplitude) > limit:
            raise SafetyLimitError(
                f"pulse amplitude {amplitude_V!r} V exceeds [limits] max_pulse_voltage_V = "
                f"{limit!r} V ({self.station.name}); nothing was sent",
                quantity="pulse amplitude",
                value=amplitude,
                limit=limit,
                limit_key="[limits] max_pulse_voltage_V",
            )
        self._check_pulse_power(amplitude)
        self.require(Capability.PULSES, needed_by="pulse_branch")
        if self.cell_kind(r, c) != "memristor":
            raise LabInputError(
                f"cell ({r}, {c}) of {self.board.identity} holds resistors: only memristor "
                "branches can be pulsed"
            )
        board = self._require_board()
        try:
            duration_s = board.pulse(int(r), int(c), int(k), amplitude, float(width_s), count)
        except (InstrumentLimitError, ValueError):
            raise  # refused by the driver: nothing was sent
        except BaseException:
            self._safe_after_failure()
            raise
        self.pulses_applied += int(count)
        self.pulse_time_s += duration_s
        self.last_write_s[(int(r), int(c), int(k))] = self.clock_s()
        return PulseRecord(
            branch=(int(r), int(c), int(k)),
            amplitude_V=amplitude,
            width_s=float(width_s),
            count=int(count),
            duration_s=duration_s,
            clock_s=self.clock_s(),
        )

    def source_branch(
        self,
        r: int,
        c: int,
        k: int,
        voltage_V: float,
        *,
        compliance_A: float,
        nplc: float | None = None,
    ) -> Reading:
        """Hold ``voltage_V`` (V) across memristor branch k of cell (r, c) alone under a
        current compliance ``compliance_A`` (A), and measure the current: a **write** (the
        steps of a forming ramp or of a DC I-V sweep), not a read.

        The read-disturb guard does not apply (switching is the point); instead, before
        anything is switched or sourced: a memristor cell only; ``|voltage_V|`` within
        ``[limits] max_source_voltage_V`` (the SMU) and ``max_pulse_voltage_V`` (what a
        write may put on a device); the compliance within ``[limits]
        compliance_current_A``; the power ``V^2 G_max`` within ``max_power_per_element_W``
        (`SafetyLimitError` or `LabInputError` naming the key). Every other switch of the
        board is opened first (guarded routing puts -V on every other closed cell), then
        only branch k of the cell is closed; the SMU autoranges. The next read restores the
        station's compliance.

        Returns:
            the `Reading` (``limit_tripped`` when the compliance held the current).
        """
        self._check_cell(r, c)
        branches = self.geometry.branches
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k < branches:
            raise LabInputError(f"branch {k!r} not on the board (branches 0..{branches - 1})")
        volts = float(voltage_V)
        limits = self.station.limits
        for key, limit in (
            ("max_source_voltage_V", limits.max_source_voltage_V),
            ("max_pulse_voltage_V", limits.max_pulse_voltage_V),
        ):
            if not math.isfinite(volts) or abs(volts) > limit:
                raise SafetyLimitError(
                    f"source voltage {voltage_V!r} V on branch ({r}, {c}, {k}) exceeds "
                    f"[limits] {key} = {limit!r} V ({self.station.name}); nothing was sent",
                    quantity="source voltage",
                    value=volts,
                    limit=limit,
                    limit_key=f"[limits] {key}",
                )
        comp = float(compliance_A)
        if not (math.isfinite(comp) and 0 < comp <= limits.compliance_current_A):
            raise SafetyLimitError(
                f"compliance {compliance_A!r} A must be > 0 and within [limits] "
                f"compliance_current_A = {limits.compliance_current_A!r} A "
                f"({self.station.name}); nothing was sent",
                quantity="compliance current",
                value=comp,
                limit=limits.compliance_current_A,
                limit_key="[limits] compliance_current_A",
            )
        self._check_pulse_power(volts)
        if self.cell_kind(r, c) != "memristor":
            raise LabInputError(
                f"cell ({r}, {c}) holds resistors: only memristor branches are written"
            )
        nplc_ = self._nplc(nplc)
        board = self._require_board()
        smu = self._require_smu()
        branch = (int(r), int(c), int(k))
        try:
            if self._sourced_branch != branch or self._measured_cell != branch[:2]:
                self._sourced_branch = None
                self._cold()
                board.open_all()
                self._measured_cell = None
                board.set_cell_mask(branch[0], branch[1], 1 << branch[2])
                self._measured_cell = branch[:2]
                self._measured_mask = 1 << branch[2]
                self._sourced_branch = branch  # only this branch closed on the board
            self._smu_source = None
            smu.configure_voltage_source(volts, comp)
            self._smu_source = (volts, comp)
            measure = (nplc_, None, False)
            if self._smu_measure != measure:
                self._smu_measure = None
                smu.configure_measurement(nplc=nplc_, current_range_A=None, four_wire=False)
                self._smu_measure = measure
            self._route(("cell", int(r), int(c), False))
        except BaseException:
            self._safe_after_failure()
            raise
        with self._output_on(smu):
            raw = smu.measure()
        self._account(raw)
        self.last_write_s[branch] = self.clock_s()
        return Reading(
            resistance_ohm=raw.resistance_ohm,
            conductance_S=raw.conductance_S,
            voltage_V=raw.voltage_V,
            current_A=raw.current_A,
            limit_tripped=raw.limit_tripped,
            current_range_A=raw.current_range_A,
            nplc=raw.nplc,
            four_wire=raw.four_wire,
            time_s=raw.timestamp_s,
            instrument=raw.instrument,
            cell=(int(r), int(c)),
            mask=1 << int(k),
            kind="branch",
            source_voltage_V=volts,
        )

    def pulse_count(self, r: int, c: int, k: int) -> int:
        """Pulses the board has driven into memristor branch (r, c, k) since power-up."""
        self._check_cell(r, c)
        return self._require_board().pulse_count(int(r), int(c), int(k))

    def clock_s(self) -> float:
        """The bench's clock (s): the simulator's virtual clock on the embedded simulator,
        else the host's monotonic clock. Differences are what matter (drift studies)."""
        if self.simulator is not None:
            return self.simulator.clock.now_s
        return time.monotonic()

    def wait_s(self, seconds: float) -> None:
        """Let ``seconds`` (s) pass with the bench untouched (no instrument traffic).

        On hardware this sleeps. On the embedded simulator it advances the virtual clock
        (element drift, memristor relaxation and temperature follow it), so a week of
        retention takes no wall time. If only part of the station is simulated, it does
        both.
        """
        value = float(seconds)
        if not math.isfinite(value) or value < 0:
            raise LabInputError(f"wait time must be a finite number >= 0 s, got {seconds!r}")
        self._require_board()
        self._pass_time(value)

    def _pass_time(self, seconds: float) -> None:
        if self.simulator is not None:
            self.simulator.clock.advance(seconds)
        if not (self.station.smu.simulated and self.station.board.simulated):
            time.sleep(seconds)

    def describe(self) -> dict[str, Any]:
        """The station and the instruments in use, for run metadata (JSON-ready)."""
        g = self.geometry
        return {
            "station": self.station.name,
            "simulated": self.simulated,
            "identities": self.identities,
            "drivers": {"board": self.station.board.driver, "smu": self.station.smu.driver},
            "capabilities": sorted(c.value for c in self.capabilities),
            "geometry": {"rows": g.rows, "cols": g.cols, "branches": g.branches},
            "min_element_resistance_ohm": self._r_min[0],
            "min_element_resistance_from": self._r_min[1],
        }


def start_simulator(station: Station) -> SimulatedBench:
    """The embedded simulated bench `Lab` starts for ``station``'s ``"sim"`` addresses,
    started (the caller stops it). For checks that must not go through `Lab.open`, which
    puts the bench in the safe state: ``labrss station check``."""
    return Lab(station)._start_simulator()
