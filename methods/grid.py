"""Grid search: every combination of ``points`` values per hyperparameter, in a seeded random order.

A full grid over a realistic space does not fit a budget (3 points over 15 hyperparameters is
14 million configs), so the order matters: lexicographic order would spend the whole budget varying
the last hyperparameters. The grid is therefore visited in a random order drawn from the method's
seed, without repetition — a truncated grid is a uniform sample of the grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hpobench_stn import AskTellMethod, Config, SearchSpace, register_method

# Above this many grid points a full permutation is not materialised; indices are drawn lazily.
_MAX_PERMUTATION = 1 << 22


@dataclass(frozen=True)
class GridOptions:
    points: int = 3  # values per hyperparameter (both bounds included; 1 means the default)

    def __post_init__(self) -> None:
        if not isinstance(self.points, int) or isinstance(self.points, bool) or self.points < 1:
            raise ValueError(f"points must be an integer >= 1, got {self.points!r}")


@register_method("grid")
class GridSearch(AskTellMethod):
    """Grid search in a seeded random order (see the module docstring)."""

    Options = GridOptions

    def setup(self, space: SearchSpace, seed: int) -> None:
        self._axes = list(space.grid_axes(self.options.points).items())
        self._sizes = [len(values) for _, values in self._axes]
        self._size = int(np.prod(self._sizes, dtype=object))
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(self._size) if self._size <= _MAX_PERMUTATION else None
        self._seen: set[int] = set()
        self._next = 0

    def _next_index(self) -> int | None:
        if self._next >= self._size:
            return None
        self._next += 1
        if self._order is not None:
            return int(self._order[self._next - 1])
        while True:  # lazy sampling without replacement; the grid dwarfs any budget's trial count
            index = int(self._rng.integers(self._size))
            if index not in self._seen:
                self._seen.add(index)
                return index

    def ask(self) -> dict[str, Any] | None:
        index = self._next_index()
        if index is None:
            return None
        config: dict[str, Any] = {}
        for (name, values), size in zip(reversed(self._axes), reversed(self._sizes), strict=True):
            index, digit = divmod(index, size)
            config[name] = values[digit]
        return config

    def tell(self, config: Config, loss: float | None) -> None:
        pass  # grid search does not learn
