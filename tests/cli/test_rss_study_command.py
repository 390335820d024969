"""`labrss rss-study`: arguments, outputs, printed slopes, progress on stderr."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from labrss.cli.commands.rss_study import parse_n_range
from labrss.cli.main import main


def test_n_range_parsing() -> None:
    assert parse_n_range("4:22:2") == (4, 6, 8, 10, 12, 14, 16, 18, 20, 22)
    assert parse_n_range("3:5") == (3, 4, 5)
    assert parse_n_range("8,12") == (8, 12)
    for bad in ("4:x", "4:10:0", "0:4", "1:2:3:4", "10:4"):
        with pytest.raises(argparse.ArgumentTypeError, match="--n"):
            parse_n_range(bad)


def test_runs_and_prints_slopes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "rss-study", "--n", "6:12:2", "--instances", "20", "--models",
            "uniform,parallel20", "--seed", "3", "--fit-min-n", "8", "--out", str(tmp_path),
            "--workers", "0",
        ]
    )  # fmt: skip
    assert code == 0
    cap = capsys.readouterr()
    assert "fitted slopes (bits per element, n >= 8)" in cap.out
    assert "parallel20" in cap.out and "counting limit" in cap.out
    assert "rss-study" in cap.err  # the progress bar goes to stderr
    for name in ("rss_study.csv", "rss_study_slopes.csv", "rss_study.png"):
        assert (tmp_path / name).stat().st_size > 0
    lines = (tmp_path / "rss_study.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * 4 * 6


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["rss-study", "--models", "uniform,bogus"])
    assert exc.value.code == 2
    assert "bogus" in capsys.readouterr().err
    code = main(["rss-study", "--models", "differential20", "--n", "5", "--out", str(tmp_path)])
    assert code == 2
    assert "must be even" in capsys.readouterr().err


def test_dims_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["rss-study", "--dims", "1,2", "--n", "4:12:4", "--instances", "10", "--out",
         str(tmp_path), "--no-progress"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "d log2(1/eps)" in out and "model nsn" in out
    lines = (tmp_path / "mrss_study.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * 3
    assert (tmp_path / "mrss_study.png").stat().st_size > 0
    with pytest.raises(SystemExit):
        main(["rss-study", "--dims", "0,2"])
