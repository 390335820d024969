"""A store holding a calibration of a simulated board's every element, from its truth.

    from benchmarks.truth_calibration import store_truth_calibration
    run_id = store_truth_calibration(lab, store)   # lab: on the embedded simulator

For tests and benchmarks that need *a* calibration of known quality, not the
calibration workflow's own (labrss.workflows.calibrate measures branches through the SMU;
a real one-by-one calibration of a large board takes hours): written from the
simulator's ground truth with Gaussian noise of ``rel_sigma`` per element (about what
one-by-one reads at NPLC 1 give: the 2450's 1e-4 relative noise floor), the same sigma
stored as the standard error. It is about the elements only, never the wiring.
``corrupt`` lets a test make some estimates wrong (what verification must catch).

Reading the truth is allowed here and in tests only: nothing under labrss/ or
calibration/ imports this module (import-linter contract in pyproject.toml).
"""

from __future__ import annotations

import numpy as np

from labrss.lab import Lab
from labrss.store import CellEstimate, Store
from labrss.workflows.program import board_id_for


def store_truth_calibration(
    lab: Lab,
    store: Store,
    *,
    rel_sigma: float = 1e-4,
    seed: int = 0,
    corrupt: dict[tuple[int, int, int], float] | None = None,
    design: str = "truth-for-tests",
) -> int:
    """Store a completed calibration run of every cell; return its run id.

    ``corrupt`` maps (r, c, k) to a factor applied to that element's estimate;
    ``design`` is the run's recorded design (settings ``"design"``).
    """
    assert lab.simulator is not None, "needs the embedded simulator"
    truth = lab.simulator.model.truth()
    g_on = np.asarray(truth["branch_on_conductance_S"], dtype=np.float64)
    r_off = np.asarray(truth["r_off_ohm"], dtype=np.float64)
    r_el = np.asarray(truth["resistance_ohm"], dtype=np.float64)
    g_off = 1.0 / (r_el + r_off)
    a = g_on - g_off
    rng = np.random.default_rng(seed)
    est = a * (1.0 + rel_sigma * rng.standard_normal(a.shape))
    for (r, c, k), factor in (corrupt or {}).items():
        est[r, c, k] *= factor
    board = board_id_for(lab, store)
    run = store.start_run("calibration", board, {"design": design}, lab.describe())
    rows, cols, _ = a.shape
    store.put_estimates(
        run,
        [
            CellEstimate(
                r=r,
                c=c,
                conductance_S=est[r, c],
                std_S=np.abs(a[r, c]) * rel_sigma,
                series_ohm=0.0,
                series_std_ohm=0.0,
                leakage_S=float(g_off[r, c].sum()),
                leakage_std_S=float(g_off[r, c].sum()) * 0.1,
            )
            for r in range(rows)
            for c in range(cols)
        ],
    )
    store.finish_run(run)
    return run
