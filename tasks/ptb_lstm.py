"""``ptb_lstm``: a 2-layer tied LSTM language model on Penn Treebank, the STN paper's LSTM task.

Data: PTB (Mikolov's preprocessing) from ``<data root>/ptb/``, md5-verified and tokenised once per process
by :mod:`hpobench_stn.datasets.ptb` (vocabulary 10,000; 929,589 / 73,760 / 82,430 tokens). The split is
fixed (the run's data seed is not used). The ``cpu`` and ``smoke`` presets train on the first
``train_tokens`` training tokens and validate on the first ``val_tokens`` validation tokens; test is
always the whole test file.

Model: tied embedding (``size``-d) → ``layers`` one-layer ``nn.LSTM`` modules (``size`` units) → decoder
(the embedding's transpose plus a bias). One ``nn.LSTM`` per layer, so locked dropout applies between
layers and DropConnect to each layer's ``W_hh``; the LSTM itself is the fused oneDNN / cuDNN kernel.
DropConnect draws one mask per batch (all rates equal in fixed-config training) and runs the kernel with
the masked ``W_hh`` (``torch._VF.lstm``, the call ``nn.LSTM.forward`` makes). Per-example DropConnect
rates would need one ``W_hh`` per example, which the kernels cannot take: the model raises
:class:`~hpobench_stn.TaskError`, and STN perturbs ``wdrop`` once per batch (``batch_level_hparams``).
The STN model (``build_network`` with hyper-layers) is the same architecture built from ``HyperEmbedding`` and
``HyperLSTM`` layers (:mod:`hpobench_stn.nn`); DropConnect masks its ``W_hh`` and ``U_hh`` alike.

Training: truncated BPTT as in the STN baseline (``lstm/train_basic.py``): the training tokens are cut
into ``batch_size`` contiguous columns and read in windows of a **fixed** ``bptt`` tokens (AWD-LSTM
draws a random window length around ``bptt``; the STN baseline does not, and a fixed length keeps
batches deterministic and every method's step cost equal). The hidden state carries over between windows
(detached) and resets at the start of every epoch. Order is the text's order, so ``train_batches``
ignores its generator. Loss = token cross-entropy + AR (``alpha``, on the dropped top-layer output) + TAR
(``beta``, on the undropped top-layer output). SGD at the preset's ``lr``; gradient norm clipped to
``clip``; after each validation the **non-monotone rule** of the STN baseline divides the learning rate
by 4 when the latest validation loss is worse than the best of those more than ``nonmono`` epochs old:
``len(prev) > nonmono and val[-1] > min(prev[:-nonmono])``, ``prev`` = the earlier validations. It can
fire again at later epochs (the STN baseline's rule; AWD-LSTM switches to ASGD once instead).

Evaluation (clean, full sequence): eval mode (no dropout, no AR/TAR), the split cut into
``eval_batch_size`` (validation) or ``test_batch_size`` (test) columns and read in windows of ``bptt``,
hidden state carried across the windows and reset at the start of every evaluation. The loss is the mean
token cross-entropy (nats); ``metrics["perplexity"]`` = ``exp(loss)``.

One hidden state per purpose (:data:`STREAMS`: training, validation, test, and a gray-box method's
tuning batches), each reset at the first window of its own pass. Every window carries the index of its
stream, set by the iterator that made it, so :meth:`PTBTask.eval_sums` always continues the state of
its own pass: a test evaluation cannot leave its hidden state for the next hyper-step (the test text
would then steer STN), and a periodic validation does not disturb training. :meth:`PTBTask.tuning_batches`
reads the validation text at the training width (``batch_size`` columns), as the official STN code's
hyper-steps do, in a stream of its own.

Hyperparameters (all regularisers, shared by every method, STN included; the default is the
unregularised model):

==============  ==========  ===============================================================================
name            range       meaning
==============  ==========  ===============================================================================
``dropouto``    [0, 0.9]    locked dropout on the top LSTM layer's output (before the decoder)
``dropouti``    [0, 0.9]    locked dropout on the embedding output (the first LSTM's input)
``dropouth``    [0, 0.9]    locked dropout between LSTM layers
``dropoute``    [0, 0.9]    embedding dropout: whole word types per sequence
``wdrop``       [0, 0.9]    DropConnect on every layer's hidden-to-hidden weights ``W_hh``
``alpha``       [0, 4]      AR weight: ``alpha · mean(h_dropped²)``
``beta``        [0, 2]      TAR weight: ``beta · mean((h_t+1 - h_t)²)``
==============  ==========  ===============================================================================

Why these bounds: the dropout rates cover everything AWD-LSTM and the STN paper use (AWD's PTB settings
are 0.4 / 0.65 / 0.3 / 0.1 / 0.5, STN's tuned rates stay below 0.8) with room above; rates past 0.9 leave
a 650-unit layer ~65 live units and only slow training, and the regularisers need rates < 1. Zero is
included so the unregularised model is in the space. ``alpha`` and ``beta`` go to twice AWD-LSTM's
defaults (2 and 1); larger values dominate the cross-entropy at the start of training.

Presets (``epochs`` is the per-trial cap for black-box methods):

* ``paper``: 2 × 650 units, 650-d tied embedding, BPTT 70, batch 40, SGD lr 30, clip 0.25, nonmono 5,
  validation batch 10, test batch 1 (as the STN baseline), patience 20 epochs as the STN baseline script
  (``lstm/train_basic.py``, which also stops when its learning rate falls below 3e-4), capped at 150
  epochs (ours: the script's cap is 8,000). Needs CUDA:
  constructing it on another device raises :class:`~hpobench_stn.TaskError` (one epoch of 2 × 650 on a
  2-core CPU takes over ten minutes). On an H100 (torch 2.11): 204k training tokens/s, 5.9 s per epoch.
* ``cpu``: 2 × 128 units, 128-d tied embedding, BPTT 35, batch 10, SGD lr 20, clip 0.25, nonmono 1, the
  first 60,000 training and 10,000 validation tokens, 6 epochs. Measured (``benchmarks/ptb_throughput.py``,
  seed 0, one thread, 2-core VM shared with other runs, so under contention): 60–67 s per trial
  (6,400 training tokens/s); unregularised best validation perplexity 517.5 (it overfits: in
  calibration it rose after epoch 5); ``dropouto=dropouti=0.4, dropouth=0.25, dropoute=0.1, wdrop=0.5,
  alpha=2, beta=1``: 458.7 (epoch 6, still falling). A 6-minute budget fits 5 trials, 10 minutes 8–9.
* ``smoke``: 2 × 16 units, BPTT 20, batch 10, 3,000 training and 1,000 validation tokens, 2 epochs,
  about a second per trial (for tests).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import nn

from hpobench_stn import (
    Batch,
    BudgetTimer,
    Config,
    EvalResult,
    Float,
    Preset,
    RunSeeds,
    SearchSpace,
    Split,
    Task,
    TaskError,
    register_task,
)
from hpobench_stn.datasets import resolve_data_root
from hpobench_stn.datasets.ptb import PTBCorpus, load_ptb
from hpobench_stn.nn import HyperLSTM, Layers, is_hyper_path, linearised
from hpobench_stn.nn.implicit import is_twice_differentiable, lstm_layer
from hpobench_stn.nn.regularizers import (
    activation_regularization,
    drop_connect,
    embedding_dropout_mask,
    locked_dropout,
    per_example,
    temporal_activation_regularization,
)

DROPOUTS = ("dropouto", "dropouti", "dropouth", "dropoute", "wdrop")
# One recurrent state per purpose; a window carries its stream's index (see windows()).
STREAMS = ("train", "val", "test", "tune")


@dataclass(frozen=True)
class PTBPreset(Preset):
    size: int = 650  # embedding size = LSTM units per layer (tied decoder)
    layers: int = 2
    bptt: int = 70  # tokens per truncated-BPTT window
    lr: float = 30.0  # SGD learning rate (fixed, not tuned)
    clip: float = 0.25  # gradient norm clipping
    nonmono: int = 5  # epochs of the non-monotone lr rule
    train_tokens: int | None = None  # use the first N training tokens (None: all)
    val_tokens: int | None = None  # validate on the first N validation tokens (None: all)
    eval_batch_size: int = 10  # columns for validation
    test_batch_size: int = 10  # columns for test
    vocab: int | None = None  # cap the vocabulary at this many types, the rest <unk> (PTBCorpus.capped); None: 10,000
    optimizer: str = "sgd"  # "sgd" (the paper's) or "adam"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.optimizer not in ("sgd", "adam"):
            raise TaskError(f"preset {self.name!r}: optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")


# The regularised reference config quoted in the docstring and docs/tasks.md (AWD-LSTM-like rates).
REGULARISED: Mapping[str, float] = {
    "dropouto": 0.4,
    "dropouti": 0.4,
    "dropouth": 0.25,
    "dropoute": 0.1,
    "wdrop": 0.5,
    "alpha": 2.0,
    "beta": 1.0,
}


class Rates(NamedTuple):
    """Per-example rates, each ``(N,)``."""

    dropouto: torch.Tensor
    dropouti: torch.Tensor
    dropouth: torch.Tensor
    dropoute: torch.Tensor
    wdrop: torch.Tensor


State = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (h, c), each (1, N, size)


class TiedLSTM(nn.Module):
    """Tied embedding → stacked one-layer LSTMs → decoder, with per-example regularisation rates.

    ``layers`` builds the embedding and the LSTMs: plain torch layers (the baseline: ``nn.Embedding``
    and the fused ``nn.LSTM`` kernel) or :class:`~hpobench_stn.nn.HyperLayers` (the STN model:
    ``HyperEmbedding`` and ``HyperLSTM``); the rest of the architecture is shared. The decoder is the
    elementary embedding's transpose plus a bias, in both.

    The recurrent state lives in the module, one per ``stream`` (:data:`STREAMS`), detached after every
    window (truncated BPTT); it is not part of ``state_dict``.

    Shape:
        tokens: ``(T, N)`` int64; rates: :class:`Rates` of ``(N,)``; output: the top layer's raw and
        dropped outputs, each ``(T, N, size)``.
    """

    def __init__(
        self,
        vocab: int,
        size: int,
        layers: int,
        device: torch.device | str | None = None,
        factory: Layers | None = None,
    ) -> None:
        super().__init__()
        factory = factory or Layers()
        self.embedding = factory.embedding(vocab, size).to(device)
        self.lstms = nn.ModuleList(factory.lstm(size, size).to(device) for _ in range(layers))
        self.decoder_bias = nn.Parameter(torch.empty(vocab, device=device))
        self.states: dict[str, State] = {}

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        """Embedding U(-0.1, 0.1), LSTM weights and biases U(-1/√H, 1/√H), decoder bias 0; drawn on the
        CPU from ``generator`` only, then copied to the parameters' device. Only elementary weights are
        drawn, in the same order for the baseline and the STN model (the hyper path is the method's)."""

        def uniform_(param: torch.Tensor, bound: float) -> None:
            draw = torch.empty(param.shape, dtype=param.dtype).uniform_(-bound, bound, generator=generator)
            param.copy_(draw)

        uniform_(self.embedding.weight, 0.1)
        for lstm in self.lstms:
            hidden = cast(nn.LSTM, lstm).hidden_size
            for name, param in lstm.named_parameters():
                if not is_hyper_path(name):  # weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0
                    uniform_(param, 1.0 / math.sqrt(hidden))
        self.decoder_bias.zero_()

    def extra_repr(self) -> str:
        vocab, size = self.embedding.weight.shape
        return f"vocab={vocab}, size={size}, layers={len(self.lstms)}, tied=True"

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """``(T, N, size)`` → logits ``(T, N, vocab)`` through the tied (elementary) embedding."""
        return F.linear(h, self.embedding.weight, self.decoder_bias)

    def forward(
        self, tokens: torch.Tensor, rates: Rates, stream: str = "train", reset: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        state = None if reset else self.states.get(stream)
        x = self.embedding(tokens)  # (T, N, size)
        if self.training:  # embedding dropout: whole word types per example
            x = x * embedding_dropout_mask(tokens, self.embedding.weight.shape[0], rates.dropoute).unsqueeze(-1)
        x = locked_dropout(x, rates.dropouti, self.training)
        new_state: State = []
        for i, module in enumerate(self.lstms):
            hidden = cast(nn.LSTM, module).hidden_size
            if state is None:
                zeros = x.new_zeros(1, x.shape[1], hidden)
                h0, c0 = zeros, zeros
            else:
                h0, c0 = state[i]
            x, h, c = self._run_layer(module, x, h0, c0, rates.wdrop)
            new_state.append((h.detach(), c.detach()))
            if i < len(self.lstms) - 1:
                x = locked_dropout(x, rates.dropouth, self.training)
        self.states[stream] = new_state
        return x, locked_dropout(x, rates.dropouto, self.training)

    def _run_layer(
        self, module: nn.Module, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, wdrop: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dropping = self.training and bool((wdrop > 0).any())
        if isinstance(module, HyperLSTM):
            mask = None
            if dropping:
                mask = drop_connect(torch.ones_like(module.weight_hh_l0), wdrop, True)  # scaled keep mask
                if mask.dim() != 2:
                    raise TaskError(_PER_EXAMPLE_WDROP)
            out, (h, c) = module(x, (h0, c0), hh_mask=mask)
            return out, h, c
        lstm = cast(nn.LSTM, module)
        twice = is_twice_differentiable()
        if not dropping and not twice:
            out, (h, c) = lstm(x, (h0, c0))  # the fused kernel with the module's own (flat) weights
            return out, h, c
        w_ih, w_hh, b_ih, b_hh = (cast(torch.Tensor, w) for w in lstm._flat_weights)
        if dropping:
            w_hh = drop_connect(w_hh, wdrop, self.training)
            if w_hh.dim() != 2:
                raise TaskError(_PER_EXAMPLE_WDROP)
        if twice:  # an implicit hypergradient differentiates this loss twice: no fused kernel can
            return lstm_layer(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        weights = [w_ih, w_hh, b_ih, b_hh]
        # What nn.LSTM.forward calls, with the masked W_hh: (input, hx, params, has_biases, num_layers,
        # dropout, train, bidirectional, batch_first) → (output, h_n, c_n).
        # On CUDA the masked weights are not in cuDNN's flat buffer, so cuDNN copies them once per call
        # (and warns once); measured: 204k tokens/s at the paper preset on an H100.
        out, h, c = torch._VF.lstm(x, (h0, c0), weights, True, 1, 0.0, True, False, False)
        return out, h, c


_PER_EXAMPLE_WDROP = (
    "ptb_lstm: per-example DropConnect rates differ within the batch; the LSTM takes one W_hh mask per "
    "batch. A best-response method must perturb 'wdrop' per batch (PTBTask.batch_level_hparams)"
)


def batchify(tokens: torch.Tensor, columns: int) -> torch.Tensor:
    """``(L,)`` → ``(L // columns, columns)``: ``columns`` contiguous streams, the remainder dropped."""
    rows = tokens.numel() // columns
    if rows < 2:
        raise TaskError(f"ptb_lstm: {tokens.numel()} tokens are too few for {columns} columns")
    return tokens[: rows * columns].view(columns, rows).t().contiguous()


def windows(data: torch.Tensor, bptt: int, stream: str) -> Iterator[Batch]:
    """Consecutive ``(inputs (T, N), targets (T, N), position, stream)`` windows of ``data`` ``(L, N)``.

    ``position`` is a CPU int64 scalar, the window's first row; 0 tells the model to reset the state of
    the window's stream. ``stream`` is a CPU int64 scalar, the index in :data:`STREAMS` of the pass the
    windows belong to.
    """
    if stream not in STREAMS:
        raise TaskError(f"ptb_lstm: stream must be one of {', '.join(STREAMS)}, got {stream!r}")
    index = torch.tensor(STREAMS.index(stream))
    for i in range(0, data.shape[0] - 1, bptt):
        seq = min(bptt, data.shape[0] - 1 - i)
        yield data[i : i + seq], data[i + 1 : i + 1 + seq], torch.tensor(i), index


@register_task("ptb_lstm")
class PTBTask(Task):
    """A tied 2-layer LSTM on Penn Treebank (see the module docstring)."""

    space = SearchSpace(
        {
            "dropouto": Float(0.0, 0.9, default=0.0),
            "dropouti": Float(0.0, 0.9, default=0.0),
            "dropouth": Float(0.0, 0.9, default=0.0),
            "dropoute": Float(0.0, 0.9, default=0.0),
            "wdrop": Float(0.0, 0.9, default=0.0),
            "alpha": Float(0.0, 4.0, default=0.0),
            "beta": Float(0.0, 2.0, default=0.0),
        }
    )
    presets: ClassVar[Mapping[str, Preset]] = {
        "smoke": PTBPreset(
            "smoke",
            epochs=2,
            batch_size=10,
            size=16,
            bptt=20,
            lr=20.0,
            nonmono=1,
            train_tokens=3_000,
            val_tokens=1_000,
            clip=0.25,
            eval_batch_size=10,
            test_batch_size=10,
        ),
        "cpu": PTBPreset(
            "cpu",
            epochs=6,
            batch_size=10,
            size=128,
            bptt=35,
            lr=20.0,
            nonmono=1,
            train_tokens=60_000,
            val_tokens=10_000,
            clip=0.25,
            eval_batch_size=10,
            test_batch_size=10,
        ),
        "paper": PTBPreset(
            "paper",
            epochs=150,
            batch_size=40,
            size=650,
            bptt=70,
            lr=30.0,
            nonmono=5,
            clip=0.25,
            eval_batch_size=10,
            test_batch_size=1,
            needs_cuda=True,
            patience=20,  # the official baseline's (lstm/train_basic.py)
        ),
    }
    preset: PTBPreset
    batch_level_hparams: ClassVar[tuple[str, ...]] = ("wdrop",)  # one DropConnect mask per batch (TiedLSTM._run_layer)
    # Every one: the dropouts with relaxed masks, AR and TAR as they are.
    differentiable_hparams: ClassVar[tuple[str, ...]] = (*DROPOUTS, "alpha", "beta")

    def __init__(self, preset: str, *, device: torch.device | str = "cpu", data_dir: Path | None = None) -> None:
        super().__init__(preset, device=device, data_dir=data_dir)
        self._corpus: PTBCorpus | None = None

    # ----------------------------------------------------------------------------------------------
    # Data
    def prepare(self) -> None:
        # Uncharged: md5 verification (and the download, when online and missing) and tokenisation.
        self._corpus = load_ptb(resolve_data_root(self.data_dir))

    def data_files(self) -> tuple[Path, ...]:
        return self._corpus.files if self._corpus is not None else ()

    def load(self, seeds: RunSeeds) -> str:
        if self._corpus is None:
            self.prepare()
        corpus = cast(PTBCorpus, self._corpus)
        p = self.preset
        if p.vocab is not None:
            corpus = corpus.capped(p.vocab)
        train = corpus.train[: p.train_tokens] if p.train_tokens is not None else corpus.train
        val = corpus.valid[: p.val_tokens] if p.val_tokens is not None else corpus.valid
        self.vocab_size = len(corpus.vocab)
        self._tokens = (train, val)  # the preset's training and validation tokens, for unigram_loss
        self.train_data = batchify(train, p.batch_size).to(self.device)  # (L, batch_size)
        self.val_data = batchify(val, p.eval_batch_size).to(self.device)
        self.tune_data = batchify(val, p.batch_size).to(self.device)  # the validation text at the training width
        self.test_data = batchify(corpus.test, p.test_batch_size).to(self.device)
        return (
            f"ptb/ptb.{{train,valid,test}}.txt (md5 verified); train tokens {train.numel()}, "
            f"val tokens {val.numel()}, test tokens {corpus.test.numel()}, vocabulary {self.vocab_size}"
        )

    def unigram_loss(self) -> float:
        """The best constant predictor's validation loss: an add-one unigram model of the preset's
        training tokens, scored on its validation tokens (nats per token). A model that does not beat
        it has learnt nothing beyond word frequencies. Needs :meth:`load`."""
        if not hasattr(self, "_tokens"):
            raise TaskError("ptb_lstm: call load() before unigram_loss()")
        train, val = self._tokens
        counts = torch.bincount(train, minlength=self.vocab_size).double() + 1.0  # add-one smoothing
        log_p = (counts / counts.sum()).log()
        return float(-log_p[val].mean())

    def train_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        # Language modelling keeps the text's order: the generator is not used.
        return windows(self.train_data, self.preset.bptt, "train")

    def eval_batches(self, split: Split) -> Iterator[Batch]:
        return windows(self.val_data if split == "val" else self.test_data, self.preset.bptt, split)

    def tuning_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        """One pass over the validation text at ``batch_size`` columns, in its own stream (the text's
        order: the generator is not used)."""
        return windows(self.tune_data, self.preset.bptt, "tune")

    # ----------------------------------------------------------------------------------------------
    # Model and objective
    def build_model(self, config: Config, generator: torch.Generator) -> nn.Module:
        return self.build_network(Layers(), generator)

    def build_network(self, layers: Layers, generator: torch.Generator) -> nn.Module:
        p = self.preset
        model = TiedLSTM(self.vocab_size, p.size, p.layers, device="meta", factory=layers)
        model = model.to_empty(device=self.device)
        model.reset_parameters(generator)
        return model

    def best_response_defaults(self) -> Mapping[str, Any]:
        """The official LSTM settings: about one warm-up epoch, Adam 0.01 for λ, hyper-steps at the
        current λ with σ fixed at 1 and no entropy term, every dropout rate starting at 0.05. α and β
        start at the margin rule's 0.2 and 0.1: the official 0.05 lies closer to their bound than the
        margin allows (docs/stn.md, differences)."""
        return {
            "warmup_epochs": 1,
            "hyper_lr": 0.01,
            "hyper_perturb": False,
            "sigma_fixed": 1.0,
            "init": dict.fromkeys(DROPOUTS, 0.05),
        }

    def carried_state(self, model: nn.Module) -> object:
        """Every stream's hidden state (tensors are replaced, never changed in place, so a shallow copy keeps them)."""
        return dict(cast(TiedLSTM, model).states)

    def restore_carried_state(self, model: nn.Module, state: object) -> None:
        cast(TiedLSTM, model).states = dict(cast(dict[str, State], state))

    def examples_in(self, batch: Batch) -> int:
        return int(batch[0].shape[1])  # (T, N) windows: one example per column

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        if self.preset.optimizer == "adam":
            return torch.optim.Adam(model.parameters(), lr=self.preset.lr)
        return torch.optim.SGD(model.parameters(), lr=self.preset.lr)

    def rates(self, config: Config, n: int, like: torch.Tensor) -> Rates:
        """A config's rates broadcast to ``(n,)`` (a gray-box method passes its own per-example rates)."""
        return Rates(*(per_example(float(config[k]), n, like) for k in DROPOUTS))

    def regularised_loss(self, model: nn.Module, batch: Batch, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        inputs, targets, position, stream = batch
        lm = cast(TiedLSTM, model)
        rates = Rates(*(values[k] for k in DROPOUTS))
        raw, dropped = lm(inputs, rates, STREAMS[int(stream)], int(position) == 0)
        # Delta-STN's linearisation stops at the LSTM's outputs: the decoder is linear in them and
        # uses only elementary weights, so decoding the linearised output linearises the logits.
        raw, dropped = linearised(raw), linearised(dropped)
        logits = lm.decode(dropped)  # (T, N, vocab)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))
        return (
            loss
            + activation_regularization(dropped, values["alpha"])
            + temporal_activation_regularization(raw, values["beta"])
        )

    def eval_sums(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int, dict[str, torch.Tensor]]:
        inputs, targets, position, stream = batch
        lm = cast(TiedLSTM, model)
        zeros = torch.zeros(inputs.shape[1], device=inputs.device)
        # Clean (all rates 0), continuing the hidden state of the batch's own pass (val, test or tune).
        raw, _ = lm(inputs, Rates(*([zeros] * len(DROPOUTS))), STREAMS[int(stream)], int(position) == 0)
        logits = lm.decode(raw)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum")
        return loss, targets.numel(), {}

    def evaluate(self, model: nn.Module, split: Split, timer: BudgetTimer | None = None) -> EvalResult | None:
        """:meth:`Task.evaluate`, plus ``metrics["perplexity"] = exp(loss)``."""
        result = super().evaluate(model, split, timer)
        if result is None:
            return None
        ppl = math.exp(result.loss) if result.loss < 700 else math.inf
        return EvalResult(result.loss, result.n, {**result.metrics, "perplexity": ppl})

    def clip_gradients(self, model: nn.Module) -> None:
        nn.utils.clip_grad_norm_(model.parameters(), self.preset.clip)

    def after_validation(self, optimizer: torch.optim.Optimizer, val_losses: list[float]) -> None:
        """The non-monotone rule: lr /= 4 when the latest loss is worse than the best ``nonmono`` epochs ago."""
        prev, latest = val_losses[:-1], val_losses[-1]
        nonmono = self.preset.nonmono
        if len(prev) > nonmono and latest > min(prev[:-nonmono]):
            for group in optimizer.param_groups:
                group["lr"] /= 4.0
