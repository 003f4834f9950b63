"""Provenance of a run: code version, library versions, device and host."""

from __future__ import annotations

import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import torch

__all__ = ["describe_device", "git_state", "library_versions"]


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


def hostname() -> str:
    return socket.gethostname()
