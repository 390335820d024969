"""Nodal analysis of a linear resistor network with ideal voltage sources (scipy.sparse).

A `Netlist` lists conductances between nodes, zero-resistance links ("shorts": ideal wires,
merged into one electrical node) and the nodes held at a fixed potential by ideal sources
(SMU terminals, DAC outputs, TIA virtual grounds). `NodalSolver` assembles the reduced
nodal matrix of the free nodes once and factorises it (sparse LU, `scipy.sparse.linalg.splu`);
every later `solve` with new source potentials is a pair of triangular solves. Fixed
potentials enter the right-hand side, so one factorisation serves any source values, and
several excitations (columns of the potential matrix) are solved at once: superposition.

Parts of the network with no conductive path to any source get a tiny conductance to 0 V
(``float_conductance_S``) on each of their nodes, so the matrix is never singular and a
floating part settles at 0 V.

Complexity: assembly O(E) for E conductances; the LU of a crossbar's grid-like matrix
costs roughly O(N^1.5) for N free nodes (nested-dissection-like ordering by SuperLU's
COLAMD), each solve O(nnz(L + U)).

Threads: a SuperLU object freed by another thread than the one that created it leaks its
factor memory (scipy's SuperLU wrapper; measured here: ~2.6 MB per 600-node factorisation,
the simulator reached 2 GB in a demo). The simulator's SMU and board servers run in
different threads, so every factorisation is created on one dedicated thread
(`_superlu_thread`) and its last reference is released on that same thread, through a
lock-free queue (the release runs in a finaliser, possibly during a garbage collection).
"""

from __future__ import annotations

import atexit
import gc
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]
import scipy.sparse.linalg as spla  # type: ignore[import-untyped]
from scipy.sparse import csgraph
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_blas: ThreadpoolController | None = None


def single_threaded_blas() -> Any:
    """A context in which BLAS runs on one thread (process-wide while it lasts).

    The nodal solves' dense kernels (SuperLU's supernodes, the low-rank updates) are small,
    and OpenBLAS's worker threads spin between calls: on the large board's simulated
    calibration they burnt ~2.4 s of CPU per run on a second thread, and the wall time per
    element went from ~38 to ~20 ms with one thread (measured side by side). ~16 us per
    use."""
    global _blas  # noqa: PLW0603 - one controller per process, made on first use
    if _blas is None:
        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


_superlu_jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any] | None]] = queue.SimpleQueue()
_superlu_worker: threading.Thread | None = None
_superlu_start_lock = threading.Lock()


_superlu_stopped = threading.Event()
"""Set at exit once the SuperLU thread has ended: later work runs on the calling thread."""


def _stop_superlu_loop() -> None:
    """The job that ends `_superlu_loop` (queued by `_drain_at_exit`; never called)."""


def _superlu_loop() -> None:
    while True:
        job, future = _superlu_jobs.get()
        if job is _stop_superlu_loop:
            return
        try:
            result = job()
        except BaseException as exc:  # handed to the waiting caller
            if future is not None:
                future.set_exception(exc)
        else:
            if future is not None:
                future.set_result(result)
            del result
        # Drop this thread's references before waiting (the job may hold the last one).
        del job, future


def _drain_at_exit() -> None:
    """Release what is pending on the SuperLU thread, then end that thread, at exit.

    A process whose SuperLU thread was still alive when the interpreter finalised (any
    process that factorised: one `NodalSolver` and a print were enough) printed
    "Exception ignored in: <_io.TextIOWrapper name='<stdout>'> TypeError: an integer is
    required" and exited with status 120 after completing (reproduced with a bare
    ``splu`` on a daemon thread blocked in ``SimpleQueue.get`` at exit; ending the thread
    first gives status 0). Runs at exit (atexit, before daemon threads are frozen),
    bounded to 10 s; later factorisations (rare: other exit handlers) run on the caller.
    """
    worker = _superlu_worker
    if worker is None or not worker.is_alive():
        return
    for _ in range(2):  # a collection can finalise more solvers, queueing more releases
        gc.collect()
        done: Future[Any] = Future()
        _superlu_jobs.put((lambda: None, done))
        try:
            done.result(timeout=10.0)
        except Exception:  # never block or fail the exit
            return
    _superlu_stopped.set()
    _superlu_jobs.put((_stop_superlu_loop, None))
    worker.join(timeout=10.0)


def _superlu_thread() -> None:
    """Start the one daemon thread that creates and frees every SuperLU object."""
    global _superlu_worker  # noqa: PLW0603 - one process-wide worker, started on first use
    with _superlu_start_lock:
        if _superlu_worker is None:
            _superlu_worker = threading.Thread(target=_superlu_loop, name="superlu", daemon=True)
            _superlu_worker.start()
            atexit.register(_drain_at_exit)


def _factorise(matrix: Any) -> Any:
    """``splu(matrix)`` on the SuperLU thread.

    Minimum degree ordering on ``A + A^T`` (the matrix is symmetric) with SuperLU's
    partial pivoting kept: on the large board 0.57x the fill of the default COLAMD
    ordering and triangular solves ~2x as fast (every reading of a low-rank or drifted
    state is such solves). The pivoting stays: without it (symmetric mode) rounding was
    worse, 1e-8 V against a dense solve on networks spanning nine decades
    (`tests/simulator/test_nodal.py` holds 1e-9 V) and 8e-9 relative on board readings."""
    if _superlu_stopped.is_set():  # exiting: the thread has ended
        return _splu(matrix)
    _superlu_thread()
    future: Future[Any] = Future()
    _superlu_jobs.put((lambda: _splu(matrix), future))
    return future.result()


def _splu(matrix: Any) -> Any:
    return spla.splu(matrix, permc_spec="MMD_AT_PLUS_A")


def _release_on_superlu_thread(box: list[Any]) -> None:
    """Drop the factorisation held in ``box`` on the SuperLU thread.

    Runs as a weakref finaliser, possibly in the middle of any code of any thread (a
    garbage collection), so it must take no lock: `queue.SimpleQueue.put` is reentrant.
    """
    _superlu_jobs.put((box.clear, None))


@dataclass(frozen=True)
class Netlist:
    """A linear network: ``n_nodes`` nodes numbered 0..n_nodes-1.

    Attributes:
        n_nodes: number of nodes.
        node_a, node_b, conductance_S: conductance ``g[i] >= 0`` (S) between ``node_a[i]``
            and ``node_b[i]``; zero entries conduct nothing.
        short_a, short_b: ideal (0 ohm) links; their ends are one electrical node.
        fixed_nodes: nodes held by ideal voltage sources, whose potentials are given to
            `NodalSolver.solve` in this order.
    """

    n_nodes: int
    node_a: IntArray
    node_b: IntArray
    conductance_S: FloatArray
    short_a: IntArray
    short_b: IntArray
    fixed_nodes: IntArray

    def __post_init__(self) -> None:
        n = self.n_nodes
        for name in ("node_a", "node_b", "short_a", "short_b", "fixed_nodes"):
            arr = getattr(self, name)
            if arr.ndim != 1 or (arr.size and (arr.min() < 0 or arr.max() >= n)):
                raise ValueError(f"netlist {name}: node indices must be a 1-D array in 0..{n - 1}")
        if not (self.node_a.shape == self.node_b.shape == self.conductance_S.shape):
            raise ValueError("netlist: node_a, node_b and conductance_S differ in length")
        if self.short_a.shape != self.short_b.shape:
            raise ValueError("netlist: short_a and short_b differ in length")
        g = self.conductance_S
        if g.size and not (np.all(np.isfinite(g)) and g.min() >= 0):
            raise ValueError("netlist: conductances must be finite and >= 0 (S)")
        if np.unique(self.fixed_nodes).size != self.fixed_nodes.size:
            raise ValueError("netlist: a node is listed twice in fixed_nodes")

    @staticmethod
    def from_resistors(
        n_nodes: int,
        node_a: npt.ArrayLike,
        node_b: npt.ArrayLike,
        resistance_ohm: npt.ArrayLike,
        fixed_nodes: npt.ArrayLike,
    ) -> Netlist:
        """Build from resistances (ohm): 0 becomes a short, +inf an open (dropped)."""
        a = np.asarray(node_a, dtype=np.int64)
        b = np.asarray(node_b, dtype=np.int64)
        r = np.asarray(resistance_ohm, dtype=np.float64)
        if r.size and (np.any(np.isnan(r)) or r.min() < 0):
            raise ValueError("netlist: resistances must be >= 0 ohm (0 = short, inf = open)")
        short = r == 0
        finite = np.isfinite(r) & ~short
        return Netlist(
            n_nodes=n_nodes,
            node_a=a[finite],
            node_b=b[finite],
            conductance_S=1.0 / r[finite],
            short_a=a[short],
            short_b=b[short],
            fixed_nodes=np.asarray(fixed_nodes, dtype=np.int64),
        )


class NodalSolver:
    """The factorised nodal equations of one `Netlist`; solve for any source potentials.

    Nodes joined by shorts are merged into groups; a group holding a fixed node is fixed.
    Two sources in one group must be given equal potentials (checked at solve time).
    """

    def __init__(self, netlist: Netlist, float_conductance_S: float = 1e-12) -> None:
        if not float_conductance_S > 0:
            raise ValueError(f"float_conductance_S must be > 0, got {float_conductance_S}")
        self.netlist = netlist
        n = netlist.n_nodes
        shorts = sp.coo_matrix(
            (np.ones(netlist.short_a.size), (netlist.short_a, netlist.short_b)), shape=(n, n)
        )
        n_groups, group_of = csgraph.connected_components(shorts, directed=False)
        self.group_of: IntArray = group_of.astype(np.int64)
        self.n_groups = int(n_groups)
        fixed_group = np.zeros(n_groups, dtype=bool)
        fixed_group[self.group_of[netlist.fixed_nodes]] = True
        self._fixed_groups: IntArray = np.flatnonzero(fixed_group).astype(np.int64)
        self._free_groups: IntArray = np.flatnonzero(~fixed_group).astype(np.int64)
        # Position of each group in the free or fixed list.
        self._index_in_class = np.empty(n_groups, dtype=np.int64)
        self._index_in_class[self._fixed_groups] = np.arange(self._fixed_groups.size)
        self._index_in_class[self._free_groups] = np.arange(self._free_groups.size)
        self._fixed_group_flag = fixed_group

        ga = self.group_of[netlist.node_a]
        gb = self.group_of[netlist.node_b]
        keep = (ga != gb) & (netlist.conductance_S > 0)
        ga, gb, g = ga[keep], gb[keep], netlist.conductance_S[keep]
        # Full group Laplacian L (symmetric): L v = net current leaving each group.
        rows = np.concatenate([ga, gb, ga, gb])
        cols = np.concatenate([ga, gb, gb, ga])
        vals = np.concatenate([g, g, -g, -g])
        laplacian = sp.coo_matrix((vals, (rows, cols)), shape=(n_groups, n_groups)).tocsr()
        self._laplacian = laplacian

        # Floating parts: components (by conductance) without a fixed group.
        graph = sp.coo_matrix((np.ones(ga.size), (ga, gb)), shape=(n_groups, n_groups))
        _, comp = csgraph.connected_components(graph, directed=False)
        grounded_comp = np.zeros(int(comp.max()) + 1 if comp.size else 0, dtype=bool)
        grounded_comp[comp[self._fixed_groups]] = True
        floating = ~grounded_comp[comp] & ~fixed_group
        self.floating_groups: IntArray = np.flatnonzero(floating).astype(np.int64)

        free = self._free_groups
        a_ff = laplacian[free][:, free].tocsc()
        if self.floating_groups.size:
            extra = np.zeros(free.size)
            extra[self._index_in_class[self.floating_groups]] = float_conductance_S
            a_ff = (a_ff + sp.diags(extra)).tocsc()
        self.a_ff = a_ff
        """The factorised free-node matrix (S), CSC."""
        self._a_fx = laplacian[free][:, self._fixed_groups].tocsr()
        self.laplacian_fixed_rows = laplacian[self._fixed_groups].tocsr()
        """Rows of the fixed groups in the group Laplacian (source currents)."""
        self._lu = _factorise(a_ff) if free.size else None
        if self._lu is not None:
            # The box keeps the LU alive past this object; the finaliser empties it on the
            # SuperLU thread, so the factor memory is freed where it was allocated.
            weakref.finalize(self, _release_on_superlu_thread, [self._lu])
        self.n_free = int(free.size)
        self.nnz_factor = int(self._lu.L.nnz + self._lu.U.nnz) if self._lu is not None else 0

    # read-only views for low-rank updates (`simulator.nodal_update`)
    @property
    def a_fx(self) -> Any:
        """Free-by-fixed block of the group Laplacian (S), CSR."""
        return self._a_fx

    @property
    def fixed_groups(self) -> IntArray:
        """Groups holding a source, in group order."""
        return self._fixed_groups

    @property
    def free_groups(self) -> IntArray:
        """Groups solved for, in the order of the matrix rows."""
        return self._free_groups

    @property
    def fixed_group_flag(self) -> npt.NDArray[np.bool_]:
        """Per group: True when a source holds it."""
        return self._fixed_group_flag

    @property
    def index_in_class(self) -> IntArray:
        """Per group: its position among the free or among the fixed groups."""
        return self._index_in_class

    def solve_free(self, rhs: FloatArray) -> FloatArray:
        """``A_ff^{-1} rhs`` for ``rhs`` of shape (n_free, n_rhs): two triangular solves."""
        assert self._lu is not None
        return np.asarray(self._lu.solve(np.ascontiguousarray(rhs)))

    def fixed_group_potentials(self, fixed_potentials_V: npt.ArrayLike) -> tuple[FloatArray, bool]:
        """Group potentials (n_groups, n_rhs) with the sources' set and the rest 0, and
        whether the input was one excitation (1-D). Checks shapes and merged sources."""
        v_src = np.asarray(fixed_potentials_V, dtype=np.float64)
        squeeze = v_src.ndim == 1
        if squeeze:
            v_src = v_src[:, None]
        n_fixed = self.netlist.fixed_nodes.size
        if v_src.ndim != 2 or v_src.shape[0] != n_fixed:
            raise ValueError(
                f"expected {n_fixed} fixed potentials (one per fixed node), got shape {v_src.shape}"
            )
        n_rhs = v_src.shape[1]
        v_groups = np.zeros((self.n_groups, n_rhs))
        src_groups = self.group_of[self.netlist.fixed_nodes]
        v_groups[src_groups] = v_src
        # Sources merged into one group by shorts must agree.
        if not np.array_equal(v_groups[src_groups], v_src):
            bad = np.flatnonzero(np.any(v_groups[src_groups] != v_src, axis=1))
            nodes = self.netlist.fixed_nodes[bad]
            raise ValueError(
                f"fixed nodes {nodes.tolist()} are joined by a zero-resistance path to another "
                "source at a different potential"
            )
        return v_groups, squeeze

    def solve(self, fixed_potentials_V: npt.ArrayLike) -> NodalSolution:
        """Node potentials for source potentials ``(n_fixed,)`` or ``(n_fixed, n_rhs)`` (V)."""
        v_groups, squeeze = self.fixed_group_potentials(fixed_potentials_V)
        if self._lu is not None:
            rhs = np.ascontiguousarray(-(self._a_fx @ v_groups[self._fixed_groups]))
            v_groups[self._free_groups] = self._lu.solve(rhs)
        return NodalSolution(self, v_groups, squeeze)

    def currents_per_source(self, per_group: FloatArray, squeeze: bool) -> FloatArray:
        """Per-group source currents (n_groups, n_rhs) -> one per fixed node: a group
        holding several sources reports on the first of them and 0 on the others."""
        src_groups = self.group_of[self.netlist.fixed_nodes]
        currents = np.zeros((src_groups.size, per_group.shape[1]))
        _, first = np.unique(src_groups, return_index=True)
        currents[first] = per_group[src_groups[first]]
        return currents[:, 0] if squeeze else currents

    def source_currents_A(self, solution: NodalSolution) -> FloatArray:
        """Current each fixed node's source pushes into the network (A), one per fixed node.

        For a group holding several sources the whole group current is reported on the
        first of them and 0 on the others.
        """
        out = self.laplacian_fixed_rows @ solution.group_potentials_V
        per_group = np.zeros((self.n_groups, out.shape[1]))
        per_group[self._fixed_groups] = out
        return self.currents_per_source(per_group, solution.squeeze)


class NodeGrouping(Protocol):
    """What a solution needs of its solver: the node -> group map."""

    group_of: IntArray


@dataclass(frozen=True)
class NodalSolution:
    """Potentials of one solve; ``potentials_V`` is (n_nodes,) or (n_nodes, n_rhs)."""

    solver: NodeGrouping
    group_potentials_V: FloatArray
    squeeze: bool

    @property
    def potentials_V(self) -> FloatArray:
        """Potential of every node (V)."""
        v = self.group_potentials_V[self.solver.group_of]
        return v[:, 0] if self.squeeze else v

    def potential_V(self, node: int) -> FloatArray:
        """Potential of one node (V): a scalar array, or (n_rhs,)."""
        v: FloatArray = self.group_potentials_V[self.solver.group_of[node]]
        return np.asarray(v[0]) if self.squeeze else v
