"""`labrss sim` in a subprocess: the printed addresses answer; signals exit cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from labrss.cli.commands import sim as sim_command
from simulator.bench import BENCHES, SMU_MODELS

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60.0  # bounds a failing test only (imports numpy/scipy on a busy CI box)
EXIT_TIMEOUT_S = 20.0


def _labrss(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "labrss", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_lines(proc: subprocess.Popen[str], n: int, timeout_s: float) -> list[str]:
    """The first ``n`` stdout lines of ``proc``, failing if they do not come in time."""
    assert proc.stdout is not None
    stdout = proc.stdout
    lines: list[str] = []

    def read() -> None:
        while len(lines) < n and (line := stdout.readline()):
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout_s)
    if len(lines) < n:
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        pytest.fail(f"labrss sim printed {lines} (expected {n} lines); exit {proc.wait()}: {err}")
    return lines


def _query(port: int, line: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(line.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(4096)
            assert chunk, f"connection closed before the reply to {line!r}"
            buf += chunk
    return buf.decode().rstrip("\n")


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    proc = _labrss("sim", "--board", "small", "--seed", "5")
    try:
        smu_line, board_line = _read_lines(proc, 2, STARTUP_TIMEOUT_S)
        smu = re.fullmatch(r"smu: TCPIP0::127\.0\.0\.1::(\d+)::SOCKET", smu_line)
        board = re.fullmatch(r"board: socket://127\.0\.0\.1:(\d+)", board_line)
        assert smu and board, (smu_line, board_line)
        yield proc, int(smu.group(1)), int(board.group(1))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sim_prints_addresses_that_answer_and_exits_0_on_signal(
    served: tuple[subprocess.Popen[str], int, int], sig: signal.Signals
) -> None:
    proc, smu_port, board_port = served
    assert _query(smu_port, "*IDN?").startswith("KEITHLEY INSTRUMENTS,MODEL 2450,")
    assert _query(board_port, "*IDN?") == "LABRSS,XBAR-8x8x8,SIM-5,1.0.0"
    proc.send_signal(sig)
    assert proc.wait(EXIT_TIMEOUT_S) == 0
    assert proc.stdout is not None and proc.stdout.read() == ""  # exactly the two lines


def test_dump_truth_json_writes_a_loadable_file_and_does_not_serve(tmp_path: Path) -> None:
    path = tmp_path / "truth.json"
    proc = _labrss("sim", "--board", "small", "--seed", "5", "--dump-truth", str(path))
    out, err = proc.communicate(timeout=STARTUP_TIMEOUT_S)
    assert proc.returncode == 0, err
    assert out == f"truth: {path}\n"
    data = json.loads(path.read_text())
    assert isinstance(data, dict) and data


def test_dump_truth_npz_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from labrss.cli.main import main

    path = tmp_path / "truth.npz"
    assert main(["sim", "--board", "small", "--seed", "5", "--dump-truth", str(path)]) == 0
    assert capsys.readouterr().out == f"truth: {path}\n"
    with np.load(path) as npz:
        assert len(npz.files) > 0


def test_bad_preset_is_one_line_on_stderr_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from labrss.cli.main import main

    assert main(["sim", "--board", "no-such-preset"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("labrss sim: error: ")
    assert "no-such-preset" in captured.err

    bad = tmp_path / "board.toml"
    bad.write_text("[geometry]\nrows = 0\ncols = 4\nbranches = 4\n")
    assert main(["sim", "--board", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "rows" in captured.err


def test_port_in_use_is_one_line_on_stderr_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from labrss.cli.main import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["sim", "--board", "small", "--board-port", str(port)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert f"board server cannot listen on 127.0.0.1:{port}" in captured.err


def test_smu_model_choices_match_the_bench() -> None:
    assert sim_command.SMU_MODELS == SMU_MODELS
    assert sim_command.BENCHES == BENCHES


def test_netlist_in_process_writes_the_requested_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`labrss sim --netlist`: the routing and switches asked for, sources at --force-V."""
    from labrss.cli.main import main

    path = tmp_path / "board.cir"
    argv = ["sim", "--board", "small", "--netlist", str(path), "--route", "cell4w:2,3"]
    assert main([*argv, "--close", "all", "--force-V", "0.25"]) == 0
    assert capsys.readouterr().out == f"netlist: {path}\n"
    text = path.read_text()
    assert text.startswith("* labrss board small seed 0: cell (2,3) 4W")
    assert "VHI hit 0 DC 0.25" in text
    assert text.endswith(".end\n")
    assert main(["sim", "--netlist", str(path), "--route", "cell:9"]) == 2
    assert "--route 'cell:9'" in capsys.readouterr().err
