"""Safe failure with unknown hardware: a deliberately faulty board-driver plug-in.

`FaultyBoard` is a plug-in (registered under the entry point group ``labrss.boards`` as
``faulty``, package ``faulty-board 0.0.1``) that drives the simulated crossbar board and
misbehaves as its ``[board.options]`` say: ``fail = "raise"`` (one operation raises a
plain RuntimeError), ``"garbage"`` (its read-backs return nonsense), ``"vanish"`` (its link
dies mid-run), ``"open"`` (it cannot even connect), each after ``after`` operations. Real
workflows run on it; each time the error names the driver and the operation, the bench is
safe afterwards (SMU output off, the board safe) and the store is consistent (the run
marked interrupted or failed, every reading taken before the failure kept).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pytest

from calibration.run import CalibrationInterruptedError, CalibrationRun
from calibration.settings import CalibrationSettings, CellSelection
from drivers import plugins
from drivers.board import Board
from drivers.crossbar_board import DRIVER as CROSSBAR
from drivers.crossbar_board import CrossbarBoard
from drivers.plugins import BoardConnection, BoardDriver, Recognition
from labrss.lab import BenchNotSafeError, Lab
from labrss.lab.guarded_board import BoardDriverError
from labrss.station import Station, parse_station
from labrss.store import Store
from labrss.workflows.selftest import run_selftest
from simulator.bench import SimulatedBench

LABEL = "faulty (faulty-board 0.0.1)"


class FaultyBoard(Board):
    """The crossbar board through a driver with a bug (see the module docstring)."""

    def __init__(self, connection: BoardConnection) -> None:
        self.fail = str(connection.options.get("fail", "raise"))
        self.after = int(connection.options.get("after", 10))
        self.calls = 0
        if self.fail == "open":
            raise RuntimeError("firmware handshake failed: unexpected byte 0x7f")
        self.real = CrossbarBoard(connection.address, timeout_s=connection.timeout_s, retries=0)
        for attr in (
            "identity",
            "serial",
            "name",
            "geometry",
            "info",
            "element_kind",
            "capabilities",
            "open_cell_max_S",
            "dac_range_V",
            "dac_bits",
            "dac_lsb_V",
            "max_dac_voltage_V",
            "adc_range_A",
        ):
            setattr(self, attr, getattr(self.real, attr))
        self.name = f"faulty board at {connection.address}"

    def _tick(self, operation: str) -> None:
        self.calls += 1
        if self.calls <= self.after:
            return
        if self.fail == "raise" and operation == "set_cell_mask" and self.calls == self.after + 1:
            raise RuntimeError("relay driver crashed (index out of bounds in firmware table)")
        if self.fail == "vanish":
            port = getattr(self.real, "_port", None)
            if port is not None and getattr(port, "is_open", True):
                self.real.close()  # the USB cable is pulled: the link is gone
            raise ConnectionResetError(104, "Connection reset by peer")

    def set_cell_mask(self, r: int, c: int, mask: int, *, verify: bool = True) -> None:
        self._tick("set_cell_mask")
        self.real.set_cell_mask(r, c, mask, verify=verify)

    def cell_mask(self, r: int, c: int) -> int:
        self._tick("cell_mask")
        if self.fail == "garbage" and self.calls > self.after:
            return "0x5"  # type: ignore[return-value]
        return self.real.cell_mask(r, c)

    def set_masks(self, masks: npt.ArrayLike, *, verify: bool = True) -> None:
        self._tick("set_masks")
        self.real.set_masks(masks, verify=verify)

    def masks(self) -> npt.NDArray[np.bool_]:
        self._tick("masks")
        if self.fail == "garbage" and self.calls > self.after:
            return np.zeros(3, dtype=np.int8)  # type: ignore[return-value]
        return self.real.masks()

    def open_all(self) -> None:
        self._tick("open_all")
        self.real.open_all()

    def route_cell(self, r: int, c: int, *, four_wire: bool = False) -> None:
        self._tick("route_cell")
        self.real.route_cell(r, c, four_wire=four_wire)

    def route_open(self) -> None:
        self._tick("route_open")
        self.real.route_open()

    def routing(self) -> str:
        self._tick("routing")
        return self.real.routing()

    def route_mvm_adc(self) -> None:
        self.real.route_mvm_adc()

    def route_mvm_smu(self, c: int) -> None:
        self.real.route_mvm_smu(c)

    def set_dacs(self, volts_V: Any) -> npt.NDArray[np.float64]:
        self._tick("set_dacs")
        return self.real.set_dacs(volts_V)

    def dacs(self) -> npt.NDArray[np.float64]:
        return self.real.dacs()

    def zero_dacs(self) -> None:
        self.real.zero_dacs()

    def read_adcs(self) -> npt.NDArray[np.float64]:
        return self.real.read_adcs()

    def temperature_C(self) -> float:
        return self.real.temperature_C()

    def safe(self) -> None:
        if self.fail == "vanish" and self.calls > self.after:
            raise ConnectionResetError(104, "Connection reset by peer")
        self.real.safe()

    def is_safe(self) -> bool:
        if self.fail == "garbage" and self.calls > self.after:
            return "maybe"  # type: ignore[return-value]
        if self.fail == "vanish" and self.calls > self.after:
            raise ConnectionResetError(104, "Connection reset by peer")
        return self.real.is_safe()

    def close(self) -> None:
        self.real.close()


DRIVER = BoardDriver(
    open=FaultyBoard,
    description="a deliberately faulty driver of the crossbar board (tests)",
    capabilities=CROSSBAR.capabilities,
    recognition=Recognition(pattern=r"^LABRSS,XBAR-", transports=("serial",)),
    simulator="crossbar",
    options={"fail": "raise, garbage, vanish or open", "after": "operations before it fails"},
)


class _Dist:
    metadata: ClassVar[dict[str, str]] = {"Name": "faulty-board"}
    version = "0.0.1"


class _EntryPoint:
    name = "faulty"
    value = "tests.lab.test_faulty_plugin:DRIVER"
    group = plugins.BOARD_GROUP
    dist = _Dist()

    def load(self) -> BoardDriver:
        return DRIVER


@pytest.fixture(autouse=True)
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The faulty plug-in installed next to the real ones (its entry point)."""
    real = plugins.metadata.entry_points

    def entry_points(*, group: str) -> Any:
        found = list(real(group=group))
        return [*found, _EntryPoint()] if group == plugins.BOARD_GROUP else found

    monkeypatch.setattr(plugins.metadata, "entry_points", entry_points)
    yield


def station(fail: str, after: int) -> Station:
    return parse_station(
        {
            "board": {"driver": "faulty", "options": {"fail": fail, "after": after}},
            "simulator": {"board": "small", "seed": 9},
        }
    )


def _safe_now(bench: SimulatedBench, timeout_s: float = 5.0) -> bool:
    """The simulated board's own state and the SMU's output (the truth), waiting for the
    board server to notice a dropped link."""
    end = time.monotonic() + timeout_s
    while True:
        with bench.lock:
            safe = bench.model.is_safe() and not bench.smu.output_on
        if safe or time.monotonic() > end:
            return safe
        time.sleep(0.05)


def test_a_driver_that_raises_mid_calibration(tmp_path: Path) -> None:
    settings = CalibrationSettings(cells=CellSelection((0, 1), (0, 1)), nplc=0.01)
    with Store(tmp_path / "lab.db") as store, Lab(station("raise", 60)) as lab:
        assert lab.simulator is not None
        with pytest.raises(CalibrationInterruptedError) as exc:
            CalibrationRun(lab, store, settings).run()
        cause = exc.value.__cause__
        assert isinstance(cause, BoardDriverError)
        assert cause.driver == LABEL and cause.operation.startswith("set_cell_mask(")
        assert f"board driver {LABEL} failed (RuntimeError: relay driver crashed" in str(cause)
        assert _safe_now(lab.simulator)
        run = store.run(exc.value.run_id)
        assert run.status == "interrupted"
        assert len(store.readings(run.id)) > 0  # what was measured before is kept
        assert store.integrity_check() == "ok"


def test_a_driver_that_answers_garbage(tmp_path: Path) -> None:
    store = Store(tmp_path / "lab.db")
    lab = Lab(station("garbage", 25))
    with store, pytest.raises(BenchNotSafeError, match=f"{re.escape(LABEL)} answered 'maybe'"), lab:
        assert lab.simulator is not None
        with pytest.raises(BoardDriverError) as exc:
            lab.masks()
            lab.masks()
            for _ in range(30):
                lab.board.cell_mask(0, 0)
        message = str(exc.value)
        assert f"board driver {LABEL} answered" in message
        assert "in masks()" in message or "in cell_mask(0, 0)" in message
        # the self-test on it: its checks fail by name, the run is stored failed, and the
        # bench is made safe (the board still obeys; only its read-backs are garbage)
        result = run_selftest(lab, store, nplc=0.01)
        assert not result.passed
        switches = next(c for c in result.checks if c.name == "switches")
        assert switches.status == "fail" and LABEL in switches.detail
        assert store.run(result.run_id or -1).status == "failed"
        assert _safe_now(lab.simulator)
    # leaving the block, labrss cannot confirm the safe state (is_safe() answers garbage):
    # BenchNotSafeError says to check by hand, naming the driver; the board did go safe


def test_a_driver_that_disappears_mid_run(tmp_path: Path) -> None:
    settings = CalibrationSettings(cells=CellSelection((0, 1), (0, 1)), nplc=0.01)
    with Store(tmp_path / "lab.db") as store:
        lab = Lab(station("vanish", 40))
        with pytest.raises(BenchNotSafeError, match="lost its link"), lab:
            assert lab.simulator is not None
            bench = lab.simulator
            with pytest.raises(CalibrationInterruptedError) as exc:
                CalibrationRun(lab, store, settings).run()
            cause = exc.value.__cause__
            assert isinstance(cause, BoardDriverError)
            assert "lost its link (ConnectionResetError" in str(cause) and LABEL in str(cause)
            # the board went safe on link loss by itself; labrss turned the SMU off
            assert _safe_now(bench)
            assert store.run(exc.value.run_id).status == "interrupted"
            assert store.integrity_check() == "ok"
    # leaving the block, labrss cannot confirm the safe state of a board it cannot reach:
    # BenchNotSafeError (check by hand); the board itself went safe when its link died


def test_a_driver_that_cannot_connect() -> None:
    with pytest.raises(BoardDriverError) as exc:
        Lab(station("open", 0)).open()
    message = str(exc.value)
    assert f"board driver {LABEL} failed (RuntimeError: firmware handshake failed" in message
    assert "in open('socket://127.0.0.1:" in message
