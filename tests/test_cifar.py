"""cifar_alexnet and its CIFAR-10 loader: real data (skipped when absent), errors, clean evaluation, the harness."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import hpobench_stn.tasks.cifar_alexnet  # noqa: F401  (registers the task)
from hpobench_stn import Budget, HParamKind, Int, RunSeeds, TaskError, get_task
from hpobench_stn.datasets import DataError
from hpobench_stn.datasets import cifar10 as cifar_module
from hpobench_stn.datasets.cifar10 import JPEG_NPZ, load_cifar10, paper_split
from hpobench_stn.harness.records import load_final
from hpobench_stn.harness.runner import RunSpec, execute
from hpobench_stn.tasks.cifar_alexnet import AlexNet, CifarAlexNet, CifarPreset


def _data_root() -> Path | None:
    env = os.environ.get("HPOBENCH_STN_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return root if (root / "cifar10").is_dir() else None


DATA = _data_root()
needs_data = pytest.mark.skipif(
    DATA is None, reason="CIFAR-10 not found: set $HPOBENCH_STN_DATA or provide ../shared/data/cifar10"
)


@pytest.fixture(scope="module")
def cifar() -> cifar_module.Cifar10:
    return load_cifar10(DATA)


@pytest.fixture(scope="module")
def smoke_task() -> CifarAlexNet:
    task = CifarAlexNet("smoke", device="cpu", data_dir=DATA)
    task.prepare()
    task.load(RunSeeds.from_master(0))
    return task


# ------------------------------------------------------------------------------------------------
# Data
@needs_data
def test_paper_split_sizes_and_label_counts(cifar: cifar_module.Cifar10) -> None:
    """40k/10k/10k as in the paper; 5,000 per class over the 50k training images, 1,000 per class in test."""
    assert np.bincount(cifar.y_train).tolist() == [5000] * 10
    splits = paper_split(cifar)
    assert [len(xy[0]) for xy in (splits.train, splits.val, splits.test)] == [40_000, 10_000, 10_000]
    assert splits.train[0].shape[1:] == (32, 32, 3)
    assert splits.train[0].dtype == np.uint8
    assert np.bincount(splits.test[1]).tolist() == [1000] * 10
    val_counts = [1014, 1014, 952, 1016, 997, 1025, 980, 977, 1003, 1022]  # of official images 40,000-49,999
    assert np.bincount(splits.val[1]).tolist() == val_counts
    assert (np.bincount(splits.train[1]) + val_counts).tolist() == [5000] * 10
    assert cifar.y_train[0] == 6
    assert cifar.y_test[0] == 3


@needs_data
def test_jpeg_decoding_matches_the_exact_subset_within_the_documented_error(cifar: cifar_module.Cifar10) -> None:
    """The JPEG copy is lossy: mean absolute error ~5.8/255 against the bit-exact subset (README)."""
    assert DATA is not None
    if "JPEG" not in cifar.source:
        pytest.skip("official batches in use: the JPEG decoder is not exercised")
    with np.load(DATA / "cifar10" / "cifar10_exact_subset.npz") as exact:
        idx = [0, 1, 2, 100, 3999]
        ref_train, ref_test = exact["x_train"][idx].astype(float), exact["x_test"][[0, 1, 999]].astype(float)
        assert exact["y_train"][idx].tolist() == cifar.y_train[idx].tolist()
    mae = np.abs(cifar.x_train[idx] - ref_train).mean()
    mae_test = np.abs(cifar.x_test[[0, 1, 999]] - ref_test).mean()
    assert 2.0 < mae < 10.0
    assert 2.0 < mae_test < 10.0
    assert np.abs(cifar.x_train[[1, 2, 100, 3999, 0]] - ref_train).mean() > 30  # a shifted order would be far off


def _tiny_jpeg_copy(folder: Path, n: int = 12) -> None:
    """A CIFAR-layout npz of JPEG bytes, with the real sizes (50k/10k) of cheap 1-pixel-colour images."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 20, 30)).save(buf, format="JPEG", quality=75)
    blob = np.frombuffer(buf.getvalue(), dtype=np.uint8)

    def split(count: int) -> tuple[np.ndarray, np.ndarray]:
        return np.tile(blob, count), np.arange(count + 1, dtype=np.int64) * len(blob)

    (train, off_train), (test, off_test) = split(50_000), split(10_000)
    folder.mkdir(parents=True)
    np.savez(
        folder / JPEG_NPZ,
        train_jpeg=train,
        train_offsets=off_train,
        y_train=np.arange(50_000) % 10,
        test_jpeg=test,
        test_offsets=off_test,
        y_test=np.arange(10_000) % 10,
    )


@pytest.mark.slow
def test_the_decoded_cache_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first load decodes and writes the cache; the second reads it and does not decode."""
    _tiny_jpeg_copy(tmp_path / "cifar10")
    calls: list[Path] = []
    decode = cifar_module.decode_jpeg_npz

    def counting(path: Path) -> tuple[np.ndarray, np.ndarray]:
        calls.append(path)
        return decode(path)

    monkeypatch.setattr(cifar_module, "decode_jpeg_npz", counting)
    monkeypatch.delenv("HPOBENCH_STN_CACHE", raising=False)  # no override: the cache goes next to the data
    first = load_cifar10(tmp_path)
    assert len(calls) == 1
    assert list((tmp_path / "cifar10" / "cache").glob("cifar10_jpeg_q75-*.npy"))
    second = load_cifar10(tmp_path)
    assert len(calls) == 1, "the second load decoded again"
    assert np.array_equal(first.x_test, second.x_test)
    assert first.x_train.shape == (50_000, 32, 32, 3)
    assert "JPEG q75" in second.source


def test_missing_files_and_a_non_directory_root_raise_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"expected cifar-10-batches-py/ .* or cifar10_jpeg_q75\.npz .* in .*cifar10"):
        load_cifar10(tmp_path, download=False)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(DataError, match="is not a directory"):
        load_cifar10(not_a_dir)
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / JPEG_NPZ).write_bytes(b"not an npz")
    with pytest.raises(DataError, match="is not a readable CIFAR-10 JPEG copy"):
        load_cifar10(tmp_path)
    shutil.rmtree(tmp_path / "cifar10")
    (tmp_path / "cifar10" / "cifar-10-batches-py").mkdir(parents=True)
    with pytest.raises(DataError, match="incomplete or corrupt"):
        load_cifar10(tmp_path)


# ------------------------------------------------------------------------------------------------
# Task definition
def test_space_has_the_fifteen_hyperparameters_with_their_kinds() -> None:
    space = CifarAlexNet.space
    assert len(space) == 15
    augmentations = {"hue", "contrast", "saturation", "brightness", "cutout_length", "cutout_holes"}
    for name in space:
        expected = HParamKind.AUGMENTATION if name in augmentations else HParamKind.REGULARIZER
        assert space[name].kind is expected, name
    assert space["cutout_length"] == Int(0, 24, default=0, kind=HParamKind.AUGMENTATION)
    assert space["cutout_holes"] == Int(0, 4, default=0, kind=HParamKind.AUGMENTATION)
    assert all(v == 0 for v in space.default().values())


def test_paper_preset_needs_cuda() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA present: the paper preset is allowed")
    with pytest.raises(TaskError, match="'paper' of task 'cifar_alexnet' needs a CUDA device"):
        get_task("cifar_alexnet")("paper", device="cpu")


def test_paper_network_has_the_published_shape() -> None:
    """Filters [64, 192, 384, 256, 256], fc 1024→4096→4096→10; the same init generator gives the same weights."""
    preset = CifarAlexNet.presets["paper"]
    assert isinstance(preset, CifarPreset)
    model = AlexNet(preset.filters, preset.fc_hidden)
    assert [c.weight.shape[0] for c in model.layers()[:5]] == [64, 192, 384, 256, 256]
    assert (model.fc1.in_features, model.fc2.in_features, model.fc3.out_features) == (1024, 4096, 10)
    small = [AlexNet((8, 24, 48, 32, 32), 64) for _ in range(2)]
    for m in small:
        torch.manual_seed(len(small))  # the global RNG must not matter
        m.reset_parameters(torch.Generator().manual_seed(5))
    for a, b in zip(small[0].parameters(), small[1].parameters(), strict=True):
        assert torch.equal(a, b)
    assert small[0](torch.zeros(2, 3, 32, 32)).shape == (2, 10)


# ------------------------------------------------------------------------------------------------
# Task on real data
@needs_data
def test_evaluation_is_clean_and_deterministic(smoke_task: CifarAlexNet) -> None:
    """eval_batches are the raw stored images; evaluating twice (after training steps with noise) is identical."""
    task = smoke_task
    val = torch.cat([b[0] for b in task.eval_batches("val")])
    assert torch.equal(val, task.val_xy[0])
    assert val.dtype == torch.uint8
    config = {k: (v.high if isinstance(v, Int) else 0.5 * v.high) for k, v in task.space.items()}
    model = task.build_model(config, torch.Generator().manual_seed(0))
    optimizer = task.make_optimizer(model)
    model.train()
    for batch in task.train_batches(torch.Generator().manual_seed(0)):
        loss = task.training_loss(model, batch, config)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    first, second = task.evaluate(model, "val"), task.evaluate(model, "val")
    assert first is not None
    assert first == second
    assert first.n == 256
    assert model.training  # evaluate restores the mode


@needs_data
def test_training_loss_augments_only_in_training_mode(smoke_task: CifarAlexNet) -> None:
    """With the model in eval mode training_loss sees clean inputs; in train mode the inputs are perturbed."""
    task = smoke_task
    images, _ = next(iter(task.train_batches(torch.Generator().manual_seed(0))))
    strong = {k: (v.high if isinstance(v, Int) else 0.5 * v.high) for k, v in task.space.items()}
    hp = {k: torch.full((len(images),), float(v)) for k, v in strong.items()}
    clean = task.normalise(images)
    assert torch.equal(task.augment_inputs(images, hp, training=False), clean)
    assert not torch.allclose(task.augment_inputs(images, hp, training=True), clean)
    zero = {k: torch.zeros(len(images)) for k in hp}
    assert torch.equal(task.augment_inputs(images, zero, training=True), clean)


@needs_data
def test_train_batches_cover_the_split_in_a_generator_drawn_order(smoke_task: CifarAlexNet) -> None:
    task = smoke_task
    a = [b[1] for b in task.train_batches(torch.Generator().manual_seed(1))]
    b = [b[1] for b in task.train_batches(torch.Generator().manual_seed(1))]
    c = [b[1] for b in task.train_batches(torch.Generator().manual_seed(2))]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    assert sorted(torch.cat(a).tolist()) == sorted(task.train_xy[1].tolist())


@needs_data
@pytest.mark.parametrize("method", ["grid", "random", "skopt_gp", "optuna_tpe"])
def test_a_smoke_run_with_every_black_box_method_finds_an_incumbent(method: str, tmp_path: Path) -> None:
    spec = RunSpec("cifar_alexnet", method, "smoke", 0, Budget(3.0))
    outcome = execute(spec, tmp_path, device="cpu", data_dir=DATA)
    final = outcome.final
    assert load_final(outcome.run_dir) == final
    assert final.n_trials >= 1
    assert final.incumbent_val_loss is not None
    assert final.incumbent_test_loss is not None
    assert "CIFAR-10" in final.meta.data_source
    # Provenance: the files read, relative to the data root, with the sha256 of their bytes; no machine path.
    assert DATA is not None
    assert str(DATA) not in final.meta.data_source
    assert final.meta.data_files, "no data file recorded"
    for f in final.meta.data_files:
        assert f.path.startswith("cifar10/")
        assert f.sha256 == hashlib.sha256((DATA / f.path).read_bytes()).hexdigest()
    assert final.n_complete >= 1, "no smoke trial completed within 3 s"


def test_cache_override_keeps_the_data_folder_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With $HPOBENCH_STN_CACHE set (as the nox sessions and tests do), nothing is written next to the data."""
    _tiny_jpeg_copy(tmp_path / "data" / "cifar10")
    monkeypatch.setenv("HPOBENCH_STN_CACHE", str(tmp_path / "cache"))
    data = load_cifar10(tmp_path / "data")
    assert data.files == (tmp_path / "data" / "cifar10" / JPEG_NPZ,)  # what Task.data_files hands the runner
    assert str(tmp_path) not in data.source  # the source names neither the data root nor the cache folder
    assert not (tmp_path / "data" / "cifar10" / "cache").exists()
    assert list((tmp_path / "cache").glob("cifar10_jpeg_q75-*.npy"))


def test_load_before_prepare_is_refused_rather_than_charged() -> None:
    task = CifarAlexNet("smoke", device="cpu", data_dir=Path("unused"))
    with pytest.raises(TaskError, match=r"call prepare\(\) \(uncharged\) before load\(\)"):
        task.load(RunSeeds.from_master(0))


def test_group_norm_normalises_each_example_by_itself() -> None:
    """With GroupNorm after each convolution an example's logits do not depend on the rest of the batch
    (unlike BatchNorm), in training mode as in evaluation."""
    torch.manual_seed(0)
    model = AlexNet((8, 8, 8, 8, 8), 16, group_norm=4)
    model.reset_parameters(torch.Generator().manual_seed(0))
    assert sum(isinstance(m, torch.nn.GroupNorm) for m in model.modules()) == 5
    x = torch.randn(6, 3, 32, 32)
    model.train()
    alone = model(x[:1])
    together = model(x)[:1]
    assert torch.allclose(alone, together, atol=1e-5)
    plain = AlexNet((8, 8, 8, 8, 8), 16)
    assert not any(isinstance(m, torch.nn.GroupNorm) for m in plain.modules())


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("optimizer", "rmsprop", r"optimizer must be 'sgd' or 'adam', got 'rmsprop'"),
        ("clip", 0.0, r"clip must be None or > 0"),
    ],
)
def test_cifar_preset_rejects_bad_optimiser_settings(field: str, value: object, match: str) -> None:
    with pytest.raises(TaskError, match=match):
        CifarPreset("bad", epochs=1, batch_size=8, **{field: value})  # type: ignore[arg-type]


def test_adam_and_clipping_presets_build_what_they_name() -> None:
    task = CifarAlexNet.__new__(CifarAlexNet)
    task.preset = CifarPreset("x", epochs=1, batch_size=8, optimizer="adam", lr=1e-3, clip=0.5)
    model = torch.nn.Linear(4, 2)
    opt = task.make_optimizer(model)
    assert isinstance(opt, torch.optim.Adam)
    assert opt.param_groups[0]["lr"] == 1e-3
    model.weight.grad = torch.full_like(model.weight, 10.0)
    model.bias.grad = torch.zeros_like(model.bias)
    task.clip_gradients(model)
    assert float(torch.linalg.vector_norm(model.weight.grad)) == pytest.approx(0.5)
