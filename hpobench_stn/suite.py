"""Suites as data: a TOML file naming tasks × methods × seeds, a preset and a budget.

Example (``hpobench_stn/suites/smoke.toml``)::

    [suite]
    name = "smoke"
    tasks = ["digits_mlp"]
    methods = ["grid", "random", "skopt_gp", "optuna_tpe"]
    seeds = [0, 1]
    preset = "smoke"
    budget_s = 10

    [methods.skopt_gp]          # optional per-method options
    n_initial_points = 5

Seeds are paired: every method runs with every seed, so per-seed differences between methods are
meaningful. A suite is named by a path or by the stem of a built-in suite file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .clock import Budget
from .runner import RunSpec

__all__ = ["Suite", "SuiteError", "builtin_suites", "load_suite"]


class SuiteError(ValueError):
    """A suite file is missing or malformed; the message says which file and which entry."""


@dataclass(frozen=True)
class Suite:
    name: str
    tasks: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    preset: str
    budget: Budget
    method_options: dict[str, dict[str, Any]]
    source: str  # the file it was read from

    def runs(self) -> list[RunSpec]:
        """Every task × method × seed, seeds innermost-last so that methods interleave per seed."""
        return [
            RunSpec(task, method, self.preset, seed, self.budget, self.method_options.get(method, {}))
            for task in self.tasks
            for seed in self.seeds
            for method in self.methods
        ]

    def restricted(
        self,
        *,
        methods: list[str] | None = None,
        seeds: list[int] | None = None,
        tasks: list[str] | None = None,
    ) -> Suite:
        """A copy with fewer methods, seeds or tasks (the CLI's ``--methods``/``--seeds``/``--tasks``)."""
        return Suite(
            name=self.name,
            tasks=tuple(tasks) if tasks else self.tasks,
            methods=tuple(methods) if methods else self.methods,
            seeds=tuple(seeds) if seeds is not None and len(seeds) else self.seeds,
            preset=self.preset,
            budget=self.budget,
            method_options=self.method_options,
            source=self.source,
        )


def builtin_suites() -> dict[str, Path]:
    """Built-in suite name → file."""
    folder = resources.files("hpobench_stn") / "suites"
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".toml")}


def _names(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise SuiteError(f"{where}: expected a non-empty list of names, got {value!r}")
    return tuple(value)


def _seeds(where: str, value: Any) -> tuple[int, ...]:
    ok = (
        isinstance(value, list)
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    )
    if not ok:
        raise SuiteError(f"{where}: expected a non-empty list of non-negative integers, got {value!r}")
    if len(set(value)) != len(value):
        raise SuiteError(f"{where}: seeds repeat: {value!r}")
    return tuple(value)


def load_suite(name_or_path: str | Path) -> Suite:
    """Read a suite file (a path, or a built-in name such as ``smoke``), validating every entry."""
    path = Path(name_or_path)
    if not path.suffix and not path.is_file():
        known = builtin_suites()
        if str(name_or_path) not in known:
            raise SuiteError(f"unknown suite {str(name_or_path)!r}; built-in: {', '.join(sorted(known))}")
        path = known[str(name_or_path)]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"cannot read suite file {str(path)!r}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: not valid TOML: {exc}") from exc

    where = f"{path}: [suite]"
    table = data.get("suite")
    if not isinstance(table, dict):
        raise SuiteError(f"{path}: missing the [suite] table")
    allowed = {"name", "tasks", "methods", "seeds", "preset", "budget_s"}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SuiteError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    missing = sorted(k for k in allowed - {"name"} if k not in table)
    if missing:
        raise SuiteError(f"{where}: missing key(s) {missing}")
    preset = table["preset"]
    if not isinstance(preset, str) or not preset:
        raise SuiteError(f"{where}.preset: expected a preset name, got {preset!r}")
    budget_s = table["budget_s"]
    try:
        budget = Budget(budget_s)
    except ValueError as exc:
        raise SuiteError(f"{where}.budget_s: {exc}") from exc
    methods = _names(f"{where}.methods", table["methods"])

    options = data.get("methods", {})
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise SuiteError(f"{path}: [methods.<name>] tables must hold option = value pairs")
    stray = sorted(set(options) - set(methods))
    if stray:
        raise SuiteError(f"{path}: [methods.{stray[0]}] configures a method the suite does not run")
    extra = sorted(set(data) - {"suite", "methods"})
    if extra:
        raise SuiteError(f"{path}: unknown top-level table(s) {extra}; allowed: [suite], [methods.<name>]")
    return Suite(
        name=str(table.get("name", path.stem)),
        tasks=_names(f"{where}.tasks", table["tasks"]),
        methods=methods,
        seeds=_seeds(f"{where}.seeds", table["seeds"]),
        preset=preset,
        budget=budget,
        method_options={k: dict(v) for k, v in options.items()},
        source=str(path),
    )
