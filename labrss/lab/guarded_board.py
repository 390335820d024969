"""The board as `Lab` holds it: any driver's `Board`, with its failures made plain.

A lab's own board driver is code labrss has never seen. `GuardedBoard` wraps whatever
`Board` a driver's ``open`` returned (built-in drivers too, so the path is the same) and
makes every failure of the driver an error that names the driver and the operation, never
a crash from deep inside labrss:

* **a driver that raises** something other than labrss's own instrument errors (an
  `InstrumentError` already names the instrument and the command) and other than a local
  refusal (ValueError: nothing was sent): `BoardDriverError`, ``board driver 'NAME'
  (package VERSION) failed in set_cell_mask(2, 3, 0x5): RuntimeError: ...``, chained;
* **a driver that answers garbage**: every value it returns is checked (a mask in range, a
  (R, C, K) bool array, a bool, a routing string, arrays of the right shape, finite numbers,
  a `SwitchWear`), and its declared attributes when it connects (geometry, capabilities,
  identity, bill of materials): `BoardDriverError` naming what it returned;
* **a driver that disappears** (its link or its process dies mid-run: OSError,
  ConnectionError, EOFError, BrokenPipeError): the same `BoardDriverError`.

`Lab` then makes the bench safe (the SMU output off; the board as far as it still answers)
and every workflow marks its run failed or interrupted, keeping what it measured
(tests/lab/test_faulty_plugin.py runs a deliberately faulty plug-in through them).
Attributes the wrapper does not declare are passed through to the driver's board.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from drivers.board import (
    Board,
    BoardGeometry,
    Capability,
    CellKind,
    SwitchWear,
)
from drivers.errors import InstrumentError

__all__ = ["BoardDriverError", "GuardedBoard"]

T = TypeVar("T")

_PASSED_THROUGH = (InstrumentError, ValueError, KeyboardInterrupt, SystemExit, GeneratorExit)
"""What a driver may raise as it is: labrss's instrument errors (they name the instrument and
the command), local refusals (nothing sent), and the interpreter's own stops."""
_ROUTINGS = ("OPEN", "CELL ", "MVM ADC", "MVM SMU,")


class BoardDriverError(InstrumentError):
    """A board driver failed or answered something that is not an answer.

    Attributes:
        driver: the driver's label, ``"NAME (package VERSION)"``.
        operation: the call, e.g. ``"set_cell_mask(2, 3, 0x5)"``.
        link_lost: the driver lost its link (nothing more will reach the board).
    """

    def __init__(
        self,
        detail: str,
        *,
        driver: str,
        operation: str,
        instrument: str,
        link_lost: bool = False,
    ) -> None:
        self.driver = driver
        self.operation = operation
        self.link_lost = link_lost
        super().__init__(
            f"board driver {driver} {detail} in {operation}",
            instrument=instrument,
            command=operation,
        )


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class GuardedBoard(Board):
    """``board`` (a driver's) behind checks (see the module docstring).

    Args:
        board: what the driver's ``open`` returned.
        driver: how messages name the driver, ``"NAME (package VERSION)"``.
    """

    def __init__(self, board: Board, driver: str) -> None:
        self.inner = board
        self.driver = driver
        self.name = str(getattr(board, "name", "") or f"board of driver {driver}")
        self._check_attributes()

    # ------------------------------------------------------------------ checks
    def _garbage(self, operation: str, what: str) -> BoardDriverError:
        return BoardDriverError(
            f"answered {what}", driver=self.driver, operation=operation, instrument=self.name
        )

    def _check_attributes(self) -> None:
        b = self.inner
        op = "open (its declared attributes)"
        g = getattr(b, "geometry", None)
        if not (
            isinstance(g, BoardGeometry)
            and all(isinstance(v, int) and v >= 1 for v in (g.rows, g.cols, g.branches))
        ):
            raise self._garbage(op, f"geometry = {_describe(g)}, not a BoardGeometry of counts")
        self.geometry = g
        caps = getattr(b, "capabilities", None)
        if not (isinstance(caps, frozenset) and all(isinstance(c, Capability) for c in caps)):
            raise self._garbage(op, f"capabilities = {_describe(caps)}, not a set of Capability")
        self.capabilities = caps
        for attr in ("identity", "serial"):
            value = getattr(b, attr, None)
            if not (isinstance(value, str) and value.strip()):
                raise self._garbage(op, f"{attr} = {_describe(value)}, not a non-empty string")
        self.identity, self.serial = b.identity, b.serial
        info = getattr(b, "info", None)
        if not (
            isinstance(info, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in info.items())
        ):
            raise self._garbage(op, f"info = {_describe(info)}, not a dict of strings")
        self.info = info
        if b.element_kind not in ("resistor", "memristor", "mixed"):
            raise self._garbage(op, f"element_kind = {_describe(b.element_kind)}")
        self.element_kind = b.element_kind
        for attr in ("open_cell_max_S", "settle_time_s"):
            value = getattr(b, attr)
            if not isinstance(value, int | float) or value < 0 or math.isinf(value):
                raise self._garbage(op, f"{attr} = {_describe(value)}, not a number >= 0")
        self.open_cell_max_S = float(b.open_cell_max_S)
        self.settle_time_s = float(b.settle_time_s)
        for attr in (
            "dac_range_V",
            "dac_bits",
            "dac_lsb_V",
            "max_dac_voltage_V",
            "adc_range_A",
            "pulse_limits",
            "max_pulse_voltage_V",
            "g_min_S",
            "g_max_S",
            "set_threshold_min_V",
            "reset_threshold_min_V",
        ):
            setattr(self, attr, getattr(b, attr))

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except _PASSED_THROUGH:
            raise
        except Exception as exc:  # anything else from code labrss does not know
            gone = isinstance(exc, OSError | EOFError)
            detail = "lost its link" if gone else "failed"
            raise BoardDriverError(
                f"{detail} ({type(exc).__name__}: {exc})",
                driver=self.driver,
                operation=operation,
                instrument=self.name,
                link_lost=gone,
            ) from exc

    def _mask(self, operation: str, value: object) -> int:
        k = self.geometry.branches
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise self._garbage(operation, f"{_describe(value)}, not an integer mask")
        if not 0 <= int(value) < 1 << k:
            raise self._garbage(operation, f"mask {_describe(value)}, beyond {k} branches")
        return int(value)

    def _bool(self, operation: str, value: object) -> bool:
        if not isinstance(value, bool | np.bool_):
            raise self._garbage(operation, f"{_describe(value)}, not True or False")
        return bool(value)

    def _array(self, operation: str, value: object, shape: tuple[int, ...]) -> npt.NDArray[Any]:
        try:
            array = np.asarray(value)
        except Exception:
            raise self._garbage(operation, f"{_describe(value)}, not an array") from None
        if array.shape != shape:
            raise self._garbage(operation, f"an array of shape {array.shape}, not {shape}")
        return array

    def _floats(self, operation: str, value: object, size: int) -> npt.NDArray[np.float64]:
        array = self._array(operation, value, (size,))
        try:
            out = np.asarray(array, dtype=np.float64)
        except (TypeError, ValueError):
            raise self._garbage(operation, f"{_describe(value)}, not numbers") from None
        return out

    # ------------------------------------------------------------------ switches
    def set_cell_mask(self, r: int, c: int, mask: int, *, verify: bool = True) -> None:
        op = f"set_cell_mask({r}, {c}, {int(mask):#x})"
        self._call(op, lambda: self.inner.set_cell_mask(r, c, mask, verify=verify))

    def cell_mask(self, r: int, c: int) -> int:
        op = f"cell_mask({r}, {c})"
        return self._mask(op, self._call(op, lambda: self.inner.cell_mask(r, c)))

    def set_masks(self, masks: npt.ArrayLike, *, verify: bool = True) -> None:
        self._call("set_masks(...)", lambda: self.inner.set_masks(masks, verify=verify))

    def masks(self) -> npt.NDArray[np.bool_]:
        g = self.geometry
        got = self._array(
            "masks()", self._call("masks()", self.inner.masks), (g.rows, g.cols, g.branches)
        )
        if got.dtype != np.bool_:
            raise self._garbage("masks()", f"an array of {got.dtype}, not bool")
        return np.asarray(got, dtype=bool)

    def open_all(self) -> None:
        self._call("open_all()", self.inner.open_all)

    def set_branch(self, r: int, c: int, k: int, closed: bool, *, verify: bool = True) -> None:
        op = f"set_branch({r}, {c}, {k}, {bool(closed)})"
        self._call(op, lambda: self.inner.set_branch(r, c, k, closed, verify=verify))

    def cell_kind(self, r: int, c: int) -> CellKind:
        op = f"cell_kind({r}, {c})"
        kind = self._call(op, lambda: self.inner.cell_kind(r, c))
        if kind not in ("resistor", "memristor"):
            raise self._garbage(op, f"{_describe(kind)}, not 'resistor' or 'memristor'")
        return kind

    # ------------------------------------------------------------------ routing
    def route_cell(self, r: int, c: int, *, four_wire: bool = False) -> None:
        op = f"route_cell({r}, {c}{', four_wire=True' if four_wire else ''})"
        self._call(op, lambda: self.inner.route_cell(r, c, four_wire=four_wire))

    def route_open(self) -> None:
        self._call("route_open()", self.inner.route_open)

    def routing(self) -> str:
        got = self._call("routing()", self.inner.routing)
        if not (isinstance(got, str) and got.startswith(_ROUTINGS)):
            raise self._garbage("routing()", f"{_describe(got)}, not a routing state")
        return got

    def route_mvm_adc(self) -> None:
        self._call("route_mvm_adc()", self.inner.route_mvm_adc)

    def route_mvm_smu(self, c: int) -> None:
        self._call(f"route_mvm_smu({c})", lambda: self.inner.route_mvm_smu(c))

    # ------------------------------------------------------------------ sources, read-out
    def set_dacs(self, volts_V: Sequence[float] | npt.ArrayLike) -> npt.NDArray[np.float64]:
        got = self._call("set_dacs(...)", lambda: self.inner.set_dacs(volts_V))
        return self._floats("set_dacs(...)", got, self.geometry.rows)

    def dacs(self) -> npt.NDArray[np.float64]:
        return self._floats("dacs()", self._call("dacs()", self.inner.dacs), self.geometry.rows)

    def zero_dacs(self) -> None:
        self._call("zero_dacs()", self.inner.zero_dacs)

    def read_adcs(self) -> npt.NDArray[np.float64]:
        got = self._call("read_adcs()", self.inner.read_adcs)
        return self._floats("read_adcs()", got, self.geometry.cols)

    def temperature_C(self) -> float:
        got = self._call("temperature_C()", self.inner.temperature_C)
        if not isinstance(got, int | float) or not math.isfinite(got):
            raise self._garbage("temperature_C()", f"{_describe(got)}, not a temperature")
        return float(got)

    # ------------------------------------------------------------------ memristors
    def pulse(  # noqa: PLR0917 (the order of the board protocol's PULSe)
        self, r: int, c: int, k: int, amplitude_V: float, width_s: float, count: int = 1
    ) -> float:
        op = f"pulse({r}, {c}, {k}, {amplitude_V!r}, {width_s!r}, {count})"
        got = self._call(op, lambda: self.inner.pulse(r, c, k, amplitude_V, width_s, count))
        if not isinstance(got, int | float) or not got >= 0:
            raise self._garbage(op, f"{_describe(got)}, not a duration >= 0 s")
        return float(got)

    def pulse_count(self, r: int, c: int, k: int) -> int:
        op = f"pulse_count({r}, {c}, {k})"
        got = self._call(op, lambda: self.inner.pulse_count(r, c, k))
        if isinstance(got, bool) or not isinstance(got, int | np.integer) or got < 0:
            raise self._garbage(op, f"{_describe(got)}, not a count")
        return int(got)

    def pulse_duration_s(self, width_s: float, count: int = 1) -> float:
        op = f"pulse_duration_s({width_s!r}, {count})"
        got = self._call(op, lambda: self.inner.pulse_duration_s(width_s, count))
        if not isinstance(got, int | float) or not got >= 0:
            raise self._garbage(op, f"{_describe(got)}, not a duration >= 0 s")
        return float(got)

    # ------------------------------------------------------------------ wear, errors
    def switch_wear(self) -> SwitchWear:
        got = self._call("switch_wear()", self.inner.switch_wear)
        ok = isinstance(got, SwitchWear) and all(
            isinstance(n, str) and isinstance(v, int) and v >= 0 for n, v in got.counts.items()
        )
        if not ok:
            raise self._garbage("switch_wear()", f"{_describe(got)}, not a SwitchWear of counts")
        return got

    def errors(self) -> list[tuple[int, str]]:
        return self._call("errors()", self.inner.errors)

    # ------------------------------------------------------------------ safe state
    def safe(self) -> None:
        self._call("safe()", self.inner.safe)

    def is_safe(self) -> bool:
        return self._bool("is_safe()", self._call("is_safe()", self.inner.is_safe))

    def close(self) -> None:
        self._call("close()", self.inner.close)

    def __getattr__(self, attribute: str) -> Any:
        """What the wrapper does not declare: the driver's own board (unchecked)."""
        if attribute == "inner":  # not set yet: no recursion while constructing
            raise AttributeError(attribute)
        return getattr(self.inner, attribute)
