"""Twice-differentiable training losses, for implicit-differentiation hypergradients (``ift``).

A Hessian-vector product of a training loss differentiates it twice. Most layers allow that, but the
fused LSTM kernels do not: cuDNN's LSTM has no double backward, nor has oneDNN's. Inside
:func:`twice_differentiable` a task runs its recurrent layers through :func:`lstm_layer`, the same
LSTM written as plain tensor operations, which autograd can differentiate as often as needed; outside
it (every weight step of every method) the fused kernel runs as before. Together with relaxed dropout
masks (:func:`hpobench_stn.nn.regularizers.relaxed`), this makes a task's training loss a twice
differentiable function of its weights and its regularisation hyperparameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

__all__ = ["is_twice_differentiable", "lstm_layer", "twice_differentiable"]

_TWICE: ContextVar[bool] = ContextVar("twice_differentiable", default=False)


@contextmanager
def twice_differentiable() -> Iterator[None]:
    """Inside the block, tasks build their training loss from layers with a double backward
    (:func:`lstm_layer` instead of a fused LSTM kernel)."""
    token = _TWICE.set(True)
    try:
        yield
    finally:
        _TWICE.reset(token)


def is_twice_differentiable() -> bool:
    """Whether the caller is inside :func:`twice_differentiable`."""
    return _TWICE.get()


def lstm_layer(
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    b_ih: torch.Tensor,
    b_hh: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A one-layer LSTM (``torch.nn.LSTM``'s equations and gate order i, f, g, o) as plain tensor
    operations: slower than the fused kernel (autograd records every step), but differentiable twice.

    Shape:
        x: ``(T, N, I)``; h0, c0: ``(1, N, H)`` (as ``nn.LSTM``); w_ih: ``(4H, I)``; w_hh: ``(4H, H)``;
        b_ih, b_hh: ``(4H,)``; returns out ``(T, N, H)`` and h_T, c_T ``(1, N, H)``.
    """
    hid = w_hh.shape[1]
    pre = torch.nn.functional.linear(x, w_ih, b_ih + b_hh)  # (T, N, 4H): every step's input path at once
    h, c = h0[0], c0[0]
    w_hh_t = w_hh.t()  # (H, 4H)
    outs = []
    for t in range(x.shape[0]):
        a = pre[t] + h @ w_hh_t  # (N, 4H)
        i, f, g, o = a.split(hid, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs), h.unsqueeze(0), c.unsqueeze(0)
