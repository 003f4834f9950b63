"""Population Based Training: explore's bounds, exploit's copies, the recorded schedule and its replay, and
a synthetic task whose best schedule is known (a regulariser that should rise over training)."""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from hpobench_stn import (
    Batch,
    Budget,
    BudgetTimer,
    Config,
    FakeClock,
    Float,
    Int,
    MethodError,
    Preset,
    RunSeeds,
    SearchSpace,
    Split,
    Task,
    get_method,
    register_task,
)
from hpobench_stn.harness import registry
from hpobench_stn.harness.records import load_final, load_log
from hpobench_stn.harness.runner import RunSpec, execute
from hpobench_stn.harness.schedule import Schedule
from hpobench_stn.methods.pbt import PBT, _Member, explore
from hpobench_stn.reporting.figures import plot_schedules
from hpobench_stn.reporting.load import load_runs
from hpobench_stn.tasks.digits_mlp import DigitsTask

STEPS_PER_EPOCH = 10
CAP = 6  # epochs: the horizon T = 60 steps over which the best schedule rises from 0 to 1
HORIZON = CAP * STEPS_PER_EPOCH


class TrackingModel(nn.Module):
    """``w`` follows λ within a few steps; ``t`` counts the steps trained (copied with the weights)."""

    t: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.register_buffer("t", torch.zeros(()))


def rising_task(clock: FakeClock) -> type[Task]:
    """Validation loss ``(w - t/T)²``: the best λ at step t is t/T (rising over training), and any fixed
    λ is right at one moment only. Each training step costs one second on ``clock``."""

    class RisingTask(Task):
        name: ClassVar[str] = "rising_test"
        space: ClassVar[SearchSpace] = SearchSpace({"lam": Float(0.0, 1.0, default=0.5)})
        presets: ClassVar[Mapping[str, Preset]] = {"smoke": Preset("smoke", epochs=CAP, batch_size=1)}

        def load(self, seeds: RunSeeds) -> str:
            return "a regulariser whose best value rises over training"

        def train_batches(self, generator: torch.Generator) -> Iterator[Batch]:
            for _ in range(STEPS_PER_EPOCH):
                yield (torch.zeros(1),)

        def eval_batches(self, split: Split) -> Iterator[Batch]:
            yield (torch.zeros(1),)

        def build_model(self, config: Config, generator: torch.Generator) -> nn.Module:
            return TrackingModel()

        def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
            return torch.optim.SGD(model.parameters(), lr=0.5)

        def training_loss(self, model: nn.Module, batch: Batch, config: Config) -> torch.Tensor:
            clock.advance(1.0)
            assert isinstance(model, TrackingModel)
            with torch.no_grad():
                model.t.add_(1)
            return 0.5 * (model.w - float(config["lam"])) ** 2

        def eval_sums(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int, dict[str, torch.Tensor]]:
            assert isinstance(model, TrackingModel)
            target = torch.clamp(model.t / HORIZON, max=1.0)
            return ((model.w - target) ** 2).detach().double(), 1, {}

        def warm_up(self) -> None:
            pass  # the fake clock must count training steps only

    return RisingTask


def run_rising(tmp_path: Path, method: str, seed: int, options: Mapping[str, object] | None = None) -> Path:
    clock = FakeClock(tick=0.0)
    registry._TASKS.pop("rising_test", None)
    register_task("rising_test")(rising_task(clock))
    # 4 members x 60 steps: each member trains about as long as one random-search trial to the cap.
    spec = RunSpec("rising_test", method, "smoke", seed, Budget(4.0 * HORIZON), dict(options or {}))
    return execute(spec, tmp_path / f"{method}-{seed}", clock=clock, device="cpu").run_dir


def distance_to_rising(values_at: list[float]) -> float:
    """Mean |λ(t) - t/T| over the steps t = 0..T-1 of the horizon."""
    return statistics.fmean(abs(v - t / HORIZON) for t, v in enumerate(values_at))


@pytest.mark.usefixtures("isolated_registry")
def test_pbt_tracks_a_rising_schedule_better_than_the_best_fixed_value(tmp_path: Path) -> None:
    """On each of 3 seeds the best checkpoint's schedule is nearer to the known best schedule λ(t) = t/T
    than the config random search picks in the same budget (a constant is at least 0.25 away on
    average; the best constant, 0.5, exactly 0.25)."""
    for seed in range(3):
        pbt_dir = run_rising(tmp_path, "pbt", seed, {"interval": 0.5})
        schedule = Schedule.from_run(pbt_dir)
        pbt_distance = distance_to_rising([schedule.at(t)["lam"] for t in range(HORIZON)])
        random_config = load_final(run_rising(tmp_path, "random", seed)).incumbent_config
        assert random_config is not None
        random_distance = distance_to_rising([float(random_config["lam"])] * HORIZON)
        assert random_distance >= 0.25 - 1e-9
        assert pbt_distance < 0.8 * random_distance, (seed, pbt_distance, random_distance, schedule)
        # The schedule rises: its values late in the horizon sit above its early ones.
        assert schedule.at(HORIZON - 1)["lam"] > schedule.at(HORIZON // 6)["lam"]


@pytest.mark.usefixtures("isolated_registry")
def test_records_hold_every_member_and_the_lineage_and_the_schedule_replays(tmp_path: Path) -> None:
    run_dir = run_rising(tmp_path, "pbt", 0, {"interval": 1.0})
    _, trials, schedules = load_log(run_dir)
    final = load_final(run_dir)
    # One evaluation per member per round, each naming its member; the incumbent is the best of them.
    assert {t.reason.split(",")[0] for t in trials if t.reason} == {f"member {j}" for j in range(4)}
    assert final.incumbent_val_loss == min(t.val_loss for t in trials if t.val_loss is not None)
    population = [r for r in schedules if all("/" in k for k in r.values)]
    assert population[0].step == 0
    assert [r.step for r in population] == [STEPS_PER_EPOCH * k for k in range(len(population))]
    for record in population:
        parents = [int(record.values[f"member{j}/parent"]) for j in range(4)]
        copied = [j for j in range(4) if parents[j] != j]
        assert record.step == 0 or len(copied) == 1  # 4 members: one bottom member copies one top member
    lineage = [r.values["lineage/member"] for r in schedules if "lineage/member" in r.values]
    assert lineage
    assert all(m in {0.0, 1.0, 2.0, 3.0} for m in lineage)
    # The best checkpoint's schedule replays on the plain model through schedule_replay.
    clock = FakeClock(tick=0.0)
    registry._TASKS.pop("rising_test", None)
    register_task("rising_test")(rising_task(clock))
    spec = RunSpec("rising_test", "schedule_replay", "smoke", 0, Budget(1e6), {"schedule": str(run_dir)})
    replay = execute(spec, tmp_path / "replay", clock=clock, device="cpu")
    _, replayed, _ = load_log(replay.run_dir)
    schedule = Schedule.from_run(run_dir)
    assert replayed[-1].config == schedule.config_at(replayed[-1].steps, rising_task(clock).space, {})
    assert replayed[-1].epochs == CAP


def test_explore_stays_in_bounds_and_keeps_integers_whole() -> None:
    space = SearchSpace(
        {
            "rate": Float(0.0, 0.9),
            "scale": Float(1e-4, 1.0, log=True),
            "holes": Int(0, 4),
            "length": Int(1, 64, log=True),
        }
    )
    rng = np.random.default_rng(0)
    corners: list[Config] = [
        {"rate": 0.9, "scale": 1.0, "holes": 4, "length": 64},
        {"rate": 0.0, "scale": 1e-4, "holes": 0, "length": 1},
        {"rate": 0.5, "scale": 0.01, "holes": 2, "length": 8},
    ]
    for config in corners:
        for _ in range(300):
            out = explore(config, space, rng, resample_probability=0.25)
            assert space.validate(out) == out
            assert type(out["holes"]) is int
            assert type(out["length"]) is int
    # Without redraws each value moves by x0.8 or x1.2 (clipped); a small integer still moves by one.
    seen: dict[str, set[float]] = {k: set() for k in space}
    for _ in range(200):
        out = explore(corners[2], space, rng, resample_probability=0.0)
        for k in space:
            seen[k].add(out[k])
    assert sorted(seen["rate"]) == pytest.approx([0.4, 0.6])
    assert sorted(seen["scale"]) == pytest.approx([0.008, 0.012])
    assert seen["holes"] == {1, 3}  # round(1.6) = 2 and round(2.4) = 2 would not move: one step instead
    assert seen["length"] == {6, 10}


def test_exploit_copies_the_top_member_and_explores_from_its_config(digits: DigitsTask) -> None:
    """After selection the bottom member holds the top member's weights, optimiser state and learning
    rate, a config explored from the top member's, and the top member's schedule and lineage extended."""
    timer = BudgetTimer(Budget(1e9), FakeClock())
    timer.start()
    rng = np.random.default_rng(0)
    configs = [digits.space.sample(rng) for _ in range(4)]
    members = [
        _Member(j, digits.start(c, timer, RunSeeds.from_master(0).member(j)), c, [(0, c)], [(0, j)])
        for j, c in enumerate(configs)
    ]
    for m in members:
        m.run.train(timer, steps=7)
    members[1].run.optimizer.param_groups[0]["lr"] = 0.0077
    parents = PBT({"resample_probability": 0.0})._select(members, [3.0, 1.0, 2.0, 4.0], rng, digits.space)
    assert parents == [0, 1, 2, 1]
    source, target = members[1], members[3]
    for a, b in zip(source.run.model.state_dict().values(), target.run.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    src, dst = source.run.optimizer.state_dict(), target.run.optimizer.state_dict()
    assert dst["param_groups"] == src["param_groups"]
    for key in src["state"]:
        assert torch.equal(src["state"][key]["momentum_buffer"], dst["state"][key]["momentum_buffer"])
    assert target.run.config == target.config != source.config
    assert target.schedule == [(0, source.config), (7, target.config)]
    assert target.lineage == [(0, 1), (7, 3)]
    assert members[0].run.steps == members[2].run.steps == 7  # the others are untouched


def test_options_are_checked() -> None:
    pbt = get_method("pbt")
    with pytest.raises(MethodError, match="population must be an integer >= 2, got 1"):
        pbt({"population": 1})
    with pytest.raises(MethodError, match=r"quantile must lie in \(0, 0.5\], got 0.75"):
        pbt({"quantile": 0.75})
    with pytest.raises(MethodError, match=r"interval must be a number of epochs in \(0, 1000\], got 0"):
        pbt({"interval": 0})


@pytest.mark.usefixtures("isolated_registry")
def test_same_seed_same_run_and_another_seed_another(tmp_path: Path) -> None:
    def trials(seed: int, name: str) -> list[tuple[object, ...]]:
        _, records, _ = load_log(run_rising(tmp_path / name, "pbt", seed))
        return [(t.config, t.val_loss, t.steps, t.reason) for t in records]

    first = trials(0, "a")
    assert first == trials(0, "b")
    assert [c for c, *_ in first] != [c for c, *_ in trials(1, "c")]


@pytest.mark.usefixtures("isolated_registry")
def test_the_schedule_figure_draws_the_final_member_with_crosses_at_its_exploits(tmp_path: Path) -> None:
    run_dir = run_rising(tmp_path, "pbt", 0, {"interval": 0.5})
    _, _, schedules = load_log(run_dir)
    lineage = [(r.step, r.values["lineage/member"]) for r in schedules if "lineage/member" in r.values]
    exploits = [s for (s, m), (_, before) in zip(lineage[1:], lineage, strict=False) if m != before]
    assert exploits  # the final member descends from copies
    fig = plot_schedules(load_runs(tmp_path), "rising_test")
    assert fig is not None
    crosses = [line for line in fig.axes[0].lines if line.get_marker() == "x"]
    assert len(crosses) == 1
    assert [float(x) for x in np.asarray(crosses[0].get_xdata())] == exploits
    plt.close(fig)
