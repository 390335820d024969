"""A Keysight (Agilent) 34980A switch mainframe with matrix modules, in front of a passive array.

The SCPI subset a matrix application uses (34980A programmer's reference; the module
numbering of the 34931A/34932A/34933A user's guide):

* ``ROUTe:CLOSe <list>``, ``ROUTe:OPEN <list>``, ``ROUTe:CLOSe:EXCLusive <list>`` (opens
  every other channel of the listed channels' modules first), ``ROUTe:OPEN:ALL
  [ALL|<slot>]``; the queries ``ROUTe:CLOSe? <list>`` / ``ROUTe:OPEN? <list>`` (``1``/``0``
  per channel, comma-separated, the commanded state: a worn-out relay reads back closed);
* ``DIAGnostic:RELay:CYCLes? <list>`` (closures counted per relay, kept across ``*RST``
  and power) and ``DIAGnostic:RELay:CYCLes:CLEar <list>``;
* ``SYSTem:CTYPe? <slot>`` (``<vendor>,<module>,<serial>,<firmware>``, ``<vendor>,0,0,0``
  for an empty slot), ``SYSTem:VERSion?``, the error queue (``+0,"No error"``) and the
  common commands. ``*RST`` opens every channel.

Channel lists: ``(@1101,1203:1208,2101)``; channels are ``srcc`` (slot, matrix row,
two-digit column). A range ``a:b`` is every crosspoint of the installed modules from ``a``
to ``b`` (same slot). A channel the modules do not have is -222, nothing is switched.

**Physics** (`port`, what the SMU sees), built on the board model's public interface: the
branch crosspoints are the array's switches (the board model's switch states: contact
resistance and isolation are its switch parameters), the line crosspoints connect the
array's row and column lines to the SMU's HI, LO and GUARD:

* one row on HI, one column on LO, every other row on LO and every other column on GUARD:
  the guarded cell read (the board model's cell routing);
* several rows on HI and/or several columns on LO (a make-before-break change): the cells
  at the crossings read in parallel (the sum of their guarded ports, first order);
* a line on two buses (a row on HI and LO, a column on LO and GUARD): HI shorted to LO
  through two crosspoints;
* HI or LO connected to nothing: an open circuit. A topology with some lines floating is
  modelled as if they were guarded and counted in ``unmodelled_states`` (the driver never
  makes one; the tests check it stays 0).

Every command that moves relays takes ``operate_time_s`` of virtual time; after it the
module releases a current ``settle_current_A * exp(-t / settle_tau_s)`` into the measured
path (the matrix's settling). Each relay counts its closures; past its life (drawn per
relay, `RelayPhysics`) it no longer closes (it still reads back closed: the instrument
keeps the commanded state). ``topology_log`` records the SMU port's topology after every
command that moved a relay, for protocol-level tests of break-before-make.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from simulator.board_instance import child_rng
from simulator.board_model import OPEN_ROUTING, BoardModel, Routing
from simulator.clock import VirtualClock
from simulator.matrix_bench import MatrixBenchConfig
from simulator.matrix_wiring import MODULES
from simulator.port_model import OPEN_CIRCUIT, PortModel
from simulator.scpi import Call, Param, ScpiDevice, ScpiError, format_error

RELAY_LIFE_STREAM = 41
"""Seed stream of the relays' true lives (`simulator.board_instance.child_rng`)."""
MODULE_FIRMWARE = "1.00"


class MatrixChannels(Param):
    """A 34980A channel list ``(@sccc,...,a:b)`` of installed crosspoints."""

    def __init__(self, valid: set[int], *, name: str = "channel list") -> None:
        self.valid = valid
        self.sorted = sorted(valid)
        self.name = name
        self.optional = False

    def convert(self, raw: str) -> Any:
        text = raw.strip()
        match = re.match(r"^\(@([\d\s,:]*)\)$", text)
        if not match:
            raise ScpiError(-104, f"{self.name}: expected (@sccc[,...]), got {text!r}")
        channels: list[int] = []
        for part in match.group(1).split(","):
            part = part.strip()
            if ":" in part:
                a_text, _, b_text = part.partition(":")
                if not (a_text.strip().isdigit() and b_text.strip().isdigit()):
                    raise ScpiError(-102, f"{self.name}: bad range {part!r}")
                a, b = sorted((int(a_text), int(b_text)))
                if a // 1000 != b // 1000:
                    raise ScpiError(-222, f"{self.name}: range {part} spans two slots")
                for ch in (a, b):
                    if ch not in self.valid:
                        raise ScpiError(-222, f"{self.name}: channel {ch} not installed")
                channels.extend(ch for ch in self.sorted if a <= ch <= b)
            elif part.isdigit():
                ch = int(part)
                if ch not in self.valid:
                    raise ScpiError(-222, f"{self.name}: channel {ch} not installed")
                channels.append(ch)
            else:
                raise ScpiError(-102, f"{self.name}: bad entry {part!r} in {text}")
        return tuple(channels)


class _Slot(Param):
    """``ALL`` or a slot 1..8 (``ROUT:OPEN:ALL``)."""

    def __init__(self) -> None:
        self.name = "slot"
        self.optional = True

    def convert(self, raw: str) -> Any:
        text = raw.strip().upper()
        if text == "ALL":
            return 0
        if text.isdigit() and 1 <= int(text) <= 8:
            return int(text)
        raise ScpiError(-224, f"slot {raw!r}: ALL or 1..8")


class Keysight34980AEmulator(ScpiDevice):
    """The mainframe, its modules and the array behind them (see the module docstring).

    Args:
        model: the passive array's board model (its DACs and ADCs are never routed).
        config: the bench (`simulator.matrix_bench.MatrixBenchConfig`).
        clock: the virtual clock shared with the SMU.
        seed: the bench seed (relay lives, serial numbers).
    """

    def __init__(
        self, model: BoardModel, config: MatrixBenchConfig, clock: VirtualClock, seed: int
    ) -> None:
        super().__init__(f"{config.model} (simulated)")
        self.model = model
        self.config = config
        self.wiring = config.wiring
        self.clock = clock
        self.serial = f"MY{seed % 10**8:08d}"
        self._valid = self.wiring.valid_channels()
        channels = sorted(self._valid)
        self._index = {ch: i for i, ch in enumerate(channels)}
        self._channels = np.asarray(channels)
        n = len(channels)
        relays = config.relays
        self.closed = np.zeros(n, dtype=bool)
        self.cycles = np.full(n, relays.initial_cycles, dtype=np.int64)
        self.cleared_at = np.zeros(n, dtype=np.int64)
        rng = child_rng(seed, RELAY_LIFE_STREAM)
        self.life = np.asarray(
            relays.rated_operations * relays.life_scale * rng.weibull(relays.life_shape, n),
            dtype=np.float64,
        )
        for ch, (cycles, life) in relays.worn.items():
            i = self._index[ch]
            self.cycles[i] = cycles
            if life > 0:
                self.life[i] = life
        self._last_operation_s = -math.inf
        self.topology = "open"
        self.topology_log: list[str] = []
        self.unmodelled_states = 0
        self._cells: list[tuple[int, int]] = []
        self._short = False
        self._register()

    # ------------------------------------------------------------------ commands
    def _register(self) -> None:
        chans = MatrixChannels(self._valid)
        self.add(":ROUTe:CLOSe", set=self._close, query=self._closed_q, params=[chans],
                 query_params=[chans])  # fmt: skip
        self.add(":ROUTe:CLOSe:EXCLusive", set=self._close_exclusive, params=[chans])
        self.add(":ROUTe:OPEN", set=self._open, query=self._open_q, params=[chans],
                 query_params=[chans])  # fmt: skip
        self.add(":ROUTe:OPEN:ALL", set=self._open_all, params=[_Slot()])
        self.add(":SYSTem:CTYPe", query=self._ctype, query_params=[_SlotNumber()])
        self.add(":SYSTem:VERSion", query=lambda c: "1994.0")
        self.add(":DIAGnostic:RELay:CYCLes", query=self._cycles_q, query_params=[chans])
        self.add(":DIAGnostic:RELay:CYCLes:CLEar", set=self._cycles_clear, params=[chans])
        self.add_not_emulated(":ROUTe:SCAN", "scanning")
        self.add_not_emulated(":ROUTe:SEQuence", "sequences")
        self.add_not_emulated(":MEASure", "the internal DMM")
        self.add_not_emulated(":CONFigure", "the internal DMM")

    def identity(self) -> str:
        """``*IDN?``: ``<vendor>,34980A,<serial>,<firmware>``."""
        c = self.config
        return f"{c.vendor},{c.model},{self.serial},{c.firmware}"

    def error_reply(self, code: int, message: str) -> str:
        """Agilent prints the code with a sign: ``+0,"No error"``."""
        return format_error(code, message).replace(f"{code},", f"{code:+d},", 1)

    def reset(self) -> None:
        """``*RST``: every channel open (the relay counts stay)."""
        self._set(np.zeros_like(self.closed))

    def on_disconnect(self) -> None:
        """The host went away: latching relays keep their state (unlike the crossbar board)."""

    def _indices(self, channels: tuple[int, ...]) -> list[int]:
        return [self._index[ch] for ch in channels]

    def _close(self, call: Call) -> None:
        new = self.closed.copy()
        new[self._indices(call.args[0])] = True
        self._set(new)

    def _close_exclusive(self, call: Call) -> None:
        listed = call.args[0]
        slots = {ch // 1000 for ch in listed}
        new = self.closed.copy()
        new[np.isin(self._channels // 1000, list(slots))] = False
        self._set(new)  # open first (break-before-make), then close
        new = self.closed.copy()
        new[self._indices(listed)] = True
        self._set(new)

    def _open(self, call: Call) -> None:
        new = self.closed.copy()
        new[self._indices(call.args[0])] = False
        self._set(new)

    def _open_all(self, call: Call) -> None:
        slot = call.args[0] if call.args else 0
        new = self.closed.copy()
        if slot == 0:
            new[:] = False
        else:
            if slot not in self.wiring.modules:
                raise ScpiError(-222, f"ROUT:OPEN:ALL {slot}: no module in slot {slot}")
            new[self._channels // 1000 == slot] = False
        self._set(new)

    def _closed_q(self, call: Call) -> str:
        return ",".join("1" if self.closed[i] else "0" for i in self._indices(call.args[0]))

    def _open_q(self, call: Call) -> str:
        return ",".join("0" if self.closed[i] else "1" for i in self._indices(call.args[0]))

    def _cycles_q(self, call: Call) -> str:
        idx = self._indices(call.args[0])
        return ",".join(f"{int(self.cycles[i] - self.cleared_at[i]):+d}" for i in idx)

    def _cycles_clear(self, call: Call) -> None:
        idx = self._indices(call.args[0])
        self.cleared_at[idx] = self.cycles[idx]

    def _ctype(self, call: Call) -> str:
        slot = int(call.args[0])
        model = self.wiring.modules.get(slot)
        vendor = self.config.vendor
        if model is None:
            return f"{vendor},0,0,0"
        return f"{vendor},{model},{self.serial[-6:]}{slot:02d},{MODULE_FIRMWARE}"

    # ------------------------------------------------------------------ relays and physics
    def _set(self, new: np.ndarray) -> None:
        """Move the relays to ``new`` (commanded states); count closures; update the model."""
        if np.array_equal(new, self.closed):
            return
        closing = new & ~self.closed
        self.cycles[closing] += 1
        self.closed = new
        self.clock.advance(self.config.relays.operate_time_s)
        self._last_operation_s = self.clock.now_s
        self._apply()
        self.topology_log.append(self.topology)

    def effective(self) -> np.ndarray:
        """Which relays really conduct: commanded closed and not worn out (truth)."""
        return self.closed & (self.cycles <= self.life)

    def _conducts(self, channel: int) -> bool:
        i = self._index[channel]
        return bool(self.closed[i] and self.cycles[i] <= self.life[i])

    def _apply(self) -> None:
        """The board model's switches and routing from the relays; the port topology."""
        w = self.wiring
        switches = np.zeros((w.rows, w.cols, w.branches), dtype=bool)
        for (r, c, k), ch in w.branch_channel.items():
            switches[r, c, k] = self._conducts(ch)
        self.model.set_switches(switches)
        on = {key: self._conducts(ch) for key, ch in w.line_channel.items()}
        hi_rows = [r for r in range(w.rows) if on[("row", r, "HI")]]
        lo_rows = [r for r in range(w.rows) if on[("row", r, "LO")]]
        lo_cols = [c for c in range(w.cols) if on[("col", c, "LO")]]
        guard_cols = [c for c in range(w.cols) if on[("col", c, "GUARD")]]
        self._short = bool(set(hi_rows) & set(lo_rows) or set(lo_cols) & set(guard_cols))
        self._cells = []
        if self._short:
            self.topology = "short: a line on two buses (HI to LO)"
            self.model.set_routing(OPEN_ROUTING)
            return
        if not hi_rows or not lo_cols:
            self.topology = "open"
            self.model.set_routing(OPEN_ROUTING)
            return
        self._cells = [(r, c) for r in hi_rows for c in lo_cols]
        complete = (
            len(hi_rows) + len(lo_rows) == w.rows and len(lo_cols) + len(guard_cols) == w.cols
        )
        if not complete:
            self.unmodelled_states += 1
        cells = " ".join(f"({r},{c})" for r, c in self._cells)
        self.topology = f"cells {cells}" + ("" if complete else " (lines floating)")
        r0, c0 = self._cells[0]
        self.model.set_routing(Routing("cell", r0, c0))

    def settle_current_A(self) -> float:
        """The module's settling current now (A): decays after the last relay operation."""
        relays = self.config.relays
        if relays.settle_tau_s <= 0 or not math.isfinite(self._last_operation_s):
            return 0.0
        dt = self.clock.now_s - self._last_operation_s
        return relays.settle_current_A * math.exp(-dt / relays.settle_tau_s)

    def port(self) -> PortModel:
        """What the SMU sees (module docstring); for the SMU emulator."""
        if self._short:
            r_short = 2.0 * self.config.array.wiring.routing_switch_ohm + 1e-3
            return PortModel(g_S=1.0 / r_short, description="HI shorted to LO by the matrix")
        if not self._cells:
            return OPEN_CIRCUIT
        settle = self.settle_current_A()
        if len(self._cells) == 1:
            base = self.model.smu_port()
            return PortModel(
                g_S=base.g_S,
                i0_A=base.i0_A + settle,
                description=f"matrix: {base.description}",
                held=base.held,
            )
        g, i0 = 0.0, settle
        for r, c in self._cells:
            self.model.set_routing(Routing("cell", r, c))
            part = self.model.smu_port()
            g += part.g_S
            i0 += part.i0_A
        self.model.set_routing(Routing("cell", *self._cells[0]))
        return PortModel(g_S=g, i0_A=i0, description=f"matrix: {self.topology}")


class _SlotNumber(Param):
    """A slot 1..8 (``SYST:CTYP?``)."""

    def __init__(self) -> None:
        self.name = "slot"
        self.optional = False

    def convert(self, raw: str) -> Any:
        text = raw.strip()
        if text.isdigit() and 1 <= int(text) <= 8:
            return int(text)
        raise ScpiError(-222, f"slot {raw!r} not in 1..8")


def module_channels(model: str, slot: int) -> list[int]:
    """Every crosspoint channel of a ``model`` module in ``slot`` (for tests)."""
    n_rows, n_cols = MODULES[model]
    return [slot * 1000 + r * 100 + c for r in range(1, n_rows + 1) for c in range(1, n_cols + 1)]
