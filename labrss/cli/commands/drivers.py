"""`labrss drivers`: every installed board and SMU driver, with its package and capabilities.

Drivers are plug-ins (entry point groups ``labrss.boards`` and ``labrss.smus``,
docs/drivers.md); labrss's own are registered the same way. A plug-in that cannot be
loaded is listed with the reason, and the exit status is then 1.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from drivers.board import Capability, format_capabilities
from drivers.plugins import (
    BoardDriver,
    InstalledDriver,
    PluginError,
    SMUDriver,
    board_drivers,
    smu_drivers,
    thermal_drivers,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "drivers",
        help="list the installed board and SMU drivers (plug-ins included)",
        description=(
            "List every installed driver: its kind, name (what a station file's "
            "driver = NAME gives), package and version, capabilities, how the embedded "
            "simulator serves it and how discovery recognises its instrument. Exit "
            "status 1 when a plug-in cannot be loaded (the reason is listed)."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def _describe(entry: InstalledDriver[Any], kind: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "kind": kind,
        "name": entry.name,
        "package": entry.package,
        "version": entry.version,
        "entry_point": entry.value,
    }
    try:
        driver = entry.load()
    except PluginError as exc:
        row["error"] = str(exc)
        return row
    row["description"] = driver.description
    row["simulator"] = driver.simulator
    rec = driver.recognition
    row["recognition"] = {
        "query": rec.query,
        "pattern": rec.pattern,
        "function": rec.match is not None,
        "transports": list(rec.transports),
        "usb_ids": [f"{vid:04X}:{pid:04X}" for vid, pid in rec.usb_ids],
    }
    if isinstance(driver, BoardDriver):
        row["capabilities"] = [c.value for c in driver.capabilities]
        row["options"] = dict(driver.options)
    elif isinstance(driver, SMUDriver):
        row["capabilities"] = list(driver.capabilities)
        row["channels"] = driver.channels
    return row


def collect() -> list[dict[str, Any]]:
    """Every installed driver as a JSON-ready dict (boards first, then SMUs, by name)."""
    rows = [_describe(e, "board") for e in board_drivers().values()]
    rows += [_describe(e, "smu") for e in smu_drivers().values()]
    rows += [_describe(e, "thermal") for e in thermal_drivers().values()]
    return rows


def _capabilities_text(row: dict[str, Any]) -> str:
    if row["kind"] == "board":
        return format_capabilities(Capability(c) for c in row["capabilities"])
    return ", ".join(row.get("capabilities", ["set point, ramp, reading, heater"])) or "-"


def run(args: argparse.Namespace) -> int:
    rows = collect()
    broken = [r for r in rows if "error" in r]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 1 if broken else 0
    groups = {"board": "boards", "smu": "smus", "thermal": "thermal"}
    for kind, title in (
        ("board", "Board drivers"),
        ("smu", "SMU drivers"),
        ("thermal", "Temperature controller drivers"),
    ):
        print(f"{title} (entry point group labrss.{groups[kind]}):")
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            print("  none installed")
        for r in mine:
            print(f"  {r['name']:<16} {r['package']} {r['version']}  [{r['entry_point']}]")
            if "error" in r:
                print(f"      BROKEN: {r['error']}")
                continue
            print(f"      {r['description']}")
            print(f"      capabilities: {_capabilities_text(r)}")
            sim = r["simulator"] or "none (hardware only)"
            print(f"      simulator: {sim}")
            rec = r["recognition"]
            how = rec["pattern"] or ("a function" if rec["function"] else "-")
            usb = f"; USB {', '.join(rec['usb_ids'])}" if rec["usb_ids"] else ""
            print(
                f"      recognised by: {rec['query']} matching {how} "
                f"({'/'.join(rec['transports'])}{usb})"
            )
    if broken:
        print(f"{len(broken)} driver(s) cannot be loaded (see BROKEN above)")
        return 1
    return 0
