"""``cifar_alexnet``: AlexNet on CIFAR-10 with 15 regularisation and augmentation hyperparameters (STN paper).

Data (:mod:`hpobench_stn.datasets.cifar10`): the official torchvision files when present, else the
offline JPEG q75 copy (decoded once and cached; accuracies on it run 2–3 points below the originals).
Split as in the paper: official training images 0–39,999 train, 40,000–49,999 validate, the official
10,000 test images test. The split is fixed: it does not depend on the run seed. The ``cpu`` and
``smoke`` presets use the *first* ``n_train`` / ``n_val`` / ``n_test`` images of those splits (the
official order is already shuffled, so these are class-balanced to within a few percent). Images stay
uint8 on the device; batches are converted, augmented and normalised there.

Model: AlexNet for 32×32 inputs as in the STN code (``cnn/models/alexnet.py``): five 3×3 convolutions
with filters ``[64, 192, 384, 256, 256]`` (the first with stride 2), each followed by ReLU, a 2×2
max-pool after convolutions 1, 2 and 5, and channel dropout; then dropout → fc 1024→4096 → ReLU →
dropout → fc 4096→4096 → ReLU → fc 4096→10. No BatchNorm. ``width`` scales the filter counts and
``fc_hidden`` sets the hidden fc size (reduced presets only). Weights are drawn from the ``init``
generator only (uniform ±1/√fan_in, torch's default scheme).

Order inside :meth:`CifarAlexNet.training_loss` (on ``[0, 1]`` images): colour jitter (brightness,
contrast, saturation, hue), then cutout (holes filled with the dataset mean, i.e. zero after
normalisation, as cutout of normalised images in the reference code), then normalisation by the
CIFAR-10 channel mean/std, then input scale noise and input dropout, then the network with its
per-example channel and fc dropout. Validation and test are clean: eval mode, no augmentation.

Hyperparameters (defaults: all 0, the unregularised network). Bounds are the STN code's
(``cnn/util/hyperparameter.py``), shared by every method:

=============================  ===========  ===============  ==========================================
name                           range        kind             why this range
=============================  ===========  ===============  ==========================================
``dropout_conv1..5``           [0, 0.9]     REGULARIZER      channel dropout after each conv; STN caps
                                                             dropout at 0.9 "for stability"
``dropout_fc1``, ``_fc2``      [0, 0.9]     REGULARIZER      dropout before each hidden fc layer; same cap
``dropout_in``                 [0, 0.9]     REGULARIZER      element dropout on the normalised input;
                                                             the cap keeps it below 1 like the others
``input_scale``                [0, 0.3]     REGULARIZER      each image × U[1/(1+s), 1+s]; STN's range
``hue``                        [0, 0.5]     AUGMENTATION     hue shift U[-r, r] turns; 0.5 is a full turn
                                                             either way, ColorJitter's limit
``contrast``, ``saturation``,  [0, 1]       AUGMENTATION     factor U[max(0, 1-r), 1+r]; at 1 the factor
``brightness``                                               reaches 0 (grey / black), STN's range
``cutout_length``              {0..24}      AUGMENTATION     side of each square hole, pixels (STN)
``cutout_holes``               {0..4}       AUGMENTATION     holes per image (STN)
=============================  ===========  ===============  ==========================================

Integer rule: configs hold Python ints for ``cutout_length`` and ``cutout_holes`` (the space's ``Int``);
a method on a continuous relaxation maps back with ``Int.from_continuous`` (floor). A length or hole
count of 0 disables cutout.

Presets (optimisation settings fixed, never tuned; each trial trains until its ``patience`` — epochs
without a new best validation loss — or its ``epochs`` cap, with a validation after each epoch, keeping
the best-validation checkpoint):

* ``paper``: the full network on 40k/10k/10k images, batch 128, SGD lr 0.01 momentum 0.9, patience 75
  epochs as the official baseline (``cnn/train_basic.py``, which has no epoch cap and also stops when
  its decayed learning rate falls below 1e-7), capped at 300 epochs.
  Needs CUDA: constructing it on another device raises :class:`~hpobench_stn.TaskError` (full AlexNet
  takes ~1 s per batch of 128 on this 2-core CPU, ~5 min per epoch).
* ``cpu``: half-width filters ``[32, 96, 192, 128, 128]``, fc 1024, He-normal init, the first 2,560
  training and 2,000 validation images, full test set, batch 128, SGD lr 0.03 momentum 0.9, 50 epochs:
  80–87 s per trial (1 thread on this 2-core machine), so a 10-minute budget holds 7 trials and a
  7.5-minute one 5. Seed 0 (``python benchmarks/cifar_calibration.py``): unregularised, validation CE
  bottoms at 1.545 (45.2 %) at epoch 10 and climbs to 4.46 by epoch 50 (strong overfitting; the kept
  best-validation checkpoint acts as early stopping); channel dropout 0.1 on every conv layer, fc dropout
  0.2 and one 16-pixel cutout hole reach **1.475** (48.7 %) at epoch 45; colour jitter and a 12-pixel
  cutout without dropout only 1.541, and stronger dropout (0.2 conv, 0.3 fc) learns too slowly (1.798).
  The margin is real (0.07 nats, +3.5 points) but modest: at this
  scale the unregularised network's early-stopped checkpoint is a strong baseline.
* ``smoke``: width 1/8, fc 64, He init, 256 / 256 / 256 images, batch 64, 2 epochs: under a second per trial.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hpobench_stn import (
    Batch,
    Config,
    Float,
    HParamKind,
    Int,
    Preset,
    RunSeeds,
    SearchSpace,
    Split,
    Task,
    TaskError,
    register_task,
)
from hpobench_stn.datasets.cifar10 import load_cifar10, paper_split
from hpobench_stn.harness.batches import sequential_batches, shuffled_batches
from hpobench_stn.nn import Layers, linearised
from hpobench_stn.nn.augment import color_jitter, cutout
from hpobench_stn.nn.regularizers import channel_dropout, element_dropout, scale_noise

__all__ = ["AlexNet", "CifarAlexNet", "CifarPreset"]

FILTERS = (64, 192, 384, 256, 256)  # the paper's AlexNet
POOL_AFTER = (0, 1, 4)  # 2×2 max-pool after these convolutions (0-based), as the STN code
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
CONV_DROPOUTS = tuple(f"dropout_conv{i}" for i in range(1, 6))
FC_DROPOUTS = ("dropout_fc1", "dropout_fc2")
JITTERS = ("brightness", "contrast", "saturation", "hue")


@dataclass(frozen=True)
class CifarPreset(Preset):
    width: float = 1.0  # multiplies the filter counts FILTERS
    fc_hidden: int = 4096  # units of each hidden fc layer
    lr: float = 0.01  # SGD learning rate (optimisation setting: fixed, not tuned)
    momentum: float = 0.9
    n_train: int | None = None  # first n of the 40k training images; None: all
    n_val: int | None = None  # first n of the 10k validation images; None: all
    n_test: int | None = None  # first n of the 10k test images; None: all
    eval_batch_size: int = 1000
    he_init: bool = False  # He-normal weights instead of torch's default (see AlexNet.reset_parameters)
    group_norm: int | None = None  # GroupNorm with this many groups after each convolution; None: none (the paper's)
    optimizer: str = "sgd"  # "sgd" (with ``momentum``, the paper's) or "adam"
    clip: float | None = None  # gradient-norm clipping; None: none (the paper's)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.optimizer not in ("sgd", "adam"):
            raise TaskError(f"preset {self.name!r}: optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.clip is not None and not self.clip > 0:
            raise TaskError(f"preset {self.name!r}: clip must be None or > 0, got {self.clip!r}")

    @property
    def filters(self) -> tuple[int, ...]:
        return tuple(max(1, round(f * self.width)) for f in FILTERS)


class AlexNet(nn.Module):
    """AlexNet for 32×32 images with per-example dropout rates (see the module docstring).

    Args:
        filters: output channels of the five convolutions.
        fc_hidden: units of the two hidden fc layers.
        num_classes: output logits.
        group_norm: a GroupNorm of this many groups (plain, not a hyper-layer) between each convolution
            and its ReLU; None: none (the paper's). Per-example statistics, so a model trained under
            dropout is normalised at evaluation by what it sees then (BatchNorm's running statistics,
            taken under dropout, would shrink every layer's output at evaluation).
        layers: the layer factory: plain torch layers (baseline, default) or
            :class:`~hpobench_stn.nn.HyperLayers` (the STN model); one architecture for both.

    Shape:
        x: ``(N, 3, 32, 32)`` normalised images; rates: ``(N, 7)`` dropout rates (five conv layers,
        then the two fc layers) or None for no dropout; output: ``(N, num_classes)`` logits.
    """

    def __init__(
        self,
        filters: tuple[int, ...],
        fc_hidden: int,
        num_classes: int = 10,
        layers: Layers | None = None,
        *,
        group_norm: int | None = None,
    ) -> None:
        super().__init__()
        if len(filters) != 5:
            raise ValueError(f"AlexNet: expected 5 filter counts, got {filters}")
        layers = layers or Layers()
        channels = (3, *filters)
        strides = (2, 1, 1, 1, 1)
        self.convs = nn.ModuleList(
            layers.conv2d(c_in, c_out, kernel_size=3, stride=s, padding=1)
            for c_in, c_out, s in zip(channels[:-1], channels[1:], strides, strict=True)
        )
        self.norms = nn.ModuleList(nn.GroupNorm(group_norm, c) if group_norm else nn.Identity() for c in filters)
        self.fc1 = layers.linear(filters[-1] * 2 * 2, fc_hidden)
        self.fc2 = layers.linear(fc_hidden, fc_hidden)
        self.fc3 = layers.linear(fc_hidden, num_classes)

    def layers(self) -> list[nn.Conv2d | nn.Linear]:
        return [*cast(list[nn.Conv2d], list(self.convs)), self.fc1, self.fc2, self.fc3]

    def reset_parameters(self, generator: torch.Generator, *, he: bool = False) -> None:
        """Draw every weight and bias from ``generator`` only (never the global RNG).

        Default: uniform in ±1/√fan_in for weights and biases (torch's default scheme, as the paper's
        code). ``he=True``: weights normal with std √(2/fan_in) (He et al.), biases zero, which lets a
        network without BatchNorm leave its initial plateau in far fewer steps (reduced presets).
        """
        with torch.no_grad():
            for layer in self.layers():
                fan_in = layer.weight[0].numel()
                if he:
                    draw = torch.empty(layer.weight.shape).normal_(
                        0.0, float(np.sqrt(2.0 / fan_in)), generator=generator
                    )
                    layer.weight.copy_(draw)
                    if layer.bias is not None:
                        layer.bias.zero_()
                    continue
                bound = 1.0 / float(np.sqrt(fan_in))
                for param in (layer.weight, *([] if layer.bias is None else [layer.bias])):
                    draw = torch.empty(param.shape).uniform_(-bound, bound, generator=generator)
                    param.copy_(draw)

    def forward(self, x: torch.Tensor, rates: torch.Tensor | None = None) -> torch.Tensor:
        if rates is not None and rates.shape != (x.shape[0], 7):
            raise ValueError(f"AlexNet: expected rates of shape ({x.shape[0]}, 7), got {tuple(rates.shape)}")
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            x = F.relu(norm(conv(x)))
            if i in POOL_AFTER:
                x = F.max_pool2d(x, kernel_size=2)
            if rates is not None:
                x = channel_dropout(x, rates[:, i], self.training)
        x = x.flatten(1)  # (N, filters[-1]·2·2)
        if rates is not None:
            x = element_dropout(x, rates[:, 5], self.training)
        x = F.relu(self.fc1(x))
        if rates is not None:
            x = element_dropout(x, rates[:, 6], self.training)
        x = F.relu(self.fc2(x))
        logits: torch.Tensor = self.fc3(x)
        return logits


@register_task("cifar_alexnet")
class CifarAlexNet(Task):
    """AlexNet on CIFAR-10 (see the module docstring)."""

    # The dropouts (relaxed masks), input scale noise and the colour jitter ranges (factors drawn by
    # reparameterisation); not cutout's integer length and holes.
    differentiable_hparams: ClassVar[tuple[str, ...]] = (
        *CONV_DROPOUTS,
        *FC_DROPOUTS,
        "dropout_in",
        "input_scale",
        *JITTERS,
    )
    space = SearchSpace(
        {
            **{name: Float(0.0, 0.9, default=0.0) for name in (*CONV_DROPOUTS, *FC_DROPOUTS)},
            "dropout_in": Float(0.0, 0.9, default=0.0),
            "input_scale": Float(0.0, 0.3, default=0.0),
            "hue": Float(0.0, 0.5, default=0.0, kind=HParamKind.AUGMENTATION),
            "contrast": Float(0.0, 1.0, default=0.0, kind=HParamKind.AUGMENTATION),
            "saturation": Float(0.0, 1.0, default=0.0, kind=HParamKind.AUGMENTATION),
            "brightness": Float(0.0, 1.0, default=0.0, kind=HParamKind.AUGMENTATION),
            "cutout_length": Int(0, 24, default=0, kind=HParamKind.AUGMENTATION),
            "cutout_holes": Int(0, 4, default=0, kind=HParamKind.AUGMENTATION),
        }
    )
    presets: ClassVar[Mapping[str, Preset]] = {
        "smoke": CifarPreset(
            "smoke",
            epochs=2,
            batch_size=64,
            width=0.125,
            fc_hidden=64,
            lr=0.03,
            n_train=256,
            n_val=256,
            n_test=256,
            eval_batch_size=256,
            he_init=True,
        ),
        "cpu": CifarPreset(
            "cpu",
            epochs=50,
            batch_size=128,
            width=0.5,
            fc_hidden=1024,
            lr=0.03,
            n_train=2560,
            n_val=2000,
            n_test=None,
            eval_batch_size=500,
            he_init=True,
        ),
        # The official baseline (cnn/train_basic.py) stops after 75 epochs without improvement and has no
        # cap; ours is 300 epochs.
        "paper": CifarPreset("paper", epochs=300, batch_size=128, needs_cuda=True, patience=75),
    }
    libraries = ("torchvision", "Pillow")
    preset: CifarPreset

    def __init__(self, preset: str, *, device: torch.device | str = "cpu", data_dir: Path | None = None) -> None:
        super().__init__(preset, device=device, data_dir=data_dir)
        mean = torch.tensor(CIFAR_MEAN, device=self.device)
        self._mean = mean.view(1, 3, 1, 1)
        self._std = torch.tensor(CIFAR_STD, device=self.device).view(1, 3, 1, 1)
        self._fill = mean  # cutout holes: the mean, i.e. zero after normalisation

    # ----------------------------------------------------------------------------------------------
    # Data
    def prepare(self) -> None:
        # Uncharged: decode (once per machine; cached) and read the arrays.
        self._splits = paper_split(load_cifar10(self.data_dir, download=True))

    def data_files(self) -> tuple[Path, ...]:
        return self._splits.files if hasattr(self, "_splits") else ()

    def load(self, seeds: RunSeeds) -> str:
        """Move the (fixed) splits to the device as uint8 ``(N, 3, 32, 32)``; ``seeds.data`` is not used."""
        if not hasattr(self, "_splits"):
            # Decoding in load() would charge a one-time cost to whichever run came first.
            raise TaskError("cifar_alexnet: call prepare() (uncharged) before load()")
        p = self.preset

        def to(xy: tuple[np.ndarray, np.ndarray], n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
            x, y = xy[0][:n], xy[1][:n]
            x_t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(self.device)
            return x_t, torch.from_numpy(np.ascontiguousarray(y)).to(self.device)

        s = self._splits
        self.train_xy, self.val_xy, self.test_xy = to(s.train, p.n_train), to(s.val, p.n_val), to(s.test, p.n_test)
        sizes = "/".join(str(len(xy[1])) for xy in (self.train_xy, self.val_xy, self.test_xy))
        return f"CIFAR-10 {s.source}; train/val/test {sizes} images"

    def train_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        return shuffled_batches(self.train_xy, self.preset.batch_size, generator)  # uint8 (B, 3, 32, 32), (B,)

    def eval_batches(self, split: Split) -> Iterator[Batch]:
        return sequential_batches(self.val_xy if split == "val" else self.test_xy, self.preset.eval_batch_size)

    # ----------------------------------------------------------------------------------------------
    # Model and objective
    def build_model(self, config: Config, generator: torch.Generator) -> nn.Module:
        return self.build_network(Layers(), generator)

    def build_network(self, layers: Layers, generator: torch.Generator) -> nn.Module:
        model = AlexNet(self.preset.filters, self.preset.fc_hidden, layers=layers, group_norm=self.preset.group_norm)
        model.reset_parameters(generator, he=self.preset.he_init)
        return model.to(self.device)

    def best_response_defaults(self) -> Mapping[str, Any]:
        """The paper's CIFAR settings: 5 warm-up epochs (1 at ``smoke``), Adam 3e-3 for λ and σ, σ starting
        at 0.5 (the official CNN code's ``perturb_scale``), and the official code's start values: every
        rate 0.05, cutout length 3 (its 4 on a 0–25 sigmoid, floored) and 1 hole (a cutout length with no
        hole would get no signal)."""
        rates = (
            *CONV_DROPOUTS,
            *FC_DROPOUTS,
            "dropout_in",
            "input_scale",
            "hue",
            "contrast",
            "saturation",
            "brightness",
        )
        return {
            "warmup_epochs": 1 if self.preset.name == "smoke" else 5,
            "hyper_lr": 3e-3,
            "sigma0": 0.5,
            "init": {**dict.fromkeys(rates, 0.05), "cutout_length": 3, "cutout_holes": 1},
        }

    def tuning_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        # Hyper-steps use clean validation batches of the training batch size, in a shuffled order.
        return shuffled_batches(self.val_xy, self.preset.batch_size, generator)

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        if self.preset.optimizer == "adam":
            return torch.optim.Adam(model.parameters(), lr=self.preset.lr)
        return torch.optim.SGD(model.parameters(), lr=self.preset.lr, momentum=self.preset.momentum)

    def clip_gradients(self, model: nn.Module) -> None:
        if self.preset.clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), self.preset.clip)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or ``[0, 1]`` float images ``(N, 3, H, W)`` → normalised float32."""
        x = images.float().div_(255.0) if images.dtype == torch.uint8 else images
        return (x - self._mean) / self._std

    def augment_inputs(self, images: torch.Tensor, hp: Mapping[str, torch.Tensor], training: bool) -> torch.Tensor:
        """Augmentation, normalisation, input scale noise and input dropout, with per-example values.

        Args:
            images: uint8 ``(N, 3, 32, 32)``.
            hp: every hyperparameter name of the space → ``(N,)`` tensor (cutout values integral).
            training: False returns the clean normalised images.

        Returns:
            float32 ``(N, 3, 32, 32)``, the network's input.
        """
        if not training:
            return self.normalise(images)
        x = images.float().div_(255.0)  # (N, 3, 32, 32) in [0, 1]
        x = color_jitter(x, *(hp[k] for k in JITTERS))
        bound = int(self.space["cutout_holes"].high)  # static: no device sync to size the masks
        x = cutout(x, hp["cutout_length"].long(), hp["cutout_holes"].long(), fill=self._fill, max_holes=bound)
        x = self.normalise(x)
        x = scale_noise(x, hp["input_scale"], training)
        return element_dropout(x, hp["dropout_in"], training)

    def regularised_loss(self, model: nn.Module, batch: Batch, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        images, labels = batch
        x = self.augment_inputs(images, values, model.training)
        rates = torch.stack([values[k] for k in (*CONV_DROPOUTS, *FC_DROPOUTS)], dim=1)  # (N, 7)
        return F.cross_entropy(linearised(model(x, rates)), labels)

    def eval_sums(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int, dict[str, torch.Tensor]]:
        images, labels = batch
        logits = model(self.normalise(images))  # no rates: no dropout, and never augmented
        loss = F.cross_entropy(logits, labels, reduction="sum")
        correct = (logits.argmax(dim=1) == labels).sum()
        return loss, images.shape[0], {"accuracy": correct}
