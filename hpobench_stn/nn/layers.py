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

The one-layer hyper-LSTM is in :mod:`hpobench_stn.nn.lstm`. The layer factories, the functions that
look at a whole model, and the initialisation rule of the hyper path (:func:`init_hyper_path`) are in
:mod:`hpobench_stn.nn.factory`.
"""

from __future__ import annotations

import math

import torch
import torch.autograd.forward_ad as fwad
import torch.nn.functional as F
from torch import nn

__all__ = [
    "HYPER_PATH_PREFIXES",
    "HyperConv2d",
    "HyperEmbedding",
    "HyperInput",
    "HyperLinear",
    "HyperModule",
    "draw_normal_",
    "draw_uniform_",
    "is_hyper_path",
    "weight_sq_norm",
]

HYPER_PATH_PREFIXES = ("hyper_", "gate_")  # parameter names of the hyper path; everything else is elementary


class HyperInput:
    """The hypernetwork input shared by the hyper-layers of one model.

    Attributes:
        n_hparams: columns of ``h``.
        h: the current input, ``(N, n_hparams)`` or ``(n_hparams,)`` (the same row for every example);
            None until set, and None while centred or linearised.
        centred: set by :meth:`centre`: the model is its elementary weights alone (the hyper path is
            skipped); cleared by :meth:`set` and :meth:`linearise`.
        tangent: set by :meth:`linearise`: the offsets ``Δ`` ``(N, n_hparams)`` of Delta-STN's linearised
            forward pass; None otherwise.
    """

    def __init__(self, n_hparams: int) -> None:
        if not isinstance(n_hparams, int) or n_hparams < 1:
            raise ValueError(f"HyperInput: n_hparams must be an integer >= 1, got {n_hparams!r}")
        self.n_hparams = n_hparams
        self.h: torch.Tensor | None = None
        self.centred = False
        self.tangent: torch.Tensor | None = None

    def _check(self, h: torch.Tensor) -> None:
        if h.dim() not in (1, 2) or h.shape[-1] != self.n_hparams:
            raise ValueError(
                f"HyperInput: expected h of shape (N, {self.n_hparams}) or ({self.n_hparams},), got {tuple(h.shape)}"
            )

    def set(self, h: torch.Tensor) -> None:
        self._check(h)
        self.h, self.centred, self.tangent = h, False, None

    def centre(self) -> None:
        """Run the model at a zero input without computing the hyper path.

        With a centred input (the offset ``σ·ε`` from the current λ, Delta-STN's parameterisation) a zero
        input is the model at the current λ, and the hyper path adds exactly zero to every output and
        receives a zero gradient (its gates are ``V·0``). Centring skips that work: each hyper-layer runs
        as its plain torch layer on the elementary weights (the hyper-LSTM on the fused kernel).
        """
        self.h, self.centred, self.tangent = None, True, None

    def linearise(self, offsets: torch.Tensor) -> None:
        """Run the model to first order at input ``offsets`` ``(N, n_hparams)``: each hyper-layer returns a
        forward-mode dual number, its elementary output with the tangent ``J·ΦΔ`` (for use inside
        :func:`hpobench_stn.nn.linearize.linearise`, which opens the forward-mode level)."""
        self._check(offsets)
        if offsets.dim() != 2:
            raise ValueError(
                f"HyperInput: linearise needs offsets of shape (N, {self.n_hparams}), got {tuple(offsets.shape)}"
            )
        self.h, self.centred, self.tangent = None, False, offsets

    def __repr__(self) -> str:
        mode = "linearised" if self.tangent is not None else None
        shape = "centred" if self.centred else mode or (None if self.h is None else tuple(self.h.shape))
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

    def _centred(self, h: torch.Tensor | None) -> bool:
        """Whether this forward pass runs on the elementary weights alone (no ``h`` given, input centred)."""
        return h is None and self.source is not None and self.source.centred

    def _tangent(self, h: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """The offsets ``Δ`` ``(n, n_hparams)`` of a linearised pass (no ``h`` given), else None.

        A linearised hyper-layer returns ``fwad.make_dual(y0, ẏ)``: ``y0`` its elementary output at the
        primal input, ``ẏ = W_e·ẋ + (V·Δ) ⊙ (W_h·x0) (+ (V_b·Δ) ⊙ b_h)``, the derivative of its output at
        input ``t·Δ`` in ``t`` at 0 (the hyper path's own term ``(V·0) ⊙ (W_h·ẋ)`` is zero). The primal
        output does not depend on the response, so the backward pass from the loss runs through the
        tangents only."""
        if h is not None or self.source is None or self.source.tangent is None:
            return None
        t = self.source.tangent
        if t.shape != (n, self.n_hparams):
            raise ValueError(
                f"{type(self).__name__}: expected offsets of shape ({n}, {self.n_hparams}), got {tuple(t.shape)}"
            )
        return t

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


def draw_uniform_(param: torch.Tensor, bound: float, generator: torch.Generator | None) -> None:
    """Fill ``param`` from U(-bound, bound) drawn with ``generator``."""
    # Drawn on the CPU (generators are CPU generators) and copied, so the draw is device-independent.
    with torch.no_grad():
        param.copy_(torch.empty(param.shape, dtype=param.dtype).uniform_(-bound, bound, generator=generator))


def draw_normal_(param: torch.Tensor, std: float, generator: torch.Generator | None) -> None:
    """Fill ``param`` from N(0, std²) drawn with ``generator`` (zeros for ``std = 0``), device-independently."""
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
        draw_uniform_(self.hyper_weight, bound, generator)
        if self.hyper_bias is not None:
            draw_uniform_(self.hyper_bias, bound, generator)
        draw_normal_(self.gate_weight, gate_std, generator)

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
        if self._centred(h):
            return F.linear(x, self.weight, self.bias)
        tangent = self._tangent(h, x.shape[-2])
        if tangent is not None:
            x0, dx = fwad.unpack_dual(x)
            ds_w, ds_b = self.gates(tangent)
            dy = ds_w * F.linear(x0, self.hyper_weight)
            if ds_b is not None and self.hyper_bias is not None:
                dy = dy + ds_b * self.hyper_bias
            if dx is not None:
                dy = dy + F.linear(dx, self.weight)
            out: torch.Tensor = fwad.make_dual(F.linear(x0, self.weight, self.bias), dy)
            return out
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
        draw_uniform_(self.hyper_weight, bound, generator)
        if self.hyper_bias is not None:
            draw_uniform_(self.hyper_bias, bound, generator)
        draw_normal_(self.gate_weight, gate_std, generator)

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
        if self._centred(h):
            return self._conv_forward(x, self.weight, self.bias)  # type: ignore[no-any-return]
        tangent = self._tangent(h, x.shape[0])
        if tangent is not None:
            x0, dx = fwad.unpack_dual(x)
            ds_w, ds_b = self.gates(tangent)
            dy = ds_w[:, :, None, None] * self._conv_forward(x0, self.hyper_weight, None)
            if ds_b is not None and self.hyper_bias is not None:
                dy = dy + (ds_b * self.hyper_bias)[:, :, None, None]
            if dx is not None:
                dy = dy + self._conv_forward(dx, self.weight, None)
            dual: torch.Tensor = fwad.make_dual(self._conv_forward(x0, self.weight, self.bias), dy)
            return dual
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
        draw_uniform_(self.hyper_weight, 0.1, generator)
        draw_normal_(self.gate_weight, gate_std, generator)

    def forward(self, tokens: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        if tokens.dim() < 1:
            raise ValueError(f"HyperEmbedding: expected tokens of shape (*, N), got {tuple(tokens.shape)}")
        if self._centred(h):
            return F.embedding(tokens, self.weight)
        tangent = self._tangent(h, tokens.shape[-1])
        if tangent is not None:
            ds = F.linear(tangent, self.gate_weight)  # (N, embedding_dim)
            emb: torch.Tensor = fwad.make_dual(
                F.embedding(tokens, self.weight), ds * F.embedding(tokens, self.hyper_weight)
            )
            return emb
        h = self._resolve(h, tokens.shape[-1])
        s = F.linear(h, self.gate_weight)  # (N, embedding_dim)
        return F.embedding(tokens, self.weight) + s * F.embedding(tokens, self.hyper_weight)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, n_hparams={self.n_hparams}"


def is_hyper_path(name: str) -> bool:
    """Whether a parameter name (``"fc1.gate_weight"``) belongs to the hyper path, not the elementary weights."""
    return name.rsplit(".", 1)[-1].startswith(HYPER_PATH_PREFIXES)


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
    if not isinstance(layer, (HyperLinear, HyperConv2d)) or layer._centred(h):
        return weight.pow(2).sum()
    w_e, w_h = weight.flatten(1), layer.hyper_weight.flatten(1)  # (out, fan_in)
    if h is None and layer.source is not None:
        # Under Delta-STN's linearisation the norm is that of the weights at Δ itself: they are exactly
        # linear in Δ, so there is nothing to linearise.
        h = layer.source.h if layer.source.tangent is None else layer.source.tangent
    n = h.shape[0] if h is not None and h.dim() == 2 else 1
    s_w, _ = layer.gates(layer._resolve(h, n))  # (N, out)
    a, b, c = w_e.pow(2).sum(1), (w_e * w_h).sum(1), w_h.pow(2).sum(1)  # each (out,)
    return (a + 2.0 * s_w * b + s_w.pow(2) * c).sum(1)
