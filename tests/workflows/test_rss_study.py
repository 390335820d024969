"""The study workflow: CSV, slopes CSV and PNG written, reproducible, independent of workers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from labrss.rss.study import MODELS, STATISTICS
from labrss.workflows.batch import EngineSettings
from labrss.workflows.rss_study import (
    CSV_COLUMNS,
    QUICK_CONFIG,
    RSSStudyConfig,
    format_slopes,
    read_study_csv,
    run_rss_study,
    write_study_csv,
)

SMALL = RSSStudyConfig(
    n_values=(4, 6, 8, 10), instances=60, models=("uniform", "differential20"), fit_min_n=6
)


def test_writes_csv_slopes_and_png(tmp_path: Path) -> None:
    calls: list[tuple[float, float, str]] = []
    out = run_rss_study(
        SMALL,
        tmp_path / "out",
        progress=lambda d, t, m: calls.append((d, t, m)),
        engine=EngineSettings.in_process(),
    )
    assert out.csv_path.read_text().splitlines()[0] == ",".join(CSV_COLUMNS)
    rows = read_study_csv(out.csv_path)
    assert len(rows) == 2 * 4 * len(STATISTICS)
    assert rows == out.rows  # the CSV round-trips exactly (shortest repr floats)
    assert {(r.model, r.n) for r in rows} == {(m, n) for m in SMALL.models for n in SMALL.n_values}
    for r in rows:
        assert r.instances == 60
        assert math.isclose(r.bits, -math.log2(r.error))
    # progress is counted in sums: it ends at the total, instances x 2**n per point
    total = 2 * 60 * sum(2**n for n in SMALL.n_values)
    assert calls[-1][:2] == (total, total)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)
    png = out.png_path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    slopes = out.slopes_path.read_text().splitlines()
    assert slopes[0].startswith("model,statistic,slope_bits_per_element")
    assert len(slopes) == 1 + 2 * len(STATISTICS)
    median = next(f for f in out.fits if f.model == "uniform" and f.statistic == "worst_median")
    # typical precision grows by roughly (not more than) one bit per element
    assert 0.5 < median.slope < 1.2
    assert "worst_median" in format_slopes(out.fits)


@pytest.mark.slow  # starts a LocalCluster of two worker processes (numba import in each)
def test_same_seed_same_csv_whatever_the_workers(tmp_path: Path) -> None:
    one = EngineSettings.in_process()
    a = run_rss_study(SMALL, tmp_path / "a", engine=one)
    b = run_rss_study(SMALL, tmp_path / "b", engine=EngineSettings(workers=2), chunk_sums=1 << 12)
    c = run_rss_study(RSSStudyConfig(**{**SMALL.__dict__, "seed": 1}), tmp_path / "c", engine=one)
    assert b.batch is not None and len(b.batch.workers_seen) == 2
    assert a.csv_path.read_bytes() == b.csv_path.read_bytes()
    assert a.csv_path.read_bytes() != c.csv_path.read_bytes()


def test_resume_recomputes_nothing_finished(tmp_path: Path) -> None:
    one = EngineSettings.in_process()
    first = run_rss_study(SMALL, tmp_path, engine=one, chunk_sums=1 << 10)
    assert first.batch is not None and first.batch.reused == 0
    chunks = sorted((tmp_path / "chunks").glob("*.npz"))
    assert len(chunks) == first.batch.computed > 4
    for path in chunks[::2]:  # as if the run had stopped before these
        path.unlink()
    again = run_rss_study(SMALL, tmp_path, engine=one, chunk_sums=1 << 10, resume=True)
    assert again.batch is not None
    assert (again.batch.reused, again.batch.computed) == (
        len(chunks) - len(chunks[::2]),
        len(chunks[::2]),
    )
    assert again.rows == first.rows
    with pytest.raises(ValueError, match="instances"):
        run_rss_study(
            RSSStudyConfig(**{**SMALL.__dict__, "instances": 61}), tmp_path, engine=one,
            chunk_sums=1 << 10, resume=True,
        )  # fmt: skip


def test_bad_configuration_is_named() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        RSSStudyConfig(models=("nope",)).validate()
    with pytest.raises(ValueError, match="must be even"):
        RSSStudyConfig(models=("differential20",), n_values=(5,)).validate()
    with pytest.raises(ValueError, match="instances"):
        RSSStudyConfig(instances=0).validate()


def test_malformed_csv_names_file_and_line(tmp_path: Path) -> None:
    path = write_study_csv([], tmp_path / "s.csv")
    path.write_text(path.read_text() + "uniform,four,1,worst_max,0.5,1.0,4.0\n")
    with pytest.raises(ValueError, match=r"s\.csv, line 2"):
        read_study_csv(path)
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match=r"x\.csv: header"):
        read_study_csv(tmp_path / "x.csv")


def test_quick_configuration_covers_every_model() -> None:
    QUICK_CONFIG.validate()
    assert set(QUICK_CONFIG.models) == set(MODELS)
    assert max(QUICK_CONFIG.n_values) >= 16 and QUICK_CONFIG.fit_min_n < max(QUICK_CONFIG.n_values)
