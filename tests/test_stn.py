"""The ``stn`` method: its run contract, the hyper-models of the three tasks, refusals, and the schedule
replay. Known optima (ridge, a dropout rate) are in ``test_known_optimum.py``."""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest
import torch
from torch import nn

from hpobench_stn import (
    Batch,
    Budget,
    FakeClock,
    Float,
    HParamKind,
    MethodError,
    Preset,
    SearchSpace,
    Task,
    TaskError,
    TrialRecord,
    TrialStatus,
    get_method,
    get_task,
    register_task,
)
from hpobench_stn.foundation.clock import BudgetTimer
from hpobench_stn.foundation.seeding import RunSeeds
from hpobench_stn.harness.records import load_final, load_log
from hpobench_stn.harness.runner import RunOutcome, RunSpec, execute
from hpobench_stn.harness.schedule import Schedule
from hpobench_stn.methods.stn import STN
from hpobench_stn.nn import elementary_parameter_count, hyper_input_of, init_hyper_path, is_hyper_path
from hpobench_stn.tasks.cifar_alexnet import CifarAlexNet
from hpobench_stn.tasks.digits_mlp import DigitsTask
from hpobench_stn.tasks.ptb_lstm import PTBPreset, PTBTask

_ENV = os.environ.get("HPOBENCH_STN_DATA")
DATA = Path(_ENV) if _ENV else Path(__file__).resolve().parents[2] / "shared" / "data"
HAS_PTB = (DATA / "ptb" / "ptb.train.txt").is_file()
HAS_CIFAR = (DATA / "cifar10").is_dir()

TICK = 0.01
BUDGET_S = 3.0
# Cheap STN settings for digits smoke (6 steps per epoch): a short warm-up, a validation every epoch.
DIGITS_OPTIONS: dict[str, Any] = {"warmup_epochs": 1, "schedule_every": 3}


# ------------------------------------------------------------------------------------------------------
# The run contract, on digits_mlp with a fake clock


def _run(seed: int, out: Path, options: Mapping[str, Any] | None = None, task: str = "digits_mlp") -> RunOutcome:
    spec = RunSpec(task, "stn", "smoke", seed, Budget(BUDGET_S), dict(options or DIGITS_OPTIONS))
    return execute(spec, out, clock=FakeClock(tick=TICK), device="cpu", data_dir=DATA)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunOutcome, RunOutcome, RunOutcome]:
    return (
        _run(0, tmp_path_factory.mktemp("stn-a")),
        _run(0, tmp_path_factory.mktemp("stn-b")),
        _run(1, tmp_path_factory.mktemp("stn-c")),
    )


def test_run_records_validations_and_a_schedule(runs: tuple[RunOutcome, ...]) -> None:
    """One trial per epoch's validation (the last one cut by the deadline); λ and σ logged every 3 steps."""
    meta, trials, schedule = load_log(runs[0].run_dir)
    space = get_task("digits_mlp").space
    assert len(trials) >= 5
    for trial in trials[:-1]:
        assert trial.status is TrialStatus.COMPLETE
        assert trial.val_loss is not None
        assert space.validate(trial.config) == trial.config
    assert [t.epochs for t in trials[:-1]] == list(range(1, len(trials)))
    assert trials[-1].status is TrialStatus.OUT_OF_BUDGET
    steps = [s.step for s in schedule]
    assert steps[0] == 0
    assert all(b - a == 3 for a, b in itertools.pairwise(steps[:-1]))  # the last: at the deadline
    assert set(schedule[0].values) == {*space, *(f"sigma/{n}" for n in space)}
    assert meta.method_options == STN(DIGITS_OPTIONS).options_dict()


def test_lambda_moves_only_after_the_warm_up(runs: tuple[RunOutcome, ...]) -> None:
    """During the warm-up epoch (6 steps) λ and σ stay at their start; afterwards they move."""
    _, _, schedule = load_log(runs[0].run_dir)
    first = schedule[0].values
    assert all(s.values == first for s in schedule if s.step <= 6)
    assert schedule[-1].values != first


def test_same_seed_same_run_other_seed_other_schedule(runs: tuple[RunOutcome, ...]) -> None:
    """Seed 0 twice gives identical records (fake clock); seed 1 a different schedule."""
    a, b, c = (load_log(r.run_dir) for r in runs)
    assert [t.to_json() | {"elapsed_s": 0} for t in a[1]] == [t.to_json() | {"elapsed_s": 0} for t in b[1]]
    assert [s.values for s in a[2]] == [s.values for s in b[2]]
    assert [s.values for s in a[2]][1:] != [s.values for s in c[2]][1:]


def test_budget_is_respected_and_every_second_has_a_phase(runs: tuple[RunOutcome, ...]) -> None:
    """Charged time ends within a few clock reads of the budget and equals the sum of train/hyper/validate/..."""
    for outcome in runs:
        final = outcome.final
        assert BUDGET_S <= final.elapsed_s <= BUDGET_S + 12 * TICK
        assert math.fsum(final.phases_s.values()) == pytest.approx(final.elapsed_s, rel=1e-9, abs=1e-9)
        assert {"train", "hyper", "validate"} <= set(final.phases_s)


def test_incumbents_are_tested_and_records_round_trip(runs: tuple[RunOutcome, ...]) -> None:
    """Exactly the validations that improve carry a test loss; the final record names the best one."""
    _, trials, _ = load_log(runs[0].run_dir)
    best: float | None = None
    for trial in trials:
        improves = trial.val_loss is not None and (best is None or trial.val_loss < best)
        assert (trial.test_loss is not None) == improves
        best = trial.val_loss if improves else best
        assert TrialRecord.from_json(json.loads(json.dumps(trial.to_json()))) == trial
    final = load_final(runs[0].run_dir)
    assert final.incumbent_val_loss == best
    assert final.incumbent_test_loss is not None


def test_max_epochs_ends_the_run_early(tmp_path: Path) -> None:
    outcome = _run(0, tmp_path, {**DIGITS_OPTIONS, "max_epochs": 2})
    _, trials, _ = load_log(outcome.run_dir)
    assert [t.epochs for t in trials] == [1, 2]
    assert outcome.final.elapsed_s < BUDGET_S


def test_tune_sigma_false_keeps_sigma_and_moves_lambda(tmp_path: Path) -> None:
    """The sensitivity suite's fixed-σ arm: σ stays at sigma0 for every float hyperparameter, λ still moves."""
    tune = ["dropout_in", "dropout_h1"]
    outcome = _run(0, tmp_path, {**DIGITS_OPTIONS, "tune": tune, "sigma0": 0.1, "tune_sigma": False})
    _, _, schedule = load_log(outcome.run_dir)
    sigmas = {s.values[f"sigma/{n}"] for s in schedule for n in tune}
    assert all(abs(v - 0.1) < 1e-6 for v in sigmas)
    assert any(schedule[-1].values[n] != schedule[0].values[n] for n in tune)


def test_hyper_steps_at_the_current_lambda_keep_sigma_and_move_lambda(tmp_path: Path) -> None:
    """hyper_perturb=false (the official LSTM hyper-step): σ has no validation gradient and no entropy
    term, so it stays at sigma0 although tune_sigma is on; λ still moves, and the run differs from the
    perturbed hyper-steps of the same seed."""
    tune = ["dropout_in", "dropout_h1"]
    options = {**DIGITS_OPTIONS, "tune": tune, "sigma0": 0.3}
    still = _run(0, tmp_path / "current", {**options, "hyper_perturb": False})
    perturbed = _run(0, tmp_path / "perturbed", options)
    _, _, schedule = load_log(still.run_dir)
    assert all(abs(s.values[f"sigma/{n}"] - 0.3) < 1e-6 for s in schedule for n in tune)
    assert any(schedule[-1].values[n] != schedule[0].values[n] for n in tune)
    _, _, other = load_log(perturbed.run_dir)
    assert any(abs(other[-1].values[f"sigma/{n}"] - 0.3) > 1e-6 for n in tune)  # perturbed: σ is tuned
    fixed = _run(0, tmp_path / "fixed", {**options, "hyper_perturb": False, "sigma_fixed": 0.7})
    _, _, at_fixed = load_log(fixed.run_dir)
    assert all(abs(s.values[f"sigma/{n}"] - 0.7) < 1e-6 for s in at_fixed for n in tune)  # sigma_fixed, not sigma0


def test_task_defaults_give_the_official_recipe_and_the_users_options_win() -> None:
    """PTB: the official LSTM hyper-step and rates starting at 0.05; CIFAR: the official start values
    (every rate 0.05, cutout length 3 and one hole). A user's init entry replaces the task's for that
    name only; a user's hyper_perturb replaces the task's."""
    ptb = STN().resolved(PTBTask("smoke"))
    assert (ptb.hyper_perturb, ptb.sigma_fixed) == (False, 1.0)
    assert ptb.init == dict.fromkeys(("dropouto", "dropouti", "dropouth", "dropoute", "wdrop"), 0.05)
    cifar = STN({"init": {"hue": 0.2}}).resolved(CifarAlexNet("smoke"))
    assert cifar.hyper_perturb is True
    assert (cifar.init["hue"], cifar.init["cutout_length"], cifar.init["cutout_holes"]) == (0.2, 3, 1)
    assert cifar.init["dropout_conv1"] == cifar.init["input_scale"] == 0.05
    assert STN({"hyper_perturb": True}).resolved(PTBTask("smoke")).hyper_perturb is True


def test_sigma_starts_at_the_tasks_value_then_at_one() -> None:
    """σ0: CIFAR's official 0.5, otherwise 1 (the official LSTM's fixed σ, Delta-STN's start); a user's wins.
    The hypernetwork sees offsets unless told otherwise."""
    assert STN().resolved(CifarAlexNet("smoke")).sigma0 == 0.5
    assert STN().resolved(DigitsTask("smoke")).sigma0 == 1.0
    assert STN({"sigma0": 0.3}).resolved(CifarAlexNet("smoke")).sigma0 == 0.3
    assert STN().options.hnet_input == "offset"


def test_a_schedule_parked_at_a_bound_is_warned_about_in_the_log_the_record_and_the_report(
    isolated_registry: None, tmp_path: Path
) -> None:
    """A run whose rate starts within 2.5 % of its bound and barely moves is flagged: a warning record in
    log.jsonl, the message in final.json, the runs.csv column and a line under summary.md."""
    from hpobench_stn.reporting.pipeline import make_report

    parked = {**DIGITS_OPTIONS, "tune": ["dropout_in", "dropout_h1"], "margin": 0.001, "hyper_lr": 1e-9}
    parked["init"] = {"dropout_in": 0.0, "dropout_h1": 0.4}
    outcome = _run(0, tmp_path, parked)
    warning = outcome.final.warnings
    assert len(warning) == 1
    assert warning[0].startswith("dropout_in sat at a bound of its range for 100% of the schedule")
    lines = [json.loads(line) for line in (outcome.run_dir / "log.jsonl").read_text().splitlines()]
    assert [d["message"] for d in lines if d["type"] == "warning"] == warning
    report = make_report(tmp_path, tmp_path / "plots", times=("linear",))
    assert "Flagged runs (1;" in report.markdown
    assert "digits_mlp/smoke/stn/seed0: dropout_in sat at" in report.markdown
    calm = _run(1, tmp_path / "calm", {**DIGITS_OPTIONS, "tune": ["dropout_h1"]})
    assert calm.final.warnings == []


# ------------------------------------------------------------------------------------------------------
# What STN refuses


class LearningRateDigits(DigitsTask):
    """digits_mlp with a (dummy) learning rate in its space, marked as an optimisation setting."""

    space = SearchSpace({**DigitsTask.space, "lr": Float(0.01, 1.0, default=0.1, kind=HParamKind.OPTIMIZATION)})


def test_stn_refuses_optimisation_settings_and_tunes_the_rest(isolated_registry: None, tmp_path: Path) -> None:
    register_task("digits_lr")(LearningRateDigits)
    with pytest.raises(MethodError, match=r"stn cannot tune \['lr'\].*optimisation settings"):
        _run(0, tmp_path / "a", task="digits_lr")
    tune = ["dropout_in", "dropout_h1"]
    outcome = _run(0, tmp_path / "b", {**DIGITS_OPTIONS, "tune": tune, "max_epochs": 3}, task="digits_lr")
    _, trials, schedule = load_log(outcome.run_dir)
    assert set(schedule[-1].values) == {*tune, *(f"sigma/{n}" for n in tune)}
    assert all(t.config["lr"] == 0.1 and t.config["shift"] == 0 for t in trials)  # untuned: the defaults


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"tune": ["nope"]}, r"cannot tune \['nope'\]"),
        ({"tune": []}, "cannot tune nothing"),
        ({"perturb": "sometimes"}, "perturb must be"),
        ({"train_steps": 0}, "train_steps must be an integer >= 1"),
        ({"tau": -1.0}, "tau must be a finite number >= 0"),
        ({"hyper_lr": 0.0}, "hyper_lr must be a finite number > 0"),
        ({"margin": 0.5}, r"margin must lie in \(0, 0.5\), got 0.5"),
        ({"sigma_max": float("inf")}, "sigma_max must be a finite number > 0"),
        ({"tune_sigma": "no"}, "tune_sigma must be true or false, got 'no'"),
        ({"hyper_perturb": 1}, "hyper_perturb must be true or false, got 1"),
        ({"sigma_fixed": -1.0}, "sigma_fixed must be a finite number > 0"),
        ({"sigma0": 0.0}, "sigma0 must be a finite number > 0, got 0.0"),
        ({"hnet_input": "logit"}, r"hnet_input must be one of \['offset', 'unconstrained', 'position'\], got 'logit'"),
    ],
)
def test_bad_options_raise_clear_errors(options: dict[str, Any], match: str, tmp_path: Path) -> None:
    with pytest.raises(MethodError, match=match):
        _run(0, tmp_path, options)


class BadDefaults(DigitsTask):
    def best_response_defaults(self) -> Mapping[str, Any]:
        return {"warmup_epoch": 2}  # a typo: not an option


class NoTuningBatches(DigitsTask):
    def tuning_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        return iter(())


def test_a_task_with_bad_defaults_or_no_tuning_batches_is_refused(isolated_registry: None, tmp_path: Path) -> None:
    """A task's misspelled best-response default, and a task whose tuning_batches yield nothing, are named."""
    register_task("digits_bad_defaults")(BadDefaults)
    register_task("digits_no_tuning")(NoTuningBatches)
    with pytest.raises(
        MethodError, match=r"task 'digits_bad_defaults': unknown best-response defaults \['warmup_epoch'\]"
    ):
        _run(0, tmp_path / "a", task="digits_bad_defaults")
    with pytest.raises(MethodError, match=r"stn: the task's tuning_batches\(\) yielded no batch"):
        _run(0, tmp_path / "b", task="digits_no_tuning")


class BlackBoxOnly(DigitsTask):
    """digits_mlp with the Task defaults for the best-response parts: a task that has none."""

    build_network = Task.build_network
    regularised_loss = Task.regularised_loss


def test_a_task_without_a_hyper_model_says_so() -> None:
    task = BlackBoxOnly("smoke")
    with pytest.raises(TaskError, match="has no best-response model"):
        task.build_hyper_model(2, torch.Generator())
    with pytest.raises(TaskError, match="has no per-example training loss"):
        task.training_loss(nn.Linear(1, 1), (torch.zeros(1),), task.space.default())


# ------------------------------------------------------------------------------------------------------
# Hyper-steps are clean


class SpyDigits(DigitsTask):
    """Records the training mode of the model at every eval_sums call during a run."""

    modes: ClassVar[list[bool]] = []

    def eval_sums(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int, dict[str, torch.Tensor]]:
        type(self).modes.append(model.training)
        return super().eval_sums(model, batch)

    def tuning_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        for x, y in super().tuning_batches(generator):
            assert x.shape[0] == self.preset.batch_size or x.shape[0] < self.preset.batch_size
            yield x, y


def test_hyper_steps_run_the_model_in_eval_mode(isolated_registry: None, tmp_path: Path) -> None:
    register_task("digits_spy")(SpyDigits)
    SpyDigits.modes.clear()
    _run(0, tmp_path, {**DIGITS_OPTIONS, "max_epochs": 3}, task="digits_spy")
    assert len(SpyDigits.modes) > 3  # hyper-steps and validations both went through eval_sums
    assert not any(SpyDigits.modes)


# ------------------------------------------------------------------------------------------------------
# Hyper-models share the baseline's architecture


def _tasks() -> Iterator[Task]:
    digits = DigitsTask("smoke")
    digits.prepare()
    yield digits
    if HAS_PTB:
        ptb = PTBTask("smoke", data_dir=DATA)
        ptb.prepare()
        yield ptb
    if HAS_CIFAR:
        cifar = CifarAlexNet("smoke", data_dir=DATA)
        cifar.prepare()
        yield cifar


@pytest.fixture(scope="module", params=["digits_mlp", "ptb_lstm", "cifar_alexnet"])
def loaded(request: pytest.FixtureRequest) -> Task:
    for task in _tasks():
        if task.name == request.param:
            task.load(RunSeeds.from_master(0))
            return task
    pytest.skip(f"no data for {request.param} under {DATA}")


def test_hyper_model_has_the_baselines_elementary_weights(loaded: Task) -> None:
    """Same generator → the hyper-model's elementary weights are the baseline's, same names and count."""
    config = loaded.space.default()
    plain = loaded.build_model(config, torch.Generator().manual_seed(3))
    hyper = loaded.build_hyper_model(len(loaded.space), torch.Generator().manual_seed(3))
    assert elementary_parameter_count(hyper) == sum(p.numel() for p in plain.parameters())
    elementary = {k: v for k, v in hyper.state_dict().items() if not is_hyper_path(k)}
    assert elementary.keys() == plain.state_dict().keys()
    for key, value in plain.state_dict().items():
        assert torch.equal(value, elementary[key]), key
    assert sum(p.numel() for p in hyper.parameters()) > elementary_parameter_count(hyper)  # plus the hyper path


def test_hyper_model_with_zero_gates_is_the_baseline(loaded: Task) -> None:
    """Gates V = 0: the hyper-model's clean validation loss equals the baseline's, for any λ."""
    config = loaded.space.default()
    plain = loaded.build_model(config, torch.Generator().manual_seed(3))
    hyper = loaded.build_hyper_model(len(loaded.space), torch.Generator().manual_seed(3))
    init_hyper_path(hyper, torch.Generator().manual_seed(4), gate_std=0.0)
    hyper_input_of(hyper).set(torch.rand(len(loaded.space)))
    a, b = loaded.evaluate(plain, "val"), loaded.evaluate(hyper, "val")
    assert a is not None
    assert b is not None
    assert b.loss == pytest.approx(a.loss, rel=1e-5)


def test_regularised_loss_with_equal_rows_is_the_training_loss(loaded: Task) -> None:
    """training_loss(config) == regularised_loss(rows all equal to config), same noise."""
    config = dict(loaded.space.default())
    model = loaded.build_model(config, torch.Generator().manual_seed(3))
    batch = next(iter(loaded.train_batches(torch.Generator().manual_seed(0))))
    with loaded.noise_scope(5):
        a = loaded.training_loss(model, batch, config)
    with loaded.noise_scope(5):
        b = loaded.regularised_loss(model, batch, loaded.per_example_values(config, batch))
    assert torch.equal(a, b)


@pytest.mark.parametrize("task", ["ptb_lstm", "cifar_alexnet"])
def test_stn_smoke_runs_on_the_real_tasks(task: str, tmp_path: Path) -> None:
    """A short STN run through the harness on real data: validations, a schedule, the budget respected."""
    if not (HAS_PTB if task == "ptb_lstm" else HAS_CIFAR):
        pytest.skip(f"no data for {task} under {DATA}")
    options = {"warmup_epochs": 1, "schedule_every": 5, "max_epochs": 3}
    spec = RunSpec(task, "stn", "smoke", 0, Budget(120), options)
    outcome = execute(spec, tmp_path, device="cpu", data_dir=DATA)
    _, trials, schedule = load_log(outcome.run_dir)
    assert [t.status for t in trials] == [TrialStatus.COMPLETE] * 3
    space = get_task(task).space
    assert set(schedule[-1].values) == {*space, *(f"sigma/{n}" for n in space)}
    assert schedule[-1].values != schedule[0].values  # λ moved after the warm-up
    assert outcome.final.incumbent_test_loss is not None
    assert outcome.final.elapsed_s < 120


@pytest.mark.skipif(not HAS_PTB, reason="no PTB data")
def test_stn_on_ptb_with_the_papers_unequal_widths(isolated_registry: None, tmp_path: Path) -> None:
    """Training, validation and test at different widths (the paper: 40, 10 and 1 columns): each pass
    keeps its own hidden state, so the hyper-steps after a test evaluation do not start from it."""
    # 19 training windows an epoch, 13 validation windows.
    smoke = replace(cast(PTBPreset, PTBTask.presets["smoke"]), batch_size=8, eval_batch_size=4, test_batch_size=1)

    @register_task("ptb_unequal_widths")
    class Unequal(PTBTask):
        presets: ClassVar[Mapping[str, Preset]] = {"smoke": smoke}

    # No warm-up: hyper-steps from the first step. The first validation is always a new incumbent and
    # is tested; epoch 2's hyper-steps then resume the tuning pass mid-text (about 9 hyper-steps an
    # epoch against 13 validation windows), where a shared state would be the test's, 1 column wide.
    options = {"warmup_epochs": 0, "schedule_every": 5, "max_epochs": 2}
    spec = RunSpec("ptb_unequal_widths", "stn", "smoke", 0, Budget(120), options)
    outcome = execute(spec, tmp_path, device="cpu", data_dir=DATA)
    _, trials, _ = load_log(outcome.run_dir)
    assert [t.status for t in trials] == [TrialStatus.COMPLETE] * 2
    assert trials[0].test_loss is not None  # the first validation was tested before epoch 2's hyper-steps


# ------------------------------------------------------------------------------------------------------
# Schedule replay


def test_schedule_replay_runs_one_plain_trial_of_the_same_task(runs: tuple[RunOutcome, ...], tmp_path: Path) -> None:
    """schedule_replay: one COMPLETE trial of preset.epochs epochs; refuses a run of another task or preset."""
    options = {"schedule": str(runs[0].run_dir)}
    outcome = execute(RunSpec("digits_mlp", "schedule_replay", "smoke", 0, Budget(60), options), tmp_path, device="cpu")
    _, trials, _ = load_log(outcome.run_dir)
    smoke = DigitsTask.presets["smoke"]
    assert len(trials) == 1
    assert trials[0].status is TrialStatus.COMPLETE
    assert trials[0].epochs == smoke.epochs
    schedule = Schedule.from_run(runs[0].run_dir)
    assert trials[0].config == schedule.config_at(trials[0].steps, DigitsTask.space, DigitsTask.space.default())
    task = DigitsTask("cpu")
    with pytest.raises(MethodError, match="is a run of digits_mlp/smoke, not digits_mlp/cpu"):
        get_method("schedule_replay")(options).load(task, runs[0].run_dir)  # type: ignore[attr-defined]
    for both_or_none in ({}, {"schedule": "x", "arm": "stn"}):
        with pytest.raises(MethodError, match=r"give exactly one of schedule .* and arm"):
            get_method("schedule_replay")(both_or_none)
    nowhere = tmp_path / "nowhere"
    with pytest.raises(MethodError, match=f"schedule_replay: cannot read a schedule from {nowhere}"):
        get_method("schedule_replay")({"schedule": str(nowhere)}).load(task, nowhere)  # type: ignore[attr-defined]


def test_schedule_replay_of_a_suite_arm_reads_the_same_seeds_sibling_run(
    runs: tuple[RunOutcome, ...], tmp_path: Path
) -> None:
    """arm = "stn" replays <out>/<task>/<preset>/stn/seed<k> for the replay's own seed k."""
    out = tmp_path / "suite"
    source = out / "digits_mlp" / "smoke" / "stn" / "seed1"
    source.mkdir(parents=True)
    for name in ("log.jsonl", "final.json"):
        shutil.copy(runs[2].run_dir / name, source / name)  # runs[2] is seed 1
    spec = RunSpec("digits_mlp", "schedule_replay", "smoke", 1, Budget(60), {"arm": "stn"}, arm="replay")
    outcome = execute(spec, out, device="cpu")
    assert outcome.run_dir == out / "digits_mlp" / "smoke" / "replay" / "seed1"
    _, trials, _ = load_log(outcome.run_dir)
    schedule = Schedule.from_run(source)
    assert trials[0].config == schedule.config_at(trials[0].steps, DigitsTask.space, DigitsTask.space.default())
    missing = RunSpec("digits_mlp", "schedule_replay", "smoke", 0, Budget(60), {"arm": "stn"}, arm="replay")
    with pytest.raises(MethodError, match=r"stn/seed0 holds no complete run of arm 'stn'; run that arm first"):
        execute(missing, out, device="cpu")


def test_fit_with_a_schedule_uses_its_config_at_every_step(runs: tuple[RunOutcome, ...]) -> None:
    """Task.fit(schedule=...) trains step s with schedule(s): the replay's mechanism."""
    schedule = Schedule.from_run(runs[0].run_dir)
    seen: list[dict[str, Any]] = []

    class Recording(DigitsTask):
        def training_loss(self, model: nn.Module, batch: Batch, config: Any) -> torch.Tensor:
            seen.append(dict(config))
            return super().training_loss(model, batch, config)

    task = Recording("smoke")
    task.prepare()
    seeds = RunSeeds.from_master(0)
    task.load(seeds)
    timer = BudgetTimer(Budget(60), FakeClock(tick=0.0))
    timer.start()
    fixed = task.space.default()

    def config_at(step: int) -> dict[str, float | int]:
        return schedule.config_at(step, task.space, fixed)

    fit = task.fit(config_at(0), timer, seeds, config_at)
    assert fit.status is TrialStatus.COMPLETE
    assert seen == [config_at(s) for s in range(fit.steps)]
    assert len({json.dumps(c, sort_keys=True) for c in seen}) > 1  # the schedule really changes
