"""The example plug-in package (docs/examples/relay-board-plugin), really installed.

The package is built and installed offline (pip, no build isolation) into a temporary
directory, then used from fresh processes as a lab would: `labrss drivers` lists it from
its entry point, its own tests run labrss's conformance suite against its emulator, and
`labrss selftest` passes on a station that names it. About 10 s of wall time (one pip
build, three subprocesses): the proof that a driver outside labrss's source works.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "relay-board-plugin"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """Install the example into a temporary target; return (environment, its source copy)."""
    work = tmp_path_factory.mktemp("relay-board-plugin")
    source = work / "source"
    shutil.copytree(
        EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    target = work / "site"
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--no-build-isolation", "--no-index", "--target", str(target), str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(target), str(REPO)])
    return env, source


SHUTDOWN_NOISE = "Exception ignored in: <_io.TextIOWrapper name='<stdout>'"
"""What a process prints when the simulator's SuperLU release thread disturbs interpreter
shutdown after the work is done (exit status 120; simulator/nodal.py drains that thread at
exit, but it still happens now and then on a loaded machine): not this test's subject."""


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def _ok(done: subprocess.CompletedProcess[str]) -> bool:
    """Exit 0, or 120 from the shutdown noise alone after a completed run."""
    if done.returncode == 0:
        return True
    return done.returncode == 120 and SHUTDOWN_NOISE in done.stderr + done.stdout


def test_labrss_drivers_lists_the_installed_plugin(
    plugin_env: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, _ = plugin_env
    done = _run([sys.executable, "-m", "labrss", "drivers", "--json"], env, tmp_path)
    assert _ok(done), done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    relay = rows["relayboard"]
    assert (relay["kind"], relay["package"], relay["version"]) == (
        "board",
        "labrss-relayboard",
        "0.1.0",
    )
    assert relay["entry_point"] == "labrss_relayboard.driver:DRIVER"
    assert relay["capabilities"] == []
    assert relay["recognition"]["query"] == "ID?"
    assert relay["simulator"] == "labrss_relayboard.emulator:RelayBoardProtocol"
    assert rows["crossbar"]["package"] == "labrss"  # the built-ins are still there


def test_the_plugin_passes_the_conformance_suite(plugin_env: tuple[dict[str, str], Path]) -> None:
    env, source = plugin_env
    done = _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:benchmark"],
        env,
        source,
    )
    assert _ok(done), done.stdout + done.stderr
    assert "13 passed, 5 skipped" in done.stdout, done.stdout  # +1: no [thermal] stage


def test_selftest_passes_on_a_station_naming_the_plugin(
    plugin_env: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, _ = plugin_env
    station = tmp_path / "relay.toml"
    station.write_text('[board]\ndriver = "relayboard"\n\n[simulator]\nboard = "small"\n')
    done = _run(
        [
            sys.executable, "-m", "labrss", "selftest", "--station", str(station),
            "--db", str(tmp_path / "lab.db"), "--nplc", "0.1",
        ],
        env,
        tmp_path,
    )  # fmt: skip
    assert _ok(done), done.stdout + done.stderr
    assert "self-test PASSED: 0 of 12 checks failed" in done.stdout
    assert "DACs                        N/A" in done.stdout
    assert "break-before-make           PASS" in done.stdout
