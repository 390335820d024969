"""`labrss rss-study --dims`: the multidimensional subset-sum study, CSV + PNG + table.

    from labrss.workflows.mrss_study import MRSSStudyConfig, run_mrss_study_files
    outcome = run_mrss_study_files(MRSSStudyConfig(dims=(1, 2, 4, 8)), out_dir)

Runs `labrss.rss.mrss_study.run_mrss_study` and writes ``mrss_study.csv`` (one row per
(d, n): median, 90th percentile and largest max-norm error, exact or heuristic) and
``mrss_study.png`` (error vs n per d; and n needed at ``eps`` vs d next to the counting
bound ``d log2(1/eps)`` and the published bound's shape ``d**3 log(1/eps)
(log(1/eps) + log d)`` scaled to the measured n at the smallest d). With a store and a
board, the ``board`` model draws the entries from the latest calibration's measured
element conductances.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from labrss.rss.mrss_study import (
    MRSSPoint,
    counting_bound_n,
    n_needed,
    published_bound_shape,
    run_mrss_study,
)

__all__ = [
    "MRSSStudyConfig",
    "MRSSStudyOutcome",
    "board_element_values",
    "format_table",
    "run_mrss_study_files",
]


@dataclass(frozen=True)
class MRSSStudyConfig:
    """The study's parameters (see `labrss.rss.mrss_study.run_mrss_study`)."""

    dims: tuple[int, ...] = (1, 2, 4, 8)
    n_values: tuple[int, ...] = (4, 8, 12, 16, 20, 24, 28, 32)
    model: str = "nsn"
    instances: int = 100
    seed: int = 0
    max_exact_n: int = 24
    eps: tuple[float, ...] = (0.1, 0.05)


@dataclass
class MRSSStudyOutcome:
    """The points and the files written."""

    config: MRSSStudyConfig
    points: list[MRSSPoint]
    csv_path: Path
    png_path: Path
    n_at_eps: dict[float, dict[int, float]] = field(default_factory=dict)


def format_table(outcome: MRSSStudyOutcome) -> str:
    """The printed table: n needed per d at each eps, next to the bounds."""
    lines = [
        f"model {outcome.config.model}, {outcome.config.instances} instances per (d, n), "
        "max-norm error of the best subset, targets uniform in [-1, 1]^d",
        f"{'eps':>6} {'d':>3} {'n measured':>10} {'d log2(1/eps)':>14} {'bound shape':>12}",
    ]
    for eps, by_d in outcome.n_at_eps.items():
        for d, n in by_d.items():
            shown = f"{n:.1f}" if math.isfinite(n) else f"> {outcome.config.n_values[-1]}"
            lines.append(
                f"{eps:>6g} {d:>3} {shown:>10} {counting_bound_n(d, eps):>14.1f} "
                f"{published_bound_shape(d, eps):>12.0f}"
            )
    heur = sorted({p.n for p in outcome.points if not p.exact})
    if heur:
        lines.append(f"n = {', '.join(map(str, heur))}: heuristic (not proven optimal)")
    return "\n".join(lines)


def _plot(outcome: MRSSStudyOutcome) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = outcome.config
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for d in cfg.dims:
        pts = sorted((p for p in outcome.points if p.d == d), key=lambda p: p.n)
        ns = [p.n for p in pts]
        ax1.semilogy(ns, [max(p.median_error, 1e-12) for p in pts], "o-", label=f"d = {d}")
    ax1.set_xlabel("n (vectors)")
    ax1.set_ylabel("median max-norm error")
    ax1.set_title(f"multidimensional subset sum ({cfg.model} vectors)")
    ax1.legend()
    dims = np.array(cfg.dims, dtype=float)
    for i, (eps, by_d) in enumerate(outcome.n_at_eps.items()):
        meas = np.array([by_d[d] for d in cfg.dims])
        ax2.loglog(dims, meas, "o-", color=f"C{i}", label=f"measured, eps = {eps:g}")
        counting = [counting_bound_n(int(d), eps) for d in dims]
        ax2.loglog(dims, counting, "--", color=f"C{i}", label="counting bound d log2(1/eps)")
        shape = np.array([published_bound_shape(int(d), eps) for d in dims])
        ok = np.isfinite(meas)
        if ok.any():
            k = int(np.flatnonzero(ok)[0])
            label = "published bound's shape d^3 log(1/eps)(log(1/eps)+log d)"
            ax2.loglog(dims, shape * meas[k] / shape[k], ":", color=f"C{i}", label=label)
    ax2.set_xlabel("d")
    ax2.set_ylabel("n needed (median error <= eps)")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(outcome.png_path, dpi=110)
    plt.close(fig)


def run_mrss_study_files(
    config: MRSSStudyConfig,
    out_dir: Path,
    *,
    board_values: np.ndarray | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> MRSSStudyOutcome:
    """Run the study and write the CSV and PNG into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    points = run_mrss_study(
        config.dims,
        config.n_values,
        model=config.model,
        instances=config.instances,
        seed=config.seed,
        max_exact_n=config.max_exact_n,
        board_values=board_values,
        progress=progress,
    )
    outcome = MRSSStudyOutcome(
        config=config,
        points=points,
        csv_path=out_dir / "mrss_study.csv",
        png_path=out_dir / "mrss_study.png",
        n_at_eps={eps: {d: n_needed(points, d, eps) for d in config.dims} for eps in config.eps},
    )
    with outcome.csv_path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["model", "d", "n", "instances", "median_error", "p90_error", "max_error", "exact"]
        )
        for p in points:
            w.writerow(
                [p.model, p.d, p.n, p.instances, p.median_error, p.p90_error, p.max_error, p.exact]
            )
    _plot(outcome)
    return outcome


def board_element_values(db_path: Path) -> np.ndarray:
    """Measured element conductances (S) of the store's latest calibration (usable
    branches), for the ``board`` model. Raises ValueError when the store has none."""
    from labrss.store import NoCalibrationError, Store

    with Store(db_path) as store:
        best = None
        for board in store.boards():
            try:
                cal = store.latest_calibration(board.id)
            except NoCalibrationError:
                continue
            if best is None or cal.ended_at > best.ended_at:
                best = cal
    if best is None:
        raise ValueError(f"{db_path}: no calibration to draw the board's element values from")
    g = np.asarray(best.conductance_S, dtype=np.float64)
    return g[np.asarray(best.usable) & np.isfinite(g)]
