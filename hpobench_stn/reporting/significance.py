"""The statistics behind a summary's markers: paired tests, Holm's correction, bootstrap intervals.

* :func:`paired_test`: a one-sided paired test of one arm against the best arm of its task, by seed:
  the exact Wilcoxon signed-rank test (the default, from :data:`WILCOXON_MIN_N` paired seeds) or, as a
  labelled option, the paired t-test (from :data:`T_TEST_MIN_N`).
* :func:`holm`: Holm's step-down adjusted p-values across the arms tested within one task.
* :func:`bootstrap_ci`: a seeded 95 % bootstrap confidence interval of a mean over seeds.

Every p-value and interval comes from :mod:`scipy.stats` (``wilcoxon``, ``ttest_1samp``,
``bootstrap``); nothing here resamples by hand. Why these choices: ``docs/reports.md``, the rules.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

__all__ = [
    "ALPHA",
    "BOOTSTRAP_SEED",
    "CONFIDENCE",
    "MIN_N",
    "TESTS",
    "T_TEST_MIN_N",
    "WILCOXON_MIN_N",
    "PairedTest",
    "TestName",
    "bootstrap_ci",
    "check_test",
    "holm",
    "paired_test",
]

TestName = Literal["wilcoxon", "t"]
TESTS: tuple[TestName, ...] = get_args(TestName)  # the default first

ALPHA = 0.05  # one-sided level of "significantly worse than the best", after Holm's correction
WILCOXON_MIN_N = 5  # below this the exact one-sided signed-rank test cannot reach p < 0.05 (n = 4: p >= 1/16)
T_TEST_MIN_N = 3  # the t option: below this no test is made
MIN_N: dict[TestName, int] = {"wilcoxon": WILCOXON_MIN_N, "t": T_TEST_MIN_N}

CONFIDENCE = 0.95  # of the bootstrap interval of each mean
BOOTSTRAP_SEED = 0  # every interval draws its resamples from a fresh generator with this seed
BOOTSTRAP_RESAMPLES = 9999  # scipy's default
DIFF_DECIMALS = 12  # paired differences are rounded to this many decimals before ranking (see paired_test)


def check_test(test: str) -> TestName:
    """``test`` if it names a known test; otherwise a :class:`ValueError` that lists them."""
    for known in TESTS:
        if test == known:
            return known
    raise ValueError(f"unknown test {test!r}; known: {', '.join(TESTS)}")


@dataclass(frozen=True)
class PairedTest:
    """A one-sided paired test of "the other arm's loss is higher than the best arm's".

    ``test`` names the test asked for (``"wilcoxon"`` or ``"t"``); ``n`` counts the seeds both arms
    have a finite value for. ``p_value`` is the raw one-sided p-value, None when ``n`` is below the
    test's minimum (:data:`MIN_N`): then no test was made and nothing is claimed either way.
    """

    test: TestName
    n: int
    p_value: float | None

    @property
    def tested(self) -> bool:
        return self.p_value is not None


def paired_test(best: Mapping[int, float], other: Mapping[int, float], test: str = "wilcoxon") -> PairedTest:
    """Test ``other`` against ``best`` (seed → loss) over the seeds both have a finite value for.

    ``"wilcoxon"``: ``scipy.stats.wilcoxon`` on the differences ``other − best``, ``method="exact"``,
    ``alternative="greater"``, ``zero_method="wilcox"``: a seed on which both arms have the same loss
    says nothing about which is better and is dropped, so the test runs on the non-zero differences
    (with fewer than 5 of those it cannot reach p < 0.05). The differences are rounded to
    :data:`DIFF_DECIMALS` decimals first, so that float round-off neither splits a tie nor turns an
    equal pair into a tiny difference; ties left among the absolute differences get average ranks,
    and scipy then rounds the statistic conservatively. All differences zero: p = 1.

    ``"t"``: ``scipy.stats.ttest_1samp`` on the differences, ``alternative="greater"``. Equal
    differences (zero variance, where the statistic is ±inf or undefined) give p = 0 when they are
    positive, else 1.
    """
    name = check_test(test)
    seeds = sorted(s for s in set(best) & set(other) if math.isfinite(best[s]) and math.isfinite(other[s]))
    n = len(seeds)
    if n < MIN_N[name]:
        return PairedTest(name, n, None)
    diffs = np.round(np.array([other[s] - best[s] for s in seeds], dtype=float), DIFF_DECIMALS)
    if name == "wilcoxon":
        if not np.any(diffs):
            return PairedTest(name, n, 1.0)  # identical on every seed: no evidence of a difference
        result = stats.wilcoxon(diffs, alternative="greater", zero_method="wilcox", method="exact")
        return PairedTest(name, n, float(result.pvalue))
    if np.all(diffs == diffs[0]):
        return PairedTest(name, n, 0.0 if diffs[0] > 0 else 1.0)
    return PairedTest(name, n, float(stats.ttest_1samp(diffs, 0.0, alternative="greater").pvalue))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given.

    With the m p-values sorted ascending, p₍ᵢ₎ becomes ``max over j ≤ i of min(1, (m − j + 1) · p₍ⱼ₎)``
    (i, j from 1): the adjusted values keep the order of the raw ones and never exceed 1. Rejecting
    where the adjusted value is below α keeps the family-wise error rate at α, whatever the dependence
    between the tests. Raises :class:`ValueError` for a value outside [0, 1] (or NaN).
    """
    p = np.asarray(p_values, dtype=float)
    bad = [v for v in p.tolist() if not 0.0 <= v <= 1.0]
    if bad:
        raise ValueError(f"p-values must lie in [0, 1], got {bad[0]!r}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return [float(v) for v in adjusted]


def bootstrap_ci(values: ArrayLike, *, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """A :data:`CONFIDENCE` bootstrap interval of the mean of ``values`` (non-finite ones left out).

    ``scipy.stats.bootstrap`` with ``method="BCa"`` (bias-corrected and accelerated: it corrects the
    percentile interval for the bias and skew of the resampled means, and loss values over seeds are
    often skewed by one bad seed) and :data:`BOOTSTRAP_RESAMPLES` resamples drawn from
    ``np.random.default_rng(seed)``, fresh for each call, so an interval depends only on its values
    (and their order: the summary passes them in seed order) and a regenerated report is
    byte-identical. Where BCa cannot be computed (scipy warns and returns NaN, e.g. when every value
    is the same) the percentile interval of the same resamples is used. Fewer than two values: no
    interval, ``(nan, nan)``.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return (math.nan, math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa's DegenerateDataWarning: the NaN it returns says the same
        ci = _bootstrap(x, "BCa", seed)
    if not (math.isfinite(ci[0]) and math.isfinite(ci[1])):
        ci = _bootstrap(x, "percentile", seed)
    return ci


def _bootstrap(x: np.ndarray, method: str, seed: int) -> tuple[float, float]:
    result = stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=CONFIDENCE,
        method=method,
        rng=np.random.default_rng(seed),
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))
