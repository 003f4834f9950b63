"""How many configs do the multi-fidelity methods evaluate in a run, against random search? (issue 15)

Runs ``random``, ``optuna_sh`` and ``optuna_hyperband`` at their default options on each task's
``cpu`` preset with a real clock (one thread, as the committed ``cpu`` suite runs), and prints per run:
the configs evaluated (trials that completed at least one validation), how they ended (at the epoch
cap / by patience / pruned / failed), the mean epochs per config, the best validation loss, and the
ratio of configs to random search's. The target of issue 15: ``optuna_hyperband`` evaluates at least
3x as many configs as ``random`` in a 300 s run.

Runs are filed under ``--out`` like a suite's, so an interrupted benchmark resumes (finished runs are
read back, not re-run).

    python benchmarks/multifidelity.py                                # both paper tasks, seed 0, 300 s
    python benchmarks/multifidelity.py --tasks digits_mlp --budget 30 --seeds 0 1
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from hpobench_stn import Budget, TrialStatus
from hpobench_stn.harness.records import load_log
from hpobench_stn.harness.runner import RunSpec, execute

METHODS = ("random", "optuna_sh", "optuna_hyperband")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", nargs="+", default=["ptb_lstm", "cifar_alexnet"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--budget", type=float, default=300.0, help="charged seconds per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=Path(".cache/benchmarks/multifidelity"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(f"preset {args.preset}, {args.budget:.0f} s per run, seeds {args.seeds}, {args.threads} thread(s)")
    print(
        "| task | method | seed | configs | cap / patience / pruned / failed | epochs per config (mean) "
        "| best val | configs vs random |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for task in args.tasks:
        for seed in args.seeds:
            counts: dict[str, int] = {}
            for method in args.methods:
                spec = RunSpec(task, method, args.preset, seed, Budget(args.budget))
                outcome = execute(spec, args.out, device=args.device, command=["benchmarks/multifidelity.py"])
                _, trials, _ = load_log(outcome.run_dir)
                evaluated = [t for t in trials if t.epochs > 0 or t.status is TrialStatus.FAILED]
                by = {s: sum(t.status is s for t in evaluated) for s in TrialStatus}
                counts[method] = len(evaluated)
                ended = " / ".join(
                    str(by[s])
                    for s in (TrialStatus.COMPLETE, TrialStatus.EARLY_STOPPED, TrialStatus.PRUNED, TrialStatus.FAILED)
                )
                epochs = statistics.fmean(t.epochs for t in evaluated) if evaluated else float("nan")
                best = outcome.final.incumbent_val_loss
                ratio = f"{len(evaluated) / counts['random']:.1f}x" if counts.get("random") else "–"
                best_s = f"{best:.4f}" if best is not None else "–"
                cells = [task, method, seed, len(evaluated), ended, f"{epochs:.1f}", best_s, ratio]
                print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
