"""An independent dense modified nodal analysis (MNA), the reference for the sparse solver.

Every node is an unknown; every ideal voltage source (a fixed node held against ground,
or a 0-ohm short between two nodes) adds one branch-current unknown and one equation, as in
SPICE. Nothing is merged or eliminated, so it shares no logic with `simulator.nodal`.
Ground (0 V) is implicit: a node held at 0 V is a source like any other. Nodes left without
any path to a source need a shunt to ground: ``shunt_S`` per node (the caller chooses).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from simulator.nodal import Netlist


def dense_mna(
    netlist: Netlist, fixed_potentials_V: npt.ArrayLike, shunt_S: npt.ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Node potentials (n_nodes,) and the current each fixed source pushes into the network.

    ``fixed_potentials_V``: one value per ``netlist.fixed_nodes`` (V).
    """
    n = netlist.n_nodes
    fixed = np.asarray(netlist.fixed_nodes)
    v_fixed = np.asarray(fixed_potentials_V, dtype=float)
    n_src = fixed.size
    n_short = netlist.short_a.size
    size = n + n_src + n_short
    a = np.zeros((size, size))
    z = np.zeros(size)
    for i, j, g in zip(netlist.node_a, netlist.node_b, netlist.conductance_S, strict=True):
        a[i, i] += g
        a[j, j] += g
        a[i, j] -= g
        a[j, i] -= g
    if shunt_S is not None:
        a[np.arange(n), np.arange(n)] += np.asarray(shunt_S, dtype=float)
    # Source s: node p held at V_s against ground; unknown i_s = current from the source
    # into node p (it enters p's KCL as an injection).
    for s, (p, v) in enumerate(zip(fixed, v_fixed, strict=True)):
        k = n + s
        a[p, k] -= 1.0  # KCL at p: sum g (v_p - v_q) - i_s = 0
        a[k, p] = 1.0
        z[k] = v
    for s, (p, q) in enumerate(zip(netlist.short_a, netlist.short_b, strict=True)):
        k = n + n_src + s
        a[p, k] += 1.0  # current i leaves p through the short ...
        a[q, k] -= 1.0  # ... and enters q
        a[k, p] = 1.0
        a[k, q] = -1.0
    x = np.linalg.solve(a, z)
    return x[:n], x[n : n + n_src]
