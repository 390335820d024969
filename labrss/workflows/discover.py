"""Find the bench's instruments and write a station file for them: what ``labrss
discover`` and the GUI's Connect tab call.

    report = run_discovery(DiscoveryOptions(hosts=("192.168.1.50",)))
    print(report.table())
    write_station_file(report, Path("lab.toml"))

Discovery itself (`drivers.discovery.discover`) sends nothing but each installed driver's
read-only identify query. ``sim=True`` also starts the embedded simulated bench for the
occasion (its SMU on both LAN interfaces, raw socket and VXI-11, and its board) and
identifies it like any instrument, so a newcomer sees what discovery shows before any
hardware is connected; a station file written from it names those instruments ``"sim"``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from drivers.discovery import Candidate, DiscoveryReport, Finding, discover
from labrss.station.config import DEFAULT_VISA_LIBRARY, load_station
from labrss.station.discovered import SIM_ORIGIN, station_toml

__all__ = ["DiscoveryOptions", "run_discovery", "write_station_file"]


@dataclass(frozen=True)
class DiscoveryOptions:
    """What to look at (see `drivers.discovery.discover` for each field).

    Attributes:
        visa_library: the pyvisa backend; None: the station's ``[smu] visa_library`` when
            ``station`` is given, else ``"@py"``.
        station: a station file whose VISA library to use.
        sim: also identify the embedded simulator's instruments (started for the occasion).
    """

    visa_library: str | None = None
    station: Path | None = None
    resources: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    list_system: bool = True
    lan_broadcast: bool | None = None
    timeout_s: float = 1.0
    sim: bool = False


def resolve_visa_library(options: DiscoveryOptions) -> str:
    """The backend to list with: the option, the station's, or pyvisa-py.

    Raises `labrss.station.StationError` for a station file that cannot be used.
    """
    if options.visa_library is not None:
        return options.visa_library
    if options.station is not None:
        return load_station(options.station).smu.visa_library
    return DEFAULT_VISA_LIBRARY


def run_discovery(options: DiscoveryOptions) -> DiscoveryReport:
    """Discover (see the module docstring); the simulator, if started, is stopped after."""
    library = resolve_visa_library(options)
    kwargs = {
        "visa_library": library,
        "resources": options.resources,
        "ports": options.ports,
        "hosts": options.hosts,
        "list_visa_resources": options.list_system,
        "list_serial_ports": options.list_system,
        "lan_broadcast": options.lan_broadcast,
        "timeout_s": options.timeout_s,
    }
    if not options.sim:
        return discover(**kwargs)  # type: ignore[arg-type]
    from simulator.bench import SimulatedBench

    with SimulatedBench("small", 0, vxi11=True) as bench:
        sim = [
            Candidate(bench.smu_resource, "visa", SIM_ORIGIN, "simulated Keithley 2450"),
            Candidate(bench.smu_instr_resource, "visa", SIM_ORIGIN, "simulated 2450, VXI-11"),
            Candidate(bench.board_url, "serial", SIM_ORIGIN, "simulated crossbar board"),
        ]
        report = discover(**{**kwargs, "candidates": sim})  # type: ignore[arg-type]
    return report


def write_station_file(
    report: DiscoveryReport,
    path: Path,
    *,
    overwrite: bool = False,
    smu: Finding | None = None,
    board: Finding | None = None,
) -> Path:
    """Write the station file for ``report`` at ``path`` (FileExistsError unless
    ``overwrite``), with the chosen ``smu`` and ``board`` (default: the first recognised);
    returns the path. The file is checked by loading it back."""
    text = station_toml(report, smu=smu, board=board)
    path = path.expanduser()
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists: choose another name, or --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    load_station(path)  # what was written must load as it is
    return path
