"""Shared fixtures: test-only tasks and methods, an isolated registry, records to round-trip, the CLI.

Test-only plug-ins are registered inside fixtures (never at import time), so that the contract suite,
which is parametrised over ``method_names()`` when it is collected, sees exactly the real plug-ins.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from hpobench_stn import (
    AskTellMethod,
    Batch,
    Config,
    FakeClock,
    FinalRecord,
    RunMetadata,
    RunSeeds,
    SearchSpace,
    TrialRecord,
    TrialStatus,
    method_names,
    register_method,
    register_task,
    task_names,
)
from hpobench_stn.foundation.provenance import DataFile
from hpobench_stn.harness import registry as registry_module
from hpobench_stn.tasks.digits_mlp import DigitsTask

# Decoded dataset caches go to the project's ignored .cache/, never into a shared data folder.
os.environ.setdefault("HPOBENCH_STN_CACHE", str(Path(__file__).resolve().parents[1] / ".cache"))

# Two cores shared with other work: one intra-op thread avoids the stalls of an oversubscribed
# OpenMP pool. Nothing a test asserts depends on the thread count (every comparison is in-process).
torch.set_num_threads(1)

# dropout_in lies in [0, 0.8]; above this threshold the failing test tasks below misbehave.
FAIL_ABOVE = 0.4


class NonFiniteDigits(DigitsTask):
    """digits_mlp whose training loss becomes ``bad_value`` (NaN or inf) when dropout_in > FAIL_ABOVE."""

    bad_value = float("nan")

    def training_loss(self, model: nn.Module, batch: Batch, config: Config) -> torch.Tensor:
        loss = super().training_loss(model, batch, config)
        if float(config["dropout_in"]) > FAIL_ABOVE:
            return loss * self.bad_value
        return loss


class InfDigits(NonFiniteDigits):
    bad_value = float("inf")


class RaisingDigits(DigitsTask):
    """digits_mlp whose training raises when dropout_in > FAIL_ABOVE (e.g. a CUDA out-of-memory)."""

    def training_loss(self, model: nn.Module, batch: Batch, config: Config) -> torch.Tensor:
        if float(config["dropout_in"]) > FAIL_ABOVE:
            raise RuntimeError("simulated out of memory in the forward pass")
        return super().training_loss(model, batch, config)


def step_clock_task(clock: FakeClock, step_s: float) -> type[DigitsTask]:
    """A digits_mlp subclass where every training step costs exactly ``step_s`` seconds on ``clock``.

    With ``FakeClock(tick=0)`` the harness's own clock reads cost nothing, so fake time counts training
    steps only: the precise setting for "the deadline is checked before every step".
    """

    class StepClockDigits(DigitsTask):
        def training_loss(self, model: nn.Module, batch: Batch, config: Config) -> torch.Tensor:
            clock.advance(step_s)
            return super().training_loss(model, batch, config)

    return StepClockDigits


class DefaultOnly(AskTellMethod):
    """Proposes the space's default config, ``repeats`` times."""

    repeats = 3

    def setup(self, space: SearchSpace, seed: int) -> None:
        self._space = space
        self._left = self.repeats

    def ask(self) -> Config | None:
        if self._left == 0:
            return None
        self._left -= 1
        return self._space.default()

    def tell(self, config: Config, loss: float | None) -> None:
        pass


class FixedProposal(AskTellMethod):
    """Proposes ``proposal`` (set per test) every time; feeds the harness invalid configs."""

    proposal: Mapping[str, Any] = {}

    def setup(self, space: SearchSpace, seed: int) -> None:
        pass

    def ask(self) -> Mapping[str, Any] | None:
        return dict(type(self).proposal)

    def tell(self, config: Config, loss: float | None) -> None:
        pass


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made during the test are undone afterwards (the real plug-ins stay loaded)."""
    method_names()
    task_names()
    monkeypatch.setattr(registry_module, "_METHODS", dict(registry_module._METHODS))
    monkeypatch.setattr(registry_module, "_TASKS", dict(registry_module._TASKS))


@pytest.fixture
def plugins_for_tests(isolated_registry: None) -> dict[str, str]:
    """Registers the test-only tasks and methods; returns role → registered name."""
    names = {
        "nan_task": "digits_nan_test",
        "inf_task": "digits_inf_test",
        "raising_task": "digits_raising_test",
        "default_method": "default_only_test",
        "fixed_method": "fixed_proposal_test",
    }
    register_task(names["nan_task"])(NonFiniteDigits)
    register_task(names["inf_task"])(InfDigits)
    register_task(names["raising_task"])(RaisingDigits)
    register_method(names["default_method"])(DefaultOnly)
    register_method(names["fixed_method"])(FixedProposal)
    return names


@pytest.fixture
def digits() -> DigitsTask:
    """The real digits task at the smoke preset on CPU, prepared and loaded with seed 0."""
    task = DigitsTask("smoke", device="cpu")
    task.prepare()
    task.load(RunSeeds.from_master(0))
    return task


@pytest.fixture
def meta() -> RunMetadata:
    return RunMetadata(
        task="digits_mlp",
        preset="smoke",
        method="random",
        method_options={},
        seed=3,
        budget_s=4.5,
        data_source="bundled",
        device="cpu (x86_64, 1 threads)",
        git_sha="0123456789abcdef",
        git_dirty=False,
        versions={"python": "3.11", "torch": "2"},
        command=["hpobench", "run"],
        started_at="2026-01-01T00:00:00Z",
        data_files=(DataFile("digits/extra.txt", "0" * 64, 12),),
    )


@pytest.fixture
def trial() -> TrialRecord:
    return TrialRecord(
        index=0,
        config={"dropout_in": 0.25, "dropout_h1": 0.0, "dropout_h2": 0.8, "weight_decay": 1e-4, "shift": 2},
        status=TrialStatus.COMPLETE,
        val_loss=0.5,
        val_metrics={"accuracy": 0.875},
        best_so_far=0.5,
        test_loss=0.625,
        elapsed_s=1.25,
        phases_s={"ask": 0.01, "train": 1.0, "validate": 0.2, "tell": 0.04},
        epochs=4,
        steps=24,
        reason=None,
    )


@pytest.fixture
def final(meta: RunMetadata, trial: TrialRecord) -> FinalRecord:
    return FinalRecord(
        meta=meta,
        incumbent_config=dict(trial.config),
        incumbent_val_loss=trial.val_loss,
        incumbent_test_loss=trial.test_loss,
        incumbent_trial=0,
        n_trials=1,
        n_complete=1,
        elapsed_s=1.5,
        wall_s=2.0,
        phases_s={"data": 0.25, "ask": 0.01, "train": 1.0, "validate": 0.2, "tell": 0.04},
    )


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def cli_env() -> dict[str, str]:
    """The environment of CLI subprocesses: no data-dir override, no debug tracebacks, one thread."""
    env = {k: v for k, v in os.environ.items() if k not in {"HPOBENCH_STN_DATA", "HPOBENCH_DEBUG"}}
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.fixture(scope="session")
def run_cli(cli_env: dict[str, str]) -> CliRunner:
    """``run_cli(*args, cwd=DIR)``: ``python -m hpobench_stn ARGS`` in a subprocess, output captured."""

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hpobench_stn", *args],
            cwd=cwd,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    return run
