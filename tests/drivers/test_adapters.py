"""The VISA adapter over real pyvisa-py sockets, and the protocol adapter's own checks."""

from __future__ import annotations

import pytest

from drivers.adapters import TIMEOUT, ProtocolAdapter, ProtocolMismatchError, VISAAdapter
from drivers.errors import InstrumentError, InstrumentIdentityError, InstrumentTimeoutError
from drivers.smu import SafetyLimits, open_smu
from tests.drivers.scripted_server import ScriptedLineServer

LIMITS = SafetyLimits(max_voltage_V=1.0, max_current_A=0.01)


def test_visa_adapter_round_trip_with_lf_termination() -> None:
    with ScriptedLineServer(lambda line: f"echo:{line}" if line.endswith("?") else None) as server:
        adapter = VISAAdapter(server.visa_resource, timeout_s=2.0)
        adapter.write(":SOUR:VOLT 0.1")
        adapter.write("*IDN?")
        assert adapter.read() == "echo:*IDN?"
        adapter.close()
        adapter.close()  # idempotent
    assert server.received == [":SOUR:VOLT 0.1", "*IDN?"]


def test_visa_timeout_names_instrument_and_command() -> None:
    with ScriptedLineServer(lambda line: None) as server:
        adapter = VISAAdapter(server.visa_resource, timeout_s=0.2, instrument="SMU under test")
        adapter.write(":READ?")
        with pytest.raises(InstrumentTimeoutError) as info:
            adapter.read()
        adapter.close()
    assert info.value.command == ":READ?"
    assert info.value.instrument == "SMU under test"
    assert "0.2 s" in str(info.value)


def test_smu_that_never_answers_times_out_on_idn() -> None:
    server = ScriptedLineServer(lambda line: None)
    with server, pytest.raises(InstrumentTimeoutError) as info:
        open_smu("keithley2450", server.visa_resource, LIMITS, timeout_s=0.2)
    assert info.value.command == "*IDN?"
    assert server.visa_resource in str(info.value)


@pytest.mark.parametrize(
    ("driver", "idn"),
    [
        ("keithley2450", "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1234567,C32"),
        ("keithley2450", "Keysight Technologies,B2902A,MY5114,3.4"),
        ("keysight_b2900", "KEITHLEY INSTRUMENTS,MODEL 2450,04512345,1.7.12b"),
        ("keithley2450", "LABRSS,XBAR-8x8x8,SIM-1,1.0.0"),  # the board's address given as SMU
    ],
)
def test_other_instrument_at_the_address(driver: str, idn: str) -> None:
    server = ScriptedLineServer(lambda line: idn if line == "*IDN?" else None)
    with server, pytest.raises(InstrumentIdentityError) as info:
        open_smu(driver, server.visa_resource, LIMITS, timeout_s=1.0)
    assert server.visa_resource in str(info.value)
    assert idn in str(info.value)


@pytest.mark.parametrize(
    "resource", ["socket://127.0.0.1:5000", "/dev/ttyACM0", "COM3", "not a resource"]
)
def test_non_visa_address_is_a_clear_error(resource: str) -> None:
    with pytest.raises(InstrumentError, match="cannot open VISA resource") as info:
        open_smu("keithley2450", resource, LIMITS)
    assert resource in str(info.value)


def test_pyserial_url_given_as_smu_gets_a_hint() -> None:
    with pytest.raises(InstrumentError, match="pyserial URL"):
        open_smu("keithley2450", "socket://127.0.0.1:5000", LIMITS)


def test_refused_connection_is_a_clear_error() -> None:
    with ScriptedLineServer(lambda line: None) as server:
        resource = server.visa_resource
    with pytest.raises(InstrumentError, match=resource.replace("::", ".*")):
        open_smu("keithley2450", resource, LIMITS, timeout_s=0.5)


def test_unknown_driver_and_channel() -> None:
    with pytest.raises(ValueError, match="no SMU driver named 'keithley2410' is installed"):
        open_smu("keithley2410", "TCPIP0::127.0.0.1::1::SOCKET", LIMITS)
    with pytest.raises(ValueError, match="1 channel"):
        open_smu("keithley2450", "TCPIP0::127.0.0.1::1::SOCKET", LIMITS, channel=2)


def test_protocol_adapter_detects_wrong_and_missing_traffic() -> None:
    adapter = ProtocolAdapter([("*IDN?", "X"), (":OUTP ON", None)])
    with pytest.raises(ProtocolMismatchError, match="expected command"):
        adapter.write("*RST")
    adapter = ProtocolAdapter([("*IDN?", "X"), (":OUTP ON", None)])
    adapter.write("*IDN?")
    with pytest.raises(ProtocolMismatchError, match="still unread"):
        adapter.write(":OUTP ON")
    assert adapter.read() == "X"
    with pytest.raises(ProtocolMismatchError, match="not used"):
        adapter.assert_done()
    with pytest.raises(ProtocolMismatchError, match="no reply expected"):
        adapter.read()


def test_protocol_adapter_timeout_and_unsolicited_reply() -> None:
    adapter = ProtocolAdapter([(":READ?", TIMEOUT), (None, "late")])
    adapter.write(":READ?")
    with pytest.raises(InstrumentTimeoutError):
        adapter.read()
    assert adapter.read() == "late"
    adapter.assert_done()
