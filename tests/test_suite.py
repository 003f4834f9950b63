"""Suites as data: built-in suites load, malformed files fail saying which file and which entry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hpobench_stn import Budget, get_task, method_names
from hpobench_stn.foundation.space import SpaceError
from hpobench_stn.harness.runner import check_specs
from hpobench_stn.orchestration.suite import SuiteError, builtin_suites, load_suite

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
    assert suite.budget == Budget(8)
    assert set(suite.methods) <= set(method_names())
    assert suite.method_options["grid"] == {"points": 3}
    assert suite.source == str(builtin_suites()["smoke"])


def test_every_builtin_suite_names_real_tasks_methods_presets_and_options() -> None:
    assert {"smoke", "cpu", "paper", "sensitivity", "schedule"} <= set(builtin_suites())
    for name in builtin_suites():
        suite = load_suite(name)
        check_specs(suite.runs())  # raises for an unknown task, preset, method, option or tuned name
        for spec in suite.runs():
            assert spec.preset in get_task(spec.task).presets
            assert spec.method in method_names(), (name, spec.method)


def test_the_cpu_suite_is_the_committed_comparison() -> None:
    """The paper comparison's five methods, the two multi-fidelity peers, PBT and Delta-STN × both paper tasks; the
    smoke and paper suites hold the same methods."""
    suite = load_suite("cpu")
    methods = {
        *("grid", "random", "skopt_gp", "optuna_tpe", "optuna_sh", "optuna_hyperband"),
        *("pbt", "stn", "delta_stn", "ift"),
    }
    assert set(suite.methods) == methods
    assert set(suite.tasks) == {"ptb_lstm", "cifar_alexnet"}
    assert suite.preset == "cpu"
    assert set(load_suite("paper").methods) == set(load_suite("smoke").methods) == methods


def test_every_builtin_suite_but_smoke_runs_seeds_0_to_4() -> None:
    """The report's exact Wilcoxon test needs five paired seeds to reach p < 0.05 (docs/reports.md);
    the CI suite keeps two to stay fast."""
    seeds = {name: load_suite(name).seeds for name in builtin_suites()}
    assert seeds.pop("smoke") == (0, 1)
    assert seeds
    assert all(s == (0, 1, 2, 3, 4) for s in seeds.values()), seeds


def test_sensitivity_and_schedule_suites_hold_the_arms_the_paper_compares() -> None:
    sens = load_suite("sensitivity")
    ratios = {
        (dict(s.method_options).get("train_steps", 2), dict(s.method_options).get("hyper_steps", 1))
        for s in sens.runs()
        if "sigma0" not in s.method_options
    }
    assert ratios == {(1, 1), (2, 1), (5, 1), (10, 1)}
    fixed = {s.method_options["sigma0"] for s in sens.runs() if s.method_options.get("tune_sigma") is False}
    assert fixed == {0.1, 0.5, 1.0}
    assert {s.method for s in sens.runs()} == {"stn", "delta_stn", "ift"}
    terms = {dict(s.method_options).get("neumann_terms", 5) for s in sens.runs() if s.method == "ift"}
    assert terms == {0, 1, 5}
    for method in ("stn", "delta_stn"):  # each at its default and at the three fixed scales
        arms = [s for s in sens.runs() if s.method == method and s.seed == 0 and s.task == "ptb_lstm"]
        assert sorted(
            dict(a.method_options).get("sigma0", 0.0) for a in arms if "train_steps" not in a.method_options
        ) == [0.0, 0.1, 0.5, 1.0]
    sched = load_suite("schedule")
    assert sched.tune == ("dropouto",)
    assert sched.tasks == ("ptb_lstm",)
    first, second = sched.waves()
    assert {s.method for s in second} == {"schedule_replay"}
    assert {s.name for s in first} >= {"grid", "stn", "stn_from_0.3", "pbt", "delta_stn", "ift"}
    assert {dict(s.method_options)["arm"] for s in second} == {
        "stn",
        "pbt",
        "delta_stn",
        "ift",
    }  # each schedule is replayed


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


ARMS = """\
[suite]
tasks = ["digits_mlp"]
methods = ["random", "random_b", "replay"]
seeds = [0, 1]
preset = "smoke"
budget_s = 3
tune = ["dropout_in", "dropout_h1"]

[methods.random_b]
method = "random"

[methods.replay]
method = "schedule_replay"
arm = "random_b"
"""


def test_arms_name_a_method_with_options_and_replays_come_last(tmp_path: Path) -> None:
    suite = load_suite(_write(tmp_path, ARMS))
    assert suite.arm_methods == {"random_b": "random", "replay": "schedule_replay"}
    assert suite.method_options == {"random_b": {}, "replay": {"arm": "random_b"}}
    first, second = suite.waves()
    assert [(s.name, s.method, s.seed) for s in first] == [
        ("random", "random", 0),
        ("random_b", "random", 0),
        ("random", "random", 1),
        ("random_b", "random", 1),
    ]
    assert [(s.name, s.method, s.seed) for s in second] == [
        ("replay", "schedule_replay", 0),
        ("replay", "schedule_replay", 1),
    ]
    assert suite.runs() == first + second
    assert first[1].run_dir(tmp_path) == tmp_path / "digits_mlp" / "smoke" / "random_b" / "seed0"
    assert first[0].arm is None  # a plain method is its own arm
    assert all(s.tune == ("dropout_in", "dropout_h1") for s in suite.runs())
    restricted = suite.restricted(seeds=[1])
    assert restricted.tune == suite.tune
    assert restricted.arm_methods == suite.arm_methods


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ('method = "random"', "method = 3", r"\[methods\.random_b\]\.method: expected a method name, got 3"),
        ('arm = "random_b"', 'arm = "nope"', r"\[methods\.replay\]\.arm = 'nope': expected another arm"),
        ('arm = "random_b"', 'arm = "replay"', r"expected another arm of this suite"),
        (
            'methods = ["random", "random_b", "replay"]',
            'methods = ["random", "random", "random_b", "replay"]',
            "names repeat",
        ),
        ('tune = ["dropout_in", "dropout_h1"]', "tune = []", r"\[suite\]\.tune: expected a non-empty list"),
    ],
)
def test_malformed_arms_say_where(tmp_path: Path, old: str, new: str, match: str) -> None:
    assert old in ARMS
    with pytest.raises(SuiteError, match=match):
        load_suite(_write(tmp_path, ARMS.replace(old, new)))


def test_an_unknown_tuned_name_is_refused_before_any_run(tmp_path: Path) -> None:
    suite = load_suite(_write(tmp_path, ARMS.replace('"dropout_h1"]', '"dropout_typo"]')))
    with pytest.raises(SpaceError, match=r"unknown hyperparameters \['dropout_typo'\]"):
        check_specs(suite.runs())
