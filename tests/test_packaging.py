"""What ``pip install .`` installs: the core and the built-in plug-ins inside the project's namespace.

The wheel is built from this checkout (as ``pip install .`` builds it) and read as a zip file: no
top-level ``methods`` or ``tasks`` package, every source module present under its installed name, and
entry points that name modules the wheel holds.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # builds a wheel (pip fetches setuptools into its build environment)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    # A copy of the project without build/ (setuptools' build/lib keeps modules deleted since the last
    # build), virtualenvs, caches and outputs.
    src = out / "src"
    skip = {".git", ".nox", ".venv", "build", "dist", ".cache", "results", "plots", "__pycache__", ".mypy_cache"}
    shutil.copytree(ROOT, src, ignore=lambda _, names: [n for n in names if n in skip or n.endswith(".egg-info")])
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out / "dist"), str(src)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = (out / "dist").glob("hpobench_stn-*.whl")
    return zipfile.ZipFile(path)


def _installed_name(source: Path) -> str:
    rel = source.relative_to(ROOT)
    if rel.parts[0] in ("methods", "tasks"):
        return str(Path("hpobench_stn") / rel)
    return str(rel)


def test_no_top_level_methods_or_tasks_package(wheel: zipfile.ZipFile) -> None:
    top = {name.split("/")[0] for name in wheel.namelist() if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"hpobench_stn"}


def test_every_source_module_installs_under_its_namespaced_name(wheel: zipfile.ZipFile) -> None:
    sources = [*ROOT.joinpath("hpobench_stn").rglob("*.py"), *ROOT.glob("methods/*.py"), *ROOT.glob("tasks/*.py")]
    expected = {_installed_name(p) for p in sources if "__pycache__" not in p.parts}
    installed = {name for name in wheel.namelist() if name.endswith(".py")}
    assert installed == expected
    data = set(wheel.namelist())
    assert "hpobench_stn/py.typed" in data
    suites = {p.name for p in ROOT.glob("hpobench_stn/orchestration/suites/*.toml")}
    assert {n.rsplit("/", 1)[-1] for n in data if n.startswith("hpobench_stn/orchestration/suites/")} == suites


def test_entry_points_name_modules_the_wheel_holds(wheel: zipfile.ZipFile) -> None:
    (ep_file,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser()
    parser.read_string(wheel.read(ep_file).decode())
    assert dict(parser["console_scripts"]) == {"hpobench": "hpobench_stn.orchestration.cli:main"}
    modules = set(wheel.namelist())
    for group, package in (
        ("hpobench_stn.methods", "hpobench_stn.methods"),
        ("hpobench_stn.tasks", "hpobench_stn.tasks"),
    ):
        entries = dict(parser[group])
        assert entries, group
        for name, target in entries.items():
            assert target.startswith(package + "."), (name, target)
            assert target.replace(".", "/") + ".py" in modules, (name, target)
    assert set(parser["hpobench_stn.methods"]) == {
        "grid",
        "random",
        "skopt_gp",
        "optuna_tpe",
        "optuna_gp",
        "optuna_sh",
        "optuna_hyperband",
        "stn",
        "delta_stn",
        "ift",
        "pbt",
        "schedule_replay",
    }
    assert set(parser["hpobench_stn.tasks"]) == {
        "digits_mlp",
        "ptb_lstm",
        "cifar_alexnet",
        "ridge",
        "dropout_regression",
    }
