"""Lab end to end on the simulated bench, through pyvisa-py and pyserial on loopback.

Tolerances come from the Keithley 2450 datasheet (SPEC-2450, 1 year, 1 PLC) that the
emulated instrument is specified to, plus the board's path effects read from the ground
truth: see `reading_tolerance` and the comments in each test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers.errors import InstrumentError, InstrumentIdentityError
from labrss.lab import Lab, LabError, LabInputError, Reading, SafetyLimitError
from labrss.station import parse_station
from simulator.bench import SimulatedBench
from tests.lab.simulated_bench import BenchState, bench_state, second_look, station_for

# Keithley 2450 accuracy (gain as a fraction of reading, offset), SPEC-2450.
CURRENT_ACCURACY = {  # range (A): (gain, offset A)
    10e-9: (0.0010, 50e-12),
    100e-9: (0.0006, 100e-12),
    1e-6: (0.00025, 300e-12),
    10e-6: (0.00025, 700e-12),
    100e-6: (0.0002, 6e-9),
    1e-3: (0.0002, 60e-9),
    10e-3: (0.0002, 600e-9),
}
VOLTAGE_ACCURACY_200MV = (0.00012, 200e-6)
"""Measure voltage, 200 mV range: a 0.1 V read-back is measured on it."""
# Keysight B2901A/B2902A (B2900A series data sheet, 1 year, 1 PLC), the same quantities.
B2900_CURRENT_ACCURACY = {
    100e-9: (0.00025, 100e-12),
    1e-6: (0.00025, 500e-12),
    10e-6: (0.00025, 1.5e-9),
    100e-6: (0.0002, 25e-9),
    1e-3: (0.0002, 200e-9),
    10e-3: (0.0002, 2.5e-6),
}
B2900_VOLTAGE_ACCURACY_200MV = (0.00015, 225e-6)
SOURCE_OFFSET_V = 200e-6
"""Source voltage offset on the 20 mV and 200 mV ranges: where a "0 V" source really is."""
NOISE_FRACTION_OF_RANGE_1PLC = 5e-6
"""RMS noise at 1 PLC, about 5 ppm of range (SPEC-2450: 5 pA on 1 uA, 10 uV on 2 V)."""
NOISE_SIGMAS = 4.0
"""Noise bound in standard deviations: a false alarm about once in 16 000 readings."""


def noise_A(range_A: float, nplc: float) -> float:
    """RMS current noise (A) at ``nplc``: 5 ppm of range at 1 PLC, times NPLC**-0.67."""
    return NOISE_FRACTION_OF_RANGE_1PLC * range_A * nplc**-0.67


def reading_tolerance(reading: Reading, *, keysight: bool = False) -> float:
    """Relative bound on R = V / I from the SMU: |dV/V| + |dI/I| at the ranges in use.

    Accuracy (gain + offset, the emulator draws a fixed error within it) plus the noise
    bound, for the current (range from the reading) and the 0.1 V read-back (200 mV range).
    """
    v = abs(reading.voltage_V)
    i = abs(reading.current_A)
    currents = B2900_CURRENT_ACCURACY if keysight else CURRENT_ACCURACY
    i_gain, i_offset = currents[reading.current_range_A]
    v_gain, v_offset = B2900_VOLTAGE_ACCURACY_200MV if keysight else VOLTAGE_ACCURACY_200MV
    v_noise = NOISE_FRACTION_OF_RANGE_1PLC * 0.2 * reading.nplc**-0.67
    i_rel = i_gain + (i_offset + NOISE_SIGMAS * noise_A(reading.current_range_A, reading.nplc)) / i
    v_rel = v_gain + (v_offset + NOISE_SIGMAS * v_noise) / v
    return i_rel + v_rel


def series_path_ohm(truth: dict[str, object], r: int, c: int) -> tuple[float, float]:
    """(estimate, bound) of the 2-wire series path (ohm) outside the cell's bank.

    Estimate: row and column routing switches plus the two leads. Bound: the estimate
    again (its own uncertainty) plus every wire segment of the row and the column line.
    """
    route_row = float(np.asarray(truth["route_row_ohm"])[r])
    route_col = float(np.asarray(truth["route_col_ohm"])[c])
    lead = float(truth["lead_ohm"])  # type: ignore[arg-type]
    rows, cols, _ = truth["geometry"]  # type: ignore[misc]
    estimate = route_row + route_col + 2 * lead
    wires = (rows + cols) * float(truth["wire_segment_ohm"])  # type: ignore[arg-type]
    return estimate, estimate + wires


def truth_now(bench: SimulatedBench) -> dict[str, object]:
    with bench.lock:
        return bench.model.truth()


# ---------------------------------------------------------------------- readings


@pytest.mark.parametrize("cell_branch", [(2, 3, 0), (5, 1, 4), (7, 6, 7)])
def test_branch_reading_matches_the_truth(
    bench: SimulatedBench, cell_branch: tuple[int, int, int]
) -> None:
    r, c, k = cell_branch
    with Lab(station_for(bench)) as lab:
        reading = lab.measure_branch(r, c, k, nplc=1.0)
        truth = truth_now(bench)
    assert reading.kind == "branch" and reading.cell == (r, c) and reading.mask == 1 << k
    assert reading.branches == (k,)
    assert not reading.limit_tripped and not reading.four_wire and reading.nplc == 1.0
    assert reading.instrument.startswith("2450 ")
    assert reading.source_voltage_V == 0.1
    # The cell's bank as the truth has it during the reading: branch k through its closed
    # switch, the other branches through their off-resistance (leakage).
    bank_ohm = 1.0 / float(np.asarray(truth["cell_conductance_S"])[r, c])
    path, path_bound = series_path_ohm(truth, r, c)
    expected = bank_ohm + path
    tolerance = reading_tolerance(reading) * expected + path_bound
    assert abs(reading.resistance_ohm - expected) <= tolerance, (reading, expected, tolerance)
    assert reading.conductance_S == pytest.approx(1.0 / reading.resistance_ohm, rel=1e-12)


def test_a_keysight_b2902a_reads_the_same_branch() -> None:
    with SimulatedBench("small", seed=3, smu_model="B2902A") as keysight:
        station = station_for(keysight, smu={"driver": "keysight_b2900", "channel": 1})
        with Lab(station) as lab:
            assert "B2902A" in lab.identities["smu"]
            reading = lab.measure_branch(2, 3, 0, nplc=1.0)
            truth = truth_now(keysight)
    assert reading.instrument.startswith("B2902A ") and not reading.limit_tripped
    path, path_bound = series_path_ohm(truth, 2, 3)
    expected = 1.0 / float(np.asarray(truth["cell_conductance_S"])[2, 3]) + path
    tolerance = reading_tolerance(reading, keysight=True) * expected + path_bound
    assert abs(reading.resistance_ohm - expected) <= tolerance


def test_a_subset_adds_as_conductances(bench: SimulatedBench) -> None:
    # One fixed current range for all three readings: the SMU's gain error is then common
    # and cancels in the comparison; what remains is one current offset (the sum of two
    # single readings has two, the subset one), the noise of three readings, and the
    # common series path, which makes the sum of singles differ by about 2 R_s G1 G2.
    station = station_for(bench, measurement={"current_range_A": 1e-4, "nplc": 1.0})
    r, c = 4, 2
    with Lab(station) as lab:
        g1 = lab.measure_branch(r, c, 0).conductance_S
        g2 = lab.measure_branch(r, c, 1).conductance_S
        both = lab.measure_subset(r, c, 0b11)
        truth = truth_now(bench)
    assert both.kind == "subset" and both.mask == 0b11 and both.branches == (0, 1)
    assert both.current_range_A == 1e-4
    v = both.voltage_V
    _, i_offset = CURRENT_ACCURACY[1e-4]
    noise = NOISE_SIGMAS * math.sqrt(3) * noise_A(1e-4, 1.0)
    _, path_bound = series_path_ohm(truth, r, c)
    r_off_min = float(np.min(np.asarray(truth["r_off_ohm"])))
    leak = 6 / r_off_min  # the six other branches' leakage, counted twice in g1 + g2
    tolerance = (i_offset + noise) / v + 2 * path_bound * g1 * g2 + leak
    assert abs(both.conductance_S - (g1 + g2)) <= tolerance, (both.conductance_S, g1 + g2)
    # And the subset against the truth, within the SMU accuracy and the path.
    expected = 1.0 / float(np.asarray(truth["cell_conductance_S"])[r, c])
    expected += series_path_ohm(truth, r, c)[0]
    assert abs(both.resistance_ohm - expected) <= reading_tolerance(both) * expected + path_bound


def test_measure_cell_reads_the_programmed_cell_without_switching(bench: SimulatedBench) -> None:
    rng = np.random.default_rng(11)
    masks = rng.random((8, 8, 8)) < 0.5
    masks[1, 2] = [True, False, True, False, False, False, False, False]
    with Lab(station_for(bench)) as lab:
        lab.set_masks(masks)
        reading = lab.measure_cell(1, 2)
        after = lab.masks()
        truth = truth_now(bench)
    np.testing.assert_array_equal(after, masks)
    assert reading.kind == "cell" and reading.mask == 0b101
    # Guarded routing: the cell's own bank (other cells are nearly at 0 V), plus the path.
    expected = 1.0 / float(np.asarray(truth["cell_conductance_S"])[1, 2])
    path, bound = series_path_ohm(truth, 1, 2)
    expected += path
    assert abs(reading.resistance_ohm - expected) <= reading_tolerance(reading) * expected + bound


def test_four_wire_is_passed_through(bench: SimulatedBench) -> None:
    with Lab(station_for(bench, measurement={"four_wire": True})) as lab:
        assert lab.measure_branch(0, 0, 0).four_wire
        assert not lab.measure_branch(0, 0, 0, four_wire=False).four_wire
        with bench.lock:
            assert bench.model.routing.four_wire is False
        assert lab.measure_cell(0, 0).four_wire
        with bench.lock:
            assert bench.model.routing.four_wire is True


def test_the_previous_cell_opens_before_a_new_cell_closes(
    bench: SimulatedBench, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Lab(station_for(bench)) as lab:
        calls: list[tuple[int, int, int]] = []
        original = lab.board.set_cell_mask

        def spy(r: int, c: int, mask: int, *, verify: bool = True) -> None:
            calls.append((r, c, mask))
            original(r, c, mask, verify=verify)

        monkeypatch.setattr(lab.board, "set_cell_mask", spy)
        lab.measure_branch(0, 0, 1)
        lab.measure_branch(0, 0, 2)  # same cell: one command, the board breaks before make
        lab.measure_branch(3, 4, 5)
        with bench.lock:
            switches = bench.model.switches
    assert calls == [(0, 0, 0b10), (0, 0, 0b100), (0, 0, 0), (3, 4, 0b100000)]
    assert int(switches.sum()) == 1 and switches[3, 4, 5]


def test_instrument_time_accumulates_the_apertures(bench: SimulatedBench) -> None:
    with Lab(station_for(bench, measurement={"line_frequency_Hz": 60.0})) as lab:
        assert lab.instrument_time_s == 0.0 and lab.readings_taken == 0
        lab.measure_branch(0, 0, 0, nplc=1.0)
        lab.measure_branch(0, 0, 1, nplc=0.1)
        lab.measure_cell(0, 0, nplc=2.0)
        assert lab.readings_taken == 3
        assert lab.instrument_time_s == pytest.approx((1.0 + 0.1 + 2.0) / 60.0)


# ---------------------------------------------------------------------- MVM


def test_columns_by_adc_and_by_smu_match_the_truth(bench: SimulatedBench) -> None:
    rng = np.random.default_rng(5)
    masks = rng.random((8, 8, 8)) < 0.5
    volts = rng.uniform(-0.4, 0.4, 8)
    adc_cfg = bench.model.config.adc
    # A fixed range for cell reads far below the column currents: columns autorange anyway.
    with Lab(station_for(bench, measurement={"current_range_A": 1e-5})) as lab:
        lab.set_masks(masks)
        set_V = lab.apply_rows(volts)
        adc = lab.read_columns("adc")
        with bench.lock:
            true_A = bench.model.true_column_currents_A()  # into the TIAs, this very routing
        truth = truth_now(bench)
        smu = lab.read_columns("smu", nplc=1.0)
    # DAC read-back: the set code's voltage, within half an LSB of the request.
    lsb_V = bench.model.config.dac.lsb_V
    np.testing.assert_allclose(set_V, volts, rtol=0, atol=lsb_V / 2 + 1e-12)
    np.testing.assert_array_equal(adc.row_voltages_V, set_V)
    # ADC: reported = gain * I + offset + noise, quantised to its LSB (truth has gain, offset).
    assert adc.path == "adc" and adc.nplc is None and not adc.limit_tripped.any()
    expected_adc = np.asarray(truth["adc_gain"]) * true_A + np.asarray(truth["adc_offset_A"])
    adc_tol = NOISE_SIGMAS * adc_cfg.noise_A + adc_cfg.lsb_A / 2
    np.testing.assert_allclose(adc.currents_A, expected_adc, rtol=0, atol=adc_tol)
    # SMU: the same column currents, but with the column at the SMU's 0 V instead of its
    # TIA's offset voltage, the SMU's own accuracy and noise, and the source offset of a
    # "0 V" source; column c's bank conductance G_c turns each voltage error into current.
    assert smu.path == "smu" and smu.nplc == 1.0 and not smu.limit_tripped.any()
    g_col = np.asarray(truth["cell_conductance_S"]).sum(axis=0)
    tia_offset = np.abs(np.asarray(truth["tia_offset_V"]))
    route = np.asarray(truth["route_col_ohm"]) + float(truth["lead_ohm"])  # type: ignore[arg-type]
    for c in range(8):
        gain, offset = CURRENT_ACCURACY[float(smu.current_range_A[c])]
        tol = (
            gain * abs(true_A[c])
            + offset
            + NOISE_SIGMAS * noise_A(float(smu.current_range_A[c]), 1.0)
            + g_col[c] * (tia_offset[c] + SOURCE_OFFSET_V + abs(true_A[c]) * route[c])
        )
        assert abs(smu.currents_A[c] - true_A[c]) <= tol, (c, smu.currents_A[c], true_A[c], tol)
    # Sign: current flows from positive rows into the columns; the ADC and the SMU agree.
    assert np.sign(smu.currents_A).tolist() == np.sign(adc.currents_A).tolist()


def test_row_voltages_beyond_the_dac_limit_are_refused_before_any_dac_is_set(
    bench: SimulatedBench,
) -> None:
    with Lab(station_for(bench, limits={"max_dac_voltage_V": 0.3})) as lab:
        with pytest.raises(SafetyLimitError, match=r"row 6 voltage 0\.35 V exceeds"):
            lab.apply_rows([0, 0, 0, 0, 0, 0, 0.35, 0])
        with pytest.raises(LabInputError, match=r"shape \(8,\)"):
            lab.apply_rows([0.1] * 7)
        with bench.lock:
            assert not bench.model.dac_voltages_V.any()
        with pytest.raises(LabInputError, match="'smu', 'adc' or 'superposition'"):
            lab.read_columns("tia")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- safety


@pytest.mark.parametrize("how", ["normal", "exception", "keyboard_interrupt"])
def test_every_exit_path_leaves_the_bench_safe(
    bench: SimulatedBench, state_at_disconnect: list[BenchState], how: str
) -> None:
    class BoomError(Exception):
        pass

    expected: type[BaseException] | None = {
        "normal": None,
        "exception": BoomError,
        "keyboard_interrupt": KeyboardInterrupt,
    }[how]

    def body() -> None:
        with Lab(station_for(bench)) as lab:
            # Leave everything unsafe: switches closed, routed, DACs set, output on.
            lab.set_masks(np.ones((8, 8, 8), dtype=bool))
            lab.apply_rows(np.full(8, 0.2))
            lab.smu.configure_voltage_source(0.1, 0.01)
            lab.smu.enable_output()
            lab.board.route_cell(1, 1)
            unsafe = bench_state(bench)
            assert unsafe.smu_output_on and unsafe.switches_closed == 512
            assert not unsafe.dacs_zero and unsafe.routing == "cell"
            if how == "exception":
                raise BoomError("inside the with block")
            if how == "keyboard_interrupt":
                raise KeyboardInterrupt

    if expected is None:
        body()
    else:
        with pytest.raises(expected):
            body()
    assert len(state_at_disconnect) == 1
    assert state_at_disconnect[0].safe, state_at_disconnect[0]
    assert second_look(bench) == ("1", "0", "0")


def test_a_failed_reading_leaves_the_bench_safe_and_the_error_intact(
    bench: SimulatedBench, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Lab(station_for(bench)) as lab:
        smu = lab.smu

        def broken(level_V: float | None = None) -> object:
            smu.enable_output()  # the output went on, then the reading failed
            assert bench_state(bench).smu_output_on
            raise InstrumentError("reading failed", instrument="fake", command=":READ?")

        monkeypatch.setattr(smu, "measure_once", broken)
        with pytest.raises(InstrumentError, match="reading failed"):
            lab.measure_branch(2, 2, 2)
        assert bench_state(bench).safe  # right away, while Lab is still connected
        monkeypatch.undo()
        assert lab.measure_branch(2, 2, 2).resistance_ohm > 0  # and Lab is still usable


def test_a_failed_series_leaves_the_bench_safe_and_the_next_series_reads(
    bench: SimulatedBench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Lab.measure_subset_series`: a failure in the middle of the series (the output on)
    makes the bench safe at once; the checks come before anything is switched."""
    with Lab(station_for(bench)) as lab:
        smu = lab.smu
        with pytest.raises(LabInputError, match="current range"):
            lab.measure_subset_series(2, 2, 0b11, [(0.1, None), (-0.1, -1e-6)])
        with pytest.raises(SafetyLimitError):
            lab.measure_subset_series(2, 2, 0b11, [(0.1, None), (1.5, None)])
        assert bench_state(bench).safe and int(bench.model.switches.sum()) == 0

        def broken(points: object, **kwargs: object) -> object:
            smu.enable_output()
            assert bench_state(bench).smu_output_on
            raise InstrumentError("reading failed", instrument="fake", command=":READ?")

        monkeypatch.setattr(smu, "measure_series", broken)
        with pytest.raises(InstrumentError, match="reading failed"):
            lab.measure_subset_series(2, 2, 0b11, [(0.1, None), (-0.1, None)])
        assert bench_state(bench).safe
        monkeypatch.undo()
        plus, minus = lab.measure_subset_series(2, 2, 0b11, [(0.1, None), (-0.1, None)])
        assert plus.source_voltage_V == 0.1 and minus.source_voltage_V == -0.1
        # the same subset: +V and -V differ by the offsets reversal is there to remove
        # (~0.2 % of 0.1 V here), not more
        assert plus.conductance_S == pytest.approx(minus.conductance_S, rel=1e-2)
        assert plus.mask == minus.mask == 0b11 and plus.kind == "subset"


@pytest.mark.parametrize(
    ("kwargs", "station_limits", "match"),
    [
        (
            {"read_voltage_V": 1.5},
            {},
            r"read voltage 1\.5 V exceeds \[limits\] max_source_voltage_V = 1\.0",
        ),
        ({"read_voltage_V": -1.01}, {}, r"read voltage -1\.01 V exceeds"),
        (
            {"read_voltage_V": 0.9},
            {"min_element_resistance_ohm": 10.0},
            r"0\.081 W .*R_min = 10 ohm from \[limits\] min_element_resistance_ohm.*"
            r"max_power_per_element_W = 0\.0625",
        ),
        ({"nplc": 20.0}, {}, r"NPLC 20\.0 outside"),
        ({"read_voltage_V": 0.0}, {}, "non-zero"),
    ],
)
def test_limit_violations_are_refused_before_anything_is_switched(
    bench: SimulatedBench,
    kwargs: dict[str, float],
    station_limits: dict[str, float],
    match: str,
) -> None:
    with Lab(station_for(bench, limits=station_limits)) as lab:
        with pytest.raises((SafetyLimitError, LabInputError), match=match):
            lab.measure_branch(3, 3, 3, **kwargs)  # type: ignore[arg-type]
        assert bench_state(bench).safe  # no switch closed, nothing routed, output off
        with pytest.raises(LabInputError, match="bits beyond the board's 8 branches"):
            lab.measure_subset(3, 3, 0x100)
        with pytest.raises(LabInputError, match=r"row 8 not on the board"):
            lab.measure_branch(8, 0, 0)
        with pytest.raises(LabInputError, match=r"branch 8 not on the board"):
            lab.measure_branch(0, 0, 8)
        assert bench_state(bench).safe


def test_r_min_comes_from_the_boards_bill_of_materials(bench: SimulatedBench) -> None:
    # The board reports its per-branch nominal values and tolerance in BOARD:INFO?; the
    # power check uses the smallest nominal less the tolerance, never a true value.
    cfg = bench.model.config.element
    nominal_min = float(bench.model.truth()["nominal_ohm"].min())
    with Lab(station_for(bench)) as lab:
        assert lab.min_element_resistance_ohm == pytest.approx(
            nominal_min * (1 - cfg.tolerance), rel=1e-5
        )
        assert "nominal_ohm" in lab.describe()["min_element_resistance_from"]


def test_identity_mismatch_names_the_address_and_what_answered(
    bench: SimulatedBench, state_at_disconnect: list[BenchState]
) -> None:
    station = station_for(bench, smu={"driver": "keysight_b2900"})
    with pytest.raises(InstrumentIdentityError) as exc:
        Lab(station).open()
    message = str(exc.value)
    assert bench.smu_resource in message
    assert "KEITHLEY INSTRUMENTS,MODEL 2450" in message
    assert "test-station.toml" in message and "keysight_b2900" in message
    assert bench.wait_until_idle()


def test_a_board_address_given_as_the_smu_is_refused(bench: SimulatedBench) -> None:
    board_as_visa = f"TCPIP0::127.0.0.1::{bench.board_port}::SOCKET"
    station = station_for(bench, smu={"address": board_as_visa})
    with pytest.raises(InstrumentIdentityError, match="LABRSS,XBAR-8x8x8"):
        Lab(station).open()
    assert second_look(bench)[0] == "1"


def test_an_smu_given_as_the_board_is_refused(
    bench: SimulatedBench, state_at_disconnect: list[BenchState]
) -> None:
    with SimulatedBench("small", seed=8) as other:
        smu_as_board = f"socket://127.0.0.1:{other.smu_port}"
        station = station_for(bench, board={"address": smu_as_board, "retries": 0})
        with pytest.raises(InstrumentIdentityError) as exc:
            Lab(station).open()
    message = str(exc.value)
    assert "KEITHLEY" in message and smu_as_board in message and "[board] address" in message
    # The SMU that had been opened was shut down before Lab let go of it.
    assert len(state_at_disconnect) == 1 and not state_at_disconnect[0].smu_output_on


def test_a_lab_that_is_not_open_says_so() -> None:
    lab = Lab()
    with pytest.raises(LabError, match="not open"):
        lab.measure_branch(0, 0, 0)


# ---------------------------------------------------------------------- embedded simulator


def test_no_addresses_means_the_embedded_simulator() -> None:
    station = parse_station({"simulator": {"board": "small", "seed": 9}})
    with Lab(station) as lab:
        assert lab.simulated and lab.simulator is not None
        assert (lab.geometry.rows, lab.geometry.cols, lab.geometry.branches) == (8, 8, 8)
        assert lab.identities["board"].startswith("LABRSS,XBAR-8x8x8,SIM-9,")
        assert "MODEL 2450" in lab.identities["smu"]
        assert lab.measure_branch(0, 0, 0).resistance_ohm > 0
        bench = lab.simulator
    assert lab.simulator is None
    with pytest.raises(RuntimeError, match="not started"):
        _ = bench.smu_resource


def test_a_mismatching_embedded_smu_fails_and_stops_the_simulator() -> None:
    station = parse_station(
        {"smu": {"driver": "keysight_b2900"}, "simulator": {"board": "small", "smu_model": "2450"}}
    )
    lab = Lab(station)
    with pytest.raises(InstrumentIdentityError, match="<station> says"):
        lab.open()
    assert lab.simulator is None


def test_a_board_of_another_geometry_than_the_stations_is_refused() -> None:
    """``[board] geometry`` pins the board: another one at the address is not used."""
    station = parse_station({"board": {"geometry": "16x16x8"}, "simulator": {"board": "small"}})
    lab = Lab(station)
    with pytest.raises(
        InstrumentIdentityError, match=r"is 8x8x8 but <station> says \[board\] geometry = '16x16x8'"
    ):
        lab.open()
    assert lab.simulator is None  # everything opened was closed again
    pinned = parse_station({"board": {"geometry": "8x8x8"}, "simulator": {"board": "small"}})
    with Lab(pinned) as lab:
        assert (lab.geometry.rows, lab.geometry.cols, lab.geometry.branches) == (8, 8, 8)


def test_the_smu_is_opened_with_the_stations_visa_library(bench: SimulatedBench) -> None:
    """``[smu] visa_library`` reaches pyvisa: a library that does not load is named."""
    station = parse_station(
        {
            "smu": {"address": bench.smu_resource, "visa_library": "/nonexistent/libvisa.so"},
            "board": {"address": bench.board_url},
        }
    )
    with pytest.raises(InstrumentError, match=r"/nonexistent/libvisa\.so"):
        Lab(station).open()


def test_a_bad_simulator_board_names_the_station_key() -> None:
    from labrss.station import StationError

    station = parse_station({"simulator": {"board": "no-such-preset"}}, source="s.toml")
    with pytest.raises(StationError, match=r"s\.toml: \[simulator\] board = 'no-such-preset'"):
        Lab(station).open()


def test_a_board_that_disconnects_mid_run_raises_and_the_smu_is_left_safe(
    bench: SimulatedBench,
) -> None:
    from drivers.errors import BoardError

    station = station_for(bench, board={"timeout_s": 0.5, "retries": 1})
    with pytest.raises(BoardError) as exc, Lab(station) as lab:
        lab.measure_branch(1, 1, 1)
        bench._board_server.close()  # the board's link drops (it goes safe by itself)
        lab.measure_branch(1, 1, 2)
    assert exc.value.command is not None and exc.value.command.upper().startswith("SW:CELL")
    assert "LABRSS" in exc.value.instrument or "socket://" in exc.value.instrument
    state = bench_state(bench)
    assert not state.smu_output_on and state.board_safe


def test_a_bench_that_cannot_be_confirmed_safe_is_reported_on_a_normal_exit(
    bench: SimulatedBench, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drivers.errors import InstrumentTimeoutError
    from labrss.lab import BenchNotSafeError

    def silent(command: str | None = None) -> None:
        raise InstrumentTimeoutError("no reply within 5 s", instrument="2450", command=":SYST:ERR?")

    expected = r"check by hand.*SMU shutdown: 2450: no reply"
    with pytest.raises(BenchNotSafeError, match=expected), Lab(station_for(bench)) as lab:
        monkeypatch.setattr(lab.smu, "check_errors", silent)
    assert bench.wait_until_idle()  # the instruments were closed all the same
    # With an exception already on its way, that exception is the one that propagates.
    with pytest.raises(ZeroDivisionError), Lab(station_for(bench)) as lab:
        monkeypatch.setattr(lab.smu, "check_errors", silent)
        _ = 1 / 0
