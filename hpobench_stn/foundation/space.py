"""Search spaces as data: declared once by a task, translated once per backend.

A :class:`SearchSpace` maps hyperparameter names to distributions (:class:`Float`, :class:`Int`).
Every distribution validates itself on construction, so an invalid bound fails where it is written.
Each hyperparameter also says what it *is* (:class:`HParamKind`): a regulariser or an augmentation
changes the training objective or data and can be tuned by a best-response method such as STN; an
optimisation setting (learning rate, momentum, batch size) cannot.

Integer rule (the same for every method): a config always holds Python ``int`` values for
:class:`Int` hyperparameters. Black-box backends propose integers directly (scikit-optimize
``Integer``, Optuna ``IntDistribution``, uniform integer sampling, rounded grid points). Methods that
work on a continuous relaxation (STN) map a continuous value ``x`` to ``floor(x)`` clipped to
``[low, high]`` via :meth:`Int.from_continuous`, which treats each integer as owning the interval
``[k, k+1)``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Config", "Distribution", "Float", "HParamKind", "Int", "SearchSpace", "SpaceError"]

Config = dict[str, float | int]
"""One point of a search space: hyperparameter name → value (``int`` for :class:`Int`)."""


class SpaceError(ValueError):
    """A search space, a distribution or a config is invalid; the message names the culprit."""


class HParamKind(enum.Enum):
    """What a hyperparameter changes: the objective (regulariser), the data, or the optimiser."""

    REGULARIZER = "regularizer"  # dropout, weight decay, activation regularisation, ...
    AUGMENTATION = "augmentation"  # colour jitter, cutout, shifts: changes the training data
    OPTIMIZATION = "optimization"  # learning rate, momentum, batch size: not seen by a best-response

    @property
    def best_response_tunable(self) -> bool:
        """Whether a best-response method (STN) can tune it: only objective and data changes."""
        return self is not HParamKind.OPTIMIZATION


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _position(value: float, low: float, high: float, log: bool) -> float:
    if log:
        if value <= 0:
            raise SpaceError(f"a log-scale value must be > 0, got {value!r}")
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return (value - low) / (high - low)


@dataclass(frozen=True)
class Float:
    """A continuous hyperparameter on ``[low, high]``, uniform or log-uniform.

    Args:
        low, high: finite bounds with ``low < high``; ``low > 0`` when ``log``.
        default: the value used when nothing is tuned; ``low`` when omitted.
        log: sample and grid on a log scale.
        kind: what the hyperparameter changes (see :class:`HParamKind`).
    """

    low: float
    high: float
    default: float | None = None
    log: bool = False
    kind: HParamKind = HParamKind.REGULARIZER

    def __post_init__(self) -> None:
        if not (_is_number(self.low) and _is_number(self.high)):
            raise SpaceError(f"Float bounds must be numbers, got low={self.low!r}, high={self.high!r}")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise SpaceError(f"Float bounds must be finite, got low={self.low}, high={self.high}")
        if self.low >= self.high:
            raise SpaceError(f"Float needs low < high, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise SpaceError(f"Float on a log scale needs low > 0, got low={self.low}")
        if self.default is not None and not (self.low <= self.default <= self.high):
            raise SpaceError(f"Float default {self.default} lies outside [{self.low}, {self.high}]")

    @property
    def default_value(self) -> float:
        return float(self.low if self.default is None else self.default)

    def check(self, name: str, value: Any) -> float:
        """Return ``value`` as a float, or raise naming ``name``, the value and the range."""
        if not _is_number(value) or not math.isfinite(float(value)):
            raise SpaceError(f"{name}={value!r} is not a finite number")
        if not (self.low <= float(value) <= self.high):
            raise SpaceError(f"{name}={value!r} lies outside [{self.low}, {self.high}]")
        return float(value)

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(np.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def grid(self, points: int) -> list[float]:
        """``points`` values spanning the range, both bounds included (geometric when ``log``)."""
        if points == 1:
            return [self.default_value]
        values = np.geomspace(self.low, self.high, points) if self.log else np.linspace(self.low, self.high, points)
        # geomspace/linspace may leave the last value a ULP outside the bound
        return [float(min(max(v, self.low), self.high)) for v in values]

    def position(self, value: float) -> float:
        """Where ``value`` lies in the range on the sampling scale: 0 at ``low``, 1 at ``high`` (log scale:
        of the logarithms), not clipped."""
        return _position(value, self.low, self.high, self.log)


@dataclass(frozen=True)
class Int:
    """An integer hyperparameter on ``{low, ..., high}``, uniform or log-uniform.

    Args:
        low, high: integer bounds with ``low < high``; ``low > 0`` when ``log``.
        default: the value used when nothing is tuned; ``low`` when omitted.
        log: sample and grid on a log scale.
        kind: what the hyperparameter changes (see :class:`HParamKind`).
    """

    low: int
    high: int
    default: int | None = None
    log: bool = False
    kind: HParamKind = HParamKind.REGULARIZER

    def __post_init__(self) -> None:
        for label, bound in (("low", self.low), ("high", self.high)):
            if not isinstance(bound, (int, np.integer)) or isinstance(bound, bool):
                raise SpaceError(f"Int bounds must be integers, got {label}={bound!r}")
        if self.low >= self.high:
            raise SpaceError(f"Int needs low < high, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise SpaceError(f"Int on a log scale needs low > 0, got low={self.low}")
        if self.default is not None and not (
            isinstance(self.default, (int, np.integer))
            and not isinstance(self.default, bool)
            and self.low <= self.default <= self.high
        ):
            raise SpaceError(f"Int default {self.default!r} is not an integer in [{self.low}, {self.high}]")

    @property
    def default_value(self) -> int:
        return int(self.low if self.default is None else self.default)

    def check(self, name: str, value: Any) -> int:
        """Return ``value`` as an int, or raise naming ``name``, the value and the range.

        Integral floats (``3.0``, as some backends return) are accepted; ``2.5`` is not.
        """
        if not _is_number(value) or not math.isfinite(float(value)) or float(value) != int(value):
            raise SpaceError(f"{name}={value!r} is not an integer")
        if not (self.low <= int(value) <= self.high):
            raise SpaceError(f"{name}={value!r} lies outside [{self.low}, {self.high}]")
        return int(value)

    def sample(self, rng: np.random.Generator) -> int:
        if self.log:
            # log-uniform over [low, high + 1) then floor: each integer k gets mass ∝ log((k+1)/k)
            x = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
            return min(math.floor(x), self.high)
        return int(rng.integers(self.low, self.high + 1))

    def grid(self, points: int) -> list[int]:
        """Up to ``points`` distinct integers spanning the range (fewer when the range is small)."""
        if points == 1:
            return [self.default_value]
        values = np.geomspace(self.low, self.high, points) if self.log else np.linspace(self.low, self.high, points)
        return sorted({round(float(v)) for v in values})

    def from_continuous(self, x: float) -> int:
        """Map a continuous relaxation to an integer: ``floor(x)`` clipped to ``[low, high]``."""
        return int(min(max(math.floor(x), self.low), self.high))

    def position(self, value: float) -> float:
        """Where the continuous value ``value`` lies in ``[low, high + 1)`` (each integer owns an interval
        of equal length, see :meth:`from_continuous`) on the sampling scale: 0 at ``low``, 1 at
        ``high + 1``; not clipped."""
        return _position(value, self.low, self.high + 1, self.log)


Distribution = Float | Int


class SearchSpace(Mapping[str, Distribution]):
    """An ordered, immutable mapping of hyperparameter names to distributions.

    Examples:
        >>> space = SearchSpace({"dropout": Float(0.0, 0.9), "holes": Int(0, 4)})
        >>> space.validate({"dropout": 0.5, "holes": 2})
        {'dropout': 0.5, 'holes': 2}
    """

    def __init__(self, dists: Mapping[str, Distribution]) -> None:
        if not dists:
            raise SpaceError("a SearchSpace needs at least one hyperparameter")
        for name, dist in dists.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise SpaceError(f"hyperparameter names must be identifiers, got {name!r}")
            if not isinstance(dist, (Float, Int)):
                raise SpaceError(f"{name}: expected Float or Int, got {type(dist).__name__}")
        self._dists: dict[str, Distribution] = dict(dists)

    def __getitem__(self, name: str) -> Distribution:
        return self._dists[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dists)

    def __len__(self) -> int:
        return len(self._dists)

    def __repr__(self) -> str:
        return f"SearchSpace({self._dists!r})"

    def validate(self, config: Mapping[str, Any]) -> Config:
        """Return a normalised copy of ``config`` (floats and ints), or raise naming the bad entry."""
        missing = [n for n in self._dists if n not in config]
        extra = [n for n in config if n not in self._dists]
        if missing or extra:
            raise SpaceError(
                f"config keys do not match the space: missing {missing}, unknown {extra}; expected {list(self._dists)}"
            )
        return {name: dist.check(name, config[name]) for name, dist in self._dists.items()}

    def default(self) -> Config:
        return {name: dist.default_value for name, dist in self._dists.items()}

    def sample(self, rng: np.random.Generator) -> Config:
        """One config drawn independently per dimension from ``rng`` (the only randomness used)."""
        return {name: dist.sample(rng) for name, dist in self._dists.items()}

    def grid_axes(self, points: int) -> dict[str, list[float] | list[int]]:
        """The values of each axis of a grid with ``points`` values per dimension."""
        if not isinstance(points, int) or points < 1:
            raise SpaceError(f"grid points per dimension must be an integer >= 1, got {points!r}")
        return {name: dist.grid(points) for name, dist in self._dists.items()}

    def from_continuous(self, values: Mapping[str, float], fixed: Mapping[str, Any]) -> Config:
        """A config from a continuous relaxation (a best-response method's values, a schedule).

        Names in ``values``: Ints by the integer rule (:meth:`Int.from_continuous`), Floats clipped to
        their bounds (against rounding); every other name from ``fixed``.
        """
        config: Config = {}
        for name, dist in self._dists.items():
            if name not in values:
                config[name] = fixed[name]
            elif isinstance(dist, Int):
                config[name] = dist.from_continuous(values[name])
            else:
                config[name] = min(max(float(values[name]), float(dist.low)), float(dist.high))
        return config

    def subspace(self, names: list[str]) -> SearchSpace:
        unknown = [n for n in names if n not in self._dists]
        if unknown:
            raise SpaceError(f"unknown hyperparameters {unknown}; known: {list(self._dists)}")
        return SearchSpace({n: self._dists[n] for n in names})
