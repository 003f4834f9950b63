"""How many of its K Neumann terms ``ift`` keeps on the paper tasks, and the α its power iteration sets.

The series in ``methods/ift.py`` (:func:`~hpobench_stn.methods.ift.inverse_hvp`) stops at the first
term that does not shrink. This script runs ``ift`` at its defaults (or ``--option`` overrides) on each
task for ``--budget`` seconds of real wall-clock, seed 0, and wraps the series to record, per hyper-step,
the α it was given and how many of the K terms it kept. It prints, per task, the hyper-steps, α's
range, and the distribution of kept terms over the first and the second half of the run (the weights
are untrained at the start). Nothing in the method changes; the wrapper re-runs no product.

    python benchmarks/ift_neumann_terms.py                          # ptb_lstm and cifar_alexnet, cpu, 150 s each
    python benchmarks/ift_neumann_terms.py --preset smoke --budget 20
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

import hpobench_stn.methods.ift as ift
from hpobench_stn import Budget
from hpobench_stn.harness.runner import RunSpec, execute

Vectors = tuple[torch.Tensor, ...]
_ORIGINAL = ift.inverse_hvp


def counting(calls: list[tuple[float, int, int]]) -> Callable[..., Vectors]:
    """``inverse_hvp`` that appends ``(α, terms kept, K)`` to ``calls`` for every series it computes."""
    original = _ORIGINAL

    def wrapped(hvp: Callable[[Vectors], Vectors], v: Vectors, alpha: float, terms: int) -> Vectors:
        kept = [0]

        def watched(x: Vectors) -> Vectors:
            hx = hvp(x)
            nxt = tuple(t - alpha * h for t, h in zip(x, hx, strict=True))
            if ift._norm(nxt) < ift._norm(x):  # the guard's own test: this term will be kept
                kept[0] += 1
            return hx

        out = original(watched, v, alpha, terms)
        calls.append((alpha, kept[0], terms))
        return out

    return wrapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["ptb_lstm", "cifar_alexnet"])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--budget", type=float, default=150.0, help="real seconds per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--option", action="append", default=[], help="KEY=JSON ift option (repeatable)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}
    print(f"ift, options {options or 'default'}, preset {args.preset}, {args.budget:g} s a run, seed 0")
    for task in args.tasks:
        calls: list[tuple[float, int, int]] = []
        ift.inverse_hvp = counting(calls)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                spec = RunSpec(task, "ift", args.preset, 0, Budget(args.budget), options)
                execute(spec, Path(tmp), device="cpu")
        finally:
            ift.inverse_hvp = _ORIGINAL
        if not calls:
            print(f"{task}: no hyper-step in {args.budget:g} s")
            continue
        alphas = [a for a, _, _ in calls]
        half = len(calls) // 2
        print(f"{task}: {len(calls)} hyper-steps, K = {calls[0][2]}, α from {min(alphas):.3g} to {max(alphas):.3g}")
        for label, part in (("first half", calls[:half]), ("second half", calls[half:])):
            hist = collections.Counter(k for _, k, _ in part)
            shares = ", ".join(f"{k}: {hist[k] / len(part):.0%}" for k in sorted(hist))
            mean = sum(k for _, k, _ in part) / max(len(part), 1)
            print(f"  {label:<11} terms kept (share of hyper-steps) {shares}; mean {mean:.2f}")


if __name__ == "__main__":
    main()
