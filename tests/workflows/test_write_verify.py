"""Write-verify over Lab on the simulated memristor board (the hardware code path)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from labrss.lab import Lab, LabInputError
from labrss.memristor import WriteVerifySettings
from labrss.station import Station, parse_station
from labrss.store import Store
from labrss.workflows.write_verify import write_verify

SEED = 3


def memristor_station(board: str = "memristor", seed: int = SEED, **limits: float) -> Station:
    data: dict[str, dict[str, object]] = {"simulator": {"board": board, "seed": seed}}
    if limits:
        data["limits"] = dict(limits)
    return parse_station(data)


@pytest.fixture
def mem_lab() -> Iterator[Lab]:
    with Lab(memristor_station()) as opened:
        yield opened


@pytest.fixture
def mem_store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "lab.db") as store:
        yield store


def truth_S(lab: Lab) -> np.ndarray:
    assert lab.simulator is not None
    with lab.simulator.lock:
        return lab.simulator.model.true_memristor_conductance_S()


def test_devices_reach_the_band_and_everything_is_stored(mem_lab: Lab, mem_store: Store) -> None:
    branches = [(1, 2, k) for k in range(4)]
    targets = [15e-6, 30e-6, 45e-6, 60e-6]
    result = write_verify(
        mem_lab, branches, targets, WriteVerifySettings(tolerance=0.02), store=mem_store
    )
    assert result.status_counts() == {"ok": 4}
    truth = truth_S(mem_lab)
    for d, target in zip(result.devices, targets, strict=True):
        assert d.target_S == target
        assert abs(d.error) <= 0.02  # the measured band, by construction of "ok"
        # the truth agrees with the last verify to the read noise of the 2-read mean
        # (0.1-0.13 uS) plus the drift since (<= 0.089 uS x ln(1 + 5 s)): 0.5 uS at 4 sigma
        assert truth[d.branch] == pytest.approx(d.final_S, abs=0.5e-6)
    # pulse counts: the board's own PULS:COUN? equals the policy's count per device
    assert result.board_pulse_counts == [d.pulses for d in result.devices]
    assert result.pulses == sum(d.pulses for d in result.devices)
    # reads: (pulses + 1) decisions x 2 reads each
    assert result.reads == 2 * (result.pulses + len(branches))
    assert result.instrument_time_s > 0
    # the store holds every read, every pulse, the devices and the summary
    assert result.run_id is not None
    run = mem_store.run(result.run_id)
    assert run.kind == "write_verify"
    assert run.status == "completed"
    readings = mem_store.readings(result.run_id)
    assert readings.size == result.reads
    assert set(readings["mask"].tolist()) == {1 << k for k in range(4)}
    # raw readings kept: the station's 0.1 V read at NPLC 1; the sensed voltage within the
    # 2450's source accuracy on its 200 mV range (0.015 % + 225 uV: 0.24 % of 0.1 V)
    assert np.all(readings["nplc"] == 1.0)
    assert np.allclose(readings["voltage_V"], 0.1, rtol=2.4e-3)
    assert np.allclose(readings["current_A"], readings["value"] * readings["voltage_V"])
    pulses = mem_store.get_result(result.run_id, "pulses")
    assert pulses.size == result.pulses  # one PULSe of count 1 per decision
    assert np.all(np.abs(pulses["amplitude_V"]) <= 2.0)
    devices = mem_store.get_result(result.run_id, "devices")
    assert devices["status"].tolist() == ["ok"] * 4
    summary = mem_store.get_value(result.run_id, "summary")
    assert summary["status_counts"] == {"ok": 4}
    assert summary["board_pulse_counts"] == result.board_pulse_counts


def test_stuck_devices_detected_not_looped_on(tmp_path: Path) -> None:
    board = tmp_path / "stuck.toml"
    board.write_text(
        'base = "memristor"\n[faults]\nmemristor_stuck_on_count = 2\n'
        "memristor_stuck_off_count = 2\n"
    )
    with Lab(memristor_station(str(board), seed=2)) as lab:
        assert lab.simulator is not None
        faults = [f for f in lab.simulator.model.truth()["faults"] if "stuck" in f["kind"]]
        assert len(faults) == 4
        branches = [(f["row"], f["col"], f["branch"]) for f in faults]
        result = write_verify(lab, branches, [45e-6] * 4)  # mid-range: far from both rails
        s = WriteVerifySettings()
        for d in result.devices:
            assert d.status == "stuck", d
            # bounded: first pulse, 3 width doublings (0.2 -> 1 ms), <= 10 amplitude steps
            # of 0.1 V (RESET 1.0 -> 2.0 V), then stuck_pulses - 1; chance "progress" from
            # read noise can restart the count, so allow the pulse budget's headroom
            assert d.pulses <= 1 + 3 + 10 + s.stuck_pulses - 1 + 8
            assert abs(d.error) > 0.5  # g_min = 8 uS or g_max = 90 uS vs 45 uS


def test_station_limit_below_the_start_amplitude_refused_before_any_pulse() -> None:
    with Lab(memristor_station(max_pulse_voltage_V=1.2)) as lab:
        with pytest.raises(LabInputError, match=r"exceed the pulse limit 1\.2 V"):
            write_verify(lab, [(0, 0, 0)], [40e-6])
        assert lab.pulses_applied == 0
        assert lab.pulse_count(0, 0, 0) == 0


def test_amplitudes_clipped_to_the_station_limit(mem_store: Store) -> None:
    # a station allowing 1.5 V: the loop's ramp stops there (never beyond)
    with Lab(memristor_station(max_pulse_voltage_V=1.5)) as lab:
        result = write_verify(lab, [(0, 0, 0), (0, 0, 1)], [85e-6, 9e-6], store=mem_store)
        assert lab.pulses_applied == result.pulses
        assert result.pulses > 0
    assert result.run_id is not None
    amplitudes = mem_store.get_result(result.run_id, "pulses")["amplitude_V"]
    assert np.max(np.abs(amplitudes)) <= 1.5


@pytest.mark.parametrize(
    ("branches", "targets", "match"),
    [
        ([(0, 0, 8)], [4e-5], "not on the board"),
        ([(0, 0, 0)], [-1.0], "must be > 0"),
        ([(0, 0, 0), (0, 0, 1)], [4e-5], "2 branches but 1 targets"),
        ([], [], "no branches"),
    ],
)
def test_bad_requests_refused_before_anything(
    mem_lab: Lab, branches: list[tuple[int, int, int]], targets: list[float], match: str
) -> None:
    with pytest.raises(LabInputError, match=match):
        write_verify(mem_lab, branches, targets)
    assert mem_lab.pulses_applied == 0
    assert mem_lab.readings_taken == 0


def test_resistor_cells_refused_on_a_mixed_board() -> None:
    with Lab(memristor_station("mixed")) as lab:
        with pytest.raises(LabInputError, match="resistor"):
            write_verify(lab, [(0, 7, 0), (0, 0, 0)], [4e-5, 4e-5])
        assert lab.pulses_applied == 0
