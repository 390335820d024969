"""Protocol tests of the crossbar board driver against docs/board-protocol.md, no I/O.

A ProtocolSerial port asserts every line the driver writes and returns scripted replies,
including byte-level faults (silence, garbage, stale lines, a failing link).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.crossbar_board import BoardGeometry, CrossbarBoard
from drivers.errors import (
    BoardError,
    BoardIdentityError,
    InstrumentIdentityError,
    InstrumentLimitError,
)
from drivers.testing import LINK_DOWN, SILENT, ProtocolSerial, SerialReply

INFO = (
    "rows=4;cols=3;branches=6;element=resistor;dac_bits=12;dac_range_V=1.0;"
    "adc_bits=16;adc_range_A=0.001;bbm_delay_s=0.0005"
)
INIT: list[tuple[str, SerialReply]] = [
    ("*IDN?", "LABRSS,XBAR-4x3x6,SIM-7,1.0.0"),
    ("*CLS", "OK"),
    ("BOARD:GEOM?", "4,3,6"),
    ("BOARD:INFO?", INFO),
]
LSB_V = 2 * 1.0 / 2**12  # dac_range_V = 1 V, 12 bits


def open_board(
    pairs: list[tuple[str, SerialReply]], **kwargs: float | int | None
) -> tuple[CrossbarBoard, ProtocolSerial]:
    port = ProtocolSerial(INIT + pairs)
    board = CrossbarBoard(port, **kwargs)  # type: ignore[arg-type]
    return board, port


def test_init_traffic_geometry_and_info() -> None:
    board, port = open_board([])
    assert board.geometry == BoardGeometry(rows=4, cols=3, branches=6)
    assert board.serial == "SIM-7"
    assert board.firmware == "1.0.0"
    assert board.info["element"] == "resistor"
    assert board.dac_range_V == 1.0
    assert board.max_dac_voltage_V == 1.0
    assert board.dac_lsb_V == pytest.approx(LSB_V)
    assert "SIM-7" in board.name
    port.assert_done()


@pytest.mark.parametrize(
    "idn",
    ["KEITHLEY INSTRUMENTS,MODEL 2450,04512345,1.7.12b", "LABRSS,XBAR-4x3,SIM,1", "hello"],
)
def test_wrong_device_on_the_port(idn: str) -> None:
    port = ProtocolSerial([("*IDN?", idn)], port="/dev/ttyACM0")
    with pytest.raises(BoardIdentityError) as info:
        CrossbarBoard(port)
    assert isinstance(info.value, InstrumentIdentityError)
    assert "/dev/ttyACM0" in str(info.value)
    assert repr(idn) in str(info.value)
    assert not port.is_open


def test_geometry_disagreeing_with_identity_is_an_error() -> None:
    port = ProtocolSerial([*INIT[:2], ("BOARD:GEOM?", "4,4,6")])
    with pytest.raises(BoardError, match="BOARD:GEOM"):
        CrossbarBoard(port)


def test_info_missing_a_required_key_is_an_error() -> None:
    port = ProtocolSerial([*INIT[:3], ("BOARD:INFO?", "rows=4;cols=3;branches=6")])
    with pytest.raises(BoardError, match="dac_bits"):
        CrossbarBoard(port)


def test_set_branch_with_read_back() -> None:
    board, port = open_board([("SW:BRAN 1,2,5,1", "OK"), ("SW:BRAN? 1,2,5", "1")])
    board.set_branch(1, 2, 5, True)
    port.assert_done()


def test_set_cell_mask_sends_padded_hex_and_verifies() -> None:
    board, port = open_board([("SW:CELL 2,1,05", "OK"), ("SW:CELL? 2,1", "05")])
    board.set_cell_mask(2, 1, 0b101)
    port.assert_done()


def test_cell_mask_read_back_mismatch() -> None:
    board, _ = open_board([("SW:CELL 0,0,3F", "OK"), ("SW:CELL? 0,0", "3E")])
    with pytest.raises(BoardError, match="read-back mismatch") as info:
        board.set_cell_mask(0, 0, 0x3F)
    assert info.value.command == "SW:CELL 0,0,3F"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda b: b.set_cell_mask(4, 0, 1), "row 4 not in 0..3"),
        (lambda b: b.set_cell_mask(0, 3, 1), "column 3 not in 0..2"),
        (lambda b: b.set_cell_mask(0, 0, 64), "mask 64"),
        (lambda b: b.set_cell_mask(0, 0, -1), "mask -1"),
        (lambda b: b.set_branch(0, 0, 6, True), "branch 6"),
        (lambda b: b.set_row_masks(0, [1, 2]), "needs 3 masks"),
        (lambda b: b.set_masks(np.zeros((4, 3, 5), bool)), "shape"),
        (lambda b: b.set_masks(np.full((4, 3, 6), 2)), "boolean"),
        (lambda b: b.route_cell(-1, 0), "row -1"),
        (lambda b: b.route_mvm_smu(3), "column 3"),
        (lambda b: b.read_adc(7), "column 7"),
        (lambda b: b.set_dacs([0.1, 0.2]), "need 4 DAC voltages"),
    ],
)
def test_bad_arguments_are_refused_before_sending(call: object, match: str) -> None:
    board, port = open_board([])
    with pytest.raises(ValueError, match=match):
        call(board)  # type: ignore[operator]
    assert port.written == [line for line, _ in INIT]


def test_row_masks_traffic() -> None:
    board, port = open_board([("SW:ROW 3,01,00,3F", "OK"), ("SW:ROW? 3", "01,00,3F")])
    board.set_row_masks(3, [1, 0, 63])
    port.assert_done()


def test_set_masks_writes_row_by_row_and_masks_reads_back() -> None:
    rng = np.random.default_rng(7)
    masks = rng.random((4, 3, 6)) < 0.5
    weights = 1 << np.arange(6)
    rows = [",".join(f"{int(v):02X}" for v in (masks[r] * weights).sum(axis=1)) for r in range(4)]
    pairs: list[tuple[str, SerialReply]] = []
    for r in range(4):
        pairs += [(f"SW:ROW {r},{rows[r]}", "OK"), (f"SW:ROW? {r}", rows[r])]
    pairs += [(f"SW:ROW? {r}", rows[r]) for r in range(4)]
    board, port = open_board(pairs)
    board.set_masks(masks)
    np.testing.assert_array_equal(board.masks(), masks)
    port.assert_done()


def test_open_all_verifies_nothing_is_closed() -> None:
    board, port = open_board([("SW:OPEN", "OK"), ("SW:COUN?", "0")])
    board.open_all()
    port.assert_done()
    board, _ = open_board([("SW:OPEN", "OK"), ("SW:COUN?", "2")])
    with pytest.raises(BoardError, match="2 switches still closed"):
        board.open_all()


@pytest.mark.parametrize(
    ("call", "command", "state"),
    [
        (lambda b: b.route_cell(1, 2), "ROUT:CELL 1,2,2W", "CELL 1,2,2W"),
        (lambda b: b.route_cell(3, 0, four_wire=True), "ROUT:CELL 3,0,4W", "CELL 3,0,4W"),
        (lambda b: b.route_mvm_adc(), "ROUT:MVM ADC", "MVM ADC"),
        (lambda b: b.route_mvm_smu(2), "ROUT:MVM SMU,2", "MVM SMU,2"),
        (lambda b: b.route_open(), "ROUT:OPEN", "OPEN"),
    ],
)
def test_routing_traffic_with_read_back(call: object, command: str, state: str) -> None:
    board, port = open_board([(command, "OK"), ("ROUT?", state)])
    call(board)  # type: ignore[operator]
    port.assert_done()


def test_routing_read_back_mismatch() -> None:
    board, _ = open_board([("ROUT:CELL 1,2,2W", "OK"), ("ROUT?", "OPEN")])
    with pytest.raises(BoardError, match="routing is 'OPEN'"):
        board.route_cell(1, 2)


def test_set_dac_returns_the_quantised_read_back() -> None:
    quantised = round(0.25 / LSB_V) * LSB_V
    board, port = open_board([("DAC:VOLT 1,0.25", "OK"), ("DAC:VOLT? 1", f"{quantised:.9g}")])
    assert board.set_dac(1, 0.25) == pytest.approx(quantised)
    port.assert_done()


def test_dac_read_back_beyond_one_lsb_is_an_error() -> None:
    board, _ = open_board([("DAC:VOLT 0,0.25", "OK"), ("DAC:VOLT? 0", f"{0.25 + 1.5 * LSB_V:.9g}")])
    with pytest.raises(BoardError, match="DAC read-back mismatch"):
        board.set_dac(0, 0.25)


@pytest.mark.parametrize("volts", [0.51, -0.6, math.nan])
def test_dac_limit_refused_before_sending(volts: float) -> None:
    board, port = open_board([], max_dac_voltage_V=0.5)
    with pytest.raises(InstrumentLimitError, match="beyond the limit"):
        board.set_dac(0, volts)
    with pytest.raises(InstrumentLimitError):
        board.set_dacs([0.0, volts, 0.0, 0.0])
    assert port.written == [line for line, _ in INIT]


def test_dac_limit_is_capped_by_the_board_range() -> None:
    board, _ = open_board([], max_dac_voltage_V=5.0)
    assert board.max_dac_voltage_V == 1.0


def test_set_dacs_traffic() -> None:
    board, port = open_board(
        [("DAC:ROW 0.1,-0.2,0,0.3", "OK"), ("DAC:ROW?", "0.1,-0.2,0,0.3"), ("DAC:ZERO", "OK")]
    )
    np.testing.assert_allclose(board.set_dacs([0.1, -0.2, 0.0, 0.3]), [0.1, -0.2, 0.0, 0.3])
    board.zero_dacs()
    port.assert_done()


def test_adc_reads_and_overflow() -> None:
    board, port = open_board(
        [("ADC:READ? 1", "1.5e-05"), ("ADC:READ:ALL?", "1e-06,9.9E37,-9.9E37")]
    )
    assert board.read_adc(1) == pytest.approx(1.5e-5)
    with pytest.warns(RuntimeWarning) as record:
        currents = board.read_adcs()
    assert "SIM-7" in str(record[0].message)
    assert "ADC column 1 overflowed" in str(record[0].message)
    assert "ADC column 2 overflowed" in str(record[1].message)
    assert currents[0] == pytest.approx(1e-6)
    assert math.isnan(currents[1])
    assert math.isnan(currents[2])
    port.assert_done()


def test_err_reply_raises_with_code_message_and_command_without_retry() -> None:
    message = "Settings conflict; columns not routed to the ADCs"
    board, port = open_board([("ADC:READ? 0", f'ERR -221,"{message}"')])
    with pytest.raises(BoardError) as info:
        board.read_adc(0)
    assert info.value.code == -221
    assert info.value.message == message
    assert info.value.command == "ADC:READ? 0"
    assert "SIM-7" in str(info.value)
    port.assert_done()


@pytest.mark.parametrize(
    "fault",
    [
        SILENT,  # lost line: no reply within the timeout
        LINK_DOWN,  # serial.SerialException
        b"\xff\xfe\n",  # garbage on the line
        b"O",  # a partial line, then silence
        b"05\nOK\n",  # a stale reply to an earlier query arrives first
    ],
)
def test_transient_faults_are_retried_after_resynchronising(fault: SerialReply) -> None:
    board, port = open_board([("SW:CELL 0,1,05", fault), ("SW:CELL 0,1,05", "OK")])
    flushes = port.flushes
    board.set_cell_mask(0, 1, 5, verify=False)
    assert port.flushes == flushes + 1
    port.assert_done()


def test_retries_are_bounded_and_the_error_names_the_command() -> None:
    board, port = open_board([("SAFE?", SILENT)] * 3, retries=2, timeout_s=0.05)
    with pytest.raises(BoardError, match="giving up after 3 attempts") as info:
        board.is_safe()
    assert info.value.command == "SAFE?"
    assert "no complete reply" in str(info.value)
    port.assert_done()


def test_temperature_and_error_queue() -> None:
    board, port = open_board(
        [
            ("SYST:TEMP?", "24.37"),
            ("SYST:ERR?", '-222,"Data out of range; column 99 not in 0..2"'),
            ("SYST:ERR?", '0,"No error"'),
        ]
    )
    assert board.temperature_C() == pytest.approx(24.37)
    assert board.errors() == [(-222, "Data out of range; column 99 not in 0..2")]
    port.assert_done()


def test_safe_and_close() -> None:
    board, port = open_board([("SAFE", "OK"), ("SAFE?", "1"), ("SAFE", "OK"), ("SAFE?", "1")])
    board.safe()
    board.close()
    board.close()  # idempotent
    assert not port.is_open
    port.assert_done()
    with pytest.raises(BoardError, match="closed"):
        board.is_safe()


def test_close_on_a_dead_link_does_not_raise() -> None:
    board, port = open_board([("SAFE", LINK_DOWN)], retries=0)
    board.close()
    assert not port.is_open


def test_context_manager_goes_safe() -> None:
    port = ProtocolSerial([*INIT, ("SAFE", "OK"), ("SAFE?", "1")])
    with CrossbarBoard(port) as board:
        assert board.geometry.rows == 4
    port.assert_done()


@given(mask=st.integers(min_value=0, max_value=63), r=st.integers(0, 3), c=st.integers(0, 2))
def test_mask_format_round_trip(mask: int, r: int, c: int) -> None:
    text = f"{mask:02X}"
    board, port = open_board([(f"SW:CELL {r},{c},{text}", "OK"), (f"SW:CELL? {r},{c}", text)])
    board.set_cell_mask(r, c, mask)
    port.assert_done()


@given(reply=st.text(alphabet=st.characters(codec="ascii", exclude_characters="\n"), max_size=30))
def test_any_reply_is_a_value_or_a_board_error(reply: str) -> None:
    """Whatever a (broken) board answers, the driver returns a valid value or raises BoardError."""
    board, _ = open_board([("SW:CELL? 1,1", reply)], retries=0)
    try:
        value = board.cell_mask(1, 1)
    except BoardError:
        return
    assert 0 <= value < 64
    assert int(reply.rstrip("\r"), 16) == value


@given(reply=st.binary(max_size=40))
def test_any_reply_bytes_are_a_value_or_a_board_error(reply: bytes) -> None:
    """Arbitrary bytes on the line (noise, binary garbage) never escape as other errors."""
    board, _ = open_board([("SYST:TEMP?", reply + b"\n")], retries=0)
    try:
        value = board.temperature_C()
    except BoardError:
        return
    assert isinstance(value, float)
