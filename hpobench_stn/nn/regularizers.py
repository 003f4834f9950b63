"""Regularisers that take one rate per example, so fixed-config training and STN share one code path.

For fixed-hyperparameter training every entry of a rate vector is equal; a best-response method (STN)
gives each example its own perturbed rate. Rates are tensors of shape ``(N,)`` (use
:func:`per_example` to broadcast a config's scalar); random draws come from torch's default generator,
which the training loop seeds in :meth:`hpobench_stn.Task.noise_scope`. Every function is the identity
(or zero, for penalties) when ``training`` is False: validation and test are always clean.

Dropout variants differ only in the shape of the mask drawn per example:

============================  =====================  ===================================================
function                      input                  mask (one Bernoulli(1 - p_n) per ...)
============================  =====================  ===================================================
:func:`element_dropout`       ``(N, *)``             element (also *input dropout* on images)
:func:`channel_dropout`       ``(N, C, H, W)``       channel of each example (``Dropout2d``)
:func:`locked_dropout`        ``(T, N, D)``          unit of each example, shared over time (variational)
:func:`embedding_dropout`     tokens ``(T, N)``      word type of each example (all its occurrences)
:func:`drop_connect`          weight ``(O, I)``      weight entry, per example (or one mask if equal)
============================  =====================  ===================================================

Kept values are scaled by ``1 / (1 - p)`` (inverted dropout), so expectations are unchanged.

**Relaxed masks.** Hard Bernoulli masks have no gradient in the rate. Inside :func:`relaxed` every mask
of this module is drawn instead from the relaxed Bernoulli ("concrete") distribution at the given
temperature (:class:`torch.distributions.RelaxedBernoulli`, reparameterised: a mask entry is
``sigmoid((logit(1 - p) + logit(u)) / t)`` with ``u ~ U(0, 1)``), so a training loss is differentiable
in its dropout rates, for a method that differentiates it (``ift``). As ``t → 0`` the draws tend to hard
Bernoulli draws. Outside :func:`relaxed` (the default, and every other method) the masks are the hard
draws, bit for bit as before the option existed. A rate of exactly 0 keeps every entry exactly (mask
1) in both modes.

Shapes are always checked. *Values* (a rate in ``[0, 1)``, a strength ``>= 0``) are checked only for
tensors on the CPU, where it is free (:func:`checks_values`): on a GPU every such check synchronises
the device, several times per training step. Rates there come from a config the search space has
validated, or from a best-response method's projection onto the bounds.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch.distributions import RelaxedBernoulli

__all__ = [
    "activation_regularization",
    "channel_dropout",
    "checks_values",
    "drop_connect",
    "element_dropout",
    "embedding_dropout",
    "embedding_dropout_mask",
    "keep_mask",
    "locked_dropout",
    "per_example",
    "relaxed",
    "relaxed_temperature",
    "scale_noise",
    "temporal_activation_regularization",
]


# The temperature of relaxed masks inside `relaxed()`; None: hard Bernoulli masks (the default).
_TEMPERATURE: ContextVar[float | None] = ContextVar("relaxed_mask_temperature", default=None)


@contextmanager
def relaxed(temperature: float) -> Iterator[None]:
    """Draw every dropout mask of this module from the relaxed Bernoulli at ``temperature`` (> 0) inside
    the block (see the module docstring); nesting replaces the temperature for the inner block."""
    if isinstance(temperature, bool) or not (isinstance(temperature, (int, float)) and 0 < temperature < math.inf):
        raise ValueError(f"relaxed: the temperature must be a finite number > 0, got {temperature!r}")
    token = _TEMPERATURE.set(float(temperature))
    try:
        yield
    finally:
        _TEMPERATURE.reset(token)


def relaxed_temperature() -> float | None:
    """The temperature of the enclosing :func:`relaxed` block; None outside one (hard masks)."""
    return _TEMPERATURE.get()


def keep_mask(keep: torch.Tensor) -> torch.Tensor:
    """A mask of 0/1 draws with keep probabilities ``keep`` (any shape): ``torch.bernoulli(keep)``, or inside
    :func:`relaxed` a relaxed Bernoulli draw in ``[0, 1]``, differentiable in ``keep`` (entries with
    ``keep == 1`` are exactly 1)."""
    temperature = _TEMPERATURE.get()
    if temperature is None:
        return torch.bernoulli(keep)
    # validate_args=False: the argument check would read the values (a device sync on a GPU).
    dist = RelaxedBernoulli(
        torch.tensor(temperature, device=keep.device, dtype=keep.dtype), probs=keep, validate_args=False
    )
    return torch.where(keep >= 1.0, torch.ones_like(keep), dist.rsample())


def per_example(value: float | torch.Tensor, n: int, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a scalar rate (or check a ``(N,)`` tensor) to shape ``(n,)`` on ``like``'s device."""
    if isinstance(value, torch.Tensor):
        if value.shape != (n,):
            raise ValueError(f"expected per-example rates of shape ({n},), got {tuple(value.shape)}")
        return value.to(device=like.device, dtype=like.dtype)
    return torch.full((n,), float(value), device=like.device, dtype=like.dtype)


def checks_values(t: torch.Tensor) -> bool:
    """Whether to check the values of ``t``: only on the CPU, where reading them costs no device sync."""
    return t.device.type == "cpu"


def _check_rates(name: str, p: torch.Tensor, n: int) -> None:
    if p.shape != (n,):
        raise ValueError(f"{name}: expected rates of shape ({n},), got {tuple(p.shape)}")
    if checks_values(p) and bool(((p < 0) | (p >= 1)).any()):
        raise ValueError(f"{name}: rates must lie in [0, 1), got min {p.min().item():.4g}, max {p.max().item():.4g}")


def _masked(x: torch.Tensor, p: torch.Tensor, mask_shape: tuple[int, ...], rate_view: tuple[int, ...]) -> torch.Tensor:
    """``x`` times a Bernoulli(1 - p) mask of ``mask_shape`` (broadcast over ``x``), scaled by 1/(1 - p)."""
    keep = (1.0 - p).view(rate_view)
    mask = keep_mask(keep.expand(mask_shape))
    return x * (mask / keep)


def element_dropout(x: torch.Tensor, p: torch.Tensor, training: bool) -> torch.Tensor:
    """Inverted dropout of every element, with rate ``p[n]`` for example ``n``.

    Shape:
        x: ``(N, *)``; p: ``(N,)`` in ``[0, 1)``; output: like ``x``.
    """
    if not training:
        return x
    _check_rates("element_dropout", p, x.shape[0])
    view = (-1, *([1] * (x.dim() - 1)))
    return _masked(x, p, tuple(x.shape), view)


def channel_dropout(x: torch.Tensor, p: torch.Tensor, training: bool) -> torch.Tensor:
    """Drop whole feature maps (``nn.Dropout2d``), with rate ``p[n]`` for example ``n``.

    Shape:
        x: ``(N, C, H, W)``; p: ``(N,)``; output: like ``x``.
    """
    if not training:
        return x
    if x.dim() != 4:
        raise ValueError(f"channel_dropout: expected x of shape (N, C, H, W), got {tuple(x.shape)}")
    _check_rates("channel_dropout", p, x.shape[0])
    return _masked(x, p, (x.shape[0], x.shape[1], 1, 1), (-1, 1, 1, 1))


def locked_dropout(x: torch.Tensor, p: torch.Tensor, training: bool) -> torch.Tensor:
    """Variational (locked) dropout: one mask per example and unit, shared over all time steps.

    Shape:
        x: ``(T, N, D)`` (time first, as ``nn.LSTM``); p: ``(N,)``; output: like ``x``.
    """
    if not training:
        return x
    if x.dim() != 3:
        raise ValueError(f"locked_dropout: expected x of shape (T, N, D), got {tuple(x.shape)}")
    _check_rates("locked_dropout", p, x.shape[1])
    return _masked(x, p, (1, x.shape[1], x.shape[2]), (1, -1, 1))


def embedding_dropout_mask(tokens: torch.Tensor, vocab: int, p: torch.Tensor) -> torch.Tensor:
    """The scale of each token under embedding dropout (Gal & Ghahramani): 0 or ``1/(1 - p[n])``.

    For example ``n`` each word type is dropped with probability ``p[n]``, so every occurrence of a
    dropped type in that example's sequence gets 0 and the others ``1/(1 - p[n])``. Multiply an
    embedding output ``(T, N, E)`` by ``mask[..., None]`` (plain and hyper embeddings alike).

    Shape:
        tokens: ``(T, N)`` int64; p: ``(N,)``; output: ``(T, N)`` float.
    """
    if tokens.dim() != 2:
        raise ValueError(f"embedding_dropout: expected tokens of shape (T, N), got {tuple(tokens.shape)}")
    n = tokens.shape[1]
    _check_rates("embedding_dropout", p, n)
    keep = 1.0 - p  # (N,)
    # One draw per (example, word type); only the types that occur are looked up.
    type_mask = keep_mask(keep[:, None].expand(n, vocab))  # (N, V)
    token_mask = type_mask.gather(1, tokens.t()).t()  # (T, N)
    return token_mask / keep


def embedding_dropout(tokens: torch.Tensor, weight: torch.Tensor, p: torch.Tensor, training: bool) -> torch.Tensor:
    """Look up ``tokens`` in ``weight``, dropping whole word types per example (:func:`embedding_dropout_mask`).

    With equal rates this matches AWD-LSTM's ``embedded_dropout`` applied per sequence.

    Shape:
        tokens: ``(T, N)`` int64; weight: ``(V, E)``; p: ``(N,)``; output: ``(T, N, E)``.
    """
    emb = torch.nn.functional.embedding(tokens, weight)
    if not training:
        return emb
    mask = embedding_dropout_mask(tokens, weight.shape[0], p.to(weight.dtype))
    return emb * mask[:, :, None]


def drop_connect(weight: torch.Tensor, p: torch.Tensor, training: bool) -> torch.Tensor:
    """DropConnect (Wan et al.): drop individual weights, as AWD-LSTM's ``WeightDrop`` on ``W_hh``.

    When all rates are equal (fixed-config training) one mask is drawn for the whole batch, as in
    AWD-LSTM, and the result keeps the weight's shape, so fast kernels (cuDNN) still apply. When rates
    differ (STN) each example gets its own mask and the result has a leading batch dimension.

    Shape:
        weight: ``(O, I)``; p: ``(N,)``; output: ``(O, I)`` if all ``p`` are equal, else ``(N, O, I)``.
    """
    if not training:
        return weight
    _check_rates("drop_connect", p, p.shape[0])
    if bool((p == p[0]).all()):
        keep = 1.0 - p[0]
        return weight * (keep_mask(keep.expand_as(weight)) / keep)
    keep = (1.0 - p).to(weight.dtype).view(-1, 1, 1)
    mask = keep_mask(keep.expand(p.shape[0], *weight.shape))
    return weight.unsqueeze(0) * (mask / keep)


def scale_noise(x: torch.Tensor, s: torch.Tensor, training: bool) -> torch.Tensor:
    """Multiply each example by one factor drawn uniformly from ``[1/(1+s), 1+s]`` (input scale noise).

    Shape:
        x: ``(N, *)``; s: ``(N,)`` with ``s >= 0``; output: like ``x``.
    """
    if not training:
        return x
    if s.shape != (x.shape[0],):
        raise ValueError(f"scale_noise: expected s of shape ({x.shape[0]},), got {tuple(s.shape)}")
    if checks_values(s) and bool((s < 0).any()):
        raise ValueError(f"scale_noise: strengths must be >= 0, got min {s.min().item():.4g}")
    low, high = 1.0 / (1.0 + s), 1.0 + s
    u = torch.rand(x.shape[0], device=x.device, dtype=x.dtype)
    factor = low + (high - low) * u  # (N,)
    return x * factor.view(-1, *([1] * (x.dim() - 1)))


def activation_regularization(h: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """AR (Merity et al.): ``mean_n alpha_n · mean_{t,d} h[t, n, d]²`` on the (dropped) top-layer output.

    Shape:
        h: ``(T, N, D)``; alpha: ``(N,)``; output: scalar.
    """
    if alpha.shape != (h.shape[1],):
        raise ValueError(
            f"activation_regularization: expected alpha of shape ({h.shape[1]},), got {tuple(alpha.shape)}"
        )
    per_example_mean = h.pow(2).mean(dim=(0, 2))  # (N,)
    return (alpha * per_example_mean).mean()


def temporal_activation_regularization(h: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """TAR (Merity et al.): ``mean_n beta_n · mean_{t,d} (h[t+1] - h[t])²`` on the undropped output.

    Shape:
        h: ``(T, N, D)``; beta: ``(N,)``; output: scalar (zero when ``T == 1``).
    """
    if beta.shape != (h.shape[1],):
        raise ValueError(
            f"temporal_activation_regularization: expected beta of shape ({h.shape[1]},), got {tuple(beta.shape)}"
        )
    if h.shape[0] < 2:
        return h.new_zeros(())
    per_example_mean = (h[1:] - h[:-1]).pow(2).mean(dim=(0, 2))  # (N,)
    return (beta * per_example_mean).mean()
