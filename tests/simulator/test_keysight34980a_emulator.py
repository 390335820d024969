"""The simulated switch-matrix bench: the 34980A's commands and the physics behind them."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from simulator.bench import SimulatedBench
from simulator.keysight34980a_emulator import Keysight34980AEmulator
from simulator.matrix_bench import MatrixBenchError, load_matrix_bench
from simulator.matrix_wiring import WiringError, load_wiring

LAYOUT = Path(__file__).parents[2] / "simulator" / "benches" / "switch-matrix-layout.toml"


@pytest.fixture
def bench() -> Iterator[SimulatedBench]:
    b = SimulatedBench("switch-matrix", seed=2, bench="switch-matrix")
    yield b  # not started: the tests talk to the emulators directly


def matrix(bench: SimulatedBench) -> Keysight34980AEmulator:
    assert isinstance(bench.board, Keysight34980AEmulator)
    return bench.board


def ask(m: Keysight34980AEmulator, line: str) -> str | None:
    return m.handle_line(line)


def cell_channels(m: Keysight34980AEmulator, r: int, c: int) -> str:
    """The guarded-read line channels of cell (r, c) as a channel list."""
    w = m.wiring
    chans = {w.line_channel[("row", r, "HI")], w.line_channel[("col", c, "LO")]}
    chans |= {w.line_channel[("row", i, "LO")] for i in range(w.rows) if i != r}
    chans |= {w.line_channel[("col", j, "GUARD")] for j in range(w.cols) if j != c}
    return "(@" + ",".join(str(ch) for ch in sorted(chans)) + ")"


def test_the_presets_load_and_their_layout_is_consistent() -> None:
    cfg = load_matrix_bench("switch-matrix")
    w = cfg.wiring
    assert (w.rows, w.cols, w.branches) == (4, 4, 8)
    assert len(w.branch_channel) == 128 and len(w.line_channel) == 16
    assert set(w.modules.values()) == {"34932A"} and sorted(w.modules) == [1, 2, 3, 4, 5]
    assert cfg.relays.operate_time_s == 0.004 and cfg.relays.rated_operations == 100_000_000
    worn = load_matrix_bench("switch-matrix-worn")
    assert worn.relays.worn[1102] == (99_999_990, 100_000_005)
    with pytest.raises(MatrixBenchError, match="neither a preset"):
        load_matrix_bench("no-such-bench")


def test_the_wiring_parser_refuses_bad_layouts(tmp_path: Path) -> None:
    text = LAYOUT.read_text()
    for old, new, message in (
        ("1101 = [0, 0, 0]\n", "", r"no channel for branch \(0, 0, 0\)"),
        ('5101 = ["row", 0, "HI"]', '5101 = ["row", 0, "GUARD"]', "not a row/col bus"),
        ("1101 = [0, 0, 0]", "1117 = [0, 0, 0]", "channel 1117 is not a crosspoint"),
        ("1102 = [0, 0, 1]", "1101 = [0, 0, 1]", "used twice|duplicate|Cannot overwrite"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(text.replace(old, new, 1))
        with pytest.raises(WiringError, match=message):
            load_wiring(bad)


def test_identity_modules_and_relay_commands(bench: SimulatedBench) -> None:
    m = matrix(bench)
    assert ask(m, "*IDN?") == "Agilent Technologies,34980A,MY00000002,2.43-2.43-1.00-1.00"
    assert ask(m, "SYST:CTYP? 1") == "Agilent Technologies,34932A,00000201,1.00"
    assert ask(m, "SYST:CTYP? 6") == "Agilent Technologies,0,0,0"
    t0 = bench.clock.now_s
    assert ask(m, "ROUT:CLOS (@1101:1104,2101)") is None
    assert bench.clock.now_s - t0 == pytest.approx(0.004)  # one operate time per command
    assert ask(m, "ROUT:CLOS? (@1101:1105)") == "1,1,1,1,0"
    assert ask(m, "ROUT:OPEN? (@1101,1105)") == "0,1"
    assert ask(m, "ROUT:CLOS (@1101)") is None  # already closed: no time, no count
    assert bench.clock.now_s - t0 == pytest.approx(0.004)
    assert ask(m, "DIAG:REL:CYCL? (@1101,1105,2101)") == "+1,+0,+1"
    assert ask(m, "ROUT:OPEN:ALL 1") is None
    assert ask(m, "ROUT:CLOS? (@1101,2101)") == "0,1"
    assert ask(m, "ROUT:CLOS:EXCL (@2102)") is None  # slot 2: 2101 opens, 2102 closes
    assert ask(m, "ROUT:CLOS? (@2101,2102)") == "0,1"
    assert ask(m, "*RST") is None
    assert ask(m, "ROUT:CLOS? (@2102)") == "0"
    assert ask(m, "DIAG:REL:CYCL? (@1101,2102)") == "+1,+1"  # counts survive *RST
    ask(m, "DIAG:REL:CYCL:CLE (@1101)")
    assert ask(m, "DIAG:REL:CYCL? (@1101)") == "+0"
    assert ask(m, "SYST:ERR?") == '+0,"No error"'


def test_bad_channel_lists_switch_nothing(bench: SimulatedBench) -> None:
    m = matrix(bench)
    for line, code in (
        ("ROUT:CLOS (@1101,1117)", -222),  # 1117: the 34932A has 16 columns
        ("ROUT:CLOS (@6101)", -222),  # no module in slot 6
        ("ROUT:CLOS (@1101:2101)", -222),  # a range across slots
        ("ROUT:CLOS 1101", -104),
        ("ROUT:SCAN (@1101)", -113),  # not emulated, and says so
    ):
        assert ask(m, line) is None
        reply = ask(m, "SYST:ERR?") or ""
        assert reply.startswith(f"{code},"), (line, reply)
    assert ask(m, "ROUT:CLOS? (@1101)") == "0"
    assert "not emulated" in (ask(m, "ROUT:SCAN (@1101)") or "") + (ask(m, "SYST:ERR?") or "")


def test_a_guarded_cell_read_is_the_cells_conductance(bench: SimulatedBench) -> None:
    m = matrix(bench)
    ask(m, "ROUT:CLOS (@1101,1103)")  # branches (0,0,0) and (0,0,2)
    assert m.port().g_S == 0.0  # no routing: open circuit
    ask(m, f"ROUT:CLOS {cell_channels(m, 0, 0)}")
    assert m.topology == "cells (0,0)" and m.unmodelled_states == 0
    truth = bench.model.true_cell_conductance_S()[0, 0]
    bench.clock.advance(1.0)  # settled
    assert m.port().g_S == pytest.approx(truth, rel=1e-4)  # wires and guard: < 1e-4 here


def test_make_before_break_puts_two_cells_in_parallel_or_shorts(bench: SimulatedBench) -> None:
    m = matrix(bench)
    w = m.wiring
    ask(m, "ROUT:CLOS (@1101,1109)")  # (0,0,0) and (0,1,0)
    ask(m, f"ROUT:CLOS {cell_channels(m, 0, 0)}")
    g00 = m.port().g_S
    ask(m, f"ROUT:OPEN (@{w.line_channel[('col', 0, 'LO')]})")
    ask(m, f"ROUT:CLOS {cell_channels(m, 0, 1)}")  # closed before (0,0)'s lines opened
    assert m.topology.startswith("short")  # column 1 on LO and GUARD at once
    assert m.port().g_S > 0.1  # HI to LO through two crosspoints
    guards = f"{w.line_channel[('col', 0, 'GUARD')]},{w.line_channel[('col', 1, 'GUARD')]}"
    ask(m, f"ROUT:OPEN (@{guards})")
    ask(m, f"ROUT:CLOS (@{w.line_channel[('col', 0, 'LO')]})")
    assert m.topology == "cells (0,0) (0,1)"  # two columns on LO: both cells read
    g01 = bench.model.true_cell_conductance_S()[0, 1]
    assert m.port().g_S == pytest.approx(g00 + g01, rel=1e-3)
    assert m.topology_log[0] == "open" and "short" in " ".join(m.topology_log)


def test_the_settling_current_decays_after_each_relay_operation(bench: SimulatedBench) -> None:
    m = matrix(bench)
    ask(m, "ROUT:CLOS (@1101)")
    ask(m, f"ROUT:CLOS {cell_channels(m, 0, 0)}")
    i_now = m.port().i0_A
    assert i_now == pytest.approx(2e-9, rel=1e-6)  # settle_current_A at the end of the move
    bench.clock.advance(0.002)  # one tau
    assert m.port().i0_A == pytest.approx(2e-9 / math.e, rel=1e-6)
    bench.clock.advance(0.008)  # the layout's settle_time_s = 10 ms = 5 tau
    assert m.port().i0_A < 2e-9 * math.exp(-5) * 1.001


def test_a_relay_past_its_life_no_longer_closes() -> None:
    bench = SimulatedBench("switch-matrix-worn", seed=2, bench="switch-matrix")
    m = matrix(bench)
    assert ask(m, "DIAG:REL:CYCL? (@1102)") == "+99999990"
    for _ in range(15):  # life 100,000,005: 15 more closures
        ask(m, "ROUT:CLOS (@1102)")
        assert bench.model.switches[0, 0, 1]
        ask(m, "ROUT:OPEN (@1102)")
    ask(m, "ROUT:CLOS (@1102)")
    assert ask(m, "ROUT:CLOS? (@1102)") == "1"  # the instrument still says closed ...
    assert not bench.model.switches[0, 0, 1]  # ... but the worn contacts do not conduct
    assert ask(m, "DIAG:REL:CYCL? (@1102)") == "+100000006"


def test_served_on_a_visa_socket() -> None:
    import pyvisa

    with SimulatedBench("switch-matrix", seed=2, bench="switch-matrix") as bench:
        assert bench.board_address.startswith("TCPIP0::127.0.0.1::")
        rm = pyvisa.ResourceManager("@py")
        res = rm.open_resource(
            bench.board_address, read_termination="\n", write_termination="\n", timeout=5000
        )
        try:
            assert str(res.query("*IDN?")).startswith("Agilent Technologies,34980A,")  # type: ignore[attr-defined]
            res.write("ROUT:CLOS (@1101)")  # type: ignore[attr-defined]
            assert str(res.query("ROUT:CLOS? (@1101)")).strip() == "1"  # type: ignore[attr-defined]
        finally:
            res.close()
        assert np.asarray(bench.model.switches)[0, 0, 0]
