"""SCPI queries per second to the simulated SMU over the loopback socket: pyvisa-py vs raw.

Two exchanges, each timed through pyvisa-py (``TCPIP0::127.0.0.1::P::SOCKET``, the way the
drivers talk to it) and through a bare TCP socket doing the same write + read-line (the
baseline: the server and emulator cost alone). The ratio pyvisa/raw is the client
library's overhead.

* ``*IDN?``: the cheapest query; measures the transport and the server.
* ``:MEAS:CURR?`` at NPLC 0.01 on a routed cell (realtime pacing off, so the aperture costs
  virtual time only): adds the emulator's measurement model and the board's nodal solve.

Rounds alternate raw and pyvisa so drifts in machine load hit both; the table shows the
median rate over rounds. Seeded bench; each measurement is bounded by ``--seconds``.
Aims (`benchmarks.aims`): on ``:MEAS:CURR?`` (the exchange a reading makes) pyvisa-py keeps
at least half the raw socket's rate (its overhead at most doubles the exchange); on the
trivial ``*IDN?``, where the client's own work is most of the exchange, at least 0.3.

    python -m benchmarks.bench_scpi_socket [--seconds 0.5] [--rounds 3] [--board small]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time
from collections.abc import Callable, Sequence

import pyvisa
from pyvisa.resources import MessageBasedResource

from benchmarks.aims import Aims
from simulator.bench import SimulatedBench

SMU_SETUP = (
    "*RST",
    ":SOUR:FUNC VOLT",
    ":SOUR:VOLT:RANG 2",
    ":SOUR:VOLT 0.2",
    ":SOUR:VOLT:ILIM 0.01",
    ':SENS:FUNC "CURR"',
    ":SENS:CURR:RANG:AUTO OFF",
    ":SENS:CURR:RANG 0.01",
    ":SENS:CURR:NPLC 0.01",
    ":OUTP ON",
)
"""Source 0.2 V, measure current on the 10 mA range at NPLC 0.01 (2450 native SCPI)."""

BOARD_SETUP = ("SW:CELL 0,0,FF", "ROUT:CELL 0,0,2W")
"""Close every branch of cell (0, 0) (up to 8 branches) and route the SMU to it."""


class RawClient:
    """The baseline: a bare TCP socket, one write and one LF-terminated read per query."""

    def __init__(self, host: str, port: int, timeout_s: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""

    def write(self, line: str) -> None:
        self.sock.sendall(line.encode("ascii") + b"\n")

    def query(self, line: str) -> str:
        self.write(line)
        while b"\n" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"the simulator closed the connection during {line!r}")
            self._buf += chunk
        reply, _, self._buf = self._buf.partition(b"\n")
        return reply.decode("ascii")

    def close(self) -> None:
        self.sock.close()


def rate(query: Callable[[str], str], command: str, seconds: float) -> float:
    """Queries per second of ``command`` over ``seconds`` (after 20 warm-up queries)."""
    for _ in range(20):
        query(command)
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        query(command)
        n += 1
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - t0)


def configure(bench: SimulatedBench) -> None:
    """Route a cell to the SMU (over the board socket) and set the SMU up (raw socket)."""
    host, board_port = bench.board_url.removeprefix("socket://").split(":")
    board = RawClient(host, int(board_port))
    for line in BOARD_SETUP:
        if (reply := board.query(line)) != "OK":
            raise RuntimeError(f"board refused {line!r}: {reply}")
    board.close()
    smu = RawClient(host, bench.smu_port)
    for line in SMU_SETUP:
        smu.write(line)
    current_A = float(smu.query(":MEAS:CURR?"))
    if not 0 < current_A < 0.01:  # a routed bank of kohm resistors at 0.2 V: 10s of uA
        raise RuntimeError(f"implausible reading {current_A} A: the cell is not routed")
    if (errors := smu.query(":SYST:ERR:COUN?")) not in {"0", "+0"}:
        raise RuntimeError(f"the SMU set-up left {errors} errors: {smu.query(':SYST:ERR?')}")
    smu.close()
    bench.wait_until_idle()


def run(board: str, seed: int, seconds: float, rounds: int) -> list[tuple[str, float, float]]:
    """Median queries/s (raw, pyvisa) per command; returns (command, raw, pyvisa) rows."""
    commands = ("*IDN?", ":MEAS:CURR?")
    samples: dict[str, tuple[list[float], list[float]]] = {c: ([], []) for c in commands}
    rm = pyvisa.ResourceManager("@py")
    with SimulatedBench(board, seed) as bench:
        configure(bench)
        for _ in range(rounds):
            for command in commands:
                raw = RawClient("127.0.0.1", bench.smu_port)
                samples[command][0].append(rate(raw.query, command, seconds))
                raw.close()
                bench.wait_until_idle()
                inst = rm.open_resource(
                    bench.smu_resource, read_termination="\n", write_termination="\n"
                )
                assert isinstance(inst, MessageBasedResource)
                samples[command][1].append(rate(inst.query, command, seconds))
                inst.close()
                bench.wait_until_idle()
    rm.close()
    return [(c, statistics.median(r), statistics.median(p)) for c, (r, p) in samples.items()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=0.5, help="per measurement (s)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--board", default="small", help="board preset")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = run(args.board, args.seed, args.seconds, args.rounds)
    print(
        f"SCPI over loopback TCP to the simulated 2450 (board {args.board!r}, seed {args.seed}, "
        f"median of {args.rounds} rounds x {args.seconds} s)"
    )
    print(f"{'query':<14}{'raw socket q/s':>16}{'pyvisa-py q/s':>16}{'pyvisa/raw':>12}")
    aims = Aims("bench_scpi_socket")
    for command, raw, pv in rows:
        print(f"{command:<14}{raw:>16.0f}{pv:>16.0f}{pv / raw:>12.2f}")
        aims.at_least(
            f"{command} queries/s, pyvisa-py / raw socket",
            pv / raw,
            0.3 if command == "*IDN?" else 0.5,
            includes="write + read-line over loopback TCP, median of alternating rounds",
        )
    return aims.finish()


if __name__ == "__main__":
    raise SystemExit(main())
