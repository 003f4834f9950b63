"""The budget, the clock, and what is charged to it.

Rules (the same for every method; see ``docs/architecture.md``):

* A run gets a :class:`Budget` of wall-clock seconds.
* **Charged**: everything the method does between the start of the run and its end: loading data,
  building models, training steps, the validation it uses, its own model fitting (GP, TPE), and the
  harness's bookkeeping between phases.
* **Not charged** (clock paused, identically for every method): test-set evaluation of incumbents
  and writing records.
* On a CUDA device the clock synchronises the device before reading :func:`time.perf_counter`, so
  queued kernels are charged to the phase that launched them.
* Charged time is attributed to exactly one *phase* at any moment (``ask``, ``train``, ``validate``,
  ``tell``, ``data``, ``harness``, ...), so the charged total equals the sum of the phases.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import torch

__all__ = ["Budget", "BudgetTimer", "Clock", "FakeClock", "WallClock"]

HARNESS = "harness"  # the phase charged when no other is active
PAUSED = "paused"  # not charged: test evaluation and record writing


@dataclass(frozen=True)
class Budget:
    """A wall-clock budget for one run.

    Attributes:
        seconds: charged seconds the run may use; a positive, finite number.
    """

    seconds: float

    def __post_init__(self) -> None:
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, (int, float)):
            raise ValueError(f"budget must be a number of seconds, got {self.seconds!r}")
        if not math.isfinite(self.seconds) or self.seconds <= 0:
            raise ValueError(f"budget must be a positive, finite number of seconds, got {self.seconds}")


class Clock(Protocol):
    """Anything that tells monotonic time in seconds."""

    def now(self) -> float: ...


class WallClock:
    """``time.perf_counter``, synchronising ``device`` first when it is a CUDA device."""

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.device = torch.device(device) if device is not None else torch.device("cpu")

    def now(self) -> float:
        if self.device.type == "cuda":
            # Kernels run asynchronously: without this, their time would land in a later phase.
            torch.cuda.synchronize(self.device)
        return time.perf_counter()


class FakeClock:
    """A clock for tests: time moves only by :meth:`advance`, or by ``tick`` at every read.

    ``tick > 0`` makes time proportional to how often the code looks at the clock (once per
    training step in the task loop), which keeps runs deterministic while still ending them.
    """

    def __init__(self, start: float = 0.0, tick: float = 0.0) -> None:
        if not math.isfinite(tick) or tick < 0:
            raise ValueError(f"FakeClock tick must be a finite number >= 0, got {tick}")
        self.t = float(start)
        self.tick = float(tick)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"FakeClock cannot go back in time, got advance({seconds})")
        self.t += seconds

    def now(self) -> float:
        self.t += self.tick
        return self.t


class BudgetTimer:
    """Charges elapsed time to phases and tells whether the budget is spent.

    Exactly one phase is active at any time; switching phases reads the clock once. Nested
    :meth:`phase` blocks restore the outer phase on exit, so a task's ``train`` block inside the
    harness's trial loop is charged to ``train`` and the rest to ``harness``.

    Examples:
        >>> clock = FakeClock()
        >>> timer = BudgetTimer(Budget(10), clock)
        >>> timer.start()
        >>> with timer.phase("train"):
        ...     clock.advance(3)
        >>> with timer.paused():
        ...     clock.advance(100)
        >>> timer.charged(), timer.totals()["train"]
        (3.0, 3.0)
    """

    def __init__(self, budget: Budget, clock: Clock) -> None:
        self.budget = budget
        self.clock = clock
        self._totals: dict[str, float] = {}
        self._current = HARNESS
        self._since: float | None = None

    @property
    def started(self) -> bool:
        return self._since is not None

    def start(self) -> None:
        if self._since is not None:
            raise RuntimeError("BudgetTimer.start() called twice")
        self._since = self.clock.now()

    def _switch(self, phase: str) -> str:
        """Charge the time since the last switch to the current phase; make ``phase`` current."""
        if self._since is None:
            raise RuntimeError("BudgetTimer used before start()")
        t = self.clock.now()
        self._totals[self._current] = self._totals.get(self._current, 0.0) + (t - self._since)
        self._since = t
        previous, self._current = self._current, phase
        return previous

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Charge the block to ``name`` (``paused`` is reserved: use :meth:`paused`)."""
        if name == PAUSED:
            raise ValueError("use BudgetTimer.paused() for uncharged time")
        if self._current == PAUSED:
            # Work inside a paused block stays uncharged.
            yield
            return
        previous = self._switch(name)
        try:
            yield
        finally:
            self._switch(previous)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Do not charge the block (test evaluation, record writing)."""
        if self._current == PAUSED:
            yield
            return
        previous = self._switch(PAUSED)
        try:
            yield
        finally:
            self._switch(previous)

    def charged(self) -> float:
        """Charged seconds since :meth:`start`, the paused time excluded."""
        if self._since is None:
            return 0.0
        total = sum(v for k, v in self._totals.items() if k != PAUSED)
        if self._current != PAUSED:
            total += self.clock.now() - self._since
        return total

    def remaining(self) -> float:
        return self.budget.seconds - self.charged()

    def expired(self) -> bool:
        """Whether the budget is spent; training loops call this once per step."""
        return self.charged() >= self.budget.seconds

    def totals(self) -> dict[str, float]:
        """Seconds per phase so far, the active phase brought up to date (includes ``paused``)."""
        if self._since is not None:
            self._switch(self._current)
        return dict(self._totals)
