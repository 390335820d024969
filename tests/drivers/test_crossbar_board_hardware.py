"""The crossbar board driver against a real board; skipped unless ``--board-port`` is given.

    pytest tests/drivers/test_crossbar_board_hardware.py --board-port /dev/ttyACM0

Switches and routing only (no SMU): every change is verified by read-back, and the board
is left in its safe state.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from drivers.crossbar_board import CrossbarBoard

pytestmark = pytest.mark.hardware


@pytest.fixture(scope="module")
def hardware_board(board_port: str | None) -> Iterator[CrossbarBoard]:
    if board_port is None:
        pytest.skip("no --board-port given")
    board = CrossbarBoard(board_port, max_dac_voltage_V=0.1)
    yield board
    board.close()


def test_identity_and_geometry(hardware_board: CrossbarBoard) -> None:
    g = hardware_board.geometry
    assert min(g.rows, g.cols, g.branches) >= 1
    assert hardware_board.identity.startswith("LABRSS,XBAR-")


def test_masks_round_trip_and_safe(hardware_board: CrossbarBoard) -> None:
    g = hardware_board.geometry
    masks = np.random.default_rng(0).random((g.rows, g.cols, g.branches)) < 0.25
    hardware_board.set_masks(masks)
    np.testing.assert_array_equal(hardware_board.masks(), masks)
    hardware_board.route_cell(0, 0)
    assert hardware_board.routing() == "CELL 0,0,2W"
    hardware_board.safe()
    assert hardware_board.is_safe()
    assert hardware_board.closed_count() == 0


def test_dacs_within_one_lsb(hardware_board: CrossbarBoard) -> None:
    rows = hardware_board.geometry.rows
    wanted = np.linspace(-0.1, 0.1, rows)
    got = hardware_board.set_dacs(wanted)
    np.testing.assert_allclose(got, wanted, rtol=0, atol=hardware_board.dac_lsb_V)
    hardware_board.zero_dacs()
