"""Task variants for ``benchmarks/stn_recipe.py`` (a ``--plugin`` file): recipe choices that live in a
task, not in an option of ``stn``."""

from __future__ import annotations

from hpobench_stn import register_task
from hpobench_stn.tasks.ptb_lstm import PTBTask


@register_task("ptb_lstm_ab_per_batch")
class PTBAlphaBetaPerBatch(PTBTask):
    """``ptb_lstm`` with AR and TAR weights perturbed once per batch, as the official STN LSTM code does
    (there, ``alpha`` and ``beta`` are read from the first example's row)."""

    batch_level_hparams = ("wdrop", "alpha", "beta")
