"""``my_local_search``: a (1+1) evolution strategy around the incumbent, as an example method plug-in.

The first proposal is a random config. Every later proposal mutates the best config seen so far:
each hyperparameter moves by Gaussian noise of ``step`` times its range, measured on the unit
interval (on a log scale for ``log=True``), and is clipped back into its bounds. An :class:`Int` is
mutated on its continuous relaxation ``[low, high + 1)`` and mapped back with
:meth:`Int.from_continuous` (floor, then clip), the integer rule every method follows.

The step adapts by the 1/5th success rule: it grows after an improvement and shrinks slowly after a
failure. When it falls below ``min_step``, the search restarts from a new random config. A FAILED
trial (told as ``None``) counts as a failure to improve; a FAILED start point is replaced by another.

Run it without installing anything::

    hpobench --plugin examples/my_method.py run --task digits_mlp --method my_local_search \\
        --preset smoke --budget 10 --seed 0 --out /tmp/runs
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hpobench_stn import AskTellMethod, Config, Int, SearchSpace, register_method
from hpobench_stn.foundation.space import Distribution

_GROW = 1.5  # step multiplier after an improvement
_SHRINK = _GROW ** (-0.25)  # after a failure: four failures undo one success (the 1/5th rule)


@dataclass(frozen=True)
class LocalSearchOptions:
    step: float = 0.3  # initial mutation scale, as a fraction of each hyperparameter's (log-)range
    min_step: float = 0.02  # restart from a random config when the step shrinks below this

    def __post_init__(self) -> None:
        # Raise ValueError, never assert: the harness turns it into a MethodError naming the method.
        if not 0.0 < self.step <= 1.0:
            raise ValueError(f"step must lie in (0, 1], got {self.step!r}")
        if not 0.0 < self.min_step < self.step:
            raise ValueError(f"min_step must lie in (0, step={self.step}), got {self.min_step!r}")


def _bounds(dist: Distribution) -> tuple[float, float]:
    """The interval searched on the unit scale: log-transformed if ``log``; ``[low, high + 1)`` for Int."""
    low, high = float(dist.low), float(dist.high) + (1.0 if isinstance(dist, Int) else 0.0)
    return (math.log(low), math.log(high)) if dist.log else (low, high)


def _to_unit(dist: Distribution, value: float | int) -> float:
    lo, hi = _bounds(dist)
    # An integer k owns the interval [k, k + 1): represent it by the middle of that interval.
    x = float(value) + (0.5 if isinstance(dist, Int) else 0.0)
    return ((math.log(x) if dist.log else x) - lo) / (hi - lo)


def _from_unit(dist: Distribution, u: float) -> float | int:
    lo, hi = _bounds(dist)
    x = lo + min(max(u, 0.0), 1.0) * (hi - lo)
    x = math.exp(x) if dist.log else x
    if isinstance(dist, Int):
        return dist.from_continuous(x)
    return min(max(x, dist.low), dist.high)  # exp(log(high)) may land a ULP outside the bounds


@register_method("my_local_search")
class LocalSearch(AskTellMethod):
    """A (1+1)-ES with 1/5th-rule step adaptation and restarts (see the module docstring)."""

    Options = LocalSearchOptions

    def setup(self, space: SearchSpace, seed: int) -> None:
        self._space = space
        self._rng = np.random.default_rng(seed)  # the only randomness this method uses
        self._step: float = self.options.step
        self._best: Config | None = None  # the centre of the mutations; None: propose a start point
        self._best_loss = math.inf

    def ask(self) -> Config:
        if self._best is None:
            # A random start: the default config often sits in a corner of the space (no dropout,
            # the smallest weight decay), a poor place to start a local search.
            return self._space.sample(self._rng)
        best = self._best
        return {
            name: _from_unit(dist, _to_unit(dist, best[name]) + self._step * self._rng.normal())
            for name, dist in self._space.items()
        }

    def tell(self, config: Config, loss: float | None) -> None:
        # The harness asks and tells strictly in turn, so ``config`` is the last proposal.
        if self._best is None:
            # A start point: it becomes the centre if it validated; if it FAILED, ask() draws another.
            if loss is not None:
                self._best, self._best_loss = dict(config), loss
            return
        if loss is not None and loss < self._best_loss:
            self._best, self._best_loss = dict(config), loss
            self._step = min(self._step * _GROW, 1.0)
        else:
            self._step *= _SHRINK  # no improvement, or the trial FAILED (loss is None)
        if self._step < self.options.min_step:
            # Converged or stuck: restart from a random config. The harness keeps the run's incumbent.
            self._best, self._best_loss, self._step = None, math.inf, self.options.step
