"""The layout file: how a switching matrix's channels wire a passive array (driver side).

Format (docs/switch-matrix.md, "The layout file"), a TOML file::

    [array]                 # the passive array: geometry and bill of materials
    serial = "ARRAY-0001"   # what calibrations belong to
    rows = 4
    cols = 4
    branches = 8
    element = "resistor"
    nominal_ohm = "1e6/555556/..."   # optional BOARD:INFO?-style keys, passed on as text
    tolerance = 0.05
    switch_on_ohm = 0.5
    switch_off_max_S = 1e-10         # one open crosspoint's isolation (S)

    [matrix]
    mainframe = "34980A"
    modules = { 1 = "34932A", 2 = "34932A" }   # slot -> module the wiring expects
    rated_operations = 100_000_000             # relay life (closures)
    settle_time_s = 0.01                       # wait after a relay operation (s)

    [branches]              # channel = [row, col, branch]: that crosspoint is the switch
    1101 = [0, 0, 0]

    [lines]                 # channel = ["row"|"col", index, "HI"|"LO"|"GUARD"]
    5101 = ["row", 0, "HI"]

Every branch has exactly one channel; every row line a channel to HI and one to LO; every
column line one to LO and one to GUARD; no channel twice; channels are ``srcc`` (slot,
matrix row, two-digit column) of the declared modules. The simulator reads the same format
independently (`simulator.matrix_wiring`).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = ["MODULE_SIZES", "LayoutError", "MatrixLayout", "load_layout"]

MODULE_SIZES: Final[Mapping[str, tuple[int, int]]] = {
    "34931A": (8, 8),
    "34932A": (8, 16),
    "34933A": (8, 8),
}
"""Keysight 34980A matrix modules in 2-wire mode: (matrix rows, columns); rows 1-4 are
matrix 1, rows 5-8 matrix 2 (34931A-34933A user's guide)."""

BUSES: Final[Mapping[str, tuple[str, ...]]] = {"row": ("HI", "LO"), "col": ("LO", "GUARD")}
"""What each kind of array line connects to: rows to HI (driven) or LO (at 0 V); columns to
LO (read) or GUARD (at the HI potential)."""

DEFAULT_RATED_OPERATIONS: Final = 100_000_000
"""34931A/34932A armature relays: 100 M operations typical at no load."""
DEFAULT_SETTLE_TIME_S: Final = 0.01
DEFAULT_SWITCH_OFF_MAX_S: Final = 1e-10
"""34931A-34933A DC isolation > 10 Gohm."""
_ARRAY_KEYS: Final = ("serial", "rows", "cols", "branches", "element")


class LayoutError(ValueError):
    """A layout file that cannot be used; the message names the file, the key and the value."""


@dataclass(frozen=True)
class MatrixLayout:
    """A checked layout file.

    Attributes:
        source: the file.
        serial: the array's serial number.
        rows, cols, branches: the array's geometry.
        element: ``resistor`` (``memristor`` arrays need a pulse source this bench lacks).
        info: the array's bill of materials as ``BOARD:INFO?``-style text values.
        modules: slot -> module model.
        rated_operations: relay life (closures).
        settle_time_s: wait after a relay operation before a reading (s).
        switch_off_max_S: one open crosspoint's conductance bound (S).
        branch_channel: (row, col, branch) -> channel.
        line_channel: (kind, index, bus) -> channel.
        where: channel -> what it connects (for messages and relay-wear reports).
    """

    source: str
    serial: str
    rows: int
    cols: int
    branches: int
    element: str
    info: Mapping[str, str]
    modules: Mapping[int, str]
    rated_operations: int
    settle_time_s: float
    switch_off_max_S: float
    branch_channel: Mapping[tuple[int, int, int], int]
    line_channel: Mapping[tuple[str, int, str], int]
    where: Mapping[int, str] = field(default_factory=dict)

    @property
    def channels(self) -> list[int]:
        """Every channel of the layout, sorted."""
        return sorted(self.where)

    @property
    def line_channels(self) -> list[int]:
        """The routing channels (lines to HI, LO, GUARD), sorted."""
        return sorted(self.line_channel.values())

    @property
    def branch_channels(self) -> list[int]:
        """The switch channels in (row, col, branch) order."""
        return [
            self.branch_channel[(r, c, k)]
            for r in range(self.rows)
            for c in range(self.cols)
            for k in range(self.branches)
        ]

    def routing_for(self, r: int, c: int) -> set[int]:
        """The line channels closed for the guarded read of cell (r, c): row r to HI, every
        other row to LO, column c to LO, every other column to GUARD."""
        chans = {self.line_channel[("row", r, "HI")], self.line_channel[("col", c, "LO")]}
        chans |= {self.line_channel[("row", i, "LO")] for i in range(self.rows) if i != r}
        chans |= {self.line_channel[("col", j, "GUARD")] for j in range(self.cols) if j != c}
        return chans


def _integer(value: object, key: str, source: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise LayoutError(f"{source}: {key} = {value!r}: must be an integer >= {low}")
    return value


def _positive(value: object, key: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise LayoutError(f"{source}: {key} = {value!r}: must be a number > 0")
    if not math.isfinite(float(value)):
        raise LayoutError(f"{source}: {key} = {value!r}: must be finite")
    return float(value)


def _channel(text: str, table: str, source: str, modules: Mapping[int, str]) -> int:
    if not (text.isdigit() and len(text) == 4):
        raise LayoutError(f"{source}: [{table}] {text!r}: a channel is four digits 'srcc'")
    slot, row, col = int(text[0]), int(text[1]), int(text[2:])
    model = modules.get(slot)
    if model is None:
        raise LayoutError(f"{source}: [{table}] {text}: no module in slot {slot} ([matrix])")
    n_rows, n_cols = MODULE_SIZES[model]
    if not (1 <= row <= n_rows and 1 <= col <= n_cols):
        raise LayoutError(
            f"{source}: [{table}] {text}: a {model} has rows 1..{n_rows}, columns 01..{n_cols}"
        )
    return int(text)


def load_layout(path: str | Path) -> MatrixLayout:
    """Read and check a layout file.

    Raises:
        LayoutError: the file is missing or not TOML, or a key is missing or wrong (the
            message names the file, the key and the value).
    """
    source = str(path)
    try:
        data: dict[str, Any] = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LayoutError(f"layout file {source!r} not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LayoutError(f"{source}: cannot read the layout: {exc}") from exc
    unknown = set(data) - {"array", "matrix", "branches", "lines"}
    if unknown:
        raise LayoutError(f"{source}: unknown table(s) {sorted(unknown)}")
    array = dict(data.get("array", {}))
    for key in _ARRAY_KEYS:
        if key not in array:
            raise LayoutError(f"{source}: [array] {key} is missing")
    serial = str(array.pop("serial")).strip()
    if not serial:
        raise LayoutError(f"{source}: [array] serial must not be empty")
    rows = _integer(array.pop("rows"), "[array] rows", source, 1)
    cols = _integer(array.pop("cols"), "[array] cols", source, 1)
    branches = _integer(array.pop("branches"), "[array] branches", source, 1)
    element = str(array.pop("element"))
    if element != "resistor":
        raise LayoutError(
            f"{source}: [array] element = {element!r}: only resistor arrays (a switching "
            "matrix has no pulse source for memristors)"
        )
    off_max = _positive(
        array.get("switch_off_max_S", DEFAULT_SWITCH_OFF_MAX_S), "[array] switch_off_max_S", source
    )
    info = {str(k): str(v) for k, v in array.items()}
    info.update(
        {"rows": str(rows), "cols": str(cols), "branches": str(branches), "element": element}
    )
    info["switch_off_max_S"] = repr(off_max)
    matrix = dict(data.get("matrix", {}))
    modules: dict[int, str] = {}
    for slot_text, model in dict(matrix.get("modules", {})).items():
        if not (str(slot_text).isdigit() and 1 <= int(slot_text) <= 8):
            raise LayoutError(f"{source}: [matrix] modules: slot {slot_text!r} not in 1..8")
        if model not in MODULE_SIZES:
            raise LayoutError(
                f"{source}: [matrix] modules {slot_text} = {model!r}: this driver knows "
                f"{', '.join(MODULE_SIZES)}"
            )
        modules[int(slot_text)] = str(model)
    if not modules:
        raise LayoutError(f"{source}: [matrix] modules is missing or empty")
    rated = _integer(
        matrix.get("rated_operations", DEFAULT_RATED_OPERATIONS),
        "[matrix] rated_operations",
        source,
        1,
    )
    settle = matrix.get("settle_time_s", DEFAULT_SETTLE_TIME_S)
    if isinstance(settle, bool) or not isinstance(settle, int | float) or not 0 <= settle < 60:
        raise LayoutError(f"{source}: [matrix] settle_time_s = {settle!r}: must be in 0..60 s")
    where: dict[int, str] = {}
    branch_channel: dict[tuple[int, int, int], int] = {}
    for text, value in dict(data.get("branches", {})).items():
        ch = _channel(str(text), "branches", source, modules)
        if ch in where:
            raise LayoutError(f"{source}: [branches] {text}: channel used twice")
        ok = isinstance(value, list) and len(value) == 3
        if ok:
            r, c, k = value
            ok = all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            ok = ok and 0 <= r < rows and 0 <= c < cols and 0 <= k < branches
        if not ok:
            raise LayoutError(
                f"{source}: [branches] {text} = {value!r}: need [row, col, branch] on the "
                f"{rows}x{cols}x{branches} array"
            )
        branch = (int(value[0]), int(value[1]), int(value[2]))
        if branch in branch_channel:
            raise LayoutError(f"{source}: [branches] {text}: branch {branch} already has a channel")
        branch_channel[branch] = ch
        where[ch] = f"branch {branch}"
    line_channel: dict[tuple[str, int, str], int] = {}
    for text, value in dict(data.get("lines", {})).items():
        ch = _channel(str(text), "lines", source, modules)
        if ch in where:
            raise LayoutError(f"{source}: [lines] {text}: channel used twice")
        ok = isinstance(value, list) and len(value) == 3 and value[0] in BUSES
        if ok:
            kind, index, bus = value
            size = rows if kind == "row" else cols
            ok = isinstance(index, int) and 0 <= index < size and bus in BUSES[kind]
        if not ok:
            raise LayoutError(
                f"{source}: [lines] {text} = {value!r}: need ['row', r, 'HI'|'LO'] or "
                "['col', c, 'LO'|'GUARD'] on the array"
            )
        key2 = (str(value[0]), int(value[1]), str(value[2]))
        if key2 in line_channel:
            raise LayoutError(f"{source}: [lines] {text}: {key2} already has a channel")
        line_channel[key2] = ch
        where[ch] = f"{key2[0]} {key2[1]} to {key2[2]}"
    for r in range(rows):
        for c in range(cols):
            for k in range(branches):
                if (r, c, k) not in branch_channel:
                    raise LayoutError(f"{source}: [branches]: branch {(r, c, k)} has no channel")
    for kind, size in (("row", rows), ("col", cols)):
        for i in range(size):
            for bus in BUSES[kind]:
                if (kind, i, bus) not in line_channel:
                    raise LayoutError(f"{source}: [lines]: {kind} {i} has no channel to {bus}")
    return MatrixLayout(
        source=source,
        serial=serial,
        rows=rows,
        cols=cols,
        branches=branches,
        element=element,
        info=info,
        modules=modules,
        rated_operations=rated,
        settle_time_s=float(settle),
        switch_off_max_S=off_max,
        branch_channel=branch_channel,
        line_channel=line_channel,
        where=where,
    )
