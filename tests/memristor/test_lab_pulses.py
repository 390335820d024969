"""`Lab`'s memristor operations on the embedded simulator: pulse_branch, cell_kind, wait_s."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.errors import InstrumentLimitError
from labrss.lab import Lab, LabInputError, SafetyLimitError
from labrss.station import StationError, parse_station


def memristor_lab(board: str = "memristor", seed: int = 3, **limits: float) -> Lab:
    data: dict[str, dict[str, object]] = {"simulator": {"board": board, "seed": seed}}
    if limits:
        data["limits"] = dict(limits)
    return Lab(parse_station(data))


@pytest.fixture
def lab() -> Iterator[Lab]:
    with memristor_lab() as opened:
        yield opened


def test_station_pulse_limit_default_and_validation() -> None:
    assert parse_station({}).limits.max_pulse_voltage_V == 2.0
    assert parse_station({"limits": {"max_pulse_voltage_V": 1.2}}).limits.max_pulse_voltage_V == 1.2
    for bad in (0, -1.0, 25.0, "2"):
        with pytest.raises(StationError, match=r"\[limits\] max_pulse_voltage_V"):
            parse_station({"limits": {"max_pulse_voltage_V": bad}})


def test_pulse_moves_the_device_and_is_accounted(lab: Lab) -> None:
    assert lab.simulator is not None
    model = lab.simulator.model
    before = lab.measure_branch(1, 2, 3).conductance_S
    record = lab.pulse_branch(1, 2, 3, 1.6, 1e-4, 20)  # about 25 reference SET pulses
    after = lab.measure_branch(1, 2, 3).conductance_S
    with lab.simulator.lock:
        truth = model.true_memristor_conductance_S()[1, 2, 3]
    # SET raises G unless the device started within ~1 level of g_max (90 uS +- 15 %)
    assert after > before or before > 0.95 * 90e-6 * 0.85
    # the read agrees with the truth to the read noise (0.2 uS) plus switch/wiring (~0.1 %)
    assert after == pytest.approx(truth, rel=3e-3, abs=1e-6)
    assert record.count == 20
    assert record.duration_s == pytest.approx(2e-3 + 20 * (1e-4 + 1e-3))
    assert lab.pulses_applied == 20
    assert lab.pulse_time_s == pytest.approx(record.duration_s)
    assert lab.pulse_count(1, 2, 3) == 20


def test_beyond_station_limit_refused_before_anything_is_sent(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    original = lab.board.query

    def spy(command: str, *args: object, **kwargs: object) -> object:
        sent.append(command)
        return original(command, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(lab.board, "query", spy)
    with pytest.raises(SafetyLimitError) as info:
        lab.pulse_branch(0, 0, 0, -2.5, 1e-4)
    assert info.value.limit_key == "[limits] max_pulse_voltage_V"
    assert info.value.limit == 2.0
    assert sent == []
    with pytest.raises(LabInputError):
        lab.pulse_branch(0, 0, 8, 1.0, 1e-4)
    assert sent == []
    monkeypatch.undo()
    assert lab.pulses_applied == 0
    assert lab.pulse_count(0, 0, 0) == 0


def test_board_limits_refused_before_sending() -> None:
    # a station that allows 5 V still cannot exceed the pulse circuit's 3 V, nor its widths
    with memristor_lab(max_pulse_voltage_V=5.0) as lab:
        with pytest.raises(InstrumentLimitError, match="PULS:LIM"):
            lab.pulse_branch(0, 0, 0, 3.5, 1e-4)
        with pytest.raises(InstrumentLimitError, match="width"):
            lab.pulse_branch(0, 0, 0, 1.0, 0.5)
        assert lab.pulse_count(0, 0, 0) == 0


def test_pulse_power_check() -> None:
    # 2 V across a 90 uS device (x 1.2 margin) is 0.43 mW: refused under a 0.1 mW limit
    with memristor_lab(max_power_per_element_W=1e-4) as lab:
        with pytest.raises(SafetyLimitError, match="pulse amplitude") as info:
            lab.pulse_branch(0, 0, 0, 2.0, 1e-4)
        assert info.value.limit_key == "[limits] max_power_per_element_W"
        lab.pulse_branch(0, 0, 0, 0.8, 1e-4)  # 0.09 mW passes


def test_mixed_board_kinds_and_resistor_refusal() -> None:
    with memristor_lab("mixed") as lab:
        assert lab.cell_kind(0, 0) == "resistor"
        assert lab.cell_kind(0, 7) == "memristor"
        with pytest.raises(LabInputError, match="holds resistors"):
            lab.pulse_branch(0, 0, 0, 1.0, 1e-4)


def test_wait_advances_the_virtual_clock_and_the_device_drifts(lab: Lab) -> None:
    lab.pulse_branch(0, 1, 0, -1.5, 1e-4, 10)
    lab.pulse_branch(0, 1, 0, 1.5, 1e-4, 40)  # programmed now: drift starts here
    g0 = sum(lab.measure_branch(0, 1, 0, nplc=10).conductance_S for _ in range(4)) / 4
    t0 = lab.clock_s()
    lab.wait_s(7 * 86400.0)
    assert lab.clock_s() - t0 == pytest.approx(7 * 86400.0, abs=1.0)
    g1 = sum(lab.measure_branch(0, 1, 0, nplc=10).conductance_S for _ in range(4)) / 4
    # CMO relaxation: mean drop 0.089 uS per unit of ln(1 + t/1 s) -> 1.2 uS after a week,
    # spread 0.042 uS * 13.3 = 0.56 uS; bound at 4 sigma either way
    assert g0 - g1 == pytest.approx(0.089e-6 * 13.3, abs=4 * 0.56e-6)
    with pytest.raises(LabInputError):
        lab.wait_s(-1.0)
