"""One translator per optimisation backend: the task's :class:`SearchSpace` → the library's objects.

Third-party libraries are imported inside each function, so the core imports without them.
"""

from __future__ import annotations

from typing import Any

from ..foundation.space import Float, SearchSpace

__all__ = ["to_optuna", "to_skopt"]


def to_skopt(space: SearchSpace) -> list[Any]:
    """scikit-optimize dimensions (``Real`` / ``Integer``), named and in the space's order."""
    from skopt.space import Integer, Real

    dims: list[Any] = []
    for name, dist in space.items():
        prior = "log-uniform" if dist.log else "uniform"
        if isinstance(dist, Float):
            dims.append(Real(dist.low, dist.high, prior=prior, name=name))
        else:
            dims.append(Integer(dist.low, dist.high, prior=prior, name=name))
    return dims


def to_optuna(space: SearchSpace) -> dict[str, Any]:
    """Optuna distributions (``FloatDistribution`` / ``IntDistribution``) keyed by name."""
    from optuna.distributions import FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for name, dist in space.items():
        if isinstance(dist, Float):
            out[name] = FloatDistribution(dist.low, dist.high, log=dist.log)
        else:
            out[name] = IntDistribution(dist.low, dist.high, log=dist.log)
    return out
