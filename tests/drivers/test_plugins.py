"""Driver plug-ins (drivers/plugins.py): entry points, loading, recognition, failures."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import pytest

from drivers import plugins
from drivers.board import Capability
from drivers.plugins import (
    BoardDriver,
    PluginError,
    Recognition,
    SMUDriver,
    UnknownDriverError,
    board_drivers,
    find_board_driver,
    find_smu_driver,
    smu_drivers,
)
from simulator.bench import SimulatedBench


def test_the_built_in_drivers_are_registered_as_entry_points() -> None:
    boards = board_drivers()
    smus = smu_drivers()
    assert "crossbar" in boards
    assert {"keithley2400", "keithley2450", "keysight_b2900"} <= set(smus)
    for entry in [*boards.values(), *smus.values()]:
        if entry.value.startswith("drivers."):
            assert entry.package == "labrss"
            assert entry.version == metadata.version("labrss")
    crossbar = find_board_driver("crossbar")
    assert isinstance(crossbar, BoardDriver)
    assert crossbar.simulator == "crossbar"
    assert Capability.PULSES in crossbar.capabilities
    k2450 = find_smu_driver("keithley2450")
    assert isinstance(k2450, SMUDriver)
    assert (k2450.channels, k2450.simulator) == (1, "2450")
    assert find_smu_driver("keysight_b2900").channels == 2


def test_recognition_matches_what_the_simulated_instruments_answer() -> None:
    """Each built-in driver recognises its instrument's reply to its identify query, and
    no other driver claims it (issue 20's discovery relies on this)."""
    replies: dict[str, str] = {}
    with SimulatedBench("small", seed=4) as bench:
        replies["crossbar"] = bench.board.handle_line("*IDN?") or ""
        replies["keithley2450"] = bench.smu.handle_line("*IDN?") or ""
    with SimulatedBench("small", seed=4, smu_model="B2902A") as bench:
        replies["keysight_b2900"] = bench.smu.handle_line("*IDN?") or ""
    with SimulatedBench("small", seed=4, smu_model="2400") as bench:
        replies["keithley2400"] = bench.smu.handle_line("*IDN?") or ""
    drivers: dict[str, Recognition] = {
        name: e.load().recognition for name, e in {**board_drivers(), **smu_drivers()}.items()
    }
    for owner, reply in replies.items():
        assert drivers[owner].query == "*IDN?"
        claimed = {name for name, rec in drivers.items() if rec.matches(reply)}
        assert claimed == {owner}, (reply, claimed)
    assert drivers["keithley2450"].matches_usb(0x05E6, 0x2450)
    assert not drivers["keithley2450"].matches_usb(0x05E6, 0x2400)
    assert drivers["crossbar"].transports == ("serial",)
    assert drivers["crossbar"].baud_rate == 115200


def test_recognition_by_function_and_its_validation() -> None:
    rec = Recognition(query="ID?", match=lambda reply: reply.startswith("RELAYBOX"))
    assert rec.matches("RELAYBOX v2") and not rec.matches("OTHER")
    both = Recognition(pattern=r"^ACME,", match=lambda reply: reply.endswith(",2"))
    assert both.matches("ACME,X,2") and not both.matches("ACME,X,3")
    assert not Recognition().matches("anything")  # neither pattern nor function
    with pytest.raises(ValueError, match="identify query"):
        Recognition(query=" ")
    with pytest.raises(re.error):
        Recognition(pattern="(unclosed")
    with pytest.raises(ValueError, match="'visa' or 'serial'"):
        Recognition(transports=("usb",))  # type: ignore[arg-type]


def test_an_unknown_driver_lists_the_installed_ones() -> None:
    with pytest.raises(UnknownDriverError) as exc:
        find_board_driver("nosuchboard")
    assert "no board driver named 'nosuchboard' is installed (installed: crossbar" in str(exc.value)
    assert "'labrss.boards'" in str(exc.value)
    with pytest.raises(UnknownDriverError, match=r"'labrss\.smus'"):
        find_smu_driver("nosuchsmu")


class _FakeDist:
    def __init__(self, name: str, version: str) -> None:
        self.metadata = {"Name": name}
        self.version = version


class _FakeEntryPoint:
    def __init__(self, name: str, value: str, dist: _FakeDist, obj: Any) -> None:
        self.name = name
        self.value = value
        self.group = plugins.BOARD_GROUP
        self.dist = dist
        self._obj = obj

    def load(self) -> Any:
        if isinstance(self._obj, BaseException):
            raise self._obj
        return self._obj


@pytest.fixture
def fake_entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[_FakeEntryPoint]]:
    """Replace the installed ``labrss.boards`` entry points with a test's list."""
    points: list[_FakeEntryPoint] = []

    def entry_points(*, group: str) -> list[_FakeEntryPoint]:
        return points if group == plugins.BOARD_GROUP else []

    monkeypatch.setattr(plugins.metadata, "entry_points", entry_points)
    yield points


def test_a_broken_plug_in_is_named_with_its_package_and_cause(
    fake_entry_points: list[_FakeEntryPoint],
) -> None:
    dist = _FakeDist("acme-board", "1.2")
    fake_entry_points.extend(
        [
            _FakeEntryPoint("acme", "acme_board:DRIVER", dist, ImportError("no module numpyy")),
            _FakeEntryPoint("notadriver", "acme_board:thing", dist, object()),
        ]
    )
    listed = board_drivers()
    assert list(listed) == ["acme", "notadriver"]  # listing never imports anything
    with pytest.raises(PluginError) as exc:
        find_board_driver("acme")
    assert str(exc.value) == (
        "driver acme (acme-board 1.2): importing acme_board:DRIVER failed: "
        "ImportError: no module numpyy"
    )
    with pytest.raises(PluginError, match=r"acme_board:thing is a object, not a drivers"):
        find_board_driver("notadriver")


def test_two_packages_claiming_one_name_is_reported_not_guessed(
    fake_entry_points: list[_FakeEntryPoint],
) -> None:
    one = _FakeEntryPoint("dup", "a:DRIVER", _FakeDist("pkg-a", "1"), object())
    same = _FakeEntryPoint("dup", "a:DRIVER", _FakeDist("pkg-a", "1"), object())
    other = _FakeEntryPoint("dup", "b:DRIVER", _FakeDist("pkg-b", "2"), object())
    fake_entry_points.extend([one, same])
    assert board_drivers()["dup"].conflict is None  # one package seen twice: fine
    fake_entry_points.append(other)
    with pytest.raises(PluginError, match=r"installed twice: by pkg-a 1 \(a:DRIVER\) and by pkg-b"):
        find_board_driver("dup")
