"""Hyperparameter schedules recorded by a gray-box method, and their replay on a plain model.

A best-response method (STN) logs :class:`~hpobench_stn.ScheduleRecord` s: at weight step ``step``,
the value of every tuned hyperparameter (Ints as their continuous value) and ``sigma/<name>``. A
:class:`Schedule` turns them into a step → config function, piecewise constant: step ``s`` uses the
latest record at or before ``s`` (the first record before it; the last one after the end). Passing it
to :meth:`hpobench_stn.Task.fit` trains a plain model from scratch with the schedule (the STN paper's
"LSTM with the STN schedule").

A schedule can also be read against its search space: :meth:`Schedule.fraction_at_bounds` is the
fraction of the run (in weight steps) that each hyperparameter spent within ``BOUND_TOLERANCE`` of an
end of its range (on the sampling scale), and :meth:`Schedule.mean_position` where it sat on average
over a stretch of the run. A run that spent more than ``BOUND_WARNING`` of its schedule at a bound is
warned about in its log and flagged in the run table: a gradient-based tuner parked at a bound is
usually stuck in the saturated end of its parameterisation, not at an optimum.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..foundation.space import Config, SearchSpace, SpaceError
from .records import ScheduleRecord, load_log

__all__ = ["BOUND_TOLERANCE", "BOUND_WARNING", "Schedule"]

# Within 2.5 % of the range (sampling scale) of an end counts as "at the bound": there a sigmoid-projected
# hyperparameter's sigmoid'(u) is below a tenth of its value at the centre (the saturated end).
BOUND_TOLERANCE = 0.025
BOUND_WARNING = 0.10  # a run that spends more than this fraction of its schedule at a bound is flagged


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
        of several records at one step (e.g. the last one at the deadline) the latest wins. Records that
        hold only ``/`` keys (PBT's per-member population records) are not part of the schedule."""
        by_step: dict[int, ScheduleRecord] = {}
        for record in records:
            if any("/" not in k for k in record.values):
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

    def _durations(self) -> list[float]:
        """Weight steps each record was in force (the last record: none, unless it is the only one)."""
        if len(self.steps) == 1:
            return [1.0]
        return [float(b - a) for a, b in zip(self.steps, self.steps[1:], strict=False)] + [0.0]

    def _positions(self, name: str, space: SearchSpace) -> list[float]:
        if name not in self.values:
            raise SpaceError(f"the schedule has no {name!r}; it has {list(self.values)}")
        if name not in space:
            raise SpaceError(f"the space has no {name!r}; it has {list(space)}")
        return [space[name].position(v) for v in self.values[name]]

    def fraction_at_bounds(self, space: SearchSpace, tolerance: float = BOUND_TOLERANCE) -> dict[str, float]:
        """name → the fraction of the run's weight steps at which the value lay within ``tolerance`` (a
        fraction of the range, on the sampling scale) of either end of its range."""
        if not 0 < tolerance < 0.5:
            raise ValueError(f"tolerance must lie in (0, 0.5), got {tolerance!r}")
        durations = self._durations()
        total = sum(durations)
        out: dict[str, float] = {}
        for name in self.values:
            at = [p <= tolerance or p >= 1 - tolerance for p in self._positions(name, space)]
            out[name] = sum(d for d, hit in zip(durations, at, strict=True) if hit) / total
        return out

    def mean_position(self, name: str, space: SearchSpace, since: float = 0.0) -> float:
        """The step-weighted mean position (0 at the range's low end, 1 at its high end, sampling scale)
        of ``name`` from the fraction ``since`` of the run to its end (``0.75``: the last quarter)."""
        if not 0 <= since < 1:
            raise ValueError(f"since must lie in [0, 1), got {since!r}")
        positions = self._positions(name, space)
        if len(self.steps) == 1:
            return positions[0]
        start = self.steps[0] + since * (self.steps[-1] - self.steps[0])
        weighted = total = 0.0
        for a, b, p in zip(self.steps, self.steps[1:], positions, strict=False):
            d = max(0.0, b - max(a, start))  # the part of [a, b) after ``start``
            weighted, total = weighted + d * p, total + d
        return weighted / total if total > 0 else positions[-1]
