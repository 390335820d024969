"""`labrss.rss.precompile` reaches the solver's size-dependent paths (running it costs ~60 s
of compilation on one core: a cluster node's set-up, docs/cluster.md)."""

from __future__ import annotations

from labrss.rss import exact
from labrss.rss.precompile import SIZES


def test_sizes_reach_stored_and_windowed_top_levels() -> None:
    assert any(n < exact._WINDOWS_FROM_N for n in SIZES if n >= 16)  # stored tables
    assert max(SIZES) >= exact._WINDOWS_FROM_N  # top levels window by window
    assert min(SIZES) <= 8  # enumeration
