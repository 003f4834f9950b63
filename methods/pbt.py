"""``pbt``: Population Based Training (Jaderberg et al. 2017), synchronous, on one device, under the clock.

A population of ``population`` members, each a model and its optimiser (:class:`hpobench_stn.TrainingRun`),
starts from configs drawn uniformly from the space. In each **round**, every member in turn trains
``interval`` epochs (phase ``train``; fractions of an epoch allowed: the interval is rounded to whole
optimiser steps) and is validated cleanly (phase ``validate``; recorded as one evaluation, so the
harness tests each new best checkpoint with the clock paused). Then, **truncation selection** (phase
``ask``): the members are ranked by that round's validation loss; each member in the bottom ``quantile``
(at least one, at most half; members whose loss was not finite always) copies the weights and optimiser
state (learning rate included) of a member drawn uniformly from the top ``quantile`` (**exploit**), then
**explores**: each tuned hyperparameter is redrawn from its distribution with probability
``resample_probability``, else multiplied by 0.8 or 1.2 (even odds) and clipped to its bounds. On a
log-scale hyperparameter the factor is a step of ±log 1.2 / log 0.8 in log space; on a linear one it is
relative too, so a value at exactly 0 moves only by a redraw. Integers are rounded, and moved by one in
the factor's direction when rounding would leave them where they were. A member keeps its own batch
order and dropout noise after copying. The run ends at the deadline.

Records:

* one evaluation per member per round (config = the member's config during that interval; reason
  ``member j, round r``; the record kind is ``validation``, as STN's);
* at the start of each round one :class:`~hpobench_stn.ScheduleRecord` at the round's first step with
  ``member<j>/<name>`` (member j's config from here on) and ``member<j>/parent`` (the member whose state
  it copied at this round, or j): the whole population's schedules and lineage;
* when the run ends, the **final member's schedule**: the best member of the last complete round (PBT's
  answer, as in the paper), with the configs that trained its weights traced back through the members it
  descends from, as plain ``<name>`` records with ``lineage/member`` (which member trained from that step
  on). This is what the schedule figures draw and ``schedule_replay`` replays. These records are written
  when the run ends (their ``elapsed_s`` is the end), because only then is the final member known. The
  run's incumbent is judged like every method's (the best checkpoint it validated, at any round); it is
  the final member's last checkpoint when validation still falls at the end of the run.

Why not a library's scheduler: Ray Tune's ``PopulationBasedTraining`` is driven by Ray's trial
controller and checkpoint manager, not ask/tell in one process. Syne Tune's ``PopulationBasedTraining``
can be called ask/tell, but it is asynchronous: each member is ranked on arrival against the others'
latest scores; trained in turn on one device, the first members of a round would always be compared
with members one interval behind them, so selection would follow the training order. It also multiplies
log-scale values in linear space only through a custom function, records no lineage, and needs
xgboost and statsmodels. The synchronous rule here is the paper's truncation selection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from hpobench_stn import (
    EvalResult,
    FitResult,
    Float,
    Int,
    Method,
    RunContext,
    SearchSpace,
    Task,
    TrainingRun,
    TrialStatus,
    register_method,
)
from hpobench_stn.foundation.space import Config
from hpobench_stn.harness.method import phase_delta
from hpobench_stn.harness.training import Stopped

FACTORS = (0.8, 1.2)  # explore's multiplicative steps, as in the PBT paper, Ray Tune and Syne Tune


@dataclass(frozen=True)
class PBTOptions:
    population: int = 4  # members trained in turn; 4 is the fewest with a distinct top and bottom quarter
    interval: float = 0.5  # epochs each member trains between two exploit/explore rounds
    quantile: float = 0.25  # the bottom fraction copies the top fraction
    resample_probability: float = 0.25  # explore redraws a hyperparameter instead of scaling it

    def __post_init__(self) -> None:
        if isinstance(self.population, bool) or not isinstance(self.population, int) or self.population < 2:
            raise ValueError(f"population must be an integer >= 2, got {self.population!r}")
        if not isinstance(self.interval, (int, float)) or not 0 < self.interval <= 1000:
            raise ValueError(f"interval must be a number of epochs in (0, 1000], got {self.interval!r}")
        if not isinstance(self.quantile, (int, float)) or not 0 < self.quantile <= 0.5:
            raise ValueError(f"quantile must lie in (0, 0.5], got {self.quantile!r}")
        if not isinstance(self.resample_probability, (int, float)) or not 0 <= self.resample_probability <= 1:
            raise ValueError(f"resample_probability must lie in [0, 1], got {self.resample_probability!r}")


def explore(config: Config, space: SearchSpace, rng: np.random.Generator, resample_probability: float) -> Config:
    """A perturbed copy of ``config`` over ``space``'s hyperparameters (the others are kept as they are)."""
    out = dict(config)
    for name, dist in space.items():
        if rng.random() < resample_probability:
            out[name] = dist.sample(rng)
            continue
        factor = FACTORS[int(rng.integers(2))]
        value = float(config[name]) * factor
        if isinstance(dist, Int):
            moved = round(value)
            if moved == config[name]:  # a small integer would never move by rounding alone
                moved = int(config[name]) + (1 if factor > 1 else -1)
            out[name] = int(min(max(moved, dist.low), dist.high))
        elif isinstance(dist, Float):
            out[name] = float(min(max(value, dist.low), dist.high))
    return out


@dataclass
class _Member:
    """One member: its training run, its config, and the schedule and lineage that made its weights."""

    index: int
    run: TrainingRun
    config: Config
    schedule: list[tuple[int, Config]] = field(default_factory=list)  # (step, config from that step on)
    lineage: list[tuple[int, int]] = field(default_factory=list)  # (step, member that trained from there)


@register_method("pbt")
class PBT(Method):
    """Population Based Training; see the module docstring."""

    Options = PBTOptions
    options: PBTOptions
    record_kind: ClassVar[Any] = "validation"
    warn_at_bounds: ClassVar[bool] = False  # explore clips to the bounds: being there is not a symptom

    def run(self, task: Task, ctx: RunContext) -> None:
        opts, timer = self.options, ctx.timer
        rng = ctx.seeds.numpy("method")
        snapshot = timer.totals()
        final: _Member | None = None  # the best member of the last complete round

        def record(member: _Member, fit: FitResult) -> None:
            nonlocal snapshot
            totals = timer.totals()
            ctx.record(member.config, fit, phase_delta(snapshot, totals))
            snapshot = totals

        with timer.phase("ask"):
            # Steps per epoch: the interval is a number of epochs, trained as whole optimiser steps.
            per_epoch = sum(1 for _ in task.train_batches(torch.Generator().manual_seed(0)))
            interval_steps = max(1, round(opts.interval * per_epoch))
            configs = [ctx.check_proposal(ctx.space.sample(rng)) for _ in range(opts.population)]
        members = []
        for j, config in enumerate(configs):
            if timer.expired():
                return
            member = _Member(j, task.start(config, timer, ctx.seeds.member(j)), config)
            member.schedule.append((0, config))
            member.lineage.append((0, j))
            members.append(member)
        parents = list(range(opts.population))
        round_ = 0
        while not timer.expired():
            step = members[0].run.steps
            values: dict[str, float] = {}
            for m in members:
                values.update({f"member{m.index}/{k}": float(m.config[k]) for k in ctx.space})
                values[f"member{m.index}/parent"] = float(parents[m.index])
            ctx.record_schedule(step, values)
            losses: list[float] = []
            for m in members:
                stopped = m.run.train(timer, interval_steps)
                val: EvalResult | Stopped = stopped if stopped is not None else m.run.validate(timer)
                if isinstance(val, Stopped):
                    record(
                        m,
                        FitResult(
                            val.status,
                            None,
                            m.run.validated_epochs,
                            m.run.steps,
                            f"member {m.index}, round {round_}: {val.reason}",
                        ),
                    )
                    if val.status is TrialStatus.OUT_OF_BUDGET:
                        self._write_schedule(ctx, final)
                        return
                    losses.append(math.inf)  # FAILED: its weights are lost; it copies a healthy member below
                    continue
                fit = FitResult(
                    TrialStatus.COMPLETE,
                    val,
                    m.run.validated_epochs,
                    m.run.steps,
                    f"member {m.index}, round {round_}",
                    m.run.model,
                    tuple(m.run.val_losses),
                )
                record(m, fit)
                losses.append(val.loss)
            with timer.phase("ask"):
                selected = self._select(members, losses, rng, ctx.space)
            if selected is None:
                break  # every member failed: nothing left to copy
            # A top member is never changed by selection: the round's best keeps its schedule and weights.
            final = members[min(range(len(members)), key=lambda j: (losses[j], j))]
            parents = selected
            round_ += 1
        self._write_schedule(ctx, final)

    def _select(
        self, members: list[_Member], losses: list[float], rng: np.random.Generator, space: SearchSpace
    ) -> list[int] | None:
        """Truncation selection, exploit and explore; the parent of each member for the next round, or None
        when no member has a finite loss."""
        healthy = [j for j, loss in enumerate(losses) if math.isfinite(loss)]
        if not healthy:
            return None
        order = sorted(range(len(members)), key=lambda j: (losses[j], j))  # best first; ties by index
        n = len(members)
        k = min(max(1, math.ceil(self.options.quantile * n)), n // 2)
        top = [j for j in order[:k] if math.isfinite(losses[j])]  # never copy a failed member
        bottom = set(order[-k:]) | {j for j in range(n) if not math.isfinite(losses[j])}
        parents = list(range(n))
        for j in sorted(bottom):
            source = members[int(rng.choice(top))]
            target = members[j]
            step = source.run.steps
            target.run.load_state(source.run.state())
            target.config = explore(source.config, space, rng, self.options.resample_probability)
            target.run.config = target.config
            target.schedule = [*source.schedule, (step, target.config)]
            target.lineage = [*source.lineage, (step, j)]
            parents[j] = source.index
        return parents

    @staticmethod
    def _write_schedule(ctx: RunContext, member: _Member | None) -> None:
        """The final member's schedule and lineage as plain records (what figures and replays read)."""
        if member is None:
            return
        steps = sorted({s for s, _ in member.schedule} | {s for s, _ in member.lineage})
        for step in steps:
            config = next(c for s, c in reversed(member.schedule) if s <= step)
            trained_by = next(m for s, m in reversed(member.lineage) if s <= step)
            values = {k: float(config[k]) for k in ctx.space}
            values["lineage/member"] = float(trained_by)
            ctx.record_schedule(step, values)
