"""What the memristor characterisation modules share: device selection, the stored run,
progress, cancel.

Each module (`labrss.workflows.memristor_form`, ``_iv``, ``_retention``,
``_endurance``, ``_seek``) is a workflow function ``module(lab, devices, settings, *,
store=None, progress=None, should_stop=None, note="")`` returning a result with
``run_id``, ``cancelled`` and ``summary()``. `ModuleRun` opens the run (kind
``memristor_<module>``), records every reading and pulse (`DeviceRecorder`), stores the
array results with their dimension names (JSON result ``dims``, used by the netCDF/HDF5
export), and closes the run ``completed``, ``interrupted`` (cancelled: ``should_stop``
returned True, the data so far is kept) or ``failed`` (with the error).

Devices are ``(row, column, branch)`` tuples; `select_devices` builds them from a cell
selection in calibration's syntax (``"0-1,0-3"``) and a branch selection (``"*"``,
``"0-3"``, ``"0+2"``), and refuses resistor cells.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from calibration.settings import SettingsError, parse_cells, resolve_cells
from drivers.board import Capability
from labrss.lab import Lab, LabInputError, Reading
from labrss.store import Store
from labrss.workflows.boards import register_board
from labrss.workflows.write_verify import DeviceRecorder, valid_conductance_S

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

Branch = tuple[int, int, int]
ProgressCallback = Callable[[int, int, str], None]
"""``progress(done, total, message)``."""
StopFlag = Callable[[], bool]
"""Polled between steps: True stops the module (the data so far is kept)."""
DataCallback = Callable[[str, dict[str, Any]], None]
"""``on_data(kind, point)``: each new point as it is measured (live plots)."""


def parse_branches(text: str, branches: int) -> tuple[int, ...]:
    """``"*"`` (every branch), ``"N"``, ``"A-B"`` or parts joined by ``+``."""
    text = text.strip()
    if text == "*":
        return tuple(range(branches))
    out: list[int] = []
    for part in text.split("+"):
        lo, sep, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise LabInputError(
                f"branches {text!r}: {part!r} is not N or A-B (e.g. '*', '0-3', '0+5')"
            ) from None
        if not 0 <= first <= last < branches:
            raise LabInputError(f"branches {text!r}: {part!r} not in 0..{branches - 1}")
        out.extend(range(first, last + 1))
    return tuple(dict.fromkeys(out))


def select_devices(
    lab: Lab, cells: str | Sequence[tuple[int, int]], branches: str | Sequence[int] = "*"
) -> list[Branch]:
    """The memristor devices of a cell and branch selection, row-major, checked.

    Raises:
        LabInputError: a cell or branch off the board, or a resistor cell.
    """
    g = lab.geometry
    if isinstance(cells, str):
        try:
            cell_list = resolve_cells(parse_cells(cells), g.rows, g.cols)
        except SettingsError as exc:
            raise LabInputError(str(exc)) from exc
    else:
        cell_list = [(int(r), int(c)) for r, c in cells]
    ks = (
        parse_branches(branches, g.branches)
        if isinstance(branches, str)
        else tuple(int(k) for k in branches)
    )
    devices: list[Branch] = []
    for r, c in cell_list:
        if not (0 <= r < g.rows and 0 <= c < g.cols):
            raise LabInputError(f"cell ({r}, {c}) is not on the board ({g.rows}x{g.cols})")
        if lab.cell_kind(r, c) != "memristor":
            raise LabInputError(
                f"cell ({r}, {c}) holds resistors: the memristor modules need memristor cells"
            )
        for k in ks:
            if not 0 <= k < g.branches:
                raise LabInputError(f"branch {k} is not on the board (0..{g.branches - 1})")
            devices.append((r, c, k))
    if not devices:
        raise LabInputError("no devices selected")
    return devices


def require_pulses(lab: Lab, module: str) -> tuple[float, float, float]:
    """The bench's pulse capability, checked up front: (max amplitude V, min width s,
    max width s). Raises `drivers.board.MissingCapabilityError` (a ValueError) naming the
    missing capability, or `LabInputError` when the board reports no pulse limits."""
    lab.require(Capability.PULSES, needed_by=f"memristor {module}")
    board = lab.board
    limits = board.pulse_limits
    if limits is None or board.max_pulse_voltage_V is None:
        raise LabInputError(
            f"memristor {module}: {board.identity} has no pulse circuit (capability "
            "'pulses' missing): nothing to characterise"
        )
    return float(board.max_pulse_voltage_V), limits.min_width_s, limits.max_width_s


def check_amplitude(name: str, value_V: float, max_V: float, lab: Lab) -> None:
    """Refuse a module setting beyond the bench's pulse limit, before anything is sent."""
    if not (math.isfinite(value_V) and abs(value_V) <= max_V):
        raise LabInputError(
            f"{name} = {value_V!r} V exceeds the bench's pulse limit {max_V:g} V (the smaller "
            f"of [limits] max_pulse_voltage_V of {lab.station.name} and the board's)"
        )


def device_arrays(devices: Sequence[Branch]) -> dict[str, tuple[npt.NDArray[Any], list[str]]]:
    """The ``device`` coordinate arrays of a result: row, column, branch per device."""
    arr = np.array(devices, dtype=np.int64).reshape(-1, 3)
    return {
        "device_row": (arr[:, 0], ["device"]),
        "device_column": (arr[:, 1], ["device"]),
        "device_branch": (arr[:, 2], ["device"]),
    }


class ModuleRecorder(DeviceRecorder):
    """`DeviceRecorder` for the modules: readings and the ``pulses`` result at each flush
    (the modules store their own per-device results at the end)."""

    def flush(self) -> None:
        """Write the readings collected since the last flush, and every pulse so far."""
        if self.store is None or self.run_id is None:
            self._rows.clear()
            return
        if self._rows:
            self.store.add_readings(self.run_id, self._rows)
            self._rows = []
        if self.pulses:
            self.store.put_result(self.run_id, "pulses", self.pulse_array())
        self.store.heartbeat(self.run_id)


@dataclass
class ModuleResult:
    """What every module returns: its run, whether it was cancelled, its summary."""

    run_id: int | None = None
    cancelled: bool = False
    devices: list[Branch] = field(default_factory=list)
    pulses: int = 0
    reads: int = 0
    instrument_time_s: float = 0.0
    bench_time_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures (modules extend it)."""
        return {
            "run_id": self.run_id,
            "cancelled": self.cancelled,
            "devices": len(self.devices),
            "pulses": self.pulses,
            "reads": self.reads,
            "instrument_time_s": self.instrument_time_s,
            "bench_time_s": self.bench_time_s,
        }


class ModuleRun:
    """The stored run of one module invocation (a context manager).

    ``with ModuleRun(lab, store, "retention", settings, ...) as run:`` opens the run (if a
    store is given); ``run.read(...)`` takes and records a branch reading; ``run.pulse``
    applies and records a pulse; ``run.stop()`` polls the cancel flag; ``run.finish(result,
    arrays)`` stores the arrays (with their dimension names) and the summary. Leaving the
    block by an exception marks the run failed; a cancelled result marks it interrupted.
    """

    def __init__(
        self,
        lab: Lab,
        store: Store | None,
        module: str,
        settings: dict[str, Any],
        devices: Sequence[Branch],
        *,
        note: str = "",
        progress: ProgressCallback | None = None,
        should_stop: StopFlag | None = None,
        on_data: DataCallback | None = None,
    ) -> None:
        self.lab = lab
        self.on_data = on_data
        self.store = store
        self.module = module
        self.kind = f"memristor_{module}"
        self.progress_cb = progress
        self.should_stop = should_stop
        self.run_id: int | None = None
        if store is not None:
            run_settings = settings | {"devices": [list(d) for d in devices]}
            self.run_id = store.start_run(
                self.kind, register_board(lab, store), run_settings, lab.describe(), note=note
            )
        self.recorder = ModuleRecorder(store, self.run_id, module[:4])
        self._reads0, self._pulses0 = lab.readings_taken, lab.pulses_applied
        self._time0 = lab.instrument_time_s + lab.pulse_time_s
        self._clock0 = lab.clock_s()

    def __enter__(self) -> ModuleRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or self.store is None or self.run_id is None:
            return
        try:
            self.recorder.flush()
            self.store.finish_run(
                self.run_id, "failed", instrument_time_s=self.instrument_time_s(), note=str(exc)
            )
        except Exception as store_exc:  # never mask the original error
            log.error("could not mark %s run %s failed: %s", self.kind, self.run_id, store_exc)

    # ---------------------------------------------------------------- bench
    def instrument_time_s(self) -> float:
        """SMU integration plus pulse-circuit time since the module started (s)."""
        return self.lab.instrument_time_s + self.lab.pulse_time_s - self._time0

    def progress(self, done: int, total: int, message: str) -> None:
        """Report progress (if anyone listens)."""
        if self.progress_cb is not None:
            self.progress_cb(done, total, message)

    def emit(self, kind: str, **point: Any) -> None:
        """Publish a new point to a live view (if anyone listens)."""
        if self.on_data is not None:
            self.on_data(kind, point)

    def stop(self) -> bool:
        """Whether the user asked to stop."""
        return self.should_stop is not None and bool(self.should_stop())

    def read(
        self,
        device: Branch,
        *,
        reads: int = 1,
        nplc: float | None = None,
        read_voltage_V: float | None = None,
    ) -> float:
        """Mean conductance (S) of ``reads`` readings of ``device`` alone, each recorded.

        Raises LabError when a reading trips the compliance (recorded anyway).
        """
        r, c, k = device
        values = [
            valid_conductance_S(
                self.lab.measure_branch(r, c, k, nplc=nplc, read_voltage_V=read_voltage_V),
                self.recorder,
            )
            for _ in range(reads)
        ]
        return float(np.mean(values))

    def record(self, reading: Reading) -> None:
        """Record a reading taken by the module itself."""
        self.recorder.read(reading)

    def pulse(self, device: Branch, amplitude_V: float, width_s: float, count: int = 1) -> None:
        """Apply and record ``count`` pulses (`Lab.pulse_branch`: every limit checked)."""
        r, c, k = device
        self.recorder.pulse(self.lab.pulse_branch(r, c, k, amplitude_V, width_s, count))

    # ---------------------------------------------------------------- storing
    def flush(self) -> None:
        """Write the readings and pulses collected so far (one transaction each)."""
        self.recorder.flush()

    def finish(
        self,
        result: ModuleResult,
        arrays: dict[str, tuple[npt.NDArray[Any], list[str]]],
    ) -> None:
        """Fill the result's totals, store the arrays and summary, close the run."""
        lab = self.lab
        result.run_id = self.run_id
        result.pulses = lab.pulses_applied - self._pulses0
        result.reads = lab.readings_taken - self._reads0
        result.instrument_time_s = self.instrument_time_s()
        result.bench_time_s = lab.clock_s() - self._clock0
        self.recorder.flush()
        if self.store is None or self.run_id is None:
            return
        dims: dict[str, list[str]] = {}
        for name, (array, names) in arrays.items():
            self.store.put_result(self.run_id, name, np.asarray(array))
            dims[name] = names
        self.store.put_value(self.run_id, "dims", dims)
        self.store.put_value(self.run_id, "summary", result.summary())
        self.store.finish_run(
            self.run_id,
            "interrupted" if result.cancelled else "completed",
            instrument_time_s=result.instrument_time_s,
            note="cancelled by the user" if result.cancelled else None,
        )
