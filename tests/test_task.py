"""The digits task and the Task contract: clean evaluation, augmentation only in training, the deadline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hpobench_stn import (
    Batch,
    Budget,
    BudgetTimer,
    Config,
    EvalResult,
    FakeClock,
    FitResult,
    RunSeeds,
    Split,
    TaskError,
    TrialStatus,
    get_task,
)
from hpobench_stn.harness.task import Preset
from hpobench_stn.tasks.digits_mlp import DigitsMLP, DigitsTask, random_shift

CONFIG = {"dropout_in": 0.5, "dropout_h1": 0.5, "dropout_h2": 0.5, "weight_decay": 1e-4, "shift": 2}
CLEAN = {"dropout_in": 0.0, "dropout_h1": 0.0, "dropout_h2": 0.0, "weight_decay": 1e-6, "shift": 0}


def _model(task: DigitsTask, seed: int = 0) -> DigitsMLP:
    model = task.build_model(CONFIG, RunSeeds.from_master(seed).torch("init"))
    assert isinstance(model, DigitsMLP)
    return model


def _steps_per_epoch(task: DigitsTask) -> int:
    return len(list(task.train_batches(torch.Generator().manual_seed(0))))


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(TaskError, match=r"unknown preset 'huge' for task 'digits_mlp'; known: smoke, cpu"):
        get_task("digits_mlp")("huge")


@pytest.mark.parametrize(
    ("epochs", "batch_size", "match"),
    [
        (0, 10, r"preset 'bad': epochs must be an integer >= 1, got 0"),
        (1, 0, r"batch_size must be an integer"),
    ],
)
def test_preset_validates_itself(epochs: int, batch_size: int, match: str) -> None:
    with pytest.raises(TaskError, match=match):
        Preset("bad", epochs=epochs, batch_size=batch_size)


# ------------------------------------------------------------------------------------------------------
# Clean validation and test


def test_evaluate_is_deterministic_and_restores_the_training_flag(digits: DigitsTask) -> None:
    """Evaluation in eval mode: no dropout, so the same model gives the same result, whatever the RNG."""
    model = _model(digits)
    model.train()
    first = digits.evaluate(model, "val")
    flag_after_train_mode = model.training
    torch.rand(1000)  # move the global generator: dropout masks would now differ
    second = digits.evaluate(model, "val")
    model.eval()
    third = digits.evaluate(model, "val")
    flag_after_eval_mode = model.training
    assert (flag_after_train_mode, flag_after_eval_mode) == (True, False)  # each mode restored
    assert first is not None
    assert first == second == third
    assert first.n == len(digits.val_xy[0])
    assert 0.0 <= first.metrics["accuracy"] <= 1.0


def test_evaluate_runs_the_model_in_eval_mode(digits: DigitsTask) -> None:
    """Layers with train-time behaviour (nn.Dropout, BatchNorm) are clean in validation and test."""
    modes: list[bool] = []

    class Spy(DigitsMLP):
        def forward(self, x: torch.Tensor, *rates: torch.Tensor) -> torch.Tensor:
            modes.append(self.training)
            return super().forward(x, *rates)

    model = Spy(digits.preset.hidden)
    model.train()
    digits.evaluate(model, "val")
    digits.evaluate(model, "test")
    assert modes == [False] * len(modes)
    assert len(modes) >= 2
    assert model.training


def test_evaluate_is_the_clean_loss_whatever_training_would_apply(digits: DigitsTask) -> None:
    """Validation equals plain cross-entropy of the unshifted inputs without dropout, although the
    training loss of a config with dropout and shift differs from it (and draws random numbers)."""
    model = _model(digits)
    x, y = digits.val_xy
    with torch.no_grad():
        model.eval()
        zeros = torch.zeros(len(x))
        by_hand = float(F.cross_entropy(model(x, zeros, zeros, zeros), y))
        model.train()
        augmented = float(digits.training_loss(model, (x, y), CONFIG))
    result = digits.evaluate(model, "val")
    assert result is not None
    assert result.loss == pytest.approx(by_hand, rel=1e-6)
    assert augmented != pytest.approx(by_hand, rel=1e-3)


def test_eval_batches_are_the_split_unchanged(digits: DigitsTask) -> None:
    """Validation and test data are never augmented or reordered."""
    splits: list[tuple[Split, tuple[torch.Tensor, torch.Tensor]]] = [
        ("val", digits.val_xy),
        ("test", digits.test_xy),
    ]
    for split, (x, y) in splits:
        for _ in range(2):
            xs, ys = zip(*digits.eval_batches(split), strict=True)
            assert torch.equal(torch.cat(xs), x)
            assert torch.equal(torch.cat(ys), y)


def test_evaluate_returns_none_when_the_deadline_cuts_it(digits: DigitsTask) -> None:
    """A partial validation never counts."""
    clock = FakeClock()
    timer = BudgetTimer(Budget(1.0), clock)
    timer.start()
    clock.advance(1.0)
    assert digits.evaluate(_model(digits), "val", timer) is None


def test_training_loss_with_no_regularisation_is_plain_cross_entropy(digits: DigitsTask) -> None:
    model = _model(digits).train()
    x, y = next(digits.train_batches(torch.Generator().manual_seed(0)))
    with torch.no_grad():
        loss = digits.training_loss(model, (x, y), {**CLEAN, "weight_decay": 1e-6})
        zeros = torch.zeros(len(x))
        l2 = sum(float(layer.weight.pow(2).sum()) for layer in (model.fc1, model.fc2, model.out))
        expected = F.cross_entropy(model(x, zeros, zeros, zeros), y) + 0.5 * 1e-6 * l2
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)


def test_training_loss_changes_with_shift(digits: DigitsTask) -> None:
    """shift > 0 changes the training inputs (here with no dropout, so shift is the only noise)."""
    model = _model(digits).train()
    batch = next(digits.train_batches(torch.Generator().manual_seed(0)))
    with torch.no_grad():
        plain = [float(digits.training_loss(model, batch, CLEAN)) for _ in range(2)]
        shifted = float(digits.training_loss(model, batch, {**CLEAN, "shift": 2}))
    assert plain[0] == plain[1]
    assert shifted != plain[0]


# ------------------------------------------------------------------------------------------------------
# random_shift


def _images(n: int = 64) -> torch.Tensor:
    return torch.rand(n, 64, generator=torch.Generator().manual_seed(1))


def test_random_shift_zero_is_the_identity() -> None:
    images = _images()
    assert torch.equal(random_shift(images, torch.zeros(len(images), dtype=torch.long)), images)


def test_random_shift_translates_each_image_within_its_range() -> None:
    """Each output is its input translated by some (dy, dx) in [-s, s]², zero-filled, shape kept."""
    images = _images()
    s = 2
    out = random_shift(images, torch.full((len(images),), s, dtype=torch.long))
    assert out.shape == images.shape
    moved = 0
    for img, shifted in zip(images.view(-1, 8, 8), out.view(-1, 8, 8), strict=True):
        padded = F.pad(img, (s, s, s, s))
        candidates = [
            (dy, dx)
            for dy in range(-s, s + 1)
            for dx in range(-s, s + 1)
            if torch.equal(padded[s - dy : s - dy + 8, s - dx : s - dx + 8], shifted)
        ]
        assert candidates, "output is not a translation of its input"
        moved += (0, 0) not in candidates
    assert moved > len(images) // 2  # 24 of 25 offsets move the image


def test_random_shift_uses_a_per_example_range() -> None:
    images = _images(8)
    max_shift = torch.tensor([0, 1, 0, 2, 0, 1, 0, 2])
    out = random_shift(images, max_shift)
    unshifted = max_shift == 0
    assert torch.equal(out[unshifted], images[unshifted])


# ------------------------------------------------------------------------------------------------------
# fit and the deadline


def test_fit_completes_all_epochs_and_returns_the_best_checkpoint(digits: DigitsTask) -> None:
    timer = BudgetTimer(Budget(1e9), FakeClock())
    timer.start()
    fit = digits.fit(CLEAN, timer, RunSeeds.from_master(0))
    assert fit.status is TrialStatus.COMPLETE
    assert fit.reason == f"epoch cap: {digits.preset.epochs} epochs"
    assert fit.epochs == digits.preset.epochs
    assert fit.steps == digits.preset.epochs * _steps_per_epoch(digits)
    assert fit.val is not None
    assert fit.model is not None
    assert not fit.model.training
    assert fit.loss == fit.val.loss
    # The returned model is the best-validation checkpoint: it re-evaluates to the reported loss.
    assert digits.evaluate(fit.model, "val") == fit.val


def test_fit_stops_at_the_deadline_mid_epoch_and_keeps_its_validations(digits: DigitsTask) -> None:
    """Every step costs 1 s and nothing else costs time: the run stops at the first step check at or past
    the budget, in the middle of epoch 2, OUT_OF_BUDGET with epoch 1's validation kept."""
    per_epoch = _steps_per_epoch(digits)
    budget = per_epoch + per_epoch // 2 + 0.5
    clock = FakeClock()

    class OneSecondSteps(DigitsTask):
        def training_loss(self, model: nn.Module, batch: Batch, config: Config) -> torch.Tensor:
            clock.advance(1.0)
            return super().training_loss(model, batch, config)

    task = OneSecondSteps("smoke")
    task.prepare()
    seeds = RunSeeds.from_master(0)
    task.load(seeds)
    timer = BudgetTimer(Budget(budget), clock)
    timer.start()
    fit = task.fit(CLEAN, timer, seeds)
    assert fit.status is TrialStatus.OUT_OF_BUDGET
    assert fit.reason == "deadline reached during training"
    assert fit.steps == per_epoch + per_epoch // 2 + 1  # the first check at or past the budget
    assert fit.epochs == 1
    assert fit.val is not None
    assert fit.model is not None
    assert fit.loss == fit.val.loss
    assert timer.charged() < budget + 1.0

    # The kept validation is epoch 1's: the same as a one-epoch run of the same config and seed.
    class OneEpoch(DigitsTask):
        presets: ClassVar[Mapping[str, Preset]] = {"smoke": replace(DigitsTask.presets["smoke"], epochs=1)}

    one_epoch = OneEpoch("smoke")
    one_epoch.prepare()
    one_epoch.load(seeds)
    unlimited = BudgetTimer(Budget(1e9), FakeClock())
    unlimited.start()
    reference = one_epoch.fit(CLEAN, unlimited, seeds)
    assert reference.status is TrialStatus.COMPLETE
    assert reference.epochs == 1
    assert reference.val == fit.val


def test_fit_out_of_budget_before_any_validation_has_no_loss(digits: DigitsTask) -> None:
    clock = FakeClock()
    timer = BudgetTimer(Budget(0.5), clock)
    timer.start()
    clock.advance(1.0)
    fit = digits.fit(CLEAN, timer, RunSeeds.from_master(0))
    assert fit.status is TrialStatus.OUT_OF_BUDGET
    assert fit.steps == 0
    assert fit.epochs == 0
    assert fit.val is None
    assert fit.loss is None
    assert fit.model is None


def test_fit_returns_the_learning_curve_whose_minimum_is_the_kept_checkpoint(digits: DigitsTask) -> None:
    timer = BudgetTimer(Budget(1e9), FakeClock())
    timer.start()
    fit = digits.fit(CLEAN, timer, RunSeeds.from_master(0))
    assert fit.status is TrialStatus.COMPLETE
    assert fit.val is not None
    assert len(fit.val_losses) == fit.epochs == digits.preset.epochs
    assert min(fit.val_losses) == fit.val.loss


class ScriptedCurve(DigitsTask):
    """Digits whose validation loss follows a script (one value per epoch) and that keeps a copy of the
    weights at each validation, to check which checkpoint ``fit`` returns."""

    curve: ClassVar[tuple[float, ...]] = (5.0, 4.0, 3.0, 3.5, 3.2, 3.0, 3.1, 2.0, 1.0, 0.5)
    presets: ClassVar[Mapping[str, Preset]] = {
        "smoke": replace(DigitsTask.presets["smoke"], epochs=len(curve), patience=3)
    }

    def __init__(self, preset: str) -> None:
        super().__init__(preset)
        self.snapshots: list[dict[str, torch.Tensor]] = []

    def evaluate(self, model: nn.Module, split: Split, timer: BudgetTimer | None = None) -> EvalResult | None:
        result = super().evaluate(model, split, timer)
        if split != "val" or result is None:
            return result
        self.snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return replace(result, loss=self.curve[len(self.snapshots) - 1])


def _fit_scripted(cls: type[ScriptedCurve]) -> tuple[ScriptedCurve, FitResult]:
    """Fit CLEAN on a fresh ``cls`` at its smoke preset with an unlimited fake-clock budget."""
    task = cls("smoke")
    task.prepare()
    seeds = RunSeeds.from_master(0)
    task.load(seeds)
    timer = BudgetTimer(Budget(1e9), FakeClock())
    timer.start()
    return task, task.fit(CLEAN, timer, seeds)


def test_fit_stops_after_patience_epochs_without_a_new_best_and_keeps_the_best_checkpoint() -> None:
    """Best at epoch 3 (3.0); epochs 4-6 bring no *new* best (6 only ties it): with patience 3 the trial
    stops after epoch 6, EARLY_STOPPED, although epochs 8-10 would have improved."""
    task, fit = _fit_scripted(ScriptedCurve)
    assert fit.status is TrialStatus.EARLY_STOPPED
    assert fit.status.finished
    assert fit.epochs == 6
    assert fit.val_losses == (5.0, 4.0, 3.0, 3.5, 3.2, 3.0)
    assert fit.reason == "patience: no new best validation loss in 3 epochs (best at epoch 3)"
    assert fit.loss == 3.0
    assert fit.steps == 6 * _steps_per_epoch(task)
    assert fit.model is not None
    assert not fit.model.training
    # The model returned holds epoch 3's weights, not the last epoch's.
    kept = fit.model.state_dict()
    assert all(torch.equal(kept[k], task.snapshots[2][k]) for k in kept)
    assert not all(torch.equal(kept[k], task.snapshots[5][k]) for k in kept)


def test_fit_without_patience_trains_to_the_cap_through_a_plateau() -> None:
    class NoPatience(ScriptedCurve):
        presets: ClassVar[Mapping[str, Preset]] = {"smoke": replace(ScriptedCurve.presets["smoke"], patience=None)}

    task, fit = _fit_scripted(NoPatience)
    assert fit.status is TrialStatus.COMPLETE
    assert fit.epochs == len(ScriptedCurve.curve)
    assert fit.loss == 0.5
    kept = fit.model.state_dict() if fit.model is not None else {}
    assert kept
    assert all(torch.equal(kept[k], task.snapshots[-1][k]) for k in kept)


@pytest.mark.parametrize("patience", [0, -2, 1.5])
def test_preset_rejects_a_patience_below_one(patience: object) -> None:
    with pytest.raises(TaskError, match=r"patience must be None or an integer >= 1, got"):
        Preset("bad", epochs=5, batch_size=10, patience=patience)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("presets", "expected"),
    [(("smoke", "cpu", "paper"), "cpu"), (("smoke", "paper"), "smoke"), (("cpu",), "cpu")],
)
def test_default_preset_is_cpu_else_smoke(presets: tuple[str, ...], expected: str) -> None:
    class Some(DigitsTask):
        pass

    Some.presets = {name: Preset(name, epochs=1, batch_size=8) for name in presets}
    assert Some.default_preset() == expected


def test_default_preset_without_cpu_or_smoke_names_the_presets_there_are() -> None:
    class PaperOnly(DigitsTask):
        pass

    PaperOnly.presets = {
        "paper": Preset("paper", epochs=1, batch_size=8),
        "huge": Preset("huge", epochs=2, batch_size=8),
    }
    with pytest.raises(TaskError, match=r"task 'digits_mlp' has no 'cpu' or 'smoke' preset; name one of: paper, huge"):
        PaperOnly.default_preset()
