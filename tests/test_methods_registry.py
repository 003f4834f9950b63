"""The harness checks methods instead of trusting them; the registry refuses ambiguity, says what exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import FixedProposal

from hpobench_stn import (
    AskTellMethod,
    Budget,
    Config,
    FakeClock,
    MethodError,
    ProposalError,
    RegistryError,
    SearchSpace,
    Task,
    get_method,
    get_task,
    load_plugin,
    method_names,
    register_method,
    register_task,
    task_names,
)
from hpobench_stn.harness.records import LOG_NAME, load_log
from hpobench_stn.harness.runner import RunSpec, execute
from hpobench_stn.tasks.digits_mlp import DigitsTask

BUILTIN_METHODS = ["grid", "optuna_gp", "optuna_tpe", "random", "skopt_gp", "stn"]
VALID = {"dropout_in": 0.1, "dropout_h1": 0.2, "dropout_h2": 0.3, "weight_decay": 1e-3, "shift": 1}


class _Nothing(AskTellMethod):
    def setup(self, space: SearchSpace, seed: int) -> None:
        pass

    def ask(self) -> Config | None:
        return None

    def tell(self, config: Config, loss: float | None) -> None:
        pass


# ------------------------------------------------------------------------------------------------------
# Proposals are validated against the space


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"dropout_in": 0.95}, r"dropout_in=0.95 lies outside \[0.0, 0.8\]"),
        ({"shift": 1.5}, r"shift=1.5 is not an integer"),
        ({"shift": 3}, r"shift=3 lies outside \[0, 2\]"),
        ({"weight_decay": float("nan")}, r"weight_decay=nan is not a finite number"),
        ({"cutout": 2}, r"unknown \['cutout'\]"),
    ],
)
def test_out_of_space_proposal_raises_naming_method_key_and_value(
    plugins_for_tests: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    change: dict[str, Any],
    match: str,
) -> None:
    name = plugins_for_tests["fixed_method"]
    monkeypatch.setattr(FixedProposal, "proposal", {**VALID, **change})
    spec = RunSpec("digits_mlp", name, "smoke", 0, Budget(10))
    with pytest.raises(ProposalError, match=rf"method '{name}' proposed an invalid config: .*{match}"):
        execute(spec, tmp_path, clock=FakeClock(tick=0.01), device="cpu")
    # Nothing was trained or recorded for the bad proposal; the run stays incomplete (redone next time).
    meta, trials, _ = load_log(spec.run_dir(tmp_path))
    assert meta.method == name
    assert trials == []
    assert [p.name for p in spec.run_dir(tmp_path).iterdir()] == [LOG_NAME]


def test_missing_key_in_proposal_is_refused(
    plugins_for_tests: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    proposal = dict(VALID)
    del proposal["shift"]
    monkeypatch.setattr(FixedProposal, "proposal", proposal)
    spec = RunSpec("digits_mlp", plugins_for_tests["fixed_method"], "smoke", 0, Budget(10))
    with pytest.raises(ProposalError, match=r"missing \['shift'\]"):
        execute(spec, tmp_path, clock=FakeClock(tick=0.01), device="cpu")


# ------------------------------------------------------------------------------------------------------
# Method options


def test_unknown_option_lists_the_allowed_ones() -> None:
    with pytest.raises(MethodError, match=r"method 'grid' got unknown option\(s\) \['pts'\]; allowed: \['points'\]"):
        get_method("grid")({"pts": 3})
    with pytest.raises(MethodError, match=r"allowed: \['n_initial_points', 'acq_func'\]"):
        get_method("skopt_gp")({"n_initial": 3})


def test_method_without_options_says_so() -> None:
    with pytest.raises(MethodError, match=r"method 'random' got unknown option\(s\) \['points'\]; allowed: none"):
        get_method("random")({"points": 3})


@pytest.mark.parametrize(
    ("method", "options", "match"),
    [
        ("grid", {"points": 0}, r"method 'grid': points must be an integer >= 1, got 0"),
        ("grid", {"points": True}, r"points must be an integer >= 1, got True"),
        ("skopt_gp", {"acq_func": "UCB"}, r"method 'skopt_gp': acq_func must be one of"),
        ("skopt_gp", {"n_initial_points": 0}, r"n_initial_points must be an integer >= 1"),
        ("optuna_tpe", {"n_startup_trials": -1}, r"n_startup_trials must be an integer >= 0"),
        ("optuna_gp", {"n_startup_trials": "3"}, r"n_startup_trials must be an integer >= 0"),
    ],
)
def test_bad_option_value_is_a_method_error(method: str, options: dict[str, Any], match: str) -> None:
    with pytest.raises(MethodError, match=match):
        get_method(method)(options)


def test_options_fill_in_defaults() -> None:
    assert get_method("grid")().options_dict() == {"points": 3}
    assert get_method("skopt_gp")({"n_initial_points": 4}).options_dict() == {
        "n_initial_points": 4,
        "acq_func": "gp_hedge",
    }
    assert get_method("random")().options_dict() == {}


def test_bad_option_is_refused_before_a_run_dir_exists(tmp_path: Path) -> None:
    spec = RunSpec("digits_mlp", "grid", "smoke", 0, Budget(1), {"pts": 3})
    with pytest.raises(MethodError, match=r"allowed: \['points'\]"):
        execute(spec, tmp_path, clock=FakeClock(), device="cpu")
    assert not (tmp_path / "digits_mlp").exists()


# ------------------------------------------------------------------------------------------------------
# The registry


def test_builtin_plugins_are_found_through_entry_points() -> None:
    assert set(BUILTIN_METHODS) <= set(method_names())
    assert "digits_mlp" in task_names()
    assert get_task("digits_mlp") is DigitsTask
    for name in BUILTIN_METHODS:
        assert get_method(name).name == name


def test_duplicate_method_name_is_refused(isolated_registry: None) -> None:
    before = get_method("random")

    class Impostor(_Nothing):
        pass

    with pytest.raises(
        RegistryError, match=r"method name 'random' is already registered by hpobench_stn\.methods\.random_search"
    ):
        register_method("random")(Impostor)
    assert get_method("random") is before


def test_duplicate_task_name_is_refused(isolated_registry: None) -> None:
    class OtherDigits(DigitsTask):
        pass

    with pytest.raises(
        RegistryError, match=r"task name 'digits_mlp' is already registered by hpobench_stn\.tasks\.digits_mlp"
    ):
        register_task("digits_mlp")(OtherDigits)
    assert get_task("digits_mlp") is DigitsTask


def test_registering_the_same_class_again_is_harmless(isolated_registry: None) -> None:
    cls = register_method("nothing_test")(_Nothing)
    assert register_method("nothing_test")(cls) is cls
    assert get_method("nothing_test") is cls


def test_unknown_method_lists_the_known_ones() -> None:
    with pytest.raises(RegistryError, match=r"unknown method 'rnd'; known: ") as info:
        get_method("rnd")
    for name in BUILTIN_METHODS:
        assert name in str(info.value)
    with pytest.raises(RegistryError, match=r"unknown task 'mnist'; known: .*digits_mlp"):
        get_task("mnist")


def test_registry_refuses_bad_names_and_classes(isolated_registry: None) -> None:
    with pytest.raises(RegistryError, match=r"method name must be an identifier, got 'my-method'"):
        register_method("my-method")(_Nothing)
    with pytest.raises(RegistryError, match=r"needs a Method subclass"):
        register_method("not_a_method")(int)  # type: ignore[type-var]
    with pytest.raises(RegistryError, match=r"needs a Task subclass"):
        register_task("not_a_task")(_Nothing)  # type: ignore[type-var]


def test_refused_registration_does_not_rename_the_class(
    isolated_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused registration leaves the class as it was: random stays 'random' (its errors name it)."""
    cls = get_method("random")
    monkeypatch.setattr(cls, "name", "random")  # restored after the test whatever happens
    with pytest.raises(RegistryError, match=r"'grid' is already registered"):
        register_method("grid")(cls)
    assert cls.name == "random"


@pytest.mark.parametrize("filename", ["plugin.txt", "missing.py", "folder.py"])
def test_load_plugin_needs_an_existing_py_file(tmp_path: Path, filename: str) -> None:
    path = tmp_path / filename
    if filename == "plugin.txt":
        path.write_text("x = 1\n")
    if filename == "folder.py":
        path.mkdir()
    with pytest.raises(RegistryError, match=rf"plug-in '.*{filename}' is not a \.py file"):
        load_plugin(path)


def test_load_plugin_registers_its_classes_once(isolated_registry: None, tmp_path: Path) -> None:
    plugin = tmp_path / "plug.py"
    plugin.write_text(
        "from hpobench_stn import AskTellMethod, register_method\n"
        "@register_method('plugged_test')\n"
        "class Plugged(AskTellMethod):\n"
        "    def setup(self, space, seed): self.space = space\n"
        "    def ask(self): return self.space.default()\n"
        "    def tell(self, config, loss): pass\n"
    )
    load_plugin(plugin)
    load_plugin(str(plugin))  # a second load is a no-op, not a duplicate registration
    assert get_method("plugged_test").__name__ == "Plugged"


def test_plugin_that_fails_to_import_raises_and_can_be_fixed(isolated_registry: None, tmp_path: Path) -> None:
    plugin = tmp_path / "broken.py"
    plugin.write_text("raise ImportError('needs a library that is missing')\n")
    with pytest.raises(ImportError, match="missing"):
        load_plugin(plugin)
    plugin.write_text(
        "from hpobench_stn import register_task\n"
        "from hpobench_stn.tasks.digits_mlp import DigitsTask\n"
        "@register_task('fixed_plugin_test')\n"
        "class Fixed(DigitsTask):\n"
        "    pass\n"
    )
    load_plugin(plugin)
    task_cls: type[Task] = get_task("fixed_plugin_test")
    assert issubclass(task_cls, DigitsTask)
