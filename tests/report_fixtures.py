"""Hand-made run tables for the report tests: numbers small enough to check by hand.

Task ``t``, budget 30 s, three paired seeds, two arms:

* ``a`` (method ``random``, a baseline): final best 4, 3, 5 → mean 4, sd 1.
* ``b`` (method ``stn``): final best 3.5, 2, 3 → mean 17/6, sd √(7/12).

The paired differences a − b are 0.5, 1, 2: mean 7/6, sd √(7/12), so the one-sided paired t statistic
is exactly √7 and, with 2 degrees of freedom, p = 1/2 − √7/6 ≈ 0.0590.
"""

from __future__ import annotations

import math

import pandas as pd

from hpobench_stn.reporting.load import Runs, arm_order

# (arm, seed) → (elapsed_s per trial, best_so_far per trial)
TRIALS: dict[tuple[str, int], tuple[list[float], list[float]]] = {
    ("a", 0): ([10, 20, 30], [5, 4, 4]),  # reaches the target 4 at 20 s
    ("a", 1): ([15, 25], [6, 3]),  # at 25 s
    ("a", 2): ([12, 24], [math.nan, 5]),  # never (its first trial failed: status "failed")
    ("b", 0): ([5, 10], [4.5, 3.5]),  # at 10 s
    ("b", 1): ([5], [2.0]),  # at 5 s
    ("b", 2): ([8, 16], [4.2, 3.0]),  # at 16 s
}
METHODS = {"a": "random", "b": "stn"}
PHASES = {"a": {"train": 27.0, "validate": 2.0, "ask": 1.0}, "b": {"train": 20.0, "hyper": 6.0, "validate": 3.0}}


def make_runs(trials: dict[tuple[str, int], tuple[list[float], list[float]]] = TRIALS) -> Runs:
    run_rows, trial_rows, schedule_rows = [], [], []
    for (arm, seed), (elapsed, best) in trials.items():
        phases = PHASES.get(arm, {"train": 30.0})
        run_rows.append(
            {
                "task": "t",
                "preset": "smoke",
                "arm": arm,
                "method": METHODS.get(arm, arm),
                "seed": seed,
                "budget_s": 30.0,
                "n_trials": len(elapsed),
                "n_complete": len(elapsed) - 1,
                "best_val": best[-1],
                "test_at_best": best[-1] + 0.25,
                "elapsed_s": sum(phases.values()),
                "wall_s": 31.0,
                "git_sha": "0123456789abcdef",
                "git_dirty": False,
                "device": "cpu (x86_64, 1 threads)",
                "started_at": f"2026-11-27T00:0{seed}:00Z",
                "command": "hpobench suite x",
                "options": "{}",
                **{f"phase/{k}": v for k, v in phases.items()},
            }
        )
        for i, (t, b) in enumerate(zip(elapsed, best, strict=True)):
            trial_rows.append(
                {
                    "task": "t",
                    "arm": arm,
                    "seed": seed,
                    "index": i,
                    "elapsed_s": t,
                    "val_loss": b,
                    "best_so_far": b,
                    "status": "failed" if math.isnan(b) else "complete",
                    "epochs": 0 if math.isnan(b) else 4,
                }
            )
        if METHODS.get(arm) == "stn":
            for step in (0, 10, 20):
                schedule_rows += [
                    {"task": "t", "arm": arm, "seed": seed, "step": step, "elapsed_s": step / 2, "name": n, "value": v}
                    for n, v in (("dropout", 0.1 + 0.01 * step + 0.02 * seed), ("sigma/dropout", 0.5))
                ]
    runs = pd.DataFrame(run_rows).sort_values(["task", "arm", "seed"], ignore_index=True)
    phase_cols = [c for c in runs.columns if c.startswith("phase/")]
    runs[phase_cols] = runs[phase_cols].fillna(0.0)
    trials_df = pd.DataFrame(trial_rows)
    return Runs(runs, trials_df, pd.DataFrame(schedule_rows), incomplete=0, arms=tuple(arm_order(runs["arm"])))
