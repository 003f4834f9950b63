"""Automation: ``nox -s tests``, ``nox -s lint``, ``nox -s benchmark``.

Each session installs the project (and its extras from ``pyproject.toml``) into its own virtualenv,
so a fresh machine needs only Python and ``pip install nox``. Arguments after ``--`` are passed
through (to pytest, to ruff/mypy, or to ``hpobench suite``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
SHARED_DATA = ROOT.parent / "shared" / "data"


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
    """ruff (lint + format check) and mypy --strict over the code, tests, examples and benchmarks.

    The project is installed as a regular (not editable) package here: the built-in plug-ins in
    ``methods/`` and ``tasks/`` install as ``hpobench_stn.methods`` and ``hpobench_stn.tasks``, and mypy
    can follow that mapping only in an installed copy (an editable install maps them with an import
    hook, which mypy does not run). The folders themselves are checked as source files.
    """
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools' build/lib keeps deleted modules
    session.install("--force-reinstall", "--no-deps", ".")
    session.install(".[lint]")
    session.run("ruff", "check", ".", *session.posargs)
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session
def benchmark(session: nox.Session) -> None:
    """Run a suite, then write its tables to ``results/<suite>/`` and its figures to ``plots/<suite>/``.

    The default suite suits the hardware: ``paper`` when CUDA is available, else ``cpu``. Examples:
    ``nox -s benchmark -- --suite smoke --seeds 0 1 --methods stn random --dry-run``: ``--suite`` picks
    the suite (a built-in name or a TOML file); everything else goes to ``hpobench suite``, e.g.
    ``-- --executor dask --workers 4`` to spread the runs over a local Dask cluster (docs/scale-out.md).
    Complete runs are skipped, so re-running only regenerates the report (seconds).
    """
    args = list(session.posargs)
    session.install("-e", ".")
    suite = None
    if "--suite" in args:
        i = args.index("--suite")
        if i + 1 >= len(args):
            session.error("--suite needs a suite name or a TOML file")
        suite = args[i + 1]
        del args[i : i + 2]
    if suite is None:
        probe = "import torch; print('paper' if torch.cuda.is_available() else 'cpu')"
        output = session.run("python", "-c", probe, silent=True)
        suite = str(output).strip().splitlines()[-1] if output else "cpu"
        session.log(f"suite {suite} (CUDA {'found' if suite == 'paper' else 'not found'}; choose with --suite NAME)")
    name = Path(suite).stem
    out = ROOT / "results" / name
    session.run("hpobench", "suite", suite, "--out", str(out), *args, env=_data_env())
    if "--dry-run" not in args:
        session.run("hpobench", "report", str(out), "--plots", str(ROOT / "plots" / name), env=_data_env())
