"""RSS over memristor banks vs write-verify alone, on the simulated memristor board."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from labrss.lab import Lab, LabInputError
from labrss.station import Station, parse_station
from labrss.store import Store
from labrss.workflows.memristor_rss import (
    BankSettings,
    compare_methods,
    program_bank_rss,
    program_bank_write_verify,
    resolve_bank,
)

SEED = 3


def station(board: str = "memristor", seed: int = SEED) -> Station:
    return parse_station({"simulator": {"board": board, "seed": seed}})


@pytest.fixture
def mem_lab() -> Iterator[Lab]:
    with Lab(station()) as opened:
        yield opened


def true_cell_S(lab: Lab, r: int, c: int) -> float:
    assert lab.simulator is not None
    with lab.simulator.lock:
        return float(lab.simulator.model.true_cell_conductance_S()[r, c])


def test_rss_bank_reaches_the_target_with_the_chosen_subset(mem_lab: Lab) -> None:
    settings = BankSettings(tolerance=0.002)
    bank = program_bank_rss(mem_lab, 2, 5, 150e-6, settings)
    assert bank.method == "rss"
    assert bank.plan is not None
    # every branch coarse-programmed to its level within the coarse band (measured)
    for d, level in zip(bank.devices, bank.plan.levels_S, strict=True):
        assert d.status == "ok"
        assert d.target_S == level
    # the prediction (sum of measured branches) is within the cell tolerance ...
    assert abs(bank.predicted_S - 150e-6) <= 0.002 * 150e-6
    assert bank.predicted_S == pytest.approx(float(bank.branch_S[bank.mask].sum()), rel=1e-12)
    # ... and so is the cell as read, to the verify read noise: 4 reads of ~5 closed devices
    # at <= 0.2 uS each -> 0.22 uS, plus drift since the branch reads (< 0.1 uS): 0.5 uS
    assert abs(bank.measured_S - 150e-6) <= 0.002 * 150e-6 + 0.5e-6
    # the board holds the mask, and the truth agrees with the reading (same bound)
    assert mem_lab.masks()[2, 5].tolist() == bank.mask.tolist()
    assert true_cell_S(mem_lab, 2, 5) == pytest.approx(bank.measured_S, abs=0.5e-6)
    assert bank.pulses == sum(d.pulses for d in bank.devices) + bank.rerolls


def test_resolve_is_switches_only(mem_lab: Lab) -> None:
    bank = program_bank_rss(mem_lab, 0, 1, 150e-6, BankSettings(tolerance=0.005))
    pulses = mem_lab.pulses_applied
    again = resolve_bank(mem_lab, bank, 110e-6)
    assert mem_lab.pulses_applied == pulses
    assert again.pulses == 0
    # a new target in the working range is met to the RSS gap of the measured bank:
    # 256 sums over ~270 uS, so a few uS at worst (the smallest level, 12 uS, bounds it)
    assert abs(again.measured_S - 110e-6) < 12e-6
    assert abs(again.predicted_S - again.measured_S) < 0.5e-6


def test_write_verify_alone_splits_the_target(mem_lab: Lab) -> None:
    bank = program_bank_write_verify(mem_lab, 3, 3, 150e-6, BankSettings(tolerance=0.02))
    # 150 uS over devices of at most 75 % of the range (69.5 uS): 3 devices of 50 uS
    assert bank.mask.tolist() == [True] * 3 + [False] * 5
    assert [d.target_S for d in bank.devices] == pytest.approx([50e-6] * 3)
    assert all(d.status == "ok" for d in bank.devices)
    # three devices each within 2 %: the cell within 2 % plus the verify read noise
    assert abs(bank.error) <= 0.02 + 0.5e-6 / 150e-6
    with pytest.raises(LabInputError, match="cannot be split"):
        program_bank_write_verify(mem_lab, 3, 4, 900e-6)


def test_bad_input_refused_before_anything(mem_lab: Lab) -> None:
    for r, c, t, match in ((9, 0, 1e-4, "not on the board"), (0, 0, -1.0, "must be > 0")):
        with pytest.raises(LabInputError, match=match):
            program_bank_rss(mem_lab, r, c, t)
    assert mem_lab.pulses_applied == 0
    with Lab(station("mixed")) as mixed, pytest.raises(LabInputError, match="resistors"):
        program_bank_rss(mixed, 0, 0, 1e-4)
    with pytest.raises(ValueError, match="coarse_tolerance"):
        BankSettings(coarse_tolerance=1.5)


@pytest.mark.slow
def test_rss_tighter_with_fewer_pulses_same_devices(tmp_path: Path) -> None:
    # Same seed, fresh bench per method: the same devices in the same initial states.
    # At a 0.1 % cell tolerance write-verify alone fights the cycle-to-cycle noise (3.5 %
    # of the range per level) device by device; RSS only needs the coarse levels and lets
    # the subset choice do the fine part. Measured, not assumed: asserted with margins.
    cells = [(r, c) for r in range(2) for c in range(3)]
    targets = list(np.random.default_rng(0).uniform(80e-6, 200e-6, len(cells)))
    db = tmp_path / "cmp.db"
    points = compare_methods(
        station(),
        cells,
        targets,
        wv_tolerances=(0.001,),
        rss_coarse_tolerances=(0.3,),
        settings=BankSettings(tolerance=0.001),
        store_factory=lambda: Store(db),
    )
    wv, rss = points
    assert (wv.method, rss.method) == ("write_verify", "rss")
    assert np.median(np.abs(rss.errors)) < np.median(np.abs(wv.errors))
    assert rss.pulses.sum() < wv.pulses.sum()
    assert rss.instrument_time_s.sum() < wv.instrument_time_s.sum()
    # RSS: the cell within tolerance + verify read noise (0.5 uS, as above) everywhere
    assert np.all(np.abs(rss.errors) * np.asarray(targets) <= 0.001 * np.asarray(targets) + 5e-7)
    with Store(db) as store:
        for point in points:
            assert point.run_id is not None
            assert store.run(point.run_id).kind == "memristor_rss"
            assert store.get_value(point.run_id, "summary")["method"] == point.method
            assert store.get_result(point.run_id, "masks").shape == (len(cells), 8)
