"""Automation: ``nox -s tests``, ``nox -s lint``, ``nox -s benchmark``.

Each session installs the project (and its extras from ``pyproject.toml``) into its own virtualenv,
so a fresh machine needs only Python and ``pip install nox``. Arguments after ``--`` are passed
through (to pytest, to ruff/mypy, or to ``hpobench suite``).
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
SHARED_DATA = ROOT.parent / "shared" / "data"
DEFAULT_SUITE = "smoke"  # offline default until the paper's tasks (PTB, CIFAR-10) land


def _data_env() -> dict[str, str]:
    """Point the project at ../shared/data when it exists and nothing else was chosen; keep decoded
    caches in the project's ignored .cache/ so a shared data folder is only ever read."""
    env = {"HPOBENCH_STN_CACHE": os.environ.get("HPOBENCH_STN_CACHE", str(ROOT / ".cache"))}
    if "HPOBENCH_STN_DATA" not in os.environ and SHARED_DATA.is_dir():
        env["HPOBENCH_STN_DATA"] = str(SHARED_DATA)
    return env


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite; e.g. ``nox -s tests -- -m 'not slow' -x``."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs, env=_data_env())


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy --strict over the code, tests, examples and benchmarks."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".", *session.posargs)
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session
def benchmark(session: nox.Session) -> None:
    """Run a suite (default: ``smoke``), then write its per-run CSV to ``results/<suite>/runs.csv``.

    ``nox -s benchmark -- --suite digits_cpu --seeds 0 1 --methods random grid --dry-run``: ``--suite``
    picks the suite (a built-in name or a TOML file); everything else goes to ``hpobench suite``, e.g.
    ``-- --executor dask --workers 4`` to spread the runs over a local Dask cluster (docs/scale-out.md).
    Complete runs are skipped, so re-running only regenerates the report.
    """
    args = list(session.posargs)
    suite = DEFAULT_SUITE
    if "--suite" in args:
        i = args.index("--suite")
        suite = args[i + 1]
        del args[i : i + 2]
    session.install("-e", ".")
    name = Path(suite).stem
    out = ROOT / "results" / name
    session.run("hpobench", "suite", suite, "--out", str(out), *args, env=_data_env())
    if "--dry-run" not in args:
        session.run("hpobench", "report", str(out), "--csv", str(out / "runs.csv"))
