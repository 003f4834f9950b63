"""TrainingRun: the pieces of Task.fit (train, validate, take and restore state) that PBT and pause/resume use."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpobench_stn import Budget, BudgetTimer, FakeClock, RunSeeds, TrainingRun, TrainingState, TrialStatus
from hpobench_stn.harness.training import Stopped
from hpobench_stn.tasks.digits_mlp import DigitsTask

CONFIG = {"dropout_in": 0.2, "dropout_h1": 0.3, "dropout_h2": 0.1, "weight_decay": 1e-4, "shift": 1}
OTHER = {"dropout_in": 0.0, "dropout_h1": 0.6, "dropout_h2": 0.0, "weight_decay": 1e-5, "shift": 0}


def _timer() -> BudgetTimer:
    timer = BudgetTimer(Budget(1e9), FakeClock())
    timer.start()
    return timer


def _weights(run: TrainingRun) -> list[torch.Tensor]:
    return [v.detach().clone() for v in run.model.state_dict().values()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_fit_is_the_pieces_in_a_loop(digits: DigitsTask) -> None:
    """Training and validating a run by hand, epoch by epoch, gives fit's learning curve and checkpoint."""
    seeds = RunSeeds.from_master(3)
    fit = digits.fit(CONFIG, _timer(), seeds)
    timer = _timer()
    run = digits.start(CONFIG, timer, seeds)
    for _ in range(digits.preset.epochs):
        assert run.train(timer) is None
        assert not isinstance(run.validate(timer), Stopped)
    by_hand = run.result(TrialStatus.COMPLETE, "by hand")
    assert by_hand.val_losses == fit.val_losses
    assert (by_hand.epochs, by_hand.steps) == (fit.epochs, fit.steps) == (digits.preset.epochs, run.steps)
    assert fit.model is not None
    assert by_hand.model is not None
    assert _same(list(fit.model.state_dict().values()), list(by_hand.model.state_dict().values()))


def test_interleaved_runs_keep_their_own_noise_and_order(digits: DigitsTask) -> None:
    """Two runs trained in turn, a few steps at a time, end exactly as each would alone: each keeps its
    own dropout masks and batch order (PBT trains its members this way)."""
    seeds_a, seeds_b = RunSeeds.from_master(1), RunSeeds.from_master(2)
    timer = _timer()
    alone_a, alone_b = digits.start(CONFIG, timer, seeds_a), digits.start(OTHER, timer, seeds_b)
    assert alone_a.train(timer, steps=17) is None
    assert alone_b.train(timer, steps=17) is None
    a, b = digits.start(CONFIG, timer, seeds_a), digits.start(OTHER, timer, seeds_b)
    for chunk in (3, 5, 9):  # 17 steps each, in turn; the chunks cross an epoch end (10 steps per epoch)
        assert a.train(timer, steps=chunk) is None
        assert b.train(timer, steps=chunk) is None
    assert _same(_weights(a), _weights(alone_a))
    assert _same(_weights(b), _weights(alone_b))
    assert (a.steps, a.epochs) == (17, 1)


def test_state_copies_weights_and_optimiser_state_exactly(digits: DigitsTask) -> None:
    """PBT's exploit: after load_state the copy has the source's weights, momentum buffers, learning rate,
    history and counters, and shares no tensor with the source (the source trains on unchanged)."""
    timer = _timer()
    source, target = (
        digits.start(CONFIG, timer, RunSeeds.from_master(1)),
        digits.start(OTHER, timer, RunSeeds.from_master(2)),
    )
    source.train(timer, steps=12)
    source.validate(timer)
    for group in source.optimizer.param_groups:
        group["lr"] = 0.0123  # as a learning-rate rule would have moved it
    target.train(timer, steps=4)
    target.load_state(source.state())
    assert _same(_weights(target), _weights(source))
    src, dst = source.optimizer.state_dict(), target.optimizer.state_dict()
    assert dst["param_groups"] == src["param_groups"]
    assert src["state"]
    assert src["state"].keys() == dst["state"].keys()
    for key, buffers in src["state"].items():
        assert torch.equal(buffers["momentum_buffer"], dst["state"][key]["momentum_buffer"])
    assert (target.steps, target.epochs, target.val_losses) == (12, 1, source.val_losses)
    copied = _weights(target)
    source.train(timer, steps=3)  # the source moves on; the copy must not move with it
    assert _same(_weights(target), copied)
    assert not _same(_weights(source), copied)


def test_load_state_rolls_a_run_back_and_leaves_global_randomness_alone(digits: DigitsTask) -> None:
    """Restoring a run's own earlier state rolls back its weights and counters; training in pieces never
    moves torch's global random state (each run draws from its own stream)."""
    timer = _timer()
    global_state = torch.get_rng_state()
    run = digits.start(CONFIG, timer, RunSeeds.from_master(4))
    run.train(timer, steps=5)
    saved = run.state()
    run.train(timer, steps=8)
    run.validate(timer)
    run.load_state(saved)
    assert _same(_weights(run), list(saved.model.values()))
    assert (run.steps, run.epochs, run.val_losses) == (5, 0, [])
    assert torch.equal(torch.get_rng_state(), global_state)


def test_state_round_trips_through_disk(digits: DigitsTask, tmp_path: Path) -> None:
    """save writes with torch.save; load reads with weights_only=True and restores the same run."""
    timer = _timer()
    run = digits.start(CONFIG, timer, RunSeeds.from_master(5))
    run.train(timer, steps=7)
    run.validate(timer)
    state = run.state()
    state.save(tmp_path / "member.pt")
    back = TrainingState.load(tmp_path / "member.pt")
    assert (back.val_losses, back.steps, back.epochs) == (state.val_losses, state.steps, state.epochs)
    assert all(torch.equal(back.model[k], v) for k, v in state.model.items())
    other = digits.start(OTHER, timer, RunSeeds.from_master(6))
    other.load_state(back)
    assert _same(_weights(other), _weights(run))
    assert other.optimizer.state_dict()["param_groups"] == run.optimizer.state_dict()["param_groups"]


def test_train_stops_at_the_deadline_and_on_a_non_finite_loss(digits: DigitsTask) -> None:
    clock = FakeClock()
    timer = BudgetTimer(Budget(1.0), clock)
    timer.start()
    run = digits.start(CONFIG, timer, RunSeeds.from_master(0))
    clock.advance(2.0)
    stopped = run.train(timer, steps=3)
    assert stopped == Stopped(TrialStatus.OUT_OF_BUDGET, "deadline reached during training")
    assert run.steps == 0
    with pytest.raises(ValueError, match="steps must be None or >= 0, got -1"):
        run.train(timer, steps=-1)
