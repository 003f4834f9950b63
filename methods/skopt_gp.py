"""Bayesian optimisation with scikit-optimize: a Gaussian process with its usual ``gp_hedge``.

scikit-optimize's ``Optimizer`` is used through ``ask``/``tell``; its GP fitting and acquisition
optimisation happen in ``tell`` and ``ask`` and are charged to those phases. A trial that FAILED
is told the worst loss observed so far (or skipped when nothing has been observed yet), so the GP
learns to avoid the region without a made-up scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpobench_stn import AskTellMethod, Config, SearchSpace, register_method
from hpobench_stn.harness.backends import to_skopt

_ACQ = ("gp_hedge", "EI", "PI", "LCB")


@dataclass(frozen=True)
class SkoptOptions:
    n_initial_points: int = 10  # random configs before the GP is used (scikit-optimize's default)
    acq_func: str = "gp_hedge"  # scikit-optimize's default: a portfolio of EI, PI and LCB

    def __post_init__(self) -> None:
        if not isinstance(self.n_initial_points, int) or self.n_initial_points < 1:
            raise ValueError(f"n_initial_points must be an integer >= 1, got {self.n_initial_points!r}")
        if self.acq_func not in _ACQ:
            raise ValueError(f"acq_func must be one of {_ACQ}, got {self.acq_func!r}")


@register_method("skopt_gp")
class SkoptGP(AskTellMethod):
    """scikit-optimize ``Optimizer(base_estimator="GP")`` via ask/tell."""

    Options = SkoptOptions
    libraries = ("scikit-optimize", "scikit-learn")

    def setup(self, space: SearchSpace, seed: int) -> None:
        from skopt import Optimizer

        self._names = list(space)
        self._opt = Optimizer(
            dimensions=to_skopt(space),
            base_estimator="GP",
            acq_func=self.options.acq_func,
            n_initial_points=self.options.n_initial_points,
            random_state=seed,
        )
        self._worst: float | None = None

    def ask(self) -> dict[str, Any]:
        point = self._opt.ask()
        return dict(zip(self._names, point, strict=True))

    def tell(self, config: Config, loss: float | None) -> None:
        if loss is None:
            if self._worst is None:
                return
            loss = self._worst
        self._worst = loss if self._worst is None else max(self._worst, loss)
        self._opt.tell([config[n] for n in self._names], loss)
