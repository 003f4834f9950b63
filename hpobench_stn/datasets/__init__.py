"""Dataset loaders shared by tasks (and by gray-box methods through the tasks).

The data root comes from ``--data-dir`` or ``$HPOBENCH_STN_DATA`` (a task receives it as
``Task.data_dir``). Loaders keep their real download code for users online and read local copies
offline; a missing or corrupt file raises :class:`DataError` naming the folder and the expected files.
Decoded caches go next to the data when that folder is writable, else under ``$HPOBENCH_STN_CACHE``
(default ``~/.cache/hpobench_stn``): a read-only data root (as in CI) still works.
"""

from __future__ import annotations

import hashlib
import os
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
    """``preferred`` if it can be created and written, else ``$HPOBENCH_STN_CACHE`` or ``~/.cache/hpobench_stn``."""
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        if os.access(preferred, os.W_OK):
            return preferred
    except OSError:
        pass
    fallback = Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "hpobench_stn"))
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback
