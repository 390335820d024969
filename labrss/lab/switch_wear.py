"""Relay life: warn before a bench's switches reach their rated life.

A switching matrix counts every relay's closures (``switch-counts``, `drivers.board.
SwitchWear`). `wear_warnings` turns the counts into one message per switch past
`WEAR_WARNING_FRACTION` of its rated life; `Lab` issues them as `RelayWearWarning` when it
opens the bench and again when it closes it (a long run may cross the threshold), and every
workflow's board registration stores the counts (`labrss.workflows.boards`).
"""

from __future__ import annotations

from typing import Final

from drivers.board import SwitchWear

WEAR_WARNING_FRACTION: Final = 0.9
"""A switch past this fraction of its rated life gets a warning."""


class RelayWearWarning(UserWarning):
    """A switch (relay) is near or past its rated life."""


def wear_warnings(wear: SwitchWear, bench: str) -> dict[str, str]:
    """Switch name -> warning text, for every switch at or past `WEAR_WARNING_FRACTION`."""
    rated = wear.rated_operations
    found: dict[str, str] = {}
    for name, fraction in sorted(wear.fraction_used().items()):
        if fraction < WEAR_WARNING_FRACTION or rated is None:
            continue
        where = wear.where.get(name, "")
        what = f"switch {name}" + (f" ({where})" if where else "")
        state = "is PAST" if fraction >= 1.0 else "is near"
        found[name] = (
            f"{bench}: {what} {state} its rated life: {wear.counts[name]:,} of {rated:,} "
            f"operations ({100 * fraction:.1f} %); replace it or plan to (labrss warns from "
            f"{100 * WEAR_WARNING_FRACTION:.0f} %)"
        )
    return found
