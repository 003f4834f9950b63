"""What does synchronising the GPU at every deadline check cost? (The fairness rule's price.)

Trains one ``digits_mlp`` config several times on a CUDA device, with the harness's ``WallClock`` on
that device (``torch.cuda.synchronize()`` before every clock read, i.e. once per optimiser step) and
with a clock that does not synchronise, and prints the wall time per trial of each. ``digits_mlp`` is
a worst case: its steps are tiny, so launch latency that synchronisation exposes dominates.

Usage: ``python benchmarks/sync_cost.py [--preset cpu] [--repeats 5]`` (needs CUDA).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from hpobench_stn import Budget, BudgetTimer, RunSeeds, WallClock, get_task

CONFIG = {"dropout_in": 0.1, "dropout_h1": 0.3, "dropout_h2": 0.3, "weight_decay": 1e-4, "shift": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("sync_cost.py needs a CUDA device")
    device = torch.device("cuda")
    task = get_task("digits_mlp")(args.preset, device=device)
    task.prepare()
    seeds = RunSeeds.from_master(0)
    task.load(seeds)
    task.warm_up()
    results: dict[str, list[float]] = {"synchronised": [], "not synchronised": []}
    for _ in range(args.repeats):
        for label, clock_device in (("synchronised", device), ("not synchronised", torch.device("cpu"))):
            timer = BudgetTimer(Budget(1e9), WallClock(clock_device))
            timer.start()
            torch.cuda.synchronize()
            start = time.perf_counter()
            fit = task.fit(CONFIG, timer, seeds)
            torch.cuda.synchronize()
            results[label].append(time.perf_counter() - start)
    print(f"{torch.cuda.get_device_name(device)}; digits_mlp {args.preset}; {fit.steps} steps per trial")
    for label, times in results.items():
        med = statistics.median(times)
        print(f"{label:>17}: median {med:.3f} s per trial ({1e3 * med / fit.steps:.3f} ms per step)")


if __name__ == "__main__":
    main()
