"""Memristor boards in the board model: layout, pulses through the pulse circuit, read noise
in what the SMU and the ADCs see, the ground truth, and a guarded cell read over real
sockets before and after pulses."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import pyvisa
import serial
from pyvisa.resources import MessageBasedResource

from simulator.bench import SimulatedBench
from simulator.board_config import BoardConfig, BoardConfigError, Geometry, load_board_config
from simulator.board_model import BoardModel, BoardStateError, Routing
from simulator.truth import dump_truth, load_truth

MEM = load_board_config("memristor")
MIXED = load_board_config("mixed")
IO_TIMEOUT_S = 10.0


def branch_conductance_S(model: BoardModel, r: int, c: int, k: int) -> float:
    """True conductance of branch (r, c, k) with its switch closed: 1/(1/G + r_on)."""
    t = model.truth()
    return float(t["branch_on_conductance_S"][r, c, k])


def test_presets_layout_and_info() -> None:
    m = BoardModel(MEM, seed=1)
    assert m.has_memristors and m.truth()["memristor"].all()
    info = m.info()
    assert info["element"] == "memristor"
    assert (info["g_min_S"], info["g_max_S"]) == (8e-6, 90e-6)
    assert info["pulse_max_amplitude_V"] == 3.0 and info["pulse_max_count"] == 1000
    assert "nominal_ohm" not in info and "tolerance" not in info
    x = BoardModel(MIXED, seed=1)
    assert [x.cell_kind(0, c) for c in range(8)] == ["resistor"] * 4 + ["memristor"] * 4
    xi = x.info()
    assert xi["element"] == "mixed" and xi["memristor_columns"] == "4/5/6/7"
    assert str(xi["nominal_ohm"]).split("/")[0] == "10000"
    r = BoardModel(load_board_config("small"), seed=1)
    assert not r.has_memristors and r.info()["element"] == "resistor"
    assert "g_min_S" not in r.info() and "memristor" not in r.truth()


def test_memristor_values_enter_the_network() -> None:
    m = BoardModel(MEM, seed=2)
    t = m.truth()
    g = t["memristor_conductance_S"]
    assert np.all((g >= t["memristor_g_min_S"]) & (g <= t["memristor_g_max_S"]))
    np.testing.assert_allclose(t["resistance_ohm"], 1.0 / g, rtol=1e-12)
    np.testing.assert_allclose(t["branch_on_conductance_S"], 1.0 / (1.0 / g + t["r_on_ohm"]))
    assert g.min() > 8e-6 * 0.85 and g.max() < 90e-6 * 1.15  # 3 sigma of the 5 % range spread


def test_resistor_cells_of_a_mixed_board_match_the_small_board() -> None:
    # The layout never reshuffles the resistor draws: columns 0-3 equal the small preset's.
    x = BoardModel(MIXED, seed=5).truth()
    s = BoardModel(load_board_config("small"), seed=5).truth()
    np.testing.assert_array_equal(x["resistance_ohm"][:, :4], s["resistance_ohm"][:, :4])
    np.testing.assert_array_equal(x["r_on_ohm"], s["r_on_ohm"])


def test_pulse_changes_only_its_branch_and_restores_the_board_state() -> None:
    m = BoardModel(
        MEM.replace(faults={"memristor_stuck_on_rate": 0.0, "memristor_stuck_off_rate": 0.0}),
        seed=3,
    )
    m.set_cell_mask(1, 1, 0x0F)
    m.set_cell_mask(2, 2, 0x30)
    m.set_routing(Routing("cell", 1, 1, four_wire=True))
    m.set_dac(0, 0.25)
    switches, routing, dacs = m.switches, m.routing, m.dac_voltages_V
    before = m.true_memristor_conductance_S()
    t0 = m.clock.now_s
    m.pulse(2, 3, 5, amplitude_V=2.0, width_s=1e-4, count=10)
    # 2 bbm (isolate, restore) + 10 (width + gap)
    assert m.clock.now_s - t0 == pytest.approx(2 * 1e-3 + 10 * (1e-4 + 1e-3), rel=1e-12)
    after = m.true_memristor_conductance_S()
    # Drift over these 13 ms (ln(1 + 0.013) at most, 3 sigma): < (0.089 + 0.126) uS * 0.013.
    changed = np.argwhere(np.abs(after - before) > 3e-9)
    assert changed.tolist() == [[2, 3, 5]]
    assert after[2, 3, 5] > before[2, 3, 5]  # 10 SET pulses of dP = 5
    np.testing.assert_array_equal(m.switches, switches)
    assert m.routing == routing
    np.testing.assert_array_equal(m.dac_voltages_V, dacs)
    assert m.pulse_count(2, 3, 5) == 10 and m.pulse_count(2, 3, 4) == 0
    m.pulse(2, 3, 5, amplitude_V=-2.0, width_s=1e-4)
    assert m.pulse_count(2, 3, 5) == 11
    assert m.true_memristor_conductance_S()[2, 3, 5] < after[2, 3, 5]
    m.safe()  # counts survive the safe state (the board counts in its own memory)
    assert m.pulse_count(2, 3, 5) == 11


def test_a_stuck_closed_switch_shares_the_pulse_and_a_stuck_open_one_blocks_it() -> None:
    cfg = MEM.replace(faults={"memristor_stuck_on_rate": 0.0, "memristor_stuck_off_rate": 0.0})
    m = BoardModel(cfg.replace(faults={"stuck_closed_rate": 0.05, "stuck_open_rate": 0.05}), seed=4)
    t = m.truth()
    stuck_closed = {
        (f["row"], f["col"], f["branch"]) for f in t["faults"] if f["kind"] == "stuck_closed"
    }
    stuck_open = {
        (f["row"], f["col"], f["branch"]) for f in t["faults"] if f["kind"] == "stuck_open"
    }
    r, c, k = next(iter(sorted(stuck_closed)))
    k_other = next(j for j in range(8) if (r, c, j) not in stuck_closed | stuck_open)
    before = m.true_memristor_conductance_S()
    m.pulse(r, c, k_other, amplitude_V=2.5, width_s=1e-3)
    after = m.true_memristor_conductance_S()
    assert after[r, c, k_other] != before[r, c, k_other]
    assert after[r, c, k] != before[r, c, k]  # the stuck-closed branch took the pulse too
    ro, co, ko = next(iter(sorted(stuck_open)))
    g = m.true_memristor_conductance_S()[ro, co, ko]
    m.pulse(ro, co, ko, amplitude_V=2.5, width_s=1e-3)
    # Drift only: over these 3.1 ms at most (0.089 + 3 * 0.042) uS * ln(1 + 3.1 ms / 1 s).
    assert abs(m.true_memristor_conductance_S()[ro, co, ko] - g) < 0.7e-9
    assert m.pulse_count(ro, co, ko) == 1  # the board counts what it drove
    assert m.truth()["memristor_cycles"][ro, co, ko] == 0  # the device never saw it


def test_pulse_limits_and_resistor_branches_are_refused() -> None:
    m = BoardModel(MIXED, seed=1)
    with pytest.raises(BoardStateError, match=r"branch \(0,1,2\) is a resistor"):
        m.pulse(0, 1, 2, amplitude_V=1.0, width_s=1e-4)
    with pytest.raises(BoardStateError, match="resistor"):
        m.pulse_count(0, 0, 0)
    for kwargs, text in [
        ({"amplitude_V": 3.5, "width_s": 1e-4}, "amplitude 3.5 V"),
        ({"amplitude_V": 1.0, "width_s": 1e-8}, "width 1e-08 s"),
        ({"amplitude_V": 1.0, "width_s": 1e-4, "count": 0}, "count 0"),
        ({"amplitude_V": math.nan, "width_s": 1e-4}, "amplitude nan"),
    ]:
        with pytest.raises(ValueError, match=text):
            m.pulse(0, 5, 0, **kwargs)  # type: ignore[arg-type]
    assert m.pulse_count(0, 5, 0) == 0


def test_read_noise_on_every_smu_reading_matches_the_law() -> None:
    m = BoardModel(
        MEM.replace(faults={"memristor_stuck_on_rate": 0.0, "memristor_stuck_off_rate": 0.0}),
        seed=6,
    )
    m.set_branch(3, 4, 2, True)
    m.set_routing(Routing("cell", 3, 4))
    g = np.array([m.smu_port().g_S for _ in range(2000)])
    g_branch = branch_conductance_S(m, 3, 4, 2)
    g_dev = float(m.truth()["memristor_conductance_S"][3, 4, 2])
    sigma = 1e-7 * math.log10(g_dev / 1e-6)
    # The mean: the branch plus the other 7 open branches' leakage (< 8 / 1e10 S) and the
    # wires' relative effect (< 1e-3); the spread: the read-noise law.
    assert abs(g.mean() - g_branch) < 5 * sigma / math.sqrt(2000) + 1e-3 * g_branch
    assert abs(g.std(ddof=1) / sigma - 1.0) < 5 / math.sqrt(2 * 1999)
    assert m.n_factorisations <= 2  # noise never costs a factorisation


def test_read_noise_reaches_the_adc_columns() -> None:
    cfg = MEM.replace(adc={"noise_A": 0.0, "bits": 32})
    m = BoardModel(cfg, seed=7)
    m.set_switches(np.ones(MEM.geometry.shape, bool))
    m.set_dac_all(np.full(8, 0.2))
    m.set_routing(Routing("mvm_adc"))
    reads = np.array([m.adc_read() for _ in range(400)])
    truth = m.true_column_currents_A()
    g = m.truth()["memristor_conductance_S"]
    assert m.memristors is not None
    sigma_col = 0.2 * np.sqrt((m.memristors.read_noise_sigma_S(g) ** 2).sum(axis=(0, 2)))
    gain = m.truth()["adc_gain"]
    spread = reads.std(axis=0, ddof=1) / gain
    np.testing.assert_allclose(spread / sigma_col, 1.0, atol=5 / math.sqrt(2 * 399))
    assert np.all(
        np.abs(reads.mean(axis=0) - (gain * truth + m.truth()["adc_offset_A"]))
        < 5 * sigma_col / 20 + 1e-12
    )


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_truth_of_a_memristor_board_round_trips(tmp_path: Path, suffix: str) -> None:
    cfg = MEM.replace(
        memristor={"endurance_cycles": 3.0, "endurance_sigma_decades": 0.0},
        faults={
            "memristor_stuck_on_count": 2,
            "memristor_stuck_off_count": 1,
            "memristor_stuck_on_rate": 0.0,
            "memristor_stuck_off_rate": 0.0,
        },
    )
    m = BoardModel(cfg, seed=8)
    m.pulse(0, 0, 0, amplitude_V=1.5, width_s=1e-4, count=4)  # the 4th pulse wears it out
    path = tmp_path / f"truth{suffix}"
    dump_truth(m, path)
    loaded = load_truth(path)
    truth = m.truth()
    for key in (
        "memristor",
        "memristor_conductance_S",
        "memristor_cycles",
        "pulse_count",
        "memristor_worn_out",
        "resistance_ohm",
    ):
        np.testing.assert_array_equal(loaded[key], truth[key])
    kinds = [f["kind"] for f in loaded["faults"]]
    assert kinds.count("memristor_stuck_on") == 2 and kinds.count("memristor_stuck_off") == 1
    assert all((f["row"], f["col"], f["branch"]) != (0, 0, 0) for f in truth["faults"][:3])
    worn = [f for f in loaded["faults"] if f["kind"] == "memristor_worn_out"]
    assert worn == [{"kind": "memristor_worn_out", "row": 0, "col": 0, "branch": 0}]
    assert loaded["pulse_count"][0, 0, 0] == 4


def test_same_seed_same_board_and_same_pulse_outcomes() -> None:
    def run(seed: int) -> np.ndarray:
        m = BoardModel(MIXED, seed=seed)
        for i in range(5):
            m.pulse(i, 4 + i % 4, i, amplitude_V=1.2 + 0.2 * i, width_s=1e-4, count=3)
            m.pulse(i, 4 + i % 4, i, amplitude_V=-1.0, width_s=2e-4)
        return np.asarray(m.truth()["memristor_conductance_S"])

    np.testing.assert_array_equal(run(11), run(11))
    assert not np.array_equal(run(11), run(12))


def test_config_errors_name_the_key() -> None:
    with pytest.raises(BoardConfigError, match=r"element\.memristor_columns is empty"):
        load_board_config("small").replace(element={"kind": "mixed"})
    with pytest.raises(
        BoardConfigError, match=r"element.memristor_columns holds column 4, not in 0..3"
    ):
        BoardConfig(Geometry(2, 4, 2), element=MIXED.element)
    with pytest.raises(BoardConfigError, match="only for kind = 'mixed'"):
        load_board_config("small").replace(element={"memristor_columns": (1,)})
    with pytest.raises(BoardConfigError, match="memristor_stuck_on_count = 1 exceeds the 0"):
        load_board_config("small").replace(faults={"memristor_stuck_on_count": 1})
    with pytest.raises(BoardConfigError, match=r"memristor\.g_max_S"):
        MEM.replace(memristor={"g_max_S": 5e-6})
    with pytest.raises(BoardConfigError, match=r"memristor\.set_reference_V"):
        MEM.replace(memristor={"set_reference_V": 0.8})
    with pytest.raises(BoardConfigError, match=r"pulse\.max_width_s"):
        MEM.replace(pulse={"max_width_s": 1e-9})


def test_toml_mixed_layout_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "half.toml"
    path.write_text('base = "small"\n[element]\nkind = "mixed"\nmemristor_columns = [0, 7]\n')
    cfg = load_board_config(path)
    assert cfg.element.memristor_columns == (0, 7)
    path.write_text('base = "small"\n[element]\nkind = "mixed"\nmemristor_columns = [0.5]\n')
    with pytest.raises(
        BoardConfigError, match=r"element.memristor_columns = 0.5 must be an integer"
    ):
        load_board_config(path)


# ---------------------------------------------------------------------- over real sockets
def test_guarded_cell_read_through_the_smu_before_and_after_pulses() -> None:
    with SimulatedBench("memristor", seed=21) as bench:
        rm = pyvisa.ResourceManager("@py")
        smu = rm.open_resource(
            bench.smu_resource,
            read_termination="\n",
            write_termination="\n",
            timeout=round(IO_TIMEOUT_S * 1000),
        )
        assert isinstance(smu, MessageBasedResource)
        board = serial.serial_for_url(bench.board_url, timeout=IO_TIMEOUT_S)

        def q(line: str) -> str:
            board.write(line.encode() + b"\n")
            return board.readline().decode().rstrip("\n")

        try:
            assert q("BOARD:KIND? 2,3") == "MEM"
            r, c, k = 2, 3, 6
            faults = bench.model.truth()["faults"]
            assert all((f["row"], f["col"], f["branch"]) != (r, c, k) for f in faults)
            assert q(f"SW:BRAN {r},{c},{k},1") == "OK"
            assert q(f"ROUT:CELL {r},{c},2W") == "OK"
            for line in (
                "*RST",
                ":SOUR:FUNC VOLT",
                ":SOUR:VOLT:RANG 2",
                ":SOUR:VOLT 0.2",
                ":SOUR:VOLT:ILIM 0.01",
                ':SENS:FUNC "CURR"',
                ":SENS:CURR:RANG 1e-4",
                ":SENS:CURR:NPLC 1",
                ":OUTP ON",
            ):
                smu.write(line)

            def read_g() -> tuple[float, float]:
                values = [float(smu.query(":READ?")) / 0.2 for _ in range(8)]
                return float(np.mean(values)), branch_conductance_S(bench.model, r, c, k)

            g0, true0 = read_g()
            assert q(f"PULS {r},{c},{k},-2.0,1e-3,20") == "OK"  # RESET towards g_min
            g1, true1 = read_g()
            assert q(f"PULS {r},{c},{k},2.0,1e-3,20") == "OK"  # SET towards g_max
            g2, true2 = read_g()
            assert q(f"PULS:COUN? {r},{c},{k}") == "40"
            assert q("ROUT?") == f"CELL {r},{c},2W" and q(f"SW:CELL? {r},{c}") == "40"
            # The reading follows the device: read noise (<= 0.2 uS) and the 100 uA range's
            # noise and gain error (~1e-3) bound the difference to 1 % of 90 uS.
            for g, true in ((g0, true0), (g1, true1), (g2, true2)):
                assert abs(g - true) < 0.9e-6
            assert g1 < 20e-6 and g2 > 60e-6
        finally:
            smu.write(":OUTP OFF")
            smu.close()
            rm.close()
            board.close()


def test_retention_drift_over_the_virtual_clock() -> None:
    cfg = MEM.replace(faults={"memristor_stuck_on_rate": 0.0, "memristor_stuck_off_rate": 0.0})
    m = BoardModel(cfg, seed=13)
    t0 = m.truth()
    g0 = t0["memristor_conductance_S"]
    # Devices as delivered count as programmed at t = 0; keep those that stay clear of
    # g_min after a day (5 uS > 1.0 uS mean drop + 5 sigma of 0.48 uS), so none is clipped.
    keep = g0 > t0["memristor_g_min_S"] + 5e-6
    m.set_branch(0, 0, 0, True)
    m.set_routing(Routing("cell", 0, 0))
    port0 = np.mean([m.smu_port().g_S for _ in range(200)])
    day = 86400.0
    m.clock.advance(day)
    t1 = m.truth()
    ln_t1, ln_t0 = math.log1p(t1["time_s"]), math.log1p(t0["time_s"])
    dg = (t1["memristor_conductance_S"] - g0)[keep]
    mean_law = -0.089e-6 * (ln_t1 - ln_t0)  # -1.01 uS
    # z is drawn per device, so devices spread as 0.042 uS * ln(1 + t): sigma 0.48 uS.
    sigma = 0.042e-6 * ln_t1
    assert abs(dg.mean() - mean_law) < 5 * sigma / math.sqrt(keep.sum())
    assert abs(dg.std(ddof=1) / sigma - 1.0) < 5 / math.sqrt(2 * (keep.sum() - 1))
    # The SMU sees the drifted device (the port mean of 200 reads: read noise 0.17 uS / 14).
    port1 = np.mean([m.smu_port().g_S for _ in range(200)])
    expected = branch_conductance_S(m, 0, 0, 0) - float(t0["branch_on_conductance_S"][0, 0, 0])
    assert abs((port1 - port0) - expected) < 5 * 0.2e-6 / math.sqrt(100)
