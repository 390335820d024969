"""What the Board tab computes from a calibration (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from labrss.gui.calibration_view import cell_map, describe_cell, nominal_conductance_S
from labrss.store import Calibration, Fault


def _calibration() -> Calibration:
    rng = np.random.default_rng(0)
    g = 1e-4 * (1 + rng.uniform(-0.05, 0.05, size=(2, 3, 4)))
    excluded = np.zeros((2, 3, 4), dtype=bool)
    excluded[0, 1, 2] = True
    measured = np.ones((2, 3), dtype=bool)
    measured[1, 2] = False
    g[1, 2] = np.nan
    return Calibration(
        board_id=1,
        run_id=5,
        ended_at=0.0,
        conductance_S=g,
        std_S=1e-8 * np.ones_like(g),
        series_ohm=np.full((2, 3), 20.0),
        series_std_ohm=np.full((2, 3), 1.0),
        leakage_S=np.full((2, 3), 1e-9),
        leakage_std_S=np.full((2, 3), 1e-10),
        excluded=excluded,
        measured=measured,
        cell_run_id=np.where(measured, 5, -1),
        faults=(Fault(0, 1, 2, "open"),),
    )


def test_nominal_from_the_board_or_the_median() -> None:
    cal = _calibration()
    nom, source = nominal_conductance_S(cal, {"nominal_ohm": "1e4/2e4/4e4/8e4"})
    assert source == "board nominal_ohm"
    np.testing.assert_allclose(nom, [1e-4, 5e-5, 2.5e-5, 1.25e-5])
    nom, source = nominal_conductance_S(cal, {"nominal_ohm": "1e4"})
    np.testing.assert_allclose(nom, 1e-4)
    nom, source = nominal_conductance_S(cal, {"nominal_ohm": "junk"})
    assert source == "median of the calibrated cells"
    g = np.where(cal.usable, cal.conductance_S, np.nan)
    np.testing.assert_allclose(nom, np.nanmedian(g.reshape(-1, 4), axis=0))


def test_cell_map_quantities() -> None:
    cal = _calibration()
    nominal = np.full(4, 1e-4)
    usable = cal.usable
    bank = np.where(usable, cal.conductance_S, 0.0).sum(axis=2)
    g = cell_map(cal, "G", None, nominal)
    expected = 1.0 / (20.0 + 1.0 / (bank + 1e-9))
    np.testing.assert_allclose(g.values[:, :2], expected[:, :2], rtol=1e-13)
    assert np.isnan(g.values[1, 2])  # never measured
    assert g.faults[0, 1] and g.faults.sum() == 1
    dev = cell_map(cal, "deviation", None, nominal)
    # the faulty branch is out of both sums: 3 nominal elements in cell (0, 1)
    assert dev.values[0, 1] == pytest.approx(100 * (bank[0, 1] / 3e-4 - 1))
    u = cell_map(cal, "uncertainty", 1, nominal)
    np.testing.assert_allclose(u.values[0], 1e6 * 1e-8 / cal.conductance_S[0, :, 1])
    r = cell_map(cal, "R", 2, nominal)
    assert np.isnan(r.values[0, 1]) and r.faults[0, 1]
    with pytest.raises(ValueError, match="branch 4 not on the board"):
        cell_map(cal, "G", 4, nominal)
    with pytest.raises(ValueError, match="unknown quantity 'I'"):
        cell_map(cal, "I", None, nominal)  # type: ignore[arg-type]


def test_describe_cell_rows() -> None:
    cal = _calibration()
    rows = describe_cell(cal, 0, 1, np.full(4, 1e-4))
    assert [r["k"] for r in rows] == [0, 1, 2, 3]
    assert rows[2]["fault"] == "open" and rows[2]["excluded"] is True
    assert rows[0]["R_ohm"] == pytest.approx(1 / cal.conductance_S[0, 1, 0])
    assert describe_cell(None, 0, 0, None) == []
