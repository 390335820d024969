"""`Lab` never switches hot: no switch changes while the DACs drive the rows.

The simulated board records, at every actual switch change, whether it was in MVM routing
with a DAC not at 0 V (the rows driven: current flowing through the switches as they
change). `Lab`'s docstring promises that never happens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from labrss.lab import Lab
from labrss.station import parse_station
from simulator.board_model import BoardModel

HotEvents = list[str]


@pytest.fixture
def lab_and_events() -> Iterator[tuple[Lab, HotEvents]]:
    with Lab(parse_station({"simulator": {"board": "small", "seed": 2}})) as lab:
        assert lab.simulator is not None
        model: BoardModel = lab.simulator.model
        events: HotEvents = []
        original = model._apply_switches

        def spy(new: np.ndarray) -> None:
            changes = not np.array_equal(new, model.switches)
            driven = model.routing.mode in ("mvm_adc", "mvm_smu") and bool(
                np.any(model.dac_voltages_V != 0)
            )
            if changes and driven:
                events.append(f"switches changed hot ({model.routing.describe()})")
            original(new)

        model._apply_switches = spy  # type: ignore[method-assign]
        yield lab, events


def _mvm(lab: Lab, path: str) -> None:
    rows, cols, k = lab.geometry.rows, lab.geometry.cols, lab.geometry.branches
    masks = np.zeros((rows, cols, k), dtype=bool)
    masks[:, :, 0] = True
    lab.set_masks(masks)
    lab.apply_rows(np.full(rows, 0.2))
    lab.read_columns(path)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "change"),
    [
        ("adc", lambda lab: lab.set_masks(np.ones((8, 8, 8), dtype=bool))),
        ("smu", lambda lab: lab.set_cell_mask(3, 4, 0xFF)),
        ("adc", lambda lab: lab.open_all()),
        ("smu", lambda lab: lab.measure_branch(2, 2, 5)),
    ],
    ids=["set_masks", "set_cell_mask", "open_all", "measure_branch"],
)
def test_switches_never_change_while_the_rows_are_driven(
    lab_and_events: tuple[Lab, HotEvents], path: str, change: Callable[[Lab], object]
) -> None:
    lab, events = lab_and_events
    _mvm(lab, path)
    assert lab.simulator is not None
    model = lab.simulator.model
    assert model.routing.mode in ("mvm_adc", "mvm_smu") and np.all(model.dac_voltages_V > 0)
    change(lab)
    assert events == []
    # The DACs were zeroed and the routing opened before the switches changed ...
    assert not np.any(model.dac_voltages_V)
    assert model.routing.mode in ("open", "cell")
    # ... and an MVM afterwards is driven again by apply_rows, as documented.
    lab.apply_rows(np.full(lab.geometry.rows, 0.1))
    reading = lab.read_columns("adc")
    assert np.all(reading.row_voltages_V > 0)
    assert events == []


def test_dacs_are_kept_when_the_rows_are_not_driven(
    lab_and_events: tuple[Lab, HotEvents],
) -> None:
    # Routing open: the DACs drive nothing, so switching keeps them (no needless zeroing).
    lab, events = lab_and_events
    volts = lab.apply_rows(np.full(lab.geometry.rows, 0.2))
    lab.set_masks(np.ones((8, 8, 8), dtype=bool))
    assert lab.simulator is not None
    np.testing.assert_allclose(lab.simulator.model.dac_voltages_V, volts, rtol=1e-8)  # %.9g
    reading = lab.read_columns("adc")
    np.testing.assert_array_equal(reading.row_voltages_V, volts)
    assert events == []
