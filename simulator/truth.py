"""The ground-truth export: a board's hidden true values, for tests and calibration studies.

`dump_truth` writes `BoardModel.truth()` (evaluated at the clock's current time) to
``.json`` (human-readable, arrays as nested lists) or ``.npz`` (numpy arrays; scalars as
0-d arrays; the fault list as parallel arrays ``fault_kind``, ``fault_row``, ``fault_col``,
``fault_branch``). In JSON, +inf (an open element's resistance) is written as null, so the
file is strict JSON. `load_truth` reads either back as a dict of numpy arrays and scalars.
The format (keys, units) is documented in docs/simulator.md, "Ground-truth export".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from simulator.board_model import BoardModel

TRUTH_FORMAT = "labrss-board-truth"
TRUTH_VERSION = 1


def _json_value(value: Any) -> Any:
    """Plain JSON types; +inf (an open element's resistance) becomes null (strict JSON)."""
    if isinstance(value, np.ndarray):
        return _json_value(value.tolist())
    if isinstance(value, np.generic):
        return _json_value(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        if value > 0:
            return None
        raise ValueError(f"ground truth holds a non-finite value {value}")
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def dump_truth(model: BoardModel, path: str | Path) -> None:
    """Write the board's true values now to ``path`` (.json or .npz, chosen by suffix).

    Raises ValueError naming the path for any other suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".npz"):
        raise ValueError(f"ground-truth file {str(path)!r}: suffix must be .json or .npz")
    truth = model.truth()
    if suffix == ".json":
        text = json.dumps(_json_value(truth), indent=1, allow_nan=False)
        path.write_text(text + "\n", encoding="utf-8")
        return
    faults = truth.pop("faults")
    arrays: dict[str, Any] = {key: np.asarray(value) for key, value in truth.items()}
    arrays["fault_kind"] = np.asarray([f["kind"] for f in faults], dtype="U24")
    for field in ("row", "col", "branch"):
        arrays[f"fault_{field}"] = np.asarray([f[field] for f in faults], dtype=np.int64)
    with path.open("wb") as fh:
        np.savez_compressed(fh, **arrays)


def _array_from_json(value: list[Any]) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == object:  # nulls: +inf (open elements)
        arr = np.asarray(value, dtype=np.float64)
        arr[np.isnan(arr)] = np.inf
    return arr


def load_truth(path: str | Path) -> dict[str, Any]:
    """Read a ground-truth file written by `dump_truth`: arrays as numpy arrays, the fault
    list as a list of dicts under ``faults``. Raises ValueError for another format."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        raw = json.loads(path.read_text(encoding="utf-8"))
        out: dict[str, Any] = {
            k: (_array_from_json(v) if isinstance(v, list) and k != "faults" else v)
            for k, v in raw.items()
        }
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            out = {k: (data[k].item() if data[k].ndim == 0 else data[k]) for k in data.files}
        kinds = out.pop("fault_kind")
        rows, cols, branches = out.pop("fault_row"), out.pop("fault_col"), out.pop("fault_branch")
        out["faults"] = [
            {"kind": str(k), "row": int(r), "col": int(c), "branch": int(b)}
            for k, r, c, b in zip(kinds, rows, cols, branches, strict=True)
        ]
    else:
        raise ValueError(f"ground-truth file {str(path)!r}: suffix must be .json or .npz")
    if out.get("format") != TRUTH_FORMAT:
        raise ValueError(f"{path}: not a {TRUTH_FORMAT} file (format = {out.get('format')!r})")
    return out
