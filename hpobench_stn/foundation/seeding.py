"""One master seed per run, split by purpose; nothing is seeded globally.

``RunSeeds.from_master(seed)`` spawns independent streams with :class:`numpy.random.SeedSequence`:

* ``data``: the train/validation split (and anything else fixed about the data);
* ``order``: the order of training batches;
* ``init``: the initial weights;
* ``noise``: training-time randomness (dropout masks, augmentation draws);
* ``method``: the optimiser's own randomness (random proposals, GP restarts, TPE).

The first four are the same for every method with the same master seed, so two methods training the
same config see the same split, batch order, initial weights and dropout masks: comparisons are paired.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["RunSeeds", "check_seed"]


def check_seed(seed: object) -> int:
    """Return ``seed`` as an int, or raise a ``ValueError`` naming the value and the allowed range."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    return int(seed)


def _to_int(ss: np.random.SeedSequence) -> int:
    # 63 bits: fits torch.Generator.manual_seed and is a valid numpy seed
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


@dataclass(frozen=True)
class RunSeeds:
    """Integer seeds for each purpose, derived from one master seed (see the module docstring)."""

    master: int
    data: int
    order: int
    init: int
    noise: int
    method: int

    @classmethod
    def from_master(cls, seed: int) -> RunSeeds:
        seed = check_seed(seed)
        data, order, init, noise, method = np.random.SeedSequence(seed).spawn(5)
        return cls(seed, _to_int(data), _to_int(order), _to_int(init), _to_int(noise), _to_int(method))

    def member(self, index: int) -> RunSeeds:
        """The seeds of member ``index`` of a population trained in one run (PBT): member 0 is the run
        itself; the others keep its data split and draw their own batch order, initial weights, noise and
        method randomness from streams derived from the run's."""
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"member index must be an integer >= 0, got {index!r}")
        if index == 0:
            return self

        def derived(value: int) -> int:
            return _to_int(np.random.SeedSequence([value, index]))

        return RunSeeds(
            self.master, self.data, derived(self.order), derived(self.init), derived(self.noise), derived(self.method)
        )

    def numpy(self, purpose: str) -> np.random.Generator:
        """A fresh numpy generator for ``purpose`` (one of the field names)."""
        return np.random.default_rng(self._get(purpose))

    def torch(self, purpose: str, device: torch.device | str = "cpu") -> torch.Generator:
        """A fresh torch generator for ``purpose`` on ``device``."""
        return torch.Generator(device=device).manual_seed(self._get(purpose))

    def int_for_library(self, purpose: str = "method") -> int:
        """A 31-bit int for libraries that want ``random_state=int`` (scikit-optimize, Optuna)."""
        return self._get(purpose) % (2**31 - 1)

    def _get(self, purpose: str) -> int:
        if purpose not in {"data", "order", "init", "noise", "method"}:
            raise ValueError(f"unknown seed purpose {purpose!r}; known: data, order, init, noise, method")
        value: int = getattr(self, purpose)
        return value
