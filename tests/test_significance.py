"""The report's statistics against scipy and against values worked out by hand: the exact Wilcoxon
signed-rank test, the t option, Holm's correction and the bootstrap interval of a mean."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from hpobench_stn.reporting.significance import (
    BOOTSTRAP_SEED,
    CONFIDENCE,
    PairedTest,
    bootstrap_ci,
    check_test,
    holm,
    paired_test,
)

nan = math.nan
BEST = {s: 1.0 + 0.5 * s for s in range(6)}  # six paired seeds; the other arm adds a difference per seed


def _other(diffs: list[float]) -> dict[int, float]:
    return {s: BEST[s] + d for s, d in enumerate(diffs)}


@pytest.mark.parametrize(
    ("diffs", "hand"),
    [
        # Ranks of |d| are 1..6; W+ sums the ranks of the positive differences; the exact null
        # distribution gives each of the 2^6 = 64 sign patterns the same probability.
        pytest.param([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 1 / 64, id="all-worse"),  # W+ = 21: only all-positive
        pytest.param([-0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 2 / 64, id="best-once"),  # W+ = 20: {} or {1} negative
        pytest.param([0.1, 0.2, -0.3, 0.4, 0.5, 0.6], 5 / 64, id="rank-3-negative"),  # W+ = 18: 5 sets sum ≤ 3
        pytest.param([-0.1, -0.2, -0.3, -0.4, -0.5, -0.6], 1.0, id="all-better"),
    ],
)
def test_wilcoxon_p_values_are_scipys_exact_one_sided_ones(diffs: list[float], hand: float) -> None:
    got = paired_test(BEST, _other(diffs))
    assert (got.test, got.n) == ("wilcoxon", 6)
    assert got.p_value == pytest.approx(hand)
    expected = stats.wilcoxon(diffs, alternative="greater", method="exact").pvalue
    assert got.p_value == pytest.approx(expected)


def test_wilcoxon_drops_zero_differences_and_says_p_1_when_all_are_zero() -> None:
    """A seed on which both arms tie is dropped (zero_method="wilcox"): five positive differences
    remain, p = 1/32, though six seeds are paired."""
    got = paired_test(BEST, _other([0.0, 0.1, 0.2, 0.3, 0.4, 0.5]))
    assert got.n == 6
    assert got.p_value == pytest.approx(1 / 32)
    assert got.p_value == pytest.approx(stats.wilcoxon([0.1, 0.2, 0.3, 0.4, 0.5], alternative="greater").pvalue)
    assert paired_test(BEST, dict(BEST)) == PairedTest("wilcoxon", 6, 1.0)


def test_wilcoxon_round_off_does_not_split_a_tie() -> None:
    """0.3 − 0.1 and 0.2 − 0.0 differ in the last bit; rounded, they tie at rank 1.5 and share it."""
    best = {0: 0.1, 1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0}
    other = {0: 0.3, 1: 0.2, 2: -0.3, 3: 0.4, 4: 0.5}
    assert other[0] - best[0] != other[1] - best[1]
    tied = stats.wilcoxon([0.2, 0.2, -0.3, 0.4, 0.5], alternative="greater", method="exact").pvalue
    assert paired_test(best, other).p_value == pytest.approx(tied)


def test_below_five_paired_seeds_no_wilcoxon_test_is_made() -> None:
    """Four seeds, all worse: the exact test's smallest one-sided p is 1/16 > 0.05, so none is made.
    Only seeds both arms finished count: seed 5 is missing on one side, seed 4 is NaN."""
    four = {0: 2.0, 1: 3.0, 2: 4.0, 3: 5.0, 4: nan}
    got = paired_test(BEST, four)
    assert got == PairedTest("wilcoxon", 4, None)
    assert not got.tested
    assert stats.wilcoxon([1.0, 1.5, 2.0, 2.5], alternative="greater", method="exact").pvalue == pytest.approx(1 / 16)


def test_the_t_option_is_scipys_paired_t_test_from_three_seeds() -> None:
    got = paired_test({0: 3.5, 1: 2.0, 2: 3.0}, {0: 4.0, 1: 3.0, 2: 5.0}, "t")
    assert (got.test, got.n) == ("t", 3)
    assert got.p_value == pytest.approx(0.5 - math.sqrt(7) / 6)  # differences 0.5, 1, 2: t = √7, 2 dof
    assert got.p_value == pytest.approx(stats.ttest_rel([4.0, 3.0, 5.0], [3.5, 2.0, 3.0], alternative="greater").pvalue)
    assert paired_test({0: 1.0, 1: 1.0}, {0: 2.0, 1: 2.0}, "t") == PairedTest("t", 2, None)
    assert paired_test({0: 1, 1: 1, 2: 1}, {0: 1.5, 1: 1.5, 2: 1.5}, "t") == PairedTest("t", 3, 0.0)  # zero variance
    assert paired_test({0: 1, 1: 1, 2: 1}, {0: 0.5, 1: 0.5, 2: 0.5}, "t") == PairedTest("t", 3, 1.0)


def test_an_unknown_test_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown test 'ranksum'; known: wilcoxon, t"):
        paired_test(BEST, BEST, "ranksum")
    assert check_test("t") == "t"


@pytest.mark.parametrize(
    ("raw", "adjusted"),
    [
        # Sorted 0.01, 0.03, 0.04 times 3, 2, 1: 0.03, 0.06, 0.04 → running maximum 0.03, 0.06, 0.06.
        ([0.01, 0.04, 0.03], [0.03, 0.06, 0.06]),
        # Sorted 0.001, 0.02, 0.04, 0.5 times 4, 3, 2, 1: 0.004, 0.06, 0.08, 0.5.
        ([0.04, 0.001, 0.02, 0.5], [0.08, 0.004, 0.06, 0.5]),
        ([0.5, 0.6], [1.0, 1.0]),  # 2 × 0.5 = 1, 1 × 0.6 raised to the running maximum 1: capped at 1
        ([0.02], [0.02]),  # a family of one is not adjusted
        ([], []),
    ],
)
def test_holm_by_hand(raw: list[float], adjusted: list[float]) -> None:
    assert holm(raw) == pytest.approx(adjusted)


def test_holm_refuses_values_that_are_not_p_values() -> None:
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\], got 1.5"):
        holm([0.1, 1.5])
    with pytest.raises(ValueError, match=r"got nan"):
        holm([nan])


def test_bootstrap_ci_is_scipys_bca_interval_with_the_fixed_seed() -> None:
    values = [1.521, 1.553, 1.507, 1.564, 1.538, 1.612]
    low, high = bootstrap_ci(values)
    expected = stats.bootstrap(
        (np.array(values),),
        np.mean,
        confidence_level=CONFIDENCE,
        method="BCa",
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    ).confidence_interval
    assert [low, high] == pytest.approx([expected.low, expected.high])
    assert low < np.mean(values) < high
    assert low >= min(values)
    assert high <= max(values)
    assert bootstrap_ci(values) == (low, high)  # the same values give the same interval, call after call
    assert bootstrap_ci(values, seed=BOOTSTRAP_SEED + 1) != (low, high)  # the seed is the one used


def test_bootstrap_ci_leaves_out_missing_values_and_needs_two() -> None:
    assert bootstrap_ci([1.52, nan, 1.55, 1.51, 1.56, 1.53]) == bootstrap_ci([1.52, 1.55, 1.51, 1.56, 1.53])
    assert all(math.isnan(v) for v in bootstrap_ci([1.5]))
    assert all(math.isnan(v) for v in bootstrap_ci([1.5, nan]))


def test_bootstrap_ci_of_equal_values_falls_back_to_the_percentile_interval() -> None:
    """BCa is undefined when every value is the same (scipy warns and returns NaN); every resampled
    mean is that value, so the percentile interval is the point itself."""
    assert list(bootstrap_ci([2.3, 2.3, 2.3, 2.3, 2.3])) == pytest.approx([2.3, 2.3])
