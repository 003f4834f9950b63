"""Aggregates against numbers worked out by hand (tests/report_fixtures.py says how)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from report_fixtures import make_runs
from scipy import stats

from hpobench_stn.reporting.aggregate import (
    CATEGORIES,
    bands,
    best_so_far_at,
    budget_table,
    curves,
    summarise,
    time_grid,
    time_to_target,
)
from hpobench_stn.reporting.load import Runs, arm_order
from hpobench_stn.reporting.significance import bootstrap_ci, holm
from hpobench_stn.reporting.tables import _evaluations

nan = math.nan


def test_best_so_far_is_a_step_function_from_the_end_of_each_trial() -> None:
    got = best_so_far_at(np.array([10.0, 20.0, 30.0]), np.array([nan, 4.0, 3.0]), np.array([0, 10, 19.9, 20, 35]))
    np.testing.assert_array_equal(got, [nan, nan, nan, 4.0, 3.0])  # the failed first trial counts for nothing
    np.testing.assert_array_equal(best_so_far_at(np.array([]), np.array([]), np.array([0.0, 5.0])), [nan, nan])


def test_best_so_far_refuses_unordered_or_mismatched_trials() -> None:
    with pytest.raises(ValueError, match="non-decreasing"):
        best_so_far_at(np.array([2.0, 1.0]), np.array([1.0, 1.0]), np.array([1.0]))
    with pytest.raises(ValueError, match=r"1-D and alike, got \(2,\) and \(1,\)"):
        best_so_far_at(np.array([1.0, 2.0]), np.array([1.0]), np.array([1.0]))


def test_time_grid_linear_and_log() -> None:
    np.testing.assert_allclose(time_grid(30, 4), [0, 10, 20, 30])
    np.testing.assert_allclose(time_grid(1000, 4, log=True, start_s=1), [1, 10, 100, 1000])
    np.testing.assert_allclose(time_grid(1000, 2, log=True), [1, 1000])  # default start: budget / 1000
    with pytest.raises(ValueError, match="start_s must lie in"):
        time_grid(10, 3, log=True, start_s=10)
    with pytest.raises(ValueError, match="points must be >= 2"):
        time_grid(10, 1)
    with pytest.raises(ValueError, match="budget_s must be > 0, got 0"):
        time_grid(0, 3)


def test_curves_put_every_run_on_its_tasks_grid() -> None:
    table = curves(make_runs(), points=4)
    a0 = table[(table["arm"] == "a") & (table["seed"] == 0)]
    np.testing.assert_array_equal(a0["time_s"], [0, 10, 20, 30])
    np.testing.assert_array_equal(a0["best"], [nan, 5, 4, 4])
    a2 = table[(table["arm"] == "a") & (table["seed"] == 2)]
    np.testing.assert_array_equal(a2["best"], [nan, nan, nan, 5])  # 12 s: failed; 24 s: 5
    log = curves(make_runs(), points=3, log=True)
    assert log["time_s"].min() == pytest.approx(5.0)  # the earliest first validation (b, 5 s)
    assert log["time_s"].max() == pytest.approx(30.0)


def test_bands_are_mean_and_sem_where_every_seed_has_validated() -> None:
    table = bands(curves(make_runs(), points=4))
    a = table[table["arm"] == "a"]
    # t = 10 and 20: seed 2 has no value yet, so no band; t = 30: values 4, 3, 5.
    assert list(a["time_s"]) == [30.0]
    assert a["mean"].iloc[0] == pytest.approx(4.0)
    assert a["sem"].iloc[0] == pytest.approx(1.0 / math.sqrt(3))
    b = table[table["arm"] == "b"].set_index("time_s")
    # t = 10: 3.5, 2, 4.2 → mean 9.7/3; t = 20 and 30: 3.5, 2, 3.
    assert list(b.index) == [10.0, 20.0, 30.0]
    assert b.loc[10.0, "mean"] == pytest.approx(9.7 / 3)
    assert b.loc[30.0, "mean"] == pytest.approx(17 / 6)
    assert b.loc[30.0, "sem"] == pytest.approx(math.sqrt(7 / 12) / math.sqrt(3))
    assert set(b["n"]) == {3}


def test_time_to_target_is_the_end_of_the_first_trial_at_or_below_it() -> None:
    assert time_to_target(np.array([10, 20, 30]), np.array([5, 4, 4]), 4.0) == 20
    assert time_to_target(np.array([12, 24]), np.array([nan, 5]), 4.0) == math.inf


def test_summary_by_hand() -> None:
    s = summarise(make_runs(), baselines={"random"}).set_index("arm")
    assert list(s.index) == ["a", "b"]
    a, b = s.loc["a"], s.loc["b"]
    assert (a["n"], a["best_val_mean"], a["best_val_sd"]) == (3, pytest.approx(4.0), pytest.approx(1.0))
    assert b["best_val_mean"] == pytest.approx(17 / 6)
    assert b["best_val_sd"] == pytest.approx(math.sqrt(7 / 12))
    assert a["test_mean"] == pytest.approx(4.25)
    assert (a["trials_mean"], a["complete_mean"], a["failed_mean"]) == (
        pytest.approx(7 / 3),
        pytest.approx(4 / 3),
        pytest.approx(1 / 3),
    )
    # The target is the baseline a's mean, 4: a reaches it at 20, 25, never → median 25, 2 of 3;
    # b at 10, 5, 16 → median 10, 3 of 3.
    assert a["target"] == b["target"] == 4.0
    assert (a["ttt_median_s"], a["ttt_reached"]) == (25.0, 2)
    assert (b["ttt_median_s"], b["ttt_reached"]) == (10.0, 3)
    assert bool(b["is_best"])
    assert not bool(a["is_best"])
    assert b["not_worse"] is True
    # The default test is the exact Wilcoxon test, which needs five paired seeds: with three, none is made.
    assert (a["test_name"], a["test_n"], a["not_worse"]) == ("wilcoxon", 3, None)
    assert b["test_name"] == "wilcoxon"
    assert all(math.isnan(row[col]) for row in (a, b) for col in ("p_value", "p_holm"))


def test_summary_with_the_t_option() -> None:
    """a − b on the test loss: 0.5, 1, 2 (report_fixtures): p = 1/2 − √7/6 ≈ 0.059, not below 0.05; a
    family of one, so Holm leaves it as it is."""
    s = summarise(make_runs(), baselines={"random"}, test="t").set_index("arm")
    assert set(s["test_name"]) == {"t"}
    assert s.loc["a", "p_value"] == pytest.approx(0.5 - math.sqrt(7) / 6)
    assert s.loc["a", "p_holm"] == s.loc["a", "p_value"]
    assert s.loc["a", "not_worse"] is True
    assert math.isnan(s.loc["b", "p_value"])
    with pytest.raises(ValueError, match="unknown test 'welch'"):
        summarise(make_runs(), baselines={"random"}, test="welch")


# Six paired seeds: the best arm, and three arms whose test-loss differences from it are known. The
# exact one-sided p-values are 1/64 (every difference positive), 2/64 (the smallest one negative) and
# 5/64 (the third smallest negative): tests/test_significance.py works them out. Holm over the three:
# sorted 1/64, 2/64, 5/64 times 3, 2, 1 → 3/64 ≈ 0.047, 4/64 = 0.0625, 5/64 ≈ 0.078.
SIX_SEEDS = {
    "a": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    "b": [-0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    "c": [0.1, 0.2, -0.3, 0.4, 0.5, 0.6],
    "best": [0.0] * 6,
}


def _six_seed_runs() -> Runs:
    trials = {
        (arm, seed): ([10.0], [2.0 + 0.25 * seed + d])
        for arm, diffs in SIX_SEEDS.items()
        for seed, d in enumerate(diffs)
    }
    return make_runs(trials)


def test_six_seeds_wilcoxon_p_values_are_scipys_and_holm_sets_the_markers() -> None:
    s = summarise(_six_seed_runs(), baselines=set()).set_index("arm")
    assert bool(s.loc["best", "is_best"])
    raw = {arm: stats.wilcoxon(SIX_SEEDS[arm], alternative="greater", method="exact").pvalue for arm in "abc"}
    assert [s.loc[arm, "p_value"] for arm in "abc"] == pytest.approx([1 / 64, 2 / 64, 5 / 64])
    assert [s.loc[arm, "p_value"] for arm in "abc"] == pytest.approx([raw[arm] for arm in "abc"])
    assert [s.loc[arm, "p_holm"] for arm in "abc"] == pytest.approx(holm([raw[arm] for arm in "abc"]))
    assert [s.loc[arm, "p_holm"] for arm in "abc"] == pytest.approx([3 / 64, 4 / 64, 5 / 64])
    assert set(s["test_n"]) == {6}
    # a: adjusted 0.047 < 0.05, worse. b: raw 0.031 < 0.05, but 0.0625 after Holm: not shown to be worse.
    assert [s.loc[arm, "not_worse"] for arm in ("a", "b", "c", "best")] == [False, True, True, True]
    assert math.isnan(s.loc["best", "p_value"])
    assert math.isnan(s.loc["best", "p_holm"])


def test_every_mean_has_its_bootstrap_interval() -> None:
    s = summarise(_six_seed_runs(), baselines=set()).set_index("arm")
    for arm, diffs in SIX_SEEDS.items():
        val = [2.0 + 0.25 * seed + d for seed, d in enumerate(diffs)]
        assert (s.loc[arm, "best_val_ci_low"], s.loc[arm, "best_val_ci_high"]) == bootstrap_ci(val)
        assert (s.loc[arm, "test_ci_low"], s.loc[arm, "test_ci_high"]) == bootstrap_ci([v + 0.25 for v in val])
        assert s.loc[arm, "best_val_ci_low"] < s.loc[arm, "best_val_mean"] < s.loc[arm, "best_val_ci_high"]
        assert s.loc[arm, "test_ci_low"] < s.loc[arm, "test_mean"] < s.loc[arm, "test_ci_high"]
    one_seed = summarise(make_runs({("a", 0): ([10.0], [2.0])}), baselines=set())
    assert one_seed[["best_val_ci_low", "best_val_ci_high", "test_ci_low", "test_ci_high"]].isna().all(axis=None)


def test_without_baselines_the_target_is_the_best_arm() -> None:
    s = summarise(make_runs(), baselines=set()).set_index("arm")
    assert s.loc["a", "target"] == pytest.approx(17 / 6)
    # Without baselines the target is the best arm's mean, 17/6 ≈ 2.83: a's best values never get there.
    assert s.loc["a", "ttt_reached"] == 0
    assert s.loc["a", "ttt_median_s"] == math.inf


def test_a_significantly_worse_arm_is_marked() -> None:
    trials = {(arm, seed): ([10.0], [value]) for seed in range(3) for arm, value in (("a", 2.0 + seed), ("b", 1.0))}
    # a − b = 1, 2, 3: t = 2/(1/√3) = 2√3, p ≈ 0.0370 with 2 degrees of freedom.
    s = summarise(make_runs(trials), baselines={"random"}, test="t").set_index("arm")
    assert s.loc["a", "p_value"] == pytest.approx(0.5 - 2 * math.sqrt(3) / (2 * math.sqrt(2 + 12)))
    assert s.loc["a", "not_worse"] is False


def test_arm_order_puts_shipped_methods_first_then_natural_order() -> None:
    arms = ["stn_10to1", "stn", "zeta", "random", "stn_2to1", "stn_fixed_sigma_0.5", "stn_fixed_sigma_0.1", "grid"]
    assert arm_order(arms) == [
        "grid",
        "random",
        "stn",
        "stn_2to1",
        "stn_10to1",
        "stn_fixed_sigma_0.1",
        "stn_fixed_sigma_0.5",
        "zeta",
    ]


def test_summary_is_a_frame_with_the_documented_columns() -> None:
    from hpobench_stn.reporting.aggregate import SUMMARY_COLUMNS

    s = summarise(make_runs(), baselines={"random"})
    assert list(s.columns) == SUMMARY_COLUMNS
    assert isinstance(s, pd.DataFrame)


def test_budget_categories_add_up_to_the_budget() -> None:
    table = budget_table(make_runs()).set_index("arm")
    # a: train 27 → training; validate 2; ask 1 → method; 30 charged of 30: no idle.
    assert table.loc["a", list(CATEGORIES)].tolist() == [27.0, 2.0, 1.0, 0.0, 0.0]
    # b: train 20, hyper 6 → method, validate 3: 29 charged, 1 s idle.
    assert table.loc["b", list(CATEGORIES)].tolist() == [20.0, 3.0, 6.0, 0.0, 1.0]


def test_the_best_arm_is_the_lowest_mean_test_loss_at_the_incumbent_not_the_lowest_validation() -> None:
    """b has the lower validation losses, a the lower test losses: a is best, and b's paired test is
    on the test losses (b - a = 1 on every seed: zero variance, so p = 0)."""
    runs = make_runs()
    frame = runs.runs.copy()
    frame.loc[frame["arm"] == "a", "test_at_best"] = [1.0, 2.0, 3.0]
    frame.loc[frame["arm"] == "b", "test_at_best"] = [2.0, 3.0, 4.0]
    s = summarise(replace(runs, runs=frame), {"random"}, {"stn"}, test="t").set_index("arm")
    assert s.loc["b", "best_val_mean"] < s.loc["a", "best_val_mean"]
    assert bool(s.loc["a", "is_best"])
    assert not bool(s.loc["b", "is_best"])
    assert (s.loc["b", "test_name"], s.loc["b", "p_value"], s.loc["b", "not_worse"]) == ("t", 0.0, False)
    assert (s.loc["a", "record_kind"], s.loc["b", "record_kind"]) == ("trial", "validation")


def test_summary_counts_trials_by_how_they_stopped() -> None:
    """Arm a's trials: seed 0 one at the cap and two stopped by patience, seed 1 one pruned and one at
    the cap, seed 2 one failed and one at the cap: per run 3 / 3 at the cap, 2 / 3 by patience, 1 / 3
    pruned, 1 / 3 failed."""
    runs = make_runs()
    trials = runs.trials
    stopped = (trials["arm"] == "a") & (trials["seed"] == 0) & trials["index"].isin([1, 2])
    trials.loc[stopped, "status"] = "early_stopped"
    trials.loc[(trials["arm"] == "a") & (trials["seed"] == 1) & (trials["index"] == 0), "status"] = "pruned"
    a = summarise(runs, baselines={"random"}).set_index("arm").loc["a"]
    assert a["capped_mean"] == pytest.approx(3 / 3)
    assert a["patience_mean"] == pytest.approx(2 / 3)
    assert a["pruned_mean"] == pytest.approx(1 / 3)
    assert a["failed_mean"] == pytest.approx(1 / 3)
    assert _evaluations(a) == "2.3 trials (1.0 / 0.7 / 0.3 / 0.3)"
