"""`labrss memristor`: program memristor devices and banks, and follow their drift.

    labrss memristor write-verify --device 0,1,2:40e-6 --device 0,1,3:25e-6 --tolerance 0.01
    labrss memristor rss --cell 0,3:150e-6 --tolerance 0.002
    labrss memristor rss --cell 0,3:150e-6 --cell 1,4:120e-6 --compare --tolerance 0.001
    labrss memristor drift --cell 0,0:150e-6 --times 60,3600,86400 --tolerance 0.01

Characterisation modules (devices: ``--cells ROWS,COLS`` in calibration's syntax and
``--branches`` ``*`` | ``0-3`` | ``0+5``, or ``--device R,C,K`` repeated):

    labrss memristor form --board memristor_unformed --max-voltage 3 --cells 0,0-3
    labrss memristor iv --cells 0,0 --branches 0-3 --set-max 1.8 --reset-max 1.5 --cycles 3
    labrss memristor retention --cells 0,0-1 --interval 10 --duration 2.6e6 --log
    labrss memristor endurance --device 0,0,0 --max-cycles 10000
    labrss memristor seek --device 0,1,2 --target 40e-6 --tolerance 0.01
    labrss memristor fit 12 13 14 --out my_devices.toml   # then: labrss sim --board it

With no ``--station`` the embedded simulator runs a memristor board (``--board``, default
``memristor``; ``mixed`` has memristors in columns 4-7). Every read and pulse is stored
(``--db``, default as for every command; ``--no-store`` for none). ``--json`` prints one
JSON object. Exit codes: 2 for bad input (arguments, station, a request beyond the
limits), 1 for an instrument failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from drivers.errors import InstrumentError, InstrumentLimitError
from labrss.cli.next_step import instrument_failure
from labrss.lab import Lab, LabError, LabInputError, SafetyLimitError
from labrss.memristor import WriteVerifySettings
from labrss.station import Station, StationError, load_station, parse_station
from labrss.store import Store, StoreError, resolve_db_path
from labrss.workflows.drift import DEFAULT_TIMES_S, DriftSettings, drift_study
from labrss.workflows.memristor_endurance import EnduranceSettings, endurance
from labrss.workflows.memristor_fit import board_parameters, board_toml, fit_runs
from labrss.workflows.memristor_form import FormSettings, form
from labrss.workflows.memristor_iv import IVSettings, iv_sweep
from labrss.workflows.memristor_module import Branch, select_devices
from labrss.workflows.memristor_retention import RetentionSettings, retention
from labrss.workflows.memristor_rss import (
    BankSettings,
    compare_methods,
    run_method,
)
from labrss.workflows.memristor_seek import seek
from labrss.workflows.write_verify import write_verify

EXIT_INSTRUMENT = 1
EXIT_BAD_INPUT = 2


class _BadInputError(Exception):
    """A command-line value that cannot be used (exit code 2)."""


def register(subparsers: Any) -> None:
    """Add the ``memristor`` sub-command and its three actions."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "memristor",
        help="program memristors: write-verify, RSS over banks, drift compensation",
        description=(
            "Program memristor devices with write-verify, program banks with RSS (coarse "
            "levels, measurement, subset choice), compare both, and follow drift with and "
            "without re-solving. With no --station, the embedded simulator's memristor board."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--station", metavar="FILE", help="station TOML file")
        p.add_argument(
            "--board",
            default="memristor",
            help="simulated board preset when no --station is given (default: memristor)",
        )
        p.add_argument("--seed", type=int, default=0, help="simulated board seed (default 0)")
        p.add_argument("--db", metavar="PATH", help="database file")
        p.add_argument("--no-store", action="store_true", help="store nothing")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.add_argument("--nplc", type=float, help="integration time (default: station's)")
        p.add_argument(
            "--max-voltage",
            type=float,
            metavar="V",
            help="embedded simulator only: raise [limits] max_source_voltage_V and "
            "max_pulse_voltage_V to V (forming and staircase I-V are writes through the SMU)",
        )

    wv = actions.add_parser("write-verify", help="write-verify devices to target conductances")
    wv.add_argument(
        "--device",
        action="append",
        required=True,
        metavar="R,C,K:TARGET_S",
        help="a device and its target conductance in S (repeatable)",
    )
    wv.add_argument("--tolerance", type=float, default=0.01, help="relative band (0.01)")
    wv.add_argument("--max-pulses", type=int, default=100, help="pulse budget per device")
    wv.add_argument("--reads", type=int, default=2, help="reads averaged per decision")
    common(wv)
    wv.set_defaults(func=run_write_verify)

    rss = actions.add_parser("rss", help="program banks by RSS (or compare with write-verify)")
    rss.add_argument(
        "--cell",
        action="append",
        required=True,
        metavar="R,C:TARGET_S",
        help="a cell and its target conductance in S (repeatable)",
    )
    rss.add_argument("--tolerance", type=float, default=0.002, help="cell band (0.002)")
    rss.add_argument(
        "--coarse-tolerance", type=float, default=0.3, help="band of the coarse levels (0.3)"
    )
    rss.add_argument("--settle", type=float, default=0.0, help="wait before measuring (s)")
    rss.add_argument(
        "--compare",
        action="store_true",
        help="also write-verify alone at the same tolerance, on a fresh same-seed bench",
    )
    common(rss)
    rss.set_defaults(func=run_rss)

    drift = actions.add_parser("drift", help="drift of RSS banks with and without re-solving")
    drift.add_argument("--cell", action="append", required=True, metavar="R,C:TARGET_S")
    drift.add_argument("--tolerance", type=float, default=0.01, help="band to stay in (0.01)")
    drift.add_argument(
        "--times",
        default=",".join(f"{t:g}" for t in DEFAULT_TIMES_S),
        help="checkpoints after programming, s, comma-separated",
    )
    drift.add_argument(
        "--settle", type=float, default=0.0, help="wait between programming and measuring (s)"
    )
    common(drift)
    drift.set_defaults(func=run_drift)

    def devices(p: argparse.ArgumentParser) -> None:
        p.add_argument("--cells", default="0,0", help="ROWS,COLS of the devices (0,0)")
        p.add_argument("--branches", default="*", help="branches: *, N, A-B, A+B (*)")
        p.add_argument("--device", action="append", metavar="R,C,K", help="one device (repeatable)")
        p.add_argument("--reads", type=int, default=1, help="readings averaged per read (1)")

    fm = actions.add_parser("form", help="forming ramps under a compliance; forming yield")
    devices(fm)
    fm.add_argument("--start", type=float, default=1.0, help="ramp start, V (1.0)")
    fm.add_argument("--stop", type=float, default=3.0, help="ramp end, V (3.0)")
    fm.add_argument("--step", type=float, default=0.05, help="ramp step, V (0.05)")
    fm.add_argument("--compliance", type=float, default=30e-6, help="current limit, A (30e-6)")
    common(fm)
    fm.set_defaults(func=run_form)

    iv = actions.add_parser("iv", help="pulsed or staircase I-V loops, SET/RESET voltages")
    devices(iv)
    iv.add_argument("--mode", choices=("pulsed", "staircase"), default="pulsed")
    iv.add_argument(
        "--compliance", type=float, default=100e-6, help="staircase current limit, A (1e-4)"
    )
    iv.add_argument("--set-max", type=float, default=1.8, help="largest SET amplitude, V")
    iv.add_argument("--reset-max", type=float, default=1.5, help="largest RESET magnitude, V")
    iv.add_argument("--step", type=float, default=0.05, help="staircase step, V (0.05)")
    iv.add_argument("--width", type=float, default=1e-3, help="pulse width, s (1e-3)")
    iv.add_argument("--cycles", type=int, default=3, help="loops per device (3)")
    common(iv)
    iv.set_defaults(func=run_iv)

    ret = actions.add_parser("retention", help="read devices every x for y (virtual clock)")
    devices(ret)
    ret.add_argument("--interval", type=float, default=60.0, help="between reads, s (60)")
    ret.add_argument("--duration", type=float, default=3600.0, help="how long, s (3600)")
    ret.add_argument(
        "--log", action="store_true", help="log-spaced points from --interval to --duration"
    )
    ret.add_argument("--read-voltage", type=float, help="read voltage, V (station's)")
    common(ret)
    ret.set_defaults(func=run_retention)

    end = actions.add_parser("endurance", help="SET/RESET cycles to failure, window vs cycle")
    devices(end)
    end.add_argument("--set", type=float, default=2.0, dest="set_V", help="SET amplitude, V")
    end.add_argument("--reset", type=float, default=2.0, dest="reset_V", help="RESET, V")
    end.add_argument("--width", type=float, default=1e-3, help="pulse width, s (1e-3)")
    end.add_argument("--max-cycles", type=int, default=10_000, help="stop here (10000)")
    end.add_argument("--per-decade", type=int, default=10, help="read checkpoints a decade")
    common(end)
    end.set_defaults(func=run_endurance)

    ft = actions.add_parser(
        "fit", help="fit the device model to stored runs; write a simulator board file"
    )
    ft.add_argument(
        "runs", metavar="RUN", type=int, nargs="+", help="form/iv/retention/endurance runs"
    )
    ft.add_argument("--out", metavar="FILE", help="write the fitted board file (TOML) here")
    ft.add_argument(
        "--base", default="memristor_unformed", help="preset the board file starts from"
    )
    ft.add_argument("--db", metavar="PATH", help="database file")
    ft.add_argument("--station", metavar="FILE", help="station TOML file (for its [store])")
    ft.add_argument("--json", action="store_true", help="print one JSON object")
    ft.set_defaults(func=run_fit)

    sk = actions.add_parser("seek", help="converge devices to a target, with pulse history")
    devices(sk)
    sk.add_argument("--target", type=float, required=True, help="target conductance, S")
    sk.add_argument("--tolerance", type=float, default=0.01, help="relative band (0.01)")
    sk.add_argument("--max-pulses", type=int, default=100, help="pulse budget per device")
    common(sk)
    sk.set_defaults(func=run_seek)


# ---------------------------------------------------------------------------- parsing
def _target(text: str, count: int, option: str) -> tuple[tuple[int, ...], float]:
    where, sep, value = text.partition(":")
    parts = [p.strip() for p in where.split(",")]
    if not sep or len(parts) != count or not all(p.isdigit() for p in parts):
        shape = "R,C,K" if count == 3 else "R,C"
        raise _BadInputError(f"{option} {text!r}: expected {shape}:TARGET_S")
    try:
        target = float(value)
    except ValueError:
        raise _BadInputError(f"{option} {text!r}: target {value!r} is not a number") from None
    return tuple(int(p) for p in parts), target


def _station(args: argparse.Namespace) -> Station:
    if args.station:
        if getattr(args, "max_voltage", None) is not None:
            raise _BadInputError(
                "--max-voltage is for the embedded simulator; set [limits] "
                "max_source_voltage_V and max_pulse_voltage_V in the station file"
            )
        return load_station(args.station)
    data: dict[str, Any] = {"simulator": {"board": args.board, "seed": args.seed}}
    if getattr(args, "max_voltage", None) is not None:
        data["limits"] = {
            "max_source_voltage_V": args.max_voltage,
            "max_pulse_voltage_V": args.max_voltage,
        }
    return parse_station(data)


def _store(args: argparse.Namespace, station: Station) -> AbstractContextManager[Store | None]:
    if args.no_store:
        return nullcontext(None)
    explicit = args.db if args.db else station.store.path
    return Store(resolve_db_path(explicit, station_path=args.station))


def _run(args: argparse.Namespace, prog: str, body: Callable[[], dict[str, Any]]) -> int:
    try:
        payload = body()
    except (
        _BadInputError,
        StationError,
        LabInputError,
        SafetyLimitError,
        InstrumentLimitError,
        StoreError,
        ValueError,
    ) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (InstrumentError, LabError, OSError) as exc:
        print(instrument_failure(prog, exc, args), file=sys.stderr)
        return EXIT_INSTRUMENT
    if args.json:
        print(json.dumps(payload))
    else:
        print(_text(payload))
    return 0


def _text(payload: dict[str, Any]) -> str:
    lines = []
    for key, value in payload.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            lines.append(f"{key}:")
            lines.extend(
                "  " + ", ".join(f"{k}={_fmt(v)}" for k, v in row.items()) for row in value
            )
        else:
            lines.append(f"{key}: {_fmt(value)}")
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.5g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


# ---------------------------------------------------------------------------- actions
def run_write_verify(args: argparse.Namespace) -> int:
    """``labrss memristor write-verify``."""

    def body() -> dict[str, Any]:
        devices = [_target(text, 3, "--device") for text in args.device]
        settings = WriteVerifySettings(tolerance=args.tolerance, max_pulses=args.max_pulses)
        station = _station(args)
        with Lab(station) as lab, _store(args, station) as store:
            result = write_verify(
                lab,
                [(b[0], b[1], b[2]) for b, _ in devices],
                [t for _, t in devices],
                settings,
                reads_per_verify=args.reads,
                nplc=args.nplc,
                store=store,
            )
        summary = result.summary()
        summary["devices_detail"] = [
            {
                "branch": list(d.branch),
                "status": d.status,
                "pulses": d.pulses,
                "target_S": d.target_S,
                "final_S": d.final_S,
                "error": d.error,
            }
            for d in result.devices
        ]
        del summary["per_device"]
        summary["station"] = station.name
        return summary

    return _run(args, "labrss memristor write-verify", body)


def run_rss(args: argparse.Namespace) -> int:
    """``labrss memristor rss``."""

    def body() -> dict[str, Any]:
        cells = [_target(text, 2, "--cell") for text in args.cell]
        settings = BankSettings(
            tolerance=args.tolerance,
            coarse_tolerance=args.coarse_tolerance,
            settle_s=args.settle,
            nplc=args.nplc,
        )
        station = _station(args)
        coords = [(b[0], b[1]) for b, _ in cells]
        targets = [t for _, t in cells]
        if args.compare:
            db = (
                None
                if args.no_store
                else resolve_db_path(args.db or station.store.path, station_path=args.station)
            )
            points = compare_methods(
                station,
                coords,
                targets,
                wv_tolerances=(args.tolerance,),
                rss_coarse_tolerances=(args.coarse_tolerance,),
                settings=settings,
                store_factory=(lambda: Store(db)) if db is not None else None,
            )
            return {"station": station.name, "points": [p.summary() for p in points]}
        with Lab(station) as lab, _store(args, station) as store:
            point, banks = run_method(lab, "rss", coords, targets, settings, store=store)
        return {
            "station": station.name,
            **point.summary(),
            "banks": [
                {
                    "cell": list(b.cell),
                    "target_S": b.target_S,
                    "measured_S": b.measured_S,
                    "error": b.error,
                    "mask_hex": f"{b.mask_int:X}",
                    "pulses": b.pulses,
                    "rerolls": b.rerolls,
                }
                for b in banks
            ],
        }

    return _run(args, "labrss memristor rss", body)


def run_drift(args: argparse.Namespace) -> int:
    """``labrss memristor drift``."""

    def body() -> dict[str, Any]:
        cells = [_target(text, 2, "--cell") for text in args.cell]
        try:
            times = tuple(float(t) for t in args.times.split(","))
        except ValueError:
            raise _BadInputError(f"--times {args.times!r}: not comma-separated numbers") from None
        settings = DriftSettings(
            tolerance=args.tolerance,
            times_s=times,
            bank=BankSettings(
                tolerance=min(0.002, args.tolerance / 4), settle_s=args.settle, nplc=args.nplc
            ),
        )
        station = _station(args)
        with Lab(station) as lab, _store(args, station) as store:
            study = drift_study(
                lab, [(b[0], b[1]) for b, _ in cells], [t for _, t in cells], settings, store=store
            )
        return {"station": station.name, **study.summary()}

    return _run(args, "labrss memristor drift", body)


# ---------------------------------------------------------------------------- modules
def _devices(args: argparse.Namespace, lab: Lab) -> list[Branch]:
    if args.device:
        parsed = []
        for text in args.device:
            parts = [p.strip() for p in text.split(",")]
            if len(parts) != 3 or not all(p.isdigit() for p in parts):
                raise _BadInputError(f"--device {text!r}: expected R,C,K")
            r, c, k = (int(p) for p in parts)
            parsed.extend(select_devices(lab, [(r, c)], [k]))
        return parsed
    return select_devices(lab, args.cells, args.branches)


def _module(args: argparse.Namespace, prog: str, body: Callable[[Lab, Any], Any]) -> int:
    def run() -> dict[str, Any]:
        station = _station(args)
        with Lab(station) as lab, _store(args, station) as store:
            result = body(lab, store)
        return {"station": station.name, **result.summary()}

    return _run(args, prog, run)


def run_iv(args: argparse.Namespace) -> int:
    """``labrss memristor iv``."""
    settings = IVSettings(
        mode=args.mode,
        compliance_A=args.compliance,
        v_set_max_V=args.set_max,
        v_reset_max_V=args.reset_max,
        step_V=args.step,
        width_s=args.width,
        cycles=args.cycles,
        reads=args.reads,
        nplc=args.nplc,
    )
    return _module(
        args,
        "labrss memristor iv",
        lambda lab, store: iv_sweep(lab, _devices(args, lab), settings, store=store),
    )


def run_retention(args: argparse.Namespace) -> int:
    """``labrss memristor retention``."""
    settings = RetentionSettings(
        interval_s=args.interval,
        duration_s=args.duration,
        log_spacing=args.log,
        reads=args.reads,
        nplc=args.nplc,
        read_voltage_V=args.read_voltage,
    )
    return _module(
        args,
        "labrss memristor retention",
        lambda lab, store: retention(lab, _devices(args, lab), settings, store=store),
    )


def run_endurance(args: argparse.Namespace) -> int:
    """``labrss memristor endurance``."""
    settings = EnduranceSettings(
        set_V=args.set_V,
        reset_V=args.reset_V,
        width_s=args.width,
        max_cycles=args.max_cycles,
        per_decade=args.per_decade,
        reads=args.reads,
        nplc=args.nplc,
    )
    return _module(
        args,
        "labrss memristor endurance",
        lambda lab, store: endurance(lab, _devices(args, lab), settings, store=store),
    )


def run_seek(args: argparse.Namespace) -> int:
    """``labrss memristor seek``."""
    settings = WriteVerifySettings(tolerance=args.tolerance, max_pulses=args.max_pulses)
    return _module(
        args,
        "labrss memristor seek",
        lambda lab, store: seek(
            lab,
            _devices(args, lab),
            args.target,
            settings,
            reads=args.reads,
            nplc=args.nplc,
            store=store,
        ),
    )


def run_form(args: argparse.Namespace) -> int:
    """``labrss memristor form``."""
    settings = FormSettings(
        v_start_V=args.start,
        v_stop_V=args.stop,
        step_V=args.step,
        compliance_A=args.compliance,
        reads=max(args.reads, 1),
        nplc=args.nplc,
    )
    return _module(
        args,
        "labrss memristor form",
        lambda lab, store: form(lab, _devices(args, lab), settings, store=store),
    )


def run_fit(args: argparse.Namespace) -> int:
    """``labrss memristor fit``: per-device and population parameters, a board file."""

    def body() -> dict[str, Any]:
        station_path = args.station
        store_path = load_station(station_path).store.path if station_path else None
        path = resolve_db_path(args.db or store_path, station_path=station_path)
        if not path.exists():
            raise _BadInputError(f"no database at {path}")
        with Store(path) as store:
            fit = fit_runs(store, args.runs)
        payload = fit.summary()
        payload["board_parameters"] = board_parameters(fit)
        if args.out:
            out = Path(args.out)
            out.write_text(board_toml(fit, base=args.base), encoding="utf-8")
            payload["board_file"] = str(out)
        return payload

    return _run(args, "labrss memristor fit", body)
