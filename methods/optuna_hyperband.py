"""``optuna_hyperband``: Optuna's TPE sampler with its ``HyperbandPruner``, the BOHB-like combination
(Falkner et al., ICML 2018; Li et al., JMLR 2018).

Hyperband runs several successive-halving brackets side by side, from the most aggressive (first
rung at ``min_resource`` epochs) to the most conservative (no pruning before the maximum resource),
because no single bracket is best on every problem. Optuna assigns each trial to a bracket (by a hash
of the study name and the trial number, in proportion to the brackets' budgets), and each bracket
prunes asynchronously by the successive-halving rule (see :mod:`optuna_sh`). TPE models the trials of
the bracket that asks: Optuna hands it only those, as BOHB keeps one model per budget.

The maximum resource is the preset's epoch cap. The number of brackets follows from it, as in Optuna:
``floor(log_η(max_resource / min_resource)) + 1``, so a larger ``min_resource`` or ``reduction_factor``
gives fewer brackets (on the PTB cpu preset, cap 6: two brackets at the defaults; CIFAR cpu, cap 50:
four; the paper presets, caps 150 and 300: five and six).

Defaults: ``min_resource`` 1 epoch and ``reduction_factor`` (η) 3 as in the Hyperband and BOHB papers;
``n_startup_trials`` 10 (Optuna's TPE default) random trials before TPE models the losses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpobench_stn import MethodError, register_method
from hpobench_stn.harness.optuna_study import OptunaPruningAskTell


@dataclass(frozen=True)
class HyperbandOptions:
    min_resource: int = 1  # epochs before the first rung of the most aggressive bracket
    reduction_factor: int = 3  # η: a rung promotes the best 1/η of its trials
    n_startup_trials: int = 10  # random trials before TPE models the losses (Optuna's default)

    def __post_init__(self) -> None:
        for name, low in (("min_resource", 1), ("reduction_factor", 2), ("n_startup_trials", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


@register_method("optuna_hyperband")
class OptunaHyperband(OptunaPruningAskTell):
    """TPE with Hyperband's brackets of successive halving (see the module docstring)."""

    Options = HyperbandOptions

    def sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.options.n_startup_trials)

    def make_pruner(self, max_epochs: int | None) -> Any:
        import optuna

        if max_epochs is None:
            raise MethodError(
                "optuna_hyperband needs the maximum resource: run it through the harness, which sets "
                "max_epochs to the preset's epoch cap, or set max_epochs before setup()"
            )
        # A cap below min_resource leaves one bracket that never prunes (Optuna needs max >= min).
        return optuna.pruners.HyperbandPruner(
            min_resource=self.options.min_resource,
            max_resource=max(max_epochs, self.options.min_resource),
            reduction_factor=self.options.reduction_factor,
        )
