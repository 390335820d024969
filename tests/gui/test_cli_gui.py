"""`labrss gui`: the sub-command is registered and hands its options to run_gui."""

from __future__ import annotations

from typing import Any

import pytest

from labrss.cli.main import build_parser, main


def test_gui_command_options(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    def fake_run_gui(station: Any, *, connect: bool, db_path: Any) -> int:
        calls.append((station, connect, db_path))
        return 0

    monkeypatch.setattr("labrss.gui.app.run_gui", fake_run_gui)
    assert main(["gui"]) == 0
    assert main(["gui", "--station", "lab.toml", "--no-connect", "--db", "x.db"]) == 0
    assert calls == [(None, True, None), ("lab.toml", False, "x.db")]
    assert "gui" in build_parser().format_help()
