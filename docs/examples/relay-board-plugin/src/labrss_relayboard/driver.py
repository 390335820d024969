"""The ACME relay board as a labrss `Board` (see the package README for its protocol).

The driver implements what every board must have (switches with read-back, cell routing,
the safe state) and declares no optional capability, so labrss refuses DAC, ADC and pulse
operations by name and runs MVMs by superposition.
"""

from __future__ import annotations

import logging
import re
from typing import Final

import numpy as np
import numpy.typing as npt
import serial

from drivers.board import Board, BoardGeometry, Capability
from drivers.errors import BoardError, BoardIdentityError
from drivers.plugins import BoardConnection, BoardDriver, Recognition

log = logging.getLogger(__name__)

BAUD_RATE: Final = 9600
IDENTITY: Final = re.compile(r"^ACME,RELAYBOARD-(\d+)x(\d+)x(\d+),(\S+)$")
SWITCH_OFF_MAX_S: Final = 1e-9
"""Off-leakage bound of one relay (S) when the board's INFO? does not give one."""


class RelayBoard(Board):
    """The ACME relay board at a serial port or pyserial URL."""

    def __init__(self, address: str, *, timeout_s: float = 2.0) -> None:
        self.name = f"ACME relay board at {address}"
        try:
            self._port = serial.serial_for_url(address, baudrate=BAUD_RATE, timeout=timeout_s)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise BoardError(f"cannot open {address!r}: {exc}", instrument=self.name) from exc
        try:
            self._connect()
        except BaseException:
            self._port.close()
            raise
        self._closed = False

    def _connect(self) -> None:
        identity = self._ask("ID?")
        match = IDENTITY.match(identity)
        if match is None:
            raise BoardIdentityError(
                f"expected an ACME relay board, but ID? answered {identity!r}",
                instrument=self.name,
                command="ID?",
            )
        rows, cols, branches = (int(match.group(i)) for i in (1, 2, 3))
        self.identity = identity
        self.serial = match.group(4)
        self.name = f"ACME relay board {self.serial} at {self._port.port}"
        self.geometry = BoardGeometry(rows, cols, branches)
        self.info = dict(item.split("=", 1) for item in self._ask("INFO?").split(";") if item)
        self.element_kind = "resistor"
        self.capabilities = frozenset()  # switches and cell routing only
        off_max = float(self.info.get("switch_off_max_S", SWITCH_OFF_MAX_S))
        self.open_cell_max_S = branches * off_max

    # ------------------------------------------------------------------ transport
    def _ask(self, command: str) -> str:
        """Send one line, return its reply; ``ERR ...`` and silence raise BoardError."""
        self._port.write(command.encode("ascii") + b"\n")
        raw = self._port.readline()
        if not raw.endswith(b"\n"):
            raise BoardError("no reply", instrument=self.name, command=command)
        reply = raw.decode("ascii", "replace").strip()
        if reply.startswith("ERR"):
            raise BoardError(reply[3:].strip(), instrument=self.name, command=command)
        return reply

    def _ok(self, command: str) -> None:
        reply = self._ask(command)
        if reply != "OK":
            raise BoardError(f"expected OK, got {reply!r}", instrument=self.name, command=command)

    def _check_cell(self, r: int, c: int) -> None:
        g = self.geometry
        if not (0 <= r < g.rows and 0 <= c < g.cols):
            raise ValueError(f"{self.name}: cell ({r}, {c}) not on the board; nothing sent")

    # ------------------------------------------------------------------ switches
    def set_cell_mask(self, r: int, c: int, mask: int, *, verify: bool = True) -> None:
        self._check_cell(r, c)
        if not 0 <= int(mask) < 1 << self.geometry.branches:
            raise ValueError(f"{self.name}: mask {mask!r} out of range; nothing sent")
        command = f"CELL {r} {c} {int(mask)}"
        self._ok(command)
        if verify and self.cell_mask(r, c) != int(mask):
            raise BoardError("read-back mismatch", instrument=self.name, command=command)

    def cell_mask(self, r: int, c: int) -> int:
        self._check_cell(r, c)
        reply = self._ask(f"CELL? {r} {c}")
        if not reply.isdigit():
            raise BoardError(f"not a mask: {reply!r}", instrument=self.name, command="CELL?")
        return int(reply)

    def set_masks(self, masks: npt.ArrayLike, *, verify: bool = True) -> None:
        array = np.asarray(masks, dtype=bool)
        g = self.geometry
        if array.shape != (g.rows, g.cols, g.branches):
            raise ValueError(f"{self.name}: masks of shape {array.shape}; nothing sent")
        weights = 1 << np.arange(g.branches)
        for r in range(g.rows):
            for c in range(g.cols):
                self.set_cell_mask(r, c, int((array[r, c] * weights).sum()), verify=verify)

    def masks(self) -> npt.NDArray[np.bool_]:
        g = self.geometry
        out = np.zeros((g.rows, g.cols, g.branches), dtype=bool)
        for r in range(g.rows):
            for c in range(g.cols):
                mask = self.cell_mask(r, c)
                out[r, c] = [(mask >> k) & 1 for k in range(g.branches)]
        return out

    def open_all(self) -> None:
        self._ok("OPEN")

    # ------------------------------------------------------------------ routing
    def route_cell(self, r: int, c: int, *, four_wire: bool = False) -> None:
        if four_wire:
            self.require(Capability.FOUR_WIRE, needed_by="route_cell(four_wire=True)")
        self._check_cell(r, c)
        self._ok(f"ROUTE {r} {c}")
        if self.routing() != f"CELL {r},{c},2W":
            raise BoardError("routing read-back mismatch", instrument=self.name, command="ROUTE")

    def route_open(self) -> None:
        self._ok("ROUTE OFF")

    def routing(self) -> str:
        reply = self._ask("ROUTE?")
        if reply == "OFF":
            return "OPEN"
        parts = reply.split()
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise BoardError(f"not a routing: {reply!r}", instrument=self.name, command="ROUTE?")
        return f"CELL {parts[0]},{parts[1]},2W"

    # ------------------------------------------------------------------ safe state
    def safe(self) -> None:
        self._ok("OPEN")
        self._ok("ROUTE OFF")
        if not self.is_safe():
            raise BoardError("not safe after OPEN, ROUTE OFF", instrument=self.name)

    def is_safe(self) -> bool:
        return self._ask("SAFE?") == "1"

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        try:
            self.safe()
        except Exception as exc:  # closing must not fail because the board is gone
            log.warning("%s: could not go safe before closing: %s", self.name, exc)
        finally:
            self._closed = True
            self._port.close()


def _open(connection: BoardConnection) -> RelayBoard:
    return RelayBoard(connection.address, timeout_s=connection.timeout_s)


DRIVER: Final = BoardDriver(
    open=_open,
    description="ACME relay board (example plug-in: relays per branch, cell routing)",
    capabilities=frozenset(),
    recognition=Recognition(
        query="ID?",
        pattern=r"^ACME,RELAYBOARD-\d+x\d+x\d+,",
        transports=("serial",),
        baud_rate=BAUD_RATE,
    ),
    simulator="labrss_relayboard.emulator:RelayBoardProtocol",
)
"""The entry point ``relayboard`` of group ``labrss.boards`` (pyproject.toml)."""
