"""One master seed per run, split by purpose; the same seed pairs every method's data and weights."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hpobench_stn import Budget, BudgetTimer, FakeClock, RunSeeds, TrialStatus
from hpobench_stn.foundation.seeding import check_seed
from hpobench_stn.harness.records import load_log
from hpobench_stn.harness.runner import RunSpec, execute
from hpobench_stn.tasks.digits_mlp import DigitsTask

PURPOSES = ("data", "order", "init", "noise", "method")
CONFIG = {"dropout_in": 0.1, "dropout_h1": 0.3, "dropout_h2": 0.3, "weight_decay": 1e-4, "shift": 1}


def _loaded(seed: int) -> DigitsTask:
    task = DigitsTask("smoke", device="cpu")
    task.prepare()
    task.load(RunSeeds.from_master(seed))
    return task


def test_same_master_seed_gives_same_seeds() -> None:
    assert RunSeeds.from_master(42) == RunSeeds.from_master(42)
    assert RunSeeds.from_master(42).master == 42


def test_different_master_seeds_differ_in_every_purpose() -> None:
    a, b = RunSeeds.from_master(0), RunSeeds.from_master(1)
    for purpose in PURPOSES:
        assert getattr(a, purpose) != getattr(b, purpose), purpose


def test_purposes_are_independent_streams() -> None:
    seeds = RunSeeds.from_master(0)
    values = [getattr(seeds, p) for p in PURPOSES]
    assert len(set(values)) == len(values)
    draws = [tuple(seeds.numpy(p).integers(0, 2**32, size=4)) for p in PURPOSES]
    assert len(set(draws)) == len(draws)


def test_generators_are_fresh_and_reproducible() -> None:
    seeds = RunSeeds.from_master(5)
    assert np.array_equal(seeds.numpy("data").random(8), seeds.numpy("data").random(8))
    assert torch.equal(torch.rand(8, generator=seeds.torch("init")), torch.rand(8, generator=seeds.torch("init")))
    assert 0 <= seeds.int_for_library("method") < 2**31 - 1
    with pytest.raises(ValueError, match=r"unknown seed purpose 'weights'; known: data, order"):
        seeds.numpy("weights")


@pytest.mark.parametrize("bad", [-1, True, False, 2**63, 1.5, "3", None])
def test_bad_master_seed_is_rejected_with_a_message(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*63\), got "):
        RunSeeds.from_master(bad)
    with pytest.raises(ValueError, match=r"seed must be an integer"):
        check_seed(bad)


def test_run_spec_rejects_a_negative_seed() -> None:
    with pytest.raises(ValueError, match=r"got -3"):
        RunSpec("digits_mlp", "random", "smoke", -3, Budget(1))


def test_same_seed_gives_the_same_split() -> None:
    """Two runs (any two methods) with one seed train and validate on the same examples."""
    a, b = _loaded(0), _loaded(0)
    for split in ("train_xy", "val_xy", "test_xy"):
        for ta, tb in zip(getattr(a, split), getattr(b, split), strict=True):
            assert torch.equal(ta, tb), split


def test_different_seed_gives_a_different_split_but_the_same_test_set() -> None:
    a, b = _loaded(0), _loaded(1)
    assert not torch.equal(a.train_xy[0], b.train_xy[0])
    assert not torch.equal(a.val_xy[0], b.val_xy[0])
    assert torch.equal(a.test_xy[0], b.test_xy[0])
    assert torch.equal(a.test_xy[1], b.test_xy[1])


def test_split_sizes_add_up() -> None:
    task = _loaded(0)
    n = [len(task.train_xy[0]), len(task.val_xy[0]), len(task.test_xy[0])]
    assert sum(n) == 1797
    assert min(n) > 0
    assert all(len(x) == len(y) for x, y in (task.train_xy, task.val_xy, task.test_xy))


def test_same_seed_gives_the_same_initial_weights_whatever_the_config(digits: DigitsTask) -> None:
    seeds = RunSeeds.from_master(0)
    m1 = digits.build_model(CONFIG, seeds.torch("init"))
    m2 = digits.build_model(digits.space.default(), seeds.torch("init"))
    s1, s2 = m1.state_dict(), m2.state_dict()
    assert s1.keys() == s2.keys()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    m3 = digits.build_model(CONFIG, RunSeeds.from_master(1).torch("init"))
    assert not torch.equal(s1["fc1.weight"], m3.state_dict()["fc1.weight"])


def test_same_seed_and_config_train_to_the_same_result(digits: DigitsTask) -> None:
    """Batch order, dropout masks and shifts come from the run's seeds: fit is repeatable."""
    seeds = RunSeeds.from_master(0)
    losses = []
    for _ in range(2):
        timer = BudgetTimer(Budget(1e9), FakeClock())
        timer.start()
        fit = digits.fit(CONFIG, timer, seeds)
        assert fit.status is TrialStatus.COMPLETE
        assert fit.val is not None
        losses.append(fit.val.loss)
    assert losses[0] == losses[1]
    timer = BudgetTimer(Budget(1e9), FakeClock())
    timer.start()
    other = digits.fit(CONFIG, timer, RunSeeds.from_master(1))
    assert other.val is not None
    assert other.val.loss != losses[0]


def test_fit_leaves_the_global_rng_alone(digits: DigitsTask) -> None:
    """fit draws only from the run's seeds in a forked RNG scope: torch's global generator is untouched
    (otherwise anything else in the process that draws from it depends on how many trials ran)."""
    before = torch.random.get_rng_state()
    timer = BudgetTimer(Budget(1e9), FakeClock())
    timer.start()
    digits.fit(CONFIG, timer, RunSeeds.from_master(0))
    assert torch.equal(torch.random.get_rng_state(), before)


def test_warm_up_leaves_the_global_rng_alone(digits: DigitsTask) -> None:
    before = torch.random.get_rng_state()
    digits.warm_up()
    assert torch.equal(torch.random.get_rng_state(), before)


def test_two_methods_with_one_seed_get_the_same_result_for_the_same_config(
    plugins_for_tests: dict[str, str], tmp_path: Path
) -> None:
    """Paired comparison end to end: grid (points=1) and a test method both train the default config."""
    results = {}
    for method, options in (("grid", {"points": 1}), (plugins_for_tests["default_method"], {})):
        spec = RunSpec("digits_mlp", method, "smoke", 0, Budget(1e6), options)
        outcome = execute(spec, tmp_path, clock=FakeClock(tick=0.001), device="cpu")
        _, trials, _ = load_log(outcome.run_dir)
        assert trials[0].config == DigitsTask.space.default()
        results[method] = (trials[0].val_loss, trials[0].test_loss, trials[0].steps)
    assert len(set(results.values())) == 1, results
    grid_other_seed = execute(
        RunSpec("digits_mlp", "grid", "smoke", 1, Budget(1e6), {"points": 1}),
        tmp_path,
        clock=FakeClock(tick=0.001),
        device="cpu",
    )
    assert grid_other_seed.final.incumbent_val_loss != results["grid"][0]


def _fit_loss(task: DigitsTask, seeds: RunSeeds) -> float:
    timer = BudgetTimer(Budget(1e9), FakeClock())
    timer.start()
    fit = task.fit(CONFIG, timer, seeds)
    assert fit.val is not None
    return fit.val.loss


def test_training_noise_comes_from_the_noise_seed_only(digits: DigitsTask) -> None:
    """Dropout masks and shifts are drawn from seeds.noise: the caller's global RNG state does not
    matter, and changing only the noise seed changes the result."""
    seeds = RunSeeds.from_master(0)
    reference = _fit_loss(digits, seeds)
    with torch.random.fork_rng(devices=[]):
        torch.random.manual_seed(12345)  # scoped: a different global state for this fit only
        assert _fit_loss(digits, seeds) == reference
    assert _fit_loss(digits, replace(seeds, noise=seeds.noise + 1)) != reference


def test_batch_order_comes_from_the_order_seed(digits: DigitsTask) -> None:
    seeds = RunSeeds.from_master(0)
    assert _fit_loss(digits, replace(seeds, order=seeds.order + 1)) != _fit_loss(digits, seeds)


def test_split_depends_on_the_data_seed_only() -> None:
    """Changing any other purpose's seed keeps the split; changing the data seed moves it."""
    seeds = RunSeeds.from_master(0)
    reference = _loaded(0).val_xy[0]
    for purpose in ("order", "init", "noise", "method"):
        task = DigitsTask("smoke")
        task.prepare()
        task.load(replace(seeds, **{purpose: getattr(seeds, purpose) + 1}))
        assert torch.equal(task.val_xy[0], reference), purpose
    task = DigitsTask("smoke")
    task.prepare()
    task.load(replace(seeds, data=seeds.data + 1))
    assert not torch.equal(task.val_xy[0], reference)
