"""ptb_lstm throughput: training tokens/s per preset, data-loading share of step time, per-trial time at ``cpu``.

Usage: ``python benchmarks/ptb_throughput.py [--data-dir DIR] [--device cpu|cuda] [--threads 1] [--no-trials]``

* tokens/s: training steps (forward, backward, clipping, SGD step) of a regularised config, after two
  warm-up steps; ``paper`` only on CUDA.
* data loading: the time to produce the same windows from ``train_batches`` alone, as a share of a step.
* per-trial time (``cpu`` preset): ``Task.fit`` of the unregularised and a regularised config, with the
  best validation perplexity of each (seed 0), the figures quoted in the task's docstring.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from collections.abc import Mapping
from pathlib import Path

import torch

from hpobench_stn import Budget, BudgetTimer, RunSeeds, WallClock
from hpobench_stn.datasets import DATA_ENV
from hpobench_stn.tasks.ptb_lstm import REGULARISED, PTBTask


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(task: PTBTask, steps: int) -> tuple[float, float]:
    """(training tokens/s, data-loading share of step time) over ``steps`` steps."""
    config = task.space.validate({**task.space.default(), **REGULARISED})
    model = task.build_model(config, torch.Generator().manual_seed(0))
    optimizer = task.make_optimizer(model)
    model.train()

    def batches() -> itertools.cycle[tuple[torch.Tensor, ...]]:
        return itertools.cycle(task.train_batches(torch.Generator()))

    def step(batch: tuple[torch.Tensor, ...]) -> None:
        loss = task.training_loss(model, batch, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        task.clip_gradients(model)
        optimizer.step()

    source = batches()
    for _ in range(2):
        step(next(source))
    sync(task.device)
    start = time.perf_counter()
    tokens = 0
    for _ in range(steps):
        batch = next(source)
        tokens += batch[1].numel()
        step(batch)
    sync(task.device)
    train_s = time.perf_counter() - start

    source = batches()
    start = time.perf_counter()
    for _ in range(steps):
        next(source)
    sync(task.device)
    load_s = time.perf_counter() - start
    return tokens / train_s, load_s / train_s


def trial(task: PTBTask, values: Mapping[str, float]) -> tuple[float, float, int]:
    """(wall seconds, best validation perplexity, epochs) of one ``Task.fit``."""
    config = task.space.validate({**task.space.default(), **values})
    timer = BudgetTimer(Budget(3600), WallClock(task.device))
    timer.start()
    start = time.perf_counter()
    fit = task.fit(config, timer, RunSeeds.from_master(0))
    seconds = time.perf_counter() - start
    return seconds, math.exp(fit.val.loss) if fit.val is not None else math.nan, fit.epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help=f"data root (default ${DATA_ENV})")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-trials", action="store_true", help="skip the per-trial timing at the cpu preset")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, {torch.get_num_threads()} thread(s), torch {torch.__version__}")

    presets = ["smoke", "cpu"] + (["paper"] if device.type == "cuda" else [])
    for name in presets:
        task = PTBTask(name, device=device, data_dir=args.data_dir)
        task.prepare()
        task.load(RunSeeds.from_master(0))
        steps = 100 if name == "smoke" else 40
        tokens_s, load_share = throughput(task, steps)
        print(f"{name:>6}: {tokens_s:10.0f} training tokens/s; data loading {100 * load_share:.2f} % of step time")

    if not args.no_trials:
        task = PTBTask("cpu", device=device, data_dir=args.data_dir)
        task.prepare()
        task.load(RunSeeds.from_master(0))
        task.warm_up()
        for label, values in (("unregularised", {}), ("regularised", REGULARISED)):
            seconds, ppl, epochs = trial(task, values)
            print(f"cpu trial, {label:>13}: {seconds:6.1f} s, {epochs} epochs, best validation perplexity {ppl:.1f}")


if __name__ == "__main__":
    main()
