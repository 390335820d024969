"""The lab's board in the store: one registration used by every workflow.

Calibration, programming, MVM, write-verify, memristor RSS and drift runs all attach their
runs to the board the lab is connected to. They must agree on what "the same board" is,
or the calibration one workflow stored would be invisible to the next: this module is
that single definition.

The board counts as simulated when the station's ``[board]`` is the simulator's (then the
simulator's seed and preset are part of its identity); its element kind is the
``element=`` of ``BOARD:INFO?`` (``resistor``, ``memristor`` or ``mixed``).
"""

from __future__ import annotations

from typing import cast

from labrss.lab import Lab
from labrss.store import Store
from labrss.store.records import ELEMENT_KINDS, ElementKind

__all__ = ["board_element_kind", "register_board"]


def board_element_kind(lab: Lab) -> ElementKind:
    """The board's element kind from ``BOARD:INFO?`` ``element=`` (a board that does not
    say is a resistor board, as docs/board-protocol.md's older boards are).

    Raises:
        ValueError: the board reports an element kind labrss does not know, naming it.
    """
    kind = str(lab.board.info.get("element", "resistor"))
    if kind not in ELEMENT_KINDS:
        raise ValueError(
            f"{lab.board.identity}: BOARD:INFO? element={kind!r} is not one of {ELEMENT_KINDS}"
        )
    return cast(ElementKind, kind)


def register_board(lab: Lab, store: Store) -> int:
    """The store's id of the lab's board, registering it on first sight.

    A ``mixed`` board that an older labrss registered as ``resistor`` (before the store
    accepted ``mixed``) keeps its id, so its calibrations stay visible. On a bench that
    counts its switch operations (``switch-counts``: a relay matrix) the counts are
    recorded (`Store.record_switch_counts`): every run keeps the relays' history.

    Raises:
        StoreError: the board was registered with another geometry or element kind.
    """
    board = lab.board
    g = lab.geometry
    info = dict(board.info)
    kind = board_element_kind(lab)
    simulated = lab.station.board.simulated
    sim = lab.station.simulator
    sim_seed = sim.seed if simulated else None
    sim_preset = sim.board if simulated else None
    identity = lab.identities["board"]
    if kind == "mixed":
        for known in store.boards():
            if (
                known.identity == identity
                and known.serial == board.serial
                and known.simulated == simulated
                and known.sim_seed == sim_seed
                and known.sim_preset == sim_preset
                and known.shape == (g.rows, g.cols, g.branches)
                and known.element_kind == "resistor"
            ):
                return known.id
    board_id = store.register_board(
        identity,
        board.serial,
        g.rows,
        g.cols,
        g.branches,
        element_kind=kind,
        simulated=simulated,
        sim_seed=sim_seed,
        sim_preset=sim_preset,
        info=info,
    )
    wear = lab.switch_wear()
    if wear is not None:  # a relay bench: keep its counts with every run
        store.record_switch_counts(board_id, dict(wear.counts), wear.rated_operations, wear.where)
    return board_id
