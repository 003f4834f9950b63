"""Failures are recorded, not raised: a diverging or crashing trial is FAILED and the run goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import FAIL_ABOVE

from hpobench_stn import AskTellMethod, Budget, FakeClock, TrialRecord, TrialStatus, get_method, method_names
from hpobench_stn.harness.records import load_final, load_log
from hpobench_stn.harness.runner import RunOutcome, RunSpec, execute

TICK = 0.01
BUDGET_S = 4.2  # ~8 trials when every trial completes; failing trials end at step 0 and cost less
OPTIONS: dict[str, dict[str, Any]] = {
    "skopt_gp": {"n_initial_points": 3},
    "optuna_tpe": {"n_startup_trials": 3},
    "optuna_gp": {"n_startup_trials": 3},
}


def _run(task: str, method: str, out: Path, seed: int = 0) -> tuple[RunOutcome, list[TrialRecord]]:
    spec = RunSpec(task, method, "smoke", seed, Budget(BUDGET_S), OPTIONS.get(method, {}))
    outcome = execute(spec, out, clock=FakeClock(tick=TICK), device="cpu")
    _, trials, _ = load_log(outcome.run_dir)
    return outcome, trials


BLACK_BOX = [m for m in method_names() if issubclass(get_method(m), AskTellMethod)]  # STN: test_stn.py


@pytest.mark.parametrize("method", BLACK_BOX)
def test_non_finite_training_loss_fails_the_trial_and_the_run_goes_on(
    method: str, plugins_for_tests: dict[str, str], tmp_path: Path
) -> None:
    """NaN loss (dropout_in > 0.4) → FAILED with a 'non-finite' reason; every method finishes its run."""
    outcome, trials = _run(plugins_for_tests["nan_task"], method, tmp_path)
    assert load_final(outcome.run_dir) == outcome.final  # the run completed
    failed = [t for t in trials if t.status is TrialStatus.FAILED]
    assert failed, "no proposal had dropout_in > 0.4: the test did not exercise a failure"
    assert len(failed) < len(trials), "no trial succeeded"
    for t in trials:
        if t.status is TrialStatus.OUT_OF_BUDGET:  # the deadline came before its first step
            assert t is trials[-1]
            continue
        assert (t.status is TrialStatus.FAILED) == (t.config["dropout_in"] > FAIL_ABOVE), t
    for t in failed:
        assert t.reason is not None
        assert "non-finite" in t.reason
        assert t.val_loss is None
        assert t.test_loss is None
        assert t.val_metrics == {}
    # The run went on past its first failure, and the incumbent is a trial that validated.
    assert trials.index(failed[0]) < len(trials) - 1
    assert outcome.final.incumbent_trial is not None
    assert trials[outcome.final.incumbent_trial].status is not TrialStatus.FAILED
    assert outcome.final.n_trials == len(trials)


def test_infinite_training_loss_fails_the_trial(plugins_for_tests: dict[str, str], tmp_path: Path) -> None:
    _, trials = _run(plugins_for_tests["inf_task"], "random", tmp_path)
    failed = [t for t in trials if t.status is TrialStatus.FAILED]
    assert failed
    assert len(failed) < len(trials)
    for t in failed:
        assert t.reason is not None
        assert "non-finite training loss inf" in t.reason


def test_failed_trial_keeps_best_so_far(plugins_for_tests: dict[str, str], tmp_path: Path) -> None:
    """A FAILED trial carries the previous best forward (None before anything validated)."""
    _, trials = _run(plugins_for_tests["nan_task"], "random", tmp_path)
    for prev, t in zip([None, *trials], trials, strict=False):
        if t.status is TrialStatus.FAILED:
            assert t.best_so_far == (prev.best_so_far if prev is not None else None)


def test_exception_in_training_fails_the_trial_with_its_text(plugins_for_tests: dict[str, str], tmp_path: Path) -> None:
    """An exception inside training becomes FAILED with 'Type: message'; the run completes."""
    outcome, trials = _run(plugins_for_tests["raising_task"], "random", tmp_path)
    failed = [t for t in trials if t.status is TrialStatus.FAILED]
    assert failed
    assert len(failed) < len(trials)
    for t in failed:
        assert t.config["dropout_in"] > FAIL_ABOVE
        assert t.reason == "RuntimeError: simulated out of memory in the forward pass"
        assert t.val_loss is None
        assert t.epochs == 0
        assert t.steps == 0
    assert load_final(outcome.run_dir).n_trials == len(trials)
