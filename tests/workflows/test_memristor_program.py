"""Resident memristor programs on the simulated `memristor` preset (8x8x8, seed 3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from drivers.board import MissingCapabilityError
from labrss.lab import Lab
from labrss.mapping.tiling import LayerNotRealisableError
from labrss.networks.model import Network
from labrss.station import parse_station
from labrss.store import Store
from labrss.workflows.memristor_program import (
    MemristorProgramResult,
    check_resident,
    load_memristor_program,
    program_network_memristor,
    resident_digits_task,
    resolve_program,
)
from labrss.workflows.mvm import MVMSettings, run_mvm


@pytest.fixture
def mem_lab() -> Iterator[Lab]:
    with Lab(parse_station({"simulator": {"board": "memristor", "seed": 3}})) as opened:
        yield opened


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "lab.db") as s:
        yield s


def tiny_network() -> tuple[Network, np.ndarray]:
    """2 inputs -> 1 output, one zero weight: 3 rows x 1 pair, 4 banks programmed."""
    net = Network([(np.array([[1.5], [0.0]]), np.array([-0.4]))], name="tiny 2-1")
    return net, np.random.default_rng(0).random((50, 2))


def test_only_resident_networks_are_accepted() -> None:
    rng = np.random.default_rng(0)
    two = Network([(rng.normal(size=(3, 2)), np.zeros(2)), (rng.normal(size=(2, 1)), np.zeros(1))])
    with pytest.raises(LayerNotRealisableError, match=r"layer 1 .*only one-layer"):
        check_resident(two, 8, 8)
    wide = Network([(rng.normal(size=(4, 5)), np.zeros(5))], name="wide")
    with pytest.raises(LayerNotRealisableError, match=r"wide layer 0 \(4x5\).*8x8 board"):
        check_resident(wide, 8, 8)
    tall = Network([(rng.normal(size=(8, 2)), np.zeros(2))], name="tall")  # 8 + bias rows
    with pytest.raises(LayerNotRealisableError, match="9 rows"):
        check_resident(tall, 8, 8)
    check_resident(Network([(rng.normal(size=(7, 4)), np.zeros(4))]), 8, 8)  # exactly fits


def test_a_resistor_board_is_refused_before_anything_is_switched(store: Store) -> None:
    net, x = tiny_network()
    with Lab(parse_station({"simulator": {"board": "small", "seed": 1}})) as lab:
        with pytest.raises(
            MissingCapabilityError, match="program_network_memristor needs 'pulses'"
        ):
            program_network_memristor(lab, store, net, x)
        assert lab.pulses_applied == 0
    assert store.runs() == []


def test_program_verify_resolve_and_reload(mem_lab: Lab, store: Store) -> None:
    net, x = tiny_network()
    result = program_network_memristor(mem_lab, store, net, x)
    assert isinstance(result, MemristorProgramResult)
    # the zero weight is an open pair: 4 banks (weight and bias pairs), no pulse for it
    assert sorted(b.cell for b in result.banks) == [(0, 0), (0, 1), (2, 0), (2, 1)]
    layer = result.layers[0]
    assert not layer.mask_pos[1].any() and not layer.mask_neg[1].any()
    # every target inside the coarse plan's working range, G+ - G- = s w
    assert result.plan is not None
    for b in result.banks:
        assert result.plan.target_lo_S <= b.target_S <= result.plan.target_hi_S
    s = float(layer.scale_S[0])
    pos = next(b for b in result.banks if b.cell == (0, 0)).target_S
    neg = next(b for b in result.banks if b.cell == (0, 1)).target_S
    assert pos - neg == pytest.approx(1.5 * s, rel=1e-12)
    # the RSS choice: each bank's prediction within the 1 % bank tolerance (re-rolls)
    # or, failing that, the best subset (the bank reports its error either way)
    assert all(abs(b.predicted_S / b.target_S - 1) < 0.02 for b in result.banks)
    # pulses: every one counted, all recorded in the store
    assert result.pulses == mem_lab.pulses_applied > 4 * 8
    pulses = store.get_result(result.run_id or 0, "pulses")
    assert int(np.sum(pulses["count"])) == result.pulses
    # verification by row reads: measured within 1 % (+ sigma) of the sum of branch reads
    check = result.checks[0]
    assert not check.miss.any()
    assert check.programmed.sum() == 4
    # re-solve: switches only, and the reloaded program has the same banks
    pulses_before = mem_lab.pulses_applied
    again = resolve_program(mem_lab, store, result)
    assert mem_lab.pulses_applied == pulses_before and again.pulses == 0
    assert again.resolved_from == result.run_id and again.run_id != result.run_id
    loaded = load_memristor_program(store, result.run_id or 0)
    assert [b.cell for b in loaded.banks] == [b.cell for b in result.banks]
    np.testing.assert_array_equal(loaded.device_states_S(), result.device_states_S())
    assert loaded.pulses == result.pulses and loaded.plan is not None
    # the resident program runs as is (switches only) and matches the programmed layer to
    # a few % of its output range (devices read ~0.2 uS noisy on ~140 uS cells)
    mvm = run_mvm(mem_lab, store, again, x[:20], settings=MVMSettings(path="smu"))
    assert mem_lab.pulses_applied == pulses_before
    assert mvm.vs_programmed.median_rel_l2 < 0.05


@pytest.mark.slow
def test_resident_digits_task_runs_on_the_memristor_board(mem_lab: Lab, store: Store) -> None:
    task = resident_digits_task()
    assert task.test_accuracy > 0.95  # 133 of 134 test images, digital
    result = program_network_memristor(mem_lab, store, task.network, task.x_train)
    assert len(result.banks) == 42 and result.cells_missed <= 2
    mvm = run_mvm(
        mem_lab, store, result, task.x_test, task.y_test, settings=MVMSettings(path="smu")
    )
    # analog accuracy within 3 test images (2.2 points) of the digital network
    assert mvm.vs_target.accuracy_analog is not None
    assert mvm.vs_target.accuracy_analog >= task.test_accuracy - 0.023
