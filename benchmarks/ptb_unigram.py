"""The best constant predictor on PTB: a unigram model of a preset's training tokens (add-one
smoothing over the 10,000-word vocabulary), scored like the task scores a model: mean cross-entropy
(nats per token) over the preset's validation tokens and over the whole test text.

A language model that does not beat this has learnt nothing beyond word frequencies; the ``cpu``
table's black-box incumbents are read against it in results/README.md.

    python benchmarks/ptb_unigram.py            # every preset; data from $HPOBENCH_STN_DATA
"""

from __future__ import annotations

import math

import torch

from hpobench_stn.datasets import resolve_data_root
from hpobench_stn.datasets.ptb import load_ptb
from hpobench_stn.tasks.ptb_lstm import PTBPreset, PTBTask


def cross_entropy(log_p: torch.Tensor, tokens: torch.Tensor) -> float:
    return float(-log_p[tokens].mean())


def main() -> None:
    corpus = load_ptb(resolve_data_root(None))
    vocab = len(corpus.vocab)
    print(f"uniform over {vocab} words: {math.log(vocab):.4f} nats")
    for name, preset in PTBTask.presets.items():
        assert isinstance(preset, PTBPreset)
        train = corpus.train[: preset.train_tokens] if preset.train_tokens is not None else corpus.train
        val = corpus.valid[: preset.val_tokens] if preset.val_tokens is not None else corpus.valid
        counts = torch.bincount(train, minlength=vocab).double() + 1.0  # add-one smoothing
        log_p = (counts / counts.sum()).log()
        print(
            f"{name}: unigram of {train.numel()} training tokens: validation ({val.numel()} tokens) "
            f"{cross_entropy(log_p, val):.4f}, test ({corpus.test.numel()} tokens) "
            f"{cross_entropy(log_p, corpus.test):.4f} nats"
        )


if __name__ == "__main__":
    main()
