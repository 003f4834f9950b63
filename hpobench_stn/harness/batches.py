"""Batches: what a task's data iterators yield, and the two ways the built-in tasks cut tensors into them.

A :data:`Batch` is a tuple of tensors whose first dimension is the example axis (the task decides
what the tuple holds: inputs and targets, or token windows). :func:`shuffled_batches` gives one
training epoch in an order drawn from the run's generator; :func:`sequential_batches` gives a fixed
order for clean evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch

__all__ = ["Batch", "Split", "sequential_batches", "shuffled_batches"]

Split = Literal["val", "test"]
Batch = tuple[torch.Tensor, ...]


def shuffled_batches(tensors: tuple[torch.Tensor, ...], batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
    """One epoch of minibatches of in-memory tensors that share their first dimension.

    The order is drawn from ``generator`` (the run's CPU generator, so it is the same on every device)
    and applied on the tensors' device; the last batch may be smaller.
    """
    n = tensors[0].shape[0]
    order = torch.randperm(n, generator=generator).to(tensors[0].device)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        yield tuple(t[idx] for t in tensors)


def sequential_batches(tensors: tuple[torch.Tensor, ...], batch_size: int) -> Iterator[Batch]:
    """Minibatches in a fixed order (for clean evaluation); the last batch may be smaller."""
    n = tensors[0].shape[0]
    for start in range(0, n, batch_size):
        yield tuple(t[start : start + batch_size] for t in tensors)
