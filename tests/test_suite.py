"""Suites as data: built-in suites load, malformed files fail saying which file and which entry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hpobench_stn import Budget, get_task, method_names
from hpobench_stn.suite import SuiteError, builtin_suites, load_suite

GOOD = """\
[suite]
name = "mini"
tasks = ["digits_mlp"]
methods = ["random", "grid"]
seeds = [0, 1]
preset = "smoke"
budget_s = 2.5

[methods.grid]
points = 2
"""


def _write(tmp_path: Path, text: str, name: str = "suite.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_builtin_smoke_suite_loads() -> None:
    suite = load_suite("smoke")
    assert suite.name == "smoke"
    assert suite.tasks == ("digits_mlp",)
    assert suite.preset == "smoke"
    assert suite.seeds == (0, 1)
    assert suite.budget == Budget(10)
    assert set(suite.methods) <= set(method_names())
    assert suite.method_options["grid"] == {"points": 3}
    assert suite.source == str(builtin_suites()["smoke"])


def test_every_builtin_suite_names_real_tasks_methods_presets_and_options() -> None:
    for name in builtin_suites():
        suite = load_suite(name)
        for spec in suite.runs():
            get_task(spec.task)(spec.preset)  # raises for an unknown task or preset
            assert spec.method in method_names(), (name, spec.method)


def test_suite_file_loads_with_options(tmp_path: Path) -> None:
    suite = load_suite(_write(tmp_path, GOOD))
    assert (suite.name, suite.tasks, suite.methods, suite.seeds) == (
        "mini",
        ("digits_mlp",),
        ("random", "grid"),
        (0, 1),
    )
    assert suite.budget.seconds == 2.5
    assert suite.method_options == {"grid": {"points": 2}}


def test_runs_pair_seeds_and_interleave_methods(tmp_path: Path) -> None:
    """Every method runs every seed; methods alternate within a seed; options go to their method."""
    runs = load_suite(_write(tmp_path, GOOD)).runs()
    assert [(r.seed, r.method) for r in runs] == [(0, "random"), (0, "grid"), (1, "random"), (1, "grid")]
    assert all(r.budget.seconds == 2.5 and r.preset == "smoke" for r in runs)
    assert [dict(r.method_options) for r in runs if r.method == "grid"] == [{"points": 2}] * 2


def test_restricted_keeps_the_rest(tmp_path: Path) -> None:
    suite = load_suite(_write(tmp_path, GOOD)).restricted(methods=["grid"], seeds=[1])
    assert [(r.seed, r.method, dict(r.method_options)) for r in suite.runs()] == [(1, "grid", {"points": 2})]


def test_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    assert load_suite(_write(tmp_path, GOOD.replace('name = "mini"\n', ""), "nightly.toml")).name == "nightly"


def test_builtin_name_is_found_even_when_a_folder_of_that_name_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hpobench suite smoke --out smoke` twice: the second call must still find the built-in suite,
    not try to read the results folder ./smoke as a suite file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "smoke").mkdir()
    assert load_suite("smoke").source == str(builtin_suites()["smoke"])


def test_unknown_builtin_name_lists_the_builtin_names() -> None:
    names = ", ".join(sorted(builtin_suites()))
    with pytest.raises(SuiteError, match=rf"unknown suite 'nightly'; built-in: {re.escape(names)}$"):
        load_suite("nightly")


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(SuiteError, match=rf"cannot read suite file '{re.escape(str(path))}'"):
        load_suite(path)


def test_invalid_toml_gives_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("seeds = [0, 1]", "seeds = [0, 1"))
    with pytest.raises(SuiteError, match=rf"{re.escape(str(path))}: not valid TOML: .*line 6"):
        load_suite(path)


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        pytest.param("[suite]\n", "[suit]\n", r"missing the \[suite\] table", id="no-suite-table"),
        pytest.param("budget_s = 2.5", "budget = 2.5", r"\[suite\]: unknown key\(s\) \['budget'\]", id="unknown-key"),
        pytest.param('preset = "smoke"\n', "", r"\[suite\]: missing key\(s\) \['preset'\]", id="missing-key"),
        pytest.param(
            "seeds = [0, 1]",
            "seeds = [0, -1]",
            r"\[suite\]\.seeds: expected a non-empty list of non-negative",
            id="negative-seed",
        ),
        pytest.param(
            "seeds = [0, 1]",
            "seeds = [1, 1]",
            r"\[suite\]\.seeds: seeds repeat: \[1, 1\]",
            id="repeated-seeds",
        ),
        pytest.param(
            "seeds = [0, 1]",
            "seeds = 0",
            r"\[suite\]\.seeds: expected a non-empty list",
            id="seeds-not-a-list",
        ),
        pytest.param("seeds = [0, 1]", "seeds = []", r"\[suite\]\.seeds: expected a non-empty list", id="no-seeds"),
        pytest.param("seeds = [0, 1]", "seeds = [0, true]", r"\[suite\]\.seeds: expected", id="bool-seed"),
        pytest.param(
            "budget_s = 2.5",
            "budget_s = 0",
            r"\[suite\]\.budget_s: budget must be a positive",
            id="zero-budget",
        ),
        pytest.param(
            "budget_s = 2.5",
            "budget_s = -3",
            r"\[suite\]\.budget_s: budget must be a positive",
            id="negative-budget",
        ),
        pytest.param(
            "budget_s = 2.5",
            'budget_s = "10"',
            r"\[suite\]\.budget_s: budget must be a number",
            id="string-budget",
        ),
        pytest.param(
            "budget_s = 2.5",
            "budget_s = nan",
            r"\[suite\]\.budget_s: budget must be a positive",
            id="nan-budget",
        ),
        pytest.param(
            'methods = ["random", "grid"]',
            'methods = ["random"]',
            r"\[methods\.grid\] configures a method the suite does not run",
            id="stray-options",
        ),
        pytest.param(
            'methods = ["random", "grid"]',
            "methods = []",
            r"\[suite\]\.methods: expected a non-empty list",
            id="no-methods",
        ),
        pytest.param(
            'tasks = ["digits_mlp"]',
            'tasks = "digits_mlp"',
            r"\[suite\]\.tasks: expected a non-empty list",
            id="tasks-not-a-list",
        ),
        pytest.param('preset = "smoke"', "preset = 3", r"\[suite\]\.preset: expected a preset name", id="bad-preset"),
        pytest.param(
            "[methods.grid]\npoints = 2\n",
            "[methods]\ngrid = 2\n",
            r"must hold option = value pairs",
            id="options-not-a-table",
        ),
        pytest.param(
            "[methods.grid]",
            "[extra]\nx = 1\n[methods.grid]",
            r"unknown top-level table\(s\) \['extra'\]",
            id="unknown-table",
        ),
    ],
)
def test_malformed_suite_says_where(tmp_path: Path, old: str, new: str, match: str) -> None:
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(SuiteError, match=rf"^{re.escape(str(path))}: .*{match}"):
        load_suite(path)
