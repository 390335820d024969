"""The simulated switch-matrix bench's configuration: array, layout, mainframe, relays.

A bench file (``simulator/benches/<name>.toml``, or any TOML file of the same form) names
the passive array (a board config, `simulator.board_config`), the layout file that wires a
Keysight 34980A's matrix modules to it (`simulator.matrix_wiring`), the mainframe's
identity and the relays' physics (`RelayPhysics`). Presets: ``switch-matrix`` (new relays)
and ``switch-matrix-worn`` (the same bench with a few relays at the end of their life).
docs/switch-matrix.md gives the sources of every value.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

from simulator.board_config import BoardConfig, BoardConfigError, load_board_config
from simulator.matrix_wiring import MatrixWiring, WiringError, load_wiring

MATRIX_PRESETS: Final = ("switch-matrix", "switch-matrix-worn")
"""The switch-matrix bench presets (files in simulator/benches/)."""


class MatrixBenchError(ValueError):
    """A bench file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class RelayPhysics:
    """The matrix relays (34932A armature relays by default; sources in docs/switch-matrix.md).

    Attributes:
        operate_time_s: open/close time (s): a command that changes relays takes this long
            (the relays of one command move together).
        settle_current_A: after a relay operation the module releases a decaying current
            into the measured path (contact charge, dielectric absorption): this much at
            the end of the operate time (A) ...
        settle_tau_s: ... decaying with this time constant (s). A reading taken before
            ``5 tau`` carries a visible error; the layout's ``settle_time_s`` is the wait.
        rated_operations: the rated (typical) life of a relay, in closures.
        life_shape: Weibull shape of each relay's true life ...
        life_scale: ... and its scale, as a multiple of the rated life (a relay's life is
            drawn once per bench seed; after it the relay no longer closes: worn out).
        initial_cycles: closures every relay has done before (a used module).
        worn: channel -> (closures done, true life or 0 for a drawn one): relays near or at
            the end of their life.
    """

    operate_time_s: float = 4e-3
    settle_current_A: float = 2e-9
    settle_tau_s: float = 2e-3
    rated_operations: int = 100_000_000
    life_shape: float = 3.0
    life_scale: float = 1.2
    initial_cycles: int = 0
    worn: Mapping[int, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class MatrixBenchConfig:
    """A switch-matrix bench: the array, its wiring, the mainframe and the relays."""

    name: str
    array: BoardConfig
    wiring: MatrixWiring
    layout_path: Path
    vendor: str = "Agilent Technologies"
    model: str = "34980A"
    firmware: str = "2.43-2.43-1.00-1.00"
    relays: RelayPhysics = field(default_factory=RelayPhysics)


def is_matrix_bench(preset_or_path: str) -> bool:
    """Whether ``preset_or_path`` names a switch-matrix bench (a preset or a bench file)."""
    return preset_or_path in MATRIX_PRESETS


def _number(table: Mapping[str, Any], key: str, default: float, source: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise MatrixBenchError(f"{source}: [relays] {key} = {value!r} must be a number >= 0")
    return float(value)


def load_matrix_bench(preset_or_path: str | Path) -> MatrixBenchConfig:
    """Load a bench preset (``switch-matrix``, ``switch-matrix-worn``) or bench file."""
    text = str(preset_or_path)
    if text in MATRIX_PRESETS:
        ref = resources.files("simulator").joinpath("benches", f"{text}.toml")
        path = Path(str(ref))
    else:
        path = Path(text)
    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MatrixBenchError(
            f"switch-matrix bench {text!r} is neither a preset {MATRIX_PRESETS} nor a file"
        ) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MatrixBenchError(f"{source}: cannot read: {exc}") from exc
    for key in ("array", "layout"):
        if not isinstance(data.get(key), str):
            raise MatrixBenchError(f"{source}: {key} = FILE is required (relative paths ok)")
    base = path.parent
    try:
        array = load_board_config(base / data["array"])
        wiring = load_wiring(base / data["layout"])
    except (BoardConfigError, WiringError) as exc:
        raise MatrixBenchError(f"{source}: {exc}") from exc
    g = array.geometry
    if (g.rows, g.cols, g.branches) != (wiring.rows, wiring.cols, wiring.branches):
        raise MatrixBenchError(
            f"{source}: the array is {g.rows}x{g.cols}x{g.branches} but the layout wires "
            f"{wiring.rows}x{wiring.cols}x{wiring.branches}"
        )
    main = dict(data.get("mainframe", {}))
    rel = dict(data.get("relays", {}))
    worn: dict[int, tuple[int, int]] = {}
    for channel, spec in dict(rel.pop("worn", {})).items():
        cycles, life = (
            (spec.get("cycles", 0), spec.get("life", 0))
            if isinstance(spec, dict)
            else (
                -1,
                -1,
            )
        )
        if not (str(channel).isdigit() and int(channel) in wiring.roles) or min(cycles, life) < 0:
            raise MatrixBenchError(
                f"{source}: [relays.worn] {channel} = {spec!r}: need a layout channel and "
                "{cycles = N, life = M}"
            )
        worn[int(channel)] = (int(cycles), int(life))
    relays = RelayPhysics(
        operate_time_s=_number(rel, "operate_time_s", RelayPhysics.operate_time_s, source),
        settle_current_A=_number(rel, "settle_current_A", RelayPhysics.settle_current_A, source),
        settle_tau_s=_number(rel, "settle_tau_s", RelayPhysics.settle_tau_s, source),
        rated_operations=int(
            _number(rel, "rated_operations", RelayPhysics.rated_operations, source)
        ),
        life_shape=_number(rel, "life_shape", RelayPhysics.life_shape, source),
        life_scale=_number(rel, "life_scale", RelayPhysics.life_scale, source),
        initial_cycles=int(_number(rel, "initial_cycles", RelayPhysics.initial_cycles, source)),
        worn=worn,
    )
    return MatrixBenchConfig(
        name=str(data.get("name", path.stem)),
        array=array,
        wiring=wiring,
        layout_path=base / data["layout"],
        vendor=str(main.get("vendor", MatrixBenchConfig.vendor)),
        model=str(main.get("model", MatrixBenchConfig.model)),
        firmware=str(main.get("firmware", MatrixBenchConfig.firmware)),
        relays=relays,
    )
