"""Lab against a real bench: runs only with ``--smu-address`` and ``--board-port``.

    pytest tests/lab/test_lab_hardware.py --smu-address "TCPIP0::192.168.1.50::5025::SOCKET" \\
           --smu-driver keithley2450 --board-port /dev/ttyACM0

Uses the default limits (1 V, 10 mA, 1/16 W) and a 0.1 V read: safe for any board labrss
supports. Only branch 0 of cell (0, 0) is ever closed, and the bench is left safe.
"""

from __future__ import annotations

import math

import pytest

from labrss.lab import Lab, SafetyLimitError
from labrss.station import Station, parse_station

pytestmark = pytest.mark.hardware


@pytest.fixture
def hardware_station(smu_address: str | None, smu_driver: str, board_port: str | None) -> Station:
    if smu_address is None or board_port is None:
        pytest.skip("needs --smu-address and --board-port (a real bench)")
    return parse_station(
        {
            "smu": {"driver": smu_driver, "address": smu_address},
            "board": {"address": board_port},
        },
        source="command-line hardware station",
    )


def test_the_real_bench_opens_with_matching_identities(hardware_station: Station) -> None:
    with Lab(hardware_station) as lab:
        assert not lab.simulated and lab.simulator is None
        assert lab.identities["board"].startswith("LABRSS,XBAR-")
        model = "2450" if hardware_station.smu.driver == "keithley2450" else "B29"
        assert model in lab.identities["smu"]
        g = lab.geometry
        assert g.rows > 0 and g.cols > 0 and g.branches > 0
        assert lab.board.is_safe()


def test_a_real_branch_reading_is_plausible_and_the_bench_is_left_safe(
    hardware_station: Station,
) -> None:
    with Lab(hardware_station) as lab:
        reading = lab.measure_branch(0, 0, 0, nplc=1.0)
        again = lab.measure_branch(0, 0, 0, nplc=1.0)
    assert not reading.limit_tripped
    assert math.isfinite(reading.resistance_ohm) and reading.resistance_ohm > 0
    # Two readings of the same branch agree within 1 %: far beyond an SMU's 1 PLC noise,
    # tight enough to catch a loose contact or a switch that did not close.
    assert again.resistance_ohm == pytest.approx(reading.resistance_ohm, rel=0.01)
    with Lab(hardware_station) as lab:  # a second look: the previous Lab left it safe
        assert lab.board.is_safe()
        assert lab.board.closed_count() == 0


def test_limits_are_refused_on_the_real_bench_before_switching(hardware_station: Station) -> None:
    with Lab(hardware_station) as lab:
        with pytest.raises(SafetyLimitError):
            lab.measure_branch(
                0, 0, 0, read_voltage_V=hardware_station.limits.max_source_voltage_V * 2
            )
        assert lab.board.closed_count() == 0
