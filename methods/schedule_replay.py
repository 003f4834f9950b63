"""``schedule_replay``: train a plain model from scratch with a hyperparameter schedule recorded by STN.

The STN paper's "LSTM with the STN schedule": the schedule STN found, replayed on the baseline model
(no hypernetwork) under the same clock, data, initial weights and noise as any other trial of the run
seed. Training step ``s`` uses the schedule's values at ``s`` (:class:`hpobench_stn.harness.schedule.Schedule`:
piecewise constant, Ints floored; the last values hold after the schedule ends). One trial of
``preset.epochs`` epochs, validated after each epoch like every black-box trial; hyperparameters the
schedule does not name stay at their defaults.

Options (exactly one): ``schedule``, the folder of an STN run of the same task and preset (the folder
holding its ``log.jsonl``); or, in a suite, ``arm``, another arm of the suite: the run of that arm with
the same task, preset and seed is replayed (a suite runs such arms after the others).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hpobench_stn import Method, MethodError, RunContext, Task, register_method
from hpobench_stn.foundation.space import SpaceError
from hpobench_stn.harness.method import phase_delta
from hpobench_stn.harness.records import FINAL_NAME, RecordError, load_log
from hpobench_stn.harness.schedule import Schedule


@dataclass(frozen=True)
class ReplayOptions:
    schedule: str = ""  # folder of the STN run whose schedule is replayed
    arm: str = ""  # or: the suite arm whose run with this task, preset and seed is replayed

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, str) or not isinstance(self.arm, str) or bool(self.schedule) == bool(self.arm):
            raise ValueError(
                "give exactly one of schedule (the folder of an STN run: its log.jsonl holds the schedule) "
                f"and arm (a suite arm whose run of the same seed is replayed); got schedule={self.schedule!r}, "
                f"arm={self.arm!r}"
            )


@register_method("schedule_replay")
class ScheduleReplay(Method):
    """Replay a recorded schedule on the plain model (see the module docstring)."""

    Options = ReplayOptions
    options: ReplayOptions

    def source(self, ctx: RunContext) -> Path:
        """The folder of the run to replay: ``schedule``, or the same seed's run of ``arm`` beside this run."""
        if self.options.schedule:
            return Path(self.options.schedule)
        if ctx.run_dir is None:
            raise MethodError("schedule_replay: option arm needs a run filed by the runner (use schedule=RUN_DIR)")
        # <out>/<task>/<preset>/<arm>/seed<k>: the sibling arm's folder for the same seed.
        source = ctx.run_dir.parent.parent / self.options.arm / ctx.run_dir.name
        if not (source / FINAL_NAME).is_file():
            raise MethodError(
                f"schedule_replay: {source} holds no complete run of arm {self.options.arm!r}; run that arm first "
                "(a suite does: replays run in its second wave)"
            )
        return source

    def load(self, task: Task, run_dir: Path) -> Schedule:
        try:
            meta, _, records = load_log(run_dir)
            schedule = Schedule.from_records(records)
        except (OSError, RecordError, SpaceError) as exc:
            raise MethodError(f"schedule_replay: cannot read a schedule from {run_dir}: {exc}") from exc
        if (meta.task, meta.preset) != (task.name, task.preset.name):
            raise MethodError(
                f"schedule_replay: {run_dir} is a run of {meta.task}/{meta.preset}, not {task.name}/{task.preset.name}"
            )
        return schedule

    def run(self, task: Task, ctx: RunContext) -> None:
        timer = ctx.timer
        before = timer.totals()
        with timer.phase("ask"):
            schedule = self.load(task, self.source(ctx))
            space, fixed = task.space, task.space.default()

            def config_at(step: int) -> dict[str, float | int]:
                return schedule.config_at(step, space, fixed)

        fit = ctx.fit(config_at(0), schedule=config_at)
        ctx.record(config_at(fit.steps), fit, phase_delta(before, timer.totals()))
