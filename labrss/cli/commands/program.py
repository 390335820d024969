"""`labrss program`: map a network onto the board, program, verify and repair it.

    labrss program                       # the digits MLP on the embedded simulator
    labrss program --weights net.npz --reference x.npy --station lab.toml --json
    labrss program --devices memristor   # resident, on a memristor board (coarse + RSS)

``--devices resistor`` (the default) programs switch masks over the calibrated resistors;
``--devices memristor`` programs a network that stays resident on a memristor board
(`labrss.workflows.memristor_program`: every bank coarse-programmed by pulses, measured,
its subset chosen; default network the 6-input, 3-class digits task of
`resident_digits_task`), refusing one that needs more than one tile; ``--devices auto``
picks from the board's ``BOARD:INFO?`` ``element=`` (memristor for a memristor board).

Uses the board's latest calibration in the store (run `labrss calibrate` first). Every
tile is programmed and verified in turn; the run (kind ``program``) stores the programmed
layers and the predicted vs measured conductance of every cell, and its id is printed for
`labrss mvm --program-run ID`. Exit code 2 for bad input (weights file, no calibration,
a layer the board cannot realise), 1 for an instrument failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from drivers.errors import InstrumentLimitError
from labrss.lab import LabInputError, SafetyLimitError
from labrss.station import Station, StationError, load_station

EXIT_INSTRUMENT = 1
EXIT_BAD_INPUT = 2


def bad_input_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input (exit code 2)."""
    from calibration.settings import SettingsError
    from labrss.store import StoreError

    return (
        ValueError,
        StationError,
        LabInputError,
        SafetyLimitError,
        InstrumentLimitError,
        StoreError,
        SettingsError,
        FileNotFoundError,
    )


def load_station_arg(path: str | None) -> Station | None:
    """The station of ``--station`` (None: the embedded simulator)."""
    return None if path is None else load_station(path)


class StageBars:
    """One tqdm bar per workflow stage on stderr (or nothing with ``show=False``)."""

    def __init__(self, *, show: bool) -> None:
        self.show = show
        self._bars: dict[str, Any] = {}

    def __enter__(self) -> StageBars:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for bar in self._bars.values():
            bar.close()

    def update(self, stage: str, done: int, total: int, message: str) -> None:
        """Progress callback ``(stage, done, total, message)``."""
        if not self.show:
            return
        from tqdm import tqdm

        bar = self._bars.get(stage)
        if bar is None:
            bar = tqdm(total=total, desc=stage, file=sys.stderr, leave=True)
            self._bars[stage] = bar
        bar.total = total
        bar.set_postfix_str(message, refresh=False)
        bar.n = done
        bar.refresh()


def register(subparsers: Any) -> None:
    """Add the ``program`` sub-command."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "program",
        help="program a network onto the board and verify every cell",
        description="Program a network (default: the digits MLP) onto the calibrated board.",
    )
    p.add_argument("--station", metavar="FILE", help="station TOML (default: embedded simulator)")
    p.add_argument("--db", metavar="PATH", help="measurement store")
    p.add_argument("--weights", metavar="FILE", help=".npz weights file (default: digits MLP)")
    p.add_argument(
        "--reference",
        metavar="FILE",
        help=".npy inputs (B, d_in) that set each layer's input range (default: digits train set)",
    )
    p.add_argument(
        "--devices",
        choices=("resistor", "memristor", "auto"),
        default="resistor",
        help="resistor banks (switches only), memristor banks (pulses, resident), or "
        "auto: from BOARD:INFO? element=",
    )
    p.add_argument(
        "--ir-drop",
        action="store_true",
        help="IR-drop-aware programming (resistor banks): measure the wiring by row reads, "
        "solve every tile for the predicted MVM, verify against it (docs/ir-drop.md)",
    )
    p.add_argument(
        "--wiring-from",
        type=int,
        metavar="RUN",
        help="with --ir-drop: reuse the wiring an earlier IR-drop-aware program run of this "
        "board measured (no wiring measurement)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def resolve_devices(devices: str, element: str) -> str:
    """``resistor`` or ``memristor`` for ``--devices`` on a board whose ``BOARD:INFO?``
    says ``element``: ``auto`` takes memristor only on a memristor-only board (a mixed
    board's resistor cells hold the default layout)."""
    if devices != "auto":
        return devices
    return "memristor" if element == "memristor" else "resistor"


def run(args: argparse.Namespace) -> int:
    """Program from parsed arguments; print the run id (or a JSON summary)."""
    from labrss.lab import Lab
    from labrss.networks.digits import train_digits_mlp
    from labrss.networks.weights_file import load_weights
    from labrss.store import Store, resolve_db_path
    from labrss.workflows.memristor_program import (
        program_network_memristor,
        resident_digits_task,
    )
    from labrss.workflows.program import ProgramResult, ProgramSettings, program_network

    try:
        settings = ProgramSettings(ir_drop=bool(args.ir_drop), ir_wiring_run=args.wiring_from)
        settings.validate()  # before anything is opened
        station = load_station_arg(args.station)
        if args.weights is not None:
            network = load_weights(args.weights)
            if args.reference is None:
                raise ValueError("--weights needs --reference inputs (.npy) for the input ranges")
        x_given = (
            np.load(Path(args.reference), allow_pickle=False)
            if args.reference is not None
            else None
        )
        st = station
        path = resolve_db_path(args.db, station_path=None if st is None else st.store.path)
        with StageBars(show=not args.no_progress) as bars, Store(path) as store, Lab(st) as lab:

            def cb(done: int, total: int, message: str) -> None:
                bars.update("program", done, total, message)

            devices = resolve_devices(args.devices, str(lab.board.info.get("element", "")))
            if args.ir_drop and devices == "memristor":
                raise ValueError(
                    "--ir-drop programs resistor banks (switches only); a memristor program "
                    "is resident and pulsed (docs/memristor.md)"
                )
            x_ref: Any = x_given
            result: ProgramResult
            if devices == "memristor":
                if args.weights is None:
                    task = resident_digits_task()
                    network = task.network
                    x_ref = task.x_train if x_given is None else x_given
                result = program_network_memristor(lab, store, network, x_ref, progress=cb)
            else:
                if args.weights is None:
                    model = train_digits_mlp()
                    network = model.network
                    x_ref = model.data.x_train if x_given is None else x_given
                result = program_network(
                    lab,
                    store,
                    network,
                    x_ref,
                    settings=settings,
                    progress=cb,
                )
    except bad_input_errors() as exc:
        print(f"labrss program: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:
        print(f"labrss program: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INSTRUMENT
    if args.json:
        print(json.dumps(result.summary(), indent=2))
    else:
        print(result.run_id)
    return 0
