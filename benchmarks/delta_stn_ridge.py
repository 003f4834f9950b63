"""STN against Delta-STN on ``ridge``, whose optimum is known: how many hyper-steps each needs to reach it,
and how exactly each fits the best-response Jacobian (issue 17).

Two measurements, both under a fake clock (deterministic, machine-independent):

1. **Reaching λ*.** Each method at its default options on ``ridge`` (``hpobench_stn.tasks.known_optimum``,
   optimum 0.494 on a log range [1e-3, 1e3]) from below (5 % of the range) and from above (80 %), seeds
   0..N-1, 30 fake seconds (~3,300 weight steps). Printed per run: the hyper-steps until the schedule
   first comes within ln 1.1 of λ* (``first``), until the mean of ln λ over the last 100 hyper-steps does
   (``settled``: the noise of single steps averaged out, so a biased fixed point shows), and the
   distance ``|ln λ − ln λ*|`` of the mean over the last quarter of the run (``tail``). ``-`` is never.
2. **The best-response Jacobian.** Each method's weights trained at a fixed λ (the middle of the range,
   no hyper-steps) with a fixed perturbation scale σ, full-batch Adam at lr 0.002 for 3,000 steps; the
   learned response ``dw/du = V·W_h`` against the exact ``-(A + λI)⁻¹ w*(λ) dλ/du``, and the weights at
   the current λ against ``w*(λ)``, as relative errors (the Delta-STN paper's diagnostic).

    python benchmarks/delta_stn_ridge.py                 # both, seeds 0-4
    python benchmarks/delta_stn_ridge.py --only jacobian --sigmas 0.1 0.3 0.5
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from hpobench_stn import Budget, FakeClock, RunSeeds, get_method
from hpobench_stn.foundation.clock import BudgetTimer
from hpobench_stn.harness.method import RunContext
from hpobench_stn.harness.records import RunLog, load_log
from hpobench_stn.harness.schedule import Schedule
from hpobench_stn.methods.stn import STN
from hpobench_stn.tasks.known_optimum import STARTS, Ridge, run_known_optimum

METHODS = ("stn", "delta_stn")


def stn_method(name: str, options: dict[str, Any]) -> STN:
    """``stn`` or ``delta_stn`` at ``options`` (typed: both are :class:`STN`)."""
    method = get_method(name)(options)
    assert isinstance(method, STN)
    return method


WINDOW = 100  # hyper-steps averaged for "settled"


def hyper_steps_at(step: int, warmup_steps: int, train_steps: int) -> int:
    """Hyper-steps taken by weight step ``step`` (one after every ``train_steps`` weight steps past the warm-up)."""
    return max(0, step - warmup_steps) // train_steps


def reach(method: str, start: str, seed: int) -> dict[str, Any]:
    """One default-options run on ``ridge``: hyper-steps to first touch and to settle within ln 1.1 of λ*."""
    task = Ridge("smoke")
    task.load(RunSeeds.from_master(seed))
    optimum = task.optimum()
    with tempfile.TemporaryDirectory() as tmp:
        run_known_optimum(method, "ridge", start, seed, Path(tmp))
        _, _, records = load_log(next(Path(tmp).rglob("log.jsonl")).parent)
    schedule = Schedule.from_records(records)
    opts = stn_method(method, {}).resolved(task)
    steps_per_epoch = math.ceil(task.preset.n_train / task.preset.batch_size)
    warmup = int(opts.warmup_epochs or 0) * steps_per_epoch
    distance = [abs(math.log(v) - math.log(optimum)) for v in schedule.values["l2"]]
    hyper = [hyper_steps_at(s, warmup, opts.train_steps) for s in schedule.steps]
    tol = math.log(1.1)
    first = next((h for h, d in zip(hyper, distance, strict=True) if d < tol), None)
    logs = [math.log(v) for v in schedule.values["l2"]]
    records_per_window = max(1, WINDOW * opts.train_steps // opts.schedule_every)
    settled = None
    for i in range(records_per_window, len(logs) + 1):
        if abs(statistics.fmean(logs[i - records_per_window : i]) - math.log(optimum)) < tol:
            settled = hyper[i - 1]
            break
    quarter = logs[3 * len(logs) // 4 :]
    return {
        "first": first,
        "settled": settled,
        "tail": abs(statistics.fmean(quarter) - math.log(optimum)),
        "total": hyper[-1],
    }


def jacobian_errors(method: str, seed: int, sigma: float, epochs: int = 3000) -> tuple[float, float]:
    """Relative errors of ``method``'s learned ``dw/du`` and of its weights at λ, at a fixed λ (see the docstring)."""
    task = Ridge("smoke")
    task.preset = replace(task.preset, batch_size=task.preset.n_train, lr=0.002)
    seeds = RunSeeds.from_master(seed)
    task.load(seeds)
    options = {
        "max_epochs": epochs,
        "warmup_epochs": epochs,  # λ never moves
        "sigma0": sigma,
        "tune_sigma": False,
        "init": {"l2": task.value_at(0.5)},
    }
    with tempfile.TemporaryDirectory() as tmp, RunLog(Path(tmp)) as log, task.noise_scope(seeds.noise):
        timer = BudgetTimer(Budget(1e9), FakeClock(tick=1e-6))
        timer.start()
        loop = stn_method(method, options).make_loop(task, RunContext(task, timer, seeds, log, method))
        loop.run()
    return task.response_errors(loop.model, loop.hparams)


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--only", choices=["reach", "jacobian"], default=None)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.1, 0.3])
    args = parser.parse_args()
    t0 = time.perf_counter()
    if args.only in (None, "reach"):
        print(f"ridge, default options: hyper-steps to within ln 1.1 of λ* (first touch / {WINDOW}-step mean)")
        print(f"{'start':6} {'seed':>4} " + " ".join(f"{m + ' first':>16} {'settled':>8} {'tail':>6}" for m in METHODS))
        for start in STARTS:
            for seed in range(args.seeds):
                cells = []
                for method in METHODS:
                    r = reach(method, start, seed)
                    fmt = [("-" if r[k] is None else str(r[k])) for k in ("first", "settled")]
                    cells.append(f"{fmt[0]:>16} {fmt[1]:>8} {r['tail']:6.3f}")
                print(f"{start:6} {seed:4d} " + " ".join(cells), flush=True)
    if args.only in (None, "jacobian"):
        print("\nridge at a fixed λ: relative error of the learned dw/du (Jacobian) and of w at λ (w0)")
        for sigma in args.sigmas:
            for method in METHODS:
                errors = [jacobian_errors(method, seed, sigma) for seed in range(min(args.seeds, 3))]
                jac = " ".join(f"{e[0]:.3f}" for e in errors)
                w0 = " ".join(f"{e[1]:.4f}" for e in errors)
                print(f"σ {sigma:<4} {method:10} Jacobian {jac}   w0 {w0}", flush=True)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
