"""How good is STN's hypergradient on a known-optimum task? Its sign against the exact one, and the learned
best-response slope against the exact Jacobian, through one run (issue 22's diagnosis).

On ``dropout_regression`` and ``ridge`` (``hpobench_stn.tasks.known_optimum``) the model is one
``HyperLinear(d, 1)`` without bias, so its weights at hypernetwork input ``h`` are
``W_e + V·h·W_h``: the learned response of the weights to ``u`` is ``dw/du = V·W_h·dh/du``. The exact
best response ``w*(λ)`` and validation loss are closed-form, so after every hyper-step this script
records

* the position of λ in its range,
* whether the sign of STN's gradient in ``u`` agrees with the exact ``d val(w*(λ(u))) / du``,
* the cosine between the learned ``dw/du`` and the exact ``dw*/du``, and the ratio of their norms,
* the relative error of the weights at the current λ against ``w*(λ)``, and σ,

and prints them averaged over ten stretches of the run. It wraps ``STNLoop.hyper_step`` of
``methods/stn.py`` to read the state after each step; nothing else changes. ``--method delta_stn``
reads Delta-STN, whose hyper-step is STN's (its weights at the current λ are ``W_e`` alone).

    python benchmarks/stn_hypergradient.py --task dropout_regression --start 0.05 --seed 1 \\
        --option 'hnet_input="position"' --option sigma0=0.5     # issue 13's recipe: the slope is wrong
    python benchmarks/stn_hypergradient.py --task dropout_regression --start 0.05 --seed 1   # today's
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hpobench_stn.methods.stn as stn_module
from hpobench_stn import Budget, FakeClock, RunSeeds, get_task
from hpobench_stn.harness.runner import RunSpec, execute
from hpobench_stn.nn import HyperLinear
from hpobench_stn.tasks.known_optimum import BUDGET_S, TICK, KnownOptimumTask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="dropout_regression", choices=["dropout_regression", "ridge"])
    parser.add_argument("--start", type=float, default=0.05, help="start position in the range (default 0.05)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", default="stn", choices=["stn", "delta_stn"], help="default stn")
    parser.add_argument("--option", action="append", default=[], help="KEY=JSON method option (repeatable)")
    args = parser.parse_args()
    options: dict[str, Any] = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}
    torch.set_num_threads(1)

    task = get_task(args.task)("smoke")
    assert isinstance(task, KnownOptimumTask)
    task.load(RunSeeds.from_master(0))
    (x, y) = task._np[0]
    n = x.shape[0]
    dist = task.space[task.hparam]

    def value_of_u(u: float) -> float:
        return task.value_at(1.0 / (1.0 + math.exp(-u)))

    def w_star(u: float) -> np.ndarray:
        value = value_of_u(u)
        return np.linalg.solve(x.T @ x / n + task.penalty(value, x), x.T @ y / n)

    rows: list[tuple[float, ...]] = []
    original = stn_module.STNLoop.hyper_step

    def hyper_step(loop: Any) -> bool:
        u = float(loop.hparams.unconstrained.detach())
        ok: bool = original(loop)
        grad = float(loop.hparams.unconstrained.grad)
        e = 1e-4
        exact_grad = (task.val_loss_at(value_of_u(u + e)) - task.val_loss_at(value_of_u(u - e))) / (2 * e)
        exact_slope = (w_star(u + e) - w_star(u - e)) / (2 * e)
        layer = loop.model
        assert isinstance(layer, HyperLinear)
        kind = loop.hparams.hnet_kind
        p = 1.0 / (1.0 + math.exp(-u))
        dh_du = p * (1 - p) if kind == "position" else 1.0
        h_now = {"offset": 0.0, "unconstrained": u, "position": p}[kind]
        gate = float(layer.gate_weight[0, 0].detach())
        slope = gate * dh_du * layer.hyper_weight[0].detach().numpy()
        w_now = layer.weight[0].detach().numpy() + gate * h_now * layer.hyper_weight[0].detach().numpy()
        cos = float(slope @ exact_slope / (np.linalg.norm(slope) * np.linalg.norm(exact_slope) + 1e-12))
        ratio = float(np.linalg.norm(slope) / (np.linalg.norm(exact_slope) + 1e-12))
        w_err = float(np.linalg.norm(w_now - w_star(u)) / np.linalg.norm(w_star(u)))
        sigma = float(loop.hparams.sigma().detach())
        rows.append((loop.steps, p, float(np.sign(grad) == np.sign(exact_grad)), cos, ratio, w_err, sigma))
        return ok

    stn_module.STNLoop.hyper_step = hyper_step  # type: ignore[method-assign,assignment]
    with tempfile.TemporaryDirectory() as tmp:
        spec = RunSpec(
            args.task,
            args.method,
            "smoke",
            args.seed,
            Budget(BUDGET_S),
            {"init": {task.hparam: task.value_at(args.start)}, **options},
        )
        execute(spec, Path(tmp), clock=FakeClock(tick=TICK), device="cpu")
    stn_module.STNLoop.hyper_step = original  # type: ignore[method-assign]

    table = np.array(rows)
    print(f"{args.method} on {args.task}, start {args.start}, seed {args.seed}, options {options or 'default'}")
    print(f"optimum at position {dist.position(task.optimum()):.3f}; {len(rows)} hyper-steps")
    head = f"{'to step':>7} {'position':>8} {'sign agrees':>11} {'cos(slope)':>10}"
    print(f"{head} {'|slope|/|exact|':>15} {'w error':>7} {'σ':>5}")
    for chunk in np.array_split(table, 10):
        print(
            f"{chunk[-1, 0]:>7.0f} {chunk[:, 1].mean():>8.3f} {chunk[:, 2].mean():>11.2f} {chunk[:, 3].mean():>10.2f} "
            f"{np.median(chunk[:, 4]):>15.3f} {chunk[:, 5].mean():>7.2f} {chunk[:, 6].mean():>5.2f}"
        )


if __name__ == "__main__":
    main()
