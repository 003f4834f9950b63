"""Hyperparameter schedules recorded by a gray-box method, and their replay on a plain model.

A best-response method (STN) logs :class:`~hpobench_stn.ScheduleRecord` s: at weight step ``step``,
the value of every tuned hyperparameter (Ints as their continuous value) and ``sigma/<name>``. A
:class:`Schedule` turns them into a step → config function, piecewise constant: step ``s`` uses the
latest record at or before ``s`` (the first record before it; the last one after the end). Passing it
to :meth:`hpobench_stn.Task.fit` trains a plain model from scratch with the schedule (the STN paper's
"LSTM with the STN schedule").
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..foundation.space import Config, SearchSpace, SpaceError
from .records import ScheduleRecord, load_log

__all__ = ["Schedule"]


@dataclass(frozen=True)
class Schedule:
    """Hyperparameter values by training step.

    Attributes:
        steps: record steps, strictly increasing.
        values: name → values at those steps (on the space's scale; Ints continuous).
    """

    steps: tuple[int, ...]
    values: Mapping[str, tuple[float, ...]]

    def __post_init__(self) -> None:
        if not self.steps:
            raise SpaceError("a Schedule needs at least one record")
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise SpaceError(f"schedule steps must increase strictly, got {list(self.steps)[:10]}...")
        for name, vals in self.values.items():
            if len(vals) != len(self.steps):
                raise SpaceError(f"schedule of {name!r} has {len(vals)} values for {len(self.steps)} steps")

    @classmethod
    def from_records(cls, records: Sequence[ScheduleRecord]) -> Schedule:
        """Hyperparameter columns of the records (``sigma/...`` and other keys with a ``/`` are dropped);
        of several records at one step (e.g. the last one at the deadline) the latest wins."""
        by_step: dict[int, ScheduleRecord] = {}
        for record in records:
            by_step[record.step] = record
        steps = sorted(by_step)
        if not steps:
            raise SpaceError("no schedule records: was the run made by a gray-box method such as stn?")
        names = [k for k in by_step[steps[0]].values if "/" not in k]
        return cls(tuple(steps), {n: tuple(float(by_step[s].values[n]) for s in steps) for n in names})

    @classmethod
    def from_run(cls, run_dir: Path | str) -> Schedule:
        """The schedule logged in a run folder's ``log.jsonl``."""
        _, _, records = load_log(Path(run_dir))
        return cls.from_records(records)

    def at(self, step: int) -> dict[str, float]:
        """The recorded values in force at ``step``."""
        i = max(bisect.bisect_right(self.steps, step) - 1, 0)
        return {name: vals[i] for name, vals in self.values.items()}

    def config_at(self, step: int, space: SearchSpace, fixed: Mapping[str, float | int]) -> Config:
        """A config of ``space`` at ``step``: scheduled values as applied (Ints floored, Floats clipped),
        the others from ``fixed``."""
        unknown = [n for n in self.values if n not in space]
        if unknown:
            raise SpaceError(f"the schedule names {unknown}, which the space does not have: {list(space)}")
        return space.from_continuous(self.at(step), fixed)
