"""The report pipeline's view of the registered methods: which set the target, which record validations."""

from __future__ import annotations

from hpobench_stn.reporting.pipeline import baseline_methods, validation_methods

METHODS = ["grid", "random", "skopt_gp", "optuna_tpe", "stn", "schedule_replay", "not_loaded_here"]


def test_baselines_are_the_registered_ask_tell_methods() -> None:
    assert baseline_methods(METHODS) == {"grid", "random", "skopt_gp", "optuna_tpe"}


def test_only_stn_records_validations_and_an_unknown_method_counts_as_neither() -> None:
    assert validation_methods(METHODS) == {"stn"}
