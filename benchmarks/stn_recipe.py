"""STN's recipe against the official code's, one choice at a time, at the ``cpu`` presets (issue 13).

Each comparison runs two STN arms side by side (one thread each, as the committed ``cpu`` suite ran)
on the same seed and budget, and prints, per arm: the best validation loss, the test loss at that
incumbent, the validations made, and where a few hyperparameters ended.

    python benchmarks/stn_recipe.py                      # every comparison, seed 0, 300 s per run
    python benchmarks/stn_recipe.py --only ptb_hyper_step --seed 1 --budget 120

Comparisons (first arm: the recipe before issue 13, pinned by its options; second: the official code's
choice). Seed 0 of the first three ran at commit a7b6d73, where the ``_before`` arms were the defaults
(named ``ptb_ours`` and ``cifar_ours`` there); the numbers are in docs/stn.md.

* ``ptb_hyper_step``: hyper-steps at perturbed λ with σ tuned from 0.5 and an entropy term, against
  the official LSTM hyper-step (current λ, σ fixed at 1, no entropy);
* ``ptb_alpha_beta``: the official start values (every rate and α, β at 0.05; here α, β start at 5 %
  of their ranges, 0.2 and 0.1, and the rates at 0.045), and α, β perturbed once per batch as the
  official code does; both against ``ptb_before`` of the first comparison (same conditions);
* ``cifar_start``: start values at 5 % of each range (cutout holes 0, length 1; hue 0.025; input scale
  0.015), against the official ones (every rate 0.05, cutout length 3, holes 1);
* ``ptb_sigma``: the official hyper-step with σ fixed at 0.5, against issue 13's PTB defaults (the
  official recipe, σ fixed at 1). Seed 0 ran at commit 052bdde (before ``sigma_fixed`` existed) as
  ``{}`` and ``sigma0=1.0``, the same two recipes;
* ``ptb_hnet_input``, ``cifar_hnet_input`` (issue 22): issue 13's defaults, whose hypernetwork sees the
  position ``sigmoid(u + σε)`` of each draw, against today's, whose hypernetwork sees the offset ``σε``.

Issue 22 changed the default hypernetwork input; every earlier arm pins the one of its time
(``hnet_input = "position"``), so each comparison still runs the recipes it ran then.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VARIANTS = HERE / "stn_recipe_variants.py"

CIFAR_OFFICIAL_START: dict[str, float] = {
    **{f"dropout_conv{i}": 0.05 for i in range(1, 6)},
    "dropout_fc1": 0.05,
    "dropout_fc2": 0.05,
    "dropout_in": 0.05,
    "input_scale": 0.05,
    "hue": 0.05,
    "contrast": 0.05,
    "saturation": 0.05,
    "brightness": 0.05,
    "cutout_length": 3,
    "cutout_holes": 1,
}
PTB_OFFICIAL_START: dict[str, float] = {
    **{n: 0.05 for n in ("dropouto", "dropouti", "dropouth", "dropoute", "wdrop")},
    "alpha": 0.05,
    "beta": 0.05,
}
PTB_DROPOUTS = ("dropouto", "dropouti", "dropouth", "dropoute", "wdrop")
# The recipe before issue 13, pinned: every start at the space's default (0), which the margin rule
# moves to 5 % of its range; hyper-steps at perturbed λ with σ tuned.
# Every arm of issue 13 pins the hypernetwork input of its time (positions): issue 22 changed the default.
ISSUE13 = {"hnet_input": "position"}
PTB_BEFORE: dict[str, Any] = {
    **ISSUE13,
    "hyper_perturb": True,
    "init": dict.fromkeys((*PTB_DROPOUTS, "alpha", "beta"), 0.0),
}
CIFAR_BEFORE: dict[str, Any] = {
    **ISSUE13,
    "init": {**dict.fromkeys(CIFAR_OFFICIAL_START, 0.0), "cutout_length": 0, "cutout_holes": 0},
}
# arm → (task, stn options)
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "ptb_before": ("ptb_lstm", PTB_BEFORE),
    "ptb_official_hyper_step": (
        "ptb_lstm",
        {**PTB_BEFORE, "hyper_perturb": False, "sigma0": 1.0, "tune_sigma": False},
    ),
    # The official start values: every rate and α, β at 0.05 (a margin below α's 1.25 % of its range).
    "ptb_alpha_beta_0.05": (
        "ptb_lstm",
        {**ISSUE13, "hyper_perturb": True, "init": PTB_OFFICIAL_START, "margin": 0.01},
    ),
    "ptb_alpha_beta_per_batch": ("ptb_lstm_ab_per_batch", PTB_BEFORE),
    "ptb_official_sigma_0.5": ("ptb_lstm", {**ISSUE13, "sigma_fixed": 0.5}),
    "ptb_issue13": ("ptb_lstm", ISSUE13),  # issue 13's defaults (the official hyper-step, σ fixed at 1)
    "ptb_default": ("ptb_lstm", {}),  # today's defaults: offsets into the hypernetwork
    "cifar_before": ("cifar_alexnet", CIFAR_BEFORE),
    "cifar_official_start": ("cifar_alexnet", {**ISSUE13, "init": CIFAR_OFFICIAL_START}),  # issue 13's defaults
    "cifar_default": ("cifar_alexnet", {}),  # today's defaults
}
COMPARISONS: dict[str, tuple[str, ...]] = {
    "ptb_hyper_step": ("ptb_before", "ptb_official_hyper_step"),
    "ptb_alpha_beta": ("ptb_alpha_beta_0.05", "ptb_alpha_beta_per_batch"),  # against ptb_before
    "cifar_start": ("cifar_before", "cifar_official_start"),
    "ptb_sigma": ("ptb_official_sigma_0.5", "ptb_issue13"),
    "ptb_hnet_input": ("ptb_issue13", "ptb_default"),
    "cifar_hnet_input": ("cifar_official_start", "cifar_default"),
}
SHOWN = {
    "ptb_lstm": ("dropouto", "dropouti", "dropouth", "wdrop", "alpha", "beta"),
    "cifar_alexnet": ("dropout_conv1", "dropout_fc1", "hue", "input_scale", "cutout_length", "cutout_holes"),
}


def toml(value: Any) -> str:
    """A TOML value for ``--option key=value``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {toml(v)}' for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def launch(arm: str, seed: int, budget: float, out: Path) -> subprocess.Popen[bytes]:
    task, options = ARMS[arm]
    argv = [sys.executable, "-m", "hpobench_stn", "--plugin", str(VARIANTS), "run", "--task", task]
    argv += ["--method", "stn", "--preset", "cpu", "--seed", str(seed), "--budget", str(budget)]
    argv += ["--out", str(out / arm), "--device", "cpu"]
    for key, value in options.items():
        argv += ["--option", f"{key}={toml(value)}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)


def summary(arm: str, seed: int, out: Path) -> str:
    task, _ = ARMS[arm]
    run_dir = out / arm / task / "cpu" / "stn" / f"seed{seed}"
    final = json.loads((run_dir / "final.json").read_text())
    schedule = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    last = [r for r in schedule if r["type"] == "schedule"][-1]["values"]
    ends = ", ".join(f"{n} {last[n]:.3g}" for n in SHOWN.get(task.removesuffix("_ab_per_batch"), ()) if n in last)
    sigmas = [v for k, v in last.items() if k.startswith("sigma/")]
    val, test = final["incumbent_val_loss"], final["incumbent_test_loss"]
    return (
        f"| {arm} | {'–' if val is None else f'{val:.4f}'} | {'–' if test is None else f'{test:.4f}'} | "
        f"{final['n_complete']} | {ends} | σ {min(sigmas):.2f}–{max(sigmas):.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", choices=sorted(COMPARISONS), nargs="+", help="comparisons to run (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=300.0, help="charged seconds per run")
    parser.add_argument("--out", help="where the runs go (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        print("| arm | best validation | test at incumbent | validations | λ at the end | σ at the end |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name in args.only or list(COMPARISONS):
            arms = COMPARISONS[name]
            running = [launch(arm, args.seed, args.budget, out) for arm in arms]  # side by side
            for proc, arm in zip(running, arms, strict=True):
                if proc.wait() != 0:
                    raise SystemExit(f"{arm}: hpobench run failed with exit status {proc.returncode}")
            for arm in arms:
                print(summary(arm, args.seed, out), flush=True)


if __name__ == "__main__":
    main()
