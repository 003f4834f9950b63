"""Dataset loaders shared by tasks (and by gray-box methods through the tasks).

The data root comes from ``--data-dir`` or ``$HPOBENCH_STN_DATA`` (a task receives it as
``Task.data_dir``). Loaders keep their real download code for users online and read local copies
offline; a missing or corrupt file raises :class:`DataError` naming the folder and the expected files.
Decoded caches go to ``$HPOBENCH_STN_CACHE`` when set (the nox sessions and the tests set it to the
project's ignored ``.cache/``, so a shared data folder is never written), else next to the data when
that folder is writable, else ``~/.cache/hpobench_stn``.

May import: :mod:`hpobench_stn.foundation` (the CIFAR-10 loader hashes its file with
``provenance.file_sha256``, which the run's data checksum reuses), numpy and the standard library.
It sits beside :mod:`hpobench_stn.nn`, and neither imports the other.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

__all__ = ["DATA_ENV", "DataError", "cache_dir", "md5sum", "resolve_data_root"]

DATA_ENV = "HPOBENCH_STN_DATA"
CACHE_ENV = "HPOBENCH_STN_CACHE"


class DataError(ValueError):
    """Data is missing, corrupt or misplaced; the message names the folder and the expected files."""


def resolve_data_root(data_dir: Path | None) -> Path:
    """``data_dir``, else ``$HPOBENCH_STN_DATA``; it must be an existing directory."""
    if data_dir is None:
        env = os.environ.get(DATA_ENV)
        if not env:
            raise DataError(f"no data directory: pass --data-dir or set ${DATA_ENV}")
        data_dir = Path(env)
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"data directory {str(root)!r} is not a directory")
    return root


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def cache_dir(preferred: Path) -> Path:
    """Where decoded caches go: ``$HPOBENCH_STN_CACHE`` when set, else ``preferred`` (next to the data)
    when a file can really be created there, else ``~/.cache/hpobench_stn``.

    Writability is probed with a temporary file rather than ``os.access``, which answers yes to root
    even on a read-only mount.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        folder = Path(env)
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=preferred)
        os.close(fd)
        os.unlink(probe)
        return preferred
    except OSError:
        fallback = Path.home() / ".cache" / "hpobench_stn"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback
