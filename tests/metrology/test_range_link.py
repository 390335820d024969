"""Range linking: choosing subsets, estimating links, chaining ranges (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from labrss.metrology.range_link import LinkEstimate, estimate_links, plan_links, solve_chain

RANGES = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3]


def test_plan_picks_subsets_near_85_percent_of_the_lower_range() -> None:
    # a 10 kohm x 1.8^k ladder per cell, 0.1 V: singles from 10 uA down to 0.16 uA
    k = np.arange(8)
    a = 1.0 / (10e3 * 1.8**k)
    bank = np.tile(np.concatenate([[1e-9], a]), (6, 1)) * np.linspace(0.98, 1.02, 6)[:, None]
    plan = plan_links(
        RANGES,
        [1e-8, 1e-6, 1e-5, 1e-4],
        bank_S=bank,
        series_ohm=np.full(6, 0.3),
        exclude=np.zeros((6, 8), bool),
        voltage_V=0.1,
        per_link=4,
    )
    # 10 nA/100 nA and 100 nA/1 uA cannot be linked (no subset of 5..9 nA or 55..92 nA)
    assert plan.links == ((1e-6, 1e-5), (1e-5, 1e-4))
    for link, (lo, _) in enumerate(plan.links):
        subs = plan.subsets_of(link)
        assert len(subs) == 4 and len({s.cell for s in subs}) == 4
        for s in subs:
            assert 0.55 * lo <= s.current_A <= 0.92 * lo
            assert abs(s.current_A - 0.85 * lo) < 0.05 * lo  # 8 branches reach it closely


def test_link_estimates_are_means_with_standard_errors() -> None:
    rng = np.random.default_rng(1)
    x = 3e-4 + 4e-5 * rng.standard_normal(64)
    (est, bad) = estimate_links([(1e-6, 1e-5), (1e-5, 1e-4)], [x, [1e-4, np.nan]])
    assert est.delta == pytest.approx(x.mean()) and est.n == 64
    assert est.u == pytest.approx(x.std(ddof=1) / 8)
    assert np.isnan(bad.delta) and bad.n == 1


def test_chain_corrects_every_range_to_the_most_accurate_one() -> None:
    e = {1e-6: 2e-4, 1e-5: -1.5e-4, 1e-4: 2e-5, 1e-3: 7e-5}
    links = [
        LinkEstimate(1e-6, 1e-5, e[1e-6] - e[1e-5], 1e-6, 64),
        LinkEstimate(1e-5, 1e-4, e[1e-5] - e[1e-4], 1e-6, 64),
        LinkEstimate(1e-4, 1e-3, float("nan"), float("nan"), 0),  # not measured
    ]
    u_gain = {1e-6: 9.7e-5, 1e-5: 9.7e-5, 1e-4: 7.8e-5, 1e-3: 7.8e-5}
    chain = solve_chain(sorted(e), links, {1e-6: 40, 1e-5: 50, 1e-4: 10, 1e-3: 1}, u_gain=u_gain)
    assert chain.main_reference_A == 1e-4  # the smallest datasheet gain error of its group
    for r in (1e-6, 1e-5, 1e-4):
        assert chain.reference_A[r] == 1e-4
        assert chain.correction[r] == pytest.approx(e[r] - e[1e-4])
    assert chain.path[1e-6] == {0: 1, 1: 1} and chain.path[1e-4] == {}
    assert chain.reference_A[1e-3] == 1e-3 and chain.correction[1e-3] == 0.0
    # a declared reference range wins
    pinned = solve_chain(sorted(e), links, {}, u_gain=u_gain, reference_A=1e-5)
    assert pinned.main_reference_A == 1e-5
    assert pinned.correction[1e-4] == pytest.approx(e[1e-4] - e[1e-5])
    assert pinned.path[1e-4] == {1: -1}
