"""Aims: how a benchmark states what each of its figures must reach, and fails when one misses.

Every benchmark declares an aim for every figure it reports (and for every figure the README
quotes from it), checks each figure against it as it is measured, and ends with
``return aims.finish()``:

    from benchmarks.aims import Aims


    def main(argv: list[str] | None = None) -> int:
        aims = Aims("SMU driver readings")
        ...
        aims.at_most(
            "driver time per reading / raw socket",
            ratio,
            1.5,
            unit="x",
            includes="one :READ? exchange through pyvisa-py; median of paired rounds",
        )
        aims.at_least("exact solver, n = 16, one core", rate, 100_000, unit="cells/s")
        aims.holds("every solution exact", all_exact)
        return aims.finish()


    if __name__ == "__main__":
        raise SystemExit(main())

`Aims.finish` prints the table of aims (figure, value, aim, ``met`` or ``MISSED``, what the
figure includes) and returns 0 when every aim is met, 1 otherwise, so ``python -m
benchmarks.bench_x`` and ``make bench`` (``python -m benchmarks``, which runs every
``bench_*.py`` and exits non-zero if any of them did) fail on a regression.

Rules (docs/benchmarks.md): an aim is the claim a figure supports, not the best value ever
measured (leave room for a loaded machine: compare ratios measured side by side where
timing matters); ``includes`` says what the figure counts (for a time: integration only, or
also range changes, switching, round trips); a figure quoted in the README names its
benchmark, and the README says what it includes.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Literal, TextIO

Comparison = Literal["<=", ">=", "holds"]


@dataclass(frozen=True)
class Aim:
    """One figure and its aim.

    Attributes:
        name: what the figure is (with its conditions: board, n, NPLC, ...).
        value: the measured value (NaN if it could not be measured: a miss).
        comparison: ``"<="`` (at most), ``">="`` (at least) or ``"holds"`` (a yes/no check).
        bound: the aim's bound (ignored for ``"holds"``).
        unit: the unit printed after the value and the bound (``"%"`` scales by 100).
        includes: what the figure counts, for the reader (and the README).
    """

    name: str
    value: float
    comparison: Comparison
    bound: float
    unit: str = ""
    includes: str = ""

    @property
    def met(self) -> bool:
        """Whether the value meets the aim (NaN never does)."""
        if self.comparison == "holds":
            return self.value == 1.0
        if not math.isfinite(self.value):
            return False
        return self.value <= self.bound if self.comparison == "<=" else self.value >= self.bound

    def _format(self, number: float) -> str:
        if self.unit == "%":
            return f"{100 * number:.3g} %"
        text = f"{number:,.0f}" if abs(number) >= 1e4 else f"{number:.3g}"
        return f"{text} {self.unit}".rstrip()

    @property
    def value_text(self) -> str:
        """The value as printed."""
        if self.comparison == "holds":
            return "yes" if self.value == 1.0 else "no"
        return self._format(self.value)

    @property
    def aim_text(self) -> str:
        """The aim as printed, e.g. ``<= 1.5 x``."""
        if self.comparison == "holds":
            return "yes"
        return f"{self.comparison} {self._format(self.bound)}"


class Aims:
    """The aims of one benchmark run (see the module docstring).

    Args:
        title: the benchmark, as the table's heading.
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self.aims: list[Aim] = []

    def _add(self, aim: Aim) -> bool:
        self.aims.append(aim)
        return aim.met

    def at_most(
        self, name: str, value: float, bound: float, *, unit: str = "", includes: str = ""
    ) -> bool:
        """Aim: ``value <= bound``. Returns whether it is met."""
        return self._add(Aim(name, float(value), "<=", float(bound), unit, includes))

    def at_least(
        self, name: str, value: float, bound: float, *, unit: str = "", includes: str = ""
    ) -> bool:
        """Aim: ``value >= bound``. Returns whether it is met."""
        return self._add(Aim(name, float(value), ">=", float(bound), unit, includes))

    def holds(self, name: str, condition: bool, *, includes: str = "") -> bool:
        """Aim: ``condition`` is true. Returns it."""
        return self._add(Aim(name, 1.0 if condition else 0.0, "holds", math.nan, "", includes))

    @property
    def missed(self) -> list[Aim]:
        """The aims not met."""
        return [a for a in self.aims if not a.met]

    def table(self) -> str:
        """The aims as a fixed-width table (figure, value, aim, verdict, includes)."""
        rows = [("figure", "value", "aim", "", "includes")]
        rows += [
            (a.name, a.value_text, a.aim_text, "met" if a.met else "MISSED", a.includes)
            for a in self.aims
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [f"aims of {self.title}:"]
        for r in rows:
            cells = [r[i].ljust(widths[i]) for i in range(4)]
            lines.append("  " + "  ".join(cells) + ("  " + r[4] if r[4] else ""))
        return "\n".join(line.rstrip() for line in lines)

    def finish(self, stream: TextIO | None = None) -> int:
        """Print the table and a verdict; return 0 if every aim is met, else 1.

        A benchmark with no aim fails too: every figure must state one.
        """
        out = stream if stream is not None else sys.stdout
        print(file=out)
        print(self.table(), file=out)
        if hasattr(os, "getloadavg"):
            load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
            print(
                f"  (load average {load} on {os.cpu_count()} cores: timing aims assume a "
                "machine not busy with other jobs)",
                file=out,
            )
        if not self.aims:
            print(f"{self.title}: no aims stated (every benchmark must state its aims)", file=out)
            return 1
        missed = self.missed
        if missed:
            names = "; ".join(a.name for a in missed)
            print(f"{self.title}: {len(missed)} of {len(self.aims)} aims MISSED: {names}", file=out)
            return 1
        print(f"{self.title}: all {len(self.aims)} aims met", file=out)
        return 0
