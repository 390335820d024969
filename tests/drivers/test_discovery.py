"""Discovery (drivers/discovery.py): the simulator's instruments recognised through the
installed drivers' recognitions over real pyvisa-py and pyserial sessions, a port that
answers garbage, one that never answers, one that refuses; nothing but the identify query
is ever sent; the LAN broadcast stays off in tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from drivers.discovery import (
    Candidate,
    KnownDriver,
    discover,
    host_resources,
    installed_recognitions,
)
from drivers.plugins import Recognition
from simulator.bench import SimulatedBench
from tests.drivers.scripted_server import ScriptedLineServer

TIMEOUT_S = 0.3


@pytest.fixture(scope="module")
def bench() -> Iterator[SimulatedBench]:
    with SimulatedBench("small", 0, vxi11=True) as b:
        yield b


@pytest.fixture
def garbage() -> Iterator[ScriptedLineServer]:
    with ScriptedLineServer(lambda line: "\x00\xff\x1b[2J noise ;;") as server:
        yield server


@pytest.fixture
def silent() -> Iterator[ScriptedLineServer]:
    with ScriptedLineServer(lambda line: None) as server:
        yield server


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_the_simulators_smu_and_board_are_recognised_on_every_link(
    bench: SimulatedBench,
) -> None:
    report = discover(
        resources=[bench.smu_resource, bench.smu_instr_resource],
        ports=[bench.board_url],
        list_visa_resources=False,
        list_serial_ports=False,
        timeout_s=TIMEOUT_S,
    )
    by_address = {f.address: f for f in report.findings}
    for resource in (bench.smu_resource, bench.smu_instr_resource):  # raw socket and VXI-11
        smu = by_address[resource]
        assert (smu.status, smu.kind, smu.driver) == ("recognised", "smu", "keithley2450")
        assert smu.reply is not None and smu.reply.startswith("KEITHLEY INSTRUMENTS,MODEL 2450,")
        assert smu.query == "*IDN?" and smu.fix is None
    board = by_address[bench.board_url]
    assert (board.status, board.kind, board.driver) == ("recognised", "board", "crossbar")
    assert board.reply is not None and board.reply.startswith("LABRSS,XBAR-8x8x8,SIM-0,")
    assert [f.driver for f in report.recognised("smu")] == ["keithley2450"] * 2
    assert report.lan_broadcast is False
    assert "2 SMU(s) and 1 board(s) recognised among 3 candidate(s)" in report.table()


def test_a_keysight_b2902a_is_recognised_by_its_driver() -> None:
    with SimulatedBench("small", 0, smu_model="B2902A") as b:
        report = discover(
            resources=[b.smu_resource],
            list_visa_resources=False,
            list_serial_ports=False,
            timeout_s=TIMEOUT_S,
        )
    (finding,) = report.findings
    assert (finding.status, finding.driver) == ("recognised", "keysight_b2900")


def test_garbage_silence_and_refusal_are_listed_with_the_reason(
    garbage: ScriptedLineServer, silent: ScriptedLineServer
) -> None:
    dead = refused_port()
    report = discover(
        resources=[
            f"TCPIP0::127.0.0.1::{garbage.port}::SOCKET",
            f"TCPIP0::127.0.0.1::{silent.port}::SOCKET",
            f"TCPIP0::127.0.0.1::{dead}::SOCKET",
        ],
        ports=[f"socket://127.0.0.1:{garbage.port}", f"socket://127.0.0.1:{dead}"],
        list_visa_resources=False,
        list_serial_ports=False,
        timeout_s=TIMEOUT_S,
    )
    statuses = [(f.transport, f.status) for f in report.findings]
    assert statuses == [
        ("visa", "unrecognised"),
        ("visa", "silent"),
        ("visa", "unreachable"),
        ("serial", "unrecognised"),
        ("serial", "unreachable"),
    ]
    noisy, quiet, refused, noisy_serial, refused_serial = report.findings
    # garbage is shown as it came (control bytes escaped), never silently dropped
    assert noisy.reply == "\\x00\\xff\\x1b[2J noise ;;"
    assert "no installed driver recognises it" in noisy.reason and noisy.fix
    assert noisy_serial.reply == noisy.reply
    assert quiet.reason == f"no reply to *IDN? within {TIMEOUT_S:g} s"
    assert "refused" in refused.reason.lower() and refused.fix
    assert "refused" in refused_serial.reason.lower()
    assert refused_serial.fix == "nothing listens at that address"
    # only the identify query was sent: no setting, nothing else
    assert set(garbage.received) == {"*IDN?"} and silent.received == ["*IDN?"]
    table = report.table()
    assert "0 SMU(s) and 0 board(s) recognised among 5 candidate(s)" in table


def test_usb_ids_name_the_driver_before_anything_answers(silent: ScriptedLineServer) -> None:
    """A device with a driver's USB ids that stays silent says whose ids they are."""
    known = [
        KnownDriver(
            "board",
            "relayboard",
            Recognition(
                query="ID?",
                pattern="^RELAY",
                transports=("serial",),
                baud_rate=9600,
                usb_ids=((0x2341, 0x0043),),
            ),
        )
    ]
    candidate = Candidate(
        f"socket://127.0.0.1:{silent.port}", "serial", "pyserial", "Arduino Uno", (0x2341, 0x43)
    )
    report = discover(
        list_visa_resources=False,
        list_serial_ports=False,
        timeout_s=TIMEOUT_S,
        known=known,
        candidates=[candidate],
    )
    (finding,) = report.findings
    assert finding.status == "silent" and "(USB ids of relayboard)" in finding.reason
    assert "at 9600 baud" in finding.reason and finding.usb_label == "2341:0043"
    assert silent.received == ["ID?"]  # the plug-in's own identify query
    assert finding.to_json()["usb_ids"] == "2341:0043"


def test_a_plugins_broken_match_function_does_not_break_discovery(
    bench: SimulatedBench,
) -> None:
    def boom(reply: str) -> bool:
        raise RuntimeError("bug in a plug-in")

    known, notes = installed_recognitions()
    assert not notes
    known = [KnownDriver("smu", "broken", Recognition(match=boom)), *known]
    report = discover(
        resources=[bench.smu_resource],
        list_visa_resources=False,
        list_serial_ports=False,
        timeout_s=TIMEOUT_S,
        known=known,
    )
    assert report.findings[0].driver == "keithley2450"


def test_listing_states_missing_transports_and_never_broadcasts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With LABRSS_LAN_BROADCAST=0 (set for every test) pyvisa-py's VXI-11 broadcast is
    never called; USB and GPIB say what to install when their libraries are missing."""
    from pyvisa_py.tcpip import TCPIPInstrVxi11

    def no_broadcast() -> list[str]:
        raise AssertionError("discovery broadcast on the LAN from a test")

    monkeypatch.setattr(TCPIPInstrVxi11, "list_resources", staticmethod(no_broadcast))
    report = discover(list_serial_ports=False, timeout_s=TIMEOUT_S)
    support = {t.name: t for t in report.transports}
    assert support["LAN (VXI-11/HiSLIP)"].available
    assert "broadcast off" in support["LAN (VXI-11/HiSLIP)"].detail
    try:
        import usb  # type: ignore[import-not-found, import-untyped, unused-ignore]  # noqa: F401
    except ImportError:
        assert not support["USB (USBTMC)"].available
        assert "labrss[usb]" in support["USB (USBTMC)"].detail
    try:
        import gpib_ctypes  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        assert not support["GPIB"].available and "labrss[gpib]" in support["GPIB"].detail


def test_host_resources_and_a_bad_timeout() -> None:
    assert host_resources("10.1.2.3") == [
        "TCPIP0::10.1.2.3::inst0::INSTR",
        "TCPIP0::10.1.2.3::hislip0::INSTR",
        "TCPIP0::10.1.2.3::5025::SOCKET",
    ]
    with pytest.raises(ValueError, match="timeout_s"):
        discover(timeout_s=0)


def test_an_unloadable_visa_library_is_a_transport_line_not_a_crash() -> None:
    report = discover(
        visa_library="/nonexistent/libvisa.so",
        list_serial_ports=False,
        timeout_s=TIMEOUT_S,
    )
    (visa,) = report.transports
    assert not visa.available and "cannot load the VISA library" in visa.detail
    assert report.findings == ()


def test_the_switch_matrix_is_recognised_through_its_drivers_recognition() -> None:
    """The Keysight 34980A (a VISA-reached board) is found like any other instrument."""
    with SimulatedBench("switch-matrix", 0, bench="switch-matrix") as b:
        report = discover(
            resources=[b.board_address, b.smu_resource],
            list_visa_resources=False,
            list_serial_ports=False,
            timeout_s=TIMEOUT_S,
        )
    matrix, smu = report.findings
    assert (matrix.status, matrix.kind, matrix.driver) == ("recognised", "board", "keysight34980a")
    assert (smu.kind, smu.driver) == ("smu", "keithley2450")
