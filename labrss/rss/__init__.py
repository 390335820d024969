"""The Random Subset Sum solver: best subsets of measured elements for targets (pure).

Public API (see docs/rss.md):

* `solve` - best subset of each cell's elements for each target (parallel bank or
  series chain; leakage, series resistance, exclusions, uncertainties, secondary
  objective), exact up to ``max_exact_n`` elements.
* `solve_signed` - differential pairs, ``G+ - G-`` for signed targets.
* `sorted_subset_sums` - all ``2**n`` subset sums, sorted, with their masks.
* `RSSResult`, `SignedRSSResult` - the result objects.
"""

from labrss.rss.result import RSSResult, SignedRSSResult
from labrss.rss.signed import solve_signed
from labrss.rss.solver import MAX_MITM_N, solve
from labrss.rss.subset_sums import MAX_SUBSET_SUMS_N, sorted_subset_sums

__all__ = [
    "MAX_MITM_N",
    "MAX_SUBSET_SUMS_N",
    "RSSResult",
    "SignedRSSResult",
    "solve",
    "solve_signed",
    "sorted_subset_sums",
]
