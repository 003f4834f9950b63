"""Optuna's TPE sampler (and its GP sampler) through ``study.ask`` / ``study.tell``.

The study lives in memory (:class:`~hpobench_stn.harness.optuna_study.OptunaAskTell`); Optuna's own
timeout is not used (it only checks between trials): the harness's clock decides when the run ends.
A FAILED trial is told as ``TrialState.FAIL``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpobench_stn import register_method
from hpobench_stn.harness.optuna_study import OptunaAskTell


@dataclass(frozen=True)
class TPEOptions:
    n_startup_trials: int = 10  # random trials before TPE models the losses (Optuna's default)
    multivariate: bool = False  # Optuna's default: independent per-dimension Parzen estimators

    def __post_init__(self) -> None:
        if not isinstance(self.n_startup_trials, int) or self.n_startup_trials < 0:
            raise ValueError(f"n_startup_trials must be an integer >= 0, got {self.n_startup_trials!r}")


@dataclass(frozen=True)
class GPOptions:
    n_startup_trials: int = 10  # random trials before the GP is used (Optuna's default)

    def __post_init__(self) -> None:
        if not isinstance(self.n_startup_trials, int) or self.n_startup_trials < 0:
            raise ValueError(f"n_startup_trials must be an integer >= 0, got {self.n_startup_trials!r}")


@register_method("optuna_tpe")
class OptunaTPE(OptunaAskTell):
    """Tree-structured Parzen Estimator (Optuna's default sampler)."""

    Options = TPEOptions

    def sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=self.options.n_startup_trials, multivariate=self.options.multivariate
        )


@register_method("optuna_gp")
class OptunaGP(OptunaAskTell):
    """Optuna's Gaussian-process sampler (log EI), a second BO implementation beside scikit-optimize."""

    Options = GPOptions

    def sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=self.options.n_startup_trials)
