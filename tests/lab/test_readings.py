"""Reading and ColumnReading: derived fields and the JSON form."""

from __future__ import annotations

import json
import math

import numpy as np

from labrss.lab.readings import ColumnReading, Reading


def make(**overrides: object) -> Reading:
    fields: dict[str, object] = {
        "resistance_ohm": 1000.0,
        "conductance_S": 1e-3,
        "voltage_V": 0.1,
        "current_A": 1e-4,
        "limit_tripped": False,
        "current_range_A": 1e-4,
        "nplc": 1.0,
        "four_wire": False,
        "time_s": 1.5,
        "instrument": "2450 04512345",
        "cell": (2, 3),
        "mask": 0b1010_0001,
        "kind": "subset",
        "source_voltage_V": 0.1,
    }
    fields.update(overrides)
    return Reading(**fields)  # type: ignore[arg-type]


def test_branches_are_the_set_bits_of_the_mask() -> None:
    assert make().branches == (0, 5, 7)
    assert make(mask=0).branches == ()


def test_to_dict_is_json_with_null_for_non_finite_numbers() -> None:
    d = make(resistance_ohm=math.inf, current_A=0.0, conductance_S=0.0, time_s=math.nan).to_dict()
    text = json.dumps(d, allow_nan=False)  # would raise on NaN/inf
    back = json.loads(text)
    assert back["resistance_ohm"] is None and back["time_s"] is None
    assert back["cell"] == [2, 3] and back["mask"] == 0xA1 and back["mask_hex"] == "A1"
    assert back["branches"] == [0, 5, 7] and back["kind"] == "subset"


def test_column_reading_valid_excludes_overflow_and_trips() -> None:
    reading = ColumnReading(
        path="smu",
        currents_A=np.array([1e-4, math.nan, 2e-4, 3e-4]),
        limit_tripped=np.array([False, True, True, False]),
        row_voltages_V=np.zeros(2),
        current_range_A=np.full(4, 1e-3),
        time_s=np.arange(4.0),
        nplc=1.0,
        instrument="2450 1",
    )
    assert reading.valid.tolist() == [True, False, False, True]
