"""Board configuration: presets, TOML files and the errors for bad ones."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.board_config import (
    AdcConfig,
    BoardConfig,
    BoardConfigError,
    DacConfig,
    ElementConfig,
    EnvironmentConfig,
    FaultConfig,
    Geometry,
    MemristorConfig,
    PulseConfig,
    SwitchConfig,
    WiringConfig,
    load_board_config,
)


@pytest.mark.parametrize(
    ("preset", "shape"),
    [
        ("small", (8, 8, 8)),
        ("default", (16, 16, 8)),
        ("large", (64, 64, 16)),
        ("memristor", (8, 8, 8)),
        ("mixed", (8, 8, 8)),
    ],
)
def test_presets_load_with_their_geometry(preset: str, shape: tuple[int, int, int]) -> None:
    cfg = load_board_config(preset)
    assert cfg.geometry.shape == shape
    assert cfg.name == preset
    assert cfg.switch.r_on_ohm == 9.5  # ADG1414 typical
    assert cfg.adc.range_A == pytest.approx(cfg.adc.full_scale_V / cfg.adc.tia_gain_V_per_A)


def test_default_dac_lsb_and_adc_range() -> None:
    cfg = load_board_config("default")
    assert cfg.dac.lsb_V == pytest.approx(1.0 / 2**15)
    assert cfg.adc.range_A == pytest.approx(5e-3)
    assert cfg.adc.lsb_A == pytest.approx(5e-3 / 2**15)


def test_toml_file_based_on_a_preset(tmp_path: Path) -> None:
    path = tmp_path / "myboard.toml"
    path.write_text(
        'base = "small"\n[geometry]\nrows = 4\n[element]\nnominal_scheme = "list"\n'
        "nominal_list_ohm = [1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000]\n"
        "[wiring]\nwire_segment_ohm = 0\n"
    )
    cfg = load_board_config(str(path))
    assert cfg.geometry == Geometry(4, 8, 8)
    assert cfg.name == "myboard"
    assert cfg.element.nominal_list_ohm[-1] == 128000.0
    assert cfg.wiring.wire_segment_ohm == 0.0
    assert cfg.element.tolerance == load_board_config("small").element.tolerance


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[geometry]\nrows = 4\ncols = 4\nbranches = 4\nbogus = 1\n", "geometry.bogus"),
        ("[geometry]\nrows = 4\ncols = 4\nbranches = 4\n[wires]\n", "unknown key 'wires'"),
        ("[geometry]\nrows = 4\ncols = 4\n", "branches"),
        ("[geometry]\nrows = 4.5\ncols = 4\nbranches = 4\n", "geometry.rows"),
        ("[geometry]\nrows = 0\ncols = 4\nbranches = 4\n", "geometry.rows"),
        ('base = "small"\n[element]\ntolerance = "5%"\n', "element.tolerance"),
        ('base = "small"\n[element]\ndistribution = "cauchy"\n', "element.distribution"),
        ('base = "small"\n[element]\nnominal_scheme = "list"\n', "nominal_list_ohm"),
        ('base = "small"\n[wiring]\nlead_ohm = -1\n', "wiring.lead_ohm"),
        ('base = "small"\n[faults]\nstuck_open_rate = 2\n', "faults.stuck_open_rate"),
        ('base = "huge"\n', "base"),
        ("[geometry\n", "invalid TOML"),
    ],
)
def test_bad_toml_names_file_and_key(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(BoardConfigError, match=match) as exc:
        load_board_config(path)
    assert "bad.toml" in str(exc.value)


def test_missing_file_and_unknown_preset() -> None:
    with pytest.raises(FileNotFoundError, match="nosuch"):
        load_board_config("nosuch")
    with pytest.raises(ValueError, match="neither a preset"):
        load_board_config("nosuch.toml")


def test_replace_updates_single_keys() -> None:
    cfg = load_board_config("small")
    new = cfg.replace(wiring={"lead_ohm": 0.0}, name="x")
    assert new.wiring.lead_ohm == 0.0
    assert new.wiring.routing_switch_ohm == cfg.wiring.routing_switch_ohm
    assert new.name == "x"
    with pytest.raises(BoardConfigError, match="nominal_list_ohm"):
        BoardConfig(Geometry(2, 2, 3), element=cfg.element.__class__(nominal_scheme="list"))


TOML_VALUES = st.one_of(
    st.integers(-10, 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.text(alphabet="abcdefgh_", max_size=8),
    st.lists(st.integers(1, 10**6), max_size=9),
)
KEYS = [
    (section, f.name)
    for section, cls in [
        ("geometry", Geometry),
        ("element", ElementConfig),
        ("switch", SwitchConfig),
        ("wiring", WiringConfig),
        ("dac", DacConfig),
        ("adc", AdcConfig),
        ("environment", EnvironmentConfig),
        ("faults", FaultConfig),
        ("memristor", MemristorConfig),
        ("pulse", PulseConfig),
    ]
    for f in dataclasses.fields(cls)
]


def _toml_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value) if "e" in repr(value) or "." in repr(value) else f"{value}.0"
    return str(value)


@given(
    st.lists(st.tuples(st.sampled_from(KEYS), TOML_VALUES), max_size=4, unique_by=lambda t: t[0])
)
def test_any_override_loads_or_names_the_bad_key(
    tmp_path_factory: pytest.TempPathFactory, overrides: list[tuple[tuple[str, str], object]]
) -> None:
    sections: dict[str, list[str]] = {}
    for (section, key), value in overrides:
        sections.setdefault(section, []).append(f"{key} = {_toml_literal(value)}")
    text = 'base = "small"\n' + "".join(
        f"[{s}]\n" + "\n".join(lines) + "\n" for s, lines in sections.items()
    )
    path = tmp_path_factory.mktemp("cfg") / "fuzz.toml"
    path.write_text(text)
    try:
        cfg = load_board_config(path)
    except BoardConfigError as exc:  # the only failure allowed, and it is specific
        message = str(exc)
        assert "fuzz.toml" in message
        assert any(f"{s}." in message or s in message for s in sections) or "branches" in message
    else:
        assert isinstance(cfg, BoardConfig)
