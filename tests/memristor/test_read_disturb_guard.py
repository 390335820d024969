"""`Lab` keeps reads and MVM inputs on memristor cells below their switching thresholds.

The board reports its devices' smallest switching thresholds (``BOARD:INFO?``
``set_threshold_min_V`` 0.65 V, ``reset_threshold_min_V`` 0.45 V on the memristor preset);
every read and MVM voltage is refused above ``[limits] read_disturb_fraction`` (1/3) of the
threshold of the polarity it puts on a device. The simulator models read disturb, so the
old settings (reads and MVM inputs up to 0.5 V) can be seen reprogramming devices.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from labrss.lab import Lab, SafetyLimitError
from labrss.lab.safety import read_disturb_limits
from labrss.station import StationError, StationLimits, parse_station
from simulator.memristor import MemristorArray


def memristor_lab(board: str = "memristor", **limits: float) -> Lab:
    data: dict[str, dict[str, object]] = {"simulator": {"board": board, "seed": 3}}
    if limits:
        data["limits"] = dict(limits)
    return Lab(parse_station(data))


@pytest.fixture
def lab() -> Iterator[Lab]:
    with memristor_lab() as opened:
        yield opened


def test_limits_come_from_the_board_and_the_station_default(lab: Lab) -> None:
    limits = lab.read_disturb_limits
    assert limits is not None
    assert limits.set_threshold_V == pytest.approx(0.65)
    assert limits.reset_threshold_V == pytest.approx(0.45)
    assert limits.set_origin == "BOARD:INFO? set_threshold_min_V"
    assert limits.fraction == pytest.approx(1 / 3)
    assert limits.max_set_V == pytest.approx(0.65 / 3)
    assert limits.max_reset_V == pytest.approx(0.15)
    assert lab.max_row_voltage_V == pytest.approx(0.15)


def test_read_above_the_limit_is_refused_naming_voltage_threshold_and_setting(lab: Lab) -> None:
    assert lab.simulator is not None
    sent: list[str] = []
    original = lab.board.query

    def spy(command: str, *args: object, **kwargs: object) -> object:
        sent.append(command)
        return original(command, *args, **kwargs)

    lab.board.query = spy  # type: ignore[method-assign]
    # +0.2 V on the read cell is within the SET limit (0.217 V), but the guarded read puts
    # -0.2 V on every closed cell of the other rows and columns: RESET limit 0.15 V.
    with pytest.raises(SafetyLimitError) as info:
        lab.measure_branch(1, 2, 3, read_voltage_V=0.2)
    message = str(info.value)
    for part in (
        "read voltage 0.2 V",
        "-0.2 V (RESET polarity)",
        "0.45 V (BOARD:INFO? reset_threshold_min_V)",
        "[limits] read_disturb_fraction = 0.333",
        "= 0.15 V",
        "nothing was switched or sourced",
    ):
        assert part in message, (part, message)
    assert info.value.limit_key == "[limits] read_disturb_fraction"
    assert sent == []
    with lab.simulator.lock:
        assert lab.simulator.model.is_safe()
    # -0.2 V fails on the read cell itself (RESET polarity).
    with pytest.raises(SafetyLimitError, match=r"-0\.2 V \(RESET polarity\).*across the read"):
        lab.measure_branch(1, 2, 3, read_voltage_V=-0.2)
    # Within both limits: read.
    assert lab.measure_branch(1, 2, 3, read_voltage_V=0.14).conductance_S > 0


def test_mvm_rows_are_checked_per_polarity(lab: Lab) -> None:
    rows = lab.geometry.rows
    volts = np.zeros(rows)
    volts[5] = -0.2
    with pytest.raises(SafetyLimitError, match=r"row 5 voltage -0\.2 V.*RESET.*0\.45 V"):
        lab.apply_rows(volts)
    assert not lab.board.dacs().any()  # refused before any DAC was set
    volts[5] = 0.25
    with pytest.raises(SafetyLimitError, match=r"row 5 voltage 0\.25 V.*SET.*0\.65 V"):
        lab.apply_rows(volts)
    volts[5] = 0.2  # SET limit 0.217 V: allowed for a positive row
    lab.apply_rows(volts)


def test_station_overrides_the_board_thresholds() -> None:
    with memristor_lab(memristor_reset_threshold_V=0.9, read_disturb_fraction=0.25) as lab:
        limits = lab.read_disturb_limits
        assert limits is not None
        assert limits.reset_threshold_V == 0.9
        assert limits.reset_origin == "[limits] memristor_reset_threshold_V"
        assert limits.set_threshold_V == pytest.approx(0.65)  # still the board's
        assert lab.max_row_voltage_V == pytest.approx(0.65 / 4)
        with pytest.raises(SafetyLimitError, match=r"read_disturb_fraction = 0\.25.*0\.65 V"):
            lab.measure_branch(0, 0, 0, read_voltage_V=-0.2)


def test_station_keys_are_validated() -> None:
    assert StationLimits().read_disturb_fraction == pytest.approx(1 / 3)
    for key, bad in (
        ("read_disturb_fraction", 0),
        ("read_disturb_fraction", 1.5),
        ("memristor_set_threshold_V", -0.5),
        ("memristor_reset_threshold_V", "0.5"),
    ):
        with pytest.raises(StationError, match=rf"\[limits\] {key}"):
            parse_station({"limits": {key: bad}})


def test_unknown_threshold_refuses_reads_naming_the_setting() -> None:
    limits = read_disturb_limits(StationLimits(), math.nan, 0.45)
    limits.check(-0.1, what="read voltage", polarities=("same",))  # RESET known: fine
    with pytest.raises(SafetyLimitError, match=r"\[limits\] memristor_set_threshold_V"):
        limits.check(0.05, what="read voltage", polarities=("same",))


def test_resistor_boards_are_not_limited_and_mixed_boards_are() -> None:
    with Lab(parse_station({"simulator": {"board": "small"}})) as lab:
        assert lab.read_disturb_limits is None
        assert lab.max_row_voltage_V == 0.5
        assert lab.measure_branch(0, 0, 0, read_voltage_V=0.5).conductance_S > 0
    with memristor_lab("mixed") as lab:
        assert lab.cell_kind(0, 0) == "resistor"
        # A resistor cell's guarded read still puts -V on the closed memristor cells.
        other = "across every closed cell of the other rows and columns"
        with pytest.raises(SafetyLimitError, match=rf"-0\.3 V \(RESET polarity\).*{other}"):
            lab.measure_branch(0, 0, 0, read_voltage_V=0.3)
        with pytest.raises(SafetyLimitError, match=rf"\+0\.25 V \(SET polarity\).*{other}"):
            lab.measure_branch(0, 0, 0, read_voltage_V=-0.25)
        assert lab.measure_branch(0, 0, 0, read_voltage_V=0.14).conductance_S > 0


def _devices(lab: Lab) -> MemristorArray:
    assert lab.simulator is not None
    with lab.simulator.lock:
        mem = lab.simulator.model.memristors
        assert mem is not None
        return copy.deepcopy(mem)


def _session(lab: Lab, read_V: float, row_V: float) -> np.ndarray:
    """After programming (every switch closed): a reversal read of each branch of cell
    (0, 0) at +-read_V, then one MVM with every row at row_V read column by column on the
    SMU. Returns each device's change (fraction of its range), drift excluded."""
    lab.set_masks(np.ones((8, 8, 8), dtype=bool))
    before = _devices(lab)
    for k in range(8):
        for sign in (1.0, -1.0):
            lab.measure_branch(0, 0, k, read_voltage_V=sign * read_V)
    lab.apply_rows(np.full(8, row_V))
    lab.read_columns("smu")
    lab.apply_rows(np.zeros(8))
    after = _devices(lab)
    t = after.programmed_time_s.max() + 10.0
    span = before.devices.g_max_S - before.devices.g_min_S
    return np.asarray(np.abs(after.conductance_S(t) - before.conductance_S(t)) / span)


def test_old_read_settings_disturbed_devices_and_the_guarded_ones_do_not() -> None:
    # The old settings: reads up to the station's 1 V source limit (here +-0.5 V reversal
    # reads) and memristor MVM inputs of 0.98 x 0.5 V. With the guard lifted (thresholds
    # overridden to 3 V), the simulator shows what they did to the devices.
    with memristor_lab(memristor_set_threshold_V=3.0, memristor_reset_threshold_V=3.0) as lab:
        old = _session(lab, read_V=0.5, row_V=-0.49)
    assert old.max() > 0.1  # a device lost more than a tenth of its range
    assert np.count_nonzero(old > 0.01) >= 10
    # The default station refuses them before anything is sent ...
    with memristor_lab() as lab:
        with pytest.raises(SafetyLimitError):
            lab.measure_branch(0, 0, 0, read_voltage_V=0.5)
        with pytest.raises(SafetyLimitError):
            lab.apply_rows(np.full(8, -0.49))
        # ... and its largest settings leave them alone. Worst device (RESET threshold
        # 0.45 V) at 0.147 V for ~2 s: 1e-4 x 2e4 reference widths x sinh(3.7)/sinh(11.25)
        # = 1e-3 reference pulses of <= 4 % of the range each: < 1e-4 of the range.
        limit = lab.max_row_voltage_V
        guarded = _session(lab, read_V=0.99 * limit, row_V=-0.98 * limit)
    assert guarded.max() < 1e-4


def test_a_calibration_is_refused_up_front(tmp_path: Path) -> None:
    from calibration.run import CalibrationRun
    from calibration.settings import CalibrationSettings, parse_cells
    from labrss.store import Store

    with memristor_lab() as lab, Store(tmp_path / "lab.db") as store:
        # +0.2 V passes the read cell's SET limit (0.217 V), not the -0.2 V that the guard
        # puts on the other closed cells, nor the reversal read's (RESET limit 0.15 V):
        # refused when the run checks its settings, before any run is stored.
        settings = CalibrationSettings(cells=parse_cells("0,0"), read_voltage_V=0.2)
        with pytest.raises(SafetyLimitError, match=r"0\.2 V.*RESET polarity.*0\.45 V"):
            CalibrationRun(lab, store, settings).run()
        assert store.runs() == []
        assert lab.simulator is not None
        with lab.simulator.lock:
            assert lab.simulator.model.is_safe()
        lab.check_read_voltage(0.1, [(0, 0)])  # the station's default passes
