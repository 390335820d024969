"""The pulse commands of the board protocol (docs/board-protocol.md, "Pulses") on resistor,
memristor and mixed boards."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.board_config import load_board_config
from simulator.board_emulator import BoardProtocol
from simulator.board_model import BoardModel

ERR_RE = re.compile(r'ERR (-\d+),"([^"]*)"\Z')


def proto(config: str, seed: int = 42) -> BoardProtocol:
    return BoardProtocol(BoardModel(load_board_config(config), seed))


def err(reply: str | None) -> tuple[int, str]:
    assert reply is not None
    m = ERR_RE.match(reply)
    assert m, f"not an error reply: {reply!r}"
    return int(m.group(1)), m.group(2)


def info(p: BoardProtocol) -> dict[str, str]:
    reply = p.handle_line("BOARD:INFO?")
    assert reply is not None
    return dict(item.split("=", 1) for item in reply.split(";"))


def test_limits_and_info_keys() -> None:
    for preset in ("memristor", "mixed", "small"):
        p = proto(preset)
        assert p.handle_line("PULS:LIM?") == "3,1e-07,0.01,1000"
        assert p.handle_line("pulse:limits?") == "3,1e-07,0.01,1000"
    m = info(proto("memristor"))
    assert m["element"] == "memristor"
    assert (m["g_min_S"], m["g_max_S"]) == ("8e-06", "9e-05")
    assert (m["pulse_max_amplitude_V"], m["pulse_min_width_s"]) == ("3", "1e-07")
    assert (m["pulse_max_width_s"], m["pulse_max_count"], m["pulse_gap_s"]) == (
        "0.01",
        "1000",
        "0.001",
    )
    x = info(proto("mixed"))
    assert x["element"] == "mixed" and x["memristor_columns"] == "4/5/6/7"
    r = info(proto("small"))
    assert r["element"] == "resistor" and "g_min_S" not in r


def test_kind_query_on_every_board() -> None:
    x = proto("mixed")
    assert [x.handle_line(f"BOARD:KIND? 3,{c}") for c in range(8)] == ["RES"] * 4 + ["MEM"] * 4
    assert proto("memristor").handle_line("board:kind? 7,7") == "MEM"
    assert proto("small").handle_line("BOARD:KIND? 0,0") == "RES"
    assert err(x.handle_line("BOARD:KIND? 0,8")) == (
        -222,
        "Data out of range; column 8 not in 0..7",
    )
    assert err(x.handle_line("BOARD:KIND? 0"))[0] == -109


def test_pulse_count_and_clock() -> None:
    p = proto("memristor")
    model = p.model
    t0 = model.clock.now_s
    assert p.handle_line("PULS 1,2,3,1.5,1e-4") == "OK"
    assert p.handle_line("PULSE 1,2,3,-1.2,2e-4,7") == "OK"
    assert p.handle_line(":puls 1 , 2 , 3 , +0.2 , 1E-3 , 3") == "OK"
    assert p.handle_line("PULS:COUN? 1,2,3") == "11"
    assert p.handle_line("PULS:COUNT? 1,2,4") == "0"
    gap, bbm = 1e-3, 1e-3
    expected = 3 * 2 * bbm + (1e-4 + gap) + 7 * (2e-4 + gap) + 3 * (1e-3 + gap)
    assert model.clock.now_s - t0 == pytest.approx(expected, rel=1e-12)
    assert p.handle_line("*RST") == "OK" and p.handle_line("PULS:COUN? 1,2,3") == "11"
    assert p.handle_line("SAFE?") == "1"


def test_pulse_programs_the_device_and_keeps_switches_and_routing() -> None:
    p = proto("memristor", seed=5)
    for line in ("SW:CELL 0,0,FF", "ROUT:CELL 0,0,4W", "DAC:VOLT 2,0.5"):
        assert p.handle_line(line) == "OK"
    g0 = p.model.true_memristor_conductance_S()[4, 4, 4]
    assert p.handle_line("PULS 4,4,4,-2.5,1e-3,20") == "OK"
    g1 = p.model.true_memristor_conductance_S()[4, 4, 4]
    assert p.handle_line("PULS 4,4,4,2.5,1e-3,20") == "OK"
    g2 = p.model.true_memristor_conductance_S()[4, 4, 4]
    assert g1 < min(g0, 20e-6) and g2 > 60e-6  # 20 strong pulses reach near the bounds
    assert p.handle_line("SW:CELL? 0,0") == "FF" and p.handle_line("SW:CELL? 4,4") == "00"
    assert p.handle_line("ROUT?") == "CELL 0,0,4W" and p.handle_line("DAC:VOLT? 2") == "0.5"


@pytest.mark.parametrize(
    ("line", "code", "detail"),
    [
        ("PULS 0,4,0,1.0", -109, "PULSe needs 5 or 6 parameters, got 4"),
        ("PULS 0,4,0,1.0,1e-4,1,2", -108, "PULSe takes 5 or 6 parameters, got 7"),
        ("PULS 0,4,0,1.0,,1", -102, "empty parameter in '0,4,0,1.0,,1'"),
        ("PULS 9,4,0,1.0,1e-4", -222, "row 9 not in 0..7"),
        ("PULS 0,4,8,1.0,1e-4", -222, "branch 8 not in 0..7"),
        ("PULS 0,4,0,1V,1e-4", -102, "pulse amplitude '1V' is not a decimal number"),
        ("PULS 0,4,0,-3.01,1e-4", -222, "pulse amplitude -3.01 V beyond +-3 V"),
        ("PULS 0,4,0,1e400,1e-4", -222, "pulse amplitude 1e400 is not finite"),
        ("PULS 0,4,0,1.0,5e-8", -222, "pulse width 5e-8 s not in 1e-07..0.01 s"),
        ("PULS 0,4,0,1.0,0.02", -222, "pulse width 0.02 s not in 1e-07..0.01 s"),
        ("PULS 0,4,0,1.0,-1e-4", -222, "pulse width -1e-4 s not in 1e-07..0.01 s"),
        ("PULS 0,4,0,1.0,1e-4,0", -222, "pulse count 0 not in 1..1000"),
        ("PULS 0,4,0,1.0,1e-4,1001", -222, "pulse count 1001 not in 1..1000"),
        ("PULS 0,4,0,1.0,1e-4,2.5", -102, "pulse count '2.5' is not a decimal integer"),
        ("PULS 0,3,0,1.0,1e-4", -221, "branch (0,3,0) is a resistor"),
        # a range error comes before the kind conflict (values first, then the state)
        ("PULS 0,3,0,9,1e-4", -222, "pulse amplitude 9 V beyond +-3 V"),
        ("PULS:COUN? 0,3,0", -221, "branch (0,3,0) is a resistor"),
        ("PULS:COUN? 0,4", -109, "PULSe:COUNt? needs 3 parameter(s), got 2"),
        ("PULS:LIM? 1", -108, "PULSe:LIMits? takes 0 parameter(s), got 1"),
        ("PULS:FOO 1", -113, "unknown command 'PULS:FOO'"),
    ],
)
def test_errors_name_the_value_and_change_nothing(line: str, code: int, detail: str) -> None:
    p = proto("mixed")
    before = p.model.true_memristor_conductance_S()
    t0 = p.model.clock.now_s
    got_code, message = err(p.handle_line(line))
    assert got_code == code
    assert message.endswith("; " + detail.replace('"', "'")), message
    assert p.handle_line("SYST:ERR?") == f'{code},"{message}"'
    assert (p.model.true_memristor_conductance_S() == before).all()
    assert p.model.clock.now_s == t0
    assert p.handle_line("PULS:COUN? 0,4,0") == "0"


def test_every_branch_of_a_resistor_board_refuses_pulses() -> None:
    p = proto("small")
    for r, c, k in [(0, 0, 0), (7, 7, 7), (3, 4, 5)]:
        assert err(p.handle_line(f"PULS {r},{c},{k},1.0,1e-4")) == (
            -221,
            f"Settings conflict; branch ({r},{c},{k}) is a resistor",
        )


PULSE_LINES = st.builds(
    lambda h, ps: f"{h} {','.join(ps)}",
    st.sampled_from(
        ["PULS", "PULS:COUN?", "PULS:LIM?", "BOARD:KIND?", "SW:CELL", "ROUT:CELL", "SAFE"]
    ),
    st.lists(
        st.one_of(
            st.integers(-2, 9).map(str),
            st.floats(-4, 4, allow_nan=False).map(lambda v: f"{v:.3g}"),
            st.sampled_from(["1e-4", "1e-7", "0.01", "0.011", "nan", "inf", "1e400", "", "FF"]),
        ),
        max_size=8,
    ),
)


@given(st.lists(PULSE_LINES, min_size=1, max_size=10), st.sampled_from(["mixed", "memristor"]))
def test_fuzz_pulse_commands_never_raise_and_keep_the_model_consistent(
    lines: list[str], preset: str
) -> None:
    p = proto(preset, seed=9)
    model = p.model
    for line in lines:
        reply = p.handle_line(line)
        assert reply is not None and "\n" not in reply
        assert all(0x20 <= ord(ch) < 0x7F for ch in reply)
        if reply.startswith("ERR"):
            assert ERR_RE.match(reply)
        g = model.true_memristor_conductance_S()
        t = model.truth()
        mem = t["memristor"]
        assert (
            (g[mem] >= t["memristor_g_min_S"][mem]) & (g[mem] <= t["memristor_g_max_S"][mem])
        ).all()
        assert (t["pulse_count"] >= t["memristor_cycles"]).all()
        assert p.handle_line("SAFE?") == ("1" if model.is_safe() else "0")


def test_memristor_example_session_from_the_spec() -> None:
    p = proto("memristor")
    session = [
        ("BOARD:KIND? 2,3", "MEM"),
        ("PULS:LIM?", "3,1e-07,0.01,1000"),
        ("PULS 2,3,5,1.5,1e-4,10", "OK"),
        ("PULS:COUN? 2,3,5", "10"),
        (
            "PULS 2,3,5,-3.5,1e-4",
            'ERR -222,"Data out of range; pulse amplitude -3.5 V beyond +-3 V"',
        ),
    ]
    for line, reply in session:
        assert p.handle_line(line) == reply, line
