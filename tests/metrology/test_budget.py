"""Budget arithmetic: components, banks with correlated sources, anchoring (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labrss.metrology.budget import (
    CATEGORIES,
    ElementBudget,
    Source,
    bank_uncertainty,
    combine_components,
    sources_from_json,
    sources_to_json,
    split_type_a,
)
from labrss.metrology.reference import anchor

SOURCES = (
    Source("gain I 10 uA", "range", 1e-4),
    Source("gain V 200 mV", "scale", 5e-5),
    Source("board temperature", "temperature", 0.01, "K"),
)


def _random_budget(rng: np.random.Generator, cells: int, k: int) -> ElementBudget:
    value = np.concatenate(
        [rng.uniform(1e-10, 1e-9, (cells, 1)), rng.uniform(1e-6, 1e-4, (cells, k))], 1
    )
    root = rng.normal(0, 1e-8, (cells, k + 2, k + 2))
    cov = root @ np.swapaxes(root, 1, 2)  # positive semi-definite
    contrib = rng.normal(0, 1e-8, (cells, k + 1, len(SOURCES)))
    return ElementBudget(SOURCES, value, cov, contrib)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 6), m=st.integers(1, 5))
def test_bank_variance_is_the_quadratic_form_of_all_sources(seed: int, k: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    budget = _random_budget(rng, 3, k)
    masks = rng.random((3, m, k)) < 0.5
    bank = budget.bank(masks)
    for c in range(3):
        for j in range(m):
            w = np.concatenate([[1.0], masks[c, j].astype(float), [0.0]])
            var_a = w @ budget.cov_S2[c] @ w
            shifts = w[:-1] @ budget.contrib_S[c]  # correlated: added before squaring
            expected = var_a + np.sum(shifts**2)
            # S^2 values ~1e-16: approx's default absolute floor (1e-12) would pass anything
            assert bank.u_S[c, j] ** 2 == pytest.approx(expected, rel=1e-9, abs=0)
            assert bank.value_S[c, j] == pytest.approx(w[:-1] @ budget.value_S[c], rel=1e-12, abs=0)
    total = sum(bank.components[name] ** 2 for name in CATEGORIES)
    np.testing.assert_allclose(total, bank.u_S**2, rtol=1e-9)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 6))
def test_type_a_split_adds_up_and_element_components_combine(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    budget = _random_budget(rng, 2, k)
    w = rng.random((2, 4, k + 2))
    w[..., -1] = 0.0
    stat, series, leak = split_type_a(budget.cov_S2, w)
    total = np.einsum("cmi,cij,cmj->cm", w, budget.cov_S2, w)
    np.testing.assert_allclose(stat + series + leak, total, rtol=1e-9, atol=1e-30)
    assert (stat >= 0).all() and (series >= 0).all() and (leak >= 0).all()
    comps = budget.components()
    diag = np.einsum("cii->ci", budget.cov_S2)[:, 1:-1]
    systematic = (budget.contrib_S[:, 1:, :] ** 2).sum(-1)
    np.testing.assert_allclose(budget.combined_S() ** 2, diag + systematic, rtol=1e-9)
    np.testing.assert_allclose(combine_components(comps), budget.combined_S())


def test_a_shared_source_adds_linearly_over_a_bank() -> None:
    # two elements read on the same range: its gain error moves both the same way
    value = np.array([[0.0, 1e-4, 3e-4]])
    cov = np.zeros((1, 4, 4))
    contrib = np.zeros((1, 3, 1))
    contrib[0, 1:, 0] = [1e-8, 3e-8]
    src = (Source("gain I 10 uA", "range", 1e-4),)
    both = bank_uncertainty(value, cov, contrib, src, np.array([[True, True]]))
    assert both.u_S[0] == pytest.approx(4e-8)  # not sqrt(1 + 9) e-8
    assert both.components["range"][0] == pytest.approx(4e-8)
    assert both.u_ratio_S[0] == pytest.approx(4e-8)  # a range source is not the scale


def test_unknown_elements_make_only_their_banks_unknown() -> None:
    value = np.array([[1e-10, 1e-4, np.nan]])
    cov = np.zeros((1, 4, 4))
    cov[0, 2, 2] = np.nan
    contrib = np.zeros((1, 3, 0))
    bank = bank_uncertainty(value, cov, contrib, (), np.array([[[True, False], [True, True]]]))
    assert np.isfinite(bank.value_S[0, 0]) and np.isfinite(bank.u_S[0, 0])
    assert np.isnan(bank.value_S[0, 1]) and np.isnan(bank.u_S[0, 1])


def test_sources_round_trip_and_reject_bad_values() -> None:
    assert sources_from_json(sources_to_json(SOURCES)) == SOURCES
    with pytest.raises(ValueError, match="category 'noise'"):
        Source("x", "noise", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        Source("x", "scale", -1.0)


def test_anchoring_cancels_the_common_scale_and_adds_the_certificate() -> None:
    # three cells, every estimate carries the same relative scale error (the meter's)
    rng = np.random.default_rng(4)
    value = np.concatenate([np.full((3, 1), 1e-10), rng.uniform(1e-5, 1e-4, (3, 4))], 1)
    cov = np.zeros((3, 6, 6))
    cov[:, 1:5, 1:5] = np.eye(4) * 1e-18
    u_scale = 1e-4
    contrib = (value * u_scale)[..., None]
    budget = ElementBudget((Source("gain V 200 mV", "scale", u_scale),), value, cov, contrib)
    expected = value[1, 2] * (1 - 3e-4)  # the standard's certified conductance
    cert = [Source("reference certificate", "scale", 2.5e-5)]
    anchored, result = anchor(budget, 1, 1, expected, cert)
    assert result.factor == pytest.approx(1 + 3e-4 / (1 - 3e-4))
    assert anchored.value_S[1, 2] == pytest.approx(expected)
    # the meter's scale cancels exactly; what remains is the standard's reading and certificate
    np.testing.assert_allclose(anchored.contrib_S[..., 0], 0.0, atol=1e-20)
    scale = anchored.components()["scale"]
    rel = scale / anchored.value_S[:, 1:]
    u_read = 1e-9 / value[1, 2]
    np.testing.assert_allclose(rel, np.hypot(2.5e-5, u_read), rtol=1e-9)
    with pytest.raises(ValueError, match="cannot anchor"):
        anchor(budget, 1, 1, -1.0, cert)
