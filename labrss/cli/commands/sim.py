"""`labrss sim`: serve the simulated bench (SMU + crossbar board) until interrupted.

Prints exactly two lines on stdout, then serves until SIGINT or SIGTERM (exit code 0):

    smu: TCPIP0::127.0.0.1::P::SOCKET
    board: socket://127.0.0.1:Q

With ``--vxi11`` the SMU is also served over VXI-11, as LAN instruments advertise it, and a
third line names its INSTR resource; ``--portmapper`` adds a portmapper on port 111 (it needs
root, or a lowered ``net.ipv4.ip_unprivileged_port_start``) so that the resource is the
plain ``TCPIP0::127.0.0.1::inst0::INSTR`` every VISA library understands; without it the
resource carries the port (``TCPIP0::127.0.0.1,P::inst0::INSTR``, pyvisa-py only), and a
portmapper that cannot bind 111 is one line on stderr, not an error:

    smu-vxi11: TCPIP0::127.0.0.1::inst0::INSTR

``--dump-truth FILE`` writes the board's ground truth (.json or .npz) and exits without
serving; ``--netlist FILE`` writes the board as a SPICE netlist (`simulator.spice`) in the
state given by ``--route`` and ``--close`` (default: the power-up state, everything open)
and exits. Errors (a port in use, a bad preset or board file) are one line on stderr and exit
code 2.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import tomllib
from pathlib import Path
from types import FrameType
from typing import Any

SMU_MODELS = ("2450", "B2901A", "B2902A", "2400")
"""The `--smu-model` choices (the same as `simulator.bench.SMU_MODELS`, kept here so that
`labrss --help` does not import the simulator)."""
BENCHES = ("crossbar", "switch-matrix")
"""The `--bench` choices (`simulator.bench.BENCHES`)."""

PORTMAPPER_PORT = 111
"""Where VISA libraries ask for a VXI-11 instrument's port."""

EXIT_OK = 0
EXIT_ERROR = 2

# What a bad command line, a bad board file or a taken port can raise while the bench is
# built and started. Anything else is a bug and keeps its traceback.
_USER_ERRORS = (OSError, ValueError, KeyError, TypeError, tomllib.TOMLDecodeError)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `sim` sub-command."""
    parser = subparsers.add_parser(
        "sim",
        help="serve the simulated bench (SMU and board) on loopback TCP ports",
        description=(
            "Serve a simulated Keithley 2450 (or Keysight B2900, or Keithley 2400) and "
            "crossbar board on 127.0.0.1 until SIGINT/SIGTERM. Prints 'smu: <VISA resource>' and "
            "'board: <pyserial URL>', one per line. With --bench switch-matrix: a Keysight "
            "34980A matrix in front of a passive array instead of the board ('board: <VISA "
            "resource>', and 'layout: <file>' for the keysight34980a driver)."
        ),
    )
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="board seed (>= 0)")
    parser.add_argument(
        "--board",
        default="default",
        metavar="PRESET|FILE",
        help="board preset (small, default, large, memristor, mixed) or a TOML board file",
    )
    parser.add_argument("--smu-port", type=_port, default=0, metavar="P", help="0: any free port")
    parser.add_argument("--board-port", type=_port, default=0, metavar="Q", help="0: any free port")
    parser.add_argument("--smu-model", choices=SMU_MODELS, default="2450")
    parser.add_argument(
        "--bench",
        choices=BENCHES,
        default="crossbar",
        help="the simulated bench (switch-matrix: --board names a switch-matrix preset, "
        "switch-matrix or switch-matrix-worn, or a bench file)",
    )
    parser.add_argument(
        "--vxi11",
        action="store_true",
        help="also serve the SMU over VXI-11 (prints 'smu-vxi11: <INSTR resource>')",
    )
    parser.add_argument(
        "--portmapper",
        action="store_true",
        help="with VXI-11, a portmapper on port 111 (needs root): the resource needs no port",
    )
    parser.add_argument(
        "--realtime",
        type=_non_negative_float,
        default=0.0,
        metavar="FACTOR",
        help="pace the virtual clock: 1 = real time, 10 = ten times faster, 0 = no pacing",
    )
    parser.add_argument(
        "--thermal",
        action="store_true",
        help="also serve a thermal stage under the board (a Lake Shore 336 on a VISA socket); "
        "the board's temperature then follows the stage",
    )
    parser.add_argument(
        "--thermal-port", type=_port, default=0, metavar="T", help="0: any free port"
    )
    parser.add_argument(
        "--dump-truth",
        type=Path,
        metavar="FILE",
        help="write the board's ground truth (.json or .npz) and exit without serving",
    )
    parser.add_argument(
        "--netlist",
        type=Path,
        metavar="FILE",
        help="write the board as a SPICE netlist (ngspice -b FILE) and exit without serving",
    )
    parser.add_argument(
        "--route",
        default="open",
        metavar="SPEC",
        help="routing for --netlist: open, cell:R,C, cell4w:R,C, mvm_adc or mvm_smu:C",
    )
    parser.add_argument(
        "--close",
        choices=("none", "all", "random"),
        default="none",
        help="switches for --netlist: all open, all closed, or half closed at random (--seed)",
    )
    parser.add_argument(
        "--force-V",
        type=float,
        default=1.0,
        metavar="V",
        help="SMU force voltage written into the --netlist sources (V)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the bench, then dump the truth or serve until a signal; return the exit code."""
    from simulator.bench import SimulatedBench
    from simulator.truth import dump_truth

    try:
        bench = SimulatedBench(
            args.board,
            args.seed,
            smu_model=args.smu_model,
            smu_port=args.smu_port,
            board_port=args.board_port,
            realtime_factor=args.realtime,
            bench=args.bench,
            vxi11=args.vxi11 or args.portmapper,
            portmapper_port=PORTMAPPER_PORT if args.portmapper else None,
            thermal=bool(args.thermal),
            thermal_port=args.thermal_port,
        )
        if args.dump_truth is not None:
            dump_truth(bench.model, args.dump_truth)
            print(f"truth: {args.dump_truth}", flush=True)
            return EXIT_OK
        if args.netlist is not None:
            _write_netlist(bench.model, args)
            print(f"netlist: {args.netlist}", flush=True)
            return EXIT_OK
        bench.start()
    except _USER_ERRORS as exc:
        return _fail(exc)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"smu: {bench.smu_resource}", flush=True)
        print(f"board: {bench.board_address}", flush=True)
        if bench.matrix is not None:
            print(f"layout: {bench.matrix.layout_path}", flush=True)
        if bench.stage is not None:
            print(f"thermal: {bench.thermal_resource}", flush=True)
        if args.vxi11 or args.portmapper:
            if bench.portmapper_error is not None:
                print(f"labrss sim: no portmapper: {bench.portmapper_error}", file=sys.stderr)
            print(f"smu-vxi11: {bench.smu_instr_resource}", flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        bench.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_OK


def _write_netlist(model: Any, args: argparse.Namespace) -> None:
    """Put the model in the requested state and write its SPICE netlist."""
    import numpy as np

    from simulator.board_model import Routing
    from simulator.spice import write_board_netlist

    shape = model.geometry.shape
    if args.close == "all":
        model.set_switches(np.ones(shape, dtype=bool))
    elif args.close == "random":
        model.set_switches(np.random.default_rng(args.seed).random(shape) < 0.5)
    model.set_routing(_routing(args.route, Routing))
    write_board_netlist(model, args.netlist, args.force_V)


def _routing(spec: str, routing_cls: Any) -> Any:
    """``open``, ``cell:R,C``, ``cell4w:R,C``, ``mvm_adc`` or ``mvm_smu:C`` as a Routing."""
    kind, _, where = spec.partition(":")
    try:
        numbers = [int(x) for x in where.split(",")] if where else []
    except ValueError:
        raise ValueError(f"--route {spec!r}: row and column must be integers") from None
    if kind in ("open", "mvm_adc") and not numbers:
        return routing_cls(kind)
    if kind in ("cell", "cell4w") and len(numbers) == 2:
        return routing_cls("cell", numbers[0], numbers[1], four_wire=kind == "cell4w")
    if kind == "mvm_smu" and len(numbers) == 1:
        return routing_cls("mvm_smu", col=numbers[0])
    raise ValueError(f"--route {spec!r}: expected open, cell:R,C, cell4w:R,C, mvm_adc or mvm_smu:C")


def _fail(exc: BaseException) -> int:
    message = " ".join(str(exc).split()) or type(exc).__name__
    print(f"labrss sim: error: {message}", file=sys.stderr, flush=True)
    return EXIT_ERROR


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} not in 0..65535")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number >= 0")
    return value
