"""A gradient-based tuner on problems whose optimum is known: where its hyperparameter ends, per seed.

Runs ``--method`` (default ``stn``) at its default options on the known-optimum tasks
(``hpobench_stn.tasks.known_optimum``: ``ridge``, a log-scaled L2 coefficient, and
``dropout_regression``, an input dropout rate on [0, 0.9]), from below (5 % of the range, the default
start's margin) and from above (80 %) the optimum, for several seeds, and prints per run: the start,
the last value, the mean over the last quarter of the schedule, the optimum, the distance between
them (as a fraction of the range, sampling scale), the fraction of the run spent at a bound (within
2.5 % of an end), σ's range, and the weight steps run. ``tests/test_known_optimum.py`` passes a method
when every run is within 0.10 of the optimum and spends at most 0.10 of its run at a bound.

Runs use a fake clock (time advances per clock read), so they are deterministic and their length in
steps does not depend on the machine.

    python benchmarks/known_optimum.py                         # stn, both tasks, both starts, seeds 0-4
    python benchmarks/known_optimum.py --option 'hnet_input="position"' --option sigma0=0.5   # issue 13's recipe
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from hpobench_stn.tasks.known_optimum import BUDGET_S, STARTS, TOLERANCE, run_known_optimum

TASKS = ("dropout_regression", "ridge")


def main() -> None:
    torch.set_num_threads(1)  # a fake clock: the figures do not depend on speed; one thread leaves room
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="stn")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--starts", nargs="+", default=list(STARTS), choices=list(STARTS))
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="fake seconds per run")
    parser.add_argument("--option", action="append", default=[], help="KEY=JSON method option (repeatable)")
    args = parser.parse_args()
    options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}

    print(f"method {args.method}, options {options or 'default'}, {args.seeds} seeds, {args.budget} fake s a run")
    head = f"{'task':<19} {'start':<6} {'seed':>4} {'from':>8} {'final':>8} {'tail':>8} {'optimum':>8}"
    print(head + f" {'error':>6} {'at bound':>8} {'σ range':>13} {'steps':>6}")
    worst: dict[tuple[str, str], tuple[float, float]] = {}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for task_name in args.tasks:
            for start in args.starts:
                for seed in range(args.seeds):
                    out = Path(tmp) / f"{task_name}-{start}"
                    run = run_known_optimum(args.method, task_name, start, seed, out, options, args.budget)
                    v = run.verdict
                    print(
                        f"{task_name:<19} {start:<6} {seed:>4} {v.start:>8.4g} {v.final:>8.4g} {v.tail_mean:>8.4g} "
                        f"{v.optimum:>8.4g} "
                        f"{v.error:>6.3f} {v.at_bound:>8.1%} {run.sigma_min:>6.2f}–{run.sigma_max:<6.2f} "
                        f"{run.steps:>6}"
                    )
                    e, b = worst.get((task_name, start), (0.0, 0.0))
                    worst[(task_name, start)] = (max(e, v.error), max(b, v.at_bound))
    print(f"\nworst over seeds (pass: error <= {TOLERANCE}, at bound <= {TOLERANCE:.0%}):")
    for (task_name, start), (e, b) in worst.items():
        verdict = "pass" if e <= TOLERANCE and b <= TOLERANCE else "FAIL"
        print(f"  {task_name:<19} from {start:<6} error {e:.3f}  at bound {b:.1%}  {verdict}")
    print(f"({time.perf_counter() - began:.1f} s)")


if __name__ == "__main__":
    main()
