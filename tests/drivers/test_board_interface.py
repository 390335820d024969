"""The board interface (drivers/board.py): capabilities, refusals, the crossbar as one Board."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from drivers.board import (
    Board,
    BoardGeometry,
    Capability,
    MissingCapabilityError,
    SwitchWear,
    format_capabilities,
    mvm_mode,
)
from drivers.crossbar_board import CrossbarBoard
from simulator.bench import SimulatedBench


class MinimalBoard(Board):
    """Only what every bench must have: switches, cell routing, the safe state (in memory)."""

    def __init__(self) -> None:
        self.name = "minimal board"
        self.geometry = BoardGeometry(2, 3, 4)
        self.info = {}
        self._masks = np.zeros((2, 3, 4), dtype=bool)
        self._route = "OPEN"
        self.sent: list[str] = []

    def set_cell_mask(self, r: int, c: int, mask: int, *, verify: bool = True) -> None:
        self.sent.append(f"cell {r},{c},{mask}")
        self._masks[r, c] = [(mask >> k) & 1 for k in range(4)]

    def cell_mask(self, r: int, c: int) -> int:
        return int(sum(1 << k for k in range(4) if self._masks[r, c, k]))

    def set_masks(self, masks: npt.ArrayLike, *, verify: bool = True) -> None:
        self._masks = np.asarray(masks, dtype=bool).copy()

    def masks(self) -> npt.NDArray[np.bool_]:
        return self._masks.copy()

    def open_all(self) -> None:
        self._masks[:] = False

    def route_cell(self, r: int, c: int, *, four_wire: bool = False) -> None:
        self._route = f"CELL {r},{c},2W"

    def route_open(self) -> None:
        self._route = "OPEN"

    def routing(self) -> str:
        return self._route

    def safe(self) -> None:
        self.open_all()
        self.route_open()

    def is_safe(self) -> bool:
        return not self._masks.any() and self._route == "OPEN"

    def close(self) -> None:
        self.safe()


def test_mvm_mode_needs_row_sources_and_a_column_read_out() -> None:
    assert mvm_mode({Capability.DACS, Capability.ADCS}) == "analog"
    assert mvm_mode({Capability.DACS, Capability.MVM_SMU}) == "analog"
    assert mvm_mode({Capability.DACS}) == "superposition"
    assert mvm_mode({Capability.ADCS, Capability.MVM_SMU}) == "superposition"
    assert mvm_mode(set()) == "superposition"
    assert format_capabilities({Capability.PULSES, Capability.DACS}) == "dacs, pulses"
    assert format_capabilities(()) == "none"


@pytest.mark.parametrize(
    ("call", "capability"),
    [
        (lambda b: b.set_dacs([0.0, 0.0]), "dacs"),
        (lambda b: b.dacs(), "dacs"),
        (lambda b: b.zero_dacs(), "dacs"),
        (lambda b: b.read_adcs(), "adcs"),
        (lambda b: b.route_mvm_adc(), "dacs"),
        (lambda b: b.route_mvm_smu(0), "mvm-smu"),
        (lambda b: b.temperature_C(), "temperature"),
        (lambda b: b.pulse(0, 0, 0, 1.0, 1e-6), "pulses"),
        (lambda b: b.pulse_count(0, 0, 0), "pulses"),
        (lambda b: b.switch_wear(), "switch-counts"),
    ],
)
def test_an_absent_capability_is_refused_naming_it(call: object, capability: str) -> None:
    board = MinimalBoard()
    with pytest.raises(MissingCapabilityError) as exc:
        call(board)  # type: ignore[operator]
    message = str(exc.value)
    assert message.startswith("minimal board: ")
    assert f"'{capability}'" in message and "nothing was sent" in message
    assert board.sent == []


def test_require_lists_every_missing_capability_and_who_needs_it() -> None:
    board = MinimalBoard()
    board.capabilities = frozenset({Capability.DACS})
    board.require(Capability.DACS, needed_by="x")  # present: no error
    with pytest.raises(MissingCapabilityError) as exc:
        board.require(Capability.DACS, Capability.ADCS, Capability.PULSES, needed_by="an MVM")
    assert exc.value.missing == (Capability.ADCS, Capability.PULSES)
    assert "an MVM needs 'adcs' (every column read at once" in str(exc.value)
    assert "'pulses' (a memristor pulse circuit)" in str(exc.value)
    assert board.mvm_mode == "superposition"


def test_default_set_branch_is_a_read_modify_write_of_the_cell() -> None:
    board = MinimalBoard()
    board.set_cell_mask(1, 2, 0b0101)
    board.set_branch(1, 2, 1, True)
    assert board.cell_mask(1, 2) == 0b0111
    board.set_branch(1, 2, 0, False)
    assert board.cell_mask(1, 2) == 0b0110
    assert board.cell_kind(1, 2) == "resistor"
    with board:
        board.route_cell(0, 0)
    assert board.is_safe()


def test_switch_wear_fraction() -> None:
    wear = SwitchWear({"1101": 50, "1102": 0}, rated_operations=100)
    assert wear.fraction_used() == {"1101": 0.5, "1102": 0.0}
    assert SwitchWear({"a": 7}, rated_operations=None).fraction_used() == {"a": 0.0}


@pytest.mark.parametrize(
    ("preset", "pulses"), [("small", False), ("memristor", True), ("mixed", True)]
)
def test_the_crossbar_board_is_a_board_declaring_its_capabilities(
    preset: str, pulses: bool
) -> None:
    with SimulatedBench(preset, seed=1) as bench, CrossbarBoard(bench.board_url) as board:
        assert isinstance(board, Board)
        expected = {
            Capability.DACS,
            Capability.ADCS,
            Capability.MVM_SMU,
            Capability.FOUR_WIRE,
            Capability.TEMPERATURE,
        } | ({Capability.PULSES} if pulses else set())
        assert board.capabilities == expected
        assert board.mvm_mode == "analog"
        # BOARD:INFO? switch_off_max_S (8e-10 S on the simulated switches) times K branches
        k = board.geometry.branches
        assert board.open_cell_max_S == pytest.approx(k * float(board.info["switch_off_max_S"]))
        assert board.settle_time_s == 0.0
        assert board.adc_range_A == pytest.approx(float(board.info["adc_range_A"]))
        with pytest.raises(MissingCapabilityError, match="'switch-counts'"):
            board.switch_wear()
