"""The SMU accuracy tables: datasheet values, lookups, errors that name the file."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from labrss.metrology.smu_accuracy import (
    AccuracyTableError,
    accuracy_for_model,
    all_accuracy_tables,
    load_accuracy_table,
)
from simulator import smu_physics


def test_every_supported_model_has_a_cited_table() -> None:
    tables = all_accuracy_tables()
    assert {t.driver for t in tables} >= {"keithley2450", "keysight_b2900", "keithley2400"}
    for t in tables:
        assert "p." in t.datasheet and t.spec_sigmas == pytest.approx(2.58)
    k = accuracy_for_model("2450")
    row = k.current_range(10e-6)
    assert (row.gain, row.offset) == (pytest.approx(0.00025), pytest.approx(700e-12))
    assert row.u_gain == pytest.approx(0.00025 / 2.58)
    assert row.offset_of_range == pytest.approx(70e-6)
    assert k.voltage_range_for(0.1).full_scale == 0.2
    assert k.voltage_range_for(-0.2095).full_scale == 0.2  # within 105 %
    assert k.voltage_range_for(0.211).full_scale == 2.0
    assert accuracy_for_model("B2902A").family == "Keysight B2900A"
    assert accuracy_for_model("2400").family == "Keithley 2400"


@pytest.mark.parametrize(
    ("model", "current", "voltage"),
    [
        ("2450", smu_physics.K2450_MEASURE_CURRENT, smu_physics.K2450_MEASURE_VOLTAGE),
        ("B2902A", smu_physics.B2900_MEASURE_CURRENT, smu_physics.B2900_MEASURE_VOLTAGE),
        ("2400", smu_physics.K2400_MEASURE_CURRENT, smu_physics.K2400_MEASURE_VOLTAGE),
    ],
)
def test_the_simulated_meters_stay_within_the_tables(
    model: str, current: tuple, voltage: tuple
) -> None:
    # The simulator draws each range's errors within its own copy of the datasheet (its
    # `RangeSpec` tables); labrss reads its own table. Both must be the same datasheet,
    # or the simulated instrument could be outside what labrss assumes.
    table = accuracy_for_model(model)
    for specs, rows in ((current, table.current), (voltage, table.voltage)):
        by_range = {r.full_scale: r for r in rows}
        for spec in specs:
            row = next(r for fs, r in by_range.items() if math.isclose(fs, spec.full_scale))
            assert spec.gain == pytest.approx(row.gain), (model, spec)
            assert spec.offset == pytest.approx(row.offset), (model, spec)


def test_unknown_models_and_broken_tables_are_named(tmp_path: Path) -> None:
    with pytest.raises(AccuracyTableError, match=r"no accuracy table for SMU model 'K9999'.*2450"):
        accuracy_for_model("K9999")
    with pytest.raises(AccuracyTableError, match=r"model '2410' \(driver 'keithley2400'\)"):
        accuracy_for_model("2410", "keithley2400")
    bad = tmp_path / "broken.toml"
    text = (
        'format = "labrss-smu-accuracy"\nversion = 1\nfamily = "X"\ndriver = "x"\n'
        'idn_models = ["X"]\ndatasheet = "p. 1"\nspec_sigmas = 3.0\n'
        "[[measure_current]]\nrange_A = 1e-6\ngain_pct = 0.02\n"
    )
    bad.write_text(text)
    with pytest.raises(AccuracyTableError, match=r"broken.toml: \[\[measure_current\]\] row 1"):
        load_accuracy_table(bad)
    bad.write_text(text.replace("version = 1", "version = 9"))
    with pytest.raises(AccuracyTableError, match="version 9"):
        load_accuracy_table(bad)
    table = accuracy_for_model("2450")
    with pytest.raises(AccuracyTableError, match="no current range of 3e-06"):
        table.current_range(3e-6)
