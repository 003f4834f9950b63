"""Does regularisation matter on ``digits_mlp``? Best validation loss of a few fixed configs.

Usage: ``python benchmarks/digits_calibration.py [--preset cpu] [--seed 0]``. Prints, per config, the
best clean validation cross-entropy and accuracy over the preset's epochs, and the wall time of the
trial (one CPU thread). The numbers quoted in ``tasks/digits_mlp.py`` come from this script.
"""

from __future__ import annotations

import argparse
import time

import torch

from hpobench_stn import Budget, BudgetTimer, RunSeeds, WallClock, get_task

CONFIGS = {
    "unregularised": {
        "dropout_in": 0.0,
        "dropout_h1": 0.0,
        "dropout_h2": 0.0,
        "weight_decay": 1e-6,
        "shift": 0,
    },
    "moderate": {"dropout_in": 0.1, "dropout_h1": 0.3, "dropout_h2": 0.3, "weight_decay": 1e-4, "shift": 0},
    "heavy dropout": {
        "dropout_in": 0.3,
        "dropout_h1": 0.6,
        "dropout_h2": 0.6,
        "weight_decay": 1e-6,
        "shift": 0,
    },
    "weight decay only": {
        "dropout_in": 0.0,
        "dropout_h1": 0.0,
        "dropout_h2": 0.0,
        "weight_decay": 1e-3,
        "shift": 0,
    },
    "shift 1": {"dropout_in": 0.0, "dropout_h1": 0.0, "dropout_h2": 0.0, "weight_decay": 1e-6, "shift": 1},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = get_task("digits_mlp")(args.preset)
    task.prepare()
    seeds = RunSeeds.from_master(args.seed)
    task.load(seeds)
    print(f"digits_mlp preset={args.preset} seed={args.seed}")
    for label, config in CONFIGS.items():
        timer = BudgetTimer(Budget(1e9), WallClock())
        timer.start()
        start = time.perf_counter()
        fit = task.fit(config, timer, seeds)
        seconds = time.perf_counter() - start
        assert fit.val is not None
        print(
            f"{label:>18}: best val CE {fit.val.loss:.3f}, accuracy {fit.val.metrics['accuracy']:.3f}, "
            f"{seconds:.2f} s  {config}"
        )


if __name__ == "__main__":
    main()
