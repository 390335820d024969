"""Result objects of the RSS solver: switch masks with what they realise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RSSResult", "SignedRSSResult"]


@dataclass(frozen=True)
class RSSResult:
    """Best subsets for a batch of cells and targets (`labrss.rss.solve`).

    Shapes: ``B`` is the broadcast cell shape ``(...)``, followed by ``(m,)`` when the
    targets were given as ``(..., m)``. All arrays are numpy arrays.

    Attributes
    ----------
    mask : bool, ``B + (n,)``
        Elements in use. Parallel bank: switch closed. Series chain: element in the
        path (its bypass switch open).
    value : float, ``B``
        Realised value in the target's unit (S or ohm), after the transforms
        (leakage, series resistance, resistance/conductance conversion).
    error : float, ``B``
        ``value - target``.
    exact : bool, ``B``
        True when the subset is provably optimal (before any secondary objective moves
        it inside the near-optimal tolerance); False from the heuristic.
    reachable : bool, ``B``
        True when the target lies in ``[reachable_lo, reachable_hi]``; otherwise the
        returned subset is the nearest end of the interval (never silently clamped:
        check this flag).
    reachable_lo, reachable_hi : float, ``B``
        The interval of values the cell can realise, in the target's unit.
    sigma : float ``B``, or None
        Predicted standard deviation of the realised value, from the element
        uncertainties of the elements in use, propagated through the transforms
        (None when no uncertainties were given).
    n_closed : int, ``B``
        Number of elements in use (``mask.sum(-1)``).
    target : float, ``B``
        The targets, broadcast.
    method : str
        The method that ran: ``"enumerate"``, ``"mitm"`` or ``"heuristic"``.
    """

    mask: np.ndarray
    value: np.ndarray
    error: np.ndarray
    exact: np.ndarray
    reachable: np.ndarray
    reachable_lo: np.ndarray
    reachable_hi: np.ndarray
    sigma: np.ndarray | None
    n_closed: np.ndarray
    target: np.ndarray
    method: str


@dataclass(frozen=True)
class SignedRSSResult:
    """Best differential-pair subsets (`labrss.rss.solve_signed`).

    The realised value is ``G+ - G-`` in S. Fields as in `RSSResult`, with the mask
    split into ``mask_pos`` (``B + (n_pos,)``) and ``mask_neg`` (``B + (n_neg,)``);
    ``n_closed`` counts the closed switches of both columns.
    """

    mask_pos: np.ndarray
    mask_neg: np.ndarray
    value: np.ndarray
    error: np.ndarray
    exact: np.ndarray
    reachable: np.ndarray
    reachable_lo: np.ndarray
    reachable_hi: np.ndarray
    sigma: np.ndarray | None
    n_closed: np.ndarray
    target: np.ndarray
    method: str
