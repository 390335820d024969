"""The board protocol emulator against docs/board-protocol.md, command by command."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.board_config import load_board_config
from simulator.board_emulator import BoardProtocol
from simulator.board_model import BoardModel, Routing

DEFAULT = load_board_config("default")
SMALL = load_board_config("small")
ERR_RE = re.compile(r'ERR (-\d+),"([^"]*)"\Z')


def proto(config: str = "default", seed: int = 42) -> BoardProtocol:
    return BoardProtocol(BoardModel(load_board_config(config), seed))


def err_code(reply: str | None) -> int:
    assert reply is not None
    m = ERR_RE.match(reply)
    assert m, f"not an error reply: {reply!r}"
    return int(m.group(1))


def test_example_session_from_the_spec() -> None:
    p = proto()
    session = [
        ("*IDN?", "LABRSS,XBAR-16x16x8,SIM-42,1.0.0"),
        ("BOARD:GEOM?", "16,16,8"),
        ("SW:CELL 2,3,0x05", "OK"),
        ("SW:CELL? 2,3", "05"),
        ("ROUT:CELL 2,3,2W", "OK"),
        ("SW:CELL 2,99,1", 'ERR -222,"Data out of range; column 99 not in 0..15"'),
        ("SYST:ERR?", '-222,"Data out of range; column 99 not in 0..15"'),
        ("SYST:ERR?", '0,"No error"'),
        ("SAFE", "OK"),
    ]
    for line, reply in session:
        assert p.handle_line(line) == reply, line
    assert p.model.is_safe()


@pytest.mark.parametrize(
    "line",
    [
        "SWITCH:CELL 1,1,3",
        "SW:CELL 1,1,3",
        "sw:cell 1,1,3",
        ":Sw:Cell 1,1,3",
        "SW:CELL 1 , 1 , 0X3",
        "SW:CELL   1,1,03\r",
        "\tSW:CELL 1,1,3",
    ],
)
def test_header_forms_spacing_and_case(line: str) -> None:
    p = proto()
    assert p.handle_line(line) == "OK"
    assert p.handle_line("SWITCH:CELL? 1,1") == "03"


def test_identity_and_status_commands() -> None:
    p = proto("small", seed=7)
    assert p.handle_line("*IDN?") == "LABRSS,XBAR-8x8x8,SIM-7,1.0.0"
    assert p.handle_line("*OPC?") == "1"
    assert p.handle_line("SYSTEM:VERSION?") == "1.0"
    temp = p.handle_line("SYST:TEMP?")
    assert temp is not None and re.fullmatch(r"\d+\.\d\d", temp)
    assert float(temp) == p.model.temperature_C()
    assert p.handle_line("BOARD:GEOMETRY?") == "8,8,8"
    info = dict(kv.split("=") for kv in (p.handle_line("BOARD:INFO?") or "").split(";"))
    assert info["rows"] == "8" and info["cols"] == "8" and info["branches"] == "8"
    assert info["element"] == "resistor"
    assert int(info["dac_bits"]) == SMALL.dac.bits
    assert float(info["dac_range_V"]) == SMALL.dac.range_V
    assert int(info["adc_bits"]) == SMALL.adc.bits
    assert float(info["adc_range_A"]) == pytest.approx(SMALL.adc.range_A, rel=1e-9)
    assert float(info["bbm_delay_s"]) == SMALL.bbm_delay_s


def test_switch_commands_and_readback() -> None:
    p = proto("small")
    assert p.handle_line("SW:BRAN 0,1,7,1") == "OK"
    assert p.handle_line("SW:BRAN? 0,1,7") == "1"
    assert p.handle_line("SW:BRAN? 0,1,6") == "0"
    assert p.handle_line("SW:CELL? 0,1") == "80"
    assert p.handle_line("SW:BRAN 0,1,7,0") == "OK"
    assert err_code(p.handle_line("SW:BRAN 0,1,7,2")) == -222
    masks = ["1", "2", "ff", "0x10", "0", "A5", "5a", "00"]
    assert p.handle_line("SW:ROW 3," + ",".join(masks)) == "OK"
    assert p.handle_line("SW:ROW? 3") == "01,02,FF,10,00,A5,5A,00"
    assert p.handle_line("SW:COUN?") == str(1 + 1 + 8 + 1 + 4 + 4)
    assert err_code(p.handle_line("SW:ROW 3,1,2")) == -109  # C masks needed
    assert err_code(p.handle_line("SW:ROW 3," + ",".join(["1"] * 9))) == -108
    assert p.handle_line("SW:OPEN") == "OK"
    assert p.handle_line("SW:COUNT?") == "0"


@given(st.integers(0, 7), st.integers(0, 7), st.integers(0, 255), st.booleans())
def test_masks_round_trip(r: int, c: int, mask: int, prefix: bool) -> None:
    p = proto("small")
    text = f"{'0x' if prefix else ''}{mask:x}"
    assert p.handle_line(f"SW:CELL {r},{c},{text}") == "OK"
    assert p.handle_line(f"SW:CELL? {r},{c}") == f"{mask:02X}"
    assert int(p.handle_line(f"SW:CELL? {r},{c}") or "", 16) == p.model.cell_mask(r, c)


def test_mask_digits_follow_k() -> None:
    p = proto("large", seed=1)  # K = 16: 4 hex digits
    assert p.handle_line("SW:CELL 0,0,1") == "OK"
    assert p.handle_line("SW:CELL? 0,0") == "0001"
    assert err_code(p.handle_line("SW:CELL 0,0,1FFFF")) == -222


def test_routing_commands() -> None:
    p = proto("small")
    assert p.handle_line("ROUT?") == "OPEN"
    assert p.handle_line("ROUT:CELL 1,2") == "OK"
    assert p.handle_line("ROUT?") == "CELL 1,2,2W"
    assert p.handle_line("ROUTE:CELL 1,2,4w") == "OK"
    assert p.handle_line("ROUT?") == "CELL 1,2,4W"
    assert p.model.routing == Routing("cell", 1, 2, four_wire=True)
    assert p.handle_line("ROUT:MVM ADC") == "OK"
    assert p.handle_line("ROUT?") == "MVM ADC"
    assert p.handle_line("ROUT:MVM SMU,5") == "OK"
    assert p.handle_line("ROUT?") == "MVM SMU,5"
    assert p.handle_line("ROUT:OPEN") == "OK"
    assert p.handle_line("ROUT?") == "OPEN"
    assert err_code(p.handle_line("ROUT:CELL 1,2,3W")) == -102
    assert err_code(p.handle_line("ROUT:CELL 1")) == -109
    assert err_code(p.handle_line("ROUT:CELL 1,2,2W,4")) == -108
    assert err_code(p.handle_line("ROUT:MVM")) == -109
    assert err_code(p.handle_line("ROUT:MVM SMU")) == -109
    assert err_code(p.handle_line("ROUT:MVM ADC,1")) == -108
    assert err_code(p.handle_line("ROUT:MVM DMM")) == -102
    assert err_code(p.handle_line("ROUT:MVM SMU,8")) == -222
    assert p.handle_line("ROUT?") == "OPEN"  # failed commands changed nothing


def test_dac_commands() -> None:
    p = proto("small")
    lsb = SMALL.dac.lsb_V
    assert p.handle_line("DAC:VOLT 2,0.25") == "OK"
    assert float(p.handle_line("DAC:VOLT? 2") or "") == pytest.approx(0.25, abs=lsb / 2)
    assert p.handle_line("DAC:VOLT 2,2.5e-1") == "OK"
    assert p.handle_line("DAC:VOLT 3,0.1") == "OK"
    q = float(p.handle_line("DAC:VOLT? 3") or "")
    assert q == pytest.approx(round(0.1 / lsb) * lsb, rel=1e-8)  # %.9g: 9 digits
    assert err_code(p.handle_line("DAC:VOLT 3,1.0001")) == -222
    assert err_code(p.handle_line("DAC:VOLT 3,abc")) == -102
    assert err_code(p.handle_line("DAC:VOLT 3,nan")) == -102
    assert err_code(p.handle_line("DAC:VOLT 8,0")) == -222
    values = [f"{v:.3f}" for v in np.linspace(-1, 0.9, 8)]
    assert p.handle_line("DAC:ROW " + ",".join(values)) == "OK"
    back = [float(v) for v in (p.handle_line("DAC:ROW?") or "").split(",")]
    np.testing.assert_allclose(back, [float(v) for v in values], atol=lsb / 2)
    assert err_code(p.handle_line("DAC:ROW 0,0")) == -109
    assert err_code(p.handle_line("DAC:ROW " + ",".join(["0"] * 7) + ",5")) == -222
    np.testing.assert_allclose(back, p.model.dac_voltages_V)  # the -222 changed nothing
    assert p.handle_line("DAC:ZERO") == "OK"
    assert p.handle_line("DAC:ROW?") == ",".join(["0"] * 8)


def test_adc_commands_and_routing_conflicts() -> None:
    p = proto("small")
    assert err_code(p.handle_line("ADC:READ? 0")) == -221
    assert err_code(p.handle_line("ADC:READ:ALL?")) == -221
    p.handle_line("SW:ROW 0," + ",".join(["FF"] * 8))
    p.handle_line("DAC:VOLT 0,0.5")
    assert p.handle_line("ROUT:MVM ADC") == "OK"
    values = [float(v) for v in (p.handle_line("ADC:READ:ALL?") or "").split(",")]
    expected = p.model.true_cell_conductance_S()[0] * 0.5
    # Converter errors: gain 1e-3 sigma (5 sigma bound), offset 20 nA, noise 50 nA, LSB.
    tol = 5e-3 * expected + 5 * (20e-9 + 50e-9) + SMALL.adc.lsb_A
    assert np.all(np.abs(np.array(values) - expected) < tol)
    single = float(p.handle_line("ADC:READ? 4") or "")
    assert abs(single - expected[4]) < tol[4]
    assert p.handle_line("ROUT:MVM SMU,4") == "OK"
    assert err_code(p.handle_line("ADC:READ? 4")) == -221
    assert err_code(p.handle_line("ADC:READ:ALL?")) == -221
    assert abs(float(p.handle_line("ADC:READ? 3") or "") - expected[3]) < tol[3]


def test_adc_overflow_reads_scpi_overflow_value() -> None:
    cfg = SMALL.replace(adc={"full_scale_V": 0.1})  # 0.2 mA full scale
    p = BoardProtocol(BoardModel(cfg, 1))
    p.handle_line("SW:ROW 0," + ",".join(["FF"] * 8))
    p.handle_line("SW:ROW 1," + ",".join(["FF"] * 8))
    p.handle_line("DAC:ROW 1,1,0,0,0,0,0,0")  # 2 * 0.22 mS * 1 V = 0.44 mA per column
    p.handle_line("ROUT:MVM ADC")
    assert p.handle_line("ADC:READ? 0") == "9.9E37"
    p.handle_line("DAC:ROW -1,-1,0,0,0,0,0,0")
    assert p.handle_line("ADC:READ:ALL?") == ",".join(["-9.9E37"] * 8)


def test_every_error_code_and_the_queue() -> None:
    p = proto("small")
    cases = {
        "SW:CELL 1,\x07,2": -101,
        "SW:CELL 1,,2": -102,
        "SW:CELL 1,x,2": -102,
        "SW:CELL 1,2,0xZZ": -102,
        "*IDN? 1": -108,
        "SW:CELL 1,2": -109,
        "SW:FOO 1": -113,
        "*IDN": -113,
        "SW:CELL? 1,2,3": -108,
        "SW:CELL 1,2,3;SW:OPEN": -102,  # no chaining
        "ADC:READ? 0": -221,
        "SW:CELL 99,0,1": -222,
        "SW:CELL 0,0,100": -222,
        "X" * 5000: -223,
    }
    for line, code in cases.items():
        assert err_code(p.handle_line(line)) == code, line
    assert p.handle_line("SYST:ERR:COUN?") == "14"
    for code in cases.values():
        reply = p.handle_line("SYST:ERR?") or ""
        assert reply.startswith(f"{code},"), reply
    assert p.handle_line("SYST:ERR?") == '0,"No error"'
    # Overflow: the 16th entry is replaced by -350 when more errors arrive.
    for _ in range(20):
        p.handle_line("SW:FOO")
    assert p.handle_line("SYST:ERR:COUN?") == "16"
    errors = [p.handle_line("SYST:ERR?") for _ in range(16)]
    assert all(e is not None and e.startswith("-113,") for e in errors[:15])
    assert errors[15] == '-350,"Queue overflow"'
    p.handle_line("SW:FOO")
    assert p.handle_line("*CLS") == "OK"
    assert p.handle_line("SYST:ERR:COUN?") == "0"


def test_line_length_limit() -> None:
    p = proto("small")
    # 4095 characters + LF = 4096 bytes: accepted (here as a -113, it is a nonsense header).
    assert err_code(p.handle_line("A" * 4095)) == -113
    assert err_code(p.handle_line("A" * 4096)) == -223
    assert err_code(p.handle_line("A" * 4095 + "\r")) == -223  # the CR counts
    assert p.handle_line("SW:CELL 1,\r1,3") == "OK"  # a stray CR is white space
    assert err_code(p.line_too_long(10_000)) == -223
    assert p.handle_line("*OPC?") == "1"  # the connection stays usable


def test_rst_keeps_errors_and_safe_query() -> None:
    p = proto("small")
    p.handle_line("SW:CELL 0,0,1")
    p.handle_line("ROUT:MVM ADC")
    p.handle_line("DAC:VOLT 0,0.3")
    p.handle_line("SW:FOO")
    assert p.handle_line("SAFE?") == "0"
    assert p.handle_line("*RST") == "OK"
    assert p.handle_line("SAFE?") == "1"
    assert p.handle_line("SYST:ERR:COUN?") == "1"


def test_link_loss_makes_the_board_safe() -> None:
    p = proto("small")
    p.handle_line("SW:ROW 2," + ",".join(["FF"] * 8))
    p.handle_line("ROUT:CELL 2,2,4W")
    p.handle_line("DAC:VOLT 1,-0.5")
    assert not p.model.is_safe()
    p.on_disconnect()
    assert p.model.is_safe()
    assert p.handle_line("SAFE?") == "1"


def test_blank_lines_get_no_reply() -> None:
    p = proto("small")
    for line in ("", " ", "\t", "   \r"):
        assert p.handle_line(line) is None
    assert p.handle_line("SYST:ERR:COUN?") == "0"


def test_true_values_never_leave_through_the_protocol() -> None:
    p = proto("small")
    p.handle_line("SW:CELL 0,0,FF")
    replies = [p.handle_line(cmd) for cmd in ("BOARD:INFO?", "*IDN?", "SW:ROW? 0", "ROUT?")]
    truth = p.model.truth()
    for r in replies:
        assert r is not None
        assert f"{truth['resistance_ohm'][0, 0, 0]:.9g}" not in r


LINES = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=80),
    st.builds(
        lambda h, ps: f"{h} {','.join(ps)}",
        st.sampled_from(
            [
                "SW:CELL",
                "SW:CELL?",
                "SW:BRAN",
                "SW:ROW",
                "ROUT:CELL",
                "ROUT:MVM",
                "DAC:VOLT",
                "DAC:ROW",
                "ADC:READ?",
                "ADC:READ:ALL?",
                "SAFE",
                "*RST",
                "SYST:ERR?",
                "sw:open",
                "ROUT?",
                "*IDN?",
                "BOARD:INFO?",
                "BOARD:KIND?",
                "PULS",
                "PULS:COUN?",
                "PULS:LIM?",
            ]
        ),
        st.lists(
            st.one_of(
                st.integers(-3, 300).map(str),
                st.sampled_from(
                    [
                        "0x1F",
                        "ff",
                        "2W",
                        "4W",
                        "ADC",
                        "SMU",
                        "0.5",
                        "-1e-1",
                        "",
                        " ",
                        "1e400",
                        "nan",
                    ]
                ),
            ),
            max_size=10,
        ),
    ),
)


@given(st.lists(LINES, min_size=1, max_size=12), st.sampled_from(["small", "mixed"]))
def test_fuzz_handle_line_never_raises_and_always_replies_once(
    lines: list[str], preset: str
) -> None:
    p = proto(preset, seed=3)
    for line in lines:
        reply = p.handle_line(line)
        stripped = line[:-1] if line.endswith("\r") else line
        if reply is None:
            assert stripped.strip() == "" and all(ch in " \t\r" for ch in stripped)
            continue
        assert "\n" not in reply and "\r" not in reply
        assert all(0x20 <= ord(ch) < 0x7F for ch in reply)
        if reply.startswith("ERR"):
            assert ERR_RE.match(reply)
        # The model stays consistent: its state reads back through the protocol.
        model = p.model
        assert model.switches.shape == SMALL.geometry.shape
        assert p.handle_line("SAFE?") == ("1" if model.is_safe() else "0")
        assert int(p.handle_line("SW:COUN?") or "-1") == int(model.switches.sum())
        assert len(p.error_queue) <= 16
