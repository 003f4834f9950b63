"""Hyper-layers: the building blocks of a Self-Tuning Network's best-response approximation.

A hyper-layer approximates how its weights respond to the hyperparameters λ (MacKay et al., 2019):

    y = W_e·x + b_e + s_w ⊙ (W_h·x) + s_b ⊙ b_h,     (s_w, s_b) = V·h

``W_e, b_e`` are the *elementary* weights (named as in the plain torch layer, so a plain model loads
them), ``W_h, b_h`` the *hyper* weights, ``V`` the *gate* (``gate_weight``), and ``h`` the
hypernetwork input, one row ``(n_hparams,)`` per example. The gates act per output unit (or channel),
so the per-example weight matrix ``W_e + diag(s_w)·W_h`` is never formed: the cost is one extra
product with ``W_h`` and a few element-wise operations.

``h`` is passed explicitly (``layer(x, h)``) or, when omitted, read from the layer's
:class:`HyperInput`, a holder shared by every hyper-layer of one model. That is what lets a task build
its baseline and its STN model from one architecture definition: the architecture asks a layer factory
(:class:`Layers` for plain torch layers, :class:`HyperLayers` for hyper-layers) for its layers and calls
them as ``layer(x)``; the STN method sets ``model``'s hyper input before each forward pass.

Shape convention: the example axis is the **second-to-last** axis of a linear or embedding output
(``(N, out)`` or time-first ``(T, N, out)``) and the first axis of a convolution output
``(N, C, H, W)``.

Initialisation (:func:`init_hyper_path`): the hyper weights as torch initialises the elementary ones
(uniform ±1/√fan_in; embeddings uniform ±0.1), and the gate ``V ~ N(0, gate_std²)``. The official STN
code uses ``gate_std = 0.01``; the Delta-STN code starts from ``V = 0`` (``gate_std = 0``): the model then
starts exactly at its elementary weights and ``V`` still receives a gradient (``W_h·x ≠ 0``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "HyperConv2d",
    "HyperEmbedding",
    "HyperInput",
    "HyperLSTM",
    "HyperLayers",
    "HyperLinear",
    "HyperModule",
    "Layers",
    "elementary_parameter_count",
    "hyper_input_of",
    "hyper_modules",
    "init_hyper_path",
    "is_hyper_path",
    "weight_sq_norm",
]

HYPER_PATH_PREFIXES = ("hyper_", "gate_")  # parameter names of the hyper path; everything else is elementary


class HyperInput:
    """The hypernetwork input shared by the hyper-layers of one model.

    Attributes:
        n_hparams: columns of ``h``.
        h: the current input, ``(N, n_hparams)`` or ``(n_hparams,)`` (the same row for every example);
            None until set.
    """

    def __init__(self, n_hparams: int) -> None:
        if not isinstance(n_hparams, int) or n_hparams < 1:
            raise ValueError(f"HyperInput: n_hparams must be an integer >= 1, got {n_hparams!r}")
        self.n_hparams = n_hparams
        self.h: torch.Tensor | None = None

    def set(self, h: torch.Tensor) -> None:
        if h.dim() not in (1, 2) or h.shape[-1] != self.n_hparams:
            raise ValueError(
                f"HyperInput: expected h of shape (N, {self.n_hparams}) or ({self.n_hparams},), got {tuple(h.shape)}"
            )
        self.h = h

    def __repr__(self) -> str:
        shape = None if self.h is None else tuple(self.h.shape)
        return f"HyperInput(n_hparams={self.n_hparams}, h={shape})"


class HyperModule(nn.Module):
    """Mixin of every hyper-layer: resolves and checks ``h``, and owns the hyper-path initialisation."""

    n_hparams: int
    source: HyperInput | None

    def _init_hyper(self, n_hparams: int, source: HyperInput | None) -> None:
        if not isinstance(n_hparams, int) or n_hparams < 1:
            raise ValueError(f"{type(self).__name__}: n_hparams must be an integer >= 1, got {n_hparams!r}")
        if source is not None and source.n_hparams != n_hparams:
            raise ValueError(f"{type(self).__name__}: HyperInput has {source.n_hparams} columns, the layer {n_hparams}")
        self.n_hparams = n_hparams
        self.source = source

    def _resolve(self, h: torch.Tensor | None, n: int) -> torch.Tensor:
        """``h`` (or the shared input) as ``(n, n_hparams)``; raises naming the expected shape."""
        name = type(self).__name__
        if h is None:
            if self.source is None or self.source.h is None:
                raise ValueError(f"{name}: no hypernetwork input: pass h, or set the model's HyperInput")
            h = self.source.h
        if h.dim() == 1:
            h = h.unsqueeze(0).expand(n, -1)
        if h.shape != (n, self.n_hparams):
            raise ValueError(f"{name}: expected hparams of shape ({n}, {self.n_hparams}), got {tuple(h.shape)}")
        return h

    def reset_hyper_path(self, generator: torch.Generator | None = None, gate_std: float = 0.01) -> None:
        raise NotImplementedError


def _uniform_(param: torch.Tensor, bound: float, generator: torch.Generator | None) -> None:
    # Drawn on the CPU (generators are CPU generators) and copied, so the draw is device-independent.
    with torch.no_grad():
        param.copy_(torch.empty(param.shape, dtype=param.dtype).uniform_(-bound, bound, generator=generator))


def _normal_(param: torch.Tensor, std: float, generator: torch.Generator | None) -> None:
    with torch.no_grad():
        if std == 0.0:
            param.zero_()
        else:
            param.copy_(torch.empty(param.shape, dtype=param.dtype).normal_(0.0, std, generator=generator))


class HyperLinear(nn.Linear, HyperModule):
    """``nn.Linear`` with a best-response path: ``y = x·W_eᵀ + b_e + s_w ⊙ (x·W_hᵀ) + s_b ⊙ b_h``.

    Args:
        in_features, out_features, bias: as :class:`torch.nn.Linear`.
        n_hparams: columns of the hypernetwork input ``h``.
        source: the model's shared :class:`HyperInput`, read when ``forward`` gets no ``h``.

    Shape:
        x: ``(*, N, in_features)``; h: ``(N, n_hparams)``; output: ``(*, N, out_features)``.

    Attributes:
        weight, bias: elementary weights ``W_e, b_e`` (the names and shapes of ``nn.Linear``).
        hyper_weight: ``W_h``, ``(out_features, in_features)``; hyper_bias: ``b_h``, ``(out_features,)``.
        gate_weight: ``V``, ``(2·out_features, n_hparams)`` (``out_features`` rows without bias):
            ``s = h·Vᵀ`` gives ``s_w`` then ``s_b``.

    Examples:
        >>> layer = HyperLinear(20, 30, n_hparams=4)
        >>> layer(torch.randn(8, 20), torch.rand(8, 4)).shape
        torch.Size([8, 30])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        n_hparams: int,
        bias: bool = True,
        *,
        source: HyperInput | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias, device=device, dtype=dtype)
        self._init_hyper(n_hparams, source)
        self.hyper_weight = nn.Parameter(torch.empty((out_features, in_features), device=device, dtype=dtype))
        self.hyper_bias = nn.Parameter(torch.empty(out_features, device=device, dtype=dtype)) if bias else None
        gates = 2 * out_features if bias else out_features
        self.gate_weight = nn.Parameter(torch.empty((gates, n_hparams), device=device, dtype=dtype))
        self.reset_hyper_path()

    def reset_hyper_path(self, generator: torch.Generator | None = None, gate_std: float = 0.01) -> None:
        """``W_h``, ``b_h`` uniform ±1/√in_features (as ``nn.Linear``'s elementary weights); ``V ~ N(0, gate_std²)``."""
        bound = 1.0 / math.sqrt(self.in_features)
        _uniform_(self.hyper_weight, bound, generator)
        if self.hyper_bias is not None:
            _uniform_(self.hyper_bias, bound, generator)
        _normal_(self.gate_weight, gate_std, generator)

    def gates(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(s_w, s_b)``, each ``(N, out_features)`` (``s_b`` None without bias)."""
        scalars = F.linear(h, self.gate_weight)  # (N, 2·out) or (N, out)
        if self.hyper_bias is None:
            return scalars, None
        s_w, s_b = scalars.split(self.out_features, dim=-1)
        return s_w, s_b

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() < 2 or x.shape[-1] != self.in_features:
            raise ValueError(f"HyperLinear: expected input of shape (*, N, {self.in_features}), got {tuple(x.shape)}")
        h = self._resolve(h, x.shape[-2])
        s_w, s_b = self.gates(h)
        out = F.linear(x, self.weight, self.bias) + s_w * F.linear(x, self.hyper_weight)  # (*, N, out)
        if s_b is not None and self.hyper_bias is not None:
            out = out + s_b * self.hyper_bias
        return out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, n_hparams={self.n_hparams}"


class HyperConv2d(nn.Conv2d, HyperModule):
    """``nn.Conv2d`` with a best-response path, gated per output channel.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, bias: as :class:`torch.nn.Conv2d`
            (groups, dilation and padding modes are not supported).
        n_hparams, source: as :class:`HyperLinear`.

    Shape:
        x: ``(N, in_channels, H, W)``; h: ``(N, n_hparams)``; output: ``(N, out_channels, H', W')``.

    Attributes:
        weight, bias: elementary (``nn.Conv2d``'s names); hyper_weight, hyper_bias: ``W_h``, ``b_h``;
        gate_weight: ``(2·out_channels, n_hparams)`` (``out_channels`` rows without bias).

    Examples:
        >>> conv = HyperConv2d(3, 8, 3, n_hparams=2, padding=1)
        >>> conv(torch.randn(4, 3, 16, 16), torch.rand(4, 2)).shape
        torch.Size([4, 8, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        n_hparams: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        *,
        source: HyperInput | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        nn.Conv2d.__init__(
            self,
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            bias=bias,
            device=device,
            dtype=dtype,
        )
        self._init_hyper(n_hparams, source)
        self.hyper_weight = nn.Parameter(torch.empty(self.weight.shape, device=device, dtype=dtype))
        self.hyper_bias = nn.Parameter(torch.empty(out_channels, device=device, dtype=dtype)) if bias else None
        gates = 2 * out_channels if bias else out_channels
        self.gate_weight = nn.Parameter(torch.empty((gates, n_hparams), device=device, dtype=dtype))
        self.reset_hyper_path()

    def reset_hyper_path(self, generator: torch.Generator | None = None, gate_std: float = 0.01) -> None:
        """``W_h``, ``b_h`` uniform ±1/√fan_in; ``V ~ N(0, gate_std²)``."""
        bound = 1.0 / math.sqrt(self.weight[0].numel())
        _uniform_(self.hyper_weight, bound, generator)
        if self.hyper_bias is not None:
            _uniform_(self.hyper_bias, bound, generator)
        _normal_(self.gate_weight, gate_std, generator)

    def gates(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        scalars = F.linear(h, self.gate_weight)
        if self.hyper_bias is None:
            return scalars, None
        s_w, s_b = scalars.split(self.out_channels, dim=-1)
        return s_w, s_b

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"HyperConv2d: expected input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        h = self._resolve(h, x.shape[0])
        s_w, s_b = self.gates(h)
        out: torch.Tensor = self._conv_forward(x, self.weight, self.bias)  # (N, C, H', W')
        out = out + s_w[:, :, None, None] * self._conv_forward(x, self.hyper_weight, None)
        if s_b is not None and self.hyper_bias is not None:
            out = out + (s_b * self.hyper_bias)[:, :, None, None]
        return out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, n_hparams={self.n_hparams}"  # type: ignore[no-untyped-call]


class HyperEmbedding(nn.Embedding, HyperModule):
    """``nn.Embedding`` with a best-response path: ``y = E_e[t] + s ⊙ E_h[t]``, gated per embedding unit.

    Args:
        num_embeddings, embedding_dim: as :class:`torch.nn.Embedding` (no padding index, max norm or
            sparse gradients).
        n_hparams, source: as :class:`HyperLinear`.

    Shape:
        tokens: ``(*, N)`` int64; h: ``(N, n_hparams)``; output: ``(*, N, embedding_dim)``.

    Attributes:
        weight: elementary table ``E_e`` (``nn.Embedding``'s name, e.g. for a tied decoder);
        hyper_weight: ``E_h``; gate_weight: ``(embedding_dim, n_hparams)``.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        n_hparams: int,
        *,
        source: HyperInput | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        nn.Embedding.__init__(self, num_embeddings, embedding_dim, device=device, dtype=dtype)
        self._init_hyper(n_hparams, source)
        self.hyper_weight = nn.Parameter(torch.empty((num_embeddings, embedding_dim), device=device, dtype=dtype))
        self.gate_weight = nn.Parameter(torch.empty((embedding_dim, n_hparams), device=device, dtype=dtype))
        self.reset_hyper_path()

    def reset_hyper_path(self, generator: torch.Generator | None = None, gate_std: float = 0.01) -> None:
        """``E_h`` uniform ±0.1 (the STN code's embedding initialisation); ``V ~ N(0, gate_std²)``."""
        _uniform_(self.hyper_weight, 0.1, generator)
        _normal_(self.gate_weight, gate_std, generator)

    def forward(self, tokens: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        if tokens.dim() < 1:
            raise ValueError(f"HyperEmbedding: expected tokens of shape (*, N), got {tuple(tokens.shape)}")
        h = self._resolve(h, tokens.shape[-1])
        s = F.linear(h, self.gate_weight)  # (N, embedding_dim)
        return F.embedding(tokens, self.weight) + s * F.embedding(tokens, self.hyper_weight)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, n_hparams={self.n_hparams}"


class _Recurrence(torch.autograd.Function):
    """The hyper-LSTM's time loop with a hand-written backward (backpropagation through time).

    Per step ``t``: ``rec = h_t-1 · Wᵀ`` with ``W = [W_hh; U_hh]`` ``(8H, H)``;
    ``a = pre_t + rec[:, :4H] + s_hh ⊙ rec[:, 4H:]``; then the LSTM cell (gates i, f, g, o).

    Why not autograd: it would record ~10 nodes per step, and each step's product would add its own
    skinny ``(H × N)·(N × 8H)`` weight-gradient product. Here the backward loop does the element-wise
    work and one ``(N, 8H)·(8H, H)`` product per step, and the weight gradient is **one** product over
    all steps, ``Σ_t δ_tᵀ·h_t-1`` (what fused cuDNN / oneDNN kernels do).

    Shape: pre ``(T, N, 4H)``; s_hh ``(N, 4H)``; w ``(8H, H)``; h0, c0 ``(N, H)`` → out ``(T, N, H)``,
    h_T, c_T ``(N, H)``.
    """

    @staticmethod
    def forward(
        ctx: Any, pre: torch.Tensor, s_hh: torch.Tensor, w: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        steps, n, g = pre.shape
        hid = g // 4
        out = pre.new_empty(steps, n, hid)
        sig = pre.new_empty(steps, n, g)  # sigmoid of all four pre-activations (i, f, o used)
        cand = pre.new_empty(steps, n, hid)  # tanh of the g pre-activation
        cells = pre.new_empty(steps + 1, n, hid)  # c_0 .. c_T
        rec_h = pre.new_empty(steps, n, g)  # U_hh · h_t-1, for the gradient of s_hh
        cells[0] = c0
        w_t = w.t()  # (H, 8H)
        h = h0
        for t in range(steps):
            rec = h @ w_t  # (N, 8H)
            rec_h[t] = rec[:, g:]
            a = torch.addcmul(pre[t] + rec[:, :g], s_hh, rec[:, g:])  # (N, 4H)
            torch.sigmoid(a, out=sig[t])
            torch.tanh(a[:, 2 * hid : 3 * hid], out=cand[t])
            i, f, o = sig[t, :, :hid], sig[t, :, hid : 2 * hid], sig[t, :, 3 * hid :]
            torch.addcmul(f * cells[t], i, cand[t], out=cells[t + 1])
            torch.mul(o, torch.tanh(cells[t + 1]), out=out[t])
            h = out[t]
        h_prev = torch.cat([h0.unsqueeze(0), out[:-1]])  # (T, N, H): the state each step read
        ctx.save_for_backward(s_hh, w, sig, cand, cells, rec_h, h_prev)
        return out, out[-1].clone(), cells[-1].clone()

    @staticmethod
    def backward(
        ctx: Any, d_out: torch.Tensor, d_hn: torch.Tensor, d_cn: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        s_hh, w, sig, cand, cells, rec_h, h_prev = ctx.saved_tensors
        steps, n, g = sig.shape
        hid = g // 4
        delta = sig.new_empty(steps, n, 2 * g)  # per step: [dL/da, dL/da ⊙ s_hh] = dL/d rec
        dh, dc = d_hn.clone(), d_cn.clone()
        for t in range(steps - 1, -1, -1):
            dh = dh + d_out[t]
            i, f, o = sig[t, :, :hid], sig[t, :, hid : 2 * hid], sig[t, :, 3 * hid :]
            tc = torch.tanh(cells[t + 1])
            dc = dc + dh * o * (1 - tc * tc)
            da = delta[t, :, :g]
            torch.mul(dc * cand[t], i * (1 - i), out=da[:, :hid])  # input gate
            torch.mul(dc * cells[t], f * (1 - f), out=da[:, hid : 2 * hid])  # forget gate
            torch.mul(dc * i, 1 - cand[t] * cand[t], out=da[:, 2 * hid : 3 * hid])  # candidate
            torch.mul(dh * tc, o * (1 - o), out=da[:, 3 * hid :])  # output gate
            torch.mul(da, s_hh, out=delta[t, :, g:])
            dc = dc * f
            dh = delta[t] @ w  # (N, H)
        d_pre = delta[..., :g]
        d_s_hh = (d_pre * rec_h).sum(0) if ctx.needs_input_grad[1] else None
        d_w = delta.reshape(-1, 2 * g).t() @ h_prev.reshape(-1, hid) if ctx.needs_input_grad[2] else None
        return d_pre, d_s_hh, d_w, dh, dc


class HyperLSTM(HyperModule):
    """A one-layer LSTM whose input, recurrent and bias paths are hyper-layers (STN's hyper-LSTM).

    Pre-activations of the four gates (PyTorch's order i, f, g, o)::

        W_ih·x_t + b_ih + W_hh·h_t-1 + b_hh + s_ih ⊙ (U_ih·x_t) + s_hh ⊙ (U_hh·h_t-1) + s_b ⊙ b_h

    with ``(s_ih, s_hh, s_b) = V·h`` constant over time for an example. That makes it fast: the input
    projection of all time steps is **one** product with ``[W_ih; U_ih]`` before the loop, and each step
    does **one** fused product with ``[W_hh; U_hh]`` plus element-wise work.

    Args:
        input_size, hidden_size: as a one-layer :class:`torch.nn.LSTM`.
        n_hparams, source: as :class:`HyperLinear`.

    Shape:
        x: ``(T, N, input_size)`` (time first); hx: optional ``(h_0, c_0)``, each ``(1, N, hidden_size)``;
        h: ``(N, n_hparams)``; hh_mask: optional ``(4·hidden_size, hidden_size)`` DropConnect mask (already
        scaled) applied to ``W_hh`` and ``U_hh``; output: ``(T, N, hidden_size)`` and ``(h_T, c_T)``.

    Attributes:
        weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0: elementary, named and shaped as a one-layer
            ``nn.LSTM`` (its ``state_dict`` loads into one); hyper_weight_ih ``U_ih``, hyper_weight_hh
            ``U_hh``, hyper_bias ``b_h`` ``(4·hidden_size,)``; gate_weight ``(12·hidden_size, n_hparams)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        n_hparams: int,
        *,
        source: HyperInput | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self._init_hyper(n_hparams, source)
        self.input_size, self.hidden_size = input_size, hidden_size
        g = 4 * hidden_size

        def param(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.empty(shape, device=device, dtype=dtype))

        self.weight_ih_l0, self.weight_hh_l0 = param(g, input_size), param(g, hidden_size)
        self.bias_ih_l0, self.bias_hh_l0 = param(g), param(g)
        self.hyper_weight_ih, self.hyper_weight_hh, self.hyper_bias = (
            param(g, input_size),
            param(g, hidden_size),
            param(g),
        )
        self.gate_weight = param(3 * g, n_hparams)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Elementary weights uniform ±1/√hidden_size (``nn.LSTM``'s scheme); then the hyper path."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in (self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0):
            nn.init.uniform_(p, -bound, bound)
        self.reset_hyper_path()

    def elementary_parameters(self) -> Iterator[nn.Parameter]:
        """In ``nn.LSTM``'s order: ``weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0``."""
        yield from (self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0)

    def reset_hyper_path(self, generator: torch.Generator | None = None, gate_std: float = 0.01) -> None:
        """``U_ih``, ``U_hh``, ``b_h`` uniform ±1/√hidden_size; ``V ~ N(0, gate_std²)``."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in (self.hyper_weight_ih, self.hyper_weight_hh, self.hyper_bias):
            _uniform_(p, bound, generator)
        _normal_(self.gate_weight, gate_std, generator)

    def forward(
        self,
        x: torch.Tensor,
        hx: tuple[torch.Tensor, torch.Tensor] | None = None,
        h: torch.Tensor | None = None,
        hh_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"HyperLSTM: expected input of shape (T, N, {self.input_size}), got {tuple(x.shape)}")
        n, hid = x.shape[1], self.hidden_size
        g = 4 * hid
        h = self._resolve(h, n)
        if hx is None:
            zeros = x.new_zeros(1, n, hid)
            hx = (zeros, zeros)
        for label, t in (("h_0", hx[0]), ("c_0", hx[1])):
            if t.shape != (1, n, hid):
                raise ValueError(f"HyperLSTM: expected {label} of shape (1, {n}, {hid}), got {tuple(t.shape)}")
        s_ih, s_hh, s_b = F.linear(h, self.gate_weight).split(g, dim=1)  # each (N, 4H)
        # All time steps' input projections at once: (T, N, 8H) = x · [W_ih; U_ih]ᵀ.
        gx = F.linear(x, torch.cat([self.weight_ih_l0, self.hyper_weight_ih]))
        bias = self.bias_ih_l0 + self.bias_hh_l0 + s_b * self.hyper_bias  # (N, 4H)
        pre = torch.addcmul(gx[..., :g] + bias, s_ih, gx[..., g:])  # (T, N, 4H), constant part of each step
        w_hh = torch.cat([self.weight_hh_l0, self.hyper_weight_hh])  # (8H, H) = [W_hh; U_hh]
        if hh_mask is not None:
            if hh_mask.shape != (g, hid):
                raise ValueError(f"HyperLSTM: expected hh_mask of shape ({g}, {hid}), got {tuple(hh_mask.shape)}")
            w_hh = w_hh * hh_mask.repeat(2, 1)  # the same DropConnect mask on W_hh and U_hh (as the STN code)
        out, h_n, c_n = _Recurrence.apply(pre, s_hh, w_hh, hx[0][0], hx[1][0])
        return out, (h_n.unsqueeze(0), c_n.unsqueeze(0))

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, n_hparams={self.n_hparams}"


class Layers:
    """The layer factory of a baseline model: plain torch layers.

    An architecture asks its factory for every layer that has weights, and calls them as ``layer(x)``;
    the same architecture built with :class:`HyperLayers` is the STN model.
    """

    hyper_input: HyperInput | None = None

    def linear(self, in_features: int, out_features: int, bias: bool = True) -> nn.Linear:
        return nn.Linear(in_features, out_features, bias)

    def conv2d(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0
    ) -> nn.Conv2d:
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding)

    def embedding(self, num_embeddings: int, embedding_dim: int) -> nn.Embedding:
        return nn.Embedding(num_embeddings, embedding_dim)

    def lstm(self, input_size: int, hidden_size: int) -> nn.Module:
        return nn.LSTM(input_size, hidden_size)


class HyperLayers(Layers):
    """The layer factory of an STN model: hyper-layers sharing one :class:`HyperInput`."""

    def __init__(self, n_hparams: int) -> None:
        self.hyper_input = HyperInput(n_hparams)
        self.n_hparams = n_hparams

    def linear(self, in_features: int, out_features: int, bias: bool = True) -> nn.Linear:
        return HyperLinear(in_features, out_features, self.n_hparams, bias, source=self.hyper_input)

    def conv2d(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0
    ) -> nn.Conv2d:
        return HyperConv2d(
            in_channels, out_channels, kernel_size, self.n_hparams, stride, padding, source=self.hyper_input
        )

    def embedding(self, num_embeddings: int, embedding_dim: int) -> nn.Embedding:
        return HyperEmbedding(num_embeddings, embedding_dim, self.n_hparams, source=self.hyper_input)

    def lstm(self, input_size: int, hidden_size: int) -> nn.Module:
        return HyperLSTM(input_size, hidden_size, self.n_hparams, source=self.hyper_input)


def hyper_modules(model: nn.Module) -> list[HyperModule]:
    return [m for m in model.modules() if isinstance(m, HyperModule)]


def hyper_input_of(model: nn.Module) -> HyperInput:
    """The :class:`HyperInput` shared by ``model``'s hyper-layers; raises if there is none or several."""
    sources = {id(m.source): m.source for m in hyper_modules(model) if m.source is not None}
    if len(sources) != 1:
        raise ValueError(f"expected a model whose hyper-layers share one HyperInput, found {len(sources)}")
    return next(iter(sources.values()))


def init_hyper_path(model: nn.Module, generator: torch.Generator | None, gate_std: float = 0.01) -> None:
    """Initialise every hyper-layer's hyper path from ``generator`` (module order), elementary weights untouched."""
    if gate_std < 0:
        raise ValueError(f"gate_std must be >= 0, got {gate_std}")
    for module in hyper_modules(model):
        module.reset_hyper_path(generator, gate_std)


def is_hyper_path(name: str) -> bool:
    """Whether a parameter name (``"fc1.gate_weight"``) belongs to the hyper path, not the elementary weights."""
    return name.rsplit(".", 1)[-1].startswith(HYPER_PATH_PREFIXES)


def elementary_parameter_count(model: nn.Module) -> int:
    """Parameters a plain model of the same architecture has (tied parameters counted once)."""
    return sum(p.numel() for name, p in model.named_parameters() if not is_hyper_path(name))


def weight_sq_norm(layer: nn.Module, h: torch.Tensor | None = None) -> torch.Tensor:
    """``||W||²`` of a layer's weight matrix; per example for a hyper-layer (its effective weights).

    For a hyper-layer the effective weight of example ``n`` is ``W_e + diag(s_w[n])·W_h`` (gates per
    output row), so ``||W_n||² = Σ_o (a_o + 2 s_no b_o + s_no² c_o)`` with ``a = ||W_e[o]||²``,
    ``b = <W_e[o], W_h[o]>``, ``c = ||W_h[o]||²``: weight decay on what the model really uses, without
    forming per-example matrices.

    Returns: a scalar for a plain layer, ``(N,)`` for a :class:`HyperLinear` or :class:`HyperConv2d`.
    """
    weight = getattr(layer, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight_sq_norm: {type(layer).__name__} has no weight tensor")
    if not isinstance(layer, (HyperLinear, HyperConv2d)):
        return weight.pow(2).sum()
    w_e, w_h = weight.flatten(1), layer.hyper_weight.flatten(1)  # (out, fan_in)
    if h is None and layer.source is not None and layer.source.h is not None:
        h = layer.source.h
    n = h.shape[0] if h is not None and h.dim() == 2 else 1
    s_w, _ = layer.gates(layer._resolve(h, n))  # (N, out)
    a, b, c = w_e.pow(2).sum(1), (w_e * w_h).sum(1), w_h.pow(2).sum(1)  # each (out,)
    return (a + 2.0 * s_w * b + s_w.pow(2) * c).sum(1)
