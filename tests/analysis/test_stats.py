"""Statistics of the paired comparison against hand computations and scipy (cases/compare_stats.json),
and the Pareto front on hand-made points."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.analysis import _stats
from harness.analysis._curves import pareto_front
from tests.helpers import read_cases

STATS = read_cases("compare_stats.json")["cases"]


@pytest.mark.parametrize("case", STATS, ids=[c["name"] for c in STATS])
def test_stats_case(case):
    kind = case["kind"]
    if kind == "mcnemar":
        b, c = case["negative"], case["positive"]
        result = _stats.mcnemar(b, c)
        assert result.exact_p == pytest.approx(case["exact_p"], rel=1e-12)
        assert result.chi2 == pytest.approx(case["chi2"], rel=1e-12)
        if b + c:
            assert result.exact_p == pytest.approx(scipy_stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-9)
            assert result.chi2_p == pytest.approx(scipy_stats.chi2.sf(result.chi2, 1), rel=1e-9)
    elif kind == "flips":
        right = 1 if case["higher_is_better"] else 0
        base, variant = np.array(case["base"]), np.array(case["variant"])
        result = _stats.flips(base == right, variant == right)
        fields = ("negative", "positive", "variant_errors", "negative_flip_rate", "positive_flip_rate", "negative_flip_impact")
        for field in fields:
            assert getattr(result, field) == pytest.approx(case[field]), field
    elif kind == "kl":
        assert _stats.choice_kl(np.array(case["base"]), np.array(case["variant"])) == pytest.approx(case["kl"], abs=1e-12)
    elif kind == "aggregate":
        values = np.array(case["values"], dtype=float)
        assert float(_stats.aggregate_for(case["metric"])(values)) == pytest.approx(case["expected"], rel=1e-12)
    elif kind == "bootstrap":
        half = np.random.default_rng(case["noise_seed"]).normal(0, case["noise"], case["n"] // 2)
        base = np.random.default_rng(case["noise_seed"] + 1).uniform(0, 1, case["n"])
        variant = base + case["shift"] + np.concatenate([half, -half])
        low, high = _bootstrap(case, base, variant)
        assert float(np.mean(variant - base)) == pytest.approx(case["shift"])
        assert 0 < low < case["shift"] < high
        expected_width = 2 * 1.96 * np.std(variant - base) / math.sqrt(case["n"])
        assert high - low == pytest.approx(expected_width, rel=0.15)
        assert (low, high) == _bootstrap(case, base, variant)  # seeded: the same interval again
    elif kind == "coverage":
        draws = np.random.default_rng(case["seed"])
        covered = 0
        for _ in range(case["repeats"]):
            base = draws.uniform(0, 1, case["n"])
            variant = base + case["shift"] + draws.normal(0, case["noise"], case["n"])
            low, high = _bootstrap(case, base, variant)
            covered += low < case["shift"] < high
        assert covered / case["repeats"] >= case["min_coverage"]
    elif kind == "bootstrap_flips":
        n, negative, positive = case["n"], case["negative"], case["positive"]
        base = np.array([1] * negative + [0] * positive + [1] * (n - negative - positive), dtype=float)
        variant = np.array([0] * negative + [1] * positive + [1] * (n - negative - positive), dtype=float)
        low, high = _bootstrap(case, base, variant)
        difference = (positive - negative) / n
        assert low < difference < high < 0
        sd = math.sqrt((negative + positive) / n - difference**2)
        assert high - low == pytest.approx(2 * 1.96 * sd / math.sqrt(n), rel=0.15)
    elif kind == "pareto":
        points = [tuple(p) for p in case["points"]]
        assert pareto_front(points, case["a_higher"], case["b_higher"]) == case["on_front"]
    else:
        raise AssertionError(f"unknown case kind {kind}")


def _bootstrap(case, base, variant):
    rng = np.random.default_rng(case["seed"])
    return _stats.bootstrap_interval(base, variant, _stats.aggregate_for("acc"), case["resamples"], rng, case["confidence"])
