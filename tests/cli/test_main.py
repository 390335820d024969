"""The `labrss` entry point: version and help."""

from __future__ import annotations

import pytest

from labrss import __version__
from labrss.cli.main import main


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"labrss {__version__}"


def test_help_lists_the_program(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "usage: labrss" in capsys.readouterr().out


def test_an_unexpected_error_is_one_line_naming_the_debug_switch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug in a command reaches the user as one line, not a traceback (LABRSS_DEBUG=1,
    as the test suite sets it, lets the traceback through)."""
    from labrss.cli.commands import drivers

    def boom(args: object) -> int:
        raise KeyError("a bug")

    monkeypatch.setattr(drivers, "run", boom)
    with pytest.raises(KeyError):
        main(["drivers"])
    monkeypatch.delenv("LABRSS_DEBUG")
    assert main(["drivers"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "labrss drivers: unexpected error KeyError: 'a bug' (a bug in labrss: run again with "
        "LABRSS_DEBUG=1 for the traceback and report it)\n"
    )
