"""STN step cost against the baseline step, same batch, for ptb_lstm and cifar_alexnet at the cpu and paper sizes.

For each task and size it builds the baseline model (``Task.build_model``) and the STN model
(``Task.build_hyper_model``, hyper path initialised as the ``stn`` method does) from the same generator,
takes one training batch, and times:

* **baseline step**: ``training_loss`` at the regularised reference config, backward, clipping, optimiser step;
* **STN weight step**: perturbed hyperparameters drawn per example (per batch for the task's
  ``batch_level_hparams``), ``regularised_loss`` through the hyper-model, backward, clipping, step;
* **STN hyper-step**: a clean validation batch in eval mode through the hyper-model at perturbed λ, and
  the gradient with respect to λ and σ only (as ``methods/stn.py`` does);
* **Delta-STN weight step** (``methods/delta_stn.py``'s two sub-steps, through the same loss functions):
  the elementary weights on the loss at the current λ (model centred), then the response on the loss at
  perturbed λ, linearised around the elementary weights by a forward-mode JVP; its hyper-step is STN's.

* **IFT weight step** (``methods/ift.py``): the plain model at the current λ with relaxed dropout masks;
* **IFT hyper-step** for K = 0, 1 and 5 Neumann terms (``--neumann``): the validation gradient, the
  training loss again through twice-differentiable layers, K Hessian-vector products and the mixed
  derivative in λ (``IFTLoop.hyper_step`` itself, on the same batches).

It prints the medians, the weight-step ratio (the issue's target: <= 2.0), the cost per weight step of the
paper's 2:1 alternation (``(2·weight + hyper) / 2``) over the baseline step, the same two ratios for
Delta-STN (``Δw/base``, ``Δ2:1/base``; issue 17's aim: at most 0.5 above STN's), then for IFT its
weight step over the baseline step (``I w/base``) and one hyper-step in baseline steps for each K
(``I K=k``; issue 21), and ratios of parameter count,
of the bytes autograd saves for the backward pass (activation memory, measured with
``torch.autograd.graph.saved_tensors_hooks``, on any device) and, on CUDA, of peak allocated memory.

The paper sizes are built on any device here (their presets refuse a CPU for whole runs, not for a step):

    python benchmarks/stn_step_ratio.py                  # cpu and paper sizes, 2 threads
    python benchmarks/stn_step_ratio.py --sizes cpu --device cuda

Figures go into the issue note; nothing here is hard-coded.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch

from hpobench_stn import Budget, FakeClock, Task
from hpobench_stn.foundation.clock import BudgetTimer
from hpobench_stn.foundation.seeding import RunSeeds
from hpobench_stn.harness.method import RunContext
from hpobench_stn.harness.records import RunLog
from hpobench_stn.methods.delta_stn import general_loss, response_loss
from hpobench_stn.methods.ift import IFT
from hpobench_stn.nn import hyper_input_of, init_hyper_path, is_hyper_path
from hpobench_stn.nn.hparams import HParams
from hpobench_stn.tasks.cifar_alexnet import CifarAlexNet
from hpobench_stn.tasks.ptb_lstm import REGULARISED, PTBTask

CIFAR_REGULARISED = {
    **{f"dropout_conv{i}": 0.1 for i in range(1, 6)},
    "dropout_fc1": 0.2,
    "dropout_fc2": 0.2,
    "cutout_length": 16,
    "cutout_holes": 1,
    "hue": 0.05,
    "contrast": 0.2,
    "saturation": 0.2,
    "brightness": 0.2,
}


def make_task(name: str, size: str, device: torch.device, data_dir: Path | None) -> Task:
    cls = PTBTask if name == "ptb_lstm" else CifarAlexNet
    task: Task = cls("cpu", device=device, data_dir=data_dir)
    task.preset = replace(cls.presets[size], needs_cuda=False)
    task.prepare()
    task.load(RunSeeds.from_master(0))
    return task


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_s(fn: Callable[[], object], device: torch.device, reps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@contextmanager
def saved_bytes() -> Iterator[list[int]]:
    """Counts the distinct storages autograd saves for backward (activation memory), in bytes."""
    seen: dict[int, int] = {}
    total = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield total
    total[0] = sum(seen.values())


def measure_ift(task: Task, reps: int, terms: list[int], config: dict[str, float | int]) -> dict[str, float]:
    """IFT's weight step and its hyper-step for each number of Neumann terms, through ``IFTLoop`` itself."""
    device = task.device
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, RunLog(Path(tmp)) as log:
        timer = BudgetTimer(Budget(1e9), FakeClock(tick=1e-6))
        timer.start()
        ctx = RunContext(task, timer, RunSeeds.from_master(0), log, "ift")
        tuned = IFT().tuned_names(task)
        for k in terms:
            loop = IFT({"neumann_terms": k, "init": {n: config[n] for n in tuned}}).make_loop(task, ctx)
            batch = next(iter(task.train_batches(torch.Generator().manual_seed(0))))

            weight_step = partial(loop.weight_step, batch)
            hyper_step = loop.hyper_step
            if "ift_weight_s" not in out:
                out["ift_weight_s"] = median_s(weight_step, device, reps)
            else:
                weight_step()
            out[f"ift_hyper_{k}_s"] = median_s(hyper_step, device, reps)
    return out


def measure(task: Task, reps: int) -> dict[str, float]:
    device = task.device
    space = task.space
    config = {**space.default(), **(REGULARISED if isinstance(task, PTBTask) else CIFAR_REGULARISED)}
    config = space.validate(config)
    names = list(space)
    plain = task.build_model(config, torch.Generator().manual_seed(0))
    hyper = task.build_hyper_model(len(names), torch.Generator().manual_seed(0))
    init_hyper_path(hyper, torch.Generator().manual_seed(1), gate_std=0.01)
    hp = HParams(space, names, config, 0.5, per_batch=task.batch_level_hparams, device=device)
    hyper_input = hyper_input_of(hyper)
    batch = next(iter(task.train_batches(torch.Generator().manual_seed(0))))
    val_batch = next(iter(task.tuning_batches(torch.Generator().manual_seed(0))))
    opt_plain, opt_hyper = task.make_optimizer(plain), task.make_optimizer(hyper)

    def baseline_step() -> None:
        plain.train()
        loss = task.training_loss(plain, batch, config)
        opt_plain.zero_grad(set_to_none=True)
        loss.backward()
        task.clip_gradients(plain)
        opt_plain.step()

    def stn_values() -> dict[str, torch.Tensor]:
        draw = hp.perturbed(task.examples_in(batch))
        hyper_input.set(draw.hnet)
        return draw.values

    def weight_step() -> None:
        hyper.train()
        loss = task.regularised_loss(hyper, batch, stn_values())
        opt_hyper.zero_grad(set_to_none=True)
        loss.backward()
        task.clip_gradients(hyper)
        opt_hyper.step()

    general = [p for name, p in hyper.named_parameters() if not is_hyper_path(name)]
    response = [p for name, p in hyper.named_parameters() if is_hyper_path(name)]

    def descend(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> None:
        opt_hyper.zero_grad(set_to_none=True)
        for p, g in zip(params, torch.autograd.grad(loss, params, allow_unused=True), strict=True):
            p.grad = g
        task.clip_gradients(hyper)
        opt_hyper.step()

    def delta_step() -> None:
        hyper.train()
        n = task.examples_in(batch)
        descend(general_loss(task, hyper, hyper_input, batch, hp.values_at_current(n)), general)
        draw = hp.perturbed(n)
        descend(response_loss(task, hyper, hyper_input, batch, draw.values, draw.hnet), response)

    def hyper_step() -> None:
        hyper.eval()
        hyper_input.set(hp.perturbed(task.examples_in(val_batch), differentiable=True).hnet)
        loss_sum, n, _ = task.eval_sums(hyper, val_batch)
        loss = loss_sum / n - 1e-3 * hp.entropy()
        torch.autograd.grad(loss, list(hp.parameters()))

    out = {
        "baseline_s": median_s(baseline_step, device, reps),
        "weight_s": median_s(weight_step, device, reps),
        "hyper_s": median_s(hyper_step, device, reps),
        "delta_s": median_s(delta_step, device, reps),
    }
    with saved_bytes() as base_bytes:
        plain.train()
        base_loss = task.training_loss(plain, batch, config)
    with saved_bytes() as stn_bytes:
        hyper.train()
        stn_loss = task.regularised_loss(hyper, batch, stn_values())
    del base_loss, stn_loss
    out["activation_ratio"] = stn_bytes[0] / base_bytes[0]
    out["param_ratio"] = sum(p.numel() for p in hyper.parameters()) / sum(p.numel() for p in plain.parameters())
    if device.type == "cuda":
        peaks = []
        for step in (baseline_step, weight_step):
            torch.cuda.reset_peak_memory_stats(device)
            step()
            sync(device)
            peaks.append(torch.cuda.max_memory_allocated(device))
        out["peak_ratio"] = peaks[1] / peaks[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--sizes", nargs="+", default=["cpu", "paper"], choices=["smoke", "cpu", "paper"])
    parser.add_argument("--tasks", nargs="+", default=["ptb_lstm", "cifar_alexnet"])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--neumann", type=int, nargs="+", default=[0, 1, 5], help="IFT's Neumann terms K")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")
    header = f"{'task':14} {'size':6} {'base ms':>9} {'STN w ms':>9} {'hyper ms':>9} {'Δ w ms':>9} {'w/base':>7}"
    header += f" {'2:1/base':>8} {'Δw/base':>8} {'Δ2:1/base':>9}"
    header += f" {'I w/base':>8}" + "".join(f" {'I K=' + str(k):>7}" for k in args.neumann)
    header += f" {'params':>7} {'act mem':>8}" + (f" {'peak':>6}" if device.type == "cuda" else "")
    print(header)
    for name in args.tasks:
        for size in args.sizes:
            task = make_task(name, size, device, args.data_dir)
            r = measure(task, args.reps)
            config = {**task.space.default(), **(REGULARISED if isinstance(task, PTBTask) else CIFAR_REGULARISED)}
            r.update(measure_ift(task, args.reps, args.neumann, config))
            cycle = (2 * r["weight_s"] + r["hyper_s"]) / 2 / r["baseline_s"]
            delta_cycle = (2 * r["delta_s"] + r["hyper_s"]) / 2 / r["baseline_s"]
            ms = " ".join(f"{1e3 * r[k]:9.1f}" for k in ("baseline_s", "weight_s", "hyper_s", "delta_s"))
            ratios = f"{r['weight_s'] / r['baseline_s']:7.2f} {cycle:8.2f}"
            ratios += f" {r['delta_s'] / r['baseline_s']:8.2f} {delta_cycle:9.2f}"
            ratios += f" {r['ift_weight_s'] / r['baseline_s']:8.2f}"
            ratios += "".join(f" {r[f'ift_hyper_{k}_s'] / r['baseline_s']:7.2f}" for k in args.neumann)
            ratios += f" {r['param_ratio']:7.2f}"
            line = f"{name:14} {size:6} {ms} {ratios} {r['activation_ratio']:8.2f}"
            if "peak_ratio" in r:
                line += f" {r['peak_ratio']:6.2f}"
            print(line, flush=True)
            del task
            if device.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
