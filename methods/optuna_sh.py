"""``optuna_sh``: random search with Optuna's ``SuccessiveHalvingPruner`` (asynchronous successive
halving, the rule of ASHA; Li et al., MLSys 2020).

Configs are drawn by Optuna's ``RandomSampler``. Each trial reports its best validation loss after
every epoch. Rung ``k`` sits at ``min_resource · η^(min_early_stopping_rate + k)`` epochs; a trial
that reaches a rung goes on only if its value is among the best ``1/η`` of all values recorded at that
rung so far (itself included; the best one while fewer than ``η`` are there), else it is PRUNED. No
trial waits for others: the decision uses what is known when the trial reaches the rung, so trials
run one after another under the shared clock exactly as random search's do, and the budget buys many
more configs, most of them stopped after ``min_resource`` epochs. The maximum resource is the preset's
epoch cap: the last rung below it is the last decision.

Defaults: ``min_resource`` 1 epoch and ``reduction_factor`` (η) 3 as in ASHA's experiments and
Syne Tune; ``min_early_stopping_rate`` 0 (the most aggressive bracket, ``s = 0``); ``bootstrap_count``
0 (Optuna's default: decide from the first trial on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpobench_stn import register_method
from hpobench_stn.harness.optuna_study import OptunaPruningAskTell


@dataclass(frozen=True)
class SuccessiveHalvingOptions:
    min_resource: int = 1  # epochs before the first rung
    reduction_factor: int = 3  # η: a rung promotes the best 1/η of its trials
    min_early_stopping_rate: int = 0  # s: the bracket; the first rung is at min_resource · η^s epochs
    bootstrap_count: int = 0  # trials a rung needs before it promotes none but the best

    def __post_init__(self) -> None:
        for name, low in (
            ("min_resource", 1),
            ("reduction_factor", 2),
            ("min_early_stopping_rate", 0),
            ("bootstrap_count", 0),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


@register_method("optuna_sh")
class OptunaSuccessiveHalving(OptunaPruningAskTell):
    """Random sampling with asynchronous successive halving (see the module docstring)."""

    Options = SuccessiveHalvingOptions

    def sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.RandomSampler(seed=seed)

    def make_pruner(self, max_epochs: int | None) -> Any:  # successive halving needs no maximum
        import optuna

        o = self.options
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=o.min_resource,
            reduction_factor=o.reduction_factor,
            min_early_stopping_rate=o.min_early_stopping_rate,
            bootstrap_count=o.bootstrap_count,
        )
