"""Registries of methods and tasks, filled by decorators; plug-ins are found, never named.

Built-in and installed plug-ins declare entry points in the groups ``hpobench_stn.methods`` and
``hpobench_stn.tasks`` (see ``pyproject.toml``); their modules are imported on the first lookup and
register themselves with :func:`register_method` / :func:`register_task`. An out-of-tree file is
loaded with :func:`load_plugin` (the CLI's ``--plugin FILE``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TypeVar

from .method import Method
from .task import Task

__all__ = [
    "RegistryError",
    "get_method",
    "get_task",
    "load_plugin",
    "loaded_plugins",
    "method_names",
    "register_method",
    "register_task",
    "task_names",
]

METHOD_GROUP = "hpobench_stn.methods"
TASK_GROUP = "hpobench_stn.tasks"

_METHODS: dict[str, type[Method]] = {}
_TASKS: dict[str, type[Task]] = {}
_loaded_groups: set[str] = set()
_PLUGINS: dict[str, str] = {}  # resolved path of each loaded plug-in file → sha256 of its contents

M = TypeVar("M", bound=type[Method])
T = TypeVar("T", bound=type[Task])


class RegistryError(ValueError):
    """Unknown or duplicate plug-in name, or a plug-in file that cannot be loaded."""


def _register(table: dict[str, type], kind: str, name: str, cls: type) -> None:
    """Add ``cls`` under ``name``; only then set ``cls.name`` (a refused class keeps its own name)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise RegistryError(f"{kind} name must be an identifier, got {name!r}")
    existing = table.get(name)
    if existing is not None and existing is not cls:
        raise RegistryError(
            f"{kind} name {name!r} is already registered by {existing.__module__}.{existing.__qualname__}"
        )
    other_names = [n for n, c in table.items() if c is cls and n != name]
    if other_names:
        raise RegistryError(f"{cls.__qualname__} is already registered as {kind} {other_names[0]!r}")
    table[name] = cls
    cls.name = name  # type: ignore[attr-defined]


def register_method(name: str) -> Callable[[M], M]:
    """Class decorator: register a :class:`Method` subclass under ``name`` (refuses duplicates)."""

    def deco(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise RegistryError(f"@register_method({name!r}) needs a Method subclass, got {cls!r}")
        _register(_METHODS, "method", name, cls)
        return cls

    return deco


def register_task(name: str) -> Callable[[T], T]:
    """Class decorator: register a :class:`Task` subclass under ``name`` (refuses duplicates)."""

    def deco(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise RegistryError(f"@register_task({name!r}) needs a Task subclass, got {cls!r}")
        _register(_TASKS, "task", name, cls)
        return cls

    return deco


def _load_entry_points(group: str) -> None:
    if group in _loaded_groups:
        return
    _loaded_groups.add(group)
    for ep in metadata.entry_points(group=group):
        ep.load()  # importing the module runs its @register_* decorator


def load_plugin(path: str | Path) -> None:
    """Import a Python file so that its ``@register_method`` / ``@register_task`` classes register."""
    path = Path(path).resolve()
    if not path.is_file() or path.suffix != ".py":
        raise RegistryError(f"plug-in {str(path)!r} is not a .py file")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    module_name = f"hpobench_plugin_{path.stem}_{digest}"
    if module_name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RegistryError(f"cannot load plug-in {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[module_name]
        raise
    _PLUGINS[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()


def loaded_plugins() -> dict[str, str]:
    """Plug-in files loaded in this process, with the sha256 of each (recorded in every run)."""
    return dict(_PLUGINS)


def method_names() -> list[str]:
    _load_entry_points(METHOD_GROUP)
    return sorted(_METHODS)


def task_names() -> list[str]:
    _load_entry_points(TASK_GROUP)
    return sorted(_TASKS)


def get_method(name: str) -> type[Method]:
    _load_entry_points(METHOD_GROUP)
    if name not in _METHODS:
        raise RegistryError(f"unknown method {name!r}; known: {', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def get_task(name: str) -> type[Task]:
    _load_entry_points(TASK_GROUP)
    if name not in _TASKS:
        raise RegistryError(f"unknown task {name!r}; known: {', '.join(sorted(_TASKS))}")
    return _TASKS[name]
