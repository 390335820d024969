"""Batch solves over many cells on the engine: the same bits as one `solve` call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labrss.rss import solve
from labrss.workflows.batch import EngineSettings
from labrss.workflows.batch_solve import solve_cells


def test_chunked_solve_equals_one_call_and_resumes(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    g = 1e-3 / (1 + rng.uniform(-0.2, 0.2, size=(300, 12)))
    t = g.sum(1) * rng.uniform(0.25, 0.75, size=300)
    excl = rng.uniform(size=g.shape) < 0.1
    options = {"leakage_S": 1e-9, "exclude": excl, "sigma_S": 1e-7, "secondary": "variance"}
    ref = solve(g, t, **options)
    engine = EngineSettings.in_process()
    res, report = solve_cells(
        g, t, engine=engine, cells_per_chunk=64, chunk_dir=tmp_path, **options
    )
    assert report.computed == 5
    for name in ("mask", "value", "error", "exact", "reachable", "sigma", "n_closed"):
        np.testing.assert_array_equal(getattr(res, name), getattr(ref, name))
    assert res.method == ref.method
    (tmp_path / "cells_000000064-000000128.npz").unlink()
    again, report = solve_cells(
        g, t, engine=engine, cells_per_chunk=64, chunk_dir=tmp_path, resume=True, **options
    )
    assert (report.reused, report.computed) == (4, 1)
    np.testing.assert_array_equal(again.mask, ref.mask)
    with pytest.raises(ValueError, match="inputs"):
        solve_cells(g, t * 1.01, engine=engine, cells_per_chunk=64, chunk_dir=tmp_path,
                    resume=True, **options)  # fmt: skip
    with pytest.raises(ValueError, match="same C"):
        solve_cells(g, t[:10], engine=engine)
