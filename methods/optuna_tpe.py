"""Optuna's TPE sampler (and its GP sampler) through ``study.ask`` / ``study.tell``.

The study lives in memory; Optuna's own timeout is not used (it only checks between trials): the
harness's clock decides when the run ends. A FAILED trial is told as ``TrialState.FAIL``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpobench_stn import AskTellMethod, Config, SearchSpace, register_method
from hpobench_stn.harness.backends import to_optuna


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


class _OptunaAskTell(AskTellMethod):
    libraries = ("optuna",)

    def _sampler(self, seed: int) -> Any:
        raise NotImplementedError

    def setup(self, space: SearchSpace, seed: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._study = optuna.create_study(direction="minimize", sampler=self._sampler(seed))
        self._distributions = to_optuna(space)
        self._trial: Any = None  # the harness asks and tells strictly in turn

    def ask(self) -> dict[str, Any]:
        self._trial = self._study.ask(self._distributions)
        return dict(self._trial.params)

    def tell(self, config: Config, loss: float | None) -> None:
        from optuna.trial import TrialState

        trial, self._trial = self._trial, None
        if loss is None:
            self._study.tell(trial, state=TrialState.FAIL)
        else:
            self._study.tell(trial, loss)


@register_method("optuna_tpe")
class OptunaTPE(_OptunaAskTell):
    """Tree-structured Parzen Estimator (Optuna's default sampler)."""

    Options = TPEOptions

    def _sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=self.options.n_startup_trials, multivariate=self.options.multivariate
        )


@register_method("optuna_gp")
class OptunaGP(_OptunaAskTell):
    """Optuna's Gaussian-process sampler (log EI), a second BO implementation beside scikit-optimize."""

    Options = GPOptions

    def _sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=self.options.n_startup_trials)
