"""The first ten minutes: the README's first-use commands, run as a newcomer would, on a
fresh store, a missing store, a store of an older schema and with no instrument connected.

Every command must answer without a traceback (LABRSS_DEBUG=1, set for the suite, lets an
unexpected exception fail the test with its own), and a failure is one clear line on
stderr naming the next step (or, for `station check`, the table of steps with their fixes).
"""

from __future__ import annotations

import re
import shlex
import socket
import sqlite3
from pathlib import Path

import pytest

from labrss.cli.main import main
from labrss.store import Store
from labrss.store.schema import SCHEMA_VERSION, migrate

README = Path(__file__).resolve().parents[2] / "README.md"
EMPTY_RUNS = "no runs yet; `labrss calibrate` makes the first\n"


def first_use_commands() -> list[list[str]]:
    """The commands of the README's first-use block, as argument lists (no 'labrss')."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- first-use.*?```sh\n(.*?)```\n<!-- /first-use -->", text, re.S)
    assert match is not None, "README.md has no first-use block"
    commands = []
    for line in match.group(1).splitlines():
        code = line.split("  #", 1)[0].strip()
        if code:
            words = shlex.split(code)
            assert words[0] == "labrss", line
            commands.append(words[1:])
    return commands


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    for stream in (out, err):
        assert "Traceback" not in stream and "unexpected error" not in stream, argv
    if code != 0:
        lines = err.splitlines()
        assert len(lines) <= 1, (argv, err)
        assert lines or "fix:" in out, (argv, out)
    return code, out, err


def with_station(argv: list[str], station: Path) -> list[str]:
    """``argv`` aimed at ``station``: its FILE argument or ``--station``."""
    if argv[:2] == ["station", "check"]:
        return [*argv, str(station)]
    if argv[0] == "drivers":
        return argv
    return [*argv, "--station", str(station)]


def test_the_readme_lists_the_first_use_commands() -> None:
    names = [c[0] for c in first_use_commands()]
    assert {"discover", "station", "runs", "measure", "calibrate"} <= set(names)


def test_first_use_on_a_fresh_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "lab.db"
    Store(db).close()
    monkeypatch.setenv("LABRSS_DB", str(db))
    seen_empty = False
    for argv in first_use_commands():
        code, out, _ = run(argv, capsys)
        assert code == 0, argv
        if argv == ["runs"] and not seen_empty:
            assert out == EMPTY_RUNS  # the very line the issue asks for
            seen_empty = True
    assert seen_empty
    code, out, _ = run(["runs"], capsys)
    assert "calibration" in out and "completed" in out
    code, _, err = run(["export", "99", "--format", "csv", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "no run with id 99; `labrss runs` lists what the store holds" in err


def test_a_missing_and_an_older_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none" / "lab.db"
    monkeypatch.setenv("LABRSS_DB", str(missing))
    code, out, _ = run(["runs"], capsys)
    assert code == 0 and out.startswith("no runs yet (no database at ")
    assert not missing.exists()
    store_commands = [c for c in first_use_commands() if c[0] in ("runs", "calibrate")]
    older = tmp_path / "older.db"  # a store as the previous labrss version left it
    conn = sqlite3.connect(older, isolation_level=None)
    assert migrate(conn, older, target=SCHEMA_VERSION - 1) == SCHEMA_VERSION - 1
    conn.close()
    monkeypatch.setenv("LABRSS_DB", str(older))
    for argv in store_commands:
        code, _, _ = run(argv, capsys)
        assert code == 0, argv
    conn = sqlite3.connect(older)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION  # migrated
    conn.close()


def test_first_use_with_no_instrument_connected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    station = tmp_path / "lab.toml"
    station.write_text(
        f'[smu]\naddress = "TCPIP0::127.0.0.1::{dead}::SOCKET"\n'
        f'[board]\naddress = "socket://127.0.0.1:{dead}"\n[store]\npath = "lab.db"\n'
    )
    monkeypatch.delenv("LABRSS_DB", raising=False)
    codes = {}
    for argv in first_use_commands():
        if argv[0] == "discover":
            argv = [*argv, "--no-list"]  # the machine's own ports are not the point here
        code, out, err = run(with_station(argv, station), capsys)
        codes[argv[0]] = code
        if argv[0] in ("measure", "calibrate"):
            assert code == 1 and "refused" in err.lower()
            assert "next: `labrss station check " in err
        if argv[:2] == ["station", "check"]:
            assert code == 1 and "FAIL  SMU identity" in out and "fix:" in out
    assert codes["runs"] == 0 and codes["drivers"] == 0
