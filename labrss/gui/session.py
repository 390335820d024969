"""`Session`: what the GUI knows about the open bench (built in the worker from the `Lab`).

The main thread never touches the `Lab` (it belongs to the worker thread); it sees this
immutable snapshot instead: identities, geometry, addresses, limits in force.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labrss.lab import Lab
from labrss.station import Station


@dataclass(frozen=True)
class Session:
    """A snapshot of an open bench.

    Attributes:
        station: the station in use.
        identities: ``{"smu": *IDN?, "board": *IDN?}``.
        smu_address, board_address: what was opened (the simulator's loopback addresses
            for ``"sim"``).
        rows, cols, branches: the board's geometry.
        board_serial: the board's serial number (from ``*IDN?``).
        board_info: the board's ``BOARD:INFO?`` keys.
        simulated: any instrument is the embedded simulator's.
        min_element_resistance_ohm: the smallest element the power check assumes (ohm).
        db_path: the store the board was registered in (None: no store).
        board_id: the board's id there (`labrss.workflows.boards.register_board`, the
            registration every workflow uses), or None when the store failed.
    """

    station: Station
    identities: dict[str, str]
    smu_address: str
    board_address: str
    rows: int
    cols: int
    branches: int
    board_serial: str
    board_info: dict[str, str]
    simulated: bool
    min_element_resistance_ohm: float
    db_path: Path | None = None
    board_id: int | None = None

    @classmethod
    def from_lab(
        cls, lab: Lab, db_path: Path | None = None, board_id: int | None = None
    ) -> Session:
        """Snapshot an open `Lab` (call in the worker thread)."""
        g = lab.geometry
        smu_address = lab.station.smu.address
        board_address = lab.station.board.address
        if lab.simulator is not None:
            if lab.station.smu.simulated:
                smu_address = lab.simulator.smu_resource
            if lab.station.board.simulated:
                board_address = lab.simulator.board_address
        return cls(
            station=lab.station,
            identities=dict(lab.identities),
            smu_address=smu_address,
            board_address=board_address,
            rows=g.rows,
            cols=g.cols,
            branches=g.branches,
            board_serial=lab.board.serial,
            board_info=dict(lab.board.info),
            simulated=lab.simulated,
            min_element_resistance_ohm=lab.min_element_resistance_ohm,
            db_path=db_path,
            board_id=board_id,
        )

    @property
    def element_kind(self) -> str:
        """``"resistor"``, ``"memristor"`` or ``"mixed"`` (``BOARD:INFO?``; resistor if absent)."""
        return self.board_info.get("element", "resistor")

    @property
    def sim_seed(self) -> int | None:
        """The simulator seed of a simulated board, else None."""
        return self.station.simulator.seed if self.station.board.simulated else None

    @property
    def sim_preset(self) -> str | None:
        """The simulator preset (or board file) of a simulated board, else None."""
        return self.station.simulator.board if self.station.board.simulated else None

    def limits(self) -> list[tuple[str, str]]:
        """The limits and measurement defaults in force, as (label, value with unit) rows."""
        lim = self.station.limits
        meas = self.station.measurement
        r_min = self.min_element_resistance_ohm
        rows: list[tuple[str, str]] = [
            ("Max source voltage", f"{lim.max_source_voltage_V:g} V"),
            ("Compliance current", f"{lim.compliance_current_A:g} A"),
            ("Max power per element", f"{lim.max_power_per_element_W:g} W"),
            ("Max DAC voltage", f"{lim.max_dac_voltage_V:g} V"),
            ("Smallest element (power check)", f"{r_min:g} Ω" if math.isfinite(r_min) else "?"),
            ("Read voltage", f"{meas.read_voltage_V:g} V"),
            ("NPLC", f"{meas.nplc:g}"),
            ("Wiring", "4-wire" if meas.four_wire else "2-wire"),
        ]
        return rows

    def summary(self) -> str:
        """One line: station, SMU and board identities, geometry."""
        sim = " (SIMULATOR)" if self.simulated else ""
        return (
            f"{self.station.name}{sim}: SMU {self.identities.get('smu', '?')}, board "
            f"{self.identities.get('board', '?')}, {self.rows}x{self.cols} cells x "
            f"{self.branches} branches"
        )

    def describe(self) -> dict[str, Any]:
        """JSON-ready provenance for store runs."""
        return {
            "station": self.station.name,
            "identities": self.identities,
            "smu_address": self.smu_address,
            "board_address": self.board_address,
            "board_serial": self.board_serial,
            "simulated": self.simulated,
            "sim_seed": self.sim_seed,
            "sim_preset": self.sim_preset,
        }
