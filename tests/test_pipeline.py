"""The report pipeline's view of the registered methods (which set the target, which record validations)
and its options."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpobench_stn.reporting.pipeline import baseline_methods, make_report, validation_methods

METHODS = ["grid", "random", "skopt_gp", "optuna_tpe", "stn", "schedule_replay", "not_loaded_here"]


def test_baselines_are_the_registered_ask_tell_methods() -> None:
    assert baseline_methods(METHODS) == {"grid", "random", "skopt_gp", "optuna_tpe"}


def test_only_stn_records_validations_and_an_unknown_method_counts_as_neither() -> None:
    assert validation_methods(METHODS) == {"stn"}


def test_an_unknown_test_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown test 'anova'; known: wilcoxon, t"):
        make_report(tmp_path, test="anova")
    assert list(tmp_path.iterdir()) == []
