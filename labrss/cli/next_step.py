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


def store_lookup_hint(exc: BaseException) -> str:
    """The next step after a store lookup that found nothing ("" for other errors)."""
    text = str(exc)
    if "no run with id" in text or "no board with id" in text:
        return "; `labrss runs` lists what the store holds (`labrss calibrate` makes a first run)"
    return ""
