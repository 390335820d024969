"""A Keysight (Agilent) 34980A switching matrix in front of a passive array, as a `Board`.

Usage::

    from drivers.adapters import VISAAdapter
    from drivers.matrix_layout import load_layout
    layout = load_layout("array-layout.toml")        # which channel is which switch
    with Keysight34980AMatrix(VISAAdapter("TCPIP0::10.0.0.7::5025::SOCKET"), layout) as m:
        m.set_cell_mask(2, 3, 0b101)                   # read back
        m.route_cell(2, 3)                             # row 2 to HI, column 3 to LO, rest guarded

or, from a station file, ``[board] driver = "keysight34980a"``, ``address = "TCPIP0::..."``
and ``[board.options] layout = "array-layout.toml"`` (docs/switch-matrix.md).

The array's switches are the matrix's crosspoint relays (`drivers.matrix_layout`): a cell's
mask closes its branches' crosspoints, cell routing closes the line crosspoints of the
guarded read. The commands (34980A programmer's reference): ``ROUTe:OPEN (@list)`` and
``ROUTe:CLOSe (@list)`` (only what changes: the relays that must open open first, in their
own command, then those that must close: break-before-make across the whole matrix),
``ROUTe:CLOSe? (@list)`` for every read-back, ``ROUTe:OPEN:ALL <slot>`` for the safe state
(the layout's slots only), ``DIAGnostic:RELay:CYCLes? (@list)`` for the relay counts, and
at connect ``*IDN?``, ``*CLS`` and ``SYSTem:CTYPe? <slot>`` (each slot must hold the module
the layout expects). Channel lists are written with ranges (``1101:1108``) within a matrix
row and split so that no command carries more than `MAX_CHANNELS_PER_COMMAND`.

Capabilities: ``switch-counts`` only. The bench has no DACs, ADCs or pulse circuit: an MVM
runs by superposition (the SMU drives one row at a time through cell routing). Declared
figures from the layout: ``settle_time_s`` (contact settling after a relay operation: `Lab`
waits it before reading) and ``open_cell_max_S`` (K open crosspoints' isolation).

Unlike the crossbar board, a matrix of latching relays keeps its state when the link is
lost: `close` opens everything before it lets go, and a host that dies leaves the relays
as they were (docs/switch-matrix.md, "Safety").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from drivers.adapters import Adapter
from drivers.board import Board, BoardGeometry, Capability, SwitchWear
from drivers.errors import BoardError, BoardIdentityError
from drivers.instrument import SCPIInstrument
from drivers.matrix_layout import LayoutError, MatrixLayout, load_layout
from drivers.plugins import BoardConnection, BoardDriver, Recognition

__all__ = ["DRIVER", "MAX_CHANNELS_PER_COMMAND", "Keysight34980AMatrix", "channel_list"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

MAX_CHANNELS_PER_COMMAND: Final = 64
"""Channels per ROUT command or query (keeps every line short and every reply small)."""
_IDN_RE: Final = re.compile(r"^(Agilent|Keysight) Technologies,34980A,([^,]+),")


def channel_list(channels: Iterable[int]) -> str:
    """``(@1101:1104,1203,2101)``: sorted, runs of consecutive columns of one matrix row
    written as ranges (unambiguous on every 34980A module)."""
    chans = sorted(set(channels))
    parts: list[str] = []
    i = 0
    while i < len(chans):
        j = i
        while (
            j + 1 < len(chans)
            and chans[j + 1] == chans[j] + 1
            and chans[j + 1] // 100 == (chans[i] // 100)
        ):
            j += 1
        parts.append(str(chans[i]) if j == i else f"{chans[i]}:{chans[j]}")
        i = j + 1
    return "(@" + ",".join(parts) + ")"


def _chunks(channels: Sequence[int]) -> list[list[int]]:
    items = sorted(channels)
    return [
        items[i : i + MAX_CHANNELS_PER_COMMAND]
        for i in range(0, len(items), MAX_CHANNELS_PER_COMMAND)
    ]


class Keysight34980AMatrix(SCPIInstrument, Board):
    """The matrix and the array it wires (see the module docstring).

    Args:
        adapter: the VISA session to the 34980A.
        layout: the layout file's contents (`drivers.matrix_layout.load_layout`).
    """

    def __init__(self, adapter: Adapter, layout: MatrixLayout) -> None:
        SCPIInstrument.__init__(self, adapter, f"Keysight 34980A at {adapter.name}")
        self.layout = layout
        self._closed_cache: dict[int, bool] | None = None
        self._closed = False
        identity = self.identify()
        match = _IDN_RE.match(identity)
        if match is None:
            raise BoardIdentityError(
                f"expected a Keysight 34980A at {adapter.name}, but *IDN? answered {identity!r}",
                instrument=self.name,
                command="*IDN?",
            )
        self.identity = identity
        self.mainframe_serial = match.group(2)
        self.serial = layout.serial
        self.rename(
            f"switch matrix (34980A {self.mainframe_serial}, array {layout.serial}) at "
            f"{adapter.name}"
        )
        self.clear_status()
        for slot, model in sorted(layout.modules.items()):
            command = f"SYST:CTYP? {slot}"
            fields = [f.strip().strip('"') for f in self.ask(command).split(",")]
            found = fields[1] if len(fields) > 1 else "?"
            if found != model:
                what = "nothing" if found == "0" else f"a {found}"
                raise BoardIdentityError(
                    f"the layout {layout.source} expects a {model} in slot {slot}, the "
                    f"mainframe has {what} there",
                    instrument=self.name,
                    command=command,
                )
        self.geometry = BoardGeometry(layout.rows, layout.cols, layout.branches)
        self.element_kind = "resistor"
        self.info = dict(layout.info)
        self.capabilities = frozenset({Capability.SWITCH_COUNTS})
        self.open_cell_max_S = layout.branches * layout.switch_off_max_S
        self.settle_time_s = layout.settle_time_s
        self.check_errors("connect")
        log.info("connected to %s (%s)", self.name, identity)

    # ------------------------------------------------------------------ relay I/O
    def _read(self, channels: Sequence[int]) -> dict[int, bool]:
        """The commanded state of ``channels`` (``ROUT:CLOS?``)."""
        state: dict[int, bool] = {}
        for chunk in _chunks(channels):
            command = f"ROUT:CLOS? {channel_list(chunk)}"
            reply = self.ask(command)
            parts = [p.strip() for p in reply.split(",")]
            if len(parts) != len(chunk) or any(p not in ("0", "1") for p in parts):
                raise BoardError(
                    f"expected {len(chunk)} values 0/1, got {reply[:80]!r}",
                    instrument=self.name,
                    command=command,
                )
            state.update(zip(chunk, (p == "1" for p in parts), strict=True))
        return state

    def _state(self) -> dict[int, bool]:
        if self._closed_cache is None:
            self._closed_cache = self._read(self.layout.channels)
        return self._closed_cache

    def _send(self, verb: str, channels: Iterable[int]) -> None:
        for chunk in _chunks(list(channels)):
            self.write(f"ROUT:{verb} {channel_list(chunk)}")

    def _move(self, wanted: dict[int, bool], *, verify: bool, what: str) -> None:
        """Set the relays of ``wanted`` (channel -> closed): open what must open, then close
        what must close (break-before-make); read back when ``verify``."""
        state = self._state()
        to_open = [ch for ch, closed in wanted.items() if not closed and state[ch]]
        to_close = [ch for ch, closed in wanted.items() if closed and not state[ch]]
        self._closed_cache = None  # unknown until confirmed
        if to_open:
            self._send("OPEN", to_open)
        if to_close:
            self._send("CLOS", to_close)
        if not verify:
            state.update(wanted)
            self._closed_cache = state
            return
        got = self._read(list(wanted))
        bad = [ch for ch, closed in wanted.items() if got[ch] != closed]
        if bad:
            errors = self.read_errors()
            queued = "; ".join(f'{code},"{message}"' for code, message in errors)
            raise BoardError(
                f"read-back mismatch for {what}: channel {bad[0]} ({self.layout.where[bad[0]]}) "
                f"reads {int(got[bad[0]])}, wanted {int(wanted[bad[0]])}"
                + (f"; error queue: {queued}" if queued else ""),
                instrument=self.name,
                command=f"ROUT:CLOS {channel_list(to_close)}" if to_close else "ROUT:OPEN",
            )
        state.update(got)
        self._closed_cache = state

    # ------------------------------------------------------------------ checks
    def _check_cell(self, r: int, c: int) -> None:
        for what, value, size in (("row", r, self.layout.rows), ("column", c, self.layout.cols)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ValueError(f"{self.name}: {what} {value!r} is not an integer; nothing sent")
            if not 0 <= value < size:
                raise ValueError(f"{self.name}: {what} {value} not in 0..{size - 1}; nothing sent")

    def _cell_wanted(self, r: int, c: int, mask: int) -> dict[int, bool]:
        k_all = self.layout.branches
        if isinstance(mask, bool) or not isinstance(mask, int | np.integer):
            raise ValueError(f"{self.name}: mask {mask!r} is not an integer; nothing sent")
        if not 0 <= mask < 1 << k_all:
            raise ValueError(
                f"{self.name}: mask {int(mask):#x} has bits beyond the {k_all} branches; "
                "nothing sent"
            )
        return {
            self.layout.branch_channel[(r, c, k)]: bool((int(mask) >> k) & 1) for k in range(k_all)
        }

    # ------------------------------------------------------------------ switches
    def set_cell_mask(self, r: int, c: int, mask: int, *, verify: bool = True) -> None:
        """Cell (r, c)'s crosspoints: bit k of ``mask`` closes branch k; read back."""
        self._check_cell(r, c)
        self._move(self._cell_wanted(r, c, mask), verify=verify, what=f"cell ({r},{c})")

    def cell_mask(self, r: int, c: int) -> int:
        """Cell (r, c)'s mask as the mainframe reports it."""
        self._check_cell(r, c)
        chans = [self.layout.branch_channel[(r, c, k)] for k in range(self.layout.branches)]
        got = self._read(chans)
        return sum(1 << k for k, ch in enumerate(chans) if got[ch])

    def set_masks(self, masks: npt.ArrayLike, *, verify: bool = True) -> None:
        """Every branch crosspoint from an (R, C, K) bool array; read back."""
        array = np.asarray(masks)
        g = self.geometry
        if array.shape != (g.rows, g.cols, g.branches):
            raise ValueError(
                f"{self.name}: masks must have shape {(g.rows, g.cols, g.branches)}, got "
                f"{array.shape}; nothing sent"
            )
        if array.dtype != np.bool_:
            if not np.isin(array, (0, 1)).all():
                raise ValueError(f"{self.name}: masks must be boolean (0/1); nothing sent")
            array = array.astype(bool)
        wanted = {ch: bool(array[r, c, k]) for (r, c, k), ch in self.layout.branch_channel.items()}
        self._move(wanted, verify=verify, what="the masks")

    def masks(self) -> npt.NDArray[np.bool_]:
        """Every branch crosspoint as the mainframe reports it, (R, C, K) bool."""
        got = self._read(self.layout.branch_channels)
        g = self.geometry
        out = np.zeros((g.rows, g.cols, g.branches), dtype=bool)
        for (r, c, k), ch in self.layout.branch_channel.items():
            out[r, c, k] = got[ch]
        return out

    def open_all(self) -> None:
        """Every branch crosspoint open (the routing untouched); read back."""
        self._move(dict.fromkeys(self.layout.branch_channels, False), verify=True, what="open_all")

    # ------------------------------------------------------------------ routing
    def route_cell(self, r: int, c: int, *, four_wire: bool = False) -> None:
        """Row r to HI, column c to LO, the other rows to LO and columns to GUARD."""
        if four_wire:
            self.require(Capability.FOUR_WIRE, needed_by="route_cell(four_wire=True)")
        self._check_cell(r, c)
        on = self.layout.routing_for(r, c)
        wanted = {ch: ch in on for ch in self.layout.line_channels}
        self._move(wanted, verify=True, what=f"the routing to cell ({r},{c})")

    def route_open(self) -> None:
        """Every line crosspoint open; read back."""
        wanted = dict.fromkeys(self.layout.line_channels, False)
        self._move(wanted, verify=True, what="the routing")

    def routing(self) -> str:
        """``OPEN`` or ``CELL r,c,2W`` from the line crosspoints' read-back."""
        got = self._read(self.layout.line_channels)
        on = {ch for ch, closed in got.items() if closed}
        if not on:
            return "OPEN"
        for r in range(self.layout.rows):
            if self.layout.line_channel[("row", r, "HI")] not in on:
                continue
            for c in range(self.layout.cols):
                if on == self.layout.routing_for(r, c):
                    return f"CELL {r},{c},2W"
        closed = ", ".join(f"{ch} ({self.layout.where[ch]})" for ch in sorted(on))
        raise BoardError(
            f"the line crosspoints are in no routing state: closed {closed}",
            instrument=self.name,
            command="ROUT:CLOS?",
        )

    # ------------------------------------------------------------------ wear
    def switch_wear(self) -> SwitchWear:
        """Closures counted by the mainframe for every channel of the layout."""
        counts: dict[str, int] = {}
        for chunk in _chunks(self.layout.channels):
            command = f"DIAG:REL:CYCL? {channel_list(chunk)}"
            reply = self.ask(command)
            parts = [p.strip() for p in reply.split(",")]
            if len(parts) != len(chunk) or not all(re.fullmatch(r"[+]?\d+", p) for p in parts):
                raise BoardError(
                    f"expected {len(chunk)} counts, got {reply[:80]!r}",
                    instrument=self.name,
                    command=command,
                )
            counts.update({str(ch): int(p) for ch, p in zip(chunk, parts, strict=True)})
        where = {str(ch): text for ch, text in self.layout.where.items()}
        return SwitchWear(counts, self.layout.rated_operations, where)

    def errors(self) -> list[tuple[int, str]]:
        """Drain the mainframe's error queue."""
        return self.read_errors()

    # ------------------------------------------------------------------ safe state
    def safe(self) -> None:
        """``ROUT:OPEN:ALL`` on every slot of the layout; confirmed by read-back."""
        self._closed_cache = None
        for slot in sorted(self.layout.modules):
            self.write(f"ROUT:OPEN:ALL {slot}")
        if not self.is_safe():
            raise BoardError(
                "channels still closed after ROUT:OPEN:ALL",
                instrument=self.name,
                command="ROUT:OPEN:ALL",
            )

    def is_safe(self) -> bool:
        """Whether every channel of the layout reads back open."""
        state = self._read(self.layout.channels)
        self._closed_cache = state
        return not any(state.values())

    def close(self) -> None:
        """Open every channel of the layout (best effort), then close the VISA session."""
        if self._closed:
            return
        try:
            self.safe()
        except Exception as exc:  # closing must not fail because the link is gone
            log.warning("%s: could not open the relays before closing: %s", self.name, exc)
        finally:
            self._closed = True
            self.adapter.close()


# ---------------------------------------------------------------------- plug-in description
def _open(connection: BoardConnection) -> Keysight34980AMatrix:
    from drivers.adapters import VISAAdapter

    layout_path = connection.options.get("layout")
    if not layout_path:
        raise ValueError(
            "the keysight34980a driver needs the array's layout file: [board.options] "
            "layout = FILE (docs/switch-matrix.md)"
        )
    try:
        layout = load_layout(str(layout_path))
    except LayoutError as exc:
        raise BoardError(str(exc), instrument=f"keysight34980a at {connection.address}") from exc
    adapter = VISAAdapter(
        connection.address,
        timeout_s=connection.timeout_s,
        visa_library=str(connection.options.get("visa_library", "@py")),
        instrument=f"keysight34980a at {connection.address}",
    )
    try:
        return Keysight34980AMatrix(adapter, layout)
    except BaseException:
        adapter.close()
        raise


DRIVER: Final = BoardDriver(
    open=_open,
    description=(
        "Keysight 34980A switching matrix (34931A/34932A/34933A) in front of a passive "
        "array, wired as a layout file says (docs/switch-matrix.md)"
    ),
    capabilities=frozenset({Capability.SWITCH_COUNTS}),
    recognition=Recognition(
        query="*IDN?",
        pattern=r"^(Agilent|Keysight) Technologies,34980A,",
        transports=("visa",),
    ),
    simulator="switch-matrix",
    options={
        "layout": "the layout file (TOML): which channel is which branch switch and line",
        "visa_library": "the pyvisa backend ('@py': pyvisa-py, the default)",
    },
    path_options=("layout",),
)
"""The ``keysight34980a`` entry point of ``labrss.boards`` (pyproject.toml)."""
