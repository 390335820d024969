"""What the SMU sees at its terminals: the linear equivalent of the routed board network.

The board network is linear (resistors, closed and open switches, wires, ideal DAC and TIA
sources), so whatever is routed to the SMU port reduces exactly to an affine relation
between the force voltage and the HI current, plus the voltages the SMU would sense. The
board model computes it from the nodal solve; the SMU emulator applies the instrument
(compliance, ranges, noise) on top. This keeps the two sides of the simulator independent
of each other's internals.
"""

from __future__ import annotations

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
    held: Callable[[float, float], None] | None = field(default=None, compare=False, repr=False)

    def hold(self, v_force_V: float, duration_s: float) -> None:
        """Tell the board that the SMU held its force HI at ``v_force_V`` (V) for the last
        ``duration_s`` (s) of virtual time: what a reading does to the devices routed to it
        (memristor read disturb). The SMU emulators call it after every reading."""
        if self.held is not None:
            self.held(v_force_V, duration_s)

    def current_A(self, v_force_V: float) -> float:
        """HI current (A) at force voltage ``v_force_V`` (V)."""
        return self.g_S * v_force_V + self.i0_A

    def force_for_current_V(self, i_A: float) -> float:
        """Force voltage (V) at which the HI current is ``i_A`` (A): the compliance point.

        Raises ZeroDivisionError when the port is an open circuit (g_S == 0).
        """
        return (i_A - self.i0_A) / self.g_S

    def sensed_V(self, v_force_V: float) -> float:
        """Voltage (V) the SMU measures: its own terminals in 2-wire, the sense pair in 4-wire."""
        if not self.four_wire:
            return v_force_V
        return self.sense_gain * v_force_V + self.sense_offset_V


OPEN_CIRCUIT = PortModel(g_S=0.0, description="nothing routed to the SMU")
"""The SMU port with nothing connected (routing open)."""
