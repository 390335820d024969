"""VXI-11 on the simulated SMUs: pyvisa-py's own VXI-11 client against our core channel,
abort channel and portmapper (simulator/vxi11_server.py, portmapper.py, oncrpc.py).

The core channel is reached directly (``TCPIP0::127.0.0.1,PORT::inst0::INSTR``, the port in
the resource, which pyvisa-py accepts) on ephemeral ports. pyvisa-py finds the port of a
resource without one through the portmapper on port 111 only: that path is tested where the
port can be bound (root, as CI runs) and skipped, saying so, where it cannot.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest
import pyvisa
from pyvisa_py.protocols import rpc, vxi11
from pyvisa_py.tcpip import Vxi11CoreClient

from drivers.smu import SafetyLimits, open_smu
from labrss.lab import Lab
from labrss.station import parse_station
from simulator.bench import SimulatedBench
from simulator.clock import VirtualClock
from simulator.keithley2450_emulator import Keithley2450Emulator
from simulator.port_model import OPEN_CIRCUIT
from simulator.portmapper import PortMapper
from simulator.vxi11_server import (
    DEVICE_CORE,
    FLAG_END,
    FLAG_TERMCHRSET,
    REASON_CHR,
    REASON_END,
    REASON_REQCNT,
    Vxi11Server,
)

IDN_2450 = "KEITHLEY INSTRUMENTS,MODEL 2450,"
LIMITS = SafetyLimits(max_voltage_V=1.0, max_current_A=0.01)


@pytest.fixture
def server() -> Iterator[Vxi11Server]:
    """A Keithley 2450 emulator (nothing connected) on a VXI-11 core channel."""
    emulator = Keithley2450Emulator(lambda: OPEN_CIRCUIT, VirtualClock(), 0)
    srv = Vxi11Server(lambda: emulator, name="smu", lock=threading.Lock()).start()
    yield srv
    srv.close()


@pytest.fixture
def client(server: Vxi11Server) -> Iterator[Vxi11CoreClient]:
    """pyvisa-py's core-channel client, connected straight to the port."""
    c = Vxi11CoreClient("127.0.0.1", server.port, 2000)
    yield c
    c.close()


def link(client: Vxi11CoreClient, device: str = "inst0", lock: bool = False) -> int:
    error, lid, _abort_port, max_recv = client.create_link(1234, lock, 500, device)
    assert error == 0 and max_recv >= 4096
    return int(lid)


def test_pyvisa_opens_the_instr_resource_and_the_2450_driver_runs_on_it(
    server: Vxi11Server,
) -> None:
    rm = pyvisa.ResourceManager("@py")
    resource = f"TCPIP0::127.0.0.1,{server.port}::inst0::INSTR"
    inst = rm.open_resource(resource, timeout=2000, read_termination="\n")
    try:
        assert inst.query("*IDN?").startswith(IDN_2450)
        inst.write(":SOUR:VOLT 0.25")
        assert float(inst.query(":SOUR:VOLT?")) == pytest.approx(0.25)
        inst.write("*IDN?")
        assert inst.read_stb() & 0x10  # MAV: a reply is waiting
        inst.clear()  # device clear: the unread reply is gone
        assert not inst.read_stb() & 0x10
        inst.timeout = 200
        with pytest.raises(pyvisa.VisaIOError) as exc:
            inst.read()  # nothing to read: the VISA timeout, as on an instrument
        assert exc.value.error_code == pyvisa.constants.StatusCode.error_timeout
        inst.timeout = 2000
        assert inst.query(":SYST:ERR?").startswith("-420,")  # Query UNTERMINATED
    finally:
        inst.close()
    assert server.wait_until_idle(2.0)  # the link was destroyed
    smu = open_smu("keithley2450", resource, LIMITS, timeout_s=2.0)
    try:
        assert smu.identity.startswith(IDN_2450)
        assert smu.read_output_on() is False
    finally:
        smu.close()


def test_write_end_and_read_reasons(client: Vxi11CoreClient) -> None:
    lid = link(client)
    # a message in two blocks: only the END flag of the second ends it
    assert client.device_write(lid, 1000, 500, 0, b"*ID") == (0, 3)
    assert client.device_write(lid, 1000, 500, FLAG_END, b"N?") == (0, 2)
    error, reason, data = client.device_read(lid, 10, 1000, 500, 0, 0)
    assert (error, reason, data) == (0, REASON_REQCNT, IDN_2450.encode()[:10])
    error, reason, data = client.device_read(lid, 1 << 16, 1000, 500, 0, 0)
    assert error == 0 and reason == REASON_END and data.endswith(b"\n")
    # the termination character ends a read early, reason CHR
    client.device_write(lid, 1000, 500, FLAG_END, b"*IDN?\n")
    error, reason, data = client.device_read(lid, 1 << 16, 1000, 500, FLAG_TERMCHRSET, ord(","))
    assert (error, reason, data) == (0, REASON_CHR, b"KEITHLEY INSTRUMENTS,")
    # a new message before the reply was read discards it (-410, Query INTERRUPTED)
    client.device_write(lid, 1000, 500, FLAG_END, b":SYST:ERR:COUN?\n")
    error, reason, data = client.device_read(lid, 1 << 16, 1000, 500, 0, 0)
    assert data == b"1\n"
    client.device_write(lid, 1000, 500, FLAG_END, b":SYST:ERR?\n")
    assert client.device_read(lid, 1 << 16, 1000, 500, 0, 0)[2].startswith(b"-410,")
    assert client.destroy_link(lid) == 0
    assert client.destroy_link(lid) == vxi11.ErrorCodes.invalid_link_identifier


def test_links_lock_and_unknown_devices(server: Vxi11Server, client: Vxi11CoreClient) -> None:
    assert client.create_link(1, False, 0, "gpib0,5")[0] == 3  # device not accessible
    first = link(client, lock=True)
    other = Vxi11CoreClient("127.0.0.1", server.port, 2000)
    try:
        second = link(other)
        # the lock is exclusive: another link's I/O is refused, or waits with waitlock
        assert other.device_write(second, 1000, 0, FLAG_END, b"*IDN?\n")[0] == 11
        assert other.device_lock(second, 0, 0) == 11
        assert other.device_unlock(second) == 12  # no lock held by this link
        assert client.device_unlock(first) == 0
        assert other.device_lock(second, 1, 100) == 0
        assert other.device_write(second, 1000, 0, FLAG_END, b"*IDN?\n") == (0, 6)
        assert client.device_trigger(first, 0, 0, 1000) == 11
        assert client.device_read_stb(first, 1, 50, 1000)[0] == 11  # waited, still locked
        assert server.instrument.link_count == 2
    finally:
        other.close()  # the connection ends: its link and lock go with it
    assert server.wait_until_idle(0.0) is False
    for _ in range(200):
        if server.instrument.link_count == 1:
            break
        threading.Event().wait(0.01)
    assert server.instrument.link_count == 1
    assert client.device_trigger(first, 0, 0, 1000) == 0  # the lock went with the link
    assert client.device_docmd(first, 0, 1000, 0, 0x20000, True, 1, b"") == (8, b"")


def test_device_abort_ends_a_waiting_read(server: Vxi11Server, client: Vxi11CoreClient) -> None:
    error, lid, abort_port, _ = client.create_link(7, False, 0, "inst0")
    assert error == 0 and abort_port == server.abort_port
    result: list[tuple[int, int, bytes]] = []
    reader = threading.Thread(
        target=lambda: result.append(client.device_read(lid, 100, 10_000, 0, 0, 0))
    )
    reader.start()
    threading.Event().wait(0.2)
    abort = rpc.RawTCPClient("127.0.0.1", vxi11.DEVICE_ASYNC_PROG, 1, abort_port)
    abort.packer = vxi11.Vxi11Packer()
    abort.unpacker = vxi11.Vxi11Unpacker(b"")
    try:
        assert (
            abort.make_call(
                1, lid, abort.packer.pack_device_link, abort.unpacker.unpack_device_error
            )
            == 0
        )
    finally:
        abort.close()
    reader.join(5.0)
    assert result and result[0][0] == 23  # abort, long before the 10 s io_timeout


def _raw_call(port: int, prog: int, vers: int, proc: int, args: bytes = b"") -> bytes:
    """One RPC call written by hand; the reply record's payload."""
    body = struct.pack(">IIIIIIIIII", 99, 0, 2, prog, vers, proc, 0, 0, 0, 0) + args
    with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
        sock.sendall(struct.pack(">I", 0x8000_0000 | len(body)) + body)
        header = sock.recv(4)
        size = struct.unpack(">I", header)[0] & 0x7FFF_FFFF
        data = b""
        while len(data) < size:
            data += sock.recv(size - len(data))
    return data


def test_rpc_errors_are_answered_as_the_rfc_says(server: Vxi11Server) -> None:
    def accept_stat(reply: bytes) -> int:
        xid, mtype, stat, _verf_flavor, _verf_len, accept = struct.unpack(">IIIIII", reply[:24])
        assert (xid, mtype, stat) == (99, 1, 0)
        return int(accept)

    assert accept_stat(_raw_call(server.port, 0x0607B1, 1, 30)) == 1  # PROG_UNAVAIL
    mismatch = _raw_call(server.port, DEVICE_CORE, 3, 10)
    assert accept_stat(mismatch) == 2 and struct.unpack(">II", mismatch[24:32]) == (1, 1)
    assert accept_stat(_raw_call(server.port, DEVICE_CORE, 1, 99)) == 3  # PROC_UNAVAIL
    assert accept_stat(_raw_call(server.port, DEVICE_CORE, 1, 10, b"\0\0")) == 4  # GARBAGE
    # RPC version 3: MSG_DENIED, RPC_MISMATCH (2, 2)
    body = struct.pack(">IIIIIIIIII", 5, 0, 3, DEVICE_CORE, 1, 10, 0, 0, 0, 0)
    with socket.create_connection(("127.0.0.1", server.port), timeout=2.0) as sock:
        sock.sendall(struct.pack(">I", 0x8000_0000 | len(body)) + body)
        reply = sock.recv(64)
    assert struct.unpack(">IIIIII", reply[4:28]) == (5, 1, 1, 0, 2, 2)
    # a record beyond the bound closes the connection instead of filling memory
    with socket.create_connection(("127.0.0.1", server.port), timeout=2.0) as sock:
        sock.sendall(struct.pack(">I", 0x8000_0000 | 0x7FFF_0000))
        assert sock.recv(16) == b""


def test_portmapper_getport_and_dump_on_a_free_port() -> None:
    mapper = PortMapper(port=0).start()
    try:
        mapper.register(DEVICE_CORE, 1, 4321)
        client = rpc.RawTCPClient("127.0.0.1", rpc.PMAP_PROG, rpc.PMAP_VERS, mapper.port)
        client.packer = rpc.PortMapperPacker()
        client.unpacker = rpc.PortMapperUnpacker(b"")
        pmap = rpc.PartialPortMapperClient.__new__(rpc.PartialPortMapperClient)
        pmap.packer, pmap.unpacker = client.packer, client.unpacker
        pmap.make_call = client.make_call  # type: ignore[method-assign]
        try:
            assert pmap.get_port((DEVICE_CORE, 1, rpc.IPPROTO_TCP, 0)) == 4321
            assert pmap.get_port((DEVICE_CORE, 1, rpc.IPPROTO_UDP, 0)) == 0
            assert pmap.dump() == [(DEVICE_CORE, 1, rpc.IPPROTO_TCP, 4321)]
            assert pmap.set((DEVICE_CORE, 1, rpc.IPPROTO_TCP, 1)) == 0  # refused remotely
        finally:
            client.close()
        udp = rpc.RawUDPClient("127.0.0.1", rpc.PMAP_PROG, rpc.PMAP_VERS, mapper.port)
        udp.packer = rpc.PortMapperPacker()
        udp.unpacker = rpc.PortMapperUnpacker(b"")
        try:
            got = udp.make_call(
                3,
                (DEVICE_CORE, 1, rpc.IPPROTO_TCP, 0),
                udp.packer.pack_mapping,
                udp.unpacker.unpack_uint,
            )
        finally:
            udp.close()
        assert mapper.serves_udp and got == 4321
    finally:
        mapper.close()


@pytest.mark.parametrize(
    ("model", "driver", "idn"),
    [
        ("B2902A", "keysight_b2900", "Keysight Technologies,B2902A,"),
        ("2400", "keithley2400", "KEITHLEY INSTRUMENTS INC.,MODEL 2400,"),
    ],
)
def test_every_smu_emulator_is_reachable_over_vxi11(model: str, driver: str, idn: str) -> None:
    with SimulatedBench("small", 0, smu_model=model, vxi11=True) as bench:
        smu = open_smu(driver, bench.smu_instr_resource, LIMITS, timeout_s=2.0)
        try:
            assert smu.identity.startswith(idn)
        finally:
            smu.close()


def _lab_reading(smu_address: str, bench: SimulatedBench) -> float:
    station = parse_station(
        {"smu": {"address": smu_address}, "board": {"address": bench.board_url}}
    )
    with Lab(station) as lab:
        return lab.measure_branch(1, 2, 3).conductance_S


@pytest.mark.xdist_group("port-111")
def test_the_plain_instr_resource_through_the_portmapper_on_port_111() -> None:
    """The full path of ``TCPIP0::127.0.0.1::inst0::INSTR``: pyvisa-py asks port 111."""
    with SimulatedBench("small", 0, vxi11=True, portmapper_port=111) as bench:
        if bench.portmapper_error is not None:
            pytest.skip(
                f"portmapper part skipped: port 111 cannot be bound here "
                f"({bench.portmapper_error}); the core channel is tested on free ports"
            )
        assert bench.smu_instr_resource == "TCPIP0::127.0.0.1::inst0::INSTR"
        via_vxi11 = _lab_reading(bench.smu_instr_resource, bench)
        via_socket = _lab_reading(bench.smu_resource, bench)
    # one instrument behind both interfaces: the same branch within the reading noise
    assert via_vxi11 == pytest.approx(via_socket, rel=1e-4)


def test_a_lab_runs_over_vxi11_with_the_port_in_the_resource() -> None:
    with SimulatedBench("small", 0, vxi11=True) as bench:
        assert bench.smu_instr_resource == f"TCPIP0::127.0.0.1,{bench.smu_vxi11_port}::inst0::INSTR"
        via_vxi11 = _lab_reading(bench.smu_instr_resource, bench)
        via_socket = _lab_reading(bench.smu_resource, bench)
    assert via_vxi11 == pytest.approx(via_socket, rel=1e-4)
