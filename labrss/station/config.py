"""The station file: which instruments, at which addresses, within which safety limits.

A station is a small TOML file (see docs/station.md). Every key has a default, and an
address of ``"sim"`` (the default) means "the embedded simulator's instrument": with no
station file at all, labrss runs entirely on the simulator through the very same code path
as on hardware, because hardware and simulator differ only by addresses.

Validation is strict: an unknown section or key, a value of the wrong type, or a value
outside its range raises `StationError`, whose message names the file, the key and the bad
value. Loading is O(size of the file).
"""

from __future__ import annotations

import datetime
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from drivers.plugins import (
    SIMULATED_BENCHES,
    BoardDriver,
    PluginError,
    SMUDriver,
    UnknownDriverError,
    find_board_driver,
    find_smu_driver,
    find_thermal_driver,
)
from drivers.thermal import ThermalLimits

SIM_ADDRESS: Final = "sim"
"""Address meaning "the embedded simulator's instrument"."""

DEFAULT_VISA_LIBRARY: Final = "@py"
"""pyvisa-py: the pure-Python VISA backend labrss installs."""
VISA_LIBRARY_ALIASES: Final = {"@ni": "@ivi"}
"""Backend names pyvisa still accepts for another (``@ni`` is the old name of ``@ivi``)."""

SIM_SMU_MODELS: Final = ("2450", "B2901A", "B2902A", "2400")
SIM_BENCHES: Final = SIMULATED_BENCHES
"""What ``[simulator] bench`` may name: the crossbar board, or a switching matrix in front
of a passive array (docs/switch-matrix.md)."""

NPLC_MIN: Final = 0.01
"""Smallest NPLC accepted: the Keithley 2450's lower bound (the B2900 goes lower)."""
NPLC_MAX: Final = 10.0
"""Largest NPLC accepted: the Keithley 2450's upper bound (the B2900 goes higher)."""
MAX_SOURCE_VOLTAGE_CEILING_V: Final = 210.0
"""Both supported SMUs source at most 210 V; a larger limit is certainly a typo."""
MAX_PULSE_VOLTAGE_CEILING_V: Final = 20.0
"""A pulse limit above 20 V is certainly a typo: memristor pulse circuits drive a few volts."""
MAX_COMPLIANCE_CEILING_A: Final = 1.05
"""The Keithley 2450's largest current limit (A); the B2900's DC limit is larger."""


class StationError(ValueError):
    """A station file that cannot be used; the message names the file, key and value."""

    def __init__(
        self, source: str, key: str | None, value: object, reason: str, *, has_value: bool = True
    ) -> None:
        self.source = source
        self.key = key
        self.value = value
        where = f"{source}: " if key is None else f"{source}: {key}"
        if key is not None and has_value:
            where += f" = {value!r}"
        if key is not None:
            where += ": "
        super().__init__(where + reason)


@dataclass(frozen=True)
class SMUSettings:
    """The source-measure unit.

    Attributes:
        driver: an installed SMU driver (``"keithley2450"``, ``"keysight_b2900"``, or a
            plug-in's; `labrss drivers` lists them).
        address: any VISA resource string, or ``"sim"`` for the embedded simulator's SMU.
        channel: SMU channel (1-based; 2 only on a two-channel model such as a B2902A).
        timeout_s: VISA I/O timeout (s).
        visa_library: the pyvisa backend that opens ``address``: ``"@py"`` (pyvisa-py,
            the default, pure Python), ``"@ivi"`` (the vendor VISA installed on the
            machine: NI-VISA, Keysight IO Libraries, R&S VISA), or the path of a VISA
            library file. The embedded simulator's SMU is always opened with ``"@py"``.
    """

    driver: str = "keithley2450"
    address: str = SIM_ADDRESS
    channel: int = 1
    timeout_s: float = 5.0
    visa_library: str = DEFAULT_VISA_LIBRARY

    @property
    def simulated(self) -> bool:
        """Whether this instrument is the embedded simulator's."""
        return self.address == SIM_ADDRESS


@dataclass(frozen=True)
class BoardSettings:
    """The board: the bench's switching hardware (drivers.board.Board).

    Attributes:
        driver: an installed board driver (``"crossbar"``: the labrss board protocol;
            ``"keysight34980a"``: a switching matrix; or a plug-in's).
        address: the driver's address: a pyserial port or URL for the crossbar board
            (``COM3``, ``/dev/ttyACM0``, ``socket://host:port``), a VISA resource for a
            switching matrix; or ``"sim"`` for the embedded simulator's.
        timeout_s: per-reply timeout (s).
        retries: how many times a transient link error is retried per command.
        options: the driver's own options (``[board.options]``, checked against what the
            driver declares; file paths resolved against the station file's directory).
        geometry: the (rows, columns, branches) the bench must have (``geometry =
            "16x16x8"``), or None (not checked). `Lab` refuses a board of another geometry
            and ``labrss station check`` compares it: calibrations and programs are per
            board, and a wrong board at the address must not be used.
    """

    driver: str = "crossbar"
    address: str = SIM_ADDRESS
    timeout_s: float = 2.0
    retries: int = 3
    options: Mapping[str, Any] = field(default_factory=dict)
    geometry: tuple[int, int, int] | None = None

    @property
    def simulated(self) -> bool:
        """Whether this instrument is the embedded simulator's."""
        return self.address == SIM_ADDRESS


@dataclass(frozen=True)
class StationLimits:
    """Safety limits, enforced before anything is switched or sourced.

    Attributes:
        max_source_voltage_V: largest SMU source voltage magnitude (V).
        compliance_current_A: SMU current compliance (A), set before the output goes on;
            also the driver's hard current limit.
        max_power_per_element_W: largest power any one element may dissipate (W); the
            default 0.0625 W suits 1/16 W resistors.
        max_dac_voltage_V: largest row DAC voltage magnitude (V).
        min_element_resistance_ohm: smallest element resistance on the board (ohm), used
            for the worst-case power check; ``None`` means: take it from the board's
            ``BOARD:INFO?`` if it reports one, else assume a conservative value (see
            `labrss.lab.safety`).
        max_pulse_voltage_V: largest memristor programming pulse amplitude magnitude (V),
            enforced by `Lab` and by the board driver before a ``PULSe`` is sent (the
            board's own ``PULSe:LIMits?`` also applies). The 2 V default is the top of
            ArC ONE's write-verify sweep (0.5-2.0 V; docs/memristor.md).
        read_disturb_fraction: on a board with memristors, the largest voltage a read or
            an MVM input may put across memristor cells, as a fraction of the smallest
            switching threshold of that polarity (``BOARD:INFO?`` ``set_threshold_min_V`` /
            ``reset_threshold_min_V``, or the overrides below). Reads last far longer than
            pulses, and devices creep well below their threshold (docs/memristor.md, "Read
            disturb"), so the default is a third (docs/station.md says why).
        memristor_set_threshold_V, memristor_reset_threshold_V: the smallest SET / RESET
            switching threshold magnitude of the board's devices (V), overriding what the
            board reports (e.g. from your own characterisation); ``None``: the board's.
    """

    max_source_voltage_V: float = 1.0
    compliance_current_A: float = 0.01
    max_power_per_element_W: float = 0.0625
    max_dac_voltage_V: float = 0.5
    min_element_resistance_ohm: float | None = None
    max_pulse_voltage_V: float = 2.0
    read_disturb_fraction: float = 1.0 / 3.0
    memristor_set_threshold_V: float | None = None
    memristor_reset_threshold_V: float | None = None


@dataclass(frozen=True)
class MeasurementDefaults:
    """Defaults for reads (each can be overridden per call).

    Attributes:
        read_voltage_V: SMU source voltage for resistance reads (V), non-zero.
        nplc: integration time in power-line cycles (0.01..10).
        current_range_A: fixed SMU current range (A), or ``None`` for autorange.
        four_wire: whether cell reads use 4-wire (remote) sense by default.
        line_frequency_Hz: mains frequency (50 or 60 Hz); converts NPLC to seconds of
            instrument time.
    """

    read_voltage_V: float = 0.1
    nplc: float = 1.0
    current_range_A: float | None = None
    four_wire: bool = False
    line_frequency_Hz: float = 50.0

    @property
    def aperture_s(self) -> float:
        """Integration time of one reading at the default NPLC (s)."""
        return self.nplc / self.line_frequency_Hz


@dataclass(frozen=True)
class StoreSettings:
    """Where the SQLite store lives (``None``: the application's default location)."""

    path: Path | None = None


@dataclass(frozen=True)
class SimulatorSettings:
    """The embedded simulator, used for every instrument whose address is ``"sim"``.

    Attributes:
        bench: the simulated bench: ``crossbar`` (the labrss board) or ``switch-matrix``
            (a Keysight 34980A matrix in front of a passive array); by default the one
            the board driver declares.
        board: a board preset name (``small``, ``default``, ``large``, ...) or a board
            TOML path.
        seed: the simulated board's seed (same seed, same board).
        smu_model: the emulated SMU (``2450``, ``B2901A``, ``B2902A``, ``2400``); defaults
            to the one the ``[smu] driver`` declares.
        realtime_factor: 0 = as fast as possible; f > 0 paces instrument time at f x real time.
    """

    board: str = "default"
    seed: int = 0
    smu_model: str = "2450"
    bench: str = "crossbar"
    realtime_factor: float = 0.0


REFERENCE_LOCATIONS: Final = ("branch",)
"""Where a reference standard can be wired: ``branch`` (a board branch, read through the
board like any element)."""


@dataclass(frozen=True)
class ReferenceStandard:
    """A reference resistor with a calibration certificate (``[reference]``).

    Attributes:
        location: ``"branch"``: a board branch populated with the standard and calibrated
            in place: ``resistance_ohm`` is the branch's resistance with its switch closed,
            as seen at the board's connector.
        cell: (row, col) of that branch's cell; branch: its index in the cell.
        resistance_ohm: the certified value (ohm).
        expanded_uncertainty_ohm: the certificate's expanded uncertainty U (ohm).
        coverage_factor: the certificate's k (U = k u; 2 for ~95 %).
        certificate_date: the calibration date, ISO ``YYYY-MM-DD``.
        certificate_temperature_C: the temperature the certified value holds at (degC).
        tcr_ppm_per_K: the branch's temperature coefficient (ppm/K), to carry the value to
            the board temperature of a calibration.
        drift_ppm_per_year: the standard's stability: ``drift x age`` widens the
            certificate's uncertainty (rectangular, docs/metrology.md).
        temperature_uncertainty_K: how well the board's sensor knows the standard's
            temperature (K).
    """

    location: str
    cell: tuple[int, int]
    branch: int
    resistance_ohm: float
    expanded_uncertainty_ohm: float
    coverage_factor: float = 2.0
    certificate_date: str = ""
    certificate_temperature_C: float = 23.0
    tcr_ppm_per_K: float = 0.0
    drift_ppm_per_year: float = 0.0
    temperature_uncertainty_K: float = 1.0

    @property
    def standard_uncertainty_ohm(self) -> float:
        """The certificate's standard uncertainty u = U / k (ohm)."""
        return self.expanded_uncertainty_ohm / self.coverage_factor

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (stored with every calibration run that used it)."""
        return {
            "location": self.location,
            "cell": list(self.cell),
            "branch": self.branch,
            "resistance_ohm": self.resistance_ohm,
            "expanded_uncertainty_ohm": self.expanded_uncertainty_ohm,
            "coverage_factor": self.coverage_factor,
            "certificate_date": self.certificate_date,
            "certificate_temperature_C": self.certificate_temperature_C,
            "tcr_ppm_per_K": self.tcr_ppm_per_K,
            "drift_ppm_per_year": self.drift_ppm_per_year,
            "temperature_uncertainty_K": self.temperature_uncertainty_K,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReferenceStandard:
        """Back from `to_json`."""
        values = dict(data)
        values["cell"] = tuple(int(v) for v in values["cell"])
        return cls(**values)


@dataclass(frozen=True)
class ThermalSettings:
    """A thermal stage under the board (``[thermal]``; docs/temperature.md).

    Attributes:
        driver: an installed temperature controller driver (``"lakeshore336"``).
        address: its VISA resource, or ``"sim"``: the embedded simulator's stage.
        timeout_s: VISA I/O timeout (s).
        output: the controller's heater output that runs the stage; sensor: its input.
        visa_library: the pyvisa backend (as for the SMU).
        limits: set point range, largest ramp rate and the safe set point.
        stability_K: stable means the stage reads within this of the set point (K) and the
            board's own sensor moved by less than this over ``stability_window_s``.
        stability_window_s: how long both must hold (s).
        stability_timeout_s: how long to wait for stability before giving up with an
            error naming the set point and the last readings (s).
        poll_s: time between stability checks (s).
    """

    driver: str = "lakeshore336"
    address: str = SIM_ADDRESS
    timeout_s: float = 5.0
    output: int = 1
    sensor: str = "A"
    visa_library: str = DEFAULT_VISA_LIBRARY
    limits: ThermalLimits = field(default_factory=ThermalLimits)
    stability_K: float = 0.05
    stability_window_s: float = 300.0
    stability_timeout_s: float = 7200.0
    poll_s: float = 10.0

    @property
    def simulated(self) -> bool:
        """Whether the stage is the embedded simulator's."""
        return self.address == SIM_ADDRESS


@dataclass(frozen=True)
class BatchSettings:
    """The batch engine (precision studies, SLTH pruning, batch solves; docs/cluster.md).

    Attributes:
        scheduler: ``tcp://HOST:PORT`` of an existing Dask scheduler, ``"local"`` or
            ``None`` for a LocalCluster started per run. ``--scheduler`` and the
            ``LABRSS_SCHEDULER`` environment variable take precedence.
        workers: LocalCluster worker processes (0: one per core).
        threads_per_worker: threads per worker, and numba's thread count in each task.
    """

    scheduler: str | None = None
    workers: int = 0
    threads_per_worker: int = 1


@dataclass(frozen=True)
class Station:
    """A validated station: instruments, limits, measurement defaults, store, simulator.

    ``source`` is the file it was read from (``None`` for the built-in default station).
    """

    smu: SMUSettings = field(default_factory=SMUSettings)
    board: BoardSettings = field(default_factory=BoardSettings)
    limits: StationLimits = field(default_factory=StationLimits)
    measurement: MeasurementDefaults = field(default_factory=MeasurementDefaults)
    store: StoreSettings = field(default_factory=StoreSettings)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)
    reference: ReferenceStandard | None = None
    batch: BatchSettings = field(default_factory=BatchSettings)
    source: Path | None = None
    thermal: ThermalSettings | None = None

    @property
    def uses_simulator(self) -> bool:
        """Whether any instrument is the embedded simulator's (so it must be started)."""
        return self.smu.simulated or self.board.simulated

    @property
    def name(self) -> str:
        """How messages name this station: its file, "the default station" (no file and
        every default), or "<station>" (built in memory by `parse_station`)."""
        if self.source is not None:
            return str(self.source)
        return "the default station" if self == Station() else "<station>"


def default_station() -> Station:
    """The station used when no file is given: every instrument on the embedded simulator."""
    return Station()


def load_station(path: str | Path) -> Station:
    """Read and validate a station TOML file.

    Relative paths inside the file (``[store] path``, a ``[simulator] board`` TOML file)
    are resolved against the file's directory; ``~`` is expanded.

    Raises:
        StationError: the file is missing, is not valid TOML, or holds a bad key or value
            (the message names the file, the key and the value).
    """
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StationError(str(file), None, None, "station file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StationError(str(file), None, None, f"cannot read station file: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StationError(str(file), None, None, f"not valid TOML: {exc}") from exc
    return parse_station(data, source=file)


def parse_station(data: Mapping[str, Any], source: Path | str | None = None) -> Station:
    """Validate an already-parsed station mapping (the TOML document as a dict).

    ``source`` names the origin in error messages and anchors relative paths (its parent
    directory); ``None`` means an in-memory station, with paths relative to the current
    directory.
    """
    src_path = Path(source) if source is not None else None
    name = str(src_path) if src_path is not None else "<station>"
    base_dir = src_path.parent if src_path is not None else Path.cwd()

    sections = (
        "smu",
        "board",
        "limits",
        "measurement",
        "store",
        "simulator",
        "batch",
        "reference",
        "thermal",
    )
    for key, value in data.items():
        if key not in sections:
            raise StationError(
                name, key, value, f"unknown section; expected one of {', '.join(sections)}"
            )
        if not isinstance(value, Mapping):
            raise StationError(name, key, value, "must be a table ([section])")

    smu_t = _Table(name, "smu", data.get("smu", {}))
    smu_driver_name = smu_t.text("driver", SMUSettings.driver)
    smu_driver = _smu_driver(name, smu_driver_name)
    smu = SMUSettings(
        driver=smu_driver_name,
        address=smu_t.text("address", SMUSettings.address),
        channel=smu_t.integer("channel", SMUSettings.channel, low=1, high=8),
        timeout_s=smu_t.number("timeout_s", SMUSettings.timeout_s, low=0.0, low_open=True),
        visa_library=_visa_library(smu_t, "visa_library"),
    )
    if smu.channel > smu_driver.channels:
        raise StationError(
            name,
            "[smu] channel",
            smu.channel,
            f"the {smu.driver} driver's instruments have {smu_driver.channels} channel(s)",
        )
    smu_t.finish()

    sim_data = data.get("simulator", {})
    sim_bench = sim_data.get("bench") if isinstance(sim_data, Mapping) else None
    board_t = _Table(name, "board", data.get("board", {}))
    # With only [simulator] bench given, the bench's own driver is the default.
    default_driver = (
        _BENCH_DRIVERS.get(sim_bench, BoardSettings.driver)
        if isinstance(sim_bench, str)
        else BoardSettings.driver
    )
    board_driver_name = board_t.text("driver", default_driver)
    board_driver = _board_driver(name, board_driver_name)
    board = BoardSettings(
        driver=board_driver_name,
        address=board_t.text("address", BoardSettings.address),
        timeout_s=board_t.number("timeout_s", BoardSettings.timeout_s, low=0.0, low_open=True),
        retries=board_t.integer("retries", BoardSettings.retries, low=0, high=100),
        options=_board_options(board_t, board_driver_name, board_driver, base_dir),
        geometry=_geometry(board_t, "geometry"),
    )
    board_t.finish()

    lim_t = _Table(name, "limits", data.get("limits", {}))
    limits = StationLimits(
        max_source_voltage_V=lim_t.number(
            "max_source_voltage_V",
            StationLimits.max_source_voltage_V,
            low=0.0,
            low_open=True,
            high=MAX_SOURCE_VOLTAGE_CEILING_V,
        ),
        compliance_current_A=lim_t.number(
            "compliance_current_A",
            StationLimits.compliance_current_A,
            low=0.0,
            low_open=True,
            high=MAX_COMPLIANCE_CEILING_A,
        ),
        max_power_per_element_W=lim_t.number(
            "max_power_per_element_W", StationLimits.max_power_per_element_W, low=0.0, low_open=True
        ),
        max_dac_voltage_V=lim_t.number(
            "max_dac_voltage_V", StationLimits.max_dac_voltage_V, low=0.0, low_open=True
        ),
        min_element_resistance_ohm=lim_t.optional_number(
            "min_element_resistance_ohm", low=0.0, low_open=True
        ),
        max_pulse_voltage_V=lim_t.number(
            "max_pulse_voltage_V",
            StationLimits.max_pulse_voltage_V,
            low=0.0,
            low_open=True,
            high=MAX_PULSE_VOLTAGE_CEILING_V,
        ),
        read_disturb_fraction=lim_t.number(
            "read_disturb_fraction",
            StationLimits.read_disturb_fraction,
            low=0.0,
            low_open=True,
            high=1.0,
        ),
        memristor_set_threshold_V=lim_t.optional_number(
            "memristor_set_threshold_V", low=0.0, low_open=True, high=MAX_PULSE_VOLTAGE_CEILING_V
        ),
        memristor_reset_threshold_V=lim_t.optional_number(
            "memristor_reset_threshold_V",
            low=0.0,
            low_open=True,
            high=MAX_PULSE_VOLTAGE_CEILING_V,
        ),
    )
    lim_t.finish()

    meas_t = _Table(name, "measurement", data.get("measurement", {}))
    read_v = meas_t.number(
        "read_voltage_V",
        MeasurementDefaults.read_voltage_V,
        low=-MAX_SOURCE_VOLTAGE_CEILING_V,
        high=MAX_SOURCE_VOLTAGE_CEILING_V,
    )
    if read_v == 0.0:
        raise StationError(
            name, "[measurement] read_voltage_V", read_v, "must be non-zero (R = V / I)"
        )
    if abs(read_v) > limits.max_source_voltage_V:
        raise StationError(
            name,
            "[measurement] read_voltage_V",
            read_v,
            f"exceeds [limits] max_source_voltage_V = {limits.max_source_voltage_V!r}",
        )
    measurement = MeasurementDefaults(
        read_voltage_V=read_v,
        nplc=meas_t.number("nplc", MeasurementDefaults.nplc, low=NPLC_MIN, high=NPLC_MAX),
        current_range_A=meas_t.optional_number(
            "current_range_A", low=0.0, low_open=True, high=MAX_COMPLIANCE_CEILING_A
        ),
        four_wire=meas_t.boolean("four_wire", MeasurementDefaults.four_wire),
        line_frequency_Hz=float(
            meas_t.choice_number(
                "line_frequency_Hz", (50.0, 60.0), MeasurementDefaults.line_frequency_Hz
            )
        ),
    )
    meas_t.finish()

    store_t = _Table(name, "store", data.get("store", {}))
    store_path = store_t.optional_text("path")
    store = StoreSettings(path=_resolve(store_path, base_dir) if store_path is not None else None)
    store_t.finish()

    sim_t = _Table(name, "simulator", data.get("simulator", {}))
    default_bench = (
        board_driver.simulator if board_driver.simulator in SIM_BENCHES else SimulatorSettings.bench
    )
    bench = sim_t.choice("bench", SIM_BENCHES, default_bench)
    if board.simulated and board_driver.simulator is None:
        raise StationError(
            name,
            "[board] address",
            board.address,
            f"the {board.driver} driver has no simulator: give its real address",
        )
    needed_bench = board_driver.simulator if board_driver.simulator in SIM_BENCHES else "crossbar"
    if board.simulated and needed_bench != bench:
        raise StationError(
            name,
            "[simulator] bench",
            bench,
            f"the simulated {bench} bench does not speak the {board.driver} driver's protocol "
            f"(it needs bench = {needed_bench!r}); change [board] driver or the bench",
        )
    sim_board = sim_t.text("board", _BENCH_PRESETS[bench])
    if sim_board.endswith(".toml"):
        sim_board = str(_resolve(sim_board, base_dir))
    default_model = smu_driver.simulator or SIM_SMU_MODELS[0]
    smu_model = sim_t.choice("smu_model", SIM_SMU_MODELS, default_model)
    if smu.simulated and smu_driver.simulator is None and "smu_model" not in sim_t.table:
        raise StationError(
            name,
            "[smu] address",
            smu.address,
            f"the {smu.driver} driver has no simulated instrument: give its real address",
        )
    simulator = SimulatorSettings(
        board=sim_board,
        seed=sim_t.integer("seed", SimulatorSettings.seed, low=0, high=2**63 - 1),
        smu_model=smu_model,
        realtime_factor=sim_t.number("realtime_factor", SimulatorSettings.realtime_factor, low=0.0),
        bench=bench,
    )
    sim_t.finish()

    batch_t = _Table(name, "batch", data.get("batch", {}))
    scheduler = batch_t.optional_text("scheduler")
    if scheduler is not None and scheduler != "local" and "://" not in scheduler:
        raise StationError(
            name, "[batch] scheduler", scheduler, 'expected tcp://HOST:PORT or "local"'
        )
    batch = BatchSettings(
        scheduler=scheduler,
        workers=batch_t.integer("workers", BatchSettings.workers, low=0, high=100_000),
        threads_per_worker=batch_t.integer(
            "threads_per_worker", BatchSettings.threads_per_worker, low=1, high=1024
        ),
    )
    batch_t.finish()

    reference = _reference(name, data["reference"]) if "reference" in data else None
    thermal = _thermal(name, data["thermal"]) if "thermal" in data else None
    if thermal is not None and thermal.simulated and not board.simulated:
        raise StationError(
            name,
            "[thermal] address",
            thermal.address,
            "the simulated stage heats only the simulated board: give the controller's "
            "real address, or simulate the board too",
        )

    return Station(
        thermal=thermal,
        smu=smu,
        board=board,
        limits=limits,
        measurement=measurement,
        store=store,
        simulator=simulator,
        reference=reference,
        batch=batch,
        source=src_path,
    )


def _reference(name: str, table: Mapping[str, Any]) -> ReferenceStandard:
    """The ``[reference]`` section (`ReferenceStandard`); every key checked."""
    ref_t = _Table(name, "reference", table)
    location = ref_t.choice("location", REFERENCE_LOCATIONS, "branch")
    cell = ref_t.int_pair("cell")
    branch = ref_t.integer("branch", -1, low=0, high=63)
    if branch < 0:
        raise StationError(name, "[reference] branch", None, "is required", has_value=False)
    resistance = ref_t.optional_number("resistance_ohm", low=0.0, low_open=True)
    expanded = ref_t.optional_number("expanded_uncertainty_ohm", low=0.0, low_open=True)
    if resistance is None or expanded is None:
        missing = "resistance_ohm" if resistance is None else "expanded_uncertainty_ohm"
        raise StationError(name, f"[reference] {missing}", None, "is required", has_value=False)
    if expanded >= resistance:
        raise StationError(
            name,
            "[reference] expanded_uncertainty_ohm",
            expanded,
            f"must be smaller than resistance_ohm = {resistance!r}",
        )
    date = ref_t.date("certificate_date")
    ref = ReferenceStandard(
        location=location,
        cell=cell,
        branch=branch,
        resistance_ohm=resistance,
        expanded_uncertainty_ohm=expanded,
        coverage_factor=ref_t.number("coverage_factor", 2.0, low=0.0, low_open=True),
        certificate_date=date,
        certificate_temperature_C=ref_t.number(
            "certificate_temperature_C", 23.0, low=-50.0, high=150.0
        ),
        tcr_ppm_per_K=ref_t.number("tcr_ppm_per_K", 0.0, low=-1e4, high=1e4),
        drift_ppm_per_year=ref_t.number("drift_ppm_per_year", 0.0, low=0.0, high=1e5),
        temperature_uncertainty_K=ref_t.number(
            "temperature_uncertainty_K", 1.0, low=0.0, high=100.0
        ),
    )
    ref_t.finish()
    return ref


def _thermal(name: str, table: Mapping[str, Any]) -> ThermalSettings:
    """The ``[thermal]`` section (`ThermalSettings`); every key checked."""
    t = _Table(name, "thermal", table)
    driver = t.text("driver", ThermalSettings.driver)
    try:
        found = find_thermal_driver(driver)
    except (UnknownDriverError, PluginError) as exc:
        raise StationError(name, "[thermal] driver", driver, str(exc)) from None
    address = t.text("address", SIM_ADDRESS)
    if address == SIM_ADDRESS and found.simulator is None:
        raise StationError(
            name, "[thermal] address", address, f"the {driver} driver has no simulator"
        )
    d = ThermalLimits()
    min_c = t.number("min_C", d.min_C, low=-273.15, high=1000.0)
    max_c = t.number("max_C", d.max_C, low=-273.15, high=1000.0)
    if not min_c < max_c:
        raise StationError(name, "[thermal] max_C", max_c, f"must be above min_C = {min_c!r}")
    safe_c = t.number("safe_C", min(max(d.safe_C, min_c), max_c), low=min_c, high=max_c)
    limits = ThermalLimits(
        min_C=min_c,
        max_C=max_c,
        max_ramp_K_per_min=t.number(
            "max_ramp_K_per_min", d.max_ramp_K_per_min, low=0.0, low_open=True, high=100.0
        ),
        safe_C=safe_c,
        cutoff_margin_K=t.number("cutoff_margin_K", d.cutoff_margin_K, low=0.0, high=100.0),
    )
    settings = ThermalSettings(
        driver=driver,
        address=address,
        timeout_s=t.number("timeout_s", ThermalSettings.timeout_s, low=0.0, low_open=True),
        output=t.integer("output", ThermalSettings.output, low=1, high=4),
        sensor=t.choice("sensor", ("A", "B", "C", "D"), ThermalSettings.sensor),
        visa_library=_visa_library(t, "visa_library"),
        limits=limits,
        stability_K=t.number(
            "stability_K", ThermalSettings.stability_K, low=0.0, low_open=True, high=10.0
        ),
        stability_window_s=t.number(
            "stability_window_s", ThermalSettings.stability_window_s, low=0.0, low_open=True
        ),
        stability_timeout_s=t.number(
            "stability_timeout_s", ThermalSettings.stability_timeout_s, low=0.0, low_open=True
        ),
        poll_s=t.number("poll_s", ThermalSettings.poll_s, low=0.0, low_open=True, high=3600.0),
    )
    if settings.poll_s > settings.stability_window_s:
        raise StationError(
            name,
            "[thermal] poll_s",
            settings.poll_s,
            f"must not exceed stability_window_s = {settings.stability_window_s!r}",
        )
    t.finish()
    return settings


_BENCH_DRIVERS: Final = {"crossbar": "crossbar", "switch-matrix": "keysight34980a"}
"""The board driver a station uses by default for each simulated bench."""
_BENCH_PRESETS: Final = {"crossbar": "default", "switch-matrix": "switch-matrix"}
"""The default ``[simulator] board`` preset of each simulated bench."""


def visa_backends() -> list[str]:
    """The pyvisa backends installed here, as a station names them (``@py``, ``@ivi``, ...)."""
    from pyvisa.highlevel import list_backends

    return [f"@{name}" for name in list_backends()]


def _visa_library(table: _Table, key: str) -> str:
    """A pyvisa backend (``@name``, installed) or a VISA library path (checked when opened)."""
    value = table.text(key, DEFAULT_VISA_LIBRARY)
    name = VISA_LIBRARY_ALIASES.get(value.lower(), value)
    if not name.startswith("@"):
        return value  # a library file: `labrss station check` says whether it loads
    installed = visa_backends()
    if name.lower() not in installed:
        raise table._error(
            key,
            value,
            f"no pyvisa backend of that name is installed (installed: "
            f"{', '.join(installed)}); '@py' is pyvisa-py, '@ivi' the vendor VISA "
            "(NI-VISA, Keysight IO Libraries), or give the path of a VISA library file",
        )
    return name.lower()


_GEOMETRY_RE: Final = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_geometry(text: str) -> tuple[int, int, int] | None:
    """``"16x16x8"`` -> (16, 16, 8); None unless three positive integers joined by ``x``."""
    match = _GEOMETRY_RE.match(text)
    if match is None:
        return None
    rows, cols, branches = (int(g) for g in match.groups())
    return (rows, cols, branches) if min(rows, cols, branches) >= 1 else None


def format_geometry(geometry: tuple[int, int, int]) -> str:
    """(16, 16, 8) -> ``"16x16x8"`` (the form of ``[board] geometry``)."""
    return "x".join(str(n) for n in geometry)


def _geometry(table: _Table, key: str) -> tuple[int, int, int] | None:
    value = table.optional_text(key)
    if value is None:
        return None
    geometry = parse_geometry(value)
    if geometry is None:
        raise table._error(key, value, 'expected ROWSxCOLSxBRANCHES, e.g. "16x16x8"')
    return geometry


def _smu_driver(source: str, driver: str) -> SMUDriver:
    try:
        return find_smu_driver(driver)
    except (UnknownDriverError, PluginError) as exc:
        raise StationError(source, "[smu] driver", driver, str(exc)) from exc


def _board_driver(source: str, driver: str) -> BoardDriver:
    try:
        return find_board_driver(driver)
    except (UnknownDriverError, PluginError) as exc:
        raise StationError(source, "[board] driver", driver, str(exc)) from exc


def _board_options(
    table: _Table, driver_name: str, driver: BoardDriver, base_dir: Path
) -> dict[str, Any]:
    """``[board.options]``: only what the driver declares; its path options resolved."""
    raw = table.optional_table("options")
    options: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in driver.options:
            known = ", ".join(sorted(driver.options)) or "none"
            raise StationError(
                table.source,
                f"[board.options] {key}",
                value,
                f"the {driver_name} driver has no such option (its options: {known})",
            )
        if key in driver.path_options:
            if not isinstance(value, str) or not value.strip():
                raise StationError(
                    table.source, f"[board.options] {key}", value, "must be a file path"
                )
            value = str(_resolve(value.strip(), base_dir))
        options[key] = value
    return options


def _resolve(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base_dir / p)


_MISSING: Final = object()


class _Table:
    """Typed, validating access to one ``[section]``; remembers which keys were read."""

    def __init__(self, source: str, section: str, table: Mapping[str, Any]) -> None:
        self.source = source
        self.section = section
        self.table = table
        self.seen: set[str] = set()

    def _key(self, key: str) -> str:
        return f"[{self.section}] {key}"

    def _error(self, key: str, value: object, reason: str) -> StationError:
        return StationError(self.source, self._key(key), value, reason)

    def _get(self, key: str) -> object:
        self.seen.add(key)
        return self.table.get(key, _MISSING)

    def finish(self) -> None:
        """Refuse keys nobody asked for (typos must not be silently ignored)."""
        for key, value in self.table.items():
            if key not in self.seen:
                known = ", ".join(sorted(self.seen))
                raise self._error(key, value, f"unknown key; expected one of {known}")

    def text(self, key: str, default: str) -> str:
        value = self._get(key)
        if value is _MISSING:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self._error(key, value, "must be a non-empty string")
        return value.strip()

    def optional_table(self, key: str) -> Mapping[str, Any]:
        value = self._get(key)
        if value is _MISSING:
            return {}
        if not isinstance(value, Mapping):
            raise self._error(key, value, "must be a table")
        return value

    def optional_text(self, key: str) -> str | None:
        value = self._get(key)
        if value is _MISSING:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self._error(key, value, "must be a non-empty string")
        return value.strip()

    def int_pair(self, key: str) -> tuple[int, int]:
        """A required ``[a, b]`` of non-negative integers (a cell)."""
        value = self._get(key)
        if value is _MISSING:
            raise StationError(
                self.source, self._key(key), None, "is required ([row, col])", has_value=False
            )
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
        ):
            raise self._error(key, value, "must be [row, col], two integers >= 0")
        return (int(value[0]), int(value[1]))

    def date(self, key: str) -> str:
        """A required date (a TOML date or an ISO ``YYYY-MM-DD`` string), as ISO text."""
        value = self._get(key)
        if value is _MISSING:
            raise StationError(self.source, self._key(key), None, "is required", has_value=False)
        if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return datetime.date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                pass
        raise self._error(key, value, "must be a date, YYYY-MM-DD")

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(key, default)
        if value not in choices:
            raise self._error(key, value, f"must be one of {', '.join(choices)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            raise self._error(key, value, "must be true or false")
        return value

    def integer(self, key: str, default: int, *, low: int, high: int) -> int:
        value = self._get(key)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._error(key, value, "must be an integer")
        if not low <= value <= high:
            raise self._error(key, value, f"must be in {low}..{high}")
        return value

    def _check_number(
        self,
        key: str,
        value: object,
        *,
        low: float | None,
        high: float | None,
        low_open: bool,
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._error(key, value, "must be a number")
        number = float(value)
        if not math.isfinite(number):
            raise self._error(key, value, "must be a finite number")
        if low is not None and (number <= low if low_open else number < low):
            raise self._error(key, value, f"must be {'>' if low_open else '>='} {low!r}")
        if high is not None and number > high:
            raise self._error(key, value, f"must be <= {high!r}")
        return number

    def number(
        self,
        key: str,
        default: float,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
    ) -> float:
        value = self._get(key)
        if value is _MISSING:
            return default
        return self._check_number(key, value, low=low, high=high, low_open=low_open)

    def optional_number(
        self,
        key: str,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
    ) -> float | None:
        value = self._get(key)
        if value is _MISSING:
            return None
        return self._check_number(key, value, low=low, high=high, low_open=low_open)

    def choice_number(self, key: str, choices: tuple[float, ...], default: float) -> float:
        value = self._get(key)
        if value is _MISSING:
            return default
        number = self._check_number(key, value, low=None, high=None, low_open=False)
        if number not in choices:
            raise self._error(key, value, f"must be one of {', '.join(f'{c:g}' for c in choices)}")
        return number
