"""SimulatedBench end to end: real emulators behind real sockets, reached by pyvisa-py and
pyserial exactly as the drivers reach hardware."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import pyvisa
import serial
from hypothesis import given, settings
from hypothesis import strategies as st
from pyvisa.resources import MessageBasedResource

from simulator.bench import BOARD_BUSY_REPLY, SimulatedBench
from simulator.keithley2450_emulator import Keithley2450Emulator
from simulator.smu_physics import K2450_MEASURE_CURRENT, K2450_SOURCE_VOLTAGE, noise_sigma

IO_TIMEOUT_S = 10.0  # bounds a failing test only
V_SOURCE_V = 0.2
NPLC = 1.0
I_RANGE_A = 1e-3  # fixed range: every reading below stays under 1 mA at 0.2 V
SMU_SETUP = (
    "*RST",
    ":SOUR:FUNC VOLT",
    ":SOUR:VOLT:RANG 2",
    f":SOUR:VOLT {V_SOURCE_V}",
    ":SOUR:VOLT:ILIM 0.01",
    ':SENS:FUNC "CURR"',
    f":SENS:CURR:RANG {I_RANGE_A}",
    f":SENS:CURR:NPLC {NPLC}",
    ":OUTP ON",
)


@pytest.fixture
def bench() -> Iterator[SimulatedBench]:
    with SimulatedBench("small", seed=11) as b:
        yield b


@pytest.fixture
def rm() -> Iterator[pyvisa.ResourceManager]:
    manager = pyvisa.ResourceManager("@py")
    yield manager
    manager.close()


def open_smu(rm: pyvisa.ResourceManager, bench: SimulatedBench) -> MessageBasedResource:
    inst = rm.open_resource(
        bench.smu_resource,
        read_termination="\n",
        write_termination="\n",
        timeout=round(IO_TIMEOUT_S * 1000),
    )
    assert isinstance(inst, MessageBasedResource)
    return inst


class Board:
    """A pyserial socket:// client of the board with a one-line query helper."""

    def __init__(self, bench: SimulatedBench) -> None:
        self.port = serial.serial_for_url(bench.board_url, timeout=IO_TIMEOUT_S)

    def query(self, line: str) -> str:
        self.port.write(line.encode("latin-1") + b"\n")
        reply: bytes = self.port.readline()
        assert reply.endswith(b"\n"), f"no reply to {line!r} within {IO_TIMEOUT_S} s"
        return reply.decode("latin-1").rstrip("\n")

    def close(self) -> None:
        self.port.close()


@pytest.fixture
def board(bench: SimulatedBench) -> Iterator[Board]:
    b = Board(bench)
    yield b
    b.close()


def raw_lines(port: int, payload: bytes, n: int) -> list[bytes]:
    """Send ``payload`` on a fresh raw socket and read ``n`` reply lines."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT_S) as s:
        s.sendall(payload)
        buf = b""
        while buf.count(b"\n") < n:
            chunk = s.recv(4096)
            assert chunk, f"closed after {buf!r}"
            buf += chunk
    return buf.split(b"\n")[:n]


def reading_bound_A(g_S: float) -> float:
    """|I_read - g_S * V_set| allowed by the 2450's datasheet accuracy on these ranges.

    Meter (1 mA range): gain * |I| + offset + 5 sigma of the noise at NPLC + 1 LSD.
    Source (2 V range): the actual voltage differs from the programmed one by up to
    gain * V + offset + 1 LSD, which moves the true current by g_S times that.
    """
    meter = next(s for s in K2450_MEASURE_CURRENT if s.full_scale == I_RANGE_A)
    source = next(s for s in K2450_SOURCE_VOLTAGE if s.full_scale == 2.0)
    i_true = g_S * V_SOURCE_V
    pickup_A = 2e-6 * meter.full_scale  # the emulator's line pickup allowance (2 ppm of range)
    meter_err = (
        meter.gain * i_true
        + meter.offset
        + 5 * noise_sigma(meter, NPLC)
        + meter.resolution
        + pickup_A
    )
    source_err = source.gain * V_SOURCE_V + source.offset + source.resolution
    return meter_err + g_S * source_err


def series_path_ohm(truth: dict[str, Any], r: int, c: int) -> float:
    """Upper bound of the resistance in series with cell (r, c) in a 2-wire cell read:
    both routing switches, both leads, and the longest wire run along its row and column."""
    rows, cols, _ = truth["geometry"]
    return float(
        truth["route_row_ohm"][r]
        + truth["route_col_ohm"][c]
        + 2 * truth["lead_ohm"]
        + (rows + cols) * truth["wire_segment_ohm"]
    )


def fault_free_cell(truth: dict[str, Any]) -> tuple[int, int]:
    """A cell whose switches obey their commands and whose elements are not faulty."""
    faulty = {(f["row"], f["col"]) for f in truth["faults"]}
    rows, cols, _ = truth["geometry"]
    return next((r, c) for r in range(rows) for c in range(cols) if (r, c) not in faulty)


# ---------------------------------------------------------------------- identity
def test_both_instruments_answer_idn(
    bench: SimulatedBench, rm: pyvisa.ResourceManager, board: Board
) -> None:
    assert bench.smu_resource == f"TCPIP0::127.0.0.1::{bench.smu_port}::SOCKET"
    assert bench.board_url == f"socket://127.0.0.1:{bench.board_port}"
    smu = open_smu(rm, bench)
    assert smu.query("*IDN?").startswith("KEITHLEY INSTRUMENTS,MODEL 2450,00000011,")
    smu.close()
    assert board.query("*IDN?") == "LABRSS,XBAR-8x8x8,SIM-11,1.0.0"
    assert board.query("SW:CELL 1,2,05") == "OK"
    assert board.query("SW:CELL? 1,2") == "05"
    assert board.query("ROUT:CELL 1,2") == "OK"
    assert board.query("ROUT?") == "CELL 1,2,2W"


# ---------------------------------------------------------------------- physics through sockets
def test_smu_reading_follows_the_switches_and_the_truth(
    bench: SimulatedBench, rm: pyvisa.ResourceManager, board: Board
) -> None:
    with bench.lock:
        truth = bench.model.truth()
    r, c = fault_free_cell(truth)
    assert board.query(f"ROUT:CELL {r},{c},2W") == "OK"
    smu = open_smu(rm, bench)
    for line in SMU_SETUP:
        smu.write(line)
    readings: list[float] = []
    for mask in (0x01, 0x03, 0x0F, 0xFF):
        assert board.query(f"SW:CELL {r},{c},{mask:02X}") == "OK"
        i_read = float(smu.query(":READ?"))
        with bench.lock:
            port = bench.model.smu_port()
            g_cell = float(bench.model.truth()["cell_conductance_S"][r, c])
        # The reading is the routed network's current within the SMU's accuracy + noise.
        assert abs(i_read - port.g_S * V_SOURCE_V) <= reading_bound_A(port.g_S)
        # The network's conductance is the cell's own, in series with the routing path
        # (and the guarded neighbours contribute nothing while their switches are open).
        assert port.g_S <= g_cell
        assert g_cell - port.g_S <= g_cell**2 * series_path_ohm(truth, r, c)
        readings.append(i_read)
    assert readings == sorted(readings) and readings[0] > 0
    # Each added branch adds its own conductance: 0x01 -> 0x03 adds branch 1.
    g_branch1 = float(truth["branch_on_conductance_S"][r, c, 1])
    step = (readings[1] - readings[0]) / V_SOURCE_V
    tolerance_S = 2 * reading_bound_A(3 * g_branch1) / V_SOURCE_V + 2 * g_branch1**2 * (
        series_path_ohm(truth, r, c) * 4
    )
    assert step == pytest.approx(g_branch1, abs=tolerance_S)
    assert smu.query(":SYST:ERR?") in {'0,"No error"', '+0,"No error"'}
    smu.close()


def test_concurrent_smu_and_board_traffic_sees_consistent_states(
    bench: SimulatedBench, rm: pyvisa.ResourceManager, board: Board
) -> None:
    """Board writes and SMU readings from two threads: every reading is one of the two
    states' currents, never a torn model (the shared lock serialises them)."""
    with bench.lock:
        r, c = fault_free_cell(bench.model.truth())
    assert board.query(f"ROUT:CELL {r},{c}") == "OK"
    expected: dict[int, float] = {}
    for mask in (0x01, 0x0F):
        assert board.query(f"SW:CELL {r},{c},{mask:02X}") == "OK"
        with bench.lock:
            expected[mask] = bench.model.smu_port().g_S
    smu = open_smu(rm, bench)
    for line in SMU_SETUP:
        smu.write(line)
    readings: list[float] = []

    def read_many() -> None:
        readings.extend(float(smu.query(":READ?")) for _ in range(60))

    reader = threading.Thread(target=read_many)
    reader.start()
    for i in range(60):
        assert board.query(f"SW:CELL {r},{c},{(0x01, 0x0F)[i % 2]:02X}") == "OK"
    reader.join(IO_TIMEOUT_S * 6)
    assert len(readings) == 60
    for i_read in readings:
        assert any(abs(i_read - g * V_SOURCE_V) <= reading_bound_A(g) for g in expected.values()), (
            i_read
        )
    smu.close()


def test_b2902a_channel_2_is_an_open_circuit() -> None:
    with SimulatedBench("small", seed=3, smu_model="B2902A") as bench:
        reply = raw_lines(
            bench.smu_port,
            b"*IDN?\n:SOUR2:FUNC:MODE VOLT\n:SOUR2:VOLT 1\n:SENS2:CURR:PROT 0.01\n"
            b":OUTP2 ON\n:MEAS:CURR? (@2)\n:SYST:ERR?\n",
            3,
        )
    assert reply[0].startswith(b"Keysight Technologies,B2902A,")
    # Nothing connected: only the instrument's own offset; the 10 mA range's offset
    # spec (B2900: a few uA at most) bounds it far below 1 V across any resistor here.
    assert abs(float(reply[1])) < 1e-6
    assert reply[2] in {b'0,"No error"', b'+0,"No error"'}


# ---------------------------------------------------------------------- bad input at the socket
def test_board_bad_input_gets_defined_replies(bench: SimulatedBench) -> None:
    lines = raw_lines(
        bench.board_port,
        b"\xff\xfe\x00garbage\r\n" + b"X" * 5000 + b"\nSW:FOO 1\nSW:CELL 99,0,1\n*IDN?\n",
        5,
    )
    assert lines[0].startswith(b"ERR -101,")
    assert lines[1].startswith(b"ERR -223,")
    assert lines[2].startswith(b"ERR -113,")
    assert lines[3].startswith(b"ERR -222,")
    assert lines[4] == b"LABRSS,XBAR-8x8x8,SIM-11,1.0.0"


def test_smu_bad_input_is_queued_without_reply(bench: SimulatedBench) -> None:
    lines = raw_lines(
        bench.smu_port,
        b"\xff\xfe garbage\n"
        + b"A" * 5000
        + b"\n:SOUR:FOO 1\n:SENS:CURR:NPLC 99\n"
        + b":SYST:ERR?\n" * 5,
        5,
    )
    codes = [int(line.split(b",")[0]) for line in lines]
    assert codes == [-101, -363, -113, -222, 0]


FRAGMENTS = st.sampled_from(
    [
        b"*IDN?",
        b"SW:CELL 0,1,3",
        b"SW:CELL? 0,1",
        b"ROUT:CELL 0,1",
        b"SYST:ERR?",
        b"SAFE?",
        b"DAC:VOLT 0,0.1",
        b"  ",
        b"\t",
        b",",
        b":",
        b"?",
        b"\x00",
        b"\xff",
        b"\x1b[A",
    ]
)
LINE_BODIES = st.lists(st.one_of(FRAGMENTS, st.binary(max_size=12)), max_size=5).map(
    lambda parts: b"".join(parts).replace(b"\n", b"").replace(b"\r", b"")
)


def _read_until(sock: socket.socket, marker: bytes, max_lines: int) -> list[bytes]:
    """Reply lines up to and including the first one starting with ``marker``."""
    buf = b""
    lines: list[bytes] = []
    while not lines or not lines[-1].startswith(marker):
        while b"\n" not in buf:
            chunk = sock.recv(65536)
            assert chunk, f"server closed the connection after {lines}"
            buf += chunk
        line, _, buf = buf.partition(b"\n")
        lines.append(line)
        assert len(lines) <= max_lines, lines
    return lines


def test_board_socket_fuzz_one_reply_per_line_and_never_wedges() -> None:
    """Random lines in random packets: exactly one reply per non-blank line, in order,
    whatever the bytes; the server keeps serving every new connection."""
    with SimulatedBench("small", seed=4) as bench:

        @settings(max_examples=60)
        @given(
            bodies=st.lists(st.tuples(LINE_BODIES, st.booleans()), min_size=1, max_size=8),
            cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
        )
        def check(bodies: list[tuple[bytes, bool]], cuts: list[int]) -> None:
            stream = b"".join(body + (b"\r\n" if crlf else b"\n") for body, crlf in bodies)
            stream += b"BOARD:GEOM?\n"  # the sentinel: no fragment can produce its reply
            expected = sum(1 for body, _ in bodies if body.strip(b" \t"))
            assert bench.wait_until_idle(IO_TIMEOUT_S)
            with socket.create_connection(("127.0.0.1", bench.board_port), IO_TIMEOUT_S) as s:
                bounds = sorted({0, len(stream), *(c % len(stream) for c in cuts)})
                for a, b in itertools.pairwise(bounds):
                    s.sendall(stream[a:b])
                lines = _read_until(s, b"8,8,8", expected + 1)
            assert len(lines) == expected + 1
            assert all(line.startswith(b"ERR ") or b"ERR" not in line for line in lines)

        check()


def test_smu_socket_fuzz_never_wedges(bench: SimulatedBench) -> None:
    """Random lines to the SMU: whatever they queue or answer, `*IDN?` still gets through."""

    @settings(max_examples=40)
    @given(bodies=st.lists(LINE_BODIES, min_size=1, max_size=8))
    def check(bodies: list[bytes]) -> None:
        stream = b"".join(body + b"\n" for body in bodies) + b"*CLS\n*IDN?\n"
        assert bench.wait_until_idle(IO_TIMEOUT_S)
        with socket.create_connection(("127.0.0.1", bench.smu_port), IO_TIMEOUT_S) as s:
            s.sendall(stream)
            _read_until(s, b"KEITHLEY INSTRUMENTS,MODEL 2450,", len(bodies) + 1)

    check()


def test_board_goes_safe_when_the_host_disconnects_mid_line(
    bench: SimulatedBench, board: Board
) -> None:
    assert board.query("SW:CELL 0,0,FF") == "OK"
    assert board.query("ROUT:CELL 0,0") == "OK"
    board.port.write(b"SW:CELL 0,1,")  # no LF: never executed
    board.close()
    assert bench.wait_until_idle(IO_TIMEOUT_S)
    with bench.lock:
        assert bench.model.is_safe()
        assert not bench.model.switches.any()


def test_second_board_host_is_refused_and_first_is_undisturbed(
    bench: SimulatedBench, board: Board
) -> None:
    assert board.query("SW:CELL 0,0,01") == "OK"
    (busy,) = raw_lines(bench.board_port, b"*IDN?\n", 1)
    assert busy.decode() == BOARD_BUSY_REPLY
    assert board.query("SW:CELL? 0,0") == "01"  # not disturbed, not made safe
    board.close()
    assert bench.wait_until_idle(IO_TIMEOUT_S)
    again = Board(bench)
    assert again.query("SAFE?") == "1"  # the first host's link loss made it safe
    again.close()


def test_second_smu_host_is_closed_and_first_is_undisturbed(
    bench: SimulatedBench, rm: pyvisa.ResourceManager
) -> None:
    first = open_smu(rm, bench)
    assert first.query("*IDN?").startswith("KEITHLEY")
    second = open_smu(rm, bench)
    with pytest.raises((OSError, pyvisa.errors.VisaIOError)):
        second.query("*IDN?")
    second.close()
    assert first.query("*IDN?").startswith("KEITHLEY")
    first.close()


def test_board_emulator_exception_is_contained(
    bench: SimulatedBench, board: Board, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(line: str) -> str | None:
        raise RuntimeError("simulated emulator bug")

    monkeypatch.setattr(bench.board, "handle_line", broken)
    reply = board.query("*IDN?")
    assert reply.startswith('ERR -200,"Execution error; internal error in the board emulator ')
    assert "RuntimeError" in reply
    monkeypatch.undo()
    assert board.query("*IDN?") == "LABRSS,XBAR-8x8x8,SIM-11,1.0.0"


# ---------------------------------------------------------------------- lifecycle
def test_stop_drops_hosts_makes_board_safe_and_frees_ports(rm: pyvisa.ResourceManager) -> None:
    bench = SimulatedBench("small", seed=1).start()
    smu_port, board_port = bench.smu_port, bench.board_port
    board = Board(bench)
    assert board.query("SW:CELL 0,0,01") == "OK"
    smu = open_smu(rm, bench)
    assert smu.query("*IDN?").startswith("KEITHLEY")
    bench.stop()
    with bench.lock:
        assert bench.model.is_safe()
    with pytest.raises(serial.SerialException, match="socket disconnected"):
        board.port.read(1)  # the server closed the link
    board.close()
    smu.close()
    for port in (smu_port, board_port):
        with socket.socket() as s:
            # Free again: no listener (SO_REUSEADDR only tolerates TIME_WAIT connections).
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
    bench.stop()  # idempotent
    with pytest.raises(RuntimeError, match="not started"):
        _ = bench.smu_resource


def test_port_in_use_names_the_server_and_leaves_nothing_running(bench: SimulatedBench) -> None:
    other = SimulatedBench("small", seed=2, board_port=bench.board_port)
    with pytest.raises(
        OSError, match=f"board server cannot listen on 127.0.0.1:{bench.board_port}"
    ):
        other.start()
    assert not other._smu_server.listening  # the SMU server it had started is closed again


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(FileNotFoundError, match="no-such-preset"):
        SimulatedBench("no-such-preset")
    with pytest.raises(ValueError, match="unknown SMU model '2410'"):
        SimulatedBench("small", smu_model="2410")
    with pytest.raises(ValueError, match="seed must be >= 0"):
        SimulatedBench("small", seed=-1)


def test_same_seed_same_board_through_the_bench() -> None:
    a, b = SimulatedBench("small", seed=9), SimulatedBench("small", seed=9)
    assert isinstance(a.smu, Keithley2450Emulator) and isinstance(b.smu, Keithley2450Emulator)
    ta, tb = a.model.truth(), b.model.truth()
    assert (ta["resistance_ohm"] == tb["resistance_ohm"]).all()
    assert a.smu.meter_i.gain_error.tolist() == b.smu.meter_i.gain_error.tolist()
