"""`labrss gui` on a machine where Qt cannot open a window: a clear message, exit 3, never
Qt's abort (exit 134 and a core dump).

The command runs in a subprocess, as a user starts it, with the environment of a machine
without a display (no DISPLAY, no WAYLAND_DISPLAY, no QT_QPA_PLATFORM), and with a broken
platform plugin path; the library check is tested on a canned ``ldd`` answer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from labrss.cli import gui_environment
from labrss.cli.gui_environment import Problem, check, platform_name, report

QT_VARIABLES = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "QT_QPA_PLATFORM_PLUGIN_PATH")


def run_gui(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in QT_VARIABLES}
    base["XDG_SESSION_TYPE"] = "tty"
    base["HOME"] = str(tmp_path)  # no user settings touched even if a window opened
    return subprocess.run(
        [sys.executable, "-m", "labrss", "gui", "--no-connect", "--db", str(tmp_path / "x.db")],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_no_display_is_explained_not_aborted(tmp_path: Path) -> None:
    done = run_gui(tmp_path)
    assert done.returncode == 3, (done.returncode, done.stderr[-2000:])
    err = done.stderr
    assert "Qt cannot open a window here" in err
    assert "no display: DISPLAY is not set" in err
    assert "QT_QPA_PLATFORM=offscreen labrss gui" in err
    assert "sudo apt-get install" in err and "libxcb-cursor0" in err
    assert "Traceback" not in err


def test_a_broken_platform_plugin_path_is_explained(tmp_path: Path) -> None:
    empty = tmp_path / "plugins"
    empty.mkdir()
    done = run_gui(tmp_path, QT_QPA_PLATFORM="offscreen", QT_QPA_PLATFORM_PLUGIN_PATH=str(empty))
    assert done.returncode == 3, (done.returncode, done.stderr[-2000:])
    assert f"QT_QPA_PLATFORM_PLUGIN_PATH='{empty}'" in done.stderr
    assert "unset QT_QPA_PLATFORM_PLUGIN_PATH" in done.stderr


def test_an_unknown_platform_is_explained(tmp_path: Path) -> None:
    done = run_gui(tmp_path, QT_QPA_PLATFORM="nosuchplatform")
    assert done.returncode == 3, (done.returncode, done.stderr[-2000:])
    assert "'nosuchplatform' platform plugin" in done.stderr
    assert "offscreen" in done.stderr  # among the available ones


def test_missing_libraries_are_named_with_their_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        gui_environment,
        "missing_libraries",
        lambda library: ["libxcb-cursor.so.0", "libxkbcommon-x11.so.0", "libweird.so.9"],
    )
    problems = check({"DISPLAY": ""}, system="linux")
    texts = " ".join(p.text for p in problems)
    assert "DISPLAY is not set" in texts
    assert "libxcb-cursor.so.0, libxkbcommon-x11.so.0, libweird.so.9" in texts
    assert "apt-file search" in texts and "libweird.so.9" in texts
    packages = {pkg for p in problems for pkg in p.packages}
    assert packages == {"libxcb-cursor0", "libxkbcommon-x11-0"}
    assert "sudo apt-get install libxcb-cursor0 libxkbcommon-x11-0" in report(problems)


def test_ldd_output_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    ldd_out = (
        "\tlinux-vdso.so.1 (0x00007ffd)\n"
        "\tlibxcb-icccm.so.4 => not found\n"
        "\tlibQt6Gui.so.6 => /x/libQt6Gui.so.6 (0x7f)\n"
        "\tlibxcb-keysyms.so.1 => not found\n"
        "\tlibxcb-icccm.so.4 => not found\n"
    )

    def fake_run(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess([], 0, stdout=ldd_out, stderr="")

    monkeypatch.setattr(gui_environment.subprocess, "run", fake_run)
    missing = gui_environment.missing_libraries(Path("libqxcb.so"))
    assert missing == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]


def test_offscreen_needs_nothing_and_other_systems_are_not_checked() -> None:
    # The offscreen plugin loads here (the GUI tests run on it).
    assert check({"QT_QPA_PLATFORM": "offscreen"}, system="linux") == []
    assert check({}, system="darwin") == []
    assert platform_name({"QT_QPA_PLATFORM": "offscreen:size=800x600"}) == "offscreen"
    assert platform_name({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}) == (
        "wayland"
    )
    assert platform_name({}) == "xcb"
    assert report([Problem("x")]).count("QT_QPA_PLATFORM=offscreen") == 1
