"""The presets' on-board reference standard: drawn within its certificate, nothing else
changed (its draws have a stream of their own)."""

from __future__ import annotations

import dataclasses

import numpy as np

from simulator.board_config import ReferenceConfig, load_board_config
from simulator.board_instance import draw_board_instance


def test_the_standard_conforms_to_its_certificate_and_leaves_the_board_as_it_was() -> None:
    cfg = load_board_config("default")
    ref = cfg.reference
    assert ref.present and (ref.row, ref.col, ref.branch) == (15, 15, 0)
    at = (ref.row, ref.col, ref.branch)
    bare = dataclasses.replace(cfg, reference=ReferenceConfig())
    d = []
    for seed in range(60):
        inst = draw_board_instance(cfg, seed)
        closed = inst.resistance_ref_ohm[at] + inst.r_on_ref_ohm[at]
        d.append(closed / ref.certified_ohm - 1.0)
        assert inst.tcr_ppm_per_K[at] == ref.tcr_ppm_per_K and inst.aging_ppm_per_decade[at] == 0
        other = draw_board_instance(bare, seed)
        same = np.ones(cfg.geometry.shape, dtype=bool)
        same[at] = False
        np.testing.assert_array_equal(inst.resistance_ref_ohm[same], other.resistance_ref_ohm[same])
    u = ref.expanded_uncertainty_ohm / ref.coverage_factor / ref.certified_ohm
    dev = np.abs(np.array(d))
    assert dev.max() <= 2 * u  # within U = k u, k = 2
    # a normal of standard deviation u truncated at 2u: standard deviation 0.88 u
    assert 0.6 * u < float(np.std(d)) < 1.1 * u
