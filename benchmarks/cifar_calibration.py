"""Does regularisation matter on ``cifar_alexnet`` at a preset? Best validation loss of fixed configs.

Usage: ``python benchmarks/cifar_calibration.py [--preset cpu] [--seed 0] [--lr 0.02] [--configs A B]``.
Prints, per config, the best clean validation cross-entropy and accuracy over the preset's epochs, the
epoch it was reached, and the wall time of the trial (one CPU thread). The numbers quoted in
``tasks/cifar_alexnet.py`` and ``docs/tasks.md`` come from this script.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from hpobench_stn import Budget, BudgetTimer, RunSeeds, WallClock, get_task

ZERO = {
    **{f"dropout_conv{i}": 0.0 for i in range(1, 6)},
    "dropout_fc1": 0.0,
    "dropout_fc2": 0.0,
    "dropout_in": 0.0,
    "input_scale": 0.0,
    "hue": 0.0,
    "contrast": 0.0,
    "saturation": 0.0,
    "brightness": 0.0,
    "cutout_length": 0,
    "cutout_holes": 0,
}
AUGMENT = {"brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.05, "cutout_length": 12, "cutout_holes": 1}
CONFIGS = {
    "unregularised": ZERO,
    "augmentation": {**ZERO, **AUGMENT, "input_scale": 0.1},
    "fc dropout": {**ZERO, "dropout_fc1": 0.5, "dropout_fc2": 0.5},
    "dropout + augmentation": {
        **ZERO,
        **AUGMENT,
        **{f"dropout_conv{i}": 0.05 for i in range(1, 6)},
        "dropout_fc1": 0.3,
        "dropout_fc2": 0.3,
    },
    "channel dropout + cutout": {
        **ZERO,
        **{f"dropout_conv{i}": 0.1 for i in range(1, 6)},
        "dropout_fc1": 0.2,
        "dropout_fc2": 0.2,
        "cutout_length": 16,
        "cutout_holes": 1,
    },
    "stronger channel dropout + cutout": {
        **ZERO,
        **{f"dropout_conv{i}": 0.2 for i in range(1, 6)},
        "dropout_fc1": 0.3,
        "dropout_fc2": 0.3,
        "cutout_length": 16,
        "cutout_holes": 1,
    },
    "channel dropout + cutout + jitter": {
        **ZERO,
        **{f"dropout_conv{i}": 0.1 for i in range(1, 6)},
        "dropout_fc1": 0.2,
        "dropout_fc2": 0.2,
        "cutout_length": 16,
        "cutout_holes": 1,
        "brightness": 0.2,
        "contrast": 0.2,
        "saturation": 0.2,
        "hue": 0.05,
        "input_scale": 0.1,
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, help="override the preset's learning rate")
    parser.add_argument("--epochs", type=int, help="override the preset's epoch cap")
    parser.add_argument("--n-train", type=int, help="override the preset's number of training images")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = get_task("cifar_alexnet")(args.preset)
    overrides = {
        k: v for k, v in (("lr", args.lr), ("epochs", args.epochs), ("n_train", args.n_train)) if v is not None
    }
    task.preset = dataclasses.replace(task.preset, **overrides)
    task.prepare()
    seeds = RunSeeds.from_master(args.seed)
    task.load(seeds)
    task.warm_up()
    print(f"cifar_alexnet preset={args.preset} {overrides or ''} seed={args.seed}", flush=True)
    for label in args.configs:
        timer = BudgetTimer(Budget(1e9), WallClock())
        timer.start()
        start = time.perf_counter()
        fit = task.fit(CONFIGS[label], timer, seeds)
        seconds = time.perf_counter() - start
        assert fit.val is not None
        history = fit.val_losses
        best_epoch = history.index(min(history)) + 1
        print(
            f"{label:>24}: best val CE {fit.val.loss:.3f} (epoch {best_epoch}/{len(history)}), accuracy "
            f"{fit.val.metrics['accuracy']:.3f}, last {history[-1]:.3f}, {seconds:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
