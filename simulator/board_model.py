"""The seeded physical model of the crossbar board: state, converters and nodal solves.

`BoardModel` holds what the board's microcontroller commands (switch masks, routing, DAC
codes) and the hidden physics (`board_instance.BoardInstance`: true element values,
switches, wiring, converter errors, faults; `ambient.AmbientTemperature`). Every electrical
question is answered by a nodal solve of the whole network (`crossbar_network`, `nodal`):

* `smu_port`: the linear equivalent of what is routed to the SMU (`PortModel`), from one
  factorisation and two right-hand sides (per volt of force, and the board's own sources).
* `adc_read`: the column currents into the TIAs with the DAC outputs applied, then each
  ADC's gain, offset, noise and quantisation.

Caching: the factorisation is kept until the switch state, the routing or the element
values change. Element values follow the temperature and aging and are re-evaluated only
when the virtual clock has moved by at least ``environment.update_step_s`` since the last
evaluation, so repeated reads of an unchanged configuration reuse the factorisation.

Virtual time: a switch or routing change costs ``bbm_delay_s``, a DAC write
``dac.settle_time_s``, an ADC conversion ``adc.conversion_time_s``; SMU time is the SMU
emulator's business. Thread-safe (one re-entrant lock around every public method).

Memristors (boards with ``element.kind`` memristor or mixed): their state lives in a
`simulator.memristor.MemristorArray`; `pulse` programs one branch through the board's pulse
circuit (docs/board-protocol.md, "Pulses"). Their conductance (drift included) enters the
element values like a resistor's (linear I-V at read voltages), re-evaluated with the other
values and at once after every pulse. Read noise is fresh on every SMU reading (every
`smu_port` call) and every ADC conversion, added to first order: the closed memristor
branches' conductances get independent draws dG, the SMU port conductance of a routed cell
gains the cell's sum of dG and each column current sum_r dG[r, c] V_r. The first-order error
is dG times the wires' relative effect (< 1e-3), far below dG itself, and the factorisation is
kept.

Read disturb (simulator/memristor.py, "Read disturb"): whatever voltage the network puts
across a memristor stresses it, reads included. The model integrates the stress over
virtual time, event by event: before every command that changes the network or its sources
(switches, routing, DACs, pulses, safe state) and before every reading, the interval since
the last event is applied with the configuration that held during it. Two sources drive
the devices: the board's own (DAC outputs and TIA offsets, in MVM routing) and the SMU,
which reports each reading's force voltage and duration through `PortModel.hold`
(`smu_hold`; time the SMU spends with its output on between readings is not counted).
Each device's voltage is its cell's voltage from the nodal solution, divided
between the device and its switch (``V_cell R_dev / (R_dev + r_switch)``, r_on closed,
r_off open). Creep is folded into the element values at their next re-evaluation
(``environment.update_step_s``), like drift; a stress that switched a device (above
threshold) re-evaluates them at once, like a pulse.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from simulator.ambient import AmbientTemperature
from simulator.board_config import BoardConfig, Geometry
from simulator.board_instance import (
    BoardInstance,
    ElementValues,
    draw_board_instance,
    element_values,
    environment_rng,
    noise_rng,
    pulse_noise_rng,
    read_noise_rng,
)
from simulator.clock import VirtualClock
from simulator.crossbar_network import (
    CrossbarNodes,
    CrossbarSolverCache,
    RoutingTopology,
    source_potentials,
)
from simulator.memristor import MemristorArray
from simulator.nodal import Netlist, NodalSolution, NodalSolver, single_threaded_blas
from simulator.nodal_update import UpdatedNodalSolver
from simulator.port_model import OPEN_CIRCUIT, PortModel

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

TEMPERATURE_RESOLUTION_C = 0.01
"""Resolution of the board's temperature sensor (degC)."""


class BoardStateError(RuntimeError):
    """The board is not in a state that allows the request (e.g. ADC read, not routed)."""


@dataclass(frozen=True)
class Routing:
    """The routing matrix state (docs/board-protocol.md, "Routing").

    ``open``: nothing connected; ``cell``: SMU to cell (row, col), 2- or 4-wire;
    ``mvm_adc``: rows to DACs, columns to TIA+ADCs; ``mvm_smu``: rows to DACs, column
    ``col`` to the SMU force HI, the other columns to their TIAs.
    """

    mode: Literal["open", "cell", "mvm_adc", "mvm_smu"]
    row: int | None = None
    col: int | None = None
    four_wire: bool = False

    def describe(self) -> str:
        """Human-readable routing, e.g. ``cell (2,3) 4W``."""
        if self.mode == "cell":
            return f"cell ({self.row},{self.col}) {'4W' if self.four_wire else '2W'}"
        if self.mode == "mvm_smu":
            return f"MVM, column {self.col} to the SMU"
        return {"open": "routing open", "mvm_adc": "MVM, columns to the ADCs"}[self.mode]


OPEN_ROUTING = Routing("open")


class BoardModel:
    """A simulated crossbar board: seeded hidden physics behind the board's commands.

    Args:
        config: the board's configuration (`load_board_config`).
        seed: the board instance (>= 0); same config and seed, same board, bit for bit.
        clock: the virtual clock shared with the SMU emulator (a new one if None).
        low_rank_updates: solve switch and routing changes through a cached
            factorisation (`CrossbarSolverCache`): None (default) on networks of at
            least `CrossbarSolverCache.min_free_nodes` free nodes (the large board;
            smaller ones factorise as fast as they solve), True always, False never
            (a factorisation per state: the reference of tests and benchmarks).
    """

    def __init__(
        self,
        config: BoardConfig,
        seed: int,
        clock: VirtualClock | None = None,
        *,
        low_rank_updates: bool | None = None,
    ) -> None:
        if seed < 0:
            raise ValueError(f"the board seed must be >= 0, got {seed}")
        self.config = config
        self.seed = seed
        self.clock = clock if clock is not None else VirtualClock()
        self.geometry: Geometry = config.geometry
        self.serial = f"SIM-{seed}"
        self._lock = threading.RLock()
        self._inst: BoardInstance = draw_board_instance(config, seed)
        self._ambient = AmbientTemperature(config.environment, environment_rng(seed))
        self._temperature_at: Callable[[float], float] = self._ambient.at
        self._noise = noise_rng(seed)
        self._nodes = CrossbarNodes(self.geometry.rows, self.geometry.cols)
        self._switches = np.zeros(self.geometry.shape, dtype=bool)
        self._routing = OPEN_ROUTING
        self._dac_codes = np.zeros(self.geometry.rows, dtype=np.int64)
        self._values: ElementValues | None = None
        self._solver: NodalSolver | UpdatedNodalSolver | None = None
        self._solution: NodalSolution | None = None
        self._hi_cache: tuple[NodalSolution, FloatArray] | None = None
        self._cell_g: FloatArray | None = None
        self._cell_g_values: ElementValues | None = None
        wiring = config.wiring
        self._solvers = CrossbarSolverCache(
            self._nodes,
            wire_segment_ohm=wiring.wire_segment_ohm,
            route_row_ohm=self._inst.route_row_ohm,
            route_col_ohm=self._inst.route_col_ohm,
            lead_ohm=wiring.lead_ohm,
            float_conductance_S=wiring.float_conductance_S,
            max_rank=None if low_rank_updates is not False else -1,
            force=low_rank_updates is True,
        )
        self._mem: MemristorArray | None = None
        if self._inst.memristor_devices is not None:
            self._mem = MemristorArray(
                self._inst.memristor_devices, config.memristor, pulse_noise_rng(seed)
            )
        self._read_noise = read_noise_rng(seed)
        self._mem_g_S: FloatArray | None = None
        self._pulse_counts = np.zeros(self.geometry.shape, dtype=np.int64)
        self._stress_from_s = self.clock.now_s
        """Read disturb: the board's own sources' stress is applied up to this time (s)."""

    # ------------------------------------------------------------------ validation
    def _check_row(self, r: int) -> None:
        if not 0 <= r < self.geometry.rows:
            raise ValueError(f"row {r} not in 0..{self.geometry.rows - 1}")

    def _check_col(self, c: int) -> None:
        if not 0 <= c < self.geometry.cols:
            raise ValueError(f"column {c} not in 0..{self.geometry.cols - 1}")

    def _check_mask(self, mask: int) -> None:
        k = self.geometry.branches
        if not 0 <= mask < (1 << k):
            raise ValueError(f"mask {mask:#x} has bits beyond branch {k - 1} (K = {k})")

    def _mask_bits(self, mask: int) -> BoolArray:
        return ((mask >> np.arange(self.geometry.branches)) & 1).astype(bool)

    # ------------------------------------------------------------------ switches
    @property
    def switches(self) -> BoolArray:
        """Commanded switch states (R, C, K), True = closed (a copy)."""
        with self._lock:
            return self._switches.copy()

    def cell_mask(self, r: int, c: int) -> int:
        """Commanded mask of cell (r, c): bit k = branch k closed."""
        with self._lock:
            self._check_row(r)
            self._check_col(c)
            bits = self._switches[r, c]
            return int(np.sum(bits.astype(np.int64) << np.arange(bits.size)))

    def _apply_switches(self, new: BoolArray) -> None:
        self._settle_stress()
        if np.array_equal(new, self._switches):
            return
        # The cells whose bank changed: their conductances alone are computed again
        # (a one-cell change on the large board: 16 branches instead of 65,536).
        cell_g, cell_vals = self._cell_g, self._cell_g_values
        changed = np.argwhere(np.any(new != self._switches, axis=2))
        # Break-before-make: open what must open, wait, close what must close.
        self._switches = new
        self._invalidate()
        if cell_g is not None and cell_vals is not None and len(changed) <= 64:
            rr, cc = changed[:, 0], changed[:, 1]
            inst = self._inst
            closed = (new[rr, cc] | inst.stuck_closed[rr, cc]) & ~inst.stuck_open[rr, cc]
            series = cell_vals.resistance_ohm[rr, cc] + np.where(
                closed, cell_vals.r_on_ohm[rr, cc], cell_vals.r_off_ohm[rr, cc]
            )
            cell_g = cell_g.copy()
            cell_g[rr, cc] = (1.0 / series).sum(axis=1)  # as `_cell_conductance`, bit for bit
            self._cell_g, self._cell_g_values = cell_g, cell_vals
        self.clock.advance(self.config.bbm_delay_s)

    def set_branch(self, r: int, c: int, k: int, closed: bool) -> None:
        """Command one branch switch."""
        with self._lock:
            self._check_row(r)
            self._check_col(c)
            if not 0 <= k < self.geometry.branches:
                raise ValueError(f"branch {k} not in 0..{self.geometry.branches - 1}")
            new = self._switches.copy()
            new[r, c, k] = bool(closed)
            self._apply_switches(new)

    def set_cell_mask(self, r: int, c: int, mask: int) -> None:
        """Command cell (r, c)'s whole bank: bit k of ``mask`` closes branch k."""
        with self._lock:
            self._check_row(r)
            self._check_col(c)
            self._check_mask(mask)
            new = self._switches.copy()
            new[r, c] = self._mask_bits(mask)
            self._apply_switches(new)

    def set_row_masks(self, r: int, masks: Sequence[int]) -> None:
        """Command every cell of row r (exactly C masks)."""
        with self._lock:
            self._check_row(r)
            if len(masks) != self.geometry.cols:
                raise ValueError(
                    f"row {r}: {len(masks)} masks given, the board has {self.geometry.cols} columns"
                )
            for m in masks:
                self._check_mask(m)
            new = self._switches.copy()
            for c, m in enumerate(masks):
                new[r, c] = self._mask_bits(m)
            self._apply_switches(new)

    def set_switches(self, closed: npt.ArrayLike) -> None:
        """Command every switch at once from an (R, C, K) boolean array."""
        with self._lock:
            arr = np.asarray(closed, dtype=bool)
            if arr.shape != self.geometry.shape:
                raise ValueError(f"switch array shape {arr.shape} != {self.geometry.shape}")
            self._apply_switches(arr.copy())

    def open_all_switches(self) -> None:
        """Open every branch switch."""
        with self._lock:
            self._apply_switches(np.zeros(self.geometry.shape, dtype=bool))

    def effective_switches(self) -> BoolArray:
        """The switches' true states (stuck faults override commands); truth, tests only."""
        with self._lock:
            inst = self._inst
            return (self._switches | inst.stuck_closed) & ~inst.stuck_open

    # ------------------------------------------------------------------ routing
    @property
    def routing(self) -> Routing:
        """Current routing."""
        with self._lock:
            return self._routing

    def set_routing(self, routing: Routing) -> None:
        """Route (break-before-make: everything disconnected, ``bbm_delay_s``, connect)."""
        with self._lock:
            mode = routing.mode
            if mode == "cell":
                if routing.row is None or routing.col is None:
                    raise ValueError("cell routing needs a row and a column")
                self._check_row(routing.row)
                self._check_col(routing.col)
            elif mode == "mvm_smu":
                if routing.col is None or routing.row is not None:
                    raise ValueError("MVM SMU routing needs a column and no row")
                self._check_col(routing.col)
            elif mode in ("open", "mvm_adc"):
                if routing.row is not None or routing.col is not None:
                    raise ValueError(f"{mode} routing takes no row or column")
            else:
                raise ValueError(f"unknown routing mode {mode!r}")
            if routing.four_wire and mode != "cell":
                raise ValueError("4-wire sensing exists only in cell routing")
            self._settle_stress()
            if routing != self._routing:  # the same routing again: same network
                self._routing = routing
                self._invalidate()
            self.clock.advance(self.config.bbm_delay_s)

    # ------------------------------------------------------------------ DACs
    def set_dac(self, row: int, volts_V: float) -> float:
        """Set row ``row``'s DAC; returns the voltage of the code set (V, quantised).

        Raises ValueError beyond +-dac.range_V or for a non-finite value.
        """
        with self._lock:
            self._check_row(row)
            code = self._dac_code(volts_V)
            self._settle_stress()
            self._dac_codes[row] = code
            self._solution = None
            self.clock.advance(self.config.dac.settle_time_s)
            return float(code * self.config.dac.lsb_V)

    def set_dac_all(self, volts_V: npt.ArrayLike) -> FloatArray:
        """Set every row's DAC (exactly R values); returns the quantised voltages (V)."""
        with self._lock:
            volts = np.asarray(volts_V, dtype=np.float64).ravel()
            if volts.size != self.geometry.rows:
                raise ValueError(
                    f"{volts.size} DAC voltages given, the board has {self.geometry.rows} rows"
                )
            codes = np.array([self._dac_code(float(v)) for v in volts], dtype=np.int64)
            self._settle_stress()
            self._dac_codes = codes
            self._solution = None
            self.clock.advance(self.config.dac.settle_time_s)
            return np.asarray(codes * self.config.dac.lsb_V, dtype=np.float64)

    def _dac_code(self, volts_V: float) -> int:
        dac = self.config.dac
        v = float(volts_V)
        if not (np.isfinite(v) and abs(v) <= dac.range_V):
            raise ValueError(f"DAC voltage {v} V beyond +-{dac.range_V} V")
        top = 2 ** (dac.bits - 1)
        return int(np.clip(np.rint(v / dac.lsb_V), -top, top - 1))

    def zero_dacs(self) -> None:
        """Every DAC at 0 V."""
        with self._lock:
            self._settle_stress()
            self._dac_codes = np.zeros(self.geometry.rows, dtype=np.int64)
            self._solution = None
            self.clock.advance(self.config.dac.settle_time_s)

    @property
    def dac_voltages_V(self) -> FloatArray:
        """The DAC settings (V): the voltage of each row's code."""
        with self._lock:
            return np.asarray(self._dac_codes * self.config.dac.lsb_V, dtype=np.float64)

    # ------------------------------------------------------------------ safe state
    def safe(self) -> None:
        """Every switch open, routing open, every DAC at 0 V."""
        with self._lock:
            self._settle_stress()
            self.open_all_switches()
            if self._routing != OPEN_ROUTING:
                self.set_routing(OPEN_ROUTING)
            if np.any(self._dac_codes):
                self.zero_dacs()

    def is_safe(self) -> bool:
        """Whether the commanded state is the safe state."""
        with self._lock:
            return bool(
                not self._switches.any()
                and self._routing == OPEN_ROUTING
                and not self._dac_codes.any()
            )

    # ------------------------------------------------------------------ physics
    def _invalidate(self) -> None:
        self._solver = None
        self._solution = None
        self._cell_g = None

    def _values_due(self) -> bool:
        """Whether the element values must be re-evaluated (never evaluated, or the clock
        moved by >= update_step_s since)."""
        vals = self._values
        return (
            vals is None or self.clock.now_s - vals.time_s >= self.config.environment.update_step_s
        )

    def _current_values(self) -> ElementValues:
        """Element values, re-evaluated when the clock moved by >= update_step_s."""
        now = self.clock.now_s
        if self._values_due():
            t_c = self._temperature_at(now)
            if self._mem is not None:
                self._mem_g_S = self._mem.conductance_S(now)
            self._values = element_values(self._inst, self.config, now, t_c, self._mem_g_S)
            self._invalidate()
        assert self._values is not None
        return self._values

    def _cell_conductance(self, vals: ElementValues) -> FloatArray:
        """Each cell's conductance (R, C; S) now; kept until a switch or value changes
        (every `_invalidate`): read at every reading, ~0.3 ms on the large board."""
        if self._cell_g is None or self._cell_g_values is not vals:
            closed = (self._switches | self._inst.stuck_closed) & ~self._inst.stuck_open
            self._cell_g = np.asarray(
                vals.branch_conductance_S(closed).sum(axis=2), dtype=np.float64
            )
            self._cell_g_values = vals
        return self._cell_g

    def _topology(self) -> RoutingTopology:
        r = self._routing
        return RoutingTopology(r.mode, r.row, r.col)

    @property
    def n_factorisations(self) -> int:
        """How many times a nodal matrix was factorised (for tests and benchmarks)."""
        return self._solvers.factorisations

    @property
    def n_low_rank_updates(self) -> int:
        """How many network states were solved as low-rank updates of a factorisation."""
        return self._solvers.updates

    @property
    def n_drift_updates(self) -> int:
        """How many element value updates were solved through the base factorisation."""
        return self._solvers.drift_updates

    def _get_solver(self) -> NodalSolver | UpdatedNodalSolver:
        vals = self._current_values()
        if self._solver is None:
            self._solver = self._solvers.solver(
                self._cell_conductance(vals), self._topology(), values_key=vals
            )
        return self._solver

    def _hi_current_A(self, sol: NodalSolution) -> FloatArray:
        """Current the SMU's HI terminal pushes into the board, per excitation (n_rhs,).

        Summed over the cells of the line HI is routed to (the routed row in cell routing,
        the column in MVM SMU routing): by Kirchhoff's current law that line carries
        exactly its cells' currents, and across a cell the potential difference is the
        read voltage, where the current in the 50 mohm lead is a difference of two
        potentials near the force voltage (it rounded to ~1e-4 relative on a cell of
        leakage only)."""
        routing = self._routing
        v, group_of = sol.group_potentials_V, sol.solver.group_of  # gathered per node used
        nodes = self._nodes
        g = self._cell_conductance(self._current_values())
        if routing.mode == "cell":
            assert routing.row is not None
            cols = np.arange(self.geometry.cols)
            d = (
                v[group_of[nodes.row(routing.row, cols)]]
                - v[group_of[nodes.col(routing.row, cols)]]
            )
            return np.asarray(g[routing.row] @ d)
        if routing.mode == "mvm_smu":
            assert routing.col is not None
            rows = np.arange(self.geometry.rows)
            d = (
                v[group_of[nodes.col(rows, routing.col)]]
                - v[group_of[nodes.row(rows, routing.col)]]
            )
            return np.asarray(g[:, routing.col] @ d)
        return np.zeros(v.shape[1])

    def _dac_outputs_V(self) -> FloatArray:
        """True DAC output voltages (V): gain and offset errors on the code voltage."""
        return (
            self._inst.dac_gain * (self._dac_codes * self.config.dac.lsb_V)
            + self._inst.dac_offset_V
        )

    def _solve(self) -> tuple[NodalSolver | UpdatedNodalSolver, NodalSolution]:
        solver_now, solution = self._solver, self._solution
        if (
            solver_now is not None
            and solution is not None
            and solution.solver is solver_now
            and not self._values_due()
        ):
            return solver_now, solution  # nothing moved: no BLAS limit to set
        with single_threaded_blas():
            solver = self._get_solver()
            if self._solution is None or self._solution.solver is not solver:
                excitation = source_potentials(
                    self._nodes, self._dac_outputs_V(), self._inst.tia_offset_V
                )
                self._solution = solver.solve(excitation)
            return solver, self._solution

    def network(self) -> tuple[Netlist, FloatArray]:
        """The netlist being solved now and its source potentials (n_fixed, 2): column 0 per
        volt of SMU force, column 1 the board's own sources. For independent checks (tests)."""
        with self._lock:
            solver = self._get_solver()
            excitation = source_potentials(
                self._nodes, self._dac_outputs_V(), self._inst.tia_offset_V
            )
            return solver.netlist, excitation

    def element_values(self) -> ElementValues:
        """Element and switch values now (ohm). Hidden truth: tests and exports only."""
        with self._lock:
            return self._current_values()

    def solved_state(self, force_V: float) -> tuple[FloatArray, float]:
        """The solve behind every reading, at SMU force ``force_V``: every node's
        potential (V, `nodes` numbering) and the current the SMU's HI terminal pushes into
        the board (A; meaningful in cell and MVM SMU routing). No read noise. Hidden
        truth: tests and independent checks (`simulator.spice`) only."""
        with self._lock:
            _, sol = self._solve()
            v = sol.potentials_V
            i_hi = self._hi_current_A(sol)
            return (
                np.asarray(v[:, 0] * force_V + v[:, 1], dtype=np.float64),
                float(i_hi[0] * force_V + i_hi[1]),
            )

    def solver_stats(self) -> dict[str, int]:
        """Size of the current nodal system: free nodes, nonzeros of the LU factors, and
        how many factorisations the model has done (for benchmarks and tests)."""
        with self._lock:
            solver = self._get_solver()
            return {
                "free_nodes": solver.n_free,
                "lu_nnz": solver.nnz_factor,
                "factorisations": self.n_factorisations,
                "low_rank_updates": self.n_low_rank_updates,
            }

    @property
    def nodes(self) -> CrossbarNodes:
        """The netlist's node numbering."""
        return self._nodes

    def smu_port(self) -> PortModel:
        """The linear model of what is routed to the SMU port (OPEN_CIRCUIT if nothing).

        ``g_S`` and ``i0_A`` come from one factorisation and two excitations (1 V of force
        with the board's sources at 0; the board's sources with 0 V force). In 4-wire cell
        routing the sense pair is row r and column c at the board side of the routing
        switches. In ``mvm_smu`` routing the column current flows INTO HI, so i0_A = -I_col.
        """
        with self._lock:
            self._settle_stress()
            routing = self._routing
            if routing.mode not in ("cell", "mvm_smu"):
                return OPEN_CIRCUIT
            _, sol = self._solve()
            # per volt of force, the board's sources; computed once per solved state (a
            # reading asks for the port two or three times: reading, trip flag, range)
            cached = self._hi_cache
            if cached is not None and cached[0] is sol:
                currents = cached[1]
            else:
                currents = self._hi_current_A(sol)
                self._hi_cache = (sol, currents)
            g_s, i0 = float(currents[0]), float(currents[1])
            if self._mem is not None:
                d_g = self._read_noise_cells_S()
                if routing.mode == "cell":
                    g_s += float(d_g[routing.row, routing.col])
                else:  # the column held by the SMU: I_HI = sum_r G (V - V_r)
                    column = d_g[:, routing.col]
                    g_s += float(column.sum())
                    i0 -= float(column @ self._dac_outputs_V())
            nonlinear = None
            mem = self._mem
            if (
                mem is not None
                and routing.mode == "cell"
                and np.isfinite([mem.config.iv_v0_set_V, mem.config.iv_v0_reset_V]).any()
                and self._inst.memristor[routing.row, routing.col, 0]
                and mem.formed[routing.row, routing.col][
                    self.effective_switches()[routing.row, routing.col]
                ].all()
            ):
                # (A virgin device's intact oxide conducts linearly: no factor then.)
                # Every closed device of the routed cell sees the force voltage (up to its
                # switch's ~0.1 % drop): the cell's current scales by the devices' factor.
                def nonlinear(v: float, m: MemristorArray = mem) -> float:
                    return float(m.iv_factor(v))

            if routing.four_wire:
                assert routing.row is not None and routing.col is not None
                v_sense = sol.potential_V(int(self._nodes.row_edge(routing.row))) - sol.potential_V(
                    int(self._nodes.col_edge(routing.col))
                )
                return PortModel(
                    g_S=g_s,
                    i0_A=i0,
                    sense_gain=float(v_sense[0]),
                    sense_offset_V=float(v_sense[1]),
                    four_wire=True,
                    description=routing.describe(),
                    held=self.smu_hold,
                    nonlinear=nonlinear,
                )
            return PortModel(
                g_S=g_s,
                i0_A=i0,
                description=routing.describe(),
                held=self.smu_hold,
                nonlinear=nonlinear,
            )

    def true_column_currents_A(self) -> FloatArray:
        """Column currents into the TIAs (A) with the SMU (if routed) at 0 V; NaN for a
        column not on a TIA. Hidden truth (no converter errors): tests and studies only."""
        with self._lock:
            if self._routing.mode not in ("mvm_adc", "mvm_smu"):
                raise BoardStateError(
                    f"columns are not routed to the ADCs ({self._routing.describe()}); "
                    "route MVM ADC or MVM SMU first"
                )
            solver, sol = self._solve()
            currents = solver.source_currents_A(sol)[:, 1]
            n_front = 3 + self.geometry.rows
            out = -currents[n_front:]  # current INTO each TIA = -(current the TIA pushes)
            if self._routing.mode == "mvm_smu":
                out = out.copy()
                out[self._routing.col] = np.nan
            return np.asarray(out, dtype=np.float64)

    def adc_read(self) -> FloatArray:
        """One simultaneous conversion of every column (A), as the ADCs report them.

        Reported = quantise(gain * I + offset + noise); +-inf beyond +-range_A; NaN for the
        column routed to the SMU. Raises BoardStateError unless routed MVM ADC / MVM SMU.
        """
        with self._lock:
            self._settle_stress()
            true_a = self.true_column_currents_A()
            if self._mem is not None:
                true_a = true_a + self._read_noise_cells_S().T @ self._dac_outputs_V()
            adc = self.config.adc
            inst = self._inst
            noise = adc.noise_A * self._noise.standard_normal(true_a.size)
            measured = inst.adc_gain * true_a + inst.adc_offset_A + noise
            self.clock.advance(adc.conversion_time_s)
            codes = np.rint(measured / adc.lsb_A)
            top = 2 ** (adc.bits - 1)
            reported = np.clip(codes, -top, top - 1) * adc.lsb_A
            reported = np.where(measured > adc.range_A, np.inf, reported)
            reported = np.where(measured < -adc.range_A, -np.inf, reported)
            return np.where(np.isnan(true_a), np.nan, reported)

    def true_cell_conductance_S(self) -> FloatArray:
        """Each cell's own bank conductance (R, C) in S, effective switch states, now.
        Hidden truth: tests and studies only."""
        with self._lock:
            self._settle_stress()
            return self._cell_conductance(self._current_values()).copy()

    def ambient_C(self, t_s: float) -> float:
        """The room's temperature at ``t_s`` (degC): the board's own when nothing holds it."""
        return self._ambient.at(t_s)

    def follow_temperature(self, source: Callable[[float], float]) -> None:
        """Let the board's temperature be ``source(t_s)`` (degC; a thermal stage under it)
        instead of the room's. Element values are re-evaluated at the next question."""
        with self._lock:
            self._temperature_at = source
            self._values = None
            self._invalidate()

    def true_temperature_C(self) -> float:
        """The board's true temperature now (degC); hidden truth."""
        with self._lock:
            return self._temperature_at(self.clock.now_s)

    def temperature_C(self) -> float:
        """What the board's temperature sensor reads (degC, 0.01 degC steps)."""
        with self._lock:
            t = self._temperature_at(self.clock.now_s) + self._inst.sensor_offset_K
            return round(round(t / TEMPERATURE_RESOLUTION_C) * TEMPERATURE_RESOLUTION_C, 2)

    # ------------------------------------------------------------------ memristors
    @property
    def has_memristors(self) -> bool:
        """Whether any branch of the board is a memristor."""
        return self._mem is not None

    def cell_kind(self, r: int, c: int) -> str:
        """``"memristor"`` or ``"resistor"``: the kind of cell (r, c)'s elements."""
        with self._lock:
            self._check_row(r)
            self._check_col(c)
            return "memristor" if self._inst.memristor[r, c, 0] else "resistor"

    def _check_branch(self, k: int) -> None:
        if not 0 <= k < self.geometry.branches:
            raise ValueError(f"branch {k} not in 0..{self.geometry.branches - 1}")

    def _check_memristor(self, r: int, c: int, k: int) -> None:
        self._check_row(r)
        self._check_col(c)
        self._check_branch(k)
        if not self._inst.memristor[r, c, k]:
            raise BoardStateError(f"branch ({r},{c},{k}) is a resistor")

    def pulse_count(self, r: int, c: int, k: int) -> int:
        """Pulses the board has applied to branch (r, c, k) since power-up (it counts the
        pulses it drives, whether or not a stuck switch kept them from the device).
        Raises BoardStateError on a resistor branch."""
        with self._lock:
            self._check_memristor(r, c, k)
            return int(self._pulse_counts[r, c, k])

    def pulse(
        self, r: int, c: int, k: int, *, amplitude_V: float, width_s: float, count: int = 1
    ) -> None:
        """Apply ``count`` pulses of ``amplitude_V`` (+ SET, - RESET) and ``width_s`` to
        memristor branch (r, c, k) through the pulse circuit (docs/board-protocol.md, "Pulses").

        Sequence: every branch switch opens and the routing disconnects (break-before-make,
        ``bbm_delay_s``); branch k of cell (r, c) closes and the pulse driver connects to row
        r with column c at board ground, every other line floating; the pulses follow, each
        ``width_s`` then ``pulse.gap_s``; the driver disconnects and the previous switch
        states and routing are restored (break-before-make, ``bbm_delay_s``). The clock moves
        by ``2 bbm_delay_s + count (width_s + gap_s)``. Every effectively closed branch of the
        cell (branch k unless stuck open, plus any stuck-closed ones) takes the pulse, its
        device seeing ``V R_dev / (R_dev + r_on)``; other cells are isolated (their lines
        float, or their switches are open) and undisturbed. DAC settings are kept.

        Raises ValueError beyond the board's limits (`pulse_limits`) and BoardStateError on
        a resistor branch.
        """
        with self._lock:
            self._check_row(r)
            self._check_col(c)
            self._check_branch(k)
            lim = self.config.pulse
            amp, width = float(amplitude_V), float(width_s)
            if not (np.isfinite(amp) and abs(amp) <= lim.max_amplitude_V):
                raise ValueError(f"pulse amplitude {amp} V beyond +-{lim.max_amplitude_V:g} V")
            if not (np.isfinite(width) and lim.min_width_s <= width <= lim.max_width_s):
                raise ValueError(
                    f"pulse width {width} s not in {lim.min_width_s:g}..{lim.max_width_s:g} s"
                )
            if not 1 <= count <= lim.max_count:
                raise ValueError(f"pulse count {count} not in 1..{lim.max_count}")
            self._check_memristor(r, c, k)
            assert self._mem is not None
            self._settle_stress()
            bbm = self.config.bbm_delay_s
            self.clock.advance(bbm)  # isolate: switches open, routing disconnected
            start = self.clock.now_s
            vals = self._current_values()
            inst = self._inst
            closed = np.zeros(self.geometry.branches, dtype=bool)
            closed[k] = True
            closed = (closed | inst.stuck_closed[r, c]) & ~inst.stuck_open[r, c]
            closed &= inst.memristor[r, c]
            ks = np.flatnonzero(closed)
            period = width + lim.gap_s
            if ks.size:
                r_dev = 1.0 / self._mem.conductance_S(start)[r, c, ks]
                v_dev = amp * r_dev / (r_dev + vals.r_on_ohm[r, c, ks])
                idx = (np.full(ks.size, r), np.full(ks.size, c), ks)
                # A pulse is a stress like any other: the creep of its time at v_dev, then
                # the switching law (nothing below threshold).
                self._mem.creep(idx, v_dev, duration_s=count * width, at_s=start)
                self._mem.apply_pulses(
                    idx,
                    v_dev,
                    width_s=width,
                    count=count,
                    start_s=start,
                    end_s=start + count * period - lim.gap_s,
                )
            self.clock.advance(count * period)
            self._pulse_counts[r, c, k] += count
            self.clock.advance(bbm)  # restore switches and routing
            self._stress_from_s = self.clock.now_s  # isolated for the whole command
            self._values = None
            self._invalidate()

    # ------------------------------------------------------------------ read disturb
    def smu_hold(
        self, v_force_V: float, duration_s: float, current_limit_A: float = np.inf
    ) -> None:
        """The SMU held its force HI at ``v_force_V`` (V) for the last ``duration_s`` (s) of
        virtual time under the current limit ``current_limit_A`` (A) (a reading: the SMU
        emulators call it through `PortModel.hold`). The limit bounds what a DC SET or a
        forming under the SMU can reach (simulator/memristor.py, "Forming").

        Applies that stress, with the board's own sources, to every memristor (module
        docstring, "Read disturb"); what the board's sources alone did before the reading is
        settled first. Nothing happens on a board without memristors.
        """
        with self._lock:
            v, t = float(v_force_V), float(duration_s)
            if not (np.isfinite(v) and np.isfinite(t) and t >= 0):
                raise ValueError(f"SMU stress {v} V for {t} s must be finite, duration >= 0")
            end = self.clock.now_s
            start = max(end - t, self._stress_from_s)
            self._settle_stress(until_s=start)
            if self._routing.mode in ("cell", "mvm_smu"):
                self._stress(v, end - start, start, float(current_limit_A))
            else:  # the SMU is not connected: only the board's own sources
                self._stress(0.0, end - start, start)
            self._stress_from_s = end

    def _settle_stress(self, until_s: float | None = None) -> None:
        """Apply the board's own sources' stress from the last event to ``until_s`` (now)."""
        end = self.clock.now_s if until_s is None else until_s
        start = self._stress_from_s
        if end <= start:
            return
        self._stress_from_s = end
        self._stress(0.0, end - start, start)

    def _stress(
        self,
        v_force_V: float,
        duration_s: float,
        start_s: float,
        current_limit_A: float = np.inf,
    ) -> None:
        """Every memristor's voltage with the SMU at ``v_force_V`` and the board's sources,
        held for ``duration_s`` from ``start_s`` (`MemristorArray.apply_stress`), the SMU's
        current limit bounding what it can SET or form."""
        mem = self._mem
        if mem is None or duration_s <= 0 or self._routing.mode == "open":
            return
        if self._routing.mode == "cell" and v_force_V == 0.0:
            return  # nothing drives the lines: no DAC or TIA is connected in cell routing
        _, sol = self._solve()
        potentials = sol.potentials_V
        v_node = potentials[:, 0] * v_force_V + potentials[:, 1]
        rr, cc = np.meshgrid(
            np.arange(self.geometry.rows), np.arange(self.geometry.cols), indexing="ij"
        )
        v_cell = v_node[self._nodes.row(rr, cc)] - v_node[self._nodes.col(rr, cc)]
        vals = self._current_values()
        assert self._mem_g_S is not None
        r_dev = 1.0 / self._mem_g_S
        r_switch = np.where(self.effective_switches(), vals.r_on_ohm, vals.r_off_ohm)
        v_dev = v_cell[:, :, None] * (r_dev / (r_dev + r_switch))
        v_dev = np.where(self._inst.memristor, v_dev, 0.0)
        if mem.apply_stress(
            v_dev, duration_s=duration_s, start_s=start_s, current_limit_A=current_limit_A
        ):
            self._values = None
            self._invalidate()

    def _read_noise_cells_S(self) -> FloatArray:
        """One read-noise draw per effectively closed memristor branch, summed per cell (R, C)."""
        assert self._mem is not None
        self._current_values()
        assert self._mem_g_S is not None
        live = self.effective_switches() & self._inst.memristor
        sigma = self._mem.read_noise_sigma_S(self._mem_g_S[live])
        d_g = np.zeros(self.geometry.shape)
        d_g[live] = sigma * self._read_noise.standard_normal(sigma.size)
        return np.asarray(d_g.sum(axis=2), dtype=np.float64)

    def true_memristor_conductance_S(self) -> FloatArray:
        """Every memristor's true conductance now (R, C, K), S; 0 on resistor branches.
        Hidden truth: tests and studies only."""
        with self._lock:
            self._settle_stress()
            if self._mem is None:
                return np.zeros(self.geometry.shape)
            g = self._mem.conductance_S(self.clock.now_s)
            return np.asarray(np.where(self._inst.memristor, g, 0.0), dtype=np.float64)

    @property
    def memristors(self) -> MemristorArray | None:
        """The memristors' state (hidden truth; tests and studies only), None if none."""
        return self._mem

    # ------------------------------------------------------------------ reporting
    def info(self) -> dict[str, str | int | float]:
        """The BOARD:INFO? keys (docs/board-protocol.md)."""
        cfg = self.config
        return {
            "rows": self.geometry.rows,
            "cols": self.geometry.cols,
            "branches": self.geometry.branches,
            "element": cfg.element.kind,
            "dac_bits": cfg.dac.bits,
            "dac_range_V": cfg.dac.range_V,
            "adc_bits": cfg.adc.bits,
            "adc_range_A": cfg.adc.range_A,
            "bbm_delay_s": cfg.bbm_delay_s,
            "temperature_resolution_C": TEMPERATURE_RESOLUTION_C,
            "serial": self.serial,
            "preset": cfg.name,
            **self._bill_of_materials(),
        }

    def _bill_of_materials(self) -> dict[str, str | int | float]:
        """What the board's EEPROM knows from its bill of materials (not the true values).

        ``nominal_ohm``: the nominal resistance of branch k for k = 0..K-1, separated by
        ``/`` (per-branch schemes), or ``nominal_min_ohm``/``nominal_max_ohm`` when every
        element is drawn in a range; ``tolerance`` (relative); ``tcr_ppm_per_K`` (the
        resistors' nominal temperature coefficient); ``switch_on_ohm`` (typical
        datasheet on-resistance), ``switch_off_max_S`` (the largest off-leakage conductance of
        one switch: an open cell of K branches shows at most K times it). Calibration uses
        them for fault bands, sanity checks and the temperature budget; the self-test for
        isolation.
        Boards with memristors add the device range ``g_min_S``/``g_max_S`` and the pulse
        circuit's limits, and the devices' smallest switching thresholds per polarity
        (``set_threshold_min_V``, ``reset_threshold_min_V``: the datasheet minimum, nominal
        less 3 sigma, where the drawn thresholds are clipped); mixed boards
        ``memristor_columns``; memristor-only boards have no resistor keys.
        """
        el = self.config.element
        sw = self.config.switch
        bom: dict[str, str | int | float] = {
            "switch_on_ohm": sw.r_on_ohm,
            # datasheet-style bound: the lowest off resistance's leakage, doubled for each
            # leakage_doubling_K up to 30 K above the reference temperature
            "switch_off_max_S": 2.0 ** (30.0 / sw.leakage_doubling_K) / sw.r_off_min_ohm,
            # the layout's design values (trace geometry, the routing relays' datasheet
            # typical), not the drawn per-line values: labrss refines them by measurement
            "wire_segment_ohm": self.config.wiring.wire_segment_ohm,
            "routing_switch_ohm": self.config.wiring.routing_switch_ohm,
        }
        if el.kind != "resistor":
            mem, lim = self.config.memristor, self.config.pulse
            bom["g_min_S"] = mem.g_min_S
            bom["g_max_S"] = mem.g_max_S
            bom["set_threshold_min_V"] = mem.set_threshold_V - 3.0 * mem.threshold_sigma_V
            bom["reset_threshold_min_V"] = mem.reset_threshold_V - 3.0 * mem.threshold_sigma_V
            bom["pulse_max_amplitude_V"] = lim.max_amplitude_V
            bom["pulse_min_width_s"] = lim.min_width_s
            bom["pulse_max_width_s"] = lim.max_width_s
            bom["pulse_max_count"] = lim.max_count
            bom["pulse_gap_s"] = lim.gap_s
        if el.kind == "mixed":
            bom["memristor_columns"] = "/".join(str(c) for c in sorted(el.memristor_columns))
        if el.kind == "memristor":
            return bom
        bom["tolerance"] = el.tolerance
        # the resistors' nominal temperature coefficient (the part's datasheet class)
        bom["tcr_ppm_per_K"] = el.tcr_ppm_per_K
        if el.nominal_scheme == "log_uniform":
            bom["nominal_min_ohm"] = el.nominal_ohm
            bom["nominal_max_ohm"] = el.nominal_max_ohm
        else:
            r0, c0 = np.argwhere(~self._inst.memristor[:, :, 0])[0]  # a resistor cell
            per_branch = self._inst.nominal_ohm[r0, c0, :]
            bom["nominal_ohm"] = "/".join(f"{v:.6g}" for v in per_branch)
        return bom

    def truth(self) -> dict[str, Any]:
        """Hidden true values now (arrays in ohm, S, V, A; see docs/simulator.md).

        Never reachable through an instrument interface: for tests and calibration studies.
        """
        with self._lock:
            self._settle_stress()
            vals = self._current_values()
            inst = self._inst
            cfg = self.config
            closed = self.effective_switches()
            faults = inst.fault_list()
            if self._mem is not None:
                for r, c, k in np.argwhere(self._mem.worn_out):
                    faults.append(
                        {
                            "kind": "memristor_worn_out",
                            "row": int(r),
                            "col": int(c),
                            "branch": int(k),
                        }
                    )
            return {
                "format": "labrss-board-truth",
                "version": 1,
                "seed": self.seed,
                "serial": self.serial,
                "preset": cfg.name,
                "geometry": [self.geometry.rows, self.geometry.cols, self.geometry.branches],
                "time_s": vals.time_s,
                "temperature_C": vals.temperature_C,
                "reference_temperature_C": cfg.environment.reference_C,
                "nominal_ohm": inst.nominal_ohm.copy(),
                "resistance_ref_ohm": inst.resistance_ref_ohm.copy(),
                "resistance_ohm": vals.resistance_ohm.copy(),
                "tcr_ppm_per_K": inst.tcr_ppm_per_K.copy(),
                "aging_ppm_per_decade": inst.aging_ppm_per_decade.copy(),
                "r_on_ohm": vals.r_on_ohm.copy(),
                "r_off_ohm": vals.r_off_ohm.copy(),
                "branch_on_conductance_S": vals.branch_conductance_S(
                    np.ones(self.geometry.shape, dtype=bool)
                ),
                "switches_commanded": self._switches.copy(),
                "switches_effective": closed,
                "cell_conductance_S": self._cell_conductance(vals),
                "wire_segment_ohm": cfg.wiring.wire_segment_ohm,
                "lead_ohm": cfg.wiring.lead_ohm,
                "route_row_ohm": inst.route_row_ohm.copy(),
                "route_col_ohm": inst.route_col_ohm.copy(),
                "dac_gain": inst.dac_gain.copy(),
                "dac_offset_V": inst.dac_offset_V.copy(),
                "adc_gain": inst.adc_gain.copy(),
                "adc_offset_A": inst.adc_offset_A.copy(),
                "tia_offset_V": inst.tia_offset_V.copy(),
                "sensor_offset_K": inst.sensor_offset_K,
                "faults": faults,
                **self._memristor_truth(),
            }

    def _memristor_truth(self) -> dict[str, Any]:
        """The memristors' hidden state (only on boards with memristors)."""
        mem = self._mem
        if mem is None:
            return {}
        d = mem.devices
        worn = mem.worn_out
        self._current_values()
        assert self._mem_g_S is not None
        return {
            "memristor": self._inst.memristor.copy(),
            # At the instant of the other values (time_s), like resistance_ohm.
            "memristor_conductance_S": np.where(self._inst.memristor, self._mem_g_S, 0.0),
            "memristor_g_min_S": d.g_min_S.copy(),
            "memristor_g_max_S": d.g_max_S.copy(),
            "memristor_programmed_time_s": mem.programmed_time_s,
            "memristor_cycles": mem.cycles,
            "memristor_endurance_cycles": d.endurance_cycles.copy(),
            "memristor_worn_out": worn,
            "memristor_stuck_on": mem.stuck_on(),
            "memristor_stuck_off": mem.stuck_off(),
            "pulse_count": self._pulse_counts.copy(),
        }
