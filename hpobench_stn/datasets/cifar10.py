"""CIFAR-10 as uint8 arrays, from the official torchvision files or the compact offline JPEG copy.

Sources, in order of preference (all under ``<root>/cifar10/``):

1. ``cifar-10-batches-py/``: the official pickled batches, read through ``torchvision.datasets.CIFAR10``
   (which checks their md5s). Exact pixels.
2. ``cifar10_jpeg_q75.npz``: all 60,000 images as JPEG (quality 75) bytes in official order with the
   official labels (see that folder's README: mean absolute error 5.8/255 against the originals). It is
   decoded once with Pillow and cached as uint8 arrays under ``cache_dir(<root>/cifar10/cache)``; the
   cache falls back to ``$HPOBENCH_STN_CACHE`` (or ``~/.cache/hpobench_stn``) when the data folder is
   read-only, as in CI. The cache file's name holds a digest of the npz and Pillow's version, so a new
   copy or decoder is decoded afresh.
3. With ``download=True`` and neither present, torchvision downloads the official archive into
   ``<root>/cifar10/`` (needs network access and a writable folder).

Otherwise :class:`DataError` names the folder and the expected files.

:func:`paper_split` splits as in the Self-Tuning Networks paper: the first 40,000 official training
images train, the last 10,000 validate, and the official 10,000 test images test.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..foundation.provenance import file_sha256
from . import DataError, cache_dir, resolve_data_root

__all__ = [
    "BATCHES_DIR",
    "CLASSES",
    "JPEG_NPZ",
    "N_TRAIN_PAPER",
    "Cifar10",
    "CifarSplits",
    "decode_jpeg_npz",
    "load_cifar10",
    "paper_split",
]

BATCHES_DIR = "cifar-10-batches-py"
JPEG_NPZ = "cifar10_jpeg_q75.npz"
N_TRAIN_PAPER = 40_000  # the first 40k official training images train, the last 10k validate
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class Cifar10:
    """The official train and test sets.

    Attributes:
        x_train: uint8 ``(50000, 32, 32, 3)``, HWC, RGB, official order.
        y_train: int64 ``(50000,)``.
        x_test: uint8 ``(10000, 32, 32, 3)``.
        y_test: int64 ``(10000,)``.
        source: where the pixels came from, relative to the data root (``cifar10/cifar10_jpeg_q75.npz
            (JPEG q75, ...)``; written into every run's metadata).
        files: the files read (absolute), for the run's data checksums (``Task.data_files``).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class CifarSplits:
    """Train / validation / test arrays (images uint8 ``(N, 32, 32, 3)``, labels int64 ``(N,)``)."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    source: str
    files: tuple[Path, ...] = ()  # the files read (Cifar10.files)


def paper_split(data: Cifar10) -> CifarSplits:
    """The paper's split: official train images 0–39,999 train, 40,000–49,999 validate; official test."""
    return CifarSplits(
        train=(data.x_train[:N_TRAIN_PAPER], data.y_train[:N_TRAIN_PAPER]),
        val=(data.x_train[N_TRAIN_PAPER:], data.y_train[N_TRAIN_PAPER:]),
        test=(data.x_test, data.y_test),
        source=data.source,
        files=data.files,
    )


def decode_jpeg_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Decode every image of the JPEG copy with Pillow: uint8 ``(50000, 32, 32, 3)``, ``(10000, 32, 32, 3)``."""
    from PIL import Image

    with np.load(path) as d:
        blobs = {split: (d[f"{split}_jpeg"], d[f"{split}_offsets"]) for split in ("train", "test")}

    def decode(blob: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        raw = blob.tobytes()
        out = np.empty((len(offsets) - 1, 32, 32, 3), dtype=np.uint8)
        for i in range(len(offsets) - 1):
            with Image.open(io.BytesIO(raw[offsets[i] : offsets[i + 1]])) as img:
                out[i] = np.asarray(img.convert("RGB"))
        return out

    return decode(*blobs["train"]), decode(*blobs["test"])


def _digest(path: Path) -> str:
    # The run records the same sha256 as its data checksum: file_sha256 hashes each file once per process.
    return file_sha256(path)[:16]


def _save_atomic(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` to a temporary file beside ``path``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is shared like the data beside it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _from_jpeg(npz: Path, folder: Path) -> Cifar10:
    import PIL

    try:
        with np.load(npz) as d:
            y_train, y_test = d["y_train"].astype(np.int64), d["y_test"].astype(np.int64)
        key = f"{_digest(npz)}-pillow{PIL.__version__}"
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{npz} is not a readable CIFAR-10 JPEG copy ({err}); expected {JPEG_NPZ} in {folder}") from err
    cache = cache_dir(folder / "cache") / f"cifar10_jpeg_q75-{key}.npy"  # (60000, 32, 32, 3): train, then test
    if cache.is_file():
        x = np.load(cache)
    else:
        x_train, x_test = decode_jpeg_npz(npz)
        x = np.concatenate([x_train, x_test])
        _save_atomic(cache, x)
    if x.shape != (60_000, 32, 32, 3) or len(y_train) != 50_000 or len(y_test) != 10_000:
        raise DataError(f"{npz}: unexpected shapes {x.shape}, {y_train.shape}, {y_test.shape} (cache {cache})")
    source = f"cifar10/{JPEG_NPZ} (JPEG q75, decoded once and cached as {cache.name})"
    return Cifar10(x[:50_000], y_train, x[50_000:], y_test, source, (npz,))


def _from_torchvision(folder: Path, download: bool) -> Cifar10:
    from torchvision.datasets import CIFAR10

    train = CIFAR10(str(folder), train=True, download=download)
    test = CIFAR10(str(folder), train=False, download=download)
    return Cifar10(
        np.asarray(train.data, dtype=np.uint8),
        np.asarray(train.targets, dtype=np.int64),
        np.asarray(test.data, dtype=np.uint8),
        np.asarray(test.targets, dtype=np.int64),
        f"cifar10/{BATCHES_DIR} (official, torchvision)",
        tuple(folder / BATCHES_DIR / name for name, _ in (*train.train_list, *test.test_list)),
    )


def load_cifar10(data_dir: Path | None, *, download: bool = False) -> Cifar10:
    """The official train and test sets from ``<root>/cifar10`` (see the module docstring).

    Args:
        data_dir: the data root (``--data-dir``); None reads ``$HPOBENCH_STN_DATA``.
        download: when neither source is present, let torchvision download the official archive.

    Raises:
        DataError: the root is not a directory, no source is present (and the download failed or was
            not asked for), or a file is corrupt.
    """
    folder = resolve_data_root(data_dir) / "cifar10"
    expected = f"expected {BATCHES_DIR}/ (official torchvision layout) or {JPEG_NPZ} (offline JPEG copy) in {folder}"
    if (folder / BATCHES_DIR).is_dir():
        try:
            return _from_torchvision(folder, download=False)
        except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
            raise DataError(f"{folder / BATCHES_DIR} is incomplete or corrupt ({err}); {expected}") from err
    if (folder / JPEG_NPZ).is_file():
        return _from_jpeg(folder / JPEG_NPZ, folder)
    if download:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return _from_torchvision(folder, download=True)
        except (OSError, RuntimeError) as err:
            raise DataError(f"CIFAR-10 not found and the download failed ({err}); {expected}") from err
    raise DataError(f"CIFAR-10 not found: {expected}")
