"""Layer factories, and the functions that look at a whole model's hyper-layers.

A task writes its architecture once against a factory: :class:`Layers` gives plain torch layers (the
baseline), :class:`HyperLayers` gives hyper-layers that share one :class:`~hpobench_stn.nn.layers.HyperInput`
(the STN model). :func:`init_hyper_path`, :func:`hyper_input_of` and :func:`elementary_parameter_count`
work on the model such a factory built.

Initialisation (:func:`init_hyper_path`): the hyper weights as torch initialises the elementary ones
(uniform ±1/√fan_in; embeddings uniform ±0.1), and the gate ``V ~ N(0, gate_std²)``. The official STN
code uses ``gate_std = 0.01``; the Delta-STN code starts from ``V = 0`` (``gate_std = 0``): the model then
starts exactly at its elementary weights and ``V`` still receives a gradient (``W_h·x ≠ 0``).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import HyperConv2d, HyperEmbedding, HyperInput, HyperLinear, HyperModule, is_hyper_path
from .lstm import HyperLSTM

__all__ = [
    "HyperLayers",
    "Layers",
    "elementary_parameter_count",
    "hyper_input_of",
    "hyper_modules",
    "init_hyper_path",
]


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


def elementary_parameter_count(model: nn.Module) -> int:
    """Parameters a plain model of the same architecture has (tied parameters counted once)."""
    return sum(p.numel() for name, p in model.named_parameters() if not is_hyper_path(name))
