"""execute(): resumable runs, refusals before anything is trained, and the deadline at step granularity."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from conftest import step_clock_task
from torch import nn

from hpobench_stn import (
    AskTellMethod,
    Budget,
    BudgetTimer,
    Clock,
    Config,
    EvalResult,
    FakeClock,
    RunSeeds,
    SearchSpace,
    Split,
    TaskError,
    TrialStatus,
    register_method,
    register_task,
)
from hpobench_stn.harness.records import FINAL_NAME, LOG_NAME, load_final, load_log
from hpobench_stn.harness.runner import OutputDirError, RunMismatchError, RunSpec, check_writable, execute
from hpobench_stn.harness.task import Preset
from hpobench_stn.tasks.digits_mlp import DigitsTask

TICK = 0.01


def _spec(budget: float = 1.5, seed: int = 0, method: str = "random", **options: object) -> RunSpec:
    return RunSpec("digits_mlp", method, "smoke", seed, Budget(budget), dict(options))


class UnreadableClock:
    """A clock that fails the test if anything reads it: proves that nothing ran."""

    def now(self) -> float:
        raise AssertionError("the clock was read: something ran")


def test_fake_clock_satisfies_the_clock_protocol() -> None:
    clock: Clock = FakeClock()
    assert clock.now() == 0.0


def test_run_dir_layout(tmp_path: Path) -> None:
    outcome = execute(_spec(), tmp_path, clock=FakeClock(tick=TICK), device="cpu")
    assert outcome.run_dir == tmp_path / "digits_mlp" / "smoke" / "random" / "seed0"
    assert {p.name for p in outcome.run_dir.iterdir()} == {LOG_NAME, FINAL_NAME}
    assert not outcome.skipped
    assert outcome.moved_aside == ()


def test_second_execute_of_a_complete_run_is_skipped_and_runs_nothing(tmp_path: Path) -> None:
    first = execute(_spec(), tmp_path, clock=FakeClock(tick=TICK), device="cpu")
    files = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in first.run_dir.iterdir()}
    again = execute(_spec(), tmp_path, clock=UnreadableClock(), device="cpu")
    assert again.skipped
    assert again.final == first.final
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in first.run_dir.iterdir()} == files


def test_complete_run_with_other_settings_at_the_same_path_is_refused(tmp_path: Path) -> None:
    execute(_spec(budget=1.5), tmp_path, clock=FakeClock(tick=TICK), device="cpu")
    with pytest.raises(RunMismatchError, match=r"other settings \(budget 1.5s"):
        execute(_spec(budget=2.0), tmp_path, clock=UnreadableClock(), device="cpu")


def test_complete_run_with_other_method_options_is_refused(tmp_path: Path) -> None:
    execute(_spec(method="grid", points=2), tmp_path, clock=FakeClock(tick=TICK), device="cpu")
    with pytest.raises(RunMismatchError, match=r"options \{'points': 2\}"):
        execute(_spec(method="grid", points=3), tmp_path, clock=UnreadableClock(), device="cpu")
    # Spelling out a default is the same experiment as leaving it out.
    assert execute(_spec(method="grid", points=2), tmp_path, clock=UnreadableClock(), device="cpu").skipped


def test_a_suite_redoes_a_stale_run_and_keeps_the_old_files_beside_it(tmp_path: Path) -> None:
    """With rerun_stale (suites), a finished run with other settings is moved aside and made again."""
    old = execute(_spec(method="grid", points=2), tmp_path, clock=FakeClock(tick=TICK), device="cpu")
    new = execute(_spec(method="grid", points=3), tmp_path, clock=FakeClock(tick=TICK), device="cpu", rerun_stale=True)
    assert not new.skipped
    assert new.final.meta.method_options == {"points": 3}
    assert sorted(p.name.split(".")[1].split("-")[0] for p in new.moved_aside) == ["json", "jsonl"]
    assert all(".stale-" in p.name and p.parent == old.run_dir for p in new.moved_aside)
    assert load_final(new.run_dir).meta.method_options == {"points": 3}


def test_a_run_recorded_before_an_option_existed_is_read_with_its_legacy_value(tmp_path: Path) -> None:
    """stn's runs recorded before hnet_input existed fed positions to the hypernetwork: they are not
    today's default (offsets), but they are the same experiment as hnet_input="position"."""
    import json

    opts = {"max_epochs": 1, "tune": ["dropout_in"], "hnet_input": "position"}
    spec = RunSpec("digits_mlp", "stn", "smoke", 0, Budget(60.0), opts)
    outcome = execute(spec, tmp_path, clock=FakeClock(tick=TICK), device="cpu")
    final_path = outcome.run_dir / FINAL_NAME
    data = json.loads(final_path.read_text())
    del data["meta"]["method_options"]["hnet_input"]  # as if recorded before the option existed
    final_path.write_text(json.dumps(data))
    assert execute(spec, tmp_path, clock=UnreadableClock(), device="cpu").skipped
    today = RunSpec("digits_mlp", "stn", "smoke", 0, Budget(60.0), {k: v for k, v in opts.items() if k != "hnet_input"})
    with pytest.raises(RunMismatchError):
        execute(today, tmp_path, clock=UnreadableClock(), device="cpu")


def test_run_with_a_truncated_log_is_redone_and_the_old_log_kept(tmp_path: Path) -> None:
    """A run that died mid-line is redone from scratch; its log survives beside the new one."""
    first = execute(_spec(), tmp_path, clock=FakeClock(tick=TICK), device="cpu")
    run_dir = first.run_dir
    _, first_trials, _ = load_log(run_dir)
    (run_dir / FINAL_NAME).unlink()
    log = run_dir / LOG_NAME
    truncated = log.read_bytes()[:-15]
    log.write_bytes(truncated)

    redo = execute(_spec(), tmp_path, clock=FakeClock(tick=TICK), device="cpu")
    assert not redo.skipped
    assert len(redo.moved_aside) == 1
    assert redo.moved_aside[0].name.startswith(f"{LOG_NAME}.corrupt-")
    assert redo.moved_aside[0].read_bytes() == truncated
    assert load_final(run_dir) == redo.final
    _, trials, _ = load_log(run_dir)
    assert [t.config for t in trials] == [t.config for t in first_trials]  # from scratch, same seed


def test_run_interrupted_between_lines_is_redone(tmp_path: Path) -> None:
    """A log without final.json but with whole lines is moved aside as incomplete and the run redone."""
    first = execute(_spec(), tmp_path, clock=FakeClock(tick=TICK), device="cpu")
    (first.run_dir / FINAL_NAME).unlink()
    redo = execute(_spec(), tmp_path, clock=FakeClock(tick=TICK), device="cpu")
    assert [p.name.split("-")[0] for p in redo.moved_aside] == [f"{LOG_NAME}.incomplete"]
    assert redo.final.n_trials == first.final.n_trials
    assert redo.final.incumbent_config == first.final.incumbent_config


def test_unwritable_output_dir_is_refused_before_anything_runs(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputDirError, match=r"is not writable"):
        execute(_spec(), blocker / "out", clock=UnreadableClock(), device="cpu")
    with pytest.raises(OSError, match=r"a-file"):
        check_writable(blocker)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_unknown_preset_is_refused_before_a_run_dir_exists(tmp_path: Path) -> None:
    spec = RunSpec("digits_mlp", "random", "huge", 0, Budget(1))
    with pytest.raises(TaskError, match=r"unknown preset 'huge' for task 'digits_mlp'; known: smoke, cpu"):
        execute(spec, tmp_path, clock=UnreadableClock(), device="cpu")
    assert not (tmp_path / "digits_mlp").exists()


def test_cuda_device_without_cuda_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"CUDA is not available"):
        execute(_spec(), tmp_path, clock=UnreadableClock(), device="cuda")


# The smoke preset has 10 steps per epoch; budgets ending mid-epoch, so the deadline meets a training step.
@pytest.mark.parametrize("budget_steps", [8.5, 13.0, 31.0])
def test_deadline_is_checked_before_every_training_step(
    isolated_registry: None, tmp_path: Path, budget_steps: float
) -> None:
    """With a clock that moves only during training steps (1 s each), a run stops at the first step
    check at or past the budget: charged time never exceeds the budget by one step or more."""
    clock = FakeClock(tick=0.0)
    register_task("digits_step_clock_test")(step_clock_task(clock, step_s=1.0))
    spec = RunSpec("digits_step_clock_test", "random", "smoke", 0, Budget(budget_steps))
    outcome = execute(spec, tmp_path, clock=clock, device="cpu")
    _, trials, _ = load_log(outcome.run_dir)
    assert outcome.final.elapsed_s == math.ceil(budget_steps)  # steps, each charged exactly once
    assert budget_steps <= outcome.final.elapsed_s < budget_steps + 1.0
    assert sum(t.steps for t in trials) == math.ceil(budget_steps)
    assert trials[-1].status is TrialStatus.OUT_OF_BUDGET
    assert trials[-1].reason == "deadline reached during training"


def test_proposal_that_uses_up_the_budget_is_not_trained(isolated_registry: None, tmp_path: Path) -> None:
    """A method whose ask() runs past the deadline gets no trial for that proposal: the run ends,
    charged at most the budget plus that one ask call."""
    clock = FakeClock(tick=0.0)
    register_task("digits_step_clock_test")(step_clock_task(clock, step_s=1.0))

    class SlowAsk(AskTellMethod):
        def setup(self, space: SearchSpace, seed: int) -> None:
            self.space = space

        def ask(self) -> Config:
            clock.advance(5.0)  # e.g. an acquisition optimisation that takes 5 s
            return self.space.default()

        def tell(self, config: Config, loss: float | None) -> None:
            pass

    register_method("slow_ask_test")(SlowAsk)
    steps = _steps_per_trial()
    # One trial is 5 s of ask + `steps` one-second steps; the next ask ends 5 s later, past the budget.
    spec = RunSpec("digits_step_clock_test", "slow_ask_test", "smoke", 0, Budget(5 + steps + 1))
    outcome = execute(spec, tmp_path, clock=clock, device="cpu")
    _, trials, _ = load_log(outcome.run_dir)
    assert [(t.status, t.steps) for t in trials] == [(TrialStatus.COMPLETE, steps)]
    assert outcome.final.elapsed_s == 5 + steps + 5
    assert outcome.final.phases_s["ask"] == 10.0


def _steps_per_trial() -> int:
    task = DigitsTask("smoke")
    task.prepare()
    task.load(RunSeeds.from_master(0))
    return task.preset.epochs * len(list(task.train_batches(torch.Generator().manual_seed(0))))


# ------------------------------------------------------------------------------------------------------
# Arms and a part of the space (suites' `methods.<arm>` and `tune`)


def test_tune_opens_only_the_named_hyperparameters_the_rest_stay_at_their_defaults(tmp_path: Path) -> None:
    spec = RunSpec("digits_mlp", "random", "smoke", 0, Budget(3.0), tune=("dropout_in",))
    outcome = execute(spec, tmp_path, clock=FakeClock(tick=TICK), device="cpu")
    meta, trials, _ = load_log(outcome.run_dir)
    assert meta.tuned == ["dropout_in"]
    defaults = DigitsTask.space.default()
    assert len(trials) >= 3
    for t in trials:
        assert {k: v for k, v in t.config.items() if k != "dropout_in"} == {
            k: v for k, v in defaults.items() if k != "dropout_in"
        }
    assert len({t.config["dropout_in"] for t in trials}) == len(trials)  # the open one moves
    assert execute(spec, tmp_path, clock=UnreadableClock(), device="cpu").skipped
    with pytest.raises(RunMismatchError):  # the whole space at the same path is another experiment
        execute(RunSpec("digits_mlp", "random", "smoke", 0, Budget(3.0)), tmp_path, device="cpu")


def test_stn_tunes_only_the_open_part_of_the_space(tmp_path: Path) -> None:
    spec = RunSpec("digits_mlp", "stn", "smoke", 0, Budget(3.0), {"max_epochs": 2}, tune=("dropout_h1",))
    outcome = execute(spec, tmp_path, clock=FakeClock(tick=TICK), device="cpu")
    _, trials, schedule = load_log(outcome.run_dir)
    assert set(schedule[-1].values) == {"dropout_h1", "sigma/dropout_h1"}
    assert all(t.config["dropout_in"] == DigitsTask.space.default()["dropout_in"] for t in trials)


def test_a_proposal_may_not_move_a_hyperparameter_outside_the_open_space(tmp_path: Path) -> None:
    from hpobench_stn.foundation.clock import BudgetTimer
    from hpobench_stn.harness.method import ProposalError, RunContext
    from hpobench_stn.harness.records import RunLog

    task = DigitsTask("smoke")
    timer = BudgetTimer(Budget(1.0), FakeClock())
    with RunLog(tmp_path) as log:
        ctx = RunContext(task, timer, RunSeeds.from_master(0), log, "m", space=task.space.subspace(["dropout_in"]))
        full = ctx.check_proposal({"dropout_in": 0.3})
        assert full == {**task.space.default(), "dropout_in": 0.3}
        assert ctx.check_proposal(full) == full  # a whole config with the fixed values is fine
        with pytest.raises(ProposalError, match=r"proposed \{'dropout_h1': 0.5\}, but only \['dropout_in'\] are tuned"):
            ctx.check_proposal({"dropout_in": 0.3, "dropout_h1": 0.5})


def test_an_arm_is_filed_and_recorded_under_its_own_name(tmp_path: Path) -> None:
    spec = RunSpec("digits_mlp", "random", "smoke", 0, Budget(0.5), arm="random_again")
    outcome = execute(spec, tmp_path, clock=FakeClock(tick=TICK), device="cpu")
    assert outcome.run_dir == tmp_path / "digits_mlp" / "smoke" / "random_again" / "seed0"
    assert load_final(outcome.run_dir).meta.arm == "random_again"
    assert spec.label() == "digits_mlp/smoke/random_again/seed0"


def test_a_run_recorded_before_an_option_existed_still_resumes(tmp_path: Path) -> None:
    """Recorded options are read through today's Options class: a new option's default fills the gap."""
    import json

    spec = _spec(0.5, method="grid", points=2)
    outcome = execute(spec, tmp_path, clock=FakeClock(tick=TICK), device="cpu")
    final_path = outcome.run_dir / FINAL_NAME
    data = json.loads(final_path.read_text())
    assert data["meta"]["method_options"] == {"points": 2}
    data["meta"]["method_options"] = {}  # as if recorded before `points` existed (its default is 3, though)
    del data["meta"]["arm"], data["meta"]["tuned"]  # and before arms and tune existed
    final_path.write_text(json.dumps(data))
    with pytest.raises(RunMismatchError):  # {} means points=3 today: another experiment
        execute(spec, tmp_path, device="cpu")
    assert execute(_spec(0.5, method="grid"), tmp_path, clock=UnreadableClock(), device="cpu").skipped


def test_an_empty_tune_is_refused_before_any_run() -> None:
    from hpobench_stn.foundation.space import SpaceError
    from hpobench_stn.harness.runner import check_specs

    with pytest.raises(
        SpaceError, match=r"digits_mlp/smoke/random/seed0: tune names no hyperparameter; the task's: \["
    ):
        check_specs([RunSpec("digits_mlp", "random", "smoke", 0, Budget(1.0), tune=())])


def test_replay_of_an_arm_needs_a_run_filed_by_the_runner(tmp_path: Path) -> None:
    from hpobench_stn import MethodError, get_method
    from hpobench_stn.foundation.clock import BudgetTimer
    from hpobench_stn.harness.method import RunContext
    from hpobench_stn.harness.records import RunLog

    task = DigitsTask("smoke")
    with RunLog(tmp_path) as log:
        ctx = RunContext(task, BudgetTimer(Budget(1.0), FakeClock()), RunSeeds.from_master(0), log, "schedule_replay")
        with pytest.raises(MethodError, match="option arm needs a run filed by the runner"):
            get_method("schedule_replay")({"arm": "stn"}).source(ctx)  # type: ignore[attr-defined]


class FlatDigits(DigitsTask):
    """Digits whose validation loss never improves after the first epoch: patience 1 stops every trial
    after its second epoch."""

    presets: ClassVar[Mapping[str, Preset]] = {"smoke": replace(DigitsTask.presets["smoke"], epochs=6, patience=1)}

    def evaluate(self, model: nn.Module, split: Split, timer: BudgetTimer | None = None) -> EvalResult | None:
        result = super().evaluate(model, split, timer)
        return result if result is None or split != "val" else replace(result, loss=1.0)


def test_trials_stopped_by_patience_are_recorded_with_their_epochs_and_reason(tmp_path: Path) -> None:
    register_task("digits_flat_test")(FlatDigits)
    spec = RunSpec("digits_flat_test", "random", "smoke", 0, Budget(3.0))
    outcome = execute(spec, tmp_path, clock=FakeClock(tick=TICK), device="cpu")
    _, trials, _ = load_log(outcome.run_dir)
    finished = [t for t in trials if t.status is not TrialStatus.OUT_OF_BUDGET]
    assert len(finished) >= 2
    for t in finished:
        assert t.status is TrialStatus.EARLY_STOPPED
        assert t.epochs == 2
        assert t.reason == "patience: no new best validation loss in 1 epochs (best at epoch 1)"
    final = load_final(outcome.run_dir)
    assert final.n_early_stopped == len(finished)
    assert final.n_complete == len(finished)  # finished trials: the cap or patience
