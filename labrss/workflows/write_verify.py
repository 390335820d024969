"""Write-verify on the bench: pulse, read, compare with the band, adjust, repeat (over `Lab`).

    from labrss.lab import Lab
    from labrss.memristor import WriteVerifySettings
    from labrss.workflows.write_verify import write_verify
    with Lab(station) as lab, Store(path) as store:
        result = write_verify(lab, [(0, 1, 2), (0, 1, 3)], [40e-6, 25e-6],
                              WriteVerifySettings(tolerance=0.01), store=store)
        for d in result.devices:
            print(d.branch, d.status, d.pulses, d.final_S, d.error)

Each device is read alone (`Lab.measure_branch`: only its switch closed, guarded SMU
read), the mean of ``reads_per_verify`` readings going to the pure decision rule
(`labrss.memristor.WriteVerifyPolicy`), whose pulses go through `Lab.pulse_branch` (station
and board limits enforced before anything is sent). The loop ends ``ok``, ``timeout``,
``stuck`` or ``oscillating``; a stuck device is detected by the policy, never looped on.

Stored (``store`` given): a run of kind ``write_verify`` holding every read
(`Store.add_readings`, key ``r,c,0xMASK,seq,wv``, quantity ``conductance``), every pulse
(result ``pulses``: branch, amplitude, width, count, bench clock), the per-device outcome
(result ``devices``) and a JSON ``summary`` with the board's own ``PULS:COUN?`` of each
device. `DeviceRecorder` is shared with `labrss.workflows.memristor_rss` and
`labrss.workflows.drift`.

Cost: per device, (pulses + 1) x ``reads_per_verify`` SMU readings and ``pulses`` pulse
commands.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from drivers.board import Capability
from labrss.lab import Lab, LabError, LabInputError, Reading
from labrss.lab.lab import PulseRecord
from labrss.memristor import Pulse, Status, WriteVerifyPolicy, WriteVerifySettings
from labrss.store import ReadingRow, Store, reading_key
from labrss.workflows.boards import register_board
from labrss.workflows.run_close import close_run_after

__all__ = [
    "PULSE_DTYPE",
    "DeviceRecorder",
    "DeviceResult",
    "WriteVerifyResult",
    "bench_settings",
    "board_id_for",
    "read_branch",
    "read_branch_S",
    "valid_conductance_S",
    "write_verify",
    "write_verify_device",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

Branch = tuple[int, int, int]
ProgressCallback = Callable[[int, int, str], None]
"""``progress(done, total, message)``."""

PULSE_DTYPE = np.dtype(
    [
        ("r", "i4"),
        ("c", "i4"),
        ("k", "i4"),
        ("amplitude_V", "f8"),
        ("width_s", "f8"),
        ("count", "i4"),
        ("duration_s", "f8"),
        ("clock_s", "f8"),
    ]
)
"""One row per ``PULSe`` command in the stored ``pulses`` result."""

DEVICE_DTYPE = np.dtype(
    [
        ("r", "i4"),
        ("c", "i4"),
        ("k", "i4"),
        ("target_S", "f8"),
        ("initial_S", "f8"),
        ("final_S", "f8"),
        ("error", "f8"),
        ("pulses", "i4"),
        ("reversals", "i4"),
        ("status", "U12"),
        ("instrument_time_s", "f8"),
    ]
)
"""One row per device in the stored ``devices`` result."""


@dataclass(frozen=True)
class DeviceResult:
    """The outcome of write-verify on one device.

    Attributes:
        branch: ``(row, col, branch)``.
        target_S: the target conductance (S).
        initial_S, final_S: first and last verify reading (mean of the reads, S).
        error: ``(final_S - target_S) / target_S`` (relative, measured).
        pulses: pulses applied; reversals: polarity reversals.
        status: ``ok``, ``timeout``, ``stuck`` or ``oscillating``; reason: why it stopped.
        instrument_time_s: SMU integration plus pulse-circuit time spent on it (s).
    """

    branch: Branch
    target_S: float
    initial_S: float
    final_S: float
    error: float
    pulses: int
    reversals: int
    status: Status
    reason: str
    instrument_time_s: float

    def row(self) -> tuple[Any, ...]:
        """This result as a `DEVICE_DTYPE` row."""
        r, c, k = self.branch
        return (
            r,
            c,
            k,
            self.target_S,
            self.initial_S,
            self.final_S,
            self.error,
            self.pulses,
            self.reversals,
            self.status,
            self.instrument_time_s,
        )


class DeviceRecorder:
    """Collects the reads and pulses of a memristor run and writes them to its store run.

    With ``store=None`` it only counts. Reads go to `Store.add_readings` at every `flush`
    (one transaction), pulses and devices to the run's ``pulses`` / ``devices`` results.
    """

    def __init__(self, store: Store | None, run_id: int | None, tag: str) -> None:
        self.store = store
        self.run_id = run_id
        self.tag = tag
        self.pulses: list[PulseRecord] = []
        self.devices: list[DeviceResult] = []
        self._rows: list[ReadingRow] = []
        self._seq = 0

    def read(self, reading: Reading) -> None:
        """Record one SMU reading (its conductance in S, with the raw V, I and settings)."""
        self._seq += 1
        r, c = reading.cell

        def finite(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        self._rows.append(
            ReadingRow(
                key=reading_key(r, c, reading.mask, self._seq, self.tag),
                r=r,
                c=c,
                mask=reading.mask,
                value=float(reading.conductance_S),
                voltage_V=finite(reading.voltage_V),
                current_A=finite(reading.current_A),
                current_range_A=finite(reading.current_range_A),
                nplc=reading.nplc,
                four_wire=reading.four_wire,
                limit_tripped=reading.limit_tripped,
                instrument_time_s=finite(reading.time_s),
            )
        )

    def pulse(self, record: PulseRecord) -> None:
        """Record one ``PULSe`` command."""
        self.pulses.append(record)

    def device(self, result: DeviceResult) -> None:
        """Record a device's outcome."""
        self.devices.append(result)

    def pulse_array(self) -> npt.NDArray[np.void]:
        """Every pulse recorded, as a `PULSE_DTYPE` array."""
        return np.array(
            [
                (*p.branch, p.amplitude_V, p.width_s, p.count, p.duration_s, p.clock_s)
                for p in self.pulses
            ],
            dtype=PULSE_DTYPE,
        )

    def device_array(self) -> npt.NDArray[np.void]:
        """Every device outcome recorded, as a `DEVICE_DTYPE` array."""
        return np.array([d.row() for d in self.devices], dtype=DEVICE_DTYPE)

    def flush(self) -> None:
        """Write what was collected since the last flush (readings) and the totals so far."""
        if self.store is None or self.run_id is None:
            self._rows.clear()
            return
        if self._rows:
            self.store.add_readings(self.run_id, self._rows)
            self._rows = []
        self.store.put_result(self.run_id, "pulses", self.pulse_array())
        self.store.put_result(self.run_id, "devices", self.device_array())
        self.store.heartbeat(self.run_id)


def board_id_for(lab: Lab, store: Store) -> int:
    """Register (or find) the lab's board: `labrss.workflows.boards.register_board`, the
    one registration calibration and programming use too."""
    return register_board(lab, store)


def bench_settings(lab: Lab, settings: WriteVerifySettings) -> WriteVerifySettings:
    """``settings`` clipped to the bench's pulse limits (station and board).

    Raises:
        LabInputError: the board has no memristors, or the settings cannot fit the limits.
    """
    lab.require(Capability.PULSES, needed_by="write-verify")
    board = lab.board
    limits = board.pulse_limits
    if limits is None or board.max_pulse_voltage_V is None:
        raise LabInputError(f"{board.identity} has no memristors: nothing to write-verify")
    try:
        return settings.within(board.max_pulse_voltage_V, limits.min_width_s, limits.max_width_s)
    except ValueError as exc:
        raise LabInputError(f"{exc} ({lab.station.name}, {board.identity})") from exc


def valid_conductance_S(reading: Reading, recorder: DeviceRecorder) -> float:
    """Record ``reading`` and return its conductance (S).

    Raises:
        LabError: the reading tripped the compliance limit or overflowed (recorded anyway).
    """
    recorder.read(reading)
    if reading.limit_tripped or not math.isfinite(reading.conductance_S):
        r, c = reading.cell
        raise LabError(
            f"cell ({r}, {c}) mask {reading.mask:#x}: reading {reading.conductance_S!r} S "
            "tripped the compliance limit or overflowed; not a valid conductance"
        )
    return float(reading.conductance_S)


def read_branch(
    lab: Lab,
    r: int,
    c: int,
    k: int,
    *,
    reads: int,
    nplc: float | None,
    recorder: DeviceRecorder,
) -> tuple[float, float]:
    """Branch k of cell (r, c) alone, ``reads`` readings: mean (S) and its standard error
    (S; NaN for one reading). Every reading is recorded.

    Raises:
        LabError: a reading tripped the compliance limit (not a valid conductance).
    """
    values = [
        valid_conductance_S(lab.measure_branch(r, c, k, nplc=nplc), recorder) for _ in range(reads)
    ]
    sigma = float(np.std(values, ddof=1) / math.sqrt(reads)) if reads > 1 else math.nan
    return float(np.mean(values)), sigma


def read_branch_S(
    lab: Lab,
    r: int,
    c: int,
    k: int,
    *,
    reads: int,
    nplc: float | None,
    recorder: DeviceRecorder,
) -> float:
    """Mean conductance (S) of `read_branch`."""
    return read_branch(lab, r, c, k, reads=reads, nplc=nplc, recorder=recorder)[0]


def write_verify_device(
    lab: Lab,
    branch: Branch,
    target_S: float,
    settings: WriteVerifySettings,
    recorder: DeviceRecorder,
    *,
    reads_per_verify: int = 2,
    nplc: float | None = None,
) -> DeviceResult:
    """Write-verify one device to ``target_S`` (S); ``settings`` already within the bench.

    Returns the `DeviceResult` (also given to ``recorder``).
    """
    r, c, k = branch
    policy = WriteVerifyPolicy(target_S, settings)
    time0 = lab.instrument_time_s + lab.pulse_time_s
    g = read_branch_S(lab, r, c, k, reads=reads_per_verify, nplc=nplc, recorder=recorder)
    initial = g
    step = policy.next(g)
    while isinstance(step, Pulse):
        recorder.pulse(lab.pulse_branch(r, c, k, step.amplitude_V, step.width_s))
        g = read_branch_S(lab, r, c, k, reads=reads_per_verify, nplc=nplc, recorder=recorder)
        step = policy.next(g)
    result = DeviceResult(
        branch=(int(r), int(c), int(k)),
        target_S=float(target_S),
        initial_S=initial,
        final_S=g,
        error=(g - target_S) / target_S,
        pulses=policy.pulses,
        reversals=policy.reversals,
        status=step.status,
        reason=step.reason,
        instrument_time_s=lab.instrument_time_s + lab.pulse_time_s - time0,
    )
    recorder.device(result)
    if step.status != "ok":
        log.info("write-verify of branch %s: %s (%s)", branch, step.status, step.reason)
    return result


@dataclass
class WriteVerifyResult:
    """Write-verify over a list of devices.

    Attributes:
        devices: one `DeviceResult` per device, in order.
        run_id: the store run, or None.
        pulses: pulses applied in total; reads: SMU readings taken.
        instrument_time_s: SMU integration plus pulse-circuit time (s).
        bench_time_s: the bench clock's advance during the run (s; on the simulator the
            virtual time, which also counts switching and routing delays).
        board_pulse_counts: the board's ``PULS:COUN?`` of each device afterwards.
    """

    devices: list[DeviceResult] = field(default_factory=list)
    run_id: int | None = None
    pulses: int = 0
    reads: int = 0
    instrument_time_s: float = 0.0
    bench_time_s: float = 0.0
    board_pulse_counts: list[int] = field(default_factory=list)

    def status_counts(self) -> dict[str, int]:
        """How many devices ended in each status."""
        counts: dict[str, int] = {}
        for d in self.devices:
            counts[d.status] = counts.get(d.status, 0) + 1
        return counts

    def summary(self) -> dict[str, Any]:
        """JSON-ready totals and per-device outcomes."""
        errors = np.array([abs(d.error) for d in self.devices if d.status == "ok"])
        return {
            "run_id": self.run_id,
            "devices": len(self.devices),
            "status_counts": self.status_counts(),
            "pulses": self.pulses,
            "reads": self.reads,
            "instrument_time_s": self.instrument_time_s,
            "bench_time_s": self.bench_time_s,
            "median_abs_error_ok": float(np.median(errors)) if errors.size else None,
            "board_pulse_counts": self.board_pulse_counts,
            "per_device": [asdict(d) | {"branch": list(d.branch)} for d in self.devices],
        }


def _check_requests(lab: Lab, branches: Sequence[Branch], targets: Sequence[float]) -> None:
    if len(branches) != len(targets):
        raise LabInputError(f"{len(branches)} branches but {len(targets)} targets")
    if not branches:
        raise LabInputError("no branches to write-verify")
    g = lab.geometry
    for branch, target in zip(branches, targets, strict=True):
        if len(branch) != 3:
            raise LabInputError(f"branch {branch!r}: need (row, col, branch)")
        r, c, k = branch
        if not (0 <= r < g.rows and 0 <= c < g.cols and 0 <= k < g.branches):
            raise LabInputError(
                f"branch {branch!r} not on the board ({g.rows}x{g.cols}x{g.branches})"
            )
        if lab.cell_kind(r, c) != "memristor":
            raise LabInputError(f"branch {branch!r} is a resistor: only memristors are programmed")
        if not (math.isfinite(target) and target > 0):
            raise LabInputError(f"target {target!r} S for branch {branch!r}: must be > 0")


def write_verify(
    lab: Lab,
    branches: Sequence[Branch],
    targets_S: Sequence[float],
    settings: WriteVerifySettings | None = None,
    *,
    reads_per_verify: int = 2,
    nplc: float | None = None,
    store: Store | None = None,
    note: str = "",
    progress: ProgressCallback | None = None,
) -> WriteVerifyResult:
    """Write-verify each device of ``branches`` to its target (S), one after the other.

    Everything is checked before the first pulse: branches on the board and memristors,
    targets positive, the settings within the station's and board's pulse limits. With a
    ``store``, a run of kind ``write_verify`` holds every read and pulse (module docstring);
    it is marked ``failed`` (with the error) if the bench fails.

    Returns:
        the `WriteVerifyResult`.
    """
    s = bench_settings(lab, settings if settings is not None else WriteVerifySettings())
    if reads_per_verify < 1:
        raise LabInputError(f"reads_per_verify = {reads_per_verify}: need >= 1")
    _check_requests(lab, branches, targets_S)
    run_id = None
    if store is not None:
        run_settings = asdict(s) | {
            "branches": [list(b) for b in branches],
            "targets_S": [float(t) for t in targets_S],
            "reads_per_verify": reads_per_verify,
            "nplc": nplc,
        }
        run_id = store.start_run(
            "write_verify", board_id_for(lab, store), run_settings, lab.describe(), note=note
        )
    recorder = DeviceRecorder(store, run_id, "wv")
    result = WriteVerifyResult(run_id=run_id)
    reads0, pulses0 = lab.readings_taken, lab.pulses_applied
    time0, clock0 = lab.instrument_time_s + lab.pulse_time_s, lab.clock_s()
    try:
        for i, (branch, target) in enumerate(zip(branches, targets_S, strict=True)):
            if progress is not None:
                progress(i, len(branches), f"branch {branch}")
            result.devices.append(
                write_verify_device(
                    lab,
                    branch,
                    float(target),
                    s,
                    recorder,
                    reads_per_verify=reads_per_verify,
                    nplc=nplc,
                )
            )
            recorder.flush()
        result.board_pulse_counts = [lab.pulse_count(*b) for b in branches]
        result.pulses = lab.pulses_applied - pulses0
        result.reads = lab.readings_taken - reads0
        result.instrument_time_s = lab.instrument_time_s + lab.pulse_time_s - time0
        result.bench_time_s = lab.clock_s() - clock0
        if progress is not None:
            progress(len(branches), len(branches), "done")
        if store is not None and run_id is not None:
            store.put_value(run_id, "summary", result.summary())
            store.finish_run(run_id, instrument_time_s=result.instrument_time_s)
        return result
    except BaseException as exc:
        if store is not None and run_id is not None:
            spent_s = lab.instrument_time_s + lab.pulse_time_s - time0
            close_run_after(
                exc, store, run_id, what="write-verify", instrument_time_s=spent_s,
                save=recorder.flush,
            )  # fmt: skip
        raise
