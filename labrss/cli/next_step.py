"""The next step a command names when an instrument fails (one line on stderr).

An instrument that does not answer is the commonest first-day failure: the line says what
failed and which command finds out why (`labrss station check`, `labrss discover`).
"""

from __future__ import annotations

import argparse


def instrument_failure(prog: str, exc: BaseException, args: argparse.Namespace) -> str:
    """``"<prog>: instrument failure: <exc>; next: ..."`` naming the station file, if any."""
    station = getattr(args, "station", None)
    where = f" {station}" if station else ""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return (
        f"{prog}: instrument failure: {detail}; next: `labrss station check{where}` says "
        "which instrument fails and why (`labrss discover` lists what answers)"
    )
