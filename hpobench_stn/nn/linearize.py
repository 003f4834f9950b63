"""Delta-STN's linearised response: the network's outputs to first order in the hypernetwork input.

Delta-STN (Bae & Grosse, NeurIPS 2020) fits the response ``Φ`` of a best-response model on the
training loss of the *linearised* network, ``L(f(x, w0) + J_w f(x, w0)·ΦΔ)``, so that ``Φ`` fits the
best-response Jacobian and not the curvature of the network. With a centred hypernetwork input (the
offset ``Δ`` from the current λ, :data:`~hpobench_stn.nn.hparams.HNET_INPUTS`), the weights at input
``t·Δ`` are ``w0 + t·ΦΔ``, so ``J·ΦΔ`` is the derivative of the output in ``t`` at ``t = 0``: one
forward-mode pass (a Jacobian-vector product, :mod:`torch.autograd.forward_ad`) in the direction of the
input ``Δ`` at input 0. Reverse mode then runs through the tangent to give ``Φ`` its gradient.

The contract, in two halves:

* a method wraps the forward pass in :func:`linearise`, which opens a forward-mode level and puts the
  model's :class:`~hpobench_stn.nn.HyperInput` in its linearised mode: each hyper-layer returns its
  elementary output ``y0`` as a dual number with the tangent ``J·ΦΔ`` of its own response (written out
  per layer, so the primal pass never touches the response and the backward pass runs through the
  tangents alone), and torch's forward mode carries the tangents through everything between them
  (activations, pooling, dropout);
* a task passes the network outputs that its training loss reads (logits, and activations that a
  penalty reads) through :func:`linearised`, which returns ``f + J·ΦΔ`` for a dual tensor and the
  tensor itself otherwise: outside :func:`linearise` it changes nothing. A penalty on the weights
  themselves (:func:`~hpobench_stn.nn.weight_sq_norm`) needs nothing: the weights are exactly linear in Δ.

A training loss that did not mark its outputs comes back as a dual number, which
:func:`check_linearised` turns into an error naming the task.

Random masks (dropout, DropConnect, per-example augmentation) are drawn once, in the primal pass, and
are constants of the linearisation: the tangent runs only in the direction of the hyperparameters'
response, never through a mask's draw. The hyper-LSTM writes out its tangent recurrence
(:mod:`hpobench_stn.nn.lstm`): its fused time loop has no forward-mode rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.autograd.forward_ad as fwad

from .layers import HyperInput

__all__ = ["check_linearised", "is_dual", "linearise", "linearised"]


def is_dual(t: torch.Tensor) -> bool:
    """Whether ``t`` carries a forward-mode tangent at the current level."""
    return fwad.unpack_dual(t).tangent is not None


def linearised(t: torch.Tensor) -> torch.Tensor:
    """``primal + tangent`` of a dual tensor (the first-order expansion at the dual's direction), else ``t``."""
    primal, tangent = fwad.unpack_dual(t)
    return t if tangent is None else primal + tangent


@contextmanager
def linearise(hyper_input: HyperInput, offsets: torch.Tensor) -> Iterator[None]:
    """Within: the model answers for the hypernetwork input ``offsets`` ``(N, K)`` to first order: each
    hyper-layer returns its elementary output as a forward-mode dual number whose tangent is ``J·ΦΔ``
    (:meth:`HyperInput.linearise`), and torch's forward mode carries the tangents through the rest of
    the network. On exit the input is ``offsets`` itself (detached)."""
    offsets = offsets.detach()
    with fwad.dual_level():
        hyper_input.linearise(offsets)
        try:
            yield
        finally:
            hyper_input.set(offsets)


def check_linearised(loss: torch.Tensor, task_name: str) -> torch.Tensor:
    """``loss`` if it is a plain tensor; raises if it still carries a tangent (the task's training loss
    read a network output that it did not pass through :func:`linearised`)."""
    if is_dual(loss):
        raise ValueError(
            f"task {task_name!r}: its regularised_loss returned a loss that is still a forward-mode dual "
            "number: the network outputs it reads must pass through hpobench_stn.nn.linearised() "
            "(docs/stn.md, Delta-STN). Run delta_stn with --option linearize=false meanwhile"
        )
    return loss
