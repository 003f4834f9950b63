"""Neural-network building blocks shared by the STN-family methods and the tasks.

* :mod:`.layers`: hyper-layers (``HyperLinear``, ``HyperConv2d``, ``HyperEmbedding``), the shared
  ``HyperInput``, and ``weight_sq_norm``;
* :mod:`.lstm`: the one-layer ``HyperLSTM`` with its hand-written backpropagation through time;
* :mod:`.factory`: the layer factories ``Layers`` (plain torch layers) and ``HyperLayers``, and the
  functions that look at a whole model (``init_hyper_path``, ``hyper_input_of``, ...);
* :mod:`.linearize`: Delta-STN's linearised response (``linearise``, and ``linearised``, which a task's
  training loss applies to the network outputs it reads);
* :mod:`.hparams`: hyperparameters as tensors (``HParams``: projections, perturbations, entropy);
* :mod:`.regularizers` and :mod:`.augment`: per-example regularisers and batched augmentations, so a
  baseline and its STN model share one training loss.

This package re-exports the hyper-layer API (``from hpobench_stn.nn import HyperLinear, Layers``);
regularisers and augmentations are imported from their modules.

May import: :mod:`hpobench_stn.foundation` (``hparams`` reads the search space), torch, numpy.
"""

from .factory import (
    HyperLayers,
    Layers,
    elementary_parameter_count,
    hyper_input_of,
    hyper_modules,
    init_hyper_path,
)
from .hparams import HParams, Perturbed
from .layers import (
    HyperConv2d,
    HyperEmbedding,
    HyperInput,
    HyperLinear,
    HyperModule,
    is_hyper_path,
    weight_sq_norm,
)
from .linearize import check_linearised, is_dual, linearise, linearised
from .lstm import HyperLSTM

__all__ = [
    "HParams",
    "HyperConv2d",
    "HyperEmbedding",
    "HyperInput",
    "HyperLSTM",
    "HyperLayers",
    "HyperLinear",
    "HyperModule",
    "Layers",
    "Perturbed",
    "check_linearised",
    "elementary_parameter_count",
    "hyper_input_of",
    "hyper_modules",
    "init_hyper_path",
    "is_dual",
    "is_hyper_path",
    "linearise",
    "linearised",
    "weight_sq_norm",
]
