"""The board driver's pulse commands: exact exchanges (no I/O) and end to end on the simulator.

docs/board-protocol.md, "Pulses": ``PULSe``, ``PULSe:LIMits?``, ``PULSe:COUNt?``,
``BOARD:KIND?`` and the memristor ``BOARD:INFO?`` keys.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.crossbar_board import CrossbarBoard, PulseLimits
from drivers.errors import BoardError, InstrumentLimitError
from drivers.testing import LINK_DOWN, SILENT, ProtocolSerial, SerialReply
from simulator.bench import SimulatedBench

MEM_INFO = (
    "rows=2;cols=3;branches=4;element=memristor;dac_bits=16;dac_range_V=1;adc_bits=16;"
    "adc_range_A=0.005;bbm_delay_s=0.001;switch_on_ohm=9.5;g_min_S=8e-06;g_max_S=9e-05;"
    "pulse_max_amplitude_V=3;pulse_min_width_s=1e-07;pulse_max_width_s=0.01;"
    "pulse_max_count=1000;pulse_gap_s=0.001;set_threshold_min_V=0.65;reset_threshold_min_V=0.45"
)
MIXED_INFO = MEM_INFO.replace("element=memristor", "element=mixed") + ";memristor_columns=2"
RES_INFO = (
    "rows=2;cols=3;branches=4;element=resistor;dac_bits=16;dac_range_V=1;adc_bits=16;"
    "adc_range_A=0.005;bbm_delay_s=0.001"
)


def init(info: str) -> list[tuple[str, SerialReply]]:
    pairs: list[tuple[str, SerialReply]] = [
        ("*IDN?", "LABRSS,XBAR-2x3x4,SIM-3,1.0.0"),
        ("*CLS", "OK"),
        ("BOARD:GEOM?", "2,3,4"),
        ("BOARD:INFO?", info),
    ]
    if "element=resistor" not in info:
        pairs.append(("PULS:LIM?", "3,1e-07,0.01,1000"))
    return pairs


def open_board(
    info: str, pairs: list[tuple[str, SerialReply]], **kwargs: float | None
) -> tuple[CrossbarBoard, ProtocolSerial]:
    port = ProtocolSerial(init(info) + pairs)
    return CrossbarBoard(port, **kwargs), port  # type: ignore[arg-type]


def test_memristor_board_connect_reads_limits_and_bounds() -> None:
    board, port = open_board(MEM_INFO, [])
    assert board.element_kind == "memristor"
    assert board.pulse_limits == PulseLimits(3.0, 1e-7, 0.01, 1000)
    assert board.max_pulse_voltage_V == 3.0
    assert board.g_min_S == 8e-6
    assert board.g_max_S == 9e-5
    assert board.pulse_gap_s == 1e-3
    assert board.set_threshold_min_V == 0.65
    assert board.reset_threshold_min_V == 0.45
    port.assert_done()


def test_switching_thresholds_absent_or_malformed() -> None:
    board, _ = open_board(MEM_INFO.replace(";set_threshold_min_V=0.65", ""), [])
    assert math.isnan(board.set_threshold_min_V)
    assert board.reset_threshold_min_V == 0.45
    with pytest.raises(BoardError, match=r"malformed BOARD:INFO\? value reset_threshold_min_V"):
        open_board(MEM_INFO.replace("reset_threshold_min_V=0.45", "reset_threshold_min_V=x"), [])


def test_simulated_board_reports_its_thresholds() -> None:
    with SimulatedBench("memristor", seed=1) as bench:
        board = CrossbarBoard(bench.board_url)
        try:
            assert board.set_threshold_min_V == pytest.approx(0.65)
            assert board.reset_threshold_min_V == pytest.approx(0.45)
        finally:
            board.close()


def test_resistor_board_asks_no_pulse_limits() -> None:
    board, port = open_board(RES_INFO, [])
    assert board.element_kind == "resistor"
    assert board.pulse_limits is None
    assert board.max_pulse_voltage_V is None
    assert math.isnan(board.g_max_S)
    assert board.cell_kind(1, 2) == "resistor"
    with pytest.raises(
        ValueError, match=r"PULS 0,0,0,1,0.0001,1 needs .pulses. \(a memristor pulse circuit\)"
    ):
        board.pulse(0, 0, 0, 1.0, 1e-4)
    port.assert_done()  # nothing was sent


def test_caller_limit_is_the_smaller_of_the_two() -> None:
    board, _ = open_board(MEM_INFO, [], max_pulse_voltage_V=2.0)
    assert board.max_pulse_voltage_V == 2.0
    board, _ = open_board(MEM_INFO, [], max_pulse_voltage_V=5.0)
    assert board.max_pulse_voltage_V == 3.0


def test_pulse_exchange_and_duration() -> None:
    board, port = open_board(
        MEM_INFO,
        [
            ("PULS 1,2,3,1.5,0.0001,10", "OK"),
            ("PULS 0,0,0,-1.2,1e-07,1", "OK"),
            ("PULS:COUN? 1,2,3", "10"),
        ],
    )
    # 2 * bbm + count * (width + gap), docs/board-protocol.md
    assert board.pulse(1, 2, 3, 1.5, 1e-4, 10) == pytest.approx(2e-3 + 10 * (1e-4 + 1e-3))
    assert board.pulse(0, 0, 0, -1.2, 1e-7, count=1) == pytest.approx(2e-3 + 1e-7 + 1e-3)
    assert board.pulse_count(1, 2, 3) == 10
    port.assert_done()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 0, 0, 2.5, 1e-4, 1), "beyond \\+-2 V .*max_pulse_voltage_V"),
        ((0, 0, 0, -2.0001, 1e-4, 1), "beyond \\+-2 V"),
        ((0, 0, 0, math.nan, 1e-4, 1), "amplitude"),
        ((0, 0, 0, 1.0, 0.02, 1), "width 0.02 s not in 1e-07..0.01 s"),
        ((0, 0, 0, 1.0, 5e-8, 1), "width"),
        ((0, 0, 0, 1.0, 1e-4, 0), "count 0 not in 1..1000"),
        ((0, 0, 0, 1.0, 1e-4, 1001), "count 1001"),
    ],
)
def test_limits_refused_before_anything_is_sent(args: tuple[float, ...], match: str) -> None:
    board, port = open_board(MEM_INFO, [], max_pulse_voltage_V=2.0)
    with pytest.raises(InstrumentLimitError, match=match):
        board.pulse(*args)  # type: ignore[arg-type]
    port.assert_done()


def test_board_limit_named_when_it_is_the_binding_one() -> None:
    board, port = open_board(MEM_INFO, [])
    with pytest.raises(InstrumentLimitError, match="pulse circuit's limit"):
        board.pulse(0, 0, 0, 3.5, 1e-4)
    port.assert_done()


@pytest.mark.parametrize(("r", "c", "k"), [(2, 0, 0), (0, 3, 0), (0, 0, 4), (-1, 0, 0)])
def test_bad_indices_refused_locally(r: int, c: int, k: int) -> None:
    board, port = open_board(MEM_INFO, [])
    with pytest.raises(ValueError, match="nothing sent"):
        board.pulse(r, c, k, 1.0, 1e-4)
    with pytest.raises(ValueError, match="nothing sent"):
        board.pulse_count(r, c, k)
    port.assert_done()


def test_mixed_board_asks_the_kind_once_per_cell() -> None:
    board, port = open_board(
        MIXED_INFO,
        [
            ("BOARD:KIND? 0,1", "RES"),
            ("BOARD:KIND? 1,2", "MEM"),
            ("PULS 1,2,0,1,0.0001,1", "OK"),
        ],
    )
    assert board.element_kind == "mixed"
    with pytest.raises(ValueError, match=r"branch \(0,1,0\) is a resistor"):
        board.pulse(0, 1, 0, 1.0, 1e-4)
    assert board.cell_kind(0, 1) == "resistor"  # cached: no second query
    assert board.cell_kind(1, 2) == "memristor"
    board.pulse(1, 2, 0, 1.0, 1e-4)
    port.assert_done()


def test_board_error_reply_raises_with_the_code() -> None:
    board, port = open_board(
        MEM_INFO,
        [("PULS 0,0,0,1,0.0001,1", 'ERR -221,"Settings conflict; branch (0,0,0) is a resistor"')],
    )
    with pytest.raises(BoardError) as info:
        board.pulse(0, 0, 0, 1.0, 1e-4)
    assert info.value.code == -221
    port.assert_done()


@pytest.mark.parametrize("fault", [SILENT, LINK_DOWN, "garbage"])
def test_pulse_is_never_retried(fault: SerialReply) -> None:
    # A retried PULSe would pulse the device twice: one attempt, then a BoardError that
    # tells the host to ask PULS:COUN?.
    board, port = open_board(MEM_INFO, [("PULS 0,1,2,1,0.0001,3", fault)])
    board.timeout_s = 0.05
    with pytest.raises(BoardError, match=r"not idempotent.*PULS:COUN"):
        board.pulse(0, 1, 2, 1.0, 1e-4, 3)
    assert port.written.count("PULS 0,1,2,1,0.0001,3") == 1
    port.assert_done()


def test_reply_wait_covers_the_burst_duration() -> None:
    # 1000 pulses of 10 ms take ~11 s on a real board: the wait for the reply must cover it
    # and the port's timeout must come back afterwards.
    board, port = open_board(MEM_INFO, [("PULS 0,0,0,1,0.01,1000", "OK")])
    before = port.timeout
    seen: list[float | None] = []
    original = port.read

    def spy(size: int = 1) -> bytes:
        seen.append(port.timeout)
        return original(size)

    port.read = spy  # type: ignore[method-assign]
    board.pulse(0, 0, 0, 1.0, 0.01, 1000)
    assert min(t for t in seen if t is not None) >= board.timeout_s + 1000 * 0.011
    assert port.timeout == before


def test_malformed_limits_reply_is_an_error() -> None:
    pairs = init(MEM_INFO)
    pairs[-1] = ("PULS:LIM?", "3,1e-07")
    port = ProtocolSerial(pairs + [("PULS:LIM?", "3,1e-07")] * 3)
    with pytest.raises(BoardError, match="pulse limits"):
        CrossbarBoard(port, timeout_s=0.05)


def test_unknown_element_kind_is_an_error() -> None:
    port = ProtocolSerial(init(RES_INFO.replace("element=resistor", "element=graphene")))
    with pytest.raises(BoardError, match="graphene"):
        CrossbarBoard(port)


@given(
    amplitude=st.floats(-2.0, 2.0, allow_nan=False),
    width=st.floats(1e-7, 1e-2),
    count=st.integers(1, 1000),
)
def test_any_request_within_limits_is_formatted_exactly(
    amplitude: float, width: float, count: int
) -> None:
    line = f"PULS 1,0,2,{amplitude:.9g},{width:.9g},{count}"
    board, port = open_board(MEM_INFO, [(line, "OK")], max_pulse_voltage_V=2.0)
    board.pulse(1, 0, 2, amplitude, width, count)
    port.assert_done()
    # the line round-trips to the same numbers to 9 significant digits
    sent = port.written[-1].split(" ")[1].split(",")
    assert float(sent[3]) == pytest.approx(amplitude, rel=1e-8, abs=1e-300)
    assert float(sent[4]) == pytest.approx(width, rel=1e-8)


# ---------------------------------------------------------------------- end to end
def test_end_to_end_memristor_board_pulses_move_the_device() -> None:
    with (
        SimulatedBench("memristor", seed=5) as bench,
        CrossbarBoard(bench.board_url, max_pulse_voltage_V=2.0) as board,
    ):
        assert board.element_kind == "memristor"
        assert board.pulse_limits == PulseLimits(3.0, 1e-7, 1e-2, 1000)
        board.set_cell_mask(0, 0, 0b11)
        board.route_cell(0, 0)
        with bench.lock:
            g0 = bench.model.true_memristor_conductance_S()[1, 2, 3]
            t0 = bench.clock.now_s
        duration = board.pulse(1, 2, 3, -1.5, 1e-4, 5)
        with bench.lock:
            g1 = bench.model.true_memristor_conductance_S()[1, 2, 3]
            t1 = bench.clock.now_s
        # RESET lowers the conductance unless the device already sits at g_min
        assert g1 < g0 or g0 <= 1.01 * 8e-6 * 0.85
        # the board's clock advanced by exactly the documented duration
        assert t1 - t0 == pytest.approx(duration, rel=1e-9)
        assert board.pulse_count(1, 2, 3) == 5
        # switches and routing restored exactly
        assert board.cell_mask(0, 0) == 0b11
        assert board.routing() == "CELL 0,0,2W"
        with pytest.raises(InstrumentLimitError):
            board.pulse(1, 2, 3, 2.5, 1e-4)
        assert board.pulse_count(1, 2, 3) == 5


def test_end_to_end_mixed_board_kinds_and_refusals() -> None:
    with SimulatedBench("mixed", seed=1) as bench, CrossbarBoard(bench.board_url) as board:
        assert board.element_kind == "mixed"
        kinds = [board.cell_kind(0, c) for c in range(board.geometry.cols)]
        assert kinds == ["resistor"] * 4 + ["memristor"] * 4  # preset: columns 4-7
        with pytest.raises(ValueError, match="is a resistor"):
            board.pulse(0, 0, 0, 1.0, 1e-4)
        board.pulse(0, 5, 1, 1.0, 1e-4)
        assert board.pulse_count(0, 5, 1) == 1
        # the board's own check agrees with the driver's (raw command, bypassing the driver)
        with pytest.raises(BoardError) as info:
            board.query("PULS 0,0,0,1,0.0001", str)
        assert info.value.code == -221
        assert np.all(board.masks() == 0)


@given(
    reply=st.one_of(
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
        st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=5).map(
            lambda xs: ",".join(repr(x) for x in xs)
        ),
    )
)
def test_any_limits_reply_connects_sanely_or_is_a_board_error(reply: str) -> None:
    # The reply to PULS:LIM? (retried like any query) either gives sane limits or fails
    # the connection with a BoardError; never a crash, never limits out of sense.
    pairs = init(MEM_INFO)[:-1] + [("PULS:LIM?", reply)] * 4
    port = ProtocolSerial(pairs)
    try:
        board = CrossbarBoard(port, timeout_s=0.01, retries=3)
    except BoardError:
        assert not port.is_open
        return
    limits = board.pulse_limits
    assert limits is not None
    assert 0 < limits.max_amplitude_V < math.inf
    assert 0 < limits.min_width_s <= limits.max_width_s < math.inf
    assert limits.max_count >= 1
