"""The one-layer hyper-LSTM of STN's language model, with a hand-written backpropagation through time.

:class:`HyperLSTM` follows the hyper-layer rule of :mod:`hpobench_stn.nn.layers` on the input, recurrent
and bias paths of an LSTM, and keeps ``nn.LSTM``'s parameter names so a plain LSTM loads its elementary
weights. Its time loop runs on one of three paths:

* :class:`_Recurrence`, an ``autograd.Function`` whose weight gradient is one product over all steps
  (why: see its docstring): every ordinary forward pass;
* the fused LSTM kernel of ``nn.LSTM`` (``torch._VF.lstm``) on the elementary weights alone, when the
  model's input is centred (:meth:`~hpobench_stn.nn.HyperInput.centre`: the hyper path adds zero);
* Delta-STN's linearised pass (:meth:`~hpobench_stn.nn.HyperInput.linearise`): the elementary LSTM
  without gradient, then its tangent recurrence written out (:func:`_tangent_recurrence`), whose
  operations autograd records so that the response gets its gradient;
* :func:`_recurrence_ops`, the same loop as plain tensor operations, when an input carries a forward-mode
  tangent otherwise: ``_Recurrence`` has no forward-mode rule, and the plain loop also differentiates twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.autograd.forward_ad as fwad
import torch.nn.functional as F
from torch import nn

from .layers import HyperInput, HyperModule, draw_normal_, draw_uniform_
from .linearize import is_dual

__all__ = ["HyperLSTM"]


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


def _recurrence_ops(
    pre: torch.Tensor, s_hh: torch.Tensor, w: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:class:`_Recurrence`'s forward as plain tensor operations (same shapes, same arithmetic), so that
    autograd's forward mode, and double backward, run through it. Slower: autograd records every step."""
    g = pre.shape[2]
    hid = g // 4
    h, c = h0, c0
    w_t = w.t()  # (H, 8H)
    outs = []
    for t in range(pre.shape[0]):
        rec = h @ w_t  # (N, 8H)
        a = pre[t] + rec[:, :g] + s_hh * rec[:, g:]  # (N, 4H)
        i, f, cand, o = (
            torch.sigmoid(a[:, :hid]),
            torch.sigmoid(a[:, hid : 2 * hid]),
            a[:, 2 * hid : 3 * hid],
            a[:, 3 * hid :],
        )
        c = f * c + i * torch.tanh(cand)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs), h, c


def _tangent_recurrence(
    pre: torch.Tensor,
    w_hh: torch.Tensor,
    dpre_fixed: torch.Tensor,
    u_hh: torch.Tensor,
    ds_hh: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The elementary LSTM and its tangent in the direction of the response (Delta-STN's linearisation).

    The primal, the LSTM with pre-activations ``pre`` ``(T, N, 4H)`` and recurrent weights ``w_hh``
    ``(4H, H)`` from ``(h0, c0)`` ``(N, H)``, runs without gradient: it does not depend on the response.
    The tangent: ``ȧ_t = dpre_fixed_t + ḣ_{t-1}·W_hhᵀ + ṡ_hh ⊙ (h_{t-1}·U_hhᵀ)`` (the last term for all
    steps in one product), then the derivative of the cell,
    ``ċ_t = ḟ·c_{t-1} + f·ċ_{t-1} + i̇·g + i·ġ``, ``ḣ_t = ȯ·tanh(c_t) + o·(1 - tanh²(c_t))·ċ_t``, with
    ``ḣ_0 = ċ_0 = 0``. The element-wise factors are computed once from the primal; each step records a
    product and a few element-wise operations.

    Returns: out ``(T, N, H)``, h_T, c_T (primal, no gradient), and their tangents.
    """
    steps, n, g = pre.shape
    hid = g // 4
    with torch.no_grad():
        sig = pre.new_empty(steps, n, g)  # sigmoid of the i, f, o pre-activations; tanh of g's in its slot
        cells = pre.new_empty(steps + 1, n, hid)
        out = pre.new_empty(steps, n, hid)
        cells[0] = c0
        h, w_t = h0, w_hh.t()
        for t in range(steps):
            a = pre[t] + h @ w_t  # (N, 4H)
            torch.sigmoid(a, out=sig[t])
            torch.tanh(a[:, 2 * hid : 3 * hid], out=sig[t, :, 2 * hid : 3 * hid])
            i, f, cand, o = sig[t].split(hid, dim=1)
            torch.addcmul(f * cells[t], i, cand, out=cells[t + 1])
            torch.mul(o, torch.tanh(cells[t + 1]), out=out[t])
            h = out[t]
        h_prev = torch.cat([h0.unsqueeze(0), out[:-1]])  # (T, N, H): the state each step read
        i, f, cand, o = sig.split(hid, dim=2)
        slope = torch.cat([i * (1 - i), f * (1 - f), 1 - cand * cand, o * (1 - o)], dim=2)  # dgate / da
        tanh_c = torch.tanh(cells[1:])
        d_out_dc = o * (1 - tanh_c * tanh_c)
    dpre = dpre_fixed + ds_hh * (h_prev @ u_hh.t())  # (T, N, 4H)
    w_hh_t = w_hh.detach().t()  # a constant of the linearisation
    dh = dc = torch.zeros_like(h0)
    d_out = []
    for t in range(steps):
        da = (dpre[t] + dh @ w_hh_t) * slope[t]  # (N, 4H): i̇, ḟ, ġ, ȯ
        di, df, dg, do = da.split(hid, dim=1)
        dc = df * cells[t] + f[t] * dc + di * cand[t] + i[t] * dg
        dh = do * tanh_c[t] + d_out_dc[t] * dc
        d_out.append(dh)
    return out, out[-1], cells[-1], torch.stack(d_out), dh, dc


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
            draw_uniform_(p, bound, generator)
        draw_normal_(self.gate_weight, gate_std, generator)

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
        if hx is None:
            zeros = x.new_zeros(1, n, hid)
            hx = (zeros, zeros)
        for label, t in (("h_0", hx[0]), ("c_0", hx[1])):
            if t.shape != (1, n, hid):
                raise ValueError(f"HyperLSTM: expected {label} of shape (1, {n}, {hid}), got {tuple(t.shape)}")
        if hh_mask is not None and hh_mask.shape != (g, hid):
            raise ValueError(f"HyperLSTM: expected hh_mask of shape ({g}, {hid}), got {tuple(hh_mask.shape)}")
        if self._centred(h):
            # The elementary LSTM alone, on the fused kernel that nn.LSTM calls: (input, hx, params,
            # has_biases, num_layers, dropout, train, bidirectional, batch_first).
            w_hh0 = self.weight_hh_l0 if hh_mask is None else self.weight_hh_l0 * hh_mask
            weights = [self.weight_ih_l0, w_hh0, self.bias_ih_l0, self.bias_hh_l0]
            out, h_n, c_n = torch._VF.lstm(x, hx, weights, True, 1, 0.0, self.training, False, False)
            return out, (h_n, c_n)
        tangent = self._tangent(h, n)
        if tangent is not None:
            return self._linearised(x, hx, hh_mask, tangent)
        h = self._resolve(h, n)
        s_ih, s_hh, s_b = F.linear(h, self.gate_weight).split(g, dim=1)  # each (N, 4H)
        # All time steps' input projections at once: (T, N, 8H) = x · [W_ih; U_ih]ᵀ.
        gx = F.linear(x, torch.cat([self.weight_ih_l0, self.hyper_weight_ih]))
        bias = self.bias_ih_l0 + self.bias_hh_l0 + s_b * self.hyper_bias  # (N, 4H)
        pre = torch.addcmul(gx[..., :g] + bias, s_ih, gx[..., g:])  # (T, N, 4H), constant part of each step
        w_hh = torch.cat([self.weight_hh_l0, self.hyper_weight_hh])  # (8H, H) = [W_hh; U_hh]
        if hh_mask is not None:
            w_hh = w_hh * hh_mask.repeat(2, 1)  # the same DropConnect mask on W_hh and U_hh (as the STN code)
        args = (pre, s_hh, w_hh, hx[0][0], hx[1][0])
        if any(is_dual(a) for a in args):
            out, h_n, c_n = _recurrence_ops(*args)
        else:
            out, h_n, c_n = _Recurrence.apply(*args)
        return out, (h_n.unsqueeze(0), c_n.unsqueeze(0))

    def _linearised(
        self,
        x: torch.Tensor,
        hx: tuple[torch.Tensor, torch.Tensor],
        hh_mask: torch.Tensor | None,
        offsets: torch.Tensor,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Delta-STN's linearised pass: the elementary LSTM's outputs as forward-mode duals whose tangents
        are ``J·ΦΔ`` (:func:`_tangent_recurrence`). The primal carries no gradient: this pass fits the
        response only."""
        x0, dx = fwad.unpack_dual(x)
        g = 4 * self.hidden_size
        ds_ih, ds_hh, ds_b = F.linear(offsets, self.gate_weight).split(g, dim=1)  # each (N, 4H)
        w_hh: torch.Tensor = self.weight_hh_l0
        u_hh: torch.Tensor = self.hyper_weight_hh
        if hh_mask is not None:
            w_hh, u_hh = w_hh * hh_mask, u_hh * hh_mask
        with torch.no_grad():
            pre = F.linear(x0, self.weight_ih_l0, self.bias_ih_l0 + self.bias_hh_l0)  # (T, N, 4H)
        dpre = ds_ih * F.linear(x0, self.hyper_weight_ih) + ds_b * self.hyper_bias  # (T, N, 4H)
        if dx is not None:
            dpre = dpre + F.linear(dx, self.weight_ih_l0.detach())
        out, h_n, c_n, d_out, dh_n, dc_n = _tangent_recurrence(
            pre, w_hh.detach(), dpre, u_hh, ds_hh, hx[0][0], hx[1][0]
        )
        h_dual = fwad.make_dual(h_n, dh_n).unsqueeze(0)
        c_dual = fwad.make_dual(c_n, dc_n).unsqueeze(0)
        return fwad.make_dual(out, d_out), (h_dual, c_dual)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, n_hparams={self.n_hparams}"
