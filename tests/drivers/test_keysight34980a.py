"""The Keysight 34980A matrix driver and its layout file: exact traffic, without I/O."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from drivers.adapters import ProtocolAdapter, Reply
from drivers.board import Capability, MissingCapabilityError
from drivers.errors import BoardError, BoardIdentityError
from drivers.keysight34980a import Keysight34980AMatrix, channel_list
from drivers.matrix_layout import LayoutError, MatrixLayout, load_layout
from drivers.plugins import BoardConnection, find_board_driver

IDN = "Agilent Technologies,34980A,MY44012345,2.43-2.43-1.00-1.00"
Pairs = list[tuple[str | None, Reply]]

LAYOUT = """
[array]
serial = "A-1"
rows = 2
cols = 2
branches = 2
element = "resistor"
nominal_ohm = "1e6/5e5"
tolerance = 0.05

[matrix]
modules = { 1 = "34932A" }
rated_operations = 1000
settle_time_s = 0.02

[branches]
1101 = [0, 0, 0]
1102 = [0, 0, 1]
1103 = [0, 1, 0]
1104 = [0, 1, 1]
1205 = [1, 0, 0]
1206 = [1, 0, 1]
1207 = [1, 1, 0]
1208 = [1, 1, 1]

[lines]
1501 = ["row", 0, "HI"]
1502 = ["row", 1, "HI"]
1601 = ["row", 0, "LO"]
1602 = ["row", 1, "LO"]
1603 = ["col", 0, "LO"]
1604 = ["col", 1, "LO"]
1703 = ["col", 0, "GUARD"]
1704 = ["col", 1, "GUARD"]
"""
ALL = "(@1101:1104,1205:1208,1501:1502,1601:1604,1703:1704)"
INIT: Pairs = [
    ("*IDN?", IDN),
    ("*CLS", None),
    ("SYST:CTYP? 1", "Agilent Technologies,34932A,1234567,1.00"),
    (":SYST:ERR?", '+0,"No error"'),
]


@pytest.fixture
def layout(tmp_path: Path) -> MatrixLayout:
    path = tmp_path / "layout.toml"
    path.write_text(LAYOUT)
    return load_layout(path)


def matrix(layout: MatrixLayout, pairs: Pairs) -> tuple[Keysight34980AMatrix, ProtocolAdapter]:
    adapter = ProtocolAdapter(INIT + pairs, name="TCPIP0::test::5025::SOCKET")
    return Keysight34980AMatrix(adapter, layout), adapter


def test_layout_is_read_and_checked(layout: MatrixLayout, tmp_path: Path) -> None:
    assert (layout.rows, layout.cols, layout.branches, layout.serial) == (2, 2, 2, "A-1")
    assert layout.branch_channel[(1, 1, 0)] == 1207
    assert layout.routing_for(0, 1) == {1501, 1604, 1602, 1703}
    assert layout.where[1703] == "col 0 to GUARD"
    assert layout.info["nominal_ohm"] == "1e6/5e5" and layout.info["element"] == "resistor"
    assert layout.info["switch_off_max_S"] == "1e-10"  # the 34932A's isolation by default
    bad = {
        "1101 = [0, 0, 0]\n1102 = [0, 0, 1]": ("1101 = [0, 0, 0]", "branch (0, 0, 1) has no"),
        '1703 = ["col", 0, "GUARD"]': (
            '1703 = ["col", 0, "HI"]',
            "[lines] 1703 = ['col', 0, 'HI']",
        ),
        "1208 = [1, 1, 1]": ("1208 = [1, 1, 1]\n1209 = [1, 1, 1]", "already has a channel"),
        "1205 = [1, 0, 0]": ("1905 = [1, 0, 0]", "a 34932A has rows 1..8"),
        'element = "resistor"': ('element = "memristor"', "only resistor arrays"),
        '{ 1 = "34932A" }': ('{ 1 = "34999A" }', "this driver knows 34931A"),
    }
    for old, (new, message) in bad.items():
        path = tmp_path / "bad.toml"
        path.write_text(LAYOUT.replace(old, new))
        with pytest.raises(LayoutError, match=re.escape(message)):
            load_layout(path)
    with pytest.raises(LayoutError, match="not found"):
        load_layout(tmp_path / "missing.toml")


def test_channel_lists_use_ranges_within_a_matrix_row() -> None:
    assert channel_list([1104, 1101, 1102, 1103, 1201, 2101]) == "(@1101:1104,1201,2101)"
    assert channel_list([1116, 1201]) == "(@1116,1201)"  # different rows: no range


def test_connect_checks_identity_and_modules(layout: MatrixLayout) -> None:
    m, adapter = matrix(layout, [])
    adapter.assert_done()  # nothing switched at connect
    assert m.geometry.rows == 2 and m.serial == "A-1" and m.identity == IDN
    assert m.capabilities == {Capability.SWITCH_COUNTS}
    assert m.settle_time_s == 0.02 and m.open_cell_max_S == pytest.approx(2e-10)
    assert m.mvm_mode == "superposition"
    with pytest.raises(BoardIdentityError, match="expects a 34932A in slot 1, the mainframe"):
        Keysight34980AMatrix(
            ProtocolAdapter([*INIT[:2], ("SYST:CTYP? 1", "Agilent Technologies,0,0,0")], name="x"),
            layout,
        )
    with pytest.raises(BoardIdentityError, match="expected a Keysight 34980A"):
        Keysight34980AMatrix(ProtocolAdapter([("*IDN?", "ACME,X,1,2")], name="x"), layout)


def test_a_cell_mask_opens_before_it_closes_and_is_read_back(layout: MatrixLayout) -> None:
    m, adapter = matrix(
        layout,
        [
            (f"ROUT:CLOS? {ALL}", ",".join(["1", "0"] + ["0"] * 14)),  # branch (0,0,0) closed
            ("ROUT:OPEN (@1101)", None),
            ("ROUT:CLOS (@1102)", None),
            ("ROUT:CLOS? (@1101:1102)", "0,1"),
            ("ROUT:CLOS? (@1101:1102)", "0,1"),
        ],
    )
    m.set_cell_mask(0, 0, 0b10)
    assert m.cell_mask(0, 0) == 0b10
    adapter.assert_done()


def test_routing_is_break_before_make_and_decoded(layout: MatrixLayout) -> None:
    closed_00 = "(@1501,1602:1603,1704)"  # cell (0,0): row 0 HI, row 1 LO, col 0 LO, col 1 GUARD
    m, adapter = matrix(
        layout,
        [
            (f"ROUT:CLOS? {ALL}", ",".join(["0"] * 16)),
            (f"ROUT:CLOS {closed_00}", None),
            ("ROUT:CLOS? (@1501:1502,1601:1604,1703:1704)", "1,0,0,1,1,0,0,1"),
            # to cell (1,1): open what changes first, then close
            ("ROUT:OPEN (@1501,1602:1603,1704)", None),
            ("ROUT:CLOS (@1502,1601,1604,1703)", None),
            ("ROUT:CLOS? (@1501:1502,1601:1604,1703:1704)", "0,1,1,0,0,1,1,0"),
            ("ROUT:CLOS? (@1501:1502,1601:1604,1703:1704)", "0,1,1,0,0,1,1,0"),
            ("ROUT:CLOS? (@1501:1502,1601:1604,1703:1704)", "1,1,0,0,1,1,0,0"),
        ],
    )
    m.route_cell(0, 0)
    m.route_cell(1, 1)
    assert m.routing() == "CELL 1,1,2W"
    with pytest.raises(BoardError, match=r"in no routing state: closed 1501 \(row 0 to HI\)"):
        m.routing()
    with pytest.raises(MissingCapabilityError, match="'4-wire'"):
        m.route_cell(0, 0, four_wire=True)
    adapter.assert_done()


def test_read_back_mismatch_names_the_channel_and_the_error_queue(layout: MatrixLayout) -> None:
    m, adapter = matrix(
        layout,
        [
            (f"ROUT:CLOS? {ALL}", ",".join(["0"] * 16)),
            ("ROUT:CLOS (@1101)", None),
            ("ROUT:CLOS? (@1101:1102)", "0,0"),
            (":SYST:ERR?", '-222,"Data out of range"'),
            (":SYST:ERR?", '+0,"No error"'),
        ],
    )
    with pytest.raises(BoardError) as exc:
        m.set_cell_mask(0, 0, 1)
    assert "channel 1101 (branch (0, 0, 0)) reads 0, wanted 1" in str(exc.value)
    assert '-222,"Data out of range"' in str(exc.value)
    adapter.assert_done()


def test_bad_requests_send_nothing(layout: MatrixLayout) -> None:
    m, adapter = matrix(layout, [])
    for call in (
        lambda: m.set_cell_mask(2, 0, 1),
        lambda: m.set_cell_mask(0, 0, 4),
        lambda: m.route_cell(0, -1),
        lambda: m.set_masks(np.zeros((2, 2, 3), dtype=bool)),
    ):
        with pytest.raises(ValueError, match="nothing sent"):
            call()
    with pytest.raises(MissingCapabilityError, match="'dacs'"):
        m.set_dacs([0.0, 0.0])
    adapter.assert_done()


def test_safe_wear_and_close(layout: MatrixLayout) -> None:
    m, adapter = matrix(
        layout,
        [
            ("ROUT:OPEN:ALL 1", None),
            (f"ROUT:CLOS? {ALL}", ",".join(["0"] * 16)),
            (f"DIAG:REL:CYCL? {ALL}", ",".join(f"+{n}" for n in range(16))),
            ("ROUT:OPEN:ALL 1", None),
            (f"ROUT:CLOS? {ALL}", ",".join(["0"] * 16)),
        ],
    )
    m.safe()
    wear = m.switch_wear()
    assert wear.counts["1101"] == 0 and wear.counts["1704"] == 15
    assert wear.rated_operations == 1000 and wear.where["1501"] == "row 0 to HI"
    m.close()
    m.close()  # idempotent
    adapter.assert_done()


def test_the_plugin_needs_a_layout() -> None:
    driver = find_board_driver("keysight34980a")
    assert driver.simulator == "switch-matrix" and "layout" in driver.path_options
    with pytest.raises(ValueError, match=r"\[board.options\] layout = FILE"):
        driver.open(BoardConnection("TCPIP0::127.0.0.1::1::SOCKET"))
    assert driver.recognition.matches(IDN)
    assert driver.recognition.matches("Keysight Technologies,34980A,MY1,3.0")
