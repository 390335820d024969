"""A log-scale plot axis whose tick labels do not overlap.

pyqtgraph's log axis labels every minor tick (2, 3, ... 9 times a decade): over two or
three decades of a small plot, 7, 8 and 9 x 10^k land on top of each other. `LogAxis`
labels the decades, then 2 and 5 x 10^k (a level pyqtgraph's own crowding rule drops
when the plot is too short for it), and draws the other minor ticks without text.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg

#: Mantissas (x 10^k) of the labelled minor ticks; the others are marks only.
LABELLED_MANTISSAS = (2.0, 5.0)
_UNLABELLED_MANTISSAS = (3.0, 4.0, 6.0, 7.0, 8.0, 9.0)


def _mantissa(log_value: float) -> float:
    """``m`` of ``10**log_value = m x 10^k`` with 1 <= m < 10 (rounding-safe at decades)."""
    m = 10 ** (log_value - math.floor(log_value + 1e-9))
    return 1.0 if abs(m - 10.0) < 1e-6 else float(m)


class LogAxis(pg.AxisItem):  # type: ignore[misc]
    """An `pg.AxisItem` for log mode: ticks at decades, 2 and 5 x 10^k (labelled while
    they fit) and the other integer multiples (marks only). Linear mode is unchanged."""

    def logTickValues(
        self,
        minVal: float,
        maxVal: float,
        size: float,
        stdTicks: list[tuple[float | None, list[float]]],
    ) -> list[tuple[float | None, list[float]]]:
        # levels of whole decades pyqtgraph found (1, 2, 5 ... decades apart), then the
        # labelled minor level and the unlabelled one while the decades are few
        ticks: list[tuple[float | None, list[float]]] = [
            (s, t) for s, t in stdTicks if s is not None and s >= 1.0
        ]
        lo, hi = math.floor(minVal), math.ceil(maxVal)
        if not ticks:
            ticks.append((1.0, [float(d) for d in range(lo, hi + 1) if minVal <= d <= maxVal]))
        if len(ticks) < 3:
            for mantissas in (LABELLED_MANTISSAS, _UNLABELLED_MANTISSAS):
                values = [d + math.log10(m) for d in range(lo, hi) for m in mantissas]
                ticks.append((None, [v for v in values if minVal < v < maxVal]))
        return ticks

    def logTickStrings(self, values: list[float], scale: float, spacing: Any) -> list[str | None]:
        # None: a tick pyqtgraph draws without text and leaves out of its crowding rule
        if not values:
            return []
        strings: list[str] = super().logTickStrings(values, scale, spacing)
        return [
            None if np.isclose(_mantissa(v), _UNLABELLED_MANTISSAS, rtol=0, atol=1e-6).any() else s
            for v, s in zip(values, strings, strict=True)
        ]
