"""A CNN on the crossbar (small simulated board): programmed tile by tile, each tile written
once while every patch of every signal streams through it; analog vs digital."""

from __future__ import annotations

import numpy as np
import pytest

from labrss.lab import Lab
from labrss.networks.layers import Conv, Flatten, ReLU
from labrss.networks.model import Layer
from labrss.networks.sequential import SequentialNetwork
from labrss.store import Store
from labrss.workflows.cnn import load_cnn_program, program_cnn, run_cnn_mvm
from labrss.workflows.program import ProgramSettings, is_cnn_program, load_program


def _cnn() -> tuple[SequentialNetwork, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    net = SequentialNetwork(
        [
            Conv(rng.normal(size=(3, 1, 3)), rng.normal(scale=0.2, size=3), (2,), ((1, 1),)),
            ReLU(),
            Flatten(),
            Layer(rng.normal(size=(18, 4)), rng.normal(scale=0.2, size=4)),
        ],
        (1, 12),
        name="test CNN",
    )
    return net, rng.random((100, 12)), rng.random((8, 12))


def test_cnn_runs_on_the_board_each_tile_programmed_once(
    lab: Lab, calibrated: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    net, x_ref, x = _cnn()
    with pytest.raises(ValueError, match="ir_drop = True: IR-drop-aware programming is"):
        program_cnn(lab, calibrated, net, x_ref, settings=ProgramSettings(ir_drop=True))
    assert not calibrated.runs(kind="program")  # refused before anything was switched
    programmed = program_cnn(lab, calibrated, net, x_ref)
    # the stored run reads back as the same CNN program; the MVM below runs on the copy
    assert programmed.run_id is not None and is_cnn_program(calibrated, programmed.run_id)
    with pytest.raises(ValueError, match="holds a CNN: read it with"):
        load_program(calibrated, programmed.run_id)
    prog = load_cnn_program(calibrated, programmed.run_id)
    np.testing.assert_array_equal(prog.network.forward(x), net.forward(x))
    np.testing.assert_array_equal(
        prog.network_programmed.forward(x), programmed.network_programmed.forward(x)
    )
    assert [m.op_index for m in prog.matrices] == [0, 3]
    for a, b in zip(prog.layers, programmed.layers, strict=True):
        np.testing.assert_array_equal(a.mask_pos, b.mask_pos)
        np.testing.assert_array_equal(a.value_S, b.value_S)
    assert [c.measured_S.tolist() for c in prog.checks] == [
        c.measured_S.tolist() for c in programmed.checks
    ]
    # conv: 3 + 1 rows x 3 outputs (1 tile); dense: 18 + 1 rows on 8 rows x 4 pairs (3 tiles)
    assert [lay.plan.n_tiles for lay in prog.layers] == [1, 3]
    assert prog.cells_missed == 0
    writes: list[int] = []
    original = lab.set_masks

    def counting(masks: np.ndarray) -> None:
        writes.append(int(np.asarray(masks).sum()))
        original(masks)

    monkeypatch.setattr(lab, "set_masks", counting)
    labels = net.predict(x)
    res = run_cnn_mvm(lab, calibrated, prog, x, labels)
    # one mask write per tile, then all 8 x 6 patches (conv) and 8 vectors (dense) stream
    assert len(writes) == prog.tiles == res.tile_programmings == 4
    assert res.mvms == 8 * 6 * 1 + 8 * 3
    # the programmed CNN is the target up to the RSS quantisation; the analog one is the
    # programmed one up to the ADC floor (~1 % per vector on 8 x 8 tiles, see test_mvm)
    np.testing.assert_allclose(
        res.y_programmed, res.y_target, atol=1e-2 * np.abs(res.y_target).max()
    )
    assert res.vs_programmed.median_rel_l2 < 0.03
    assert all(e < 0.03 for e in res.layer_rel_l2_median)
    assert res.vs_programmed.argmax_agreement >= 7 / 8
    assert res.y_analog.shape == (8, 4)
    assert not lab.masks().any()
    run = calibrated.run(res.run_id or -1)
    assert run.kind == "mvm" and run.status == "completed"
    assert calibrated.get_value(prog.run_id or -1, "summary")["tiles"] == 4
