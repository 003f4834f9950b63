"""What a run is charged, end to end: exactly the phases docs/architecture.md lists as charged.

A digits task whose every stage moves a fake clock by its own, distinctive amount: ``prepare`` (not
charged: before the clock starts), ``load`` (charged, ``data``), ``warm_up`` (paused), each training
step (``train``), each validation (``validate``) and each test evaluation (paused). The harness's own
clock reads cost nothing (``FakeClock(tick=0)``), so the charged total is a sum that can be written
down, and any stage charged by mistake (or left uncharged) shows up as its own amount.
"""

from __future__ import annotations

from pathlib import Path

import torch
from conftest import DefaultOnly
from torch import nn

from hpobench_stn import (
    Batch,
    Budget,
    Config,
    EvalResult,
    FakeClock,
    RunSeeds,
    Split,
    register_method,
    register_task,
)
from hpobench_stn.foundation.clock import BudgetTimer
from hpobench_stn.harness.records import load_log
from hpobench_stn.harness.runner import RunSpec, execute
from hpobench_stn.tasks.digits_mlp import DigitsTask

PREPARE_S = 1000.0  # not charged: runs before the clock starts
LOAD_S = 3.0  # charged to "data"
WARM_UP_S = 100.0  # paused
STEP_S = 1.0  # charged to "train", per step
VALIDATE_S = 0.25  # charged to "validate", per validation
TEST_S = 10_000.0  # paused, per test evaluation


def clocked_task(clock: FakeClock) -> type[DigitsTask]:
    class Clocked(DigitsTask):
        def prepare(self) -> None:
            clock.advance(PREPARE_S)
            super().prepare()

        def load(self, seeds: RunSeeds) -> str:
            clock.advance(LOAD_S)
            return super().load(seeds)

        def warm_up(self) -> None:
            clock.advance(WARM_UP_S)
            super().warm_up()

        def training_loss(self, model: nn.Module, batch: Batch, config: Config) -> torch.Tensor:
            clock.advance(STEP_S)
            return super().training_loss(model, batch, config)

        def evaluate(self, model: nn.Module, split: Split, timer: BudgetTimer | None = None) -> EvalResult | None:
            clock.advance(VALIDATE_S if split == "val" else TEST_S)
            return super().evaluate(model, split, timer)

    return Clocked


def test_exactly_the_documented_phases_are_charged(isolated_registry: None, tmp_path: Path) -> None:
    clock = FakeClock(tick=0.0)
    register_task("digits_charging_test")(clocked_task(clock))
    register_method("default_only_charging_test")(DefaultOnly)  # 3 trials of the default config
    spec = RunSpec("digits_charging_test", "default_only_charging_test", "smoke", 0, Budget(1e6))
    outcome = execute(spec, tmp_path, clock=clock, device="cpu")
    _, trials, _ = load_log(outcome.run_dir)

    steps = sum(t.steps for t in trials)
    validations = sum(t.epochs for t in trials)  # one validation after every epoch
    assert len(trials) == DefaultOnly.repeats
    assert steps > 0
    assert validations > 0
    tested = [t for t in trials if t.test_loss is not None]
    assert tested  # at least one test evaluation happened (paused)

    charged = {k: v for k, v in outcome.final.phases_s.items() if v != 0.0}
    assert charged == {"data": LOAD_S, "train": steps * STEP_S, "validate": validations * VALIDATE_S}
    assert outcome.final.elapsed_s == LOAD_S + steps * STEP_S + validations * VALIDATE_S
    # Each record's time stamp is charged time so far: the load, then every step and validation of the
    # trials up to it; neither the warm-up nor any test evaluation.
    done = 0.0
    for t in trials:
        done += t.steps * STEP_S + t.epochs * VALIDATE_S
        assert t.elapsed_s == LOAD_S + done
    # The clock itself moved by everything, so the paused and uncharged stages really ran (the warm-up
    # includes one training step of the default config).
    paused = WARM_UP_S + STEP_S + len(tested) * TEST_S
    assert clock.now() == PREPARE_S + paused + outcome.final.elapsed_s
