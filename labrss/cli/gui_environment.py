"""Can Qt open a window here? Checked before Qt is loaded, so that `labrss gui` explains
instead of aborting. (In the CLI package: importing `labrss.gui` already loads QtCore.)

When Qt cannot load its platform plugin (no display, a missing system library of the xcb
plugin, a wrong ``QT_QPA_PLATFORM`` or plugin path) it prints a terse message and calls
``abort()``: exit 134 and a core dump, before any Python code can react. `check()` looks
first, without importing any Qt module (it only locates PySide6's files), and returns the
problems in words a user can act on:

* which platform Qt will use: ``QT_QPA_PLATFORM`` (the part before any ``:``), else
  ``wayland`` on a Wayland session with ``WAYLAND_DISPLAY`` set, else ``xcb`` (X11);
* that its plugin file exists where Qt will look (``QT_QPA_PLATFORM_PLUGIN_PATH`` when
  set, else PySide6's own ``Qt/plugins/platforms``);
* that the display it needs is named and answers (``DISPLAY``: the X server's socket;
  ``WAYLAND_DISPLAY``: the compositor's socket);
* that the plugin's shared libraries are all installed (``ldd``), naming the missing ones
  and the Debian/Ubuntu packages that provide them.

Only Linux is checked (macOS and Windows load their own platform plugin). The README's
"System packages" section lists what a fresh Linux desktop needs.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: Debian/Ubuntu package of each shared library Qt's platform plugins load (sonames).
DEBIAN_PACKAGES: dict[str, str] = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libGLdispatch.so.0": "libglvnd0",
    "libOpenGL.so.0": "libopengl0",
    "libICE.so.6": "libice6",
    "libSM.so.6": "libsm6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libXau.so.6": "libxau6",
    "libXdmcp.so.6": "libxdmcp6",
    "libXext.so.6": "libxext6",
    "libXrender.so.1": "libxrender1",
    "libdbus-1.so.3": "libdbus-1-3",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libpng16.so.16": "libpng16-16",
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
}

#: What a fresh Debian/Ubuntu desktop needs for the GUI on X11 (the README lists them).
DESKTOP_PACKAGES: tuple[str, ...] = (
    "libegl1",
    "libgl1",
    "libfontconfig1",
    "libfreetype6",
    "libdbus-1-3",
    "libglib2.0-0",
    "libx11-6",
    "libx11-xcb1",
    "libxcb1",
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-shm0",
    "libxcb-sync1",
    "libxcb-util1",
    "libxcb-xfixes0",
    "libxcb-xkb1",
    "libxkbcommon0",
    "libxkbcommon-x11-0",
)

HEADLESS_HINT = (
    "Without a display (CI, ssh without X forwarding, a container), run it off screen: "
    "QT_QPA_PLATFORM=offscreen labrss gui ..."
)

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


@dataclass(frozen=True)
class Problem:
    """One reason Qt would abort, and what to do about it (``packages``: Debian names)."""

    text: str
    packages: tuple[str, ...] = ()


def platform_name(env: Mapping[str, str]) -> str:
    """The platform plugin Qt will pick: ``QT_QPA_PLATFORM`` (before any ``:``), else
    ``wayland`` on a Wayland session, else ``xcb``."""
    requested = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if requested:
        return requested
    if env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE") == "wayland":
        return "wayland"
    return "xcb"


def pyside_plugin_dir() -> Path | None:
    """PySide6's ``Qt/plugins/platforms`` directory (located, not imported); None if absent."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "Qt" / "plugins" / "platforms"


def missing_libraries(library: Path) -> list[str]:
    """The shared libraries ``library`` needs that the dynamic loader cannot find (ldd)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []  # cannot tell; Qt will say
    try:
        out = subprocess.run(
            [ldd, str(library)], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(set(_NOT_FOUND.findall(out)))


def _x11_answers(display: str) -> bool:
    """Whether the X server of ``display`` (``:0``, ``unix:1``, ``host:10.0``) accepts a
    connection: its Unix socket (path or Linux abstract name) or TCP port 6000 + N."""
    match = re.fullmatch(r"(?P<host>[^:]*):(?P<num>\d+)(?:\.\d+)?", display)
    if match is None:
        return False
    host, num = match.group("host"), int(match.group("num"))
    if host in ("", "unix") or host.startswith("/"):
        path = f"/tmp/.X11-unix/X{num}"
        for address in (path, "\0" + path):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2.0)
                try:
                    sock.connect(address)
                    return True
                except OSError:
                    continue
        if host == "unix":
            return False
        host = "localhost"
    try:
        with socket.create_connection((host, 6000 + num), timeout=2.0):
            return True
    except OSError:
        return False


def _wayland_answers(env: Mapping[str, str]) -> bool:
    name = env.get("WAYLAND_DISPLAY", "")
    path = Path(name) if name.startswith("/") else Path(env.get("XDG_RUNTIME_DIR", "")) / name
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(str(path))
            return True
        except OSError:
            return False


def check(env: Mapping[str, str] | None = None, *, system: str | None = None) -> list[Problem]:
    """Everything that would make Qt abort when `labrss gui` opens its window (module
    docstring); an empty list when a window can open. Imports no Qt module."""
    env = os.environ if env is None else env
    if (system or sys.platform) != "linux":
        return []
    name = platform_name(env)
    problems: list[Problem] = []
    custom = env.get("QT_QPA_PLATFORM_PLUGIN_PATH")
    plugin_dir = Path(custom) if custom else pyside_plugin_dir()
    if plugin_dir is None:
        return [Problem("PySide6 is not installed: reinstall labrss (pip install -e .)")]
    plugins = sorted(plugin_dir.glob(f"libq{name}*.so")) if plugin_dir.is_dir() else []
    if not plugins:
        where = f"QT_QPA_PLATFORM_PLUGIN_PATH={custom!r}" if custom else f"PySide6's {plugin_dir}"
        available = sorted(
            p.name.removeprefix("libq").removesuffix(".so") for p in plugin_dir.glob("libq*.so")
        )
        text = f"Qt's {name!r} platform plugin (libq{name}.so) is not in {where}"
        if custom:
            text += (
                f"; that directory holds {', '.join(available) or 'no platform plugin'}: "
                "unset QT_QPA_PLATFORM_PLUGIN_PATH to use PySide6's own plugins"
            )
        elif "QT_QPA_PLATFORM" in env:
            text += (
                f" (QT_QPA_PLATFORM={env['QT_QPA_PLATFORM']!r}; available: {', '.join(available)})"
            )
        problems.append(Problem(text))
    if name == "xcb":
        display = env.get("DISPLAY", "")
        if not display:
            problems.append(
                Problem(
                    "no display: DISPLAY is not set (no X11 session), and Qt's default "
                    "platform (xcb) needs one"
                    + (
                        "; WAYLAND_DISPLAY is set: try QT_QPA_PLATFORM=wayland"
                        if env.get("WAYLAND_DISPLAY")
                        else ""
                    )
                )
            )
        elif not _x11_answers(display):
            problems.append(
                Problem(f"no display: the X server of DISPLAY={display!r} does not answer")
            )
    elif name == "wayland":
        if not env.get("WAYLAND_DISPLAY"):
            problems.append(Problem("no display: WAYLAND_DISPLAY is not set (no Wayland session)"))
        elif not _wayland_answers(env):
            problems.append(
                Problem(
                    f"no display: the compositor of WAYLAND_DISPLAY="
                    f"{env['WAYLAND_DISPLAY']!r} does not answer"
                )
            )
    for plugin in plugins[:1]:
        missing = missing_libraries(plugin)
        if missing:
            packages = tuple(sorted({DEBIAN_PACKAGES[m] for m in missing if m in DEBIAN_PACKAGES}))
            unknown = [m for m in missing if m not in DEBIAN_PACKAGES]
            text = (
                f"Qt's {name} platform plugin ({plugin}) needs system libraries that are not "
                f"installed: {', '.join(missing)}"
            )
            if unknown:
                text += f" (find the package of {', '.join(unknown)} with apt-file search)"
            problems.append(Problem(text, packages))
    return problems


def report(problems: list[Problem]) -> str:
    """The message `labrss gui` prints for ``problems`` (what is wrong and what to do)."""
    lines = ["labrss gui: Qt cannot open a window here:"]
    packages: set[str] = set()
    for p in problems:
        lines.append(f"  * {p.text}")
        packages.update(p.packages)
    if packages:
        lines.append(
            "  On Debian/Ubuntu install them with: sudo apt-get install "
            + " ".join(sorted(packages))
            + " (Ubuntu 24.04 names some of them with a t64 suffix)"
        )
    lines.append(
        "  A fresh Linux desktop needs (README, 'System packages'): sudo apt-get install "
        + " ".join(DESKTOP_PACKAGES)
    )
    lines.append(f"  {HEADLESS_HINT}")
    return "\n".join(lines)
