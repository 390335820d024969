"""`Lab` with a thermal stage: the station's [thermal] section, limits, the safe set point."""

from __future__ import annotations

import pytest

from labrss.lab import Lab
from labrss.lab.errors import LabError
from labrss.station import StationError
from labrss.station.config import parse_station

STATION = {"simulator": {"board": "small", "seed": 2}, "thermal": {"min_C": 10, "max_C": 45}}


def test_no_thermal_section_no_stage() -> None:
    with Lab(parse_station({"simulator": {"board": "small"}})) as lab:
        assert not lab.has_thermal
        assert lab.simulator is not None and lab.simulator.stage is None
        with pytest.raises(LabError, match=r"no thermal stage.*\[thermal\]"):
            _ = lab.thermal


def test_board_follows_the_stage_and_its_sensor_reads_it() -> None:
    with Lab(parse_station(STATION)) as lab:
        lab.thermal.set_setpoint_C(40.0)
        lab.wait_s(3 * 3600.0)
        assert lab.thermal.temperature_C() == pytest.approx(40.0, abs=0.1)
        # the board's own sensor: 2 % of the 15 K to the room short, its own offset
        assert lab.board.temperature_C() == pytest.approx(39.7, abs=0.8)


def test_interrupted_block_leaves_the_stage_at_the_safe_setpoint() -> None:
    st = parse_station({**STATION, "thermal": {"safe_C": 22.0}})
    lab = Lab(st)
    with pytest.raises(KeyboardInterrupt), lab:
        lab.thermal.set_setpoint_C(40.0)
        bench = lab.simulator
        raise KeyboardInterrupt
    assert bench is not None and bench.stage is not None
    assert bench.stage.setpoint_C == pytest.approx(22.0)


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"max_C": 5.0}, "max_C"),
        ({"safe_C": 80.0}, "safe_C"),
        ({"driver": "nope"}, "no thermal driver named 'nope'"),
        ({"stability_K": 0}, "stability_K"),
        ({"poll_s": 500.0}, "poll_s"),
        ({"colour": "red"}, "unknown key"),
    ],
)
def test_bad_thermal_settings_are_named(table: dict[str, object], match: str) -> None:
    with pytest.raises(StationError, match=match):
        parse_station({"thermal": table})


def test_a_simulated_stage_needs_the_simulated_board() -> None:
    with pytest.raises(StationError, match="simulated stage heats only the simulated board"):
        parse_station({"board": {"address": "socket://10.0.0.2:5000"}, "thermal": {}})
