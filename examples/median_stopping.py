"""``my_median_stopping``: random search that stops unpromising trials early, as an example of a
multi-fidelity method plug-in.

Configs are drawn at random. After each validation of a running trial the method looks at the trial's
best validation loss so far, and stops the trial (status PRUNED) when that loss is worse than the
median of the best losses that earlier trials had reached after the same number of epochs: the
median stopping rule of Google Vizier (Golovin et al., KDD 2017). The rule waits until
``min_trials`` earlier trials have reached an epoch, and never stops a trial before it has trained
``grace_epochs`` epochs.

Run it without installing anything::

    hpobench --plugin examples/median_stopping.py run --task digits_mlp --method my_median_stopping \\
        --preset smoke --budget 10 --seed 0 --out /tmp/runs
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

from hpobench_stn import AskTellMethod, Config, EpochReport, SearchSpace, register_method


@dataclass(frozen=True)
class MedianStoppingOptions:
    min_trials: int = 3  # earlier trials that must have reached an epoch before the rule applies there
    grace_epochs: int = 1  # never stop a trial that has trained fewer epochs than this

    def __post_init__(self) -> None:
        if not isinstance(self.min_trials, int) or self.min_trials < 1:
            raise ValueError(f"min_trials must be an integer >= 1, got {self.min_trials!r}")
        if not isinstance(self.grace_epochs, int) or self.grace_epochs < 1:
            raise ValueError(f"grace_epochs must be an integer >= 1, got {self.grace_epochs!r}")


@register_method("my_median_stopping")
class MedianStopping(AskTellMethod):
    """Random search with the median stopping rule (see the module docstring)."""

    Options = MedianStoppingOptions

    def setup(self, space: SearchSpace, seed: int) -> None:
        self._space = space
        self._rng = np.random.default_rng(seed)  # the only randomness this method uses
        self._curves: list[list[float]] = []  # per earlier trial: its best loss after epoch 1, 2, ...
        self._current: list[float] = []  # the same for the running trial

    def ask(self) -> Config:
        self._current = []
        return self._space.sample(self._rng)

    def report(self, progress: EpochReport) -> bool:
        # Called after each validation of the running trial (the last proposal), before the epoch cap.
        self._current.append(progress.best_val_loss)
        if progress.epoch < self.options.grace_epochs:
            return False
        earlier = [curve[progress.epoch - 1] for curve in self._curves if len(curve) >= progress.epoch]
        if len(earlier) < self.options.min_trials:
            return False
        return progress.best_val_loss > statistics.median(earlier)  # True: stop the trial (PRUNED)

    def tell(self, config: Config, loss: float | None) -> None:
        # Every trial arrives here, a pruned one with its best loss; a FAILED one (None) is left out.
        if loss is not None:
            self._curves.append(self._current)
