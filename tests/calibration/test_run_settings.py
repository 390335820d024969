"""Calibration settings: the --cells syntax (property-based) and the JSON round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibration.settings import (
    CalibrationSettings,
    CellSelection,
    SettingsError,
    parse_cells,
    resolve_cells,
)

indices = st.lists(st.integers(0, 40), min_size=1, max_size=6).map(lambda v: tuple(sorted(set(v))))
selection = st.builds(CellSelection, rows=st.none() | indices, cols=st.none() | indices)


@given(selection)
def test_cells_text_round_trips(sel: CellSelection) -> None:
    assert parse_cells(sel.to_text()) == sel


@given(st.integers(0, 30), st.integers(0, 30), st.integers(1, 40), st.integers(1, 40))
def test_ranges_resolve_to_the_product_row_major(a: int, b: int, rows: int, cols: int) -> None:
    lo, hi = min(a, b), max(a, b)
    text = f"{lo}-{hi},*"
    if hi >= rows:
        first_bad = max(lo, rows)
        with pytest.raises(SettingsError, match=f"row {first_bad} is not on the board"):
            resolve_cells(parse_cells(text), rows, cols)
        return
    cells = resolve_cells(parse_cells(text), rows, cols)
    assert cells == [(r, c) for r in range(lo, hi + 1) for c in range(cols)]


@given(st.text(max_size=12))
def test_any_text_parses_or_raises_a_settings_error(text: str) -> None:
    try:
        sel = parse_cells(text)
    except SettingsError as exc:
        assert repr(text) in str(exc)
    else:
        assert parse_cells(sel.to_text()) == sel


@pytest.mark.parametrize(
    ("text", "message"),
    [("3", "expected ROWS,COLS"), ("2-1,0", "runs backwards"), ("a,0", "not N, A-B or *")],
)
def test_bad_cells_text(text: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse_cells(text)


def test_settings_json_round_trip_and_validation() -> None:
    s = CalibrationSettings(cells=parse_cells("0-2+5,*"), design="single", nplc=0.5, repeats=2)
    assert CalibrationSettings.from_json(s.to_json()) == s
    assert s.resolved(1.0, 0.1).read_voltage_V == 0.1
    assert s.resolved(1.0, 0.1).nplc == 0.5
    with pytest.raises(SettingsError, match="unknown calibration settings"):
        CalibrationSettings.from_json({"colour": 1})
    for bad, name in [
        ({"repeats": 0}, "repeats"),
        ({"design": "hadamard"}, "design"),
        ({"read_voltage_V": 0.0}, "read_voltage_V"),
        ({"drift_cells": 2, "drift_rounds": 1}, "drift_rounds"),
    ]:
        with pytest.raises(SettingsError, match=name):
            CalibrationSettings(**bad).validate()  # type: ignore[arg-type]
