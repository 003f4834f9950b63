"""ptb_lstm and its dataset: real data, bad data, the regularisers it uses, clean evaluation, the harness.

Tests that read PTB are skipped when the shared data (``../shared/data/ptb`` or ``$HPOBENCH_STN_DATA``)
is absent.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import ClassVar, cast

import pytest
import torch
from torch import nn

import hpobench_stn.tasks.ptb_lstm  # noqa: F401  (registers the task)
from hpobench_stn import Budget, RunSeeds, SpaceError, TaskError, get_task
from hpobench_stn.datasets import DataError, md5sum
from hpobench_stn.datasets import ptb as ptb_data
from hpobench_stn.harness.runner import RunSpec, execute
from hpobench_stn.harness.task import Preset
from hpobench_stn.nn import hyper_input_of
from hpobench_stn.nn.regularizers import drop_connect, embedding_dropout, locked_dropout
from hpobench_stn.tasks.ptb_lstm import REGULARISED, STREAMS, PTBPreset, PTBTask, Rates, TiedLSTM, windows

_ENV = os.environ.get("HPOBENCH_STN_DATA")
DATA = Path(_ENV) if _ENV else Path(__file__).resolve().parents[2] / "shared" / "data"
needs_ptb = pytest.mark.skipif(
    not (DATA / "ptb" / "ptb.train.txt").is_file(),
    reason=f"PTB not found under {DATA} (set $HPOBENCH_STN_DATA to a folder holding ptb/)",
)


@pytest.fixture(scope="module")
def smoke() -> PTBTask:
    """The smoke preset on CPU, prepared and loaded with seed 0."""
    if not (DATA / "ptb" / "ptb.train.txt").is_file():
        pytest.skip(f"PTB not found under {DATA}")
    torch.set_num_threads(1)
    task = PTBTask("smoke", device="cpu", data_dir=DATA)
    task.prepare()
    task.load(RunSeeds.from_master(0))
    return task


def config(task: PTBTask, **values: float) -> dict[str, float | int]:
    return task.space.validate({**task.space.default(), **values})


def lstm_weight(module: nn.LSTM) -> torch.Tensor:
    weight = module.weight_hh_l0
    assert isinstance(weight, torch.Tensor)
    return weight


def copy_ptb(root: Path) -> Path:
    (root / "ptb").mkdir(parents=True)
    for name, _ in ptb_data.PTB_FILES.values():
        shutil.copyfile(DATA / "ptb" / name, root / "ptb" / name)
        (root / "ptb" / name).chmod(0o644)
    return root


# --------------------------------------------------------------------------------------------------
# Data
@needs_ptb
def test_real_data_has_published_token_counts_and_vocabulary() -> None:
    corpus = ptb_data.load_ptb(DATA)
    assert len(corpus.vocab) == 10_000
    assert "<eos>" in corpus.vocab
    assert (corpus.train.numel(), corpus.valid.numel(), corpus.test.numel()) == (929_589, 73_760, 82_430)
    assert corpus.train.dtype == torch.int64
    assert int(corpus.train.max()) == 9_999  # every type occurs in train


def test_capped_vocabulary_keeps_the_most_frequent_types_and_maps_the_rest_to_unk() -> None:
    vocab = ("<unk>", "a", "b", "c", "d", "<eos>")
    # Counts in train: a 4, b 1, c 3, d 1, <eos> 2, <unk> 1; b and d tie (b first).
    train = torch.tensor([1, 1, 1, 1, 3, 3, 3, 5, 5, 2, 4, 0])
    corpus = ptb_data.PTBCorpus(Path("."), vocab, train, torch.tensor([4, 2, 1, 0]), torch.tensor([3, 5]))
    small = corpus.capped(4)
    # a (4), c (3), <eos> (2) kept, in order of count; <unk> joins them at its own rank (count 1, first).
    assert small.vocab == ("a", "c", "<eos>", "<unk>")
    unk = small.vocab.index("<unk>")
    assert small.train.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, unk, unk, unk]
    assert small.valid.tolist() == [unk, unk, 0, unk]  # d and b are rare: <unk>
    assert small.test.tolist() == [1, 2]
    assert corpus.capped(6) is corpus
    with pytest.raises(ValueError, match=r"vocabulary size must be an integer in \[2, 6\], got 7"):
        corpus.capped(7)


@needs_ptb
def test_a_capped_preset_scores_its_unigram_on_the_capped_tokens() -> None:
    class Capped(PTBTask):
        presets: ClassVar[Mapping[str, Preset]] = {
            "smoke": replace(cast(PTBPreset, PTBTask.presets["smoke"]), vocab=500)
        }

    task = Capped("smoke", device="cpu", data_dir=DATA)
    task.prepare()
    task.load(RunSeeds.from_master(0))
    assert task.vocab_size == 500
    assert int(task.train_data.max()) < 500
    train, val = task._tokens
    counts = torch.bincount(train, minlength=500).double() + 1.0
    expected = float(-(counts / counts.sum()).log()[val].mean())
    assert task.unigram_loss() == pytest.approx(expected)
    assert task.unigram_loss() < math.log(500)  # word frequencies beat the uniform guess


def test_preset_rejects_an_unknown_optimizer() -> None:
    with pytest.raises(TaskError, match=r"optimizer must be 'sgd' or 'adam', got 'rmsprop'"):
        replace(cast(PTBPreset, PTBTask.presets["smoke"]), optimizer="rmsprop")


@needs_ptb
def test_md5_mismatch_names_file_expected_and_actual(tmp_path: Path) -> None:
    root = copy_ptb(tmp_path)
    with (root / "ptb" / "ptb.valid.txt").open("ab") as fh:
        fh.write(b" extra\n")
    actual = md5sum(root / "ptb" / "ptb.valid.txt")
    with pytest.raises(DataError, match=rf"ptb\.valid\.txt.*md5 {actual}, expected aa0affc06ff7c36e977d7cd49e3839bf"):
        ptb_data.load_ptb(root)


def test_missing_files_offline_name_folder_and_expected_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, dest: Path) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(ptb_data, "_fetch", offline)
    with pytest.raises(DataError, match=r"ptb.*expected ptb\.train\.txt, ptb\.valid\.txt, ptb\.test\.txt") as info:
        ptb_data.load_ptb(tmp_path)
    assert str(tmp_path / "ptb") in str(info.value)
    assert not any((tmp_path / "ptb").iterdir())  # no partial download left behind
    with pytest.raises(DataError, match=r"expected ptb\.train\.txt, ptb\.valid\.txt, ptb\.test\.txt"):
        ptb_data.load_ptb(tmp_path, download=False)


def test_download_is_verified_before_it_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong_bytes(url: str, dest: Path) -> None:
        dest.write_bytes(b"not ptb\n")

    monkeypatch.setattr(ptb_data, "_fetch", wrong_bytes)
    with pytest.raises(DataError, match=r"downloaded ptb\.train\.txt .* expected f26c4b92c5fdc7b3f8c7cdcb991d8420"):
        ptb_data.load_ptb(tmp_path)
    assert not (tmp_path / "ptb" / "ptb.train.txt").exists()


def test_non_directory_root_is_refused(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(DataError, match="is not a directory"):
        ptb_data.load_ptb(not_a_dir)
    with pytest.raises(DataError, match="is not a directory"):
        PTBTask("smoke", data_dir=not_a_dir).prepare()


# --------------------------------------------------------------------------------------------------
# Presets and the space
def test_unknown_preset_and_paper_on_cpu_are_refused() -> None:
    with pytest.raises(TaskError, match=r"unknown preset 'huge' for task 'ptb_lstm'; known: smoke, cpu, paper"):
        PTBTask("huge")
    with pytest.raises(TaskError, match=r"preset 'paper' of task 'ptb_lstm' needs a CUDA device, got device 'cpu'"):
        PTBTask("paper", device="cpu")
    assert get_task("ptb_lstm") is PTBTask


def test_out_of_range_rate_is_refused() -> None:
    with pytest.raises(SpaceError, match="dropouto"):
        PTBTask.space.validate({**PTBTask.space.default(), "dropouto": 0.95})


def test_non_monotone_rule_divides_lr_by_four_only_when_validation_stalls() -> None:
    task = PTBTask("cpu")  # nonmono = 1
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=20.0)
    task.after_validation(opt, [5.0, 4.0])  # too few epochs
    task.after_validation(opt, [5.0, 4.0, 3.0])  # improving
    assert opt.param_groups[0]["lr"] == 20.0
    task.after_validation(opt, [5.0, 4.0, 4.5])  # worse than the best of epochs more than 1 ago (5.0)? no
    assert opt.param_groups[0]["lr"] == 20.0
    task.after_validation(opt, [4.0, 5.0, 4.5])  # worse than 4.0 from two epochs ago
    assert opt.param_groups[0]["lr"] == 5.0


# --------------------------------------------------------------------------------------------------
# The regularisers as this task uses them
def test_locked_dropout_shares_each_example_mask_over_time() -> None:
    torch.manual_seed(0)
    x = torch.ones(7, 4, 50)
    y = locked_dropout(x, torch.tensor([0.0, 0.3, 0.6, 0.9]), training=True)
    assert torch.equal(y, y[:1].expand_as(y))  # one mask per (example, unit), the same at every step
    assert torch.equal(y[:, 0], x[:, 0])  # rate 0 is the identity


def test_embedding_dropout_drops_every_occurrence_of_a_type_within_an_example() -> None:
    torch.manual_seed(0)
    weight = torch.randn(5, 3)
    tokens = torch.tensor([[0, 1], [1, 1], [0, 2], [0, 1]] * 5)  # (20, 2): types repeat within each column
    emb = embedding_dropout(tokens, weight, torch.tensor([0.5, 0.5]), training=True)
    for n in range(2):
        for t in tokens[:, n].unique():
            rows = emb[tokens[:, n] == t, n]
            assert torch.equal(rows, rows[:1].expand_as(rows))  # all occurrences kept, or all dropped
    clean = embedding_dropout(tokens, weight, torch.tensor([0.5, 0.5]), training=False)
    assert torch.equal(clean, weight[tokens])


def test_empirical_drop_fractions_follow_per_example_rates() -> None:
    torch.manual_seed(0)
    rates = torch.tensor([0.0, 0.2, 0.5, 0.8])
    locked = locked_dropout(torch.ones(3, 4, 20_000), rates, training=True)
    assert torch.allclose((locked[0] == 0).float().mean(dim=1), rates, atol=0.02)
    tokens = torch.arange(10_000).repeat(2, 4, 1)[0].t()  # (10000, 4): every type once per example
    emb = embedding_dropout(tokens.contiguous(), torch.ones(10_000, 1), rates, training=True)
    assert torch.allclose((emb[:, :, 0] == 0).float().mean(dim=0), rates, atol=0.02)


def test_zero_rates_and_eval_mode_are_the_identity(smoke: PTBTask) -> None:
    model = smoke.build_model(config(smoke), torch.Generator().manual_seed(0))
    inputs = next(iter(smoke.train_batches(torch.Generator())))[0]
    zeros = smoke.rates(config(smoke), inputs.shape[1], torch.zeros(1))
    high = smoke.rates(config(smoke, **REGULARISED), inputs.shape[1], torch.zeros(1))
    lm = model
    assert isinstance(lm, TiedLSTM)
    lm.train()
    train_zero, _ = lm(inputs, zeros)
    lm.eval()
    eval_high, _ = lm(inputs, high)
    assert torch.allclose(train_zero, eval_high)


def test_drop_connect_masks_w_hh_in_training_only(smoke: PTBTask) -> None:
    lm = smoke.build_model(config(smoke), torch.Generator().manual_seed(0))
    assert isinstance(lm, TiedLSTM)
    inputs = next(iter(smoke.train_batches(torch.Generator())))[0]
    n = inputs.shape[1]
    wdrop = smoke.rates(config(smoke, wdrop=0.5), n, torch.zeros(1))
    plain = smoke.rates(config(smoke), n, torch.zeros(1))
    lm.train()
    reference, _ = lm(inputs, plain)
    torch.manual_seed(1)
    dropped, _ = lm(inputs, wdrop)
    assert not torch.allclose(dropped, reference)
    # The same result as nn.LSTM run with the masked W_hh drawn from the same seed.
    copies = [nn.LSTM(m.input_size, m.hidden_size) for m in lm.lstms if isinstance(m, nn.LSTM)]  # draws: before
    torch.manual_seed(1)  # the model's draws in order: embedding, input, layer 0, between layers, layer 1
    zero = torch.zeros(n)
    x = locked_dropout(embedding_dropout(inputs, lm.embedding.weight, zero, True), zero, True)
    for i, (module, copy) in enumerate(zip(lm.lstms, copies, strict=True)):
        assert isinstance(module, nn.LSTM)
        if i > 0:
            x = locked_dropout(x, zero, True)
        masked = drop_connect(lstm_weight(module), torch.full((n,), 0.5), True)
        copy.load_state_dict({**module.state_dict(), "weight_hh_l0": masked})
        x, _ = copy(x)
    torch.testing.assert_close(dropped, x)
    lm.eval()
    clean, _ = lm(inputs, wdrop)
    torch.testing.assert_close(clean, reference)
    lm.train()
    rows = Rates(*(r if i != 4 else torch.linspace(0.1, 0.5, n) for i, r in enumerate(plain)))
    with pytest.raises(TaskError, match="per-example DropConnect rates differ"):
        lm(inputs, rows)


# --------------------------------------------------------------------------------------------------
# Model, clean evaluation, hidden state
def test_weights_come_from_the_generator_only(smoke: PTBTask) -> None:
    a = smoke.build_model(config(smoke), torch.Generator().manual_seed(3))
    torch.manual_seed(12345)  # moving the global stream must not matter
    b = smoke.build_model(config(smoke, **REGULARISED), torch.Generator().manual_seed(3))
    c = smoke.build_model(config(smoke), torch.Generator().manual_seed(4))
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert not torch.equal(a.state_dict()["embedding.weight"], c.state_dict()["embedding.weight"])
    assert float(a.state_dict()["embedding.weight"].abs().max()) <= 0.1


def test_evaluation_is_clean_repeatable_and_resets_state(smoke: PTBTask) -> None:
    model = smoke.build_model(config(smoke), torch.Generator().manual_seed(0))
    first = smoke.evaluate(model, "val")
    assert first is not None
    assert first.n == 990  # 10 columns of 100 tokens: 99 targets each
    assert first.metrics["perplexity"] == pytest.approx(math.exp(first.loss))
    assert smoke.evaluate(model, "test") is not None  # leaves a different eval state behind
    # A training step with heavy regularisation in between changes neither the weights' evaluation
    # (no step taken) nor anything evaluate reads.
    model.train()
    batch = next(iter(smoke.train_batches(torch.Generator())))
    smoke.training_loss(model, batch, config(smoke, **REGULARISED)).backward()
    assert smoke.evaluate(model, "val") == first


def test_hidden_state_carries_across_windows_and_training_state_survives_evaluation(smoke: PTBTask) -> None:
    model = smoke.build_model(config(smoke), torch.Generator().manual_seed(0))
    assert isinstance(model, TiedLSTM)
    model.eval()
    first, second = list(smoke.eval_batches("val"))[:2]
    with torch.no_grad():
        smoke.eval_sums(model, first)
        carried, _, _ = smoke.eval_sums(model, second)
        fresh, _, _ = smoke.eval_sums(model, (second[0], second[1], torch.tensor(0), second[3]))
    assert not torch.equal(carried, fresh)  # the first window's state reached the second
    model.train()
    smoke.training_loss(model, next(iter(smoke.train_batches(torch.Generator()))), config(smoke))
    train_state = [t.clone() for pair in model.states["train"] for t in pair]
    smoke.evaluate(model, "val")
    assert all(
        torch.equal(a, b) for a, b in zip(train_state, (t for p in model.states["train"] for t in p), strict=True)
    )


def test_each_pass_keeps_its_own_hidden_state(smoke: PTBTask) -> None:
    """A tuning window continues the tuning pass's state, whatever validation or test ran in between:
    the test text cannot reach a hyper-step (it would steer STN)."""
    model = smoke.build_model(config(smoke), torch.Generator().manual_seed(0))
    model.eval()
    first, second = list(smoke.tuning_batches(torch.Generator()))[:2]
    assert first[0].shape[1] == smoke.preset.batch_size  # the validation text at the training width
    with torch.no_grad():
        smoke.eval_sums(model, first)
        undisturbed, _, _ = smoke.eval_sums(model, second)
        smoke.eval_sums(model, first)
        smoke.evaluate(model, "test")
        smoke.evaluate(model, "val")
        after_test, _, _ = smoke.eval_sums(model, second)
    assert torch.equal(after_test, undisturbed)


def test_windows_name_their_stream() -> None:
    data = torch.arange(40).view(10, 4)
    streams = {int(w[3]) for w in windows(data, 3, "test")}
    assert streams == {STREAMS.index("test")}
    with pytest.raises(TaskError, match=r"ptb_lstm: stream must be one of train, val, test, tune, got 'eval'"):
        next(windows(data, 3, "eval"))


# --------------------------------------------------------------------------------------------------
# Through the harness
@needs_ptb
@pytest.mark.parametrize("method", ["grid", "random", "skopt_gp", "optuna_tpe"])
def test_smoke_run_with_every_black_box_method(method: str, tmp_path: Path) -> None:
    outcome = execute(RunSpec("ptb_lstm", method, "smoke", 0, Budget(4.0)), tmp_path, device="cpu", data_dir=DATA)
    final = json.loads((outcome.run_dir / "final.json").read_text())
    assert final["n_complete"] >= 1
    assert final["incumbent_config"] is not None
    assert math.isfinite(final["incumbent_test_loss"])
    assert "md5 verified" in final["meta"]["data_source"]
    # Provenance: the files relative to the data root, each with the sha256 of its bytes; no machine path.
    assert str(DATA) not in json.dumps(final)
    assert str(DATA.resolve()) not in json.dumps(final)
    assert [(f["path"], f["sha256"]) for f in final["meta"]["data_files"]] == [
        (f"ptb/{name}", hashlib.sha256((DATA / "ptb" / name).read_bytes()).hexdigest())
        for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")
    ]


def test_hyper_lstm_refuses_differing_per_example_drop_connect_rates(smoke: PTBTask) -> None:
    """The STN model takes one DropConnect mask per batch too; differing rows name the per-batch rule."""
    lm = smoke.build_hyper_model(len(smoke.space), torch.Generator().manual_seed(0))
    inputs = next(iter(smoke.train_batches(torch.Generator())))[0]
    n = inputs.shape[1]
    hyper_input_of(lm).set(torch.rand(len(smoke.space)))
    plain = smoke.rates(config(smoke), n, torch.zeros(1))
    rows = Rates(*(r if i != 4 else torch.linspace(0.1, 0.5, n) for i, r in enumerate(plain)))
    lm.train()
    with pytest.raises(TaskError, match="must perturb 'wdrop' per batch"):
        lm(inputs, rows)


def test_unigram_loss_before_load_is_refused() -> None:
    with pytest.raises(TaskError, match=r"ptb_lstm: call load\(\) before unigram_loss\(\)"):
        PTBTask("smoke", device="cpu", data_dir=DATA).unigram_loss()
