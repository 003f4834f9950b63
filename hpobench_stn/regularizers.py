"""Regularisers that take one rate per example, so fixed-config training and STN share one code path.

For fixed-hyperparameter training every row of ``p`` is equal; a best-response method (STN) gives
each example its own perturbed rate. Rates are tensors of shape ``(N,)``; the random draws come from
torch's default generator, which the training loop seeds in a forked scope.
"""

from __future__ import annotations

import torch

__all__ = ["element_dropout", "per_example"]


def per_example(value: float | torch.Tensor, n: int, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a scalar rate (or check a ``(N,)`` tensor) to shape ``(n,)`` on ``like``'s device."""
    if isinstance(value, torch.Tensor):
        if value.shape != (n,):
            raise ValueError(f"expected per-example rates of shape ({n},), got {tuple(value.shape)}")
        return value.to(device=like.device, dtype=like.dtype)
    return torch.full((n,), float(value), device=like.device, dtype=like.dtype)


def element_dropout(x: torch.Tensor, p: torch.Tensor, training: bool) -> torch.Tensor:
    """Inverted dropout with a per-example rate.

    Args:
        x: input of shape ``(N, *)``.
        p: drop probabilities of shape ``(N,)``, each in ``[0, 1)``.
        training: identity when False (validation and test are always clean).

    Shape:
        output has the shape of ``x``; kept units are scaled by ``1 / (1 - p)``.
    """
    if not training:
        return x
    if p.shape != (x.shape[0],):
        raise ValueError(f"element_dropout: expected p of shape ({x.shape[0]},), got {tuple(p.shape)}")
    if bool(((p < 0) | (p >= 1)).any()):
        raise ValueError(f"element_dropout: rates must lie in [0, 1), got min {p.min().item()}, max {p.max().item()}")
    keep = (1.0 - p).view(-1, *([1] * (x.dim() - 1)))  # (N, 1, ..., 1)
    mask = torch.bernoulli(keep.expand_as(x))
    return x * mask / keep
