"""Training throughput of ``cifar_alexnet`` per preset, the share of data + augmentation, and a cpu trial.

For each preset (``smoke``, ``cpu``; ``paper`` only with CUDA) it times training steps of a
regularised config (every dropout, jitter and cutout on) and splits each step into

* data + augmentation: drawing the batch from :meth:`Task.train_batches` (indexing the uint8 tensors
  on the device) and :meth:`CifarAlexNet.augment_inputs` (jitter, cutout, normalisation, scale noise,
  input dropout);
* the rest: forward, loss, backward, optimiser step.

Then it runs whole trials (``Task.fit``) at ``cpu`` for the unregularised and the regularised config,
and prints the per-trial time and best validation loss of each.

    python benchmarks/cifar_throughput.py [--steps 30] [--threads 1] [--device cpu] [--no-trial]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from hpobench_stn import Budget, BudgetTimer, Config, RunSeeds, WallClock
from hpobench_stn.tasks.cifar_alexnet import CifarAlexNet

REGULARISED: Config = {
    "dropout_conv1": 0.1,
    "dropout_conv2": 0.2,
    "dropout_conv3": 0.2,
    "dropout_conv4": 0.2,
    "dropout_conv5": 0.2,
    "dropout_fc1": 0.5,
    "dropout_fc2": 0.5,
    "dropout_in": 0.0,
    "input_scale": 0.0,
    "hue": 0.05,
    "contrast": 0.2,
    "saturation": 0.2,
    "brightness": 0.2,
    "cutout_length": 8,
    "cutout_holes": 1,
}
MEASURE: Config = {**REGULARISED, "dropout_in": 0.05, "input_scale": 0.1}  # every operation active


def throughput(task: CifarAlexNet, steps: int) -> tuple[float, float]:
    """(training images/s, fraction of step time in data + augmentation) over ``steps`` steps."""
    device = task.device

    def now() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    config = task.space.validate(MEASURE)
    model = task.build_model(config, torch.Generator().manual_seed(0))
    optimizer = task.make_optimizer(model)
    model.train()
    data_s = total_s = 0.0
    images = 0
    done = -3  # three warm-up steps are not counted
    order = torch.Generator().manual_seed(0)
    while done < steps:
        batches = iter(task.train_batches(order))
        while done < steps:
            t0 = now()
            batch = next(batches, None)
            if batch is None:
                break
            x_raw, labels = batch
            n = x_raw.shape[0]
            hp = {k: torch.full((n,), float(v), device=device) for k, v in config.items()}
            x = task.augment_inputs(x_raw, hp, training=True)
            t1 = now()
            rates = torch.stack(
                [hp[k] for k in (*(f"dropout_conv{i}" for i in range(1, 6)), "dropout_fc1", "dropout_fc2")], 1
            )
            loss = torch.nn.functional.cross_entropy(model(x, rates), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            t2 = now()
            if done >= 0:
                data_s += t1 - t0
                total_s += t2 - t0
                images += n
            done += 1
    return images / total_s, data_s / total_s


def trial(task: CifarAlexNet, config: Config) -> tuple[float, float, int]:
    """(seconds, best validation loss, best epoch) of one ``Task.fit`` at the task's preset."""
    timer = BudgetTimer(Budget(1e6), WallClock(task.device))
    timer.start()
    t0 = time.perf_counter()
    fit = task.fit(task.space.validate({**task.space.default(), **config}), timer, RunSeeds.from_master(0))
    seconds = time.perf_counter() - t0
    assert fit.val is not None
    return seconds, fit.val.loss, 1 + fit.val_losses.index(min(fit.val_losses))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per preset")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--no-trial", action="store_true", help="skip the whole cpu trials")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    presets = ["smoke", "cpu"] + (["paper"] if device.type == "cuda" else [])
    print(f"device {device}, {torch.get_num_threads()} thread(s)")
    for name in presets:
        task = CifarAlexNet(name, device=device, data_dir=args.data_dir)
        task.prepare()
        task.load(RunSeeds.from_master(0))
        ips, frac = throughput(task, args.steps)
        print(f"{name:>6}: {ips:9,.0f} training images/s; data + augmentation {100 * frac:.1f}% of step time")
    if args.no_trial:
        return
    task = CifarAlexNet("cpu", device=device, data_dir=args.data_dir)
    task.prepare()
    task.load(RunSeeds.from_master(0))
    for label, config in (("unregularised", {}), ("regularised", REGULARISED)):
        seconds, val, epoch = trial(task, config)
        print(f"cpu trial, {label}: {seconds:.1f} s, best validation CE {val:.3f} at epoch {epoch}")


if __name__ == "__main__":
    main()
