"""Random search: independent draws from the search space's own distributions."""

from __future__ import annotations

import numpy as np

from hpobench_stn import AskTellMethod, Config, SearchSpace, register_method


@register_method("random")
class RandomSearch(AskTellMethod):
    """Uniform (or log-uniform, per hyperparameter) sampling with the method's seed."""

    def setup(self, space: SearchSpace, seed: int) -> None:
        self._space = space
        self._rng = np.random.default_rng(seed)

    def ask(self) -> Config:
        return self._space.sample(self._rng)

    def tell(self, config: Config, loss: float | None) -> None:
        pass  # random search does not learn
