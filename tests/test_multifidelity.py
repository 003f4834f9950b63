"""Multi-fidelity methods: the epoch hook of ``Task.fit``, PRUNED trials, and Optuna's pruners.

A synthetic task with known learning curves (defined here) makes every decision checkable: a trial's
validation loss after ``e`` epochs is a function of its one hyperparameter ``q`` and ``e``, each
training epoch costs one second on a fake clock, and validation costs nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from conftest import step_clock_task
from torch import nn

from hpobench_stn import (
    AskTellMethod,
    Batch,
    Budget,
    BudgetTimer,
    Config,
    EpochReport,
    FakeClock,
    Float,
    Preset,
    RunSeeds,
    SearchSpace,
    Split,
    Task,
    TrialRecord,
    TrialStatus,
    get_method,
    register_method,
    register_task,
)
from hpobench_stn.harness import registry
from hpobench_stn.harness.records import load_final, load_log
from hpobench_stn.harness.runner import RunSpec, execute
from hpobench_stn.methods.random_search import RandomSearch

CAP = 9  # epochs: rungs at 1 and 3 epochs for min_resource 1 and η 3; 9 is the cap (no decision)
TEST_OFFSET = 0.5  # the test loss of a checkpoint is its validation loss plus this


def parallel_curve(q: float, epoch: int) -> float:
    """Validation loss after ``epoch`` epochs: decreasing in ``epoch``, ordered by ``q`` at every epoch."""
    return q + 1.0 / epoch


def dip_curve(q: float, epoch: int) -> float:
    """Validation loss with its minimum ``q`` at epoch 2, then rising (overfitting)."""
    return q + 0.1 * (epoch - 2) ** 2


class CurveModel(nn.Module):
    """Holds ``q`` and the epochs trained; a zero-learning-rate weight gives the optimiser something to own."""

    epochs: torch.Tensor

    def __init__(self, q: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.register_buffer("q", torch.tensor(q, dtype=torch.float64))
        self.register_buffer("epochs", torch.zeros((), dtype=torch.float64))


def curve_task(clock: FakeClock, curve: Callable[[float, int], float], epochs: int = CAP) -> type[Task]:
    """A task whose validation loss after ``e`` epochs is ``curve(q, e)``; one training batch per
    epoch costing one second on ``clock``; test loss = validation loss + TEST_OFFSET."""

    class CurveTask(Task):
        name: ClassVar[str] = "curves_test"
        space: ClassVar[SearchSpace] = SearchSpace({"q": Float(0.0, 1.0, default=0.5)})
        presets: ClassVar[Mapping[str, Preset]] = {"smoke": Preset("smoke", epochs=epochs, batch_size=1)}

        def load(self, seeds: RunSeeds) -> str:
            return "synthetic learning curves"

        def train_batches(self, generator: torch.Generator) -> Iterator[Batch]:
            yield (torch.zeros(1),)

        def eval_batches(self, split: Split) -> Iterator[Batch]:
            yield (torch.full((1,), 0.0 if split == "val" else TEST_OFFSET),)

        def build_model(self, config: Config, generator: torch.Generator) -> nn.Module:
            return CurveModel(float(config["q"]))

        def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
            return torch.optim.SGD(model.parameters(), lr=0.0)

        def training_loss(self, model: nn.Module, batch: Batch, config: Config) -> torch.Tensor:
            clock.advance(1.0)
            assert isinstance(model, CurveModel)
            with torch.no_grad():
                model.epochs.add_(1)  # one batch per epoch
            return model.w * 0.0 + 1.0

        def eval_sums(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int, dict[str, torch.Tensor]]:
            q, e = float(model.q), int(model.epochs)  # type: ignore[arg-type]
            return torch.tensor(curve(q, e) + float(batch[0][0]), dtype=torch.float64), 1, {}

        def warm_up(self) -> None:
            pass  # nothing lazy to initialise, and the fake clock must count training epochs only

    return CurveTask


def run_on_curves(
    tmp_path: Path,
    method: str,
    *,
    curve: Callable[[float, int], float] = parallel_curve,
    budget_s: float = 150.0,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    epochs: int = CAP,
) -> tuple[list[TrialRecord], Path]:
    clock = FakeClock(tick=0.0)  # time moves only by training epochs: one second each
    registry._TASKS.pop("curves_test", None)  # each run binds its own clock (the registry is isolated)
    register_task("curves_test")(curve_task(clock, curve, epochs))
    spec = RunSpec("curves_test", method, "smoke", seed, Budget(budget_s), dict(options or {}))
    outcome = execute(spec, tmp_path / f"{method}-{seed}", clock=clock, device="cpu")
    _, trials, _ = load_log(outcome.run_dir)
    return trials, outcome.run_dir


def finished(trials: list[TrialRecord]) -> list[TrialRecord]:
    """The trials the deadline did not cut."""
    return [t for t in trials if t.status is not TrialStatus.OUT_OF_BUDGET]


# ------------------------------------------------------------------------------------------------
# Successive halving decides by the documented rule


@pytest.mark.usefixtures("isolated_registry")
def test_successive_halving_promotes_the_best_curves_and_stops_the_others_at_their_rung(tmp_path: Path) -> None:
    """Replaying asynchronous successive halving on the known curves predicts every trial's fate: at
    rung epochs 1 and 3 a trial goes on iff its value is among the best 1/η of the values recorded at
    that rung so far (itself included; the best while fewer than η are there), else it is PRUNED there
    with exactly that many epochs trained."""
    trials, _ = run_on_curves(tmp_path, "optuna_sh", options={"min_resource": 1, "reduction_factor": 3})
    done = finished(trials)
    assert len(done) >= 20
    rung_values: dict[int, list[float]] = {1: [], 3: []}
    for t in done:
        q = float(t.config["q"])
        expected_status, expected_epochs = TrialStatus.COMPLETE, CAP
        for rung in (1, 3):
            value = parallel_curve(q, rung)
            competing = sorted([*rung_values[rung], value])
            rung_values[rung].append(value)
            if value > competing[max(len(competing) // 3 - 1, 0)]:
                expected_status, expected_epochs = TrialStatus.PRUNED, rung
                break
        assert (t.status, t.epochs) == (expected_status, expected_epochs), f"trial {t.index}, q={q:.3f}"
    statuses = {t.status for t in done}
    assert statuses == {TrialStatus.PRUNED, TrialStatus.COMPLETE}, "the run must exercise both outcomes"

    # Promotion follows the curves. (Not every finisher beats every pruned config: the first trial always
    # goes on, since asynchronous halving decides with what is known when a trial reaches its rung.)
    def mean_q(status: TrialStatus, epochs: int) -> float:
        qs = [float(t.config["q"]) for t in done if t.status is status and t.epochs == epochs]
        return sum(qs) / len(qs)

    assert mean_q(TrialStatus.COMPLETE, CAP) < mean_q(TrialStatus.PRUNED, 3) < mean_q(TrialStatus.PRUNED, 1)


@pytest.mark.usefixtures("isolated_registry")
def test_pruned_trials_record_their_epochs_charged_time_and_reason(tmp_path: Path) -> None:
    """A PRUNED trial keeps the epochs it trained (one second each on the fake clock, charged to
    ``train``), and the final record counts the pruned trials. (The decision's charge to ``prune`` is
    checked below, with a clock that gives it a cost.)"""
    trials, run_dir = run_on_curves(tmp_path, "optuna_sh")
    pruned = [t for t in trials if t.status is TrialStatus.PRUNED]
    assert pruned
    previous = 0.0
    for t in finished(trials):
        assert t.phases_s["train"] == pytest.approx(t.epochs)  # one fake second per epoch, nothing else
        assert t.elapsed_s - previous == pytest.approx(t.epochs)  # the clock moved by exactly that
        previous = t.elapsed_s
        assert t.steps == t.epochs  # one batch per epoch
    for t in pruned:
        assert t.epochs in (1, 3)
        assert t.reason == f"pruned by the method after epoch {t.epochs} (best at epoch {t.epochs})"
        assert t.val_loss == pytest.approx(parallel_curve(float(t.config["q"]), t.epochs))
    final = load_final(run_dir)
    assert final.n_pruned == len(pruned)
    assert final.n_complete == sum(t.status is TrialStatus.COMPLETE for t in trials)
    assert final.n_trials == len(trials)


# ------------------------------------------------------------------------------------------------
# Hyperband


@pytest.mark.usefixtures("isolated_registry")
def test_hyperband_prunes_at_rungs_and_evaluates_more_configs_than_random_search(tmp_path: Path) -> None:
    """With the same fake budget, TPE + Hyperband stops trials only at rung epochs (1 or 3 below the
    cap of 9) and so evaluates more configs than random search. Not 3x here: with a cap of 9 epochs,
    Hyperband's three brackets include one that never prunes (3/17 of the trials, at Optuna's
    allocation) and one that first decides at 3 epochs; about 4.3 epochs per config in the long run
    against random search's 9, and fewer configs early on, while every rung's first trial goes on."""
    hb, _ = run_on_curves(tmp_path, "optuna_hyperband", budget_s=200.0)
    rs, _ = run_on_curves(tmp_path, "random", budget_s=200.0)
    hb_done, rs_done = finished(hb), finished(rs)
    assert {t.epochs for t in hb_done if t.status is TrialStatus.PRUNED} <= {1, 3}
    assert any(t.status is TrialStatus.PRUNED for t in hb_done)
    assert any(t.status is TrialStatus.COMPLETE for t in hb_done)
    assert all(t.status is TrialStatus.COMPLETE and t.epochs == CAP for t in rs_done)
    assert len(hb_done) >= 1.3 * len(rs_done)


@pytest.mark.usefixtures("isolated_registry")
@pytest.mark.parametrize("method", ["optuna_sh", "optuna_hyperband"])
def test_a_seed_reproduces_its_run(tmp_path: Path, method: str) -> None:
    """Same seed → same configs and the same pruning decisions (Hyperband's bracket of a trial hashes
    the study name, which is therefore fixed); another seed → other configs."""

    def outcome(seed: int, sub: str) -> list[tuple[float, str, int]]:
        trials, _ = run_on_curves(tmp_path / sub, method, seed=seed, budget_s=60.0)
        return [(float(t.config["q"]), t.status.value, t.epochs) for t in trials]

    first = outcome(0, "a")
    assert outcome(0, "b") == first
    assert [q for q, _, _ in outcome(1, "c")] != [q for q, _, _ in first]


# ------------------------------------------------------------------------------------------------
# The incumbent rule: the best checkpoint evaluated, whatever stopped its trial


class PruneAtThree(RandomSearch):
    """Random search that stops every trial after its third epoch."""

    def report(self, progress: EpochReport) -> bool:
        return progress.epoch >= 3


@pytest.mark.usefixtures("isolated_registry")
def test_a_pruned_trials_best_checkpoint_can_be_the_incumbent_with_its_test_loss(tmp_path: Path) -> None:
    """Curves whose minimum is at epoch 2: a trial pruned after epoch 3 keeps its epoch-2 checkpoint,
    is judged by that loss, and the incumbent's test loss is that checkpoint's."""
    register_method("prune_at_three_test")(PruneAtThree)
    trials, run_dir = run_on_curves(tmp_path, "prune_at_three_test", curve=dip_curve, budget_s=40.0)
    done = finished(trials)
    assert done
    assert all(t.status is TrialStatus.PRUNED and t.epochs == 3 for t in done)
    for t in done:
        assert t.val_loss == pytest.approx(dip_curve(float(t.config["q"]), 2))  # the epoch-2 checkpoint
        assert t.reason == "pruned by the method after epoch 3 (best at epoch 2)"
    final = load_final(run_dir)
    best = min(done, key=lambda t: t.val_loss if t.val_loss is not None else math.inf)
    assert final.incumbent_trial == best.index
    assert final.incumbent_val_loss == pytest.approx(float(best.config["q"]))
    assert final.incumbent_test_loss == pytest.approx(float(best.config["q"]) + TEST_OFFSET)


# ------------------------------------------------------------------------------------------------
# The hook itself


def test_fit_asks_the_monitor_after_each_validation_before_the_cap_and_charges_it(tmp_path: Path) -> None:
    """``Task.fit`` hands the monitor epochs 1..cap-1 (never the cap) with the epoch's and the best
    loss, charges the calls to ``prune``, and without a monitor charges nothing there."""
    clock = FakeClock(tick=0.0)
    task = curve_task(clock, dip_curve, epochs=5)("smoke")
    task.load(RunSeeds.from_master(0))
    seen: list[EpochReport] = []

    def monitor(progress: EpochReport) -> bool:
        seen.append(progress)
        clock.advance(0.25)  # a decision that takes time
        return False

    timer = BudgetTimer(Budget(100), clock)
    timer.start()
    fit = task.fit({"q": 0.2}, timer, RunSeeds.from_master(0), monitor=monitor)
    assert fit.status is TrialStatus.COMPLETE
    assert fit.epochs == 5
    assert [p.epoch for p in seen] == [1, 2, 3, 4]
    assert [p.val_loss for p in seen] == pytest.approx([dip_curve(0.2, e) for e in (1, 2, 3, 4)])
    assert [p.best_val_loss for p in seen] == pytest.approx([0.3, 0.2, 0.2, 0.2])
    assert {p.max_epochs for p in seen} == {5}
    assert timer.totals()["prune"] == pytest.approx(1.0)
    plain = BudgetTimer(Budget(100), clock)
    plain.start()
    task.fit({"q": 0.2}, plain, RunSeeds.from_master(0))
    assert "prune" not in plain.totals()


def test_patience_ends_a_trial_before_the_monitor_is_asked(tmp_path: Path) -> None:
    """A validation that patience ends is not handed to the monitor: the trial is EARLY_STOPPED."""
    clock = FakeClock(tick=0.0)
    task_cls = curve_task(clock, dip_curve, epochs=8)
    task_cls.presets = {"smoke": Preset("smoke", epochs=8, batch_size=1, patience=2)}
    task = task_cls("smoke")
    seen: list[int] = []

    def monitor(progress: EpochReport) -> bool:
        seen.append(progress.epoch)
        return False

    timer = BudgetTimer(Budget(100), clock)
    timer.start()
    fit = task.fit({"q": 0.2}, timer, RunSeeds.from_master(0), monitor=monitor)
    assert fit.status is TrialStatus.EARLY_STOPPED
    assert fit.epochs == 4
    assert seen == [1, 2, 3]


class NeverPrunes(RandomSearch):
    """Random search that listens to every validation and never stops a trial."""

    def report(self, progress: EpochReport) -> bool:
        return False


@pytest.mark.usefixtures("isolated_registry")
def test_methods_that_ignore_the_hook_keep_their_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A method that does not override ``report`` is never asked (``Task.fit`` gets no monitor), and its
    records equal those of the same method listening without stopping anything: same configs, losses,
    statuses, epochs, steps, charged times and test losses."""
    register_method("never_prunes_test")(NeverPrunes)
    monitors: list[object] = []
    original_fit = Task.fit

    def spy(
        self: Task,
        config: Config,
        timer: BudgetTimer,
        seeds: RunSeeds,
        schedule: Any = None,
        monitor: Any = None,
    ) -> Any:
        monitors.append(monitor)
        return original_fit(self, config, timer, seeds, schedule, monitor)

    monkeypatch.setattr(Task, "fit", spy)

    def records(method: str) -> list[dict[str, Any]]:
        clock = FakeClock(tick=0.0)  # only training steps move time: the hook's clock reads cost nothing
        registry._TASKS.pop("digits_step_test", None)
        register_task("digits_step_test")(step_clock_task(clock, 0.01))
        spec = RunSpec("digits_step_test", method, "smoke", 0, Budget(3.0))
        outcome = execute(spec, tmp_path / method, clock=clock, device="cpu")
        _, trials, _ = load_log(outcome.run_dir)
        return [json.loads(json.dumps(t.to_json())) for t in trials]

    plain = records("random")
    assert monitors
    assert all(m is None for m in monitors)
    monitors.clear()
    listening = records("never_prunes_test")
    assert monitors
    assert all(m is not None for m in monitors)
    assert len(plain) >= 5
    assert plain == listening


def test_the_shipped_pruning_methods_listen_and_the_others_do_not() -> None:
    """Exactly the multi-fidelity methods override ``report``."""
    for name in ("optuna_sh", "optuna_hyperband", "random", "grid", "skopt_gp", "optuna_tpe", "optuna_gp"):
        cls = get_method(name)
        assert issubclass(cls, AskTellMethod)
        assert (cls.report is not AskTellMethod.report) == name.startswith(("optuna_sh", "optuna_hyperband"))


@pytest.mark.parametrize(
    ("method", "option", "value", "message"),
    [
        ("optuna_sh", "reduction_factor", 1, "reduction_factor must be an integer >= 2, got 1"),
        ("optuna_sh", "min_resource", 0, "min_resource must be an integer >= 1, got 0"),
        ("optuna_sh", "min_early_stopping_rate", -1, "min_early_stopping_rate must be an integer >= 0, got -1"),
        ("optuna_hyperband", "min_resource", 1.5, "min_resource must be an integer >= 1, got 1.5"),
        ("optuna_hyperband", "n_startup_trials", -2, "n_startup_trials must be an integer >= 0, got -2"),
    ],
)
def test_bad_options_are_refused_with_the_allowed_range(method: str, option: str, value: object, message: str) -> None:
    from hpobench_stn import MethodError

    with pytest.raises(MethodError, match=message):
        get_method(method)({option: value})


def test_hyperband_driven_by_hand_without_the_maximum_resource_says_what_is_missing() -> None:
    """Outside a run nobody sets ``max_epochs`` (the preset's cap): Hyperband cannot build its brackets
    and says so; with it set, setup succeeds."""
    from hpobench_stn import MethodError

    method = get_method("optuna_hyperband")()
    assert isinstance(method, AskTellMethod)
    space = SearchSpace({"q": Float(0.0, 1.0)})
    with pytest.raises(MethodError, match="optuna_hyperband needs the maximum resource"):
        method.setup(space, 0)
    method.max_epochs = 27
    method.setup(space, 0)
    assert method.ask() is not None
