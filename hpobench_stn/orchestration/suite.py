"""Suites as data: a TOML file naming tasks × methods × seeds, a preset and a budget.

Example (``hpobench_stn/orchestration/suites/smoke.toml``)::

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

**Arms.** An entry of ``methods`` is an *arm*: a registered method, or a name of your own whose table
says which method it runs with which options, so one suite can compare variants of a method::

    methods = ["stn", "stn_1to1"]

    [methods.stn_1to1]
    method = "stn"              # the registered method; the other keys are its options
    train_steps = 1

Runs are filed and reported under the arm's name. An arm whose method takes an option named ``arm``
reads another arm's runs (``schedule_replay`` with ``arm = "stn"`` replays them); such arms run after
every other arm (:meth:`Suite.waves`), and the option must name another arm of the suite.

**A part of the space.** ``tune = ["dropouto"]`` in ``[suite]`` opens only those hyperparameters to
every method; the others stay at the task's defaults (the ``schedule`` suite's one-dimensional
problem).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..foundation.clock import Budget
from ..harness.runner import RunSpec

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
    method_options: dict[str, dict[str, Any]]  # arm → its options (without the ``method`` key)
    source: str  # the file it was read from
    arm_methods: dict[str, str] = field(default_factory=dict)  # arm → registered method, where they differ
    tune: tuple[str, ...] | None = None  # the hyperparameters open to every method (None: all)

    def method_of(self, arm: str) -> str:
        return self.arm_methods.get(arm, arm)

    def _spec(self, task: str, arm: str, seed: int) -> RunSpec:
        method = self.method_of(arm)
        return RunSpec(
            task,
            method,
            self.preset,
            seed,
            self.budget,
            self.method_options.get(arm, {}),
            arm=None if arm == method else arm,
            tune=self.tune,
        )

    def waves(self) -> list[list[RunSpec]]:
        """The runs in the order they may run: arms that replay another arm's runs come in a second wave."""
        first: list[RunSpec] = []
        second: list[RunSpec] = []
        for task in self.tasks:
            for seed in self.seeds:
                for arm in self.methods:
                    spec = self._spec(task, arm, seed)
                    (second if "arm" in spec.method_options else first).append(spec)
        return [wave for wave in (first, second) if wave]

    def runs(self) -> list[RunSpec]:
        """Every task × arm × seed, seeds outside arms so that methods interleave per seed; waves in order."""
        return [spec for wave in self.waves() for spec in wave]

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
            arm_methods=self.arm_methods,
            tune=self.tune,
        )


def builtin_suites() -> dict[str, Path]:
    """Built-in suite name → file."""
    folder = resources.files("hpobench_stn.orchestration") / "suites"
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
    allowed = {"name", "tasks", "methods", "seeds", "preset", "budget_s", "tune"}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SuiteError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    missing = sorted(k for k in allowed - {"name", "tune"} if k not in table)
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
    if len(set(methods)) != len(methods):
        raise SuiteError(f"{where}.methods: names repeat: {list(methods)}")
    arm_methods: dict[str, str] = {}
    arm_options: dict[str, dict[str, Any]] = {}
    for arm, opts in options.items():
        opts = dict(opts)
        if "method" in opts:
            method = opts.pop("method")
            if not isinstance(method, str) or not method:
                raise SuiteError(f"{path}: [methods.{arm}].method: expected a method name, got {method!r}")
            if method != arm:
                arm_methods[arm] = method
        arm_options[arm] = opts
    for arm, opts in arm_options.items():
        source = opts.get("arm")  # an option named `arm` reads another arm's runs (Suite.waves)
        if source is not None and (source not in methods or source == arm):
            raise SuiteError(
                f"{path}: [methods.{arm}].arm = {source!r}: expected another arm of this suite, one of {list(methods)}"
            )
    tune = table.get("tune")
    return Suite(
        name=str(table.get("name", path.stem)),
        tasks=_names(f"{where}.tasks", table["tasks"]),
        methods=methods,
        seeds=_seeds(f"{where}.seeds", table["seeds"]),
        preset=preset,
        budget=budget,
        method_options=arm_options,
        source=str(path),
        arm_methods=arm_methods,
        tune=None if tune is None else _names(f"{where}.tune", tune),
    )
