"""The Lake Shore 336 driver: exact command/reply exchanges without I/O, and through
pyvisa-py against the simulator's emulator on a loopback socket."""

from __future__ import annotations

import pytest

from drivers.adapters import ProtocolAdapter, Reply
from drivers.errors import InstrumentCommandError, InstrumentIdentityError, InstrumentLimitError
from drivers.lakeshore336 import DRIVER, LakeShore336
from drivers.plugins import ThermalConnection, find_thermal_driver, thermal_drivers
from drivers.thermal import ThermalLimits

IDN = "LSCI,MODEL336,LSA1234/#######,2.9"
LIMITS = ThermalLimits(min_C=10.0, max_C=45.0, max_ramp_K_per_min=5.0, safe_C=25.0)
Pairs = list[tuple[str | None, Reply]]
INIT: Pairs = [
    ("*IDN?", IDN),
    ("*CLS", None),
    ("TLIMIT A,323.15", None),  # max_C 45 + 5 K margin, in kelvin
    ("*ESR?", "0"),
]


def _driver(pairs: Pairs) -> tuple[LakeShore336, ProtocolAdapter]:
    adapter = ProtocolAdapter(INIT + pairs, name="TCPIP0::lab::7777::SOCKET")
    return LakeShore336(adapter, LIMITS), adapter


def test_connect_identifies_and_sets_the_hardware_limit() -> None:
    tc, adapter = _driver([])
    assert tc.model == "336"
    assert tc.serial == "LSA1234"
    assert "Lake Shore 336 LSA1234" in tc.name
    adapter.assert_done()


def test_wrong_instrument_is_refused_naming_the_reply() -> None:
    adapter = ProtocolAdapter([("*IDN?", "KEITHLEY INSTRUMENTS,MODEL 2450,1,1")], name="X")
    with pytest.raises(InstrumentIdentityError, match=r"Model 335 or 336.*KEITHLEY"):
        LakeShore336(adapter, LIMITS)


def test_setpoint_ramps_and_turns_the_heater_on() -> None:
    tc, adapter = _driver(
        [
            ("RAMP 1,1,2.5", None),
            ("*ESR?", "0"),
            ("SETP 1,303.150", None),
            ("*ESR?", "0"),
            ("RANGE? 1", "0"),
            ("RANGE 1,3", None),
            ("*ESR?", "0"),
        ]
    )
    tc.set_setpoint_C(30.0, ramp_K_per_min=2.5)
    adapter.assert_done()


def test_readings_are_converted_to_celsius() -> None:
    tc, adapter = _driver(
        [
            ("RDGST? A", "000"),
            ("KRDG? A", "+303.120\r"),
            ("SETP? 1", "+303.150"),
            ("RAMPST? 1", "1"),
            ("HTR? 1", "+045.250"),
            ("RAMP? 1", "1,+2.5"),
        ]
    )
    assert tc.temperature_C() == pytest.approx(29.97)
    assert tc.setpoint_C() == pytest.approx(30.0)
    assert tc.ramping() is True
    assert tc.heater_percent() == pytest.approx(45.25)
    assert tc.ramp_K_per_min == pytest.approx(2.5)
    adapter.assert_done()


@pytest.mark.parametrize(
    ("setpoint_C", "ramp"), [(9.9, 1.0), (45.1, 1.0), (float("nan"), 1.0), (30.0, 5.5)]
)
def test_limits_are_refused_before_anything_is_sent(setpoint_C: float, ramp: float) -> None:
    tc, adapter = _driver([])
    with pytest.raises(InstrumentLimitError, match="nothing sent"):
        tc.set_setpoint_C(setpoint_C, ramp_K_per_min=ramp)
    adapter.assert_done()


def test_a_refused_command_raises_naming_it() -> None:
    tc, _ = _driver([("RANGE 1,2", None), ("*ESR?", "16")])
    with pytest.raises(InstrumentCommandError, match=r"execution error.*RANGE 1,2"):
        tc.heater_range = "medium"


def test_invalid_reading_is_an_error_not_a_temperature() -> None:
    tc, _ = _driver([("RDGST? A", "001")])
    with pytest.raises(Exception, match="invalid reading"):
        tc.temperature_C()


def test_registered_as_a_plugin() -> None:
    assert "lakeshore336" in thermal_drivers()
    assert find_thermal_driver("lakeshore336") is DRIVER
    assert DRIVER.recognition.matches(IDN)
    assert DRIVER.recognition.matches("LSCI,MODEL335,LSB1,1.6")
    assert not DRIVER.recognition.matches("LSCI,MODEL372,LSC1,1.0")


def test_over_pyvisa_against_the_emulator() -> None:
    from simulator.bench import SimulatedBench
    from simulator.thermal_stage import ThermalStageConfig

    with SimulatedBench("small", 3, thermal=ThermalStageConfig()) as bench:
        tc = DRIVER.open(ThermalConnection(bench.thermal_resource, LIMITS, timeout_s=2.0))
        try:
            assert abs(tc.temperature_C() - 25.0) < 0.2
            tc.set_setpoint_C(35.0, ramp_K_per_min=5.0)
            assert tc.ramping()
            bench.clock.advance(60.0)
            assert tc.ramping()  # 10 K at 5 K/min takes 2 min
            bench.clock.advance(600.0)
            assert not tc.ramping()
            assert abs(tc.temperature_C() - 35.0) < 0.1  # sensor offset 0.02 K, noise 3 mK
            assert 0 < tc.heater_percent() < 100
            # the board follows the stage, late (5 min time constant) and a little short
            board_C = bench.model.true_temperature_C()
            assert 30.0 < board_C < 35.0
            bench.clock.advance(3600.0)
            assert abs(bench.model.true_temperature_C() - (35 - 0.02 * 10)) < 0.1
        finally:
            tc.close()


def test_discovery_recognises_the_stage() -> None:
    from drivers.discovery import discover
    from simulator.bench import SimulatedBench
    from simulator.thermal_stage import ThermalStageConfig

    with SimulatedBench("small", 0, thermal=ThermalStageConfig()) as bench:
        address = bench.thermal_resource
        report = discover(
            resources=[address],
            list_visa_resources=False,
            list_serial_ports=False,
            lan_broadcast=False,
        )
    found = report.recognised("thermal")
    assert [(f.driver, f.address) for f in found] == [("lakeshore336", address)]


def test_discover_writes_a_thermal_section_that_parses(tmp_path: object) -> None:
    from drivers.discovery import discover
    from labrss.station.config import parse_station
    from labrss.station.discovered import station_toml
    from simulator.bench import SimulatedBench

    with SimulatedBench("small", 0, thermal=True) as bench:
        address = bench.thermal_resource
        report = discover(
            resources=[address],
            list_visa_resources=False,
            list_serial_ports=False,
            lan_broadcast=False,
        )
    text = station_toml(report)
    assert "1 temperature controller(s)" in report.table()
    import tomllib

    station = parse_station(tomllib.loads(text))
    assert station.thermal is not None
    assert (station.thermal.driver, station.thermal.address) == ("lakeshore336", address)
    assert station.thermal.limits.max_C == 45.0
