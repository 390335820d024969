"""Memristor programming policies (pure, no I/O): write-verify decisions, coarse RSS levels.

* `WriteVerifyPolicy` - the write-verify state machine: next pulse from the last reading
  (amplitude and width stepping, polarity reversals, stop conditions).
* `coarse_levels` - the coarse level of each branch of a bank programmed for RSS.

The bench loops that use them are in `labrss.workflows.write_verify`,
`labrss.workflows.memristor_rss` and `labrss.workflows.drift`; see docs/memristor.md.
"""

from labrss.memristor.coarse_levels import CoarsePlan, coarse_levels
from labrss.memristor.write_verify import (
    STATUSES,
    Pulse,
    Status,
    Stop,
    WriteVerifyPolicy,
    WriteVerifySettings,
)

__all__ = [
    "STATUSES",
    "CoarsePlan",
    "Pulse",
    "Status",
    "Stop",
    "WriteVerifyPolicy",
    "WriteVerifySettings",
    "coarse_levels",
]
