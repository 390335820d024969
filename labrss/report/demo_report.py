"""The demo's report: a Markdown file with PNG plots (matplotlib, Agg backend).

`write_demo_report(out_dir, data)` takes plain arrays and numbers (`DemoReportData`), so
it knows nothing of the bench: the workflow gathers the data, this module draws it.
Plots: calibration histogram (element conductances and their relative standard errors),
predicted vs measured cell conductance at verification, analog vs digital scatter of the
network's outputs, histogram of the relative L2 errors, and an accuracy table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["DemoReportData", "write_demo_report"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DemoReportData:
    """Everything the report shows (SI units).

    Attributes:
        title: the report's heading.
        summary: the figures table (name -> value), in order.
        element_S, element_std_S: calibrated element conductances and standard errors (S).
        predicted_S, measured_S: verified cells, predicted and measured (S).
        y_analog, y_programmed, y_target: (B, classes) scores.
        rel_l2: (B,) relative L2 error of the analog scores vs the programmed network.
        accuracy: rows of (network, test accuracy) for the table.
        notes: extra Markdown paragraphs (settings, provenance).
        over_time: memristor boards: rows of (virtual time since programming (s), accuracy
            without drift compensation, with it (re-solve), median relative L2 error
            without, with); drawn as a plot and a table when given.
        device_states_S: memristor boards: (banks, K) measured device conductances after
            programming (S), drawn as a histogram when given.
    """

    title: str
    summary: dict[str, Any]
    element_S: FloatArray
    element_std_S: FloatArray
    predicted_S: FloatArray
    measured_S: FloatArray
    y_analog: FloatArray
    y_programmed: FloatArray
    y_target: FloatArray
    rel_l2: FloatArray
    accuracy: list[tuple[str, float]]
    notes: list[str] = field(default_factory=list)
    over_time: list[tuple[float, float, float, float, float]] = field(default_factory=list)
    device_states_S: FloatArray | None = None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.4g}"
    return str(value)


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds:.0f} s"
    if seconds < 86400:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} d"


def write_demo_report(out_dir: str | Path, data: DemoReportData) -> Path:
    """Write ``report.md`` and its PNGs into ``out_dir`` (created); return the report path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, str]] = []

    def save(fig: Any, name: str, caption: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        figures.append((name, caption))

    g = np.asarray(data.element_S, dtype=np.float64).ravel()
    s = np.asarray(data.element_std_S, dtype=np.float64).ravel()
    ok = np.isfinite(g) & (g > 0)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    axes[0].hist(np.log10(g[ok]), bins=60)
    axes[0].set_xlabel("log10 element conductance (S)")
    axes[0].set_ylabel("elements")
    rel = s[ok & np.isfinite(s)] / g[ok & np.isfinite(s)]
    axes[1].hist(np.log10(np.maximum(rel, 1e-12)), bins=60)
    axes[1].set_xlabel("log10 relative standard error")
    save(fig, "calibration_histogram.png", "Calibration: element conductances and uncertainties")

    pred = np.asarray(data.predicted_S).ravel()
    meas = np.asarray(data.measured_S).ravel()
    on = (pred > 0) & np.isfinite(meas)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    axes[0].loglog(pred[on], meas[on], ".", ms=2)
    lo, hi = float(pred[on].min(initial=1e-9)), float(pred[on].max(initial=1e-3))
    axes[0].plot([lo, hi], [lo, hi], "k-", lw=0.5)
    axes[0].set_xlabel("predicted cell conductance (S)")
    axes[0].set_ylabel("measured (S)")
    axes[1].hist(1e2 * (meas[on] / pred[on] - 1.0), bins=60)
    axes[1].set_xlabel("measured / predicted - 1 (%)")
    save(fig, "predicted_vs_measured.png", "Programming: predicted vs measured conductance")

    ya = np.asarray(data.y_analog).ravel()
    yp = np.asarray(data.y_programmed).ravel()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(yp, ya, ".", ms=2)
    span = [
        float(min(yp.min(initial=0), ya.min(initial=0))),
        float(max(yp.max(initial=1), ya.max(initial=1))),
    ]
    ax.plot(span, span, "k-", lw=0.5)
    ax.set_xlabel("digital output (programmed network)")
    ax.set_ylabel("analog output")
    save(fig, "analog_vs_digital.png", "MVM: analog vs digital scores")

    eps = np.asarray(data.rel_l2, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(1e2 * eps[np.isfinite(eps)], bins=50)
    ax.set_xlabel("relative L2 error per vector (%)")
    ax.set_ylabel("vectors")
    save(fig, "error_histogram.png", "MVM: relative L2 error vs the programmed network")

    if data.device_states_S is not None and np.size(data.device_states_S):
        states = np.asarray(data.device_states_S, dtype=np.float64).ravel()
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.hist(1e6 * states[np.isfinite(states)], bins=40)
        ax.set_xlabel("device conductance after programming (uS)")
        ax.set_ylabel("devices")
        save(fig, "device_states.png", "Memristors: device states after coarse programming")

    if data.over_time:
        t = np.array([row[0] for row in data.over_time]) / 3600.0
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        axes[0].plot(t, [100 * row[1] for row in data.over_time], "o-", label="no compensation")
        axes[0].plot(t, [100 * row[2] for row in data.over_time], "s-", label="re-solve")
        axes[0].set_ylabel("analog test accuracy (%)")
        axes[1].plot(t, [100 * row[3] for row in data.over_time], "o-", label="no compensation")
        axes[1].plot(t, [100 * row[4] for row in data.over_time], "s-", label="re-solve")
        axes[1].set_ylabel("median relative L2 error (%)")
        for ax in axes:
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_xlabel("virtual time since programming (h)")
            ax.legend()
        save(fig, "accuracy_over_time.png", "Memristor drift: accuracy over virtual time")

    lines = [f"# {data.title}", "", "## Figures", "", "| quantity | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in data.summary.items()]
    lines += ["", "## Accuracy on the test vectors", "", "| network | accuracy |", "|---|---|"]
    lines += [f"| {name} | {100 * acc:.2f} % |" for name, acc in data.accuracy]
    lines.append("")
    if data.over_time:
        lines += [
            "## Over virtual time (memristor drift)",
            "",
            "| time since programming | accuracy, no compensation | accuracy, re-solve | "
            "median rel. L2, no compensation | median rel. L2, re-solve |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {_duration(t_s)} | {100 * a0:.2f} % | {100 * a1:.2f} % | {100 * e0:.2f} % | "
            f"{100 * e1:.2f} % |"
            for t_s, a0, a1, e0, e1 in data.over_time
        ]
        lines.append("")
    for name, caption in figures:
        lines += [f"## {caption}", "", f"![{caption}]({name})", ""]
    lines += data.notes
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
