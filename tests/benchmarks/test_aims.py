"""`benchmarks.aims`: a benchmark's aims decide its exit code (make bench fails on a miss)."""

from __future__ import annotations

import io
import math

import pytest

from benchmarks.__main__ import main as run_benchmarks
from benchmarks.aims import Aims


def test_all_met_exits_zero_and_prints_the_table() -> None:
    aims = Aims("bench_x")
    assert aims.at_most("driver / raw", 1.18, 1.5, unit="x", includes="one exchange")
    assert aims.at_least("cells per second", 136_000, 100_000, unit="cells/s")
    assert aims.at_most("median error", 0.0055, 0.01, unit="%")
    assert aims.holds("every answer exact", True)
    out = io.StringIO()
    assert aims.finish(out) == 0
    text = out.getvalue()
    assert "driver / raw" in text and "1.18 x" in text and "<= 1.5 x" in text
    assert "136,000 cells/s" in text and ">= 100,000 cells/s" in text
    assert "0.55 %" in text and "<= 1 %" in text
    assert "one exchange" in text
    assert "bench_x: all 4 aims met" in text


@pytest.mark.parametrize(
    "record",
    [
        lambda a: a.at_most("time ratio", 1.6, 1.5),
        lambda a: a.at_least("rate", 99_999, 100_000),
        lambda a: a.at_most("not measured", math.nan, 1.0),
        lambda a: a.at_least("not measured", math.nan, 1.0),
        lambda a: a.holds("exact", False),
    ],
)
def test_one_miss_exits_one_and_names_it(record) -> None:  # type: ignore[no-untyped-def]
    aims = Aims("bench_y")
    aims.at_most("fine", 1.0, 2.0)
    record(aims)
    out = io.StringIO()
    assert aims.finish(out) == 1
    assert "MISSED" in out.getvalue()
    assert "bench_y: 1 of 2 aims MISSED" in out.getvalue()


def test_a_benchmark_without_aims_fails() -> None:
    out = io.StringIO()
    assert Aims("bench_z").finish(out) == 1
    assert "no aims stated" in out.getvalue()


def test_bounds_are_inclusive() -> None:
    aims = Aims("b")
    assert aims.at_most("a", 1.5, 1.5)
    assert aims.at_least("b", 0.85, 0.85)


def test_runner_refuses_unknown_names() -> None:
    assert run_benchmarks(["bench_does_not_exist"]) == 2
