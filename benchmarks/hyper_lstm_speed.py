"""How much does the STN hyper-LSTM cost against a fused ``nn.LSTM``, and what does our design save?

Measures the median wall time of one forward + backward pass (loss = sum of the outputs) of a 2-layer
LSTM stack, one layer per module, for three implementations:

* ``nn.LSTM``: PyTorch's fused kernel (cuDNN on CUDA), the baseline model's layer;
* ``HyperLSTM``: :class:`hpobench_stn.nn.HyperLSTM` (input projection of all time steps hoisted out of
  the loop, one fused recurrent product per step), ``h`` random ``(N, 7)``, gates from
  ``reset_hyper_path(gen, 0.01)``;
* original: the official STN code's design, written out here: a cell with two hyper-linear modules
  ``i2h`` and ``h2h`` that each do an elementary product, a hyper product and their own gate product,
  called once per time step in a Python loop (nothing hoisted).

Sizes: ``cpu`` (2×128 units, BPTT 35, batch 10), ``ref`` (2×200, BPTT 35, batch 20, a reference point) and
``paper`` (2×650, BPTT 70, batch 40). Two warm-up passes precede the timed ones; the three take turns within each
repetition (so load from other processes falls on all alike); on CUDA the device is synchronised before
each clock read. Printed: the median over repetitions and, as a check on a shared machine where other
processes can stall a pass many times over, the minimum.

Usage: ``python benchmarks/hyper_lstm_speed.py [--threads 2] [--device cpu|cuda] [--reps 5]
[--sizes cpu ref paper]``. The printed table goes into the issue note; no result is recorded here.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hpobench_stn.nn import HyperLSTM

N_HPARAMS = 7  # columns of h, as for the PTB task's hyperparameters


@dataclass(frozen=True)
class Size:
    layers: int
    hidden: int  # units per layer (= input size of each layer)
    bptt: int  # time steps per pass
    batch: int


SIZES = {
    "cpu": Size(layers=2, hidden=128, bptt=35, batch=10),
    "ref": Size(layers=2, hidden=200, bptt=35, batch=20),
    "paper": Size(layers=2, hidden=650, bptt=70, batch=40),
}


class OriginalHyperLinear(nn.Module):
    """The STN code's hyper-linear: ``W_e·x + b_e + s_w ⊙ (W_h·x) + s_b ⊙ b_h`` as three separate products."""

    def __init__(self, in_features: int, out_features: int, n_hparams: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)

        def uniform(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))

        self.out_features = out_features
        self.weight, self.bias = uniform(out_features, in_features), uniform(out_features)
        self.hyper_weight, self.hyper_bias = uniform(out_features, in_features), uniform(out_features)
        self.gate = nn.Linear(n_hparams, 2 * out_features, bias=False)
        nn.init.normal_(self.gate.weight, std=0.01)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight, self.bias)  # (N, out)
        scalars: torch.Tensor = self.gate(h)  # (N, 2·out), recomputed at every call, i.e. every time step
        s_w, s_b = scalars[:, : self.out_features], scalars[:, self.out_features :]
        return out + s_w * F.linear(x, self.hyper_weight) + s_b * self.hyper_bias


class OriginalHyperLSTMCell(nn.Module):
    """The STN code's hyper-LSTM layer: ``i2h`` and ``h2h`` hyper-linears called once per time step."""

    def __init__(self, input_size: int, hidden_size: int, n_hparams: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.i2h = OriginalHyperLinear(input_size, 4 * hidden_size, n_hparams)
        self.h2h = OriginalHyperLinear(hidden_size, 4 * hidden_size, n_hparams)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        hid = self.hidden_size
        h_t = x.new_zeros(x.shape[1], hid)
        c_t = x.new_zeros(x.shape[1], hid)
        outputs = []
        for t in range(x.shape[0]):
            pre = self.i2h(x[t], h) + self.h2h(h_t, h)  # (N, 4H)
            sig = torch.sigmoid(pre[:, : 3 * hid])
            f, i, o = sig[:, :hid], sig[:, hid : 2 * hid], sig[:, 2 * hid :]
            c_t = f * c_t + i * torch.tanh(pre[:, 3 * hid :])
            h_t = o * torch.tanh(c_t)
            outputs.append(h_t)
        return torch.stack(outputs)


class Stack(nn.Module):
    """``size.layers`` one-layer LSTM modules applied in sequence; ``h`` goes to the hyper ones."""

    def __init__(self, kind: str, size: Size, generator: torch.Generator) -> None:
        super().__init__()
        self.kind = kind
        layers: list[nn.Module] = []
        for _ in range(size.layers):
            if kind == "nn.LSTM":
                layers.append(nn.LSTM(size.hidden, size.hidden))
            elif kind == "HyperLSTM":
                layer = HyperLSTM(size.hidden, size.hidden, N_HPARAMS)
                layer.reset_hyper_path(generator, 0.01)
                layers.append(layer)
            else:
                layers.append(OriginalHyperLSTMCell(size.hidden, size.hidden, N_HPARAMS))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            if isinstance(layer, nn.LSTM):
                x, _ = layer(x)
            elif isinstance(layer, HyperLSTM):
                x, _ = layer(x, h=h)
            else:
                x = layer(x, h)
        return x


KINDS = ("nn.LSTM", "HyperLSTM", "original")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_size(size: Size, device: torch.device, reps: int, warmup: int = 2) -> dict[str, list[float]]:
    """Wall times in ms of ``reps`` forward + backward passes for each implementation at ``size``.

    The implementations take turns within each repetition, so that load from other processes on a
    shared machine falls on all three alike rather than on whichever ran during a busy spell.
    """
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(size.bptt, size.batch, size.hidden, generator=gen).to(device)
    h = torch.randn(size.batch, N_HPARAMS, generator=gen).to(device)
    models = {kind: Stack(kind, size, gen).to(device) for kind in KINDS}

    def step(model: Stack) -> float:
        model.zero_grad(set_to_none=True)
        sync(device)
        start = time.perf_counter()
        model(x, h).sum().backward()
        sync(device)
        return 1e3 * (time.perf_counter() - start)

    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for rep in range(warmup + reps):
        for kind, model in models.items():
            elapsed = step(model)
            if rep >= warmup:
                times[kind].append(elapsed)
    return times


def print_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    """One line per size: the three times in ms and their ratios."""
    header = (
        f"{'size':<6} {'layers×units':>12} {'bptt':>4} {'batch':>5} {'nn.LSTM ms':>11} {'HyperLSTM ms':>13} "
        f"{'original ms':>12} {'Hyper/LSTM':>11} {'orig/LSTM':>10} {'orig/Hyper':>11}"
    )
    print(f"\n{title}")
    print(header)
    print("-" * len(header))
    for size_name, ms in rows.items():
        size = SIZES[size_name]
        plain, hyper, original = ms["nn.LSTM"], ms["HyperLSTM"], ms["original"]
        print(
            f"{size_name:<6} {f'{size.layers}×{size.hidden}':>12} {size.bptt:>4} {size.batch:>5} {plain:>11.1f} "
            f"{hyper:>13.1f} {original:>12.1f} {hyper / plain:>10.2f}x {original / plain:>9.2f}x "
            f"{original / hyper:>10.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU intra-op threads)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reps", type=int, default=5, help="timed passes per implementation and size")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"{name}; torch {torch.__version__}; {args.reps} forward+backward passes each after 2 warm-ups")
    times = {size_name: time_size(SIZES[size_name], device, args.reps) for size_name in args.sizes}
    print_table("median", {s: {k: statistics.median(v) for k, v in t.items()} for s, t in times.items()})
    print_table("min (least disturbed by other load)", {s: {k: min(v) for k, v in t.items()} for s, t in times.items()})


if __name__ == "__main__":
    main()
