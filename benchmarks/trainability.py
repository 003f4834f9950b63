"""Does a preset leave room to tune? Train configs drawn uniformly from the search space as black-box
trials would, and print what a reviewer asks of a comparison (issue 14).

For each seed: ``--configs`` configs drawn uniformly (each dimension on its sampling scale, as random
search draws them) plus the unregularised config (the space's defaults), each trained by
``Task.fit`` exactly as a black-box trial (the preset's epoch cap and patience, best checkpoint kept,
one CPU thread, wall clock, no deadline). Printed per trial: status, epochs, why it stopped, best
validation loss, seconds; then per seed and as the mean over seeds:

* non-finite: trials that FAILED (a non-finite loss);
* trained: trials whose best validation loss is at least ``--margin`` (0.3) nats below the best
  constant predictor's (CIFAR: ln 10; PTB: the add-one unigram model of the preset's training tokens,
  scored on its validation tokens: computed here and printed);
* patience: trials ended by patience, not by the epoch cap;
* median trial seconds, and how many trials a ``--budget`` (300 s) run holds at that median;
* room to tune: the unregularised config's early-stopped loss minus the best of the drawn configs
  (nats; for PTB also as a perplexity ratio).

``--set KEY=JSON`` overrides a field of the preset (calibration: ``--set lr=0.01 --set patience=5``).

    python benchmarks/trainability.py --task cifar_alexnet --preset cpu --configs 40 --seed 0 1 2
    python benchmarks/trainability.py --task ptb_lstm --preset cpu --configs 40 --seed 0 1 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import time
from typing import Any

import numpy as np
import torch

from hpobench_stn import Budget, BudgetTimer, FitResult, RunSeeds, Task, TrialStatus, WallClock, get_task


def constant_predictor_loss(task: Task) -> tuple[float, str]:
    """The best constant predictor's validation loss at the task's preset, and what it is."""
    name = type(task).name
    if name == "cifar_alexnet":
        return math.log(10), "uniform over 10 classes (ln 10)"
    if name == "ptb_lstm":
        train_tokens, val_tokens = (t.numel() for t in task._tokens)  # type: ignore[attr-defined]
        what = f"add-one unigram of {train_tokens} training tokens on {val_tokens} validation tokens"
        return task.unigram_loss(), what  # type: ignore[attr-defined]
    raise SystemExit(f"no constant predictor defined for task {name!r} (known: cifar_alexnet, ptb_lstm)")


def fit_once(task: Task, config: dict[str, Any], seeds: RunSeeds) -> tuple[FitResult, float]:
    timer = BudgetTimer(Budget(1e12), WallClock())
    timer.start()
    start = time.perf_counter()
    fit = task.fit(config, timer, seeds)
    return fit, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--configs", type=int, default=40)
    parser.add_argument("--seed", type=int, nargs="+", default=[0])
    parser.add_argument("--margin", type=float, default=0.3, help="nats below the constant predictor")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds of a run, for the trial count")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="override a preset field")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    task = get_task(args.task)(args.preset)
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    if overrides:
        task.preset = dataclasses.replace(task.preset, **overrides)
    print(f"{args.task} preset {args.preset}: {task.preset}")
    task.prepare()
    summaries = []
    for seed in args.seed:
        seeds = RunSeeds.from_master(seed)
        print(task.load(seeds))
        constant, what = constant_predictor_loss(task)
        print(f"seed {seed}: constant predictor {constant:.4f} nats ({what})")
        rng = np.random.default_rng([seed, 14])
        configs = [("unregularised", task.space.default())]
        configs += [(f"draw {i}", task.space.sample(rng)) for i in range(args.configs)]
        rows = []
        print(f"{'trial':>14} {'status':>14} {'epochs':>6} {'best val':>9} {'seconds':>8}  reason")
        for label, config in configs:
            fit, seconds = fit_once(task, config, seeds)
            loss = fit.loss if fit.loss is not None and math.isfinite(fit.loss) else None
            rows.append((label, fit, loss, seconds))
            shown = f"{loss:.4f}" if loss is not None else "-"
            print(
                f"{label:>14} {fit.status.value:>14} {fit.epochs:>6} {shown:>9} {seconds:>8.1f}  {fit.reason}",
                flush=True,
            )
        drawn = rows[1:]
        n = len(drawn)
        failed = sum(f.status is TrialStatus.FAILED for _, f, _, _ in drawn)
        trained = sum(loss is not None and loss <= constant - args.margin for _, _, loss, _ in drawn)
        patience = sum(f.status is TrialStatus.EARLY_STOPPED for _, f, _, _ in drawn)
        median_s = statistics.median(s for _, _, _, s in drawn)
        best = min((loss for _, _, loss, _ in drawn if loss is not None), default=math.inf)
        unreg = rows[0][2] if rows[0][2] is not None else math.inf
        summary = {
            "non-finite": failed,
            "trained": trained,
            "patience": patience,
            "median_s": median_s,
            "room_nats": unreg - best,
            "room_ppl": math.exp(unreg - best) - 1.0,
            "best": best,
            "unregularised": unreg,
            "constant": constant,
        }
        summaries.append(summary)
        print(
            f"seed {seed}: non-finite {failed}/{n}; trained (≥ {args.margin} nats below {constant:.3f}) {trained}/{n}; "
            f"stopped by patience {patience}/{n}; median trial {median_s:.1f} s "
            f"({args.budget / median_s:.0f} trials in {args.budget:.0f} s); best {best:.4f} vs unregularised "
            f"{unreg:.4f}: room {unreg - best:+.4f} nats ({100 * (math.exp(unreg - best) - 1):+.1f} % perplexity)"
        )
    if len(summaries) > 1:
        mean = {k: statistics.fmean(s[k] for s in summaries) for k in summaries[0]}
        print(
            f"mean over seeds {args.seed}: non-finite {mean['non-finite']:.1f}/{args.configs}; trained "
            f"{mean['trained']:.1f}/{args.configs}; patience {mean['patience']:.1f}/{args.configs}; median trial "
            f"{mean['median_s']:.1f} s; room {mean['room_nats']:+.4f} nats ({100 * mean['room_ppl']:+.1f} % perplexity)"
        )


if __name__ == "__main__":
    main()
