"""Calibration designs for a bank of n parallel branches (pure: numpy only, no I/O).

A design is a 0/1 matrix ``X`` of shape (M, n): row j closes the switches of subset S_j and
one reading measures ``G(S_j) = c0 + sum_{i in S_j} a_i`` (a_i: branch i's conductance, closed
minus open; c0: the all-open conductance, i.e. leakage and offset; see
`calibration.estimation`). Every design here starts with the empty subset (the row that
measures c0 alone) unless told otherwise, and may end with the full subset (all closed),
which together with the half-full rows of a weighing design makes the common series path
identifiable (three distinct conductance levels).

Designs:

* `one_by_one`: the empty subset and each branch alone, cycled to the requested number of
  readings (M = n + 1 for one pass).
* `s_matrix_design`: a weighing design from the S-matrix of order m (m = h - 1 for a
  Hadamard matrix of order h, see `hadamard`): row j closes the branches where the
  normalised Hadamard matrix has -1, so every row closes (m + 1) / 2 branches. For an n that
  is not of the form h - 1 the smallest available m >= n is used and its last m - n columns
  are dropped ("padding": those switches do not exist); the design stays full rank.
* `random_balanced_design`: rows that each close a random half of the branches (sizes
  floor(n/2) and ceil(n/2) alternating), redrawn until the design is full rank.
* `holdout_subsets`: random subsets (random sizes 1..n) not in the design, measured but
  kept out of the fit, to check additivity (`calibration.estimation.holdout_check`).

Standard errors (`standard_error_factor`): with independent readings of equal variance
sigma^2, ``cov = sigma^2 (A^T A)^-1`` with ``A = [1 | X]`` (intercept c0) or ``A = X``. Derived
results, asserted in tests/calibration/test_designs.py (n = h - 1):

* c0 known (no intercept): S-matrix versus n single readings, per-element variance
  ``4n/(n+1)^2`` times that of one-by-one, i.e. about 4/n (Harwit & Sloane); from
  ``S^-1 = 2/(n+1) (2 S^T - J)``.
* c0 estimated (intercept; the empty row added to both, M = n + 1 readings each): S-matrix
  ``var(a_i) = 4 sigma^2/(n+1)``; one-by-one ``var(a_i) = 2 sigma^2`` (a reading minus the
  empty reading): variance ratio ``2/(n+1)``, standard-error ratio ``sqrt(2/(n+1))``
  (n = 7: 0.5). Proof: ``[1 | X] = H T`` with H the normalised Hadamard matrix and
  ``T = [[1, 1/2 1^T], [0, -1/2 I]]``, so ``(A^T A)^-1 = T^-1 T^-T / (n+1)`` with
  ``T^-1 = [[1, 1^T], [0, -2 I]]``.

Hadamard constructions (`hadamard`): Sylvester (orders 2^k), Paley I (q + 1 for a prime
q = 3 mod 4), Paley II (2(q + 1) for a prime q = 1 mod 4), and Kronecker products with
Sylvester matrices. Prime powers (which need GF(q) arithmetic) are not implemented; for
every order h <= 256 divisible by 4 except 52, 92, 100, 116, 156, 172, 184, 188, 232, 236 and
244 one of these applies, which covers every bank size n <= 64 (the store's mask width; the
S-matrix order is then the next available one, e.g. n = 8 uses m = 11, n = 16 uses m = 19).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Design",
    "hadamard",
    "hadamard_order_available",
    "holdout_subsets",
    "one_by_one",
    "random_balanced_design",
    "rows_to_masks",
    "s_matrix",
    "s_matrix_design",
    "standard_error_factor",
]

_MAX_BRANCHES = 64


@dataclass(frozen=True)
class Design:
    """A calibration design: fit rows ``X`` (M, n) and held-out rows ``holdout`` (H, n).

    Both are uint8 0/1 matrices; row j closes branch i where ``X[j, i] == 1``.
    """

    name: str
    X: NDArray[np.uint8]
    holdout: NDArray[np.uint8] = field(default_factory=lambda: np.zeros((0, 0), np.uint8))

    def __post_init__(self) -> None:
        X = _as_design(self.X, f"design {self.name!r}")
        hold = np.asarray(self.holdout)
        if hold.size == 0:
            hold = np.zeros((0, X.shape[1]), np.uint8)
        hold = _as_design(hold, f"design {self.name!r} holdout")
        if hold.shape[1] != X.shape[1]:
            raise ValueError(
                f"design {self.name!r}: holdout rows have {hold.shape[1]} branches, "
                f"the design {X.shape[1]}"
            )
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "holdout", hold)

    @property
    def n_branches(self) -> int:
        """n, the number of branches."""
        return int(self.X.shape[1])

    @property
    def n_readings(self) -> int:
        """M, the number of fitted readings (without the held-out ones)."""
        return int(self.X.shape[0])

    @property
    def masks(self) -> NDArray[np.uint64]:
        """The fit rows as switch masks (bit i set = branch i closed)."""
        return rows_to_masks(self.X)

    @property
    def holdout_masks(self) -> NDArray[np.uint64]:
        """The held-out rows as switch masks."""
        return rows_to_masks(self.holdout)

    def with_holdout(self, holdout: NDArray[np.integer]) -> Design:
        """The same design with ``holdout`` rows attached."""
        return Design(self.name, self.X, np.asarray(holdout, dtype=np.uint8))


def _as_design(X: NDArray[np.integer] | NDArray[np.bool_], what: str) -> NDArray[np.uint8]:
    arr = np.asarray(X)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"{what}: expected a 2-D (readings, branches) matrix, got {arr.shape}")
    if arr.shape[1] > _MAX_BRANCHES:
        raise ValueError(f"{what}: {arr.shape[1]} branches, at most {_MAX_BRANCHES} supported")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{what}: entries must be 0 or 1")
    return arr.astype(np.uint8)


def rows_to_masks(X: NDArray[np.integer] | NDArray[np.bool_]) -> NDArray[np.uint64]:
    """Switch masks of 0/1 rows: ``mask_j = sum_i X[j, i] 2^i``."""
    arr = _as_design(np.asarray(X).reshape(-1, np.asarray(X).shape[-1]), "rows")
    weights = np.left_shift(np.uint64(1), np.arange(arr.shape[1], dtype=np.uint64))
    masks: NDArray[np.uint64] = (arr.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    return masks


def _check_n(n: int) -> None:
    if int(n) != n or not 1 <= n <= _MAX_BRANCHES:
        raise ValueError(f"number of branches must be an integer 1..{_MAX_BRANCHES}, got {n!r}")


def _is_prime(q: int) -> bool:
    if q < 2:
        return False
    return all(q % d for d in range(2, int(q**0.5) + 1))


def _jacobsthal(q: int) -> NDArray[np.int64]:
    """Q[i, j] = chi(j - i) with chi the quadratic character mod the prime q."""
    squares = np.zeros(q, dtype=bool)
    squares[(np.arange(1, q) ** 2) % q] = True
    chi = np.where(squares, 1, -1).astype(np.int64)
    chi[0] = 0
    idx = (np.arange(q)[None, :] - np.arange(q)[:, None]) % q
    Q: NDArray[np.int64] = chi[idx]
    return Q


def _paley1(q: int) -> NDArray[np.int64]:
    """Paley construction I: order q + 1, q prime = 3 mod 4."""
    Q = _jacobsthal(q)
    S = np.zeros((q + 1, q + 1), dtype=np.int64)
    S[0, 1:] = 1
    S[1:, 0] = -1
    S[1:, 1:] = Q
    H: NDArray[np.int64] = S + np.eye(q + 1, dtype=np.int64)
    return H


def _paley2(q: int) -> NDArray[np.int64]:
    """Paley construction II: order 2(q + 1), q prime = 1 mod 4."""
    Q = _jacobsthal(q)
    C = np.zeros((q + 1, q + 1), dtype=np.int64)
    C[0, 1:] = 1
    C[1:, 0] = 1
    C[1:, 1:] = Q
    plus = np.array([[1, -1], [-1, -1]], dtype=np.int64)
    minus = np.array([[1, 1], [1, -1]], dtype=np.int64)
    H: NDArray[np.int64] = np.kron(C, plus) + np.kron(np.eye(q + 1, dtype=np.int64), minus)
    return H


def _base_hadamard(order: int) -> NDArray[np.int64] | None:
    if order == 1:
        return np.ones((1, 1), dtype=np.int64)
    if order == 2:
        return np.array([[1, 1], [1, -1]], dtype=np.int64)
    q = order - 1
    if q % 4 == 3 and _is_prime(q):
        return _paley1(q)
    if order % 2 == 0:
        q = order // 2 - 1
        if q % 4 == 1 and _is_prime(q):
            return _paley2(q)
    return None


def hadamard(order: int) -> NDArray[np.int64]:
    """A Hadamard matrix of ``order`` (entries +-1, ``H H^T = order I``).

    Raises `ValueError` when none of the implemented constructions (module docstring)
    gives this order.
    """
    if int(order) != order or order < 1:
        raise ValueError(f"Hadamard order must be a positive integer, got {order!r}")
    power = 0
    rest = int(order)
    while True:
        base = _base_hadamard(rest)
        if base is not None:
            H = base
            for _ in range(power):
                H = np.kron(np.array([[1, 1], [1, -1]], dtype=np.int64), H)
            return H
        if rest % 2:
            break
        rest //= 2
        power += 1
    raise ValueError(
        f"no Hadamard matrix of order {order} from the implemented constructions "
        "(Sylvester, Paley I/II with prime q, Kronecker products)"
    )


def hadamard_order_available(order: int) -> bool:
    """Whether `hadamard` can build this order."""
    try:
        hadamard(order)
    except ValueError:
        return False
    return True


def s_matrix(m: int) -> NDArray[np.uint8]:
    """The S-matrix of order m (m + 1 a Hadamard order): (m, m) 0/1, rows of weight (m+1)/2.

    From the normalised Hadamard matrix of order m + 1 (first row and column all +1):
    drop them and map +1 -> 0, -1 -> 1.
    """
    H = hadamard(m + 1)
    H = H * H[0][None, :]  # first row all +1
    H = H * H[:, 0][:, None]  # first column all +1
    S: NDArray[np.uint8] = (H[1:, 1:] < 0).astype(np.uint8)
    return S


def _s_order(n: int) -> int:
    m = n
    while not (m % 4 == 3 and hadamard_order_available(m + 1)):
        m += 1
    return m


def one_by_one(
    n: int, n_readings: int | None = None, *, with_empty: bool = True, with_full: bool = False
) -> Design:
    """Each branch alone (plus the empty subset), cycled to ``n_readings`` rows.

    One pass is ``[empty], e_0, ..., e_{n-1}, [full]``; ``n_readings`` (default one pass)
    repeats the pass cyclically so that designs can be compared at equal M.
    """
    _check_n(n)
    rows = [np.eye(n, dtype=np.uint8)]
    if with_empty:
        rows.insert(0, np.zeros((1, n), np.uint8))
    if with_full:
        rows.append(np.ones((1, n), np.uint8))
    one_pass = np.vstack(rows)
    M = one_pass.shape[0] if n_readings is None else int(n_readings)
    if one_pass.shape[0] > M:
        raise ValueError(
            f"one-by-one design for {n} branches needs >= {one_pass.shape[0]} readings, got {M}"
        )
    return Design("one_by_one", one_pass[np.arange(M) % one_pass.shape[0]])


def s_matrix_design(n: int, *, with_empty: bool = True, with_full: bool = False) -> Design:
    """The S-matrix weighing design for n branches (padded, see the module docstring).

    Rows: ``[empty]``, the m rows of the S-matrix of the smallest order m >= n available
    (its first n columns), ``[full]``. M = m + with_empty + with_full.
    """
    _check_n(n)
    m = _s_order(n)
    rows = [s_matrix(m)[:, :n]]
    if with_empty:
        rows.insert(0, np.zeros((1, n), np.uint8))
    if with_full:
        rows.append(np.ones((1, n), np.uint8))
    return Design(f"s_matrix_{m}", np.vstack(rows))


def random_balanced_design(
    n: int,
    n_readings: int,
    rng: np.random.Generator,
    *,
    with_empty: bool = True,
    with_full: bool = False,
    max_tries: int = 100,
) -> Design:
    """``n_readings`` rows, each closing a random half of the branches (full rank).

    The first row is empty and the last full when asked; the others close floor(n/2) and
    ceil(n/2) branches alternately, chosen uniformly. Redrawn until ``[1 | X]`` has rank
    n + 1 (or ``X`` rank n without the empty row), at most ``max_tries`` times.
    """
    _check_n(n)
    fixed = int(with_empty) + int(with_full)
    need = n + 1 if with_empty else n
    if n_readings < max(need, fixed + 1):
        raise ValueError(
            f"a random design for {n} branches needs >= {need} readings, got {n_readings}"
        )
    sizes = np.where(np.arange(n_readings - fixed) % 2 == 0, n // 2, (n + 1) // 2)
    sizes = np.maximum(sizes, 1)
    for _ in range(max_tries):
        order = np.argsort(rng.random((n_readings - fixed, n)), axis=1)
        body = (np.argsort(order, axis=1) < sizes[:, None]).astype(np.uint8)
        rows = [body]
        if with_empty:
            rows.insert(0, np.zeros((1, n), np.uint8))
        if with_full:
            rows.append(np.ones((1, n), np.uint8))
        X = np.vstack(rows)
        A = np.hstack([np.ones((X.shape[0], 1)), X]) if with_empty else X.astype(float)
        if np.linalg.matrix_rank(A) == A.shape[1]:
            return Design("random_balanced", X)
    raise ValueError(f"no full-rank random design for n={n}, M={n_readings} in {max_tries} draws")


def holdout_subsets(
    n: int, count: int, rng: np.random.Generator, *, exclude: NDArray[np.integer] | None = None
) -> NDArray[np.uint8]:
    """``count`` distinct random non-empty subsets (sizes uniform in 1..n) not in ``exclude``.

    Returned as (count, n) 0/1 rows. `ValueError` if fewer than ``count`` subsets remain.
    """
    _check_n(n)
    taken = set() if exclude is None else {int(m) for m in rows_to_masks(np.asarray(exclude))}
    available = (1 << n) - 1 - len({m for m in taken if m != 0})
    if count > available:
        raise ValueError(
            f"only {available} subsets of {n} branches are left for {count} held-out rows"
        )
    out: list[NDArray[np.uint8]] = []
    while len(out) < count:
        size = int(rng.integers(1, n + 1))
        row = np.zeros(n, np.uint8)
        row[rng.choice(n, size=size, replace=False)] = 1
        mask = int(rows_to_masks(row[None, :])[0])
        if mask not in taken:
            taken.add(mask)
            out.append(row)
    return np.array(out, dtype=np.uint8).reshape(count, n)


def standard_error_factor(X: NDArray[np.integer], *, intercept: bool = True) -> NDArray[np.float64]:
    """Per-element standard error of a_i in units of the per-reading sigma.

    ``sqrt(diag((A^T A)^-1))`` for the element columns, ``A = [1 | X]`` with ``intercept``
    (c0 estimated) or ``A = X``. `ValueError` if the design cannot identify every element.
    O(M p^2 + p^3), p = n + intercept.
    """
    X = _as_design(np.asarray(X), "design")
    A = X.astype(float)
    if intercept:
        A = np.hstack([np.ones((A.shape[0], 1)), A])
    if np.linalg.matrix_rank(A) < A.shape[1]:
        raise ValueError(
            f"design of {X.shape[0]} readings cannot identify {X.shape[1]} branches"
            + (" and the offset c0" if intercept else "")
        )
    cov = np.linalg.inv(A.T @ A)
    factor: NDArray[np.float64] = np.sqrt(np.diag(cov)[int(intercept) :])
    return factor
