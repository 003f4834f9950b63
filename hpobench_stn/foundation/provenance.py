"""Provenance of a run: code version, library versions, device, the data read, and a portable command.

A record says what ran and on which device, never where on the machine: nothing in it names the host,
the user or an absolute path. :func:`portable_path` and :func:`portable_command` rewrite a path (or
every path of a command line) against named *roots*, ``{placeholder: folder}``: a path under a root
becomes the placeholder and the rest (``$HPOBENCH_STN_DATA/ptb``; the placeholder ``"."`` gives the
bare relative path, ``results/cpu``); any other absolute path keeps only its name, ``<abs>/out``.
:class:`DataFile` records one file a task read, relative to the data root, with its sha256.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

__all__ = [
    "ELIDED",
    "DataFile",
    "data_file",
    "describe_device",
    "file_sha256",
    "git_state",
    "library_versions",
    "portable_command",
    "portable_path",
    "portable_text",
]

ELIDED = "<abs>"  # stands for the folders of an absolute path that no root covers

# An absolute path inside free text: a "/" that starts the text or follows a separator (never a word,
# "~", "$VAR", "." or "<abs>"), not "//" (URLs), and at least one character of name after it.
_ABS_IN_TEXT = re.compile(r"(?<![\w.~$/>-])/(?!/)[^\s:;,'\"()\[\]{}<>=]+")


@dataclass(frozen=True)
class DataFile:
    """One file a task's data came from.

    Attributes:
        path: POSIX path relative to the data root (``ptb/ptb.train.txt``); a file outside the data
            root as :func:`portable_path` writes it (``$HPOBENCH_STN_CACHE/...``, ``<abs>/name``).
        sha256: hex digest of the file's bytes.
        size: bytes.
    """

    path: str
    sha256: str
    size: int

    def __post_init__(self) -> None:
        if os.path.isabs(self.path):
            raise ValueError(f"DataFile.path must not be absolute, got {self.path!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"DataFile.sha256 must be 64 lower-case hex digits, got {self.sha256!r}")


_SHA256_MEMO: dict[tuple[str, int, int, int], str] = {}  # (real path, inode, size, mtime) → sha256


def file_sha256(path: Path) -> str:
    """The sha256 of ``path``'s bytes, computed once per process for each version of the file (its
    inode, size and modification time): every run of a suite records its data's checksum, and the data
    do not change between runs (measured: ~30 ms for the 18 MB CIFAR-10 JPEG copy, ~13 ms for
    ``ptb.train.txt``, on a 2-core VM)."""
    real = os.path.realpath(path)
    st = os.stat(real)
    key = (real, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _SHA256_MEMO:
        digest = hashlib.sha256()
        with open(real, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        _SHA256_MEMO[key] = digest.hexdigest()
    return _SHA256_MEMO[key]


def _forms(path: str | Path) -> list[str]:
    """The textual and the symlink-resolved form of an absolute path (either may be the one written)."""
    norm = os.path.normpath(os.path.abspath(path))
    real = os.path.realpath(norm)
    return [norm] if real == norm else [norm, real]


def portable_path(path: str | Path, roots: Mapping[str, str | Path]) -> str:
    """``path`` without the machine's folders: under a root (the longest that holds it), the root's
    placeholder and the rest (``"."`` as placeholder: just the rest, or ``.`` for the root itself);
    otherwise ``<abs>/<name>``. A relative ``path`` is returned as given. Roots equal to ``/`` are ignored."""
    text = str(path)
    if not os.path.isabs(text):
        return text
    candidates = sorted(
        ((form, placeholder) for placeholder, root in roots.items() for form in _forms(root) if form != os.sep),
        key=lambda c: len(c[0]),
        reverse=True,
    )
    for form in _forms(text):
        for root, placeholder in candidates:
            if form == root:
                return placeholder
            if form.startswith(root + os.sep):
                rest = Path(os.path.relpath(form, root)).as_posix()
                return rest if placeholder == "." else f"{placeholder}/{rest}"
    name = os.path.basename(os.path.normpath(text))
    return f"{ELIDED}/{name}" if name else ELIDED


def portable_text(text: str, roots: Mapping[str, str | Path]) -> str:
    """``text`` with every absolute path in it (``--out=/x``, ``key=/x``, ``a:/b``, ``... /x (...)``)
    rewritten by :func:`portable_path`; URLs and relative paths are left alone."""
    return _ABS_IN_TEXT.sub(lambda m: portable_path(m.group(0), roots), text)


def portable_command(argv: Sequence[str], roots: Mapping[str, str | Path]) -> list[str]:
    """A command line as a record keeps it: without the absolute paths of the machine it ran on.

    ``argv[0]`` (the program: ``.venv/bin/hpobench``, a Python executable) becomes its name, and a
    package's ``__main__.py`` becomes ``python -m <package>``; every other argument goes through
    :func:`portable_path` (a whole path) or :func:`portable_text` (paths inside an option).
    Relative paths stay as typed. Applying it twice changes nothing.

    Examples:
        >>> roots = {"$HPOBENCH_STN_DATA": "/srv/data", ".": "/home/ada/proj", "~": "/home/ada"}
        >>> portable_command(["/home/ada/proj/.venv/bin/hpobench", "run", "--data-dir=/srv/data"], roots)
        ['hpobench', 'run', '--data-dir=$HPOBENCH_STN_DATA']
        >>> portable_command(["hpobench", "--out", "/home/ada/proj/res", "--plugin=/home/ada/t.py", "/tmp/q/c"], roots)
        ['hpobench', '--out', 'res', '--plugin=~/t.py', '<abs>/c']
    """
    if not argv:
        return []
    program = str(argv[0])
    name = os.path.basename(program)
    if name == "__main__.py" and os.path.dirname(program):
        name = f"python -m {os.path.basename(os.path.dirname(os.path.normpath(program)))}"
    rest = [portable_path(a, roots) if os.path.isabs(a) else portable_text(a, roots) for a in map(str, argv[1:])]
    return [name or program, *rest]


def data_file(path: Path, data_root: Path | None, roots: Mapping[str, str | Path]) -> DataFile:
    """The :class:`DataFile` of ``path``: relative to ``data_root`` when under it, else by
    :func:`portable_path` over ``roots``; with its sha256 (:func:`file_sha256`) and size."""
    path = Path(os.path.abspath(path))
    where = portable_path(path, {".": data_root}) if data_root is not None else str(path)
    if os.path.isabs(where) or where.startswith(ELIDED):
        where = portable_path(path, roots)
    return DataFile(path=where, sha256=file_sha256(path), size=os.path.getsize(path))


def git_state(path: Path | None = None) -> tuple[str | None, bool | None]:
    """``(sha, dirty)`` of the git checkout holding ``path`` (this package by default), or Nones."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return sha, bool(status.strip())


def library_versions(distributions: tuple[str, ...] = ()) -> dict[str, str]:
    """Versions of Python, torch, numpy and each named distribution ("not installed" if absent)."""
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for dist in ("numpy", "hpobench_stn", *distributions):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def describe_device(device: torch.device) -> str:
    """A human-readable device name, with the CPU thread count that shapes CPU timings."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"
