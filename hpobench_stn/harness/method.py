"""The Method contract, the ask/tell base class, and the run context the harness hands to methods.

``Method.run(task, ctx)`` is the single abstract method. Black-box methods subclass
:class:`AskTellMethod`, which owns the loop::

    setup → while budget left: ask → check the proposal against the space → fit → tell → record

and times each phase per trial. A multi-fidelity method also overrides
:meth:`AskTellMethod.report`: it then sees each validation of the running trial and may stop it
(status PRUNED). Gray-box methods (STN) override :meth:`Method.run` and train inside
one run, reporting each periodic validation through :meth:`RunContext.record`. Either way the
harness, not the method, validates configs, keeps the incumbent, tests it with the clock paused and
writes the records.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from ..foundation.clock import PAUSED, BudgetTimer
from ..foundation.seeding import RunSeeds
from ..foundation.space import Config, SearchSpace, SpaceError
from .records import RunLog, ScheduleRecord, TrialRecord, TrialStatus, finite
from .task import EpochMonitor, EpochReport, FitResult, Task

__all__ = ["AskTellMethod", "Method", "MethodError", "NoOptions", "ProposalError", "RunContext", "phase_delta"]


class MethodError(ValueError):
    """A method was configured wrongly (unknown option, bad option value)."""


class ProposalError(ValueError):
    """A method proposed a config outside the search space; names the method, key and value."""


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """Options of a method that has none."""


class Method(ABC):
    """A hyperparameter optimisation method.

    Class attributes:
        name: the registry name.
        Options: a frozen dataclass of the method's options (suite files and the CLI fill it).
        libraries: distributions whose versions are written into every run record.
        record_kind: what one of its records is: ``"trial"`` (a config trained from scratch) or
            ``"validation"`` (one periodic validation of a single training run, as STN's). Reports
            count them apart, so a table never compares STN's epochs with another method's trials.
        warn_at_bounds: whether the run's logged schedule is checked for hyperparameters parked at a bound
            (a gradient-based tuner stuck in a saturated parameterisation). False for a method whose
            schedule reaches bounds by design (PBT's explore clips to them).
        legacy_options: options added after runs were recorded without them, each with the value that
            reproduces the method's behaviour before the option existed. A recorded run that lacks one
            is read with this value (not today's default) when a resume decides whether it is the same
            experiment, so a recipe change is never mistaken for the old runs.
    """

    name: ClassVar[str]
    Options: ClassVar[type[Any]] = NoOptions
    libraries: ClassVar[tuple[str, ...]] = ()
    record_kind: ClassVar[Literal["trial", "validation"]] = "trial"
    legacy_options: ClassVar[Mapping[str, Any]] = {}
    warn_at_bounds: ClassVar[bool] = True

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        allowed = [f.name for f in dataclasses.fields(self.Options)]
        unknown = sorted(set(options or {}) - set(allowed))
        if unknown:
            raise MethodError(f"method {self.name!r} got unknown option(s) {unknown}; allowed: {allowed or 'none'}")
        try:
            self.options = self.Options(**(options or {}))
        except (TypeError, ValueError) as exc:
            raise MethodError(f"method {self.name!r}: {exc}") from exc

    def options_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.options)

    def method_tuned(self, task: Task, space: SearchSpace) -> list[str] | None:
        """The hyperparameters this method will move when it tunes only part of the open ``space``
        (``ift``: those differentiable in the training loss), for the run's metadata; None (the
        default): all of them."""
        return None

    @abstractmethod
    def run(self, task: Task, ctx: RunContext) -> None:
        """Spend ``ctx.timer``'s budget tuning ``task``; report each evaluation via ``ctx.record``."""


class RunContext:
    """What the harness gives a method for one run: the timer, the seeds, and the record keeper.

    Attributes:
        task: the task being tuned (data already loaded).
        timer: charges time to phases; ``timer.expired()`` says when to stop.
        seeds: the run's seeds (use ``seeds.method`` for the method's own randomness).
        space: the hyperparameters open to the method: the task's whole space, or the part a suite's
            ``tune`` names. The others stay at their defaults (:attr:`fixed`), filled in by
            :meth:`check_proposal`.
        fixed: the defaults of the hyperparameters outside :attr:`space`.

    The records themselves (which carry test losses) are kept away from the method: it sees only
    :attr:`n_trials` and :attr:`best_val_loss`.
    """

    def __init__(
        self,
        task: Task,
        timer: BudgetTimer,
        seeds: RunSeeds,
        log: RunLog,
        method_name: str,
        on_trial: Callable[[TrialRecord], None] | None = None,
        space: SearchSpace | None = None,
        run_dir: Path | None = None,
    ) -> None:
        self.task = task
        self.run_dir = run_dir  # where this run's records go (read-only for methods; None outside a runner)
        self.space = task.space if space is None else space
        self.fixed: Config = {k: v for k, v in task.space.default().items() if k not in self.space}
        self.timer = timer
        self.seeds = seeds
        self.method_name = method_name
        self._log = log
        self._on_trial = on_trial
        self._trials: list[TrialRecord] = []
        self._incumbent: TrialRecord | None = None

    @property
    def n_trials(self) -> int:
        return len(self._trials)

    @property
    def best_val_loss(self) -> float | None:
        """The lowest validation loss recorded so far (None before the first validation)."""
        return self._incumbent.val_loss if self._incumbent is not None else None

    def results_for_harness(self) -> tuple[list[TrialRecord], TrialRecord | None]:
        """All records and the incumbent, test losses included: for the runner, not for methods."""
        return list(self._trials), self._incumbent

    def check_proposal(self, proposal: Mapping[str, Any]) -> Config:
        """The task's full config for a proposal over :attr:`space`; raise :class:`ProposalError`.

        The hyperparameters outside :attr:`space` are filled in from :attr:`fixed`; a proposal may name
        them (a gray-box method passes whole configs) only with exactly those values.
        """
        moved = {k: v for k, v in proposal.items() if k in self.fixed and v != self.fixed[k]}
        if moved:
            raise ProposalError(
                f"method {self.method_name!r} proposed {moved}, but only {list(self.space)} are tuned in this "
                f"run; the others stay at {self.fixed}"
            )
        try:
            return self.task.space.validate({**self.fixed, **proposal})
        except SpaceError as exc:
            raise ProposalError(f"method {self.method_name!r} proposed an invalid config: {exc}") from exc

    def fit(
        self,
        config: Config,
        schedule: Callable[[int], Mapping[str, Any]] | None = None,
        monitor: EpochMonitor | None = None,
    ) -> FitResult:
        """``task.fit`` with failures recorded, not raised: an exception becomes a FAILED result.

        ``schedule`` (step → config) replays a hyperparameter schedule; ``monitor`` sees each
        validation and may stop the trial (see :meth:`Task.fit`).
        """
        try:
            return self.task.fit(config, self.timer, self.seeds, schedule, monitor)
        except Exception as exc:
            return FitResult(TrialStatus.FAILED, None, 0, 0, f"{type(exc).__name__}: {exc}")

    def record(self, config: Mapping[str, Any], fit: FitResult, phases_s: Mapping[str, float]) -> TrialRecord:
        """Append one evaluation to the run log (clock paused), testing it if it is a new incumbent."""
        config = self.check_proposal(config)
        with self.timer.paused():
            elapsed = self.timer.charged()  # read while paused: the sum of the charged phases so far
            loss = finite(fit.loss)
            previous = self.best_val_loss
            is_best = loss is not None and (previous is None or loss < previous)
            test_loss = None
            if is_best and fit.model is not None:
                # Test evaluation never steers a method: its result goes to the record only.
                test = self.task.evaluate(fit.model, "test")
                test_loss = finite(test.loss) if test is not None else None
            record = TrialRecord(
                index=len(self._trials),
                config=dict(config),
                status=fit.status,
                val_loss=loss,
                val_metrics=dict(fit.val.metrics) if fit.val is not None and loss is not None else {},
                best_so_far=loss if is_best else previous,
                test_loss=test_loss,
                elapsed_s=elapsed,
                phases_s={k: v for k, v in phases_s.items() if k != PAUSED},
                epochs=fit.epochs,
                steps=fit.steps,
                reason=fit.reason,
            )
            self._trials.append(record)
            if is_best:
                self._incumbent = record
            self._log.append(record)
            if self._on_trial is not None:
                self._on_trial(record)
        return record

    def record_schedule(self, step: int, values: Mapping[str, float]) -> None:
        """Log gray-box hyperparameter values at ``step`` (clock paused)."""
        with self.timer.paused():
            elapsed = self.timer.charged()
            self._log.append(ScheduleRecord(step=step, elapsed_s=elapsed, values=dict(values)))


def phase_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """Per-phase seconds spent between two :meth:`BudgetTimer.totals` snapshots."""
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0.0}


class AskTellMethod(Method):
    """A black-box method: the harness owns the loop, the subclass proposes and learns.

    Subclasses implement :meth:`setup`, :meth:`ask` and :meth:`tell`. The harness charges them to the
    phases ``ask`` (setup included) and ``tell``; training and validation are charged by the task.

    A multi-fidelity method (successive halving, Hyperband) also overrides :meth:`report`; the harness
    then hands it every validation of the running trial (phase ``prune``). A method that does not
    override it is never asked, so its runs are exactly as they were before the hook existed.

    Attributes:
        max_epochs: the preset's epoch cap (a multi-fidelity method's maximum resource), set by
            :meth:`run` before :meth:`setup`; None when the method is driven by hand without it.
    """

    max_epochs: int | None = None

    @abstractmethod
    def setup(self, space: SearchSpace, seed: int) -> None:
        """Prepare to search ``space``; ``seed`` is the only source of randomness allowed."""

    @abstractmethod
    def ask(self) -> Mapping[str, Any] | None:
        """The next config to evaluate, or None when the method has nothing left to propose."""

    @abstractmethod
    def tell(self, config: Config, loss: float | None) -> None:
        """The best validation loss of ``config`` (a PRUNED trial's included); None when the trial
        FAILED or never validated."""

    def report(self, progress: EpochReport) -> bool:
        """Whether to stop the running trial (the last proposal) after this validation.

        Called by the task after each validation before the epoch cap (not after one that patience
        ends); True stops the trial with status PRUNED. Its best checkpoint and epochs count, and
        :meth:`tell` then receives its best validation loss (``progress.best_val_loss``), as for any
        trial: the method knows it stopped the trial. Never called unless a subclass overrides it.
        """
        return False

    def _monitor(self) -> EpochMonitor | None:
        """:meth:`report` when a subclass overrides it; None (nothing asked, nothing charged) otherwise."""
        return self.report if type(self).report is not AskTellMethod.report else None

    def run(self, task: Task, ctx: RunContext) -> None:
        timer = ctx.timer
        monitor = self._monitor()
        self.max_epochs = task.preset.epochs
        with timer.phase("ask"):
            self.setup(ctx.space, ctx.seeds.int_for_library("method"))
        while not timer.expired():
            before = timer.totals()
            with timer.phase("ask"):
                proposal = self.ask()
            if proposal is None or timer.expired():
                break  # nothing left to propose, or the proposal itself used up the budget
            config = ctx.check_proposal(proposal)
            fit = ctx.fit(config, monitor=monitor)
            if not timer.expired():
                # After the deadline nothing can use what the method would learn; skip the charge.
                with timer.phase("tell"):
                    self.tell({k: config[k] for k in ctx.space}, fit.loss)  # the method's own dimensions
            ctx.record(config, fit, phase_delta(before, timer.totals()))
