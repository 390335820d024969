"""A reusable pytest conformance suite for board drivers: what `labrss selftest` checks on a
real bench, run against the simulator, plus the interface's contract.

A driver's author subclasses `BoardConformance` in a test module and says which station to
open (usually the driver's emulator on the embedded simulator)::

    from labrss.conformance import BoardConformance, simulated_station

    class TestRelayBoard(BoardConformance):
        @classmethod
        def station(cls):
            return simulated_station("relayboard", board="small")

pytest then collects every test below for that driver. labrss runs it on each of its own
board drivers (tests/drivers/test_conformance.py) and on the example plug-in
(docs/examples/relay-board-plugin). It needs pytest (a test dependency, not a run-time one).

The checks:

* every self-test check (`labrss.workflows.selftest.CHECKS`) passes, or is "n/a" for a
  capability the board does not declare: identities, the safe state, the SMU's limits,
  every switch written and read back, break-before-make and isolation seen electrically,
  DAC and ADC read-back, temperature, switch wear, the safe state after an interruption;
* the board is a `drivers.board.Board` and declares no more than its plug-in description;
* every absent capability is refused with `MissingCapabilityError` naming it;
* bad indices and masks are refused (ValueError or the driver's InstrumentError) and leave
  the bench safe;
* the declared figures make sense (open-cell leakage bound, settling time);
* the driver's `Recognition` recognises the board's own identify reply (discovery);
* `close` leaves the board safe and can be called twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
import pytest

from drivers.board import Board, Capability, MissingCapabilityError
from drivers.errors import InstrumentError
from drivers.plugins import find_board_driver
from labrss.lab import Lab
from labrss.station import Station, parse_station
from labrss.workflows.selftest import CHECKS, THERMAL_CHECK, run_check

__all__ = ["BoardConformance", "simulated_station"]


def simulated_station(
    driver: str, *, board: str = "small", seed: int = 0, **sections: Any
) -> Station:
    """A station whose board (``driver``) and SMU are the embedded simulator's.

    ``board`` is the simulator's preset; ``sections`` are further station sections
    (``smu={"driver": "keysight_b2900"}``, ``simulator={"bench": "switch-matrix"}``).
    """
    data: dict[str, dict[str, Any]] = {
        "board": {"driver": driver},
        "simulator": {"board": board, "seed": seed},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_station(data, source=f"<conformance station for {driver}>")


_CALLS: dict[Capability, str] = {
    Capability.DACS: "dacs",
    Capability.ADCS: "read_adcs",
    Capability.MVM_SMU: "route_mvm_smu",
    Capability.PULSES: "pulse_count",
    Capability.TEMPERATURE: "temperature_C",
    Capability.SWITCH_COUNTS: "switch_wear",
}


class BoardConformance:
    """The conformance tests; subclass as ``Test<Name>`` and define `station`."""

    checks: ClassVar[tuple[str, ...]] = tuple(name for name, _, _ in CHECKS)

    @classmethod
    def station(cls) -> Station:
        """The station to open (a subclass returns its own)."""
        raise NotImplementedError(f"{cls.__name__} must define the classmethod station()")

    @pytest.fixture(scope="class")
    @classmethod
    def lab(cls) -> Iterator[Lab]:
        """One `Lab` for the class (every check leaves the bench safe)."""
        with Lab(cls.station()) as lab:
            yield lab

    @pytest.mark.parametrize("check", [name for name, _, _ in CHECKS])
    def test_selftest_check(self, lab: Lab, check: str) -> None:
        name, capability, function = next(c for c in CHECKS if c[0] == check)
        if capability is not None and capability not in lab.capabilities:
            pytest.skip(f"the board has no '{capability.value}'")
        if name == THERMAL_CHECK and not lab.has_thermal:
            pytest.skip("the station has no [thermal] stage")
        result = run_check(lab, name, function, None)
        assert result.status == "pass", f"{name}: {result.detail}"

    def test_a_board_declaring_no_more_than_its_driver(self, lab: Lab) -> None:
        board = lab.board
        assert isinstance(board, Board)
        declared = find_board_driver(lab.station.board.driver).capabilities
        assert board.capabilities <= declared, board.capabilities - declared
        g = board.geometry
        assert min(g.rows, g.cols, g.branches) >= 1
        assert board.identity and board.serial and board.name
        assert isinstance(board.info, dict)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in board.info.items())
        assert board.element_kind in ("resistor", "memristor", "mixed")

    def test_declared_figures(self, lab: Lab) -> None:
        board = lab.board
        assert 0 < board.open_cell_max_S < 1e-6, board.open_cell_max_S
        assert 0 <= board.settle_time_s < 10, board.settle_time_s
        if board.has(Capability.DACS):
            assert 0 < board.dac_lsb_V < board.dac_range_V
            assert 0 < board.max_dac_voltage_V <= board.dac_range_V
        if board.has(Capability.ADCS):
            assert board.adc_range_A > 0
        if board.has(Capability.PULSES):
            assert board.pulse_limits is not None

    def test_absent_capabilities_are_refused_by_name(self, lab: Lab) -> None:
        board = lab.board
        for capability, method in _CALLS.items():
            if capability in board.capabilities:
                continue
            args: tuple[Any, ...] = (0,) if method == "route_mvm_smu" else ()
            if method == "pulse_count":
                args = (0, 0, 0)
            with pytest.raises(MissingCapabilityError) as exc:
                getattr(board, method)(*args)
            assert f"'{capability.value}'" in str(exc.value) or exc.value.missing
        if not board.has(Capability.FOUR_WIRE):
            with pytest.raises(MissingCapabilityError, match="'4-wire'"):
                board.route_cell(0, 0, four_wire=True)
        assert board.is_safe()

    def test_bad_indices_and_masks_are_refused(self, lab: Lab) -> None:
        board = lab.board
        g = board.geometry
        bad_calls: list[Callable[[], object]] = [
            lambda: board.set_cell_mask(g.rows, 0, 1),
            lambda: board.set_cell_mask(0, g.cols, 1),
            lambda: board.set_cell_mask(0, 0, 1 << g.branches),
            lambda: board.set_cell_mask(0, 0, -1),
            lambda: board.cell_mask(-1, 0),
            lambda: board.route_cell(0, g.cols),
            lambda: board.set_masks(np.zeros((g.rows + 1, g.cols, g.branches), dtype=bool)),
        ]
        for call in bad_calls:
            with pytest.raises((ValueError, InstrumentError)):
                call()
        lab.safe()
        assert board.is_safe()
        assert not board.masks().any()

    def test_recognition_knows_the_boards_identify_reply(self, lab: Lab) -> None:
        recognition = find_board_driver(lab.station.board.driver).recognition
        assert recognition.matches(lab.board.identity), lab.board.identity

    def test_close_is_idempotent(self) -> None:
        with Lab(self.station()) as lab:
            board = lab.board
            lab.set_cell_mask(0, 0, 1)
            lab.measure_cell(0, 0)
            assert not board.is_safe()
            board.safe()
            assert board.is_safe()
        board.close()  # Lab closed it already: a second close does nothing
        board.close()
