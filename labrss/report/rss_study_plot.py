"""The precision study's figure: bits of precision against n, one panel per model (PNG).

Drawn with matplotlib's Agg backend (no display needed). The figure shows, per model, the
worst-case error over the target interval as bits (``-log2(error / unit)``) for the
median instance, the 99th-percentile-bad instance and the worst instance, the median
error for a random target, and the counting limit ``n + 1 - log2(W)`` (the pigeonhole
bound for ``2**n`` sums over an interval of width ``W``; ``n`` for ``U[-1,1]``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from labrss.rss.study import MODELS, SlopeFit, StatisticRow

__all__ = ["plot_rss_study"]

#: (statistic, legend label, matplotlib style) of the curves drawn in every panel.
_CURVES: tuple[tuple[str, str, str], ...] = (
    ("worst_median", "worst target, median instance", "o-"),
    ("worst_p99", "worst target, 99th-percentile instance", "s-"),
    ("worst_max", "worst target, worst instance", "v-"),
    ("random_median", "random target, median", "x--"),
)


def plot_rss_study(
    rows: Sequence[StatisticRow],
    path: Path,
    *,
    fits: Sequence[SlopeFit] = (),
    title: str | None = None,
) -> Path:
    """Write the study's figure to ``path`` (PNG) and return ``path``.

    ``rows`` are the study's statistic rows (any models, any n); ``fits`` add the fitted
    slope of the median worst-case curve to each panel's title. Raises ValueError when
    ``rows`` is empty.
    """
    if not rows:
        msg = f"plot_rss_study: no study rows to plot into {path}"
        raise ValueError(msg)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r.model for r in rows))
    cols = min(3, len(models))
    nrows = math.ceil(len(models) / cols)
    fig, axes = plt.subplots(
        nrows, cols, figsize=(4.6 * cols, 3.8 * nrows), squeeze=False, sharex=True
    )
    slope_of = {(f.model, f.statistic): f for f in fits}
    try:
        for ax, model in zip(axes.flat, models, strict=False):
            mine = [r for r in rows if r.model == model]
            ns = sorted({r.n for r in mine})
            limit = {r.n: r.counting_limit_bits for r in mine}
            ax.plot(
                ns,
                [limit[n] for n in ns],
                "k:",
                lw=1.5,
                label="counting limit of the worst case (2^n sums)",
            )
            for stat, label, style in _CURVES:
                pts = sorted((r.n, r.bits) for r in mine if r.statistic == stat)
                pts = [(n, b) for n, b in pts if math.isfinite(b)]
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], style, ms=4, label=label)
            unit = MODELS[model].unit if model in MODELS else "unit"
            ax.set_xticks(ns if len(ns) <= 12 else ns[:: math.ceil(len(ns) / 12)])
            ax.set_xlabel("n, number of elements")
            ax.set_ylabel(f"bits = -log2(error / {unit})")
            fit = slope_of.get((model, "worst_median"))
            head = model if fit is None else f"{model}: {fit.slope:.2f} bit/element (median)"
            ax.set_title(head, fontsize=10)
            ax.grid(True, alpha=0.3)
        for ax in list(axes.flat)[len(models) :]:
            ax.set_visible(False)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
        instances = max(r.instances for r in rows)
        fig.suptitle(
            title
            or f"RSS precision: exact worst case over the target interval, "
            f"{instances} instances per point",
            fontsize=11,
        )
        fig.tight_layout(rect=(0.0, 0.07, 1.0, 0.96))
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path
