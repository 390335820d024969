"""What the SMU sees at its terminals: the linear equivalent of the routed board network.

The board network is linear (resistors, closed and open switches, wires, ideal DAC and TIA
sources), so whatever is routed to the SMU port reduces exactly to an affine relation
between the force voltage and the HI current, plus the voltages the SMU would sense. The
board model computes it from the nodal solve; the SMU emulator applies the instrument
(compliance, ranges, noise) on top. This keeps the two sides of the simulator independent
of each other's internals.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PortModel:
    """Linear model of the SMU port, valid for any force voltage.

    Attributes:
        g_S: small-signal conductance seen by the force HI terminal (S): dI/dV_force.
        i0_A: HI current at 0 V force (A), from other sources in the network (DACs in MVM
            routing, offsets); positive current flows out of HI into the board.
        sense_gain: dV_sense/dV_force for the 4-wire sense pair (1.0 in 2-wire mode, where
            the SMU senses at its own terminals).
        sense_offset_V: V_sense at V_force = 0 (V), 4-wire only.
        four_wire: whether the board connected the sense lines (`ROUT:CELL r,c,4W`).
        description: what is routed, for logs (e.g. "cell (2,3) 2W").
        held: where the SMU reports the stress of a reading (`hold`); None: nothing listens.
    """

    g_S: float
    i0_A: float = 0.0
    sense_gain: float = 1.0
    sense_offset_V: float = 0.0
    four_wire: bool = False
    description: str = ""
    held: Callable[[float, float, float], None] | None = field(
        default=None, compare=False, repr=False
    )
    nonlinear: Callable[[float], float] | None = field(default=None, compare=False, repr=False)
    """I / (g_S V) at force voltage V for a routed memristor cell with a non-linear I-V
    (None: linear). `current_A` and `force_for_current_V` apply it."""

    def hold(self, v_force_V: float, duration_s: float, current_limit_A: float = math.inf) -> None:
        """Tell the board that the SMU held its force HI at ``v_force_V`` (V) for the last
        ``duration_s`` (s) of virtual time, under a current limit ``current_limit_A`` (A:
        the compliance of a voltage source, the level of a current source): what a reading
        does to the devices routed to it (memristor read disturb, DC switching, forming).
        The SMU emulators call it after every reading."""
        if self.held is not None:
            self.held(v_force_V, duration_s, current_limit_A)

    def current_A(self, v_force_V: float) -> float:
        """HI current (A) at force voltage ``v_force_V`` (V)."""
        k = 1.0 if self.nonlinear is None else self.nonlinear(v_force_V)
        return self.g_S * v_force_V * k + self.i0_A

    def force_for_current_V(self, i_A: float) -> float:
        """Force voltage (V) at which the HI current is ``i_A`` (A): the compliance point.

        Raises ZeroDivisionError when the port is an open circuit (g_S == 0). With a
        non-linear I-V, solved by bisection (the current is monotonic in the voltage).
        """
        v = (i_A - self.i0_A) / self.g_S
        if self.nonlinear is None or v == 0.0:
            return v
        lo, hi = 0.0, v  # |I(v)| >= |g v|: the answer lies between 0 and the linear one
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if abs(self.current_A(mid) - self.i0_A) < abs(i_A - self.i0_A):
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    def sensed_V(self, v_force_V: float) -> float:
        """Voltage (V) the SMU measures: its own terminals in 2-wire, the sense pair in 4-wire."""
        if not self.four_wire:
            return v_force_V
        return self.sense_gain * v_force_V + self.sense_offset_V


OPEN_CIRCUIT = PortModel(g_S=0.0, description="nothing routed to the SMU")
"""The SMU port with nothing connected (routing open)."""
