"""Readings per second end to end: the SMU driver against a raw socket doing the same SCPI.

    python -m benchmarks.bench_driver_readings [--duration 0.5] [--rounds 5] [--nplc 0.01]

A `SimulatedBench` (small board, seed 0, realtime pacing off) has one branch of cell (0, 0)
closed and routed to the SMU. Three clients take readings from the same emulated Keithley
2450 over loopback TCP, one at a time (the SMU serves one host at a time), in interleaved
rounds of ``--duration`` seconds so that drifts in machine load hit all of them alike:

* ``raw socket``: a plain TCP socket sends the exact command line the driver sends for one
  reading and reads the reply line, then splits the floats (the same parsing work);
* ``driver``: ``SourceMeter.measure()`` through `drivers.keithley2450` and pyvisa-py;
* ``Lab.measure_cell``: the whole bench operation (cell mask query, output on, reading,
  output off), for reference.

The driver's setup commands are recorded from the driver itself and replayed by the raw
client, so both do exactly the same SCPI exchange. The table shows readings per second,
the median and best over rounds, and the time per reading relative to the raw socket,
paired per round (same machine load) and then the median over rounds. Aims
(`benchmarks.aims`): the driver at most 1.5x the raw exchange's time per reading (the
README's "SMU driver overhead"); `Lab.measure_cell` at most 6x (it also switches the output
on and off and confirms it: four SMU exchanges and a board query per reading). Bounded:
about ``3 x rounds x duration`` seconds plus start-up.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import serial

from benchmarks.aims import Aims
from drivers.smu import SafetyLimits, SourceMeter, open_smu
from labrss.lab import Lab
from labrss.station import parse_station
from simulator.bench import SimulatedBench

LIMITS = SafetyLimits(max_voltage_V=1.0, max_current_A=0.01)
READ_VOLTAGE_V = 0.1
CURRENT_RANGE_A = 1e-4
"""Fixed range (the small board's branches draw ~10 uA at 0.1 V): no autorange cost."""


class _Recorder:
    """Wraps a driver's adapter to record every command written."""

    def __init__(self, smu: SourceMeter) -> None:
        self.commands: list[str] = []
        adapter = smu.adapter  # type: ignore[attr-defined]
        self._write: Callable[[str], None] = adapter.write

        def write(command: str) -> None:
            self.commands.append(command)
            self._write(command)

        adapter.write = write

    def take(self) -> list[str]:
        taken, self.commands = self.commands, []
        return taken


def _prepare_board(bench: SimulatedBench) -> None:
    """Close branch 0 of cell (0, 0) and route it to the SMU, over the board protocol."""
    with serial.serial_for_url(bench.board_url, timeout=2.0) as port:
        for line in ("SW:CELL 0,0,1", "ROUT:CELL 0,0,2W"):
            port.write(line.encode() + b"\n")
            reply = port.readline().decode().strip()
            if reply != "OK":
                raise RuntimeError(f"board replied {reply!r} to {line!r}")
    bench.wait_until_idle()


@contextmanager
def _driver(bench: SimulatedBench, nplc: float) -> Iterator[tuple[SourceMeter, _Recorder]]:
    smu = open_smu("keithley2450", bench.smu_resource, LIMITS)
    recorder = _Recorder(smu)
    try:
        smu.configure_voltage_source(READ_VOLTAGE_V, LIMITS.max_current_A)
        smu.configure_measurement(nplc=nplc, current_range_A=CURRENT_RANGE_A)
        smu.enable_output()
        yield smu, recorder
    finally:
        smu.shutdown()
        smu.close()
        bench.wait_until_idle()


def _rate(step: Callable[[], object], duration_s: float) -> float:
    """Readings per second of ``step`` over about ``duration_s`` (after one warm-up call)."""
    step()
    n = 0
    start = time.perf_counter()
    deadline = start + duration_s
    while True:
        step()
        n += 1
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def _driver_round(bench: SimulatedBench, nplc: float, duration_s: float) -> float:
    with _driver(bench, nplc) as (smu, _):
        return _rate(smu.measure, duration_s)


def _raw_round(bench: SimulatedBench, setup: list[str], command: str, duration_s: float) -> float:
    sock = socket.create_connection(("127.0.0.1", bench.smu_port), timeout=5.0)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = sock.makefile("rb")
    try:

        def exchange(line: str) -> bytes:
            sock.sendall(line.encode("ascii") + b"\n")
            if "?" not in line:
                return b""
            return reader.readline()

        for line in setup:
            exchange(line)

        def reading() -> list[float]:
            reply = exchange(command).decode("ascii").strip()
            values, tripped, range_A = reply.split(";")
            return [float(v) for v in values.split(",")] + [float(tripped), float(range_A)]

        rate = _rate(reading, duration_s)
        for line in (":SOUR:VOLT 0", ":OUTP OFF", "*OPC?"):
            exchange(line)
    finally:
        reader.close()  # the socket only closes once its file objects are closed too
        sock.close()
    if not bench.wait_until_idle():
        raise RuntimeError("the SMU emulator did not see the raw client disconnect")
    return rate


def _lab_round(bench: SimulatedBench, nplc: float, duration_s: float) -> float:
    station = parse_station(
        {
            "smu": {"address": bench.smu_resource},
            "board": {"address": bench.board_url},
            "measurement": {"nplc": nplc, "current_range_A": CURRENT_RANGE_A},
        }
    )
    with Lab(station) as lab:
        lab.set_cell_mask(0, 0, 1)
        rate = _rate(lambda: lab.measure_cell(0, 0), duration_s)
    bench.wait_until_idle()
    _prepare_board(bench)  # Lab left the bench safe: close and route the branch again
    return rate


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=0.5, help="seconds per client and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--nplc", type=float, default=0.01)
    args = parser.parse_args(argv)

    with SimulatedBench("small", seed=0, realtime_factor=0.0) as bench:
        _prepare_board(bench)
        # Record the driver's exact setup and reading commands.
        with _driver(bench, args.nplc) as (smu, recorder):
            setup = recorder.take()
            smu.measure()
            reading_commands = recorder.take()
        if len(reading_commands) != 1:
            raise RuntimeError(f"expected one command per reading, got {reading_commands}")
        command = reading_commands[0]

        rates: dict[str, list[float]] = {"raw socket": [], "driver": [], "Lab.measure_cell": []}
        for _ in range(args.rounds):
            rates["raw socket"].append(_raw_round(bench, setup, command, args.duration))
            rates["driver"].append(_driver_round(bench, args.nplc, args.duration))
            rates["Lab.measure_cell"].append(_lab_round(bench, args.nplc, args.duration))

    print(
        f"SMU readings per second, Keithley 2450 emulator, NPLC {args.nplc:g}, "
        f"{args.rounds} rounds x {args.duration:g} s, realtime pacing off"
    )
    print(f"reading command: {command}")
    print(
        f"{'client':<18} {'median/s':>9} {'best/s':>8} {'time ratio vs raw (median of rounds)':>38}"
    )
    raw = rates["raw socket"]
    for name, values in rates.items():
        # Paired ratio per round (same machine load), then the median over rounds.
        ratio = statistics.median(r / v for r, v in zip(raw, values, strict=True))
        print(f"{name:<18} {statistics.median(values):>9.0f} {max(values):>8.0f} {ratio:>37.2f}x")
    aims = Aims("bench_driver_readings")
    driver_ratio = statistics.median(r / v for r, v in zip(raw, rates["driver"], strict=True))
    aims.at_most(
        "SMU driver time per reading / raw socket",
        driver_ratio,
        1.5,
        unit="x",
        includes=f"one reading ({command.split()[0]} ...) through pyvisa-py and the "
        f"Keithley 2450 driver vs the same line on a bare socket, NPLC {args.nplc:g}, "
        "virtual aperture (no real integration time): the exchange and parsing only; "
        "median of per-round paired ratios",
    )
    lab_ratio = statistics.median(
        r / v for r, v in zip(raw, rates["Lab.measure_cell"], strict=True)
    )
    aims.at_most(
        "Lab.measure_cell time per reading / raw socket",
        lab_ratio,
        6.0,
        unit="x",
        includes="cell mask query, output on, reading, output off and its confirmation",
    )
    return aims.finish()


if __name__ == "__main__":
    raise SystemExit(main())
