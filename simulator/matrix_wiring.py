"""How a switching matrix is wired to a passive array: the layout file, simulator side.

The layout file (docs/switch-matrix.md, "The layout file") says which matrix channel is
which branch's switch and which channel connects which array line to the SMU's HI, LO or
GUARD. The driver (`drivers.matrix_layout`) reads the same format independently: the
simulator and the drivers never import each other, so a misreading of the format on one
side is a test failure, not a shared bug.

Modules (`MODULES`): crosspoint channels ``srcc`` (slot, matrix row, two-digit column);
a layout may only use channels its modules have.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

Bus = Literal["HI", "LO", "GUARD"]
LineKind = Literal["row", "col"]

MODULES: Final[Mapping[str, tuple[int, int]]] = {
    "34931A": (8, 8),
    "34932A": (8, 16),
    "34933A": (8, 8),
}
"""Matrix modules the emulator knows: (matrix rows, columns) in 2-wire mode (rows 1-4 are
matrix 1, rows 5-8 matrix 2)."""

_LINE_BUSES: Final[Mapping[str, tuple[str, ...]]] = {"row": ("HI", "LO"), "col": ("LO", "GUARD")}
"""The buses each kind of line needs: a row is driven (HI) or held at 0 V (LO); a column
is read (LO) or guarded (GUARD)."""


class WiringError(ValueError):
    """A layout file that cannot be used; the message names the file, the key and why."""


@dataclass(frozen=True)
class MatrixWiring:
    """A parsed, checked layout.

    Attributes:
        rows, cols, branches: the array's geometry.
        modules: slot -> module model.
        branch_channel: (row, col, branch) -> channel.
        line_channel: (kind, index, bus) -> channel, kind ``"row"`` or ``"col"``.
        roles: channel -> ``("branch", r, c, k)`` or ``("row"|"col", index, bus)``.
        source: the file it came from.
    """

    rows: int
    cols: int
    branches: int
    modules: Mapping[int, str]
    branch_channel: Mapping[tuple[int, int, int], int]
    line_channel: Mapping[tuple[str, int, str], int]
    roles: Mapping[int, tuple[Any, ...]]
    source: str

    def valid_channels(self) -> set[int]:
        """Every crosspoint channel of the installed modules."""
        found: set[int] = set()
        for slot, model in self.modules.items():
            n_rows, n_cols = MODULES[model]
            found.update(
                slot * 1000 + r * 100 + c
                for r in range(1, n_rows + 1)
                for c in range(1, n_cols + 1)
            )
        return found


def _int(value: Any, what: str, source: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise WiringError(f"{source}: {what} = {value!r} must be an integer >= {low}")
    return value


def load_wiring(path: str | Path) -> MatrixWiring:
    """Read and check a layout file (`WiringError` naming the file and key on any fault)."""
    source = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WiringError(f"{source}: cannot read the layout: {exc}") from exc
    array = data.get("array", {})
    rows = _int(array.get("rows"), "[array] rows", source, 1)
    cols = _int(array.get("cols"), "[array] cols", source, 1)
    branches = _int(array.get("branches"), "[array] branches", source, 1)
    matrix = data.get("matrix", {})
    modules: dict[int, str] = {}
    for slot_text, model in dict(matrix.get("modules", {})).items():
        if not str(slot_text).isdigit() or not 1 <= int(slot_text) <= 8:
            raise WiringError(f"{source}: [matrix] modules slot {slot_text!r} not in 1..8")
        if model not in MODULES:
            raise WiringError(
                f"{source}: [matrix] modules {slot_text} = {model!r}: not one of {sorted(MODULES)}"
            )
        modules[int(slot_text)] = str(model)
    roles: dict[int, tuple[Any, ...]] = {}
    branch_channel: dict[tuple[int, int, int], int] = {}
    line_channel: dict[tuple[str, int, str], int] = {}

    def channel(text: str, table: str) -> int:
        if not text.isdigit() or len(text) != 4:
            raise WiringError(f"{source}: [{table}] {text!r} is not a channel 'srcc'")
        ch = int(text)
        if ch in roles:
            raise WiringError(f"{source}: [{table}] channel {ch} is used twice")
        return ch

    for text, value in dict(data.get("branches", {})).items():
        ch = channel(text, "branches")
        if not (isinstance(value, list) and len(value) == 3):
            raise WiringError(f"{source}: [branches] {text} = {value!r}: need [row, col, branch]")
        r, c, k = (_int(v, f"[branches] {text}", source) for v in value)
        if not (r < rows and c < cols and k < branches):
            raise WiringError(f"{source}: [branches] {text} = {value!r} is not on the array")
        if (r, c, k) in branch_channel:
            raise WiringError(f"{source}: [branches] branch {(r, c, k)} has two channels")
        branch_channel[(r, c, k)] = ch
        roles[ch] = ("branch", r, c, k)
    for text, value in dict(data.get("lines", {})).items():
        ch = channel(text, "lines")
        if not (isinstance(value, list) and len(value) == 3):
            raise WiringError(f"{source}: [lines] {text} = {value!r}: need [kind, index, bus]")
        kind, index, bus = value
        if kind not in _LINE_BUSES or bus not in _LINE_BUSES[kind]:
            raise WiringError(f"{source}: [lines] {text} = {value!r}: not a row/col bus")
        size = rows if kind == "row" else cols
        if not (isinstance(index, int) and 0 <= index < size):
            raise WiringError(f"{source}: [lines] {text} = {value!r}: no {kind} {index!r}")
        key = (str(kind), int(index), str(bus))
        if key in line_channel:
            raise WiringError(f"{source}: [lines] {key} has two channels")
        line_channel[key] = ch
        roles[ch] = key
    missing = [
        (r, c, k)
        for r in range(rows)
        for c in range(cols)
        for k in range(branches)
        if (r, c, k) not in branch_channel
    ]
    if missing:
        raise WiringError(f"{source}: [branches] has no channel for branch {missing[0]}")
    for kind, size in (("row", rows), ("col", cols)):
        for i in range(size):
            for bus in _LINE_BUSES[kind]:
                if (kind, i, bus) not in line_channel:
                    raise WiringError(f"{source}: [lines] has no channel for {kind} {i} to {bus}")
    wiring = MatrixWiring(
        rows, cols, branches, modules, branch_channel, line_channel, roles, source
    )
    valid = wiring.valid_channels()
    bad = sorted(set(roles) - valid)
    if bad:
        raise WiringError(
            f"{source}: channel {bad[0]} is not a crosspoint of the modules {modules}"
        )
    return wiring
