"""A station file written from what discovery found (``labrss discover --write FILE``).

`station_toml` turns a `drivers.discovery.DiscoveryReport` into a station file that
`labrss.station.load_station` accepts as it is: the first recognised SMU and board (the
others, and every instrument that was not recognised, named in comments), the pyvisa
backend when it is not pyvisa-py, and the limits written out with their defaults so that
they are seen and reviewed. An instrument that was not found keeps ``address = "sim"``
(the embedded simulator stands in) with a comment saying so. Addresses found on the
embedded simulator (``labrss discover --sim``) are written as ``"sim"``: its ports change
at every start.

A LAN instrument answering on several resources is written with the raw socket (the
drivers' fastest link) and its other resources as comments.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Final

from drivers.discovery import DiscoveryReport, Finding
from drivers.plugins import PluginError, find_board_driver, find_smu_driver
from drivers.thermal import ThermalLimits
from labrss.station.config import (
    DEFAULT_VISA_LIBRARY,
    MeasurementDefaults,
    StationLimits,
)

SIM_ORIGIN: Final = "embedded simulator"
"""The origin of candidates that are the embedded simulator's (written as ``"sim"``)."""

GEOMETRY_HINT: Final = (
    '# geometry = "16x16x8"  # ROWSxCOLSxBRANCHES: labrss then refuses another board'
)
_PREFERENCE: Final = ("::SOCKET", "::INST", "::HISLIP", "USB", "GPIB")


def _rank(finding: Finding) -> int:
    upper = finding.address.upper()
    for i, marker in enumerate(_PREFERENCE):
        if marker in upper:
            return i
    return len(_PREFERENCE)


def _instruments(findings: Sequence[Finding]) -> list[list[Finding]]:
    """Recognised findings grouped by instrument (driver and identify reply), best first."""
    groups: dict[tuple[str | None, str | None], list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.driver, f.reply), []).append(f)
    return [sorted(g, key=_rank) for g in groups.values()]


def _toml(value: str) -> str:
    return json.dumps(value)  # a TOML basic string is a JSON string for these values


def _address(finding: Finding) -> str:
    return "sim" if finding.origin == SIM_ORIGIN else finding.address


def _comment_lines(findings: Sequence[Finding]) -> list[str]:
    lines = []
    for f in findings:
        what = f.reply if f.status == "recognised" else f.reason
        where = f" ({SIM_ORIGIN})" if f.origin == SIM_ORIGIN else ""
        lines.append(f"#   {f.status:<12} {f.address}{where}: {what}")
    return lines


def _chosen_first(groups: list[list[Finding]], chosen: Finding | None) -> list[list[Finding]]:
    """``groups`` with the chosen finding's instrument first, the finding first in it."""
    if chosen is None:
        return groups
    for i, group in enumerate(groups):
        if chosen in group:
            first = [chosen, *(f for f in group if f != chosen)]
            return [first, *groups[:i], *groups[i + 1 :]]
    return groups


def station_toml(
    report: DiscoveryReport,
    *,
    smu: Finding | None = None,
    board: Finding | None = None,
    when: dt.datetime | None = None,
) -> str:
    """The station file (TOML text) for ``report`` (see the module docstring).

    ``smu`` and ``board`` choose which recognised instruments the file uses (by default the
    first of each; the GUI lets the user pick).
    """
    stamp = (when or dt.datetime.now(tz=dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    smus = _chosen_first(_instruments(report.recognised("smu")), smu)
    boards = _chosen_first(_instruments(report.recognised("board")), board)
    others = [f for f in report.findings if f.status != "recognised"]
    out = [
        f"# Station file written by `labrss discover` on {stamp} (VISA library "
        f"{report.visa_library}).",
        "# Check it with `labrss station check FILE`, then `labrss selftest --station FILE`;",
        "# docs/station.md explains every key, docs/hardware.md the whole procedure.",
        "#",
        "# Found:",
    ]
    stages = _instruments(report.recognised("thermal"))
    found = [f for group in smus + boards + stages for f in group]
    out += _comment_lines(found) or ["#   no instrument recognised"]
    if others:
        out += ["# Not recognised, silent or unreachable:", *_comment_lines(others)]
    missing = [kind for kind, groups in (("SMU", smus), ("board", boards)) if not groups]
    for kind in missing:
        out.append(
            f'# Not found: a {kind}. Its address stays "sim" (the embedded simulator stands '
            "in) until you give the real one."
        )
    out.append("")

    out.append("[smu]")
    if smus:
        best = smus[0][0]
        out += [f"driver = {_toml(best.driver or '')}", f"address = {_toml(_address(best))}"]
        if report.visa_library != DEFAULT_VISA_LIBRARY and best.origin != SIM_ORIGIN:
            out.append(f"visa_library = {_toml(report.visa_library)}")
        out += _also(smus[0])
        out += _other_instruments(smus[1:])
        out += _channel_hint(best.driver)
    else:
        out += ['address = "sim"  # not found: give the SMU\'s VISA resource']
    out.append("")

    out.append("[board]")
    if boards:
        best = boards[0][0]
        out += [f"driver = {_toml(best.driver or '')}", f"address = {_toml(_address(best))}"]
        out += _also(boards[0])
        out += _other_instruments(boards[1:])
        out.append(GEOMETRY_HINT)
        out += _board_options_hint(best.driver, report)
    else:
        out += ['address = "sim"  # not found: give the board\'s port (COM3, /dev/ttyACM0, ...)']
        out.append(GEOMETRY_HINT)
    out.append("")
    if stages:
        best = stages[0][0]
        th = ThermalLimits()
        out += [
            "[thermal]  # a temperature controller was found (docs/temperature.md): review the",
            "           # limits for your stage before using it",
            f"driver = {_toml(best.driver or '')}",
            f"address = {_toml(_address(best))}",
            *_also(stages[0]),
            *_other_instruments(stages[1:]),
            f"min_C = {th.min_C!r}",
            f"max_C = {th.max_C!r}",
            f"max_ramp_K_per_min = {th.max_ramp_K_per_min!r}",
            f"safe_C = {th.safe_C!r}",
            "",
        ]
    limits, meas = StationLimits(), MeasurementDefaults()
    out += [
        "[limits]  # the defaults (docs/station.md): review them for your bench before measuring",
        f"max_source_voltage_V = {limits.max_source_voltage_V!r}",
        f"compliance_current_A = {limits.compliance_current_A!r}",
        f"max_power_per_element_W = {limits.max_power_per_element_W!r}",
        f"max_dac_voltage_V = {limits.max_dac_voltage_V!r}",
        "# min_element_resistance_ohm = 900.0  # else from the board's bill of materials",
        f"max_pulse_voltage_V = {limits.max_pulse_voltage_V!r}",
        "",
        "[measurement]",
        f"read_voltage_V = {meas.read_voltage_V!r}",
        f"nplc = {meas.nplc!r}",
        f"line_frequency_Hz = {meas.line_frequency_Hz!r}  # 60.0 in the Americas",
        "",
    ]
    return "\n".join(out)


def _also(group: Sequence[Finding]) -> list[str]:
    """The instrument's other resources, as comments (none for the simulator's)."""
    return [f"# also reachable as {f.address}" for f in group[1:] if f.origin != SIM_ORIGIN]


def _other_instruments(groups: Sequence[Sequence[Finding]]) -> list[str]:
    return [
        f"# another one: driver = {_toml(g[0].driver or '')}, address = {_toml(_address(g[0]))}"
        for g in groups
    ]


def _channel_hint(driver: str | None) -> list[str]:
    try:
        channels = find_smu_driver(driver or "").channels
    except (LookupError, PluginError):
        return []
    return ["# channel = 2  # a two-channel model's second channel"] if channels > 1 else []


def _board_options_hint(driver: str | None, report: DiscoveryReport) -> list[str]:
    try:
        description = find_board_driver(driver or "")
    except (LookupError, PluginError):
        return []
    lines = []
    if description.options:
        lines.append("[board.options]  # the driver's own options (`labrss drivers`)")
        for key, text in sorted(description.options.items()):
            if key == "visa_library" and report.visa_library != DEFAULT_VISA_LIBRARY:
                lines.append(f"visa_library = {_toml(report.visa_library)}")
            else:
                lines.append(f"# {key} = ...  # {text}")
    return lines
