"""Stage 2 of a report: aggregates and tests over the loaded runs, the numbers behind every table and figure.

* :func:`best_so_far_at`: a run's best validation loss so far as a step function of charged time.
* :func:`curves` / :func:`bands`: those step functions on one common time grid per task, and their
  mean ± standard error across seeds, drawn only where every seed of the arm has validated once.
* :func:`summarise`: per task × arm, the test loss at the validation-selected incumbent (the headline:
  mean, sd, bootstrap interval of the mean, n over seeds) and its paired test against the best arm,
  Holm-corrected across the task's arms (:mod:`.significance`), the final best validation beside it,
  the trials (or a gray-box method's validations), and the time to reach the best baseline's final
  validation value.
* :func:`budget_table`: where each arm's budget went (training, validation, the method, the harness, idle).

Arms come in the order of :attr:`hpobench_stn.reporting.load.Runs.arms`.

The rules (what a band is, which test is used and from how many seeds, what "time to target" means)
are stated in ``docs/reports.md``; the functions here and in :mod:`.significance` are their single
implementation.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np
import pandas as pd

from .load import Runs
from .significance import ALPHA, PairedTest, TestName, bootstrap_ci, check_test, holm, paired_test

__all__ = [
    "CATEGORIES",
    "PHASE_GROUPS",
    "SUMMARY_COLUMNS",
    "bands",
    "best_so_far_at",
    "budget_table",
    "curves",
    "summarise",
    "time_grid",
    "time_to_target",
]

# How the clock's phases are reported: what the budget went to.
PHASE_GROUPS: dict[str, str] = {
    "data": "training",
    "train": "training",
    "validate": "validation",
    "ask": "method",  # proposing configs (e.g. fitting a GP)
    "tell": "method",
    "hyper": "method",  # STN's hyper-steps
    "prune": "method",  # a multi-fidelity method's decision after each validation
    "harness": "harness",  # charged time outside any phase: the harness's own bookkeeping
}
# Phases a method invents fall under "method"; "idle" is the part of the budget a run did not use.
CATEGORIES = ("training", "validation", "method", "harness", "idle")


def best_so_far_at(elapsed_s: np.ndarray, best_so_far: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The best-so-far of the last trial finished by each grid time; NaN before the first validation.

    ``elapsed_s`` and ``best_so_far`` are one run's trials in order (``best_so_far`` NaN until a trial
    validates). A value is counted from the moment its trial ends: a step function, continuous from the
    right, never interpolated between trials (a method has nothing better before its trial ends).
    """
    t = np.asarray(elapsed_s, dtype=float)
    b = np.asarray(best_so_far, dtype=float)
    if t.shape != b.shape or t.ndim != 1:
        raise ValueError(f"elapsed_s and best_so_far must be 1-D and alike, got {t.shape} and {b.shape}")
    if np.any(np.diff(t) < 0):
        raise ValueError("elapsed_s must be non-decreasing (trials in the order they ended)")
    known = ~np.isnan(b)
    t, b = t[known], b[known]
    idx = np.searchsorted(t, np.asarray(grid, dtype=float), side="right") - 1
    return np.where(idx >= 0, b[np.clip(idx, 0, None)] if len(b) else np.nan, np.nan)


def time_grid(budget_s: float, points: int = 200, *, log: bool = False, start_s: float | None = None) -> np.ndarray:
    """``points`` times from 0 (``log``: from ``start_s``, default budget/1000) to ``budget_s`` inclusive."""
    if not budget_s > 0:
        raise ValueError(f"budget_s must be > 0, got {budget_s!r}")
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points!r}")
    if not log:
        return np.linspace(0.0, budget_s, points)
    start = budget_s / 1000 if start_s is None else start_s
    if not 0 < start < budget_s:
        raise ValueError(f"start_s must lie in (0, budget_s={budget_s}), got {start!r}")
    return np.geomspace(start, budget_s, points)


def curves(runs: Runs, points: int = 200, *, log: bool = False) -> pd.DataFrame:
    """Every run's best-so-far on its task's grid: columns ``task, arm, seed, time_s, best``.

    A task's grid spans its largest budget; on a log grid it starts at the earliest first validation of
    any of its runs (or budget/1000).
    """
    frames = []
    for task, task_runs in runs.runs.groupby("task", sort=True):
        budget = float(task_runs["budget_s"].max())
        trials = runs.trials[runs.trials["task"] == task]
        start = None
        if log:
            validated = trials.loc[trials["best_so_far"].notna(), "elapsed_s"]
            first = float(validated.min()) if len(validated) else math.nan
            start = first if 0 < first < budget else None
        grid = time_grid(budget, points, log=log, start_s=start)
        for (arm, seed), run_trials in trials.groupby(["arm", "seed"], sort=True):
            run_trials = run_trials.sort_values("index")
            values = best_so_far_at(
                run_trials["elapsed_s"].to_numpy(), run_trials["best_so_far"].to_numpy(dtype=float), grid
            )
            frames.append(pd.DataFrame({"task": task, "arm": arm, "seed": seed, "time_s": grid, "best": values}))
    columns = ["task", "arm", "seed", "time_s", "best"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def bands(curve_table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error across seeds at each grid time: ``task, arm, time_s, n, mean, sem``.

    Only grid times at which every seed of the arm has a value are kept, so a line never jumps when a
    late seed's first trial ends; ``sem`` is ``sd / sqrt(n)`` with ``ddof=1`` (NaN for one seed).
    """
    seeds = curve_table.groupby(["task", "arm"])["seed"].nunique().rename("n_seeds")
    g = curve_table.dropna(subset=["best"]).groupby(["task", "arm", "time_s"], sort=True)["best"]
    out = g.agg(n="count", mean="mean", sd="std").reset_index().join(seeds, on=["task", "arm"])
    out = out[out["n"] == out["n_seeds"]].copy()
    out["sem"] = out["sd"] / np.sqrt(out["n"])
    return out[["task", "arm", "time_s", "n", "mean", "sem"]].reset_index(drop=True)


def time_to_target(elapsed_s: np.ndarray, best_so_far: np.ndarray, target: float) -> float:
    """Charged seconds at the end of the first trial whose best-so-far is ≤ ``target``; inf if never."""
    b = np.asarray(best_so_far, dtype=float)
    hit = np.flatnonzero(~np.isnan(b) & (b <= target))
    return float(np.asarray(elapsed_s, dtype=float)[hit[0]]) if len(hit) else math.inf


SUMMARY_COLUMNS = [
    "task",
    "preset",
    "arm",
    "method",
    "n",
    "best_val_mean",
    "best_val_sd",
    "best_val_ci_low",
    "best_val_ci_high",
    "test_mean",
    "test_sd",
    "test_ci_low",
    "test_ci_high",
    "trials_mean",
    "complete_mean",
    "failed_mean",
    "capped_mean",
    "patience_mean",
    "pruned_mean",
    "record_kind",
    "target",
    "ttt_median_s",
    "ttt_reached",
    "is_best",
    "test_name",
    "test_n",
    "p_value",
    "p_holm",
    "not_worse",
]


def _tests(
    by_arm: dict[str, dict[int, float]], best_arm: str | None, test: TestName
) -> dict[str, tuple[PairedTest, float | None]]:
    """Every arm's paired test against ``best_arm`` and its Holm-adjusted p-value; the family is the
    arms of the task that were tested (the best arm and arms with too few paired seeds are not in it)."""
    best = by_arm.get(best_arm, {}) if best_arm is not None else {}
    raw = {
        arm: PairedTest(test, len(values), None) if arm == best_arm else paired_test(best, values, test)
        for arm, values in by_arm.items()
    }
    p_values = {arm: t.p_value for arm, t in raw.items() if t.p_value is not None}
    adjusted = dict(zip(p_values, holm(list(p_values.values())), strict=True))
    return {arm: (t, adjusted.get(arm)) for arm, t in raw.items()}


def summarise(
    runs: Runs,
    baselines: Collection[str],
    validation_methods: Collection[str] = frozenset(),
    *,
    test: str = "wilcoxon",
) -> pd.DataFrame:
    """One row per task × arm (columns :data:`SUMMARY_COLUMNS`), arms in ``runs.arms`` order.

    **The headline is the test loss at the incumbent**: the test loss of the checkpoint each run
    selected by its best validation loss (``test_mean``). ``is_best`` marks the arm with the lowest
    mean. Every other arm is tested against it on the test loss, paired by seed, with ``test``
    (``"wilcoxon"``, the default, or ``"t"``; :func:`~.significance.paired_test`), one-sided: is
    this arm's loss higher? ``test_name`` is that test on every row, ``test_n`` the paired seeds,
    ``p_value`` the raw p-value and ``p_holm`` the p-value adjusted by Holm's method across the arms
    of the task that were tested (:func:`~.significance.holm`); both are NaN for the best arm and
    where too few seeds are paired for the test. ``not_worse`` is True for the best arm and for arms
    with ``p_holm`` ≥ :data:`~.significance.ALPHA`, False below it, None where no test was made.
    Why test, not validation: a gray-box method (STN) fits λ to validation batches by gradient, so
    its validation loss is more optimistic than that of a method that only selects among configs
    (docs/reports.md).

    ``*_ci_low`` / ``*_ci_high``: the bootstrap interval of each mean over seeds
    (:func:`~.significance.bootstrap_ci`; NaN with fewer than two seeds).

    ``baselines`` names the *methods* whose arms set the time-to-target, which stays on validation
    (how the STN paper phrases it): the target of a task is the lowest mean final best validation
    among its baseline arms (among all arms when there is none). ``ttt_median_s`` is the median over
    seeds of :func:`time_to_target`, a seed that never reached the target counting as infinitely late
    (so the median is infinite unless more than half reached it); ``ttt_reached`` counts the seeds that
    did. ``record_kind`` is ``"validation"`` for the arms of ``validation_methods`` (whose records are
    periodic validations of one training run), else ``"trial"``.
    """
    name = check_test(test)
    rows = []
    for task, task_runs in runs.runs.groupby("task", sort=True):
        task_runs = task_runs.sort_values("seed", kind="stable")
        order = runs.ordered(task_runs["arm"])
        per_arm = [(arm, task_runs[task_runs["arm"] == arm]) for arm in order]
        means = task_runs.groupby("arm")["best_val"].mean()[order]
        base_arms = [a for a in means.index if task_runs.loc[task_runs["arm"] == a, "method"].iloc[0] in baselines]
        pool = means[base_arms] if base_arms else means
        target = float(pool.min()) if pool.notna().any() else math.nan
        tests = task_runs.groupby("arm")["test_at_best"].mean()[order]
        best_arm = tests.idxmin() if tests.notna().any() else None
        by_arm = {
            arm: dict(zip(arm_runs["seed"], arm_runs["test_at_best"].astype(float), strict=True))
            for arm, arm_runs in per_arm
        }
        tested = _tests(by_arm, best_arm, name)
        trials = runs.trials[runs.trials["task"] == task]
        for arm, arm_runs in per_arm:
            ttts, failed, capped, patience, pruned = [], [], [], [], []
            for seed in arm_runs["seed"]:
                t = trials[(trials["arm"] == arm) & (trials["seed"] == seed)].sort_values("index")
                ttts.append(time_to_target(t["elapsed_s"].to_numpy(), t["best_so_far"].to_numpy(dtype=float), target))
                failed.append(int((t["status"] == "failed").sum()))
                capped.append(int((t["status"] == "complete").sum()))
                patience.append(int((t["status"] == "early_stopped").sum()))
                pruned.append(int((t["status"] == "pruned").sum()))
            paired, p_holm = tested[arm]
            not_worse = True if arm == best_arm else None if p_holm is None else p_holm >= ALPHA
            best_val = arm_runs["best_val"].to_numpy(dtype=float)
            test_loss = arm_runs["test_at_best"].to_numpy(dtype=float)
            val_ci, test_ci = bootstrap_ci(best_val), bootstrap_ci(test_loss)
            rows.append(
                {
                    "task": task,
                    "preset": arm_runs["preset"].iloc[0],
                    "arm": arm,
                    "method": arm_runs["method"].iloc[0],
                    "n": int(arm_runs["best_val"].notna().sum()),
                    "best_val_mean": arm_runs["best_val"].mean(),
                    "best_val_sd": arm_runs["best_val"].std(ddof=1),
                    "best_val_ci_low": val_ci[0],
                    "best_val_ci_high": val_ci[1],
                    "test_mean": arm_runs["test_at_best"].mean(),
                    "test_sd": arm_runs["test_at_best"].std(ddof=1),
                    "test_ci_low": test_ci[0],
                    "test_ci_high": test_ci[1],
                    "trials_mean": arm_runs["n_trials"].mean(),
                    "complete_mean": arm_runs["n_complete"].mean(),
                    "failed_mean": float(np.mean(failed)),
                    "capped_mean": float(np.mean(capped)),
                    "patience_mean": float(np.mean(patience)),
                    "pruned_mean": float(np.mean(pruned)),
                    "record_kind": "validation" if arm_runs["method"].iloc[0] in validation_methods else "trial",
                    "target": target,
                    "ttt_median_s": float(np.median(ttts)) if ttts else math.nan,
                    "ttt_reached": int(np.isfinite(ttts).sum()),
                    "is_best": arm == best_arm,
                    "test_name": paired.test,
                    "test_n": paired.n,
                    "p_value": paired.p_value,
                    "p_holm": p_holm,
                    "not_worse": not_worse,
                }
            )
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    # True / False / None as Python objects: a column of only booleans would become numpy's bool dtype.
    out["not_worse"] = pd.Series([r["not_worse"] for r in rows], dtype=object)
    out[["p_value", "p_holm"]] = out[["p_value", "p_holm"]].astype(float)  # NaN where no test was made
    return out


def budget_table(runs: Runs) -> pd.DataFrame:
    """Mean charged seconds per task, arm and category (:data:`CATEGORIES`) over seeds."""
    r = runs.runs
    phase_cols = [c for c in r.columns if c.startswith("phase/")]
    out = r[["task", "arm"]].copy()
    for cat in CATEGORIES[:-1]:
        cols = [c for c in phase_cols if PHASE_GROUPS.get(c.removeprefix("phase/"), "method") == cat]
        out[cat] = r[cols].sum(axis=1) if cols else 0.0
    out["idle"] = (r["budget_s"] - r["elapsed_s"]).clip(lower=0.0)
    return out.groupby(["task", "arm"], sort=False)[list(CATEGORIES)].mean().reset_index()
