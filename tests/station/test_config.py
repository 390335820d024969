"""The station file: parsing, defaults, every validation error, ``address = "sim"``."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labrss.station import (
    SIM_ADDRESS,
    Station,
    StationError,
    default_station,
    load_station,
    parse_station,
)

HARDWARE = """
[smu]
driver = "keysight_b2900"
address = "TCPIP0::192.168.1.50::5025::SOCKET"
channel = 2
timeout_s = 7.5
visa_library = "@ivi"
[board]
driver = "crossbar"
address = "/dev/ttyACM0"
timeout_s = 1.5
retries = 5
geometry = "16 x 32x8"
[limits]
max_source_voltage_V = 0.5
compliance_current_A = 0.002
max_power_per_element_W = 0.125
max_dac_voltage_V = 0.25
min_element_resistance_ohm = 470
[measurement]
read_voltage_V = -0.2
nplc = 2
current_range_A = 1e-4
four_wire = true
line_frequency_Hz = 60
[store]
path = "data/lab.db"
[simulator]
board = "boards/my_board.toml"
seed = 7
smu_model = "B2901A"
realtime_factor = 2.5
"""


def write(tmp_path: Path, text: str, name: str = "station.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_key_is_read_with_its_type(tmp_path: Path) -> None:
    path = write(tmp_path, HARDWARE)
    station = load_station(path)
    assert station.source == path
    assert station.smu.driver == "keysight_b2900"
    assert station.smu.address == "TCPIP0::192.168.1.50::5025::SOCKET"
    assert station.smu.channel == 2
    assert station.smu.timeout_s == 7.5
    assert station.smu.visa_library == "@ivi"
    assert not station.smu.simulated
    assert station.board.geometry == (16, 32, 8)
    assert station.board.address == "/dev/ttyACM0"
    assert station.board.timeout_s == 1.5
    assert station.board.retries == 5
    assert not station.uses_simulator
    assert station.limits.max_source_voltage_V == 0.5
    assert station.limits.compliance_current_A == 0.002
    assert station.limits.max_power_per_element_W == 0.125
    assert station.limits.max_dac_voltage_V == 0.25
    assert station.limits.min_element_resistance_ohm == 470.0
    assert isinstance(station.limits.min_element_resistance_ohm, float)
    assert station.measurement.read_voltage_V == -0.2
    assert station.measurement.nplc == 2.0
    assert station.measurement.current_range_A == 1e-4
    assert station.measurement.four_wire is True
    assert station.measurement.line_frequency_Hz == 60.0
    assert station.measurement.aperture_s == pytest.approx(2 / 60)
    # Relative paths are anchored at the station file's directory.
    assert station.store.path == tmp_path / "data" / "lab.db"
    assert station.simulator.board == str(tmp_path / "boards" / "my_board.toml")
    assert station.simulator.seed == 7
    assert station.simulator.smu_model == "B2901A"
    assert station.simulator.realtime_factor == 2.5


def test_an_empty_file_is_the_simulator_with_the_documented_defaults(tmp_path: Path) -> None:
    station = load_station(write(tmp_path, ""))
    default = default_station()
    assert station == Station(source=station.source)
    assert default.source is None
    for s in (station, default):
        assert s.smu.address == SIM_ADDRESS and s.board.address == SIM_ADDRESS
        assert s.uses_simulator
        assert s.smu.driver == "keithley2450" and s.smu.channel == 1 and s.smu.timeout_s == 5.0
        assert s.smu.visa_library == "@py" and s.board.geometry is None
        assert s.board.driver == "crossbar" and s.board.timeout_s == 2.0 and s.board.retries == 3
        assert s.limits.max_source_voltage_V == 1.0
        assert s.limits.compliance_current_A == 0.01
        assert s.limits.max_power_per_element_W == 0.0625
        assert s.limits.max_dac_voltage_V == 0.5
        assert s.limits.min_element_resistance_ohm is None
        assert s.measurement.read_voltage_V == 0.1 and s.measurement.nplc == 1.0
        assert s.measurement.current_range_A is None and s.measurement.four_wire is False
        assert s.store.path is None
        assert s.simulator.board == "default" and s.simulator.seed == 0
        assert s.simulator.smu_model == "2450" and s.simulator.realtime_factor == 0.0
    assert default.name == "the default station"


def test_sim_address_per_instrument(tmp_path: Path) -> None:
    station = load_station(
        write(tmp_path, '[smu]\naddress = "sim"\n[board]\naddress = "socket://10.0.0.2:4000"\n')
    )
    assert station.smu.simulated
    assert not station.board.simulated
    assert station.uses_simulator


def test_the_simulated_smu_model_follows_the_driver_unless_given() -> None:
    assert parse_station({"smu": {"driver": "keysight_b2900"}}).simulator.smu_model == "B2902A"
    assert parse_station({"smu": {"driver": "keithley2450"}}).simulator.smu_model == "2450"
    # Given explicitly, a mismatch is kept: Lab's identity check then reports it.
    mismatch = parse_station(
        {"smu": {"driver": "keysight_b2900"}, "simulator": {"smu_model": "2450"}}
    )
    assert mismatch.simulator.smu_model == "2450"


def test_home_is_expanded_in_the_store_path(tmp_path: Path) -> None:
    station = load_station(write(tmp_path, '[store]\npath = "~/x/lab.db"\n'))
    assert station.store.path == Path.home() / "x" / "lab.db"


def test_the_shipped_examples_load() -> None:
    root = Path(__file__).resolve().parents[2] / "docs" / "examples"
    hardware = load_station(root / "station-hardware.toml")
    assert not hardware.uses_simulator
    assert hardware.smu.address.startswith("TCPIP0::")
    sim = load_station(root / "station-sim.toml")
    assert sim.smu.simulated and sim.board.simulated
    ref = load_station(root / "station-reference.toml").reference
    assert ref is not None and ref.cell == (15, 15) and ref.branch == 0
    assert ref.certificate_date == "2025-01-15" and ref.standard_uncertainty_ohm == 0.25
    assert type(ref).from_json(ref.to_json()) == ref


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(StationError, match=r"nope\.toml: station file not found"):
        load_station(path)


def test_bad_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[smu]\ndriver = \n")
    with pytest.raises(StationError, match=r"station\.toml: not valid TOML: .*line 2"):
        load_station(path)


def _ref(**keys: str | None) -> str:
    """A [reference] section, the given keys replaced (None: left out)."""
    values: dict[str, str | None] = {
        "cell": "[15, 15]",
        "branch": "0",
        "resistance_ohm": "1e4",
        "expanded_uncertainty_ohm": "0.5",
        "certificate_date": "2025-01-15",
        **keys,
    }
    return "[reference]\n" + "".join(f"{k} = {v}\n" for k, v in values.items() if v is not None)


# (TOML body, key named in the message, the message fragment) for every validation rule.
BAD = [
    ('[smuu]\ndriver = "keithley2450"', "smuu", "unknown section"),
    ("smu = 3", "smu", "must be a table"),
    (
        '[smu]\ndrivr = "keithley2450"',
        "[smu] drivr = 'keithley2450'",
        "unknown key; expected one of",
    ),
    (
        '[smu]\ndriver = "keithley2410"',
        "[smu] driver = 'keithley2410'",
        "no SMU driver named 'keithley2410' is installed (installed: keithley2400, keithley2450,",
    ),
    ("[smu]\ndriver = 2450", "[smu] driver = 2450", "must be a non-empty string"),
    ('[smu]\naddress = ""', "[smu] address = ''", "must be a non-empty string"),
    ("[smu]\nchannel = 9", "[smu] channel = 9", "must be in 1..8"),
    (
        '[smu]\ndriver = "keysight_b2900"\nchannel = 3',
        "[smu] channel = 3",
        "the keysight_b2900 driver's instruments have 2 channel(s)",
    ),
    ("[smu]\nchannel = 1.0", "[smu] channel = 1.0", "must be an integer"),
    ("[smu]\nchannel = 2", "[smu] channel = 2", "the keithley2450 driver's instruments have 1"),
    ("[smu]\ntimeout_s = 0", "[smu] timeout_s = 0", "must be > 0.0"),
    (
        '[smu]\nvisa_library = "@nivisa"',
        "[smu] visa_library = '@nivisa'",
        "no pyvisa backend of that name is installed (installed: @ivi, @py",
    ),
    ('[smu]\nvisa_library = ""', "[smu] visa_library = ''", "must be a non-empty string"),
    ('[board]\ngeometry = "16x16"', "[board] geometry = '16x16'", "expected ROWSxCOLSxBRANCHES"),
    ('[board]\ngeometry = "0x4x4"', "[board] geometry = '0x4x4'", "expected ROWSxCOLSxBRANCHES"),
    ('[smu]\ntimeout_s = "5"', "[smu] timeout_s = '5'", "must be a number"),
    (
        '[board]\ndriver = "other"',
        "[board] driver = 'other'",
        "no board driver named 'other' is installed (installed: crossbar",
    ),
    (
        "[board.options]\nlayout = 'x.toml'",
        "[board.options] layout = 'x.toml'",
        "the crossbar driver has no such option (its options: none)",
    ),
    (
        '[simulator]\nbench = "matrix"',
        "[simulator] bench = 'matrix'",
        "must be one of crossbar",
    ),
    ("[board]\nretries = -1", "[board] retries = -1", "must be in 0..100"),
    ("[board]\ntimeout_s = -2.0", "[board] timeout_s = -2.0", "must be > 0.0"),
    ("[limits]\nmax_source_voltage_V = 0", "[limits] max_source_voltage_V = 0", "must be > 0.0"),
    (
        "[limits]\nmax_source_voltage_V = 500",
        "[limits] max_source_voltage_V = 500",
        "must be <= 210.0",
    ),
    (
        "[limits]\nmax_source_voltage_V = true",
        "[limits] max_source_voltage_V = True",
        "must be a number",
    ),
    ("[limits]\ncompliance_current_A = 2", "[limits] compliance_current_A = 2", "must be <= 1.05"),
    (
        "[limits]\ncompliance_current_A = nan",
        "[limits] compliance_current_A = nan",
        "must be a finite number",
    ),
    (
        "[limits]\nmax_power_per_element_W = -1",
        "[limits] max_power_per_element_W = -1",
        "must be > 0.0",
    ),
    (
        "[limits]\nmax_dac_voltage_V = inf",
        "[limits] max_dac_voltage_V = inf",
        "must be a finite number",
    ),
    (
        "[limits]\nmin_element_resistance_ohm = 0",
        "[limits] min_element_resistance_ohm = 0",
        "must be > 0.0",
    ),
    ("[measurement]\nread_voltage_V = 0", "[measurement] read_voltage_V = 0.0", "must be non-zero"),
    (
        "[measurement]\nread_voltage_V = 1.5",
        "[measurement] read_voltage_V = 1.5",
        "exceeds [limits] max_source_voltage_V = 1.0",
    ),
    ("[measurement]\nnplc = 0.001", "[measurement] nplc = 0.001", "must be >= 0.01"),
    ("[measurement]\nnplc = 11", "[measurement] nplc = 11", "must be <= 10.0"),
    ("[measurement]\ncurrent_range_A = 0", "[measurement] current_range_A = 0", "must be > 0.0"),
    (
        '[measurement]\nfour_wire = "yes"',
        "[measurement] four_wire = 'yes'",
        "must be true or false",
    ),
    (
        "[measurement]\nline_frequency_Hz = 55",
        "[measurement] line_frequency_Hz = 55",
        "must be one of 50, 60",
    ),
    ("[store]\npath = 3", "[store] path = 3", "must be a non-empty string"),
    (
        '[simulator]\nsmu_model = "2410"',
        "[simulator] smu_model = '2410'",
        "must be one of 2450, B2901A, B2902A, 2400",
    ),
    ("[simulator]\nseed = -1", "[simulator] seed = -1", "must be in 0.."),
    ('[simulator]\nseed = "1"', "[simulator] seed = '1'", "must be an integer"),
    ("[simulator]\nrealtime_factor = -1", "[simulator] realtime_factor = -1", "must be >= 0.0"),
    ('[simulator]\nboard = ""', "[simulator] board = ''", "must be a non-empty string"),
    (_ref(location="'smu'"), "[reference] location = 'smu'", "must be one of branch"),
    (_ref(resistance_ohm_x="3"), "[reference] resistance_ohm_x = 3", "unknown key; expected"),
    (
        _ref(expanded_uncertainty_ohm=None),
        "[reference] expanded_uncertainty_ohm",
        "is required",
    ),
    (_ref(cell="[15]"), "[reference] cell = [15]", "must be [row, col], two integers >= 0"),
    (
        _ref(expanded_uncertainty_ohm="2e4"),
        "[reference] expanded_uncertainty_ohm = 20000.0",
        "must be smaller than resistance_ohm = 10000.0",
    ),
    (
        _ref(certificate_date="'last year'"),
        "[reference] certificate_date = 'last year'",
        "must be a date, YYYY-MM-DD",
    ),
]


@pytest.mark.parametrize(("body", "key", "reason"), BAD)
def test_every_validation_error_names_file_key_and_value(
    tmp_path: Path, body: str, key: str, reason: str
) -> None:
    path = write(tmp_path, body + "\n")
    with pytest.raises(StationError) as exc:
        load_station(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: {key}"), message
    assert reason in message, message


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(value=st.one_of(finite, st.integers(-(10**6), 10**6)))
def test_nplc_is_accepted_exactly_within_the_instrument_range(value: float) -> None:
    ok = 0.01 <= value <= 10.0
    if ok:
        station = parse_station({"measurement": {"nplc": value}}, source="s.toml")
        assert station.measurement.nplc == float(value)
    else:
        with pytest.raises(StationError, match=r"s\.toml: \[measurement\] nplc = "):
            parse_station({"measurement": {"nplc": value}}, source="s.toml")


@given(vmax=st.floats(0.001, 210.0), read=finite)
def test_read_voltage_must_be_nonzero_and_within_the_source_limit(vmax: float, read: float) -> None:
    data = {"limits": {"max_source_voltage_V": vmax}, "measurement": {"read_voltage_V": read}}
    if read != 0.0 and abs(read) <= vmax:
        assert parse_station(data).measurement.read_voltage_V == read
    else:
        with pytest.raises(StationError, match=r"\[measurement\] read_voltage_V"):
            parse_station(data)


@given(
    key=st.sampled_from(
        [
            "compliance_current_A",
            "max_power_per_element_W",
            "max_dac_voltage_V",
            "min_element_resistance_ohm",
        ]
    ),
    value=st.one_of(
        finite, st.just(math.inf), st.just(math.nan), st.booleans(), st.text(max_size=3)
    ),
)
def test_positive_limits_accept_positive_finite_numbers_only(key: str, value: object) -> None:
    data = {"limits": {key: value}}
    valid = (
        isinstance(value, float)
        and math.isfinite(value)
        and value > 0
        and not (key == "compliance_current_A" and value > 1.05)
    )
    if valid:
        assert getattr(parse_station(data).limits, key) == value
    else:
        with pytest.raises(StationError, match=rf"\[limits\] {key} = "):
            parse_station(data)


def test_visa_library_names_a_backend_or_a_library_file(tmp_path: Path) -> None:
    """``@ni`` is pyvisa's old name of ``@ivi``; a path is kept as given (checked on open)."""
    for given_, kept in (
        ("@ni", "@ivi"),
        ("@PY", "@py"),
        ("C:/Windows/System32/visa64.dll", "C:/Windows/System32/visa64.dll"),
        ("/usr/lib/x86_64-linux-gnu/libvisa.so.0", "/usr/lib/x86_64-linux-gnu/libvisa.so.0"),
    ):
        station = load_station(write(tmp_path, f'[smu]\nvisa_library = "{given_}"\n'))
        assert station.smu.visa_library == kept


def test_the_switch_matrix_bench_and_its_driver(tmp_path: Path) -> None:
    only_bench = parse_station({"simulator": {"bench": "switch-matrix"}})
    assert only_bench.board.driver == "keysight34980a"
    assert (only_bench.simulator.bench, only_bench.simulator.board) == (
        "switch-matrix",
        "switch-matrix",
    )
    only_driver = parse_station({"board": {"driver": "keysight34980a"}})
    assert only_driver.simulator.bench == "switch-matrix"
    file = tmp_path / "lab.toml"
    file.write_text(
        '[board]\ndriver = "keysight34980a"\naddress = "TCPIP0::10.0.0.7::5025::SOCKET"\n'
        '[board.options]\nlayout = "array.toml"\n'
    )
    st = load_station(file)
    assert st.board.options == {"layout": str(tmp_path / "array.toml")}
    with pytest.raises(StationError, match=r"needs bench = 'crossbar'"):
        parse_station({"board": {"driver": "crossbar"}, "simulator": {"bench": "switch-matrix"}})
    with pytest.raises(StationError, match=r"its options: layout, visa_library"):
        parse_station({"board": {"driver": "keysight34980a", "options": {"layot": "x"}}})
    with pytest.raises(StationError, match=r"\[board.options\] layout = 3: must be a file path"):
        parse_station({"board": {"driver": "keysight34980a", "options": {"layout": 3}}})
