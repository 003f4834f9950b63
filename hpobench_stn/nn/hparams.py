"""Hyperparameters as trainable tensors: projections onto the search space, perturbations, entropy.

A best-response method (STN) keeps one unconstrained parameter ``u_k`` per tuned hyperparameter and a
perturbation scale ``σ_k = softplus(ρ_k)``. Every dimension of a :class:`~hpobench_stn.SearchSpace` is
bounded, so each ``u_k`` maps onto its range by a scaled sigmoid on the dimension's sampling scale:

* the **position** ``p = sigmoid(u) ∈ (0, 1)``;
* a ``Float`` on ``[low, high]``: ``low + (high - low)·p`` (log scale: ``exp`` of the same on
  ``[ln low, ln high]``);
* an ``Int`` on ``{low, ..., high}``: the continuous value ``low + (high + 1 - low)·p`` in
  ``(low, high + 1)`` (log scale likewise), applied in training as its floor
  (:meth:`hpobench_stn.Int.from_continuous`), so every integer owns an interval of equal length.

**What the hypernetwork sees** (``hnet``): by default the **offset** of each draw from the current
``u``, ``σ ⊙ ε`` (``"offset"``; zero at the current λ, still differentiable in ``u``), the centred input
of Delta-STN (Bae & Grosse, 2020). The alternatives are the draw itself, ``u + σ ⊙ ε``
(``"unconstrained"``, the official STN CNN code) and its position ``sigmoid(u + σ ⊙ ε)``
(``"position"``, the official LSTM code with ``--tune_all``). Why the offset: with an uncentred input
``h̄ + δ`` a hyper-layer's weights are ``W_e + V(h̄ + δ)·W_h``; the hyper path then also fits the mean
weights through ``V·h̄·W_h``, and as training fits the weights the learned slope follows the fit, not
the response to λ. Measured on ``dropout_regression`` (``benchmarks/known_optimum.py``): with
positions, the slope ended at cosine −0.6 to the exact best-response Jacobian and drove the rate into
its lower bound; from above, no uncentred input learned a slope at all (cosine ~0). Centred on the
offset, the cosine reached 0.9–0.98 from either side. With an offset the hyper path contributes
nothing at the current λ, so the elementary weights are the model at λ, and the input's scale is that
of ``σ`` whatever the range, so ``V·h`` is well scaled across hyperparameters and an integer
hyperparameter keeps a gradient (the regulariser only sees the floor, the hypernetwork the continuous
offset).

**Perturbations** live in the unconstrained space: ``u + σ ⊙ ε``, ``ε ~ N(0, I)``, one draw per example
(default) or per batch (``per_batch``: one draw shared by the batch, for regularisers that take one
value per batch, such as DropConnect on a fused LSTM kernel). For an ``Int``, ``σ`` is floored at the
distance in ``u`` from the current ``u`` to the nearest integer boundary inside the range, so one
standard deviation reaches a neighbouring integer: otherwise σ can shrink until every draw floors to
the same integer, the hypernetwork never sees the effect of a different integer, and the
hyperparameter cannot move. The **entropy** of the perturbation distribution is that of a diagonal Gaussian,
``Σ_k ln σ_k + K/2·(1 + ln 2π)``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..foundation.space import Config, Int, SearchSpace, SpaceError

__all__ = ["HNET_INPUTS", "HParams", "Perturbed"]

HNET_INPUTS = ("offset", "unconstrained", "position")  # what the hypernetwork sees (module docstring)


class Perturbed(NamedTuple):
    """One batch's hyperparameters.

    Attributes:
        hnet: hypernetwork input, ``(N, K)`` (see :data:`HNET_INPUTS`).
        values: name → ``(N,)`` values on the space's scale, Ints floored (as floats).
    """

    hnet: torch.Tensor
    values: dict[str, torch.Tensor]


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


class HParams(nn.Module):
    """The tuned hyperparameters of one run and their perturbation scales.

    Args:
        space: the task's search space.
        names: the tuned hyperparameters (``K`` of them), in the hypernetwork's column order.
        init: name → starting value (on the space's scale) for every tuned hyperparameter.
        sigma0: the starting ``σ`` (unconstrained scale), > 0.
        per_batch: names perturbed once per batch instead of once per example.
        margin: starting positions are kept in ``[margin, 1 - margin]``: a value on a bound would need
            an infinite ``u``.
        int_reach: an Int's σ is at least ``int_reach`` times the distance (in ``u``) to its nearest
            integer boundary (see the module docstring).
        u_max, sigma_max: bounds that :meth:`clamp_` keeps ``u`` and ``σ`` within (``u_max = 6``: positions
            within ``sigmoid(-6) ≈ 0.25 %`` of the range's ends; ``sigma_max``: no bound by default, the
            ``stn`` method uses 2, where the perturbation already spans most of the sigmoid).
        hnet: the hypernetwork's input, one of :data:`HNET_INPUTS` (see the module docstring).

    Attributes:
        unconstrained: ``u``, ``(K,)``; rho: ``ρ``, ``(K,)`` with ``σ = softplus(ρ)``.
    """

    # Buffers, (K,) each: bounds on the sampling scale, and per-dimension flags.
    low: torch.Tensor
    high: torch.Tensor
    int_low: torch.Tensor
    int_high: torch.Tensor
    is_log: torch.Tensor
    is_int: torch.Tensor
    per_batch: torch.Tensor

    def __init__(
        self,
        space: SearchSpace,
        names: Sequence[str],
        init: Mapping[str, float],
        sigma0: float = 0.5,
        *,
        per_batch: Collection[str] = (),
        margin: float = 0.05,
        int_reach: float = 1.0,
        u_max: float = 6.0,
        sigma_max: float = math.inf,
        hnet: str = "offset",
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if not names:
            raise SpaceError("HParams: no hyperparameters to tune")
        unknown = [n for n in (*names, *per_batch, *init) if n not in space]
        if unknown:
            raise SpaceError(f"HParams: unknown hyperparameters {unknown}; known: {list(space)}")
        missing = [n for n in names if n not in init]
        if missing:
            raise SpaceError(f"HParams: no starting value for {missing}")
        if not (sigma0 > 0 and math.isfinite(sigma0)):
            raise ValueError(f"HParams: sigma0 must be a finite number > 0, got {sigma0!r}")
        if not 0 < margin < 0.5:
            raise ValueError(f"HParams: margin must lie in (0, 0.5), got {margin!r}")
        if hnet not in HNET_INPUTS:
            raise ValueError(f"HParams: hnet must be one of {list(HNET_INPUTS)}, got {hnet!r}")
        self.hnet_kind = hnet
        self.space = space
        self.names = tuple(names)
        self.int_reach = float(int_reach)
        self.u_max = float(u_max)
        if not sigma_max >= sigma0:
            raise ValueError(f"HParams: sigma_max must be a number >= sigma0 ({sigma0}), got {sigma_max!r}")
        self._rho_max = sigma_max + math.log(-math.expm1(-sigma_max)) if math.isfinite(sigma_max) else math.inf
        dists = [space[n] for n in self.names]
        lows, highs, positions = [], [], []
        for name, dist in zip(self.names, dists, strict=True):
            value = dist.check(name, init[name])
            if isinstance(dist, Int):
                # An Int starts in the middle of its integer's interval [k, k + 1): its left edge could
                # round (float32) to k - 1, and on an edge the σ floor (distance to a boundary) is zero.
                value = value + 0.5
            low = float(dist.low)
            high = float(dist.high + 1) if isinstance(dist, Int) else float(dist.high)
            if dist.log:
                low, high, value = math.log(low), math.log(high), math.log(value)
            lows.append(low)
            highs.append(high)
            positions.append(min(max((value - low) / (high - low), margin), 1.0 - margin))
        kw = {"device": device, "dtype": torch.float32}
        self.register_buffer("low", torch.tensor(lows, **kw))  # type: ignore[arg-type]
        self.register_buffer("high", torch.tensor(highs, **kw))  # type: ignore[arg-type]
        self.register_buffer("is_log", torch.tensor([d.log for d in dists], device=device))
        self.register_buffer("is_int", torch.tensor([isinstance(d, Int) for d in dists], device=device))
        self.register_buffer("per_batch", torch.tensor([n in per_batch for n in self.names], device=device))
        self.unconstrained = nn.Parameter(torch.tensor([_logit(p) for p in positions], **kw))  # type: ignore[arg-type]
        rho0 = sigma0 + math.log(-math.expm1(-sigma0))  # softplus⁻¹(σ₀)
        self.rho = nn.Parameter(torch.full((len(names),), rho0, **kw))  # type: ignore[arg-type]
        self._dists = dists
        self._batch_names = [n for n in self.names if n in per_batch]
        self._has_int = any(isinstance(d, Int) for d in dists)
        self.register_buffer("int_low", torch.tensor([float(d.low) for d in dists], **kw))  # type: ignore[arg-type]
        self.register_buffer("int_high", torch.tensor([float(d.high) for d in dists], **kw))  # type: ignore[arg-type]

    @torch.no_grad()
    def clamp_(self) -> None:
        """Keep ``u`` in ``[-u_max, u_max]`` and ``σ <= sigma_max`` (call after each optimiser step).

        Both bounds guard against Adam, whose normalised steps follow the *sign* of a gradient however
        small it is. Deep in the sigmoid's saturation a hyperparameter's value stops changing and its
        gradient vanishes, yet ``u`` keeps moving; without a bound it drifts without limit and needs as
        many steps to come back. Where the validation loss is flat in a hyperparameter, the entropy
        bonus alone drives ``σ`` and Adam grows it at full speed (measured: σ ≈ 16 on digits_mlp),
        until the perturbations span the whole range and the best-response approximation is no
        longer local.
        """
        self.unconstrained.clamp_(-self.u_max, self.u_max)
        self.rho.clamp_(max=self._rho_max)

    def __len__(self) -> int:
        return len(self.names)

    def extra_repr(self) -> str:
        return f"names={list(self.names)}, hnet={self.hnet_kind!r}"

    # ----------------------------------------------------------------------------------------------
    def sigma(self) -> torch.Tensor:
        """``σ``, ``(K,)``: ``softplus(ρ)``, for an Int at least the distance (in ``u``) from ``u`` to its
        nearest integer boundary inside the range, so one σ reaches a neighbouring integer (the floor
        carries no gradient)."""
        sigma = F.softplus(self.rho)
        if self._has_int:
            sigma = torch.maximum(sigma, self._int_floor())
        return sigma

    @torch.no_grad()
    def _int_floor(self) -> torch.Tensor:
        u = self.unconstrained
        span = self.high - self.low
        scaled = self.low + span * torch.sigmoid(u)
        value = torch.where(self.is_log, torch.exp(scaled), scaled)  # the continuous value, linear scale

        def u_at(boundary: torch.Tensor) -> torch.Tensor:  # the u where the value crosses ``boundary``
            s = torch.where(self.is_log, torch.log(boundary.clamp_min(1e-12)), boundary)
            q = ((s - self.low) / span).clamp(1e-6, 1 - 1e-6)
            return torch.log(q) - torch.log1p(-q)

        below = value.floor()
        inf = torch.full_like(u, math.inf)
        to_below = torch.where(below > self.int_low, u - u_at(below), inf)
        to_above = torch.where(below + 1 <= self.int_high, u_at(below + 1) - u, inf)
        floor = self.int_reach * torch.minimum(to_below, to_above)
        return torch.where(self.is_int & torch.isfinite(floor), floor, torch.zeros_like(u))

    def entropy(self) -> torch.Tensor:
        """Entropy of the diagonal Gaussian perturbation in the unconstrained space (a scalar)."""
        k = len(self.names)
        return torch.log(self.sigma()).sum() + 0.5 * k * (1.0 + math.log(2 * math.pi))

    def values_of(self, u: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unconstrained ``(*, K)`` → name → values ``(*)`` on the space's scale, Ints floored."""
        scaled = self.low + (self.high - self.low) * torch.sigmoid(u)
        scaled = torch.where(self.is_log, torch.exp(scaled), scaled)
        out: dict[str, torch.Tensor] = {}
        for k, (name, dist) in enumerate(zip(self.names, self._dists, strict=True)):
            v = scaled[..., k]
            if isinstance(dist, Int):
                v = v.floor()
            out[name] = v.clamp(float(dist.low), float(dist.high))  # also against float32 rounding of exp
        return out

    def perturbed(self, n: int, *, differentiable: bool = False) -> Perturbed:
        """``n`` perturbed draws ``u + σ·ε`` (one row per example; per-batch columns share row 0).

        Weight steps use detached draws (λ does not move there). Hyper-steps pass ``differentiable=True``:
        the draws are reparameterised, so the validation loss at the perturbed λ has a gradient in ``u``
        and ``σ`` (the expectation over the perturbation that STN's hyper-step minimises).
        """
        with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
            u = self.unconstrained
            eps = torch.randn(n, len(self.names), device=u.device)
            eps = torch.where(self.per_batch, eps[:1].expand(n, -1), eps)
            draws = u + self.sigma() * eps  # (N, K)
            values = self.values_of(draws.detach())
            for name in self._batch_names:
                # Bit-identical rows (vectorised kernels may round the tail of a row differently), so a
                # regulariser can test "one value per batch" exactly.
                values[name] = values[name][:1].expand(n)
            return Perturbed(self._hnet_of(draws), values)

    @torch.no_grad()
    def values_at_current(self, n: int) -> dict[str, torch.Tensor]:
        """The current λ as applied (Ints floored), name → ``(n,)`` with every row equal."""
        return self.values_of(self.unconstrained.expand(n, -1))

    def hnet_input(self) -> torch.Tensor:
        """The hypernetwork input at the current λ, ``(K,)``, differentiable in ``u`` (validation, and
        hyper-steps at the current λ); zeros for ``hnet="offset"``."""
        return self._hnet_of(self.unconstrained)

    def _hnet_of(self, draws: torch.Tensor) -> torch.Tensor:
        """The hypernetwork input for unconstrained draws ``(*, K)``."""
        if self.hnet_kind == "offset":
            # σ·ε, centred on the current u; its gradient in u is still 1 (u − u.detach()).
            return draws - self.unconstrained.detach()
        if self.hnet_kind == "position":
            return torch.sigmoid(draws)
        return draws

    def current(self) -> dict[str, float]:
        """The current hyperparameters on the space's scale; Ints as their continuous value (not floored)."""
        with torch.no_grad():
            scaled = self.low + (self.high - self.low) * torch.sigmoid(self.unconstrained)
            scaled = torch.where(self.is_log, torch.exp(scaled), scaled)
        return {name: float(v) for name, v in zip(self.names, scaled.tolist(), strict=True)}

    def config(self, fixed: Mapping[str, float | int]) -> Config:
        """A config of the whole space: tuned values as applied (Ints floored, Floats clipped to their
        bounds against rounding), untuned ones from ``fixed``."""
        return self.space.from_continuous(self.current(), fixed)
