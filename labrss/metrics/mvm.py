"""Analog versus digital MVM comparison metrics (crossbar_sim.md section 7).

Conventions: outputs are batches ``(B, d)`` (one row per input vector; a 1-D array is one
vector). ``y_analog`` is what the board produced, ``y_digital`` the reference (the
target network or the programmed, quantised one). All functions are vectorised over the
batch, ``O(B d)`` unless stated.

* relative L2 error per vector ``eps_b = ||y_a,b - y_d,b||_2 / ||y_d,b||_2``;
* SNR in dB ``-20 log10(eps)`` (``+inf`` for identical vectors);
* mean absolute error;
* per-column gain/offset fit ``y_a ~ gain y_d + offset`` (least squares) and the
  relative L2 error left after correcting with it: the calibratable part (drift, TIA
  gain, on-resistance) separated from noise;
* argmax agreement, accuracy, confusion matrix, error histogram.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "GainOffsetFit",
    "MVMComparison",
    "accuracy",
    "argmax_agreement",
    "compare",
    "confusion_matrix",
    "error_histogram",
    "fit_gain_offset",
    "mean_absolute_error",
    "relative_l2_error",
    "snr_db",
]


def _batch(name: str, y: object) -> np.ndarray:
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        msg = f"{name}: expected (B, d) outputs, got shape {arr.shape}"
        raise ValueError(msg)
    bad = ~np.isfinite(arr)
    if bad.any():
        b, j = (int(v) for v in np.argwhere(bad)[0])
        msg = f"{name}[{b}, {j}] = {float(arr[b, j])!r}: outputs must be finite"
        raise ValueError(msg)
    return arr


def _pair(y_analog: object, y_digital: object) -> tuple[np.ndarray, np.ndarray]:
    ya = _batch("y_analog", y_analog)
    yd = _batch("y_digital", y_digital)
    if ya.shape != yd.shape:
        msg = f"y_analog shape {ya.shape} and y_digital shape {yd.shape} differ"
        raise ValueError(msg)
    return ya, yd


def relative_l2_error(y_analog: object, y_digital: object) -> np.ndarray:
    """``||y_a - y_d|| / ||y_d||`` per vector, ``(B,)``.

    A zero reference vector gives 0 when the analog vector is also zero, else ``+inf``.
    """
    ya, yd = _pair(y_analog, y_digital)
    num = np.linalg.norm(ya - yd, axis=1)
    den = np.linalg.norm(yd, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = num / den
    return np.asarray(np.where(num == 0, 0.0, np.where(den == 0, np.inf, eps)))


def snr_db(eps: object) -> np.ndarray:
    """``-20 log10(eps)`` (dB), elementwise; ``eps = 0`` gives ``+inf``."""
    arr = np.asarray(eps, dtype=np.float64)
    if np.any(arr < 0) or np.any(np.isnan(arr)):
        msg = "snr_db: relative errors must be >= 0 and not NaN"
        raise ValueError(msg)
    with np.errstate(divide="ignore"):
        return np.asarray(-20.0 * np.log10(arr))


def mean_absolute_error(y_analog: object, y_digital: object) -> float:
    """``mean |y_a - y_d|`` over every output of every vector."""
    ya, yd = _pair(y_analog, y_digital)
    return float(np.mean(np.abs(ya - yd)))


@dataclass(frozen=True)
class GainOffsetFit:
    """Per-column least-squares fit ``y_a ~ gain * y_d + offset``.

    Attributes
    ----------
    gain, offset : ``(d,)``.
    corrected : ``(B, d)`` the analog outputs corrected, ``(y_a - offset) / gain``.
    rel_l2_after : ``(B,)`` relative L2 error of ``corrected`` against ``y_d``.
    residual_rms : ``(d,)`` RMS of ``y_a - (gain y_d + offset)`` per column (the part no
        gain/offset correction removes: noise and non-linearity).
    """

    gain: np.ndarray
    offset: np.ndarray
    corrected: np.ndarray
    rel_l2_after: np.ndarray
    residual_rms: np.ndarray


def fit_gain_offset(y_analog: object, y_digital: object) -> GainOffsetFit:
    """Fit a gain and an offset per output column (closed-form least squares).

    A column whose reference is constant has no gain to fit: gain 1 and the mean
    difference as offset. A fitted gain of 0 cannot be inverted: ValueError naming the
    column.
    """
    ya, yd = _pair(y_analog, y_digital)
    md, ma = yd.mean(axis=0), ya.mean(axis=0)
    dd, da = yd - md, ya - ma
    var = (dd**2).sum(axis=0)
    cov = (dd * da).sum(axis=0)
    flat = var <= (np.finfo(np.float64).eps * np.abs(md)) ** 2 * yd.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(flat, 1.0, cov / np.where(flat, 1.0, var))
    offset = ma - gain * md
    if np.any(gain == 0):
        j = int(np.argwhere(gain == 0)[0][0])
        msg = f"fit_gain_offset: column {j} has a fitted gain of 0 (analog output constant)"
        raise ValueError(msg)
    residual = ya - (gain * yd + offset)
    corrected = (ya - offset) / gain
    return GainOffsetFit(
        gain=gain,
        offset=offset,
        corrected=corrected,
        rel_l2_after=relative_l2_error(corrected, yd),
        residual_rms=np.sqrt(np.mean(residual**2, axis=0)),
    )


def argmax_agreement(y_analog: object, y_digital: object) -> float:
    """Fraction of vectors whose largest output is the same (the predicted class)."""
    ya, yd = _pair(y_analog, y_digital)
    return float(np.mean(np.argmax(ya, axis=1) == np.argmax(yd, axis=1)))


def _labels(labels: object, n: int) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.shape != (n,) or lab.dtype.kind not in "iu":
        msg = f"labels: expected ({n},) integers, got shape {lab.shape} dtype {lab.dtype}"
        raise ValueError(msg)
    return lab


def accuracy(scores: object, labels: object) -> float:
    """Fraction of vectors whose argmax of ``scores`` ``(B, d)`` equals ``labels``."""
    sc = _batch("scores", scores)
    lab = _labels(labels, sc.shape[0])
    return float(np.mean(np.argmax(sc, axis=1) == lab))


def confusion_matrix(labels: object, predicted: object, n_classes: int | None = None) -> np.ndarray:
    """Counts ``(n_classes, n_classes)``: row = true class, column = predicted class.

    ``n_classes`` defaults to ``1 + max(labels, predicted)``. ``O(B + n_classes**2)``.
    """
    lab = np.asarray(labels)
    pred = np.asarray(predicted)
    if lab.ndim != 1 or pred.shape != lab.shape or lab.dtype.kind not in "iu":
        msg = f"confusion_matrix: labels {lab.shape} and predicted {pred.shape} must be equal (B,)"
        raise ValueError(msg)
    pred = _labels(pred, lab.shape[0])
    if (lab < 0).any() or (pred < 0).any():
        msg = "confusion_matrix: class indices must be >= 0"
        raise ValueError(msg)
    n = int(max(lab.max(initial=-1), pred.max(initial=-1)) + 1) if n_classes is None else n_classes
    if lab.size and max(int(lab.max()), int(pred.max())) >= n:
        msg = f"confusion_matrix: a class index >= n_classes = {n}"
        raise ValueError(msg)
    return np.bincount(lab * n + pred, minlength=n * n).reshape(n, n)


def error_histogram(
    y_analog: object, y_digital: object, bins: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of ``y_a - y_d`` over all outputs: ``(counts (bins,), edges (bins + 1,))``."""
    ya, yd = _pair(y_analog, y_digital)
    counts, edges = np.histogram((ya - yd).ravel(), bins=bins)
    return counts, edges


@dataclass(frozen=True)
class MVMComparison:
    """Everything `compare` measures; see the module docstring for the definitions.

    ``accuracy_*`` and ``confusion_*`` are None without labels.
    """

    rel_l2: np.ndarray
    median_rel_l2: float
    mean_rel_l2: float
    snr_db_median: float
    mae: float
    fit: GainOffsetFit
    argmax_agreement: float
    accuracy_digital: float | None
    accuracy_analog: float | None
    confusion_digital: np.ndarray | None
    confusion_analog: np.ndarray | None
    histogram_counts: np.ndarray
    histogram_edges: np.ndarray


def compare(
    y_analog: object, y_digital: object, labels: object = None, *, bins: int = 50
) -> MVMComparison:
    """All the metrics for one batch of analog and digital outputs."""
    ya, yd = _pair(y_analog, y_digital)
    eps = relative_l2_error(ya, yd)
    med = float(np.median(eps))
    counts, edges = error_histogram(ya, yd, bins)
    acc_d = acc_a = None
    conf_d = conf_a = None
    if labels is not None:
        lab = _labels(labels, ya.shape[0])
        acc_d, acc_a = accuracy(yd, lab), accuracy(ya, lab)
        n = max(ya.shape[1], int(lab.max(initial=-1)) + 1)
        conf_d = confusion_matrix(lab, np.argmax(yd, axis=1), n)
        conf_a = confusion_matrix(lab, np.argmax(ya, axis=1), n)
    return MVMComparison(
        rel_l2=eps,
        median_rel_l2=med,
        mean_rel_l2=float(np.mean(eps)),
        snr_db_median=float(snr_db(med)),
        mae=mean_absolute_error(ya, yd),
        fit=fit_gain_offset(ya, yd),
        argmax_agreement=argmax_agreement(ya, yd),
        accuracy_digital=acc_d,
        accuracy_analog=acc_a,
        confusion_digital=conf_d,
        confusion_analog=conf_a,
        histogram_counts=counts,
        histogram_edges=edges,
    )
