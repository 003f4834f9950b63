"""The core's layers: every import of every module goes down the layer table, never up or sideways.

The rule (docs/architecture.md#layout): a subpackage of ``hpobench_stn`` may import its own modules and
those of lower layers, never a peer on its own layer, a higher layer, or the top-level facade
``hpobench_stn`` itself; the built-in plug-ins (``methods/``, ``tasks/``) use the core up to reporting.
Imports are read from the source with :mod:`ast`, so imports inside functions count too.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "hpobench_stn"
PLUGINS = {"methods": ROOT / "methods", "tasks": ROOT / "tasks"}  # installed as hpobench_stn.<name>

# subpackage → layer; a subpackage may import only subpackages of a lower layer.
LAYERS: dict[str, int] = {
    "foundation": 0,
    "datasets": 1,
    "nn": 1,
    "harness": 2,
    "reporting": 3,
    "orchestration": 4,
}
PLUGIN_MAY_IMPORT = frozenset(name for name, layer in LAYERS.items() if layer < LAYERS["orchestration"])
FACADE = "facade"  # the top-level package hpobench_stn (its __init__ re-exports the contracts)


def may_import(source: str) -> frozenset[str]:
    """The subpackages ``source`` (a subpackage or a plug-in family) may import besides itself."""
    if source in PLUGINS:
        return PLUGIN_MAY_IMPORT | {FACADE}
    return frozenset(name for name, layer in LAYERS.items() if layer < LAYERS[source])


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. hpobench_stn.harness.task
    target: str  # the imported module (or package), e.g. hpobench_stn.nn.factory
    line: int


def module_name(path: Path) -> str:
    """The installed module name of a source file (plug-ins map into the project's namespace)."""
    for family, folder in PLUGINS.items():
        if path.is_relative_to(folder):
            parts = [PACKAGE, family, *path.relative_to(folder).with_suffix("").parts]
            break
    else:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(module: str, source: str, *, is_package: bool) -> Iterator[Import]:
    """Every project-internal import in ``source``, resolved to an absolute module name."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base = ".".join(base_parts[: len(base_parts) - (node.level - 1)])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            # ``from hpobench_stn import nn`` / ``from . import layers`` name a submodule, not a value.
            for alias in node.names:
                yield Import(module, f"{target}.{alias.name}", node.lineno)


def part_of(name: str) -> str | None:
    """Which subpackage (or plug-in family) a module belongs to; FACADE for the top-level package and
    the names it exports; None outside the project."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    if len(parts) > 1 and (parts[1] in LAYERS or parts[1] in PLUGINS):
        return parts[1]
    return FACADE


def violations(module: str, source: str, *, is_package: bool = False) -> list[str]:
    """The imports of ``module`` that break the layer rule, as readable lines."""
    own = part_of(module)
    if own is None or own == FACADE:
        raise ValueError(f"{module!r} is not in a subpackage or plug-in family")
    found = []
    for imp in imports_of(module, source, is_package=is_package):
        target = part_of(imp.target)
        if target is None or target == own or target in may_import(own):
            continue
        found.append(f"{module}:{imp.line} imports {imp.target} ({own} may import: {sorted(may_import(own))})")
    return found


def project_modules() -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        yield module_name(path), path
    for folder in PLUGINS.values():
        for path in sorted(folder.rglob("*.py")):
            yield module_name(path), path


def test_every_module_imports_only_down_the_layers() -> None:
    found = []
    for module, path in project_modules():
        if part_of(module) == FACADE:
            continue  # hpobench_stn/__init__.py and __main__.py: checked below
        found += violations(module, path.read_text(encoding="utf-8"), is_package=path.name == "__init__.py")
    assert found == []


def test_every_core_module_lives_in_a_layer() -> None:
    """No module outside the subpackages but the facade: a new module has to choose its layer."""
    loose = [m for m, _ in project_modules() if part_of(m) == FACADE and m not in {PACKAGE, f"{PACKAGE}.__main__"}]
    folders = {p.name for p in (ROOT / PACKAGE).iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert loose == []
    assert folders == set(LAYERS)


def test_the_facade_imports_no_plug_in() -> None:
    for module in (PACKAGE, f"{PACKAGE}.__main__"):
        path = ROOT / PACKAGE / ("__init__.py" if module == PACKAGE else "__main__.py")
        targets = {part_of(i.target) for i in imports_of(module, path.read_text(), is_package=module == PACKAGE)}
        assert not targets & set(PLUGINS), module


@pytest.mark.parametrize(
    ("module", "source", "is_package", "bad"),
    [
        ("hpobench_stn.foundation.space", "from ..harness.task import Task", False, "hpobench_stn.harness.task.Task"),
        ("hpobench_stn.nn.hparams", "import hpobench_stn.datasets.ptb", False, "hpobench_stn.datasets.ptb"),  # a peer
        ("hpobench_stn.harness.runner", "def f():\n    from ..reporting import load", False, "reporting.load"),
        ("hpobench_stn.harness.task", "from hpobench_stn import Budget", False, "hpobench_stn.Budget"),  # the facade
        ("hpobench_stn.harness", "from .. import methods", True, "hpobench_stn.methods"),  # a plug-in
        ("hpobench_stn.methods.stn", "from hpobench_stn.orchestration.cli import main", False, "orchestration.cli"),
    ],
)
def test_the_checker_catches_an_upward_sideways_or_facade_import(
    module: str, source: str, is_package: bool, bad: str
) -> None:
    found = violations(module, source, is_package=is_package)
    assert len(found) == 1
    assert bad in found[0]


@pytest.mark.parametrize(
    ("module", "source", "is_package"),
    [
        ("hpobench_stn.harness.task", "from ..nn.factory import Layers\nfrom .records import TrialStatus", False),
        ("hpobench_stn.datasets.ptb", "from . import DataError, md5sum", False),
        ("hpobench_stn.nn", "from .layers import HyperLinear", True),
        ("hpobench_stn.tasks.ptb_lstm", "from hpobench_stn import Task\nfrom hpobench_stn.nn import Layers", False),
        ("hpobench_stn.reporting.figures", "import numpy as np\nfrom ..harness.registry import get_task", False),
    ],
)
def test_the_checker_allows_downward_and_own_imports(module: str, source: str, is_package: bool) -> None:
    assert violations(module, source, is_package=is_package) == []


def test_the_architecture_doc_states_the_rule_the_test_enforces() -> None:
    """docs/architecture.md's layer table: each row's layer number and its 'may import' list."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+|plug-ins) \| (.+?) \| .+ \| (.+?) \|$", text, flags=re.M)
    documented = {}
    for layer, names, allowed in rows:
        for name in re.findall(r"`(\w+)`", names):
            documented[name] = (layer, frozenset(re.findall(r"`(\w+)`", allowed)))
    expected = {name: (str(layer), may_import(name)) for name, layer in LAYERS.items()}
    expected |= {name: ("plug-ins", may_import(name) - {FACADE}) for name in PLUGINS}
    assert documented == expected


def test_the_readme_layout_table_matches_the_tree() -> None:
    """Every path the README's layout table names exists; every core subpackage and every top-level
    folder of the project (not the ignored ones: virtualenvs, build output, caches) has a row."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("## Layout") :].split("\n\n")[1]
    named = {p.rstrip("/") for row in table.splitlines() for p in re.findall(r"^\| `([^`]+)`", row)}
    named |= {p.rstrip("/") for p in re.findall(r"^\| `[^`]+`, `([^`]+)`", table, flags=re.M)}
    assert all((ROOT / p).exists() for p in named), sorted(p for p in named if not (ROOT / p).exists())
    ignored = [line.strip().strip("/") for line in (ROOT / ".gitignore").read_text().splitlines() if line.strip()]
    folders = {
        p.name
        for p in ROOT.iterdir()
        if p.is_dir() and not p.name.startswith(".") and not any(fnmatch.fnmatch(p.name, g) for g in ignored)
    }
    assert folders <= named
    assert {f"{PACKAGE}/{sub}" for sub in LAYERS} <= named
