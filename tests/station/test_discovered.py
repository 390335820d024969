"""Station files written from discovery (labrss/station/discovered.py): they load as they
are, prefer the raw socket, keep "sim" for what was not found and say so."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.discovery import DiscoveryReport, Finding
from labrss.station import load_station
from labrss.station.discovered import SIM_ORIGIN, station_toml
from labrss.workflows.discover import write_station_file

IDN = "KEITHLEY INSTRUMENTS,MODEL 2450,04512345,1.7.12b"


def smu(address: str, origin: str = "listed by @py") -> Finding:
    return Finding(address, "visa", origin, "recognised", "ok", "smu", "keithley2450", "*IDN?", IDN)


def report(*findings: Finding, visa_library: str = "@py") -> DiscoveryReport:
    return DiscoveryReport(visa_library, findings, ())


def test_a_lan_instrument_is_written_with_its_raw_socket_and_its_other_resources(
    tmp_path: Path,
) -> None:
    found = report(
        smu("TCPIP0::192.168.1.50::inst0::INSTR", "host 192.168.1.50"),
        smu("TCPIP0::192.168.1.50::5025::SOCKET", "host 192.168.1.50"),
        Finding(
            "/dev/ttyACM0",
            "serial",
            "pyserial",
            "recognised",
            "ok",
            "board",
            "crossbar",
            "*IDN?",
            "LABRSS,XBAR-16x16x8,B-0042,1.0.0",
        ),
        Finding("/dev/ttyS0", "serial", "pyserial", "silent", "no reply to *IDN? within 1 s"),
        visa_library="@ivi",
    )
    path = write_station_file(found, tmp_path / "lab.toml")
    station = load_station(path)
    assert station.smu.driver == "keithley2450"
    assert station.smu.address == "TCPIP0::192.168.1.50::5025::SOCKET"
    assert station.smu.visa_library == "@ivi"
    assert station.board.address == "/dev/ttyACM0" and station.board.driver == "crossbar"
    text = path.read_text()
    assert "# also reachable as TCPIP0::192.168.1.50::inst0::INSTR" in text
    assert "#   silent       /dev/ttyS0: no reply to *IDN? within 1 s" in text
    assert "Not found" not in text
    with pytest.raises(FileExistsError, match="--force"):
        write_station_file(found, path)


def test_what_was_not_found_stays_on_the_simulator_and_is_named(tmp_path: Path) -> None:
    text = station_toml(report(smu("USB0::0x05E6::0x2450::04512345::0::INSTR")))
    assert '# Not found: a board. Its address stays "sim"' in text
    path = tmp_path / "s.toml"
    path.write_text(text)
    station = load_station(path)
    assert station.smu.address == "USB0::0x05E6::0x2450::04512345::0::INSTR"
    assert station.board.simulated and not station.smu.simulated
    nothing = station_toml(report())
    assert "#   no instrument recognised" in nothing and "a SMU" in nothing
    path.write_text(nothing)
    assert load_station(path).uses_simulator


def test_the_embedded_simulators_instruments_are_written_as_sim(tmp_path: Path) -> None:
    text = station_toml(
        report(smu("TCPIP0::127.0.0.1::40000::SOCKET", SIM_ORIGIN), smu("x", SIM_ORIGIN))
    )
    path = tmp_path / "s.toml"
    path.write_text(text)
    assert load_station(path).smu.simulated
    assert "also reachable" not in text  # the simulator's ports change at every start
    assert "(embedded simulator)" in text
