"""The test set never steers a method: every method on every task, run twice with the same seed, the
second time with the test split replaced by noise, proposes the same configs, records the same
schedule and reaches the same validation losses. Only the test losses may differ (and do).

``schedule_replay`` is left out: it trains one plain model on a recorded schedule and chooses nothing.
A ``FakeClock`` makes both runs end after the same work whatever the machine's speed; test evaluation
runs with the clock paused, and the paused reads are the same in both runs.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from hpobench_stn import Batch, Budget, FakeClock, Split, Task, get_task, method_names
from hpobench_stn.harness.records import load_log
from hpobench_stn.harness.runner import RunOutcome, RunSpec, execute

_ENV = os.environ.get("HPOBENCH_STN_DATA")
DATA = Path(_ENV) if _ENV else Path(__file__).resolve().parents[2] / "shared" / "data"
NEEDS = {"ptb_lstm": DATA / "ptb" / "ptb.train.txt", "cifar_alexnet": DATA / "cifar10"}

TICK = 0.01
# Fake seconds per task: several trials past a start-up of 3 for the black-box methods.
BUDGET_S = {"digits_mlp": 4.0, "ptb_lstm": 4.0, "cifar_alexnet": 4.0}
OPTIONS: dict[str, dict[str, Any]] = {
    "skopt_gp": {"n_initial_points": 3},
    "optuna_tpe": {"n_startup_trials": 3},
    "optuna_gp": {"n_startup_trials": 3},
    # No warm-up and validation every epoch: hyper-steps run between tested incumbents.
    "stn": {"warmup_epochs": 0, "schedule_every": 3, "max_epochs": 3},
    "ift": {"warmup_epochs": 0, "schedule_every": 3, "max_epochs": 3},
}
METHODS = [m for m in method_names() if m != "schedule_replay"]
TEST_BATCHES = 4

pytestmark = pytest.mark.slow


def noisy(batches: Iterator[Batch], generator: torch.Generator) -> Iterator[Batch]:
    """The same batches with their data replaced: floats by Gaussian noise of the same mean and sd,
    integer arrays (labels, token ids) by a random permutation of their values; scalars (a window's
    position, its stream) are kept, so the task's own bookkeeping is untouched."""
    for batch in batches:
        out = []
        for t in batch:
            if t.dim() == 0:
                out.append(t)
            elif t.is_floating_point():
                noise = torch.randn(t.shape, generator=generator, dtype=t.dtype).to(t.device)
                out.append(noise * t.std() + t.mean())
            else:
                order = torch.randperm(t.numel(), generator=generator).to(t.device)
                out.append(t.flatten()[order].view_as(t))
        yield tuple(out)


def _run(task: str, method: str, out: Path) -> RunOutcome:
    spec = RunSpec(task, method, "smoke", 0, Budget(BUDGET_S[task]), OPTIONS.get(method, {}))
    return execute(spec, out, clock=FakeClock(tick=TICK), device="cpu", data_dir=DATA)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("task", ["digits_mlp", "ptb_lstm", "cifar_alexnet"])
def test_replacing_the_test_split_by_noise_changes_nothing_a_method_does(
    task: str, method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if task in NEEDS and not NEEDS[task].exists():
        pytest.skip(f"no data for {task} under {DATA}")
    cls = get_task(task)
    original: Callable[[Task, Split], Iterator[Batch]] = cls.eval_batches
    generator = torch.Generator().manual_seed(12345)
    replace_test = False

    def eval_batches(self: Task, split: Split) -> Iterator[Batch]:
        batches = original(self, split)
        if split == "val":
            return batches
        # The first TEST_BATCHES test batches in both runs (PTB's whole test text at every new
        # incumbent would take most of the time); a stateful task still leaves a mid-text state.
        first = itertools.islice(batches, TEST_BATCHES)
        return noisy(first, generator) if replace_test else first

    monkeypatch.setattr(cls, "eval_batches", eval_batches)
    clean = _run(task, method, tmp_path / "clean")
    replace_test = True
    noise = _run(task, method, tmp_path / "noise")

    _, clean_trials, clean_schedule = load_log(clean.run_dir)
    _, noise_trials, noise_schedule = load_log(noise.run_dir)
    assert len(clean_trials) >= 2
    assert [(t.config, t.status, t.val_loss, t.elapsed_s) for t in noise_trials] == [
        (t.config, t.status, t.val_loss, t.elapsed_s) for t in clean_trials
    ]
    assert noise_schedule == clean_schedule
    # The noise did reach the test evaluations: the incumbent's test loss differs.
    assert clean.final.incumbent_test_loss is not None
    assert noise.final.incumbent_test_loss != clean.final.incumbent_test_loss
