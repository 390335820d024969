"""`SimulatedBench`: the whole simulated bench (board + SMU) on loopback TCP ports.

One object builds everything a bench has: the virtual clock, the seeded board model, the
SMU emulator wired to the board's SMU port, the board protocol, and the two line servers
(`simulator.line_server`). Clients reach it exactly as they reach hardware: pyvisa-py opens
``smu_resource`` (``TCPIP0::127.0.0.1::P::SOCKET``, read/write termination ``"\\n"``),
pyserial opens ``board_url`` (``socket://127.0.0.1:Q``). ``labrss sim`` and the embedded
default (no station file) both use it.

With ``vxi11=True`` the SMU is also served over VXI-11 (`simulator.vxi11_server`), as LAN
instruments advertise it: ``smu_instr_resource`` is ``TCPIP0::127.0.0.1::inst0::INSTR``
when a portmapper runs on port 111 (``portmapper_port=111`` and the machine lets the
simulator bind it), else ``TCPIP0::127.0.0.1,P::inst0::INSTR`` (the core channel's port in
the resource, which pyvisa-py accepts). One instrument, two LAN interfaces: both reach the
same emulator.

    with SimulatedBench("small", seed=42) as bench:
        rm = pyvisa.ResourceManager("@py")
        smu = rm.open_resource(bench.smu_resource, read_termination="\\n",
                               write_termination="\\n")
        board = serial.serial_for_url(bench.board_url, timeout=2)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Final

import numpy as np

from simulator.board_config import BoardConfig, load_board_config
from simulator.board_emulator import BoardProtocol
from simulator.board_model import BoardModel
from simulator.clock import VirtualClock
from simulator.keithley2400_emulator import Keithley2400Emulator
from simulator.keithley2450_emulator import Keithley2450Emulator
from simulator.keysight34980a_emulator import Keysight34980AEmulator
from simulator.keysight_b2900_emulator import KeysightB2900Emulator
from simulator.lakeshore336_emulator import LakeShore336Emulator
from simulator.line_server import LineServer, LineSession
from simulator.matrix_bench import MatrixBenchConfig, load_matrix_bench
from simulator.port_model import OPEN_CIRCUIT, PortModel
from simulator.portmapper import PMAP_PORT, PortMapper
from simulator.thermal_stage import ThermalStage, ThermalStageConfig
from simulator.vxi11_server import DEVICE_CORE, VERSION, Vxi11Server

BENCHES: Final = ("crossbar", "switch-matrix")
"""The benches `SimulatedBench` builds."""
SMU_MODELS: Final = ("2450", "B2901A", "B2902A", "2400")
"""SMU models the bench can emulate: Keithley 2450 (native SCPI), Keysight B2901A/B2902A,
Keithley 2400."""

BOARD_BUSY_REPLY: Final = 'ERR -200,"Execution error; board busy: another host is connected"'
"""The line a second host gets from the board before it is closed (docs/board-protocol.md)."""

LOOPBACK: Final = "127.0.0.1"


def board_internal_error_reply(line: str, exc: BaseException) -> str:
    """The board's reply when its emulator raised on ``line`` (a simulator bug, logged).

    A board answers every line, so the host gets a generic execution error instead of a
    timeout; the exception type is named so the bug can be found in the log.
    """
    return (
        f'ERR -200,"Execution error; internal error in the board emulator '
        f'({type(exc).__name__}) on {line[:40]!r}"'
    )


class SimulatedBench:
    """A simulated board and SMU served on loopback TCP ports; a context manager.

    Args:
        board: a preset name ("small", "default", "large", "memristor", "mixed"), a TOML
            file path, or a `BoardConfig`.
        seed: the board and every random stream of the bench derive from it (>= 0).
        smu_model: "2450", "B2901A", "B2902A" or "2400". On a B2902A, channel 1 is wired to the
            board's SMU port and channel 2 to nothing (an open circuit).
        smu_port, board_port: TCP ports on 127.0.0.1; 0 picks a free one.
        realtime_factor: pacing of the virtual clock (0: never sleeps; 1: real time).
        bench: ``"crossbar"`` (the labrss crossbar board on a serial socket) or
            ``"switch-matrix"`` (a Keysight 34980A switching matrix in front of a passive
            array, SCPI on a VISA socket; ``board`` then names a switch-matrix bench preset
            or file, `simulator.matrix_bench`).
        board_protocol: what speaks for the board on its serial socket:
            ``board_protocol(model)`` returns a line session (`simulator.line_server.
            LineSession`); None: the labrss board protocol (`BoardProtocol`). A driver
            plug-in for a board with its own protocol emulates it this way, on the
            simulated board's physics (docs/drivers.md).
        vxi11: also serve the SMU over VXI-11 (``smu_instr_resource``).
        portmapper_port: with ``vxi11``, run a portmapper on this TCP/UDP port (111 for
            clients that ask there: pyvisa-py, NI-VISA) registering the core channel;
            None: no portmapper. Not fatal when the port cannot be bound:
            ``portmapper_error`` says why and the resource carries the port instead.
        thermal: a temperature-controlled stage under the board (`simulator.thermal_stage`;
            True: the default `ThermalStageConfig`), its Lake Shore 336 controller served on
            ``thermal_resource``; the board's temperature then follows the stage. None or
            False (the default): no stage, the board sits in the room as before.
        thermal_port: the controller's TCP port (0 picks a free one).

    Attributes:
        model: the board model; ground truth for tests and studies only. While hosts are
            connected, hold ``lock`` around any direct use of it.
        clock: the virtual clock shared by the board and the SMU.
        smu: the SMU emulator; board: the board's protocol emulator (a line session): the
            crossbar protocol, a plug-in's, or the 34980A emulator (switch-matrix bench).
        matrix: the switch-matrix bench's configuration (None on a crossbar bench);
            ``matrix.layout_path`` is the layout file of its wiring.
        lock: serialises every emulator call (SMU and board threads never race on the model).
        stage: the thermal stage (None without ``thermal``); truth for tests only.
        thermal: the controller's emulator (None without a stage).
    """

    def __init__(
        self,
        board: str | BoardConfig = "default",
        seed: int = 0,
        *,
        smu_model: str = "2450",
        smu_port: int = 0,
        board_port: int = 0,
        realtime_factor: float = 0.0,
        board_protocol: Callable[[BoardModel], LineSession] | None = None,
        bench: str = "crossbar",
        vxi11: bool = False,
        portmapper_port: int | None = None,
        thermal: ThermalStageConfig | bool | None = None,
        thermal_port: int = 0,
    ) -> None:
        if bench not in BENCHES:
            raise ValueError(f"unknown bench {bench!r}; choose one of {BENCHES}")
        if smu_model not in SMU_MODELS:
            raise ValueError(f"unknown SMU model {smu_model!r}; choose one of {SMU_MODELS}")
        if seed < 0:
            raise ValueError(f"the bench seed must be >= 0, got {seed}")
        self.bench = bench
        self.matrix: MatrixBenchConfig | None = None
        if bench == "switch-matrix":
            if not isinstance(board, str):
                raise ValueError("a switch-matrix bench is named by a bench preset or file")
            self.matrix = load_matrix_bench(board)
            config = self.matrix.array
        else:
            config = load_board_config(board) if isinstance(board, str) else board
        self.seed = seed
        self.smu_model = smu_model
        self.clock = VirtualClock(realtime_factor=realtime_factor)
        self.model = BoardModel(config, seed, self.clock)
        self.lock = threading.Lock()
        smu_port_model: Callable[[], PortModel] = self.model.smu_port
        if self.matrix is not None:
            matrix = Keysight34980AEmulator(self.model, self.matrix, self.clock, seed)
            smu_port_model = matrix.port
        self.smu: Keithley2450Emulator | KeysightB2900Emulator | Keithley2400Emulator
        if smu_model == "2400":
            self.smu = Keithley2400Emulator(
                smu_port_model, self.clock, seed, serial=f"{seed % 10**7:07d}"
            )
        elif smu_model == "2450":
            self.smu = Keithley2450Emulator(
                smu_port_model, self.clock, seed, serial=f"{seed % 10**8:08d}"
            )
        else:
            ports: list[Callable[[], PortModel]] = [smu_port_model]
            if smu_model == "B2902A":
                ports.append(_open_circuit)
            self.smu = KeysightB2900Emulator(
                ports, self.clock, seed, model=smu_model, serial=f"MY{seed % 10**8:08d}"
            )
        self.board: LineSession
        if self.matrix is not None:
            self.board = matrix
        elif board_protocol is None:
            self.board = BoardProtocol(self.model)
        else:
            self.board = board_protocol(self.model)
        self._smu_server = LineServer(
            lambda: self.smu, name="smu", port=smu_port, lock=self.lock, busy_reply=None
        )
        self._board_server = LineServer(
            lambda: self.board,
            name="board",
            port=board_port,
            lock=self.lock,
            busy_reply=BOARD_BUSY_REPLY if self.matrix is None else None,
            internal_error_reply=board_internal_error_reply,
        )
        self._vxi11 = Vxi11Server(lambda: self.smu, name="smu", lock=self.lock) if vxi11 else None
        self.stage: ThermalStage | None = None
        self.thermal: LakeShore336Emulator | None = None
        self._thermal_server: LineServer | None = None
        if thermal is True:
            thermal = ThermalStageConfig()
        if isinstance(thermal, ThermalStageConfig):
            stage = ThermalStage(
                thermal,
                self.model.ambient_C,
                np.random.default_rng([seed, 0x7E41]),
                now_s=self.clock.now_s,
            )
            self.stage = stage
            self.model.follow_temperature(stage.board_C)
            emulator = LakeShore336Emulator(stage, self.clock, serial=f"LSA{seed % 10**4:04d}")
            self.thermal = emulator
            self._thermal_server = LineServer(
                lambda: emulator, name="thermal", port=thermal_port, lock=self.lock
            )
        self._portmapper_port = portmapper_port if vxi11 else None
        self._portmapper: PortMapper | None = None
        self.portmapper_error: str | None = None
        """Why the portmapper asked for is not running (the port could not be bound)."""
        self._started = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SimulatedBench:
        """Start both servers. Raises OSError naming the address when a port is taken."""
        if self._started:
            return self
        self._smu_server.start()
        try:
            self._board_server.start()
            if self._vxi11 is not None:
                self._vxi11.start()
            if self._thermal_server is not None:
                self._thermal_server.start()
        except BaseException:
            if self._vxi11 is not None:
                self._vxi11.close()
            self._board_server.close()
            self._smu_server.close()
            raise
        if self._vxi11 is not None and self._portmapper_port is not None:
            self._start_portmapper(self._vxi11.port, self._portmapper_port)
        self._started = True
        return self

    def _start_portmapper(self, core_port: int, port: int) -> None:
        portmapper = PortMapper(host=LOOPBACK, port=port)
        try:
            portmapper.start()
        except OSError as exc:
            self.portmapper_error = str(exc)
            return
        portmapper.register(DEVICE_CORE, VERSION, core_port)
        self._portmapper = portmapper

    def stop(self) -> None:
        """Close both servers (connected hosts are dropped; the board goes safe). Idempotent."""
        if self._portmapper is not None:
            self._portmapper.close()
            self._portmapper = None
        if self._vxi11 is not None:
            self._vxi11.close()
        if self._thermal_server is not None:
            self._thermal_server.close()
        self._board_server.close()
        self._smu_server.close()
        with self.lock:
            self.model.safe()
        self._started = False

    def __enter__(self) -> SimulatedBench:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses
    @property
    def smu_port(self) -> int:
        """The SMU's TCP port (after `start`)."""
        self._require_started()
        return self._smu_server.port

    @property
    def board_port(self) -> int:
        """The board's TCP port (after `start`)."""
        self._require_started()
        return self._board_server.port

    @property
    def smu_resource(self) -> str:
        """The VISA resource string of the SMU, e.g. ``TCPIP0::127.0.0.1::5025::SOCKET``."""
        return f"TCPIP0::{LOOPBACK}::{self.smu_port}::SOCKET"

    @property
    def board_address(self) -> str:
        """The board's address as its driver opens it: `board_url` (crossbar, serial socket)
        or a VISA resource ``TCPIP0::127.0.0.1::P::SOCKET`` (switch matrix)."""
        if self.matrix is not None:
            return f"TCPIP0::{LOOPBACK}::{self.board_port}::SOCKET"
        return self.board_url

    @property
    def thermal_resource(self) -> str:
        """The temperature controller's VISA resource ``TCPIP0::127.0.0.1::P::SOCKET``."""
        self._require_started()
        if self._thermal_server is None:
            raise RuntimeError("this bench has no thermal stage: SimulatedBench(..., thermal=...)")
        return f"TCPIP0::{LOOPBACK}::{self._thermal_server.port}::SOCKET"

    @property
    def smu_instr_resource(self) -> str:
        """The SMU's VXI-11 resource: ``TCPIP0::127.0.0.1::inst0::INSTR`` through the
        portmapper on port 111, else ``TCPIP0::127.0.0.1,P::inst0::INSTR`` (pyvisa-py)."""
        self._require_started()
        if self._vxi11 is None:
            raise RuntimeError("this bench serves no VXI-11: SimulatedBench(..., vxi11=True)")
        if self._portmapper is not None and self._portmapper.port == PMAP_PORT:
            return f"TCPIP0::{LOOPBACK}::inst0::INSTR"
        return f"TCPIP0::{LOOPBACK},{self._vxi11.port}::inst0::INSTR"

    @property
    def smu_vxi11_port(self) -> int:
        """The VXI-11 core channel's TCP port (with ``vxi11=True``)."""
        self._require_started()
        if self._vxi11 is None:
            raise RuntimeError("this bench serves no VXI-11: SimulatedBench(..., vxi11=True)")
        return self._vxi11.port

    @property
    def portmapper_port(self) -> int | None:
        """The running portmapper's port, or None."""
        return None if self._portmapper is None else self._portmapper.port

    @property
    def board_url(self) -> str:
        """The pyserial URL of the board, e.g. ``socket://127.0.0.1:5026``."""
        return f"socket://{LOOPBACK}:{self.board_port}"

    def wait_until_idle(self, timeout_s: float = 5.0) -> bool:
        """Wait until no host is connected to either server (disconnects fully handled)."""
        vxi11_idle = self._vxi11 is None or self._vxi11.wait_until_idle(timeout_s)
        thermal_idle = self._thermal_server is None or self._thermal_server.wait_until_idle(
            timeout_s
        )
        return (
            self._smu_server.wait_until_idle(timeout_s)
            and self._board_server.wait_until_idle(timeout_s)
            and vxi11_idle
            and thermal_idle
        )

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("SimulatedBench not started: use start() or a with block")


def _open_circuit() -> PortModel:
    """The port of an SMU channel wired to nothing."""
    return OPEN_CIRCUIT
