"""The contract every registered black-box method meets, on the real ``digits_mlp`` task with a fake clock.

Each method runs three times: seed 0, seed 0 again, and seed 1. ``FakeClock(tick=TICK)`` advances by
``TICK`` at every clock read, about one read per training step, so runs are deterministic and end
after the same number of trials whatever the machine's speed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hpobench_stn import (
    Budget,
    FakeClock,
    FinalRecord,
    Int,
    TrialRecord,
    TrialStatus,
    get_method,
    get_task,
    method_names,
)
from hpobench_stn.harness.method import AskTellMethod
from hpobench_stn.harness.records import load_final, load_log
from hpobench_stn.harness.runner import RunOutcome, RunSpec, execute

TASK = "digits_mlp"
PRESET = "smoke"
TICK = 0.01  # fake seconds per clock read
BUDGET_S = 4.2  # ~8 trials of the smoke preset (4 epochs of 6 steps plus ~28 reads of bookkeeping each)

# Small start-up phases, so the model-based code paths (GP fit, TPE, acquisition) run within the budget.
OPTIONS: dict[str, dict[str, Any]] = {
    "skopt_gp": {"n_initial_points": 3},
    "optuna_tpe": {"n_startup_trials": 3},
    "optuna_gp": {"n_startup_trials": 3},
}
STARTUP_TRIALS = 3

# The budget bound, in fake time, where every clock read costs one TICK (fake time counts reads, not
# work). The harness checks the deadline before every training step and every validation batch. From one
# check to the next the clock is read at most STEP_READS times, the next check included (1 between two
# steps; 3 from an epoch's last step to its validation: two phase switches, then the check), so the check
# that first sees the deadline comes at most STEP_READS ticks after it: the fake-time cost of one training
# step. After that check the harness's bookkeeping reads the clock a fixed handful of times (closing the
# phase, the check that skips tell, the per-trial phase snapshot, the record's timestamp and pause, the run
# loop's check, the final reading): microseconds each in wall time, one TICK each here; BOOKKEEPING_READS
# is that count (7 today) plus one of slack. A loop that checked the deadline only between trials, as
# Optuna's own timeout does, would overshoot by up to a whole trial (~50 TICKs). The exact bound of one
# step, with a clock that moves only during training steps, is pinned in test_runner.py.
STEP_READS = 3
BOOKKEEPING_READS = 8
MAX_OVERSHOOT_S = (STEP_READS + BOOKKEEPING_READS) * TICK + 1e-9  # + float rounding in the sum of ticks


@dataclass(frozen=True)
class MethodRuns:
    method: str
    options: dict[str, Any]
    first: RunOutcome  # seed 0
    repeat: RunOutcome  # seed 0 again, in another folder
    other_seed: RunOutcome  # seed 1
    live: list[TrialRecord]  # the first run's records as the harness reported them (on_trial)

    def trials(self, outcome: RunOutcome | None = None) -> list[TrialRecord]:
        _, trials, _ = load_log((outcome or self.first).run_dir)
        return trials


def _run(method: str, seed: int, out: Path, live: list[TrialRecord] | None = None) -> RunOutcome:
    spec = RunSpec(TASK, method, PRESET, seed, Budget(BUDGET_S), OPTIONS.get(method, {}))
    return execute(spec, out, clock=FakeClock(tick=TICK), device="cpu", on_trial=None if live is None else live.append)


# Black-box methods (the ask/tell loop); the gray-box STN has its own contract tests in test_stn.py.
BLACK_BOX = [m for m in method_names() if issubclass(get_method(m), AskTellMethod)]


@pytest.fixture(scope="module", params=BLACK_BOX)
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> MethodRuns:
    method: str = request.param
    live: list[TrialRecord] = []
    first = _run(method, 0, tmp_path_factory.mktemp(f"{method}-a"), live)
    repeat = _run(method, 0, tmp_path_factory.mktemp(f"{method}-b"))
    other = _run(method, 1, tmp_path_factory.mktemp(f"{method}-c"))
    return MethodRuns(method, OPTIONS.get(method, {}), first, repeat, other, live)


def test_runs_enough_trials_to_exercise_the_model(runs: MethodRuns) -> None:
    """The budget leaves trials after the random start-up, so a model-based method used its model."""
    final = runs.first.final
    assert final.n_trials == len(runs.trials()) >= STARTUP_TRIALS + 2
    assert final.n_complete == sum(t.status is TrialStatus.COMPLETE for t in runs.trials())


def test_every_proposal_lies_in_the_space(runs: MethodRuns) -> None:
    """Logged configs validate unchanged (Ints as Python ints), for every run of the method."""
    space = get_task(TASK).space
    for outcome in (runs.first, runs.repeat, runs.other_seed):
        for trial in runs.trials(outcome):
            assert space.validate(trial.config) == trial.config
            for name, dist in space.items():
                assert type(trial.config[name]) is (int if isinstance(dist, Int) else float), trial.config


def test_same_seed_gives_the_same_trials(runs: MethodRuns) -> None:
    """Seed 0 twice: the same configs in the same order, with the same outcomes."""
    a, b = runs.trials(runs.first), runs.trials(runs.repeat)
    assert [t.config for t in a] == [t.config for t in b]
    assert [(t.status, t.val_loss, t.steps) for t in a] == [(t.status, t.val_loss, t.steps) for t in b]


def test_different_seed_gives_different_configs(runs: MethodRuns) -> None:
    a, c = runs.trials(runs.first), runs.trials(runs.other_seed)
    assert [t.config for t in a] != [t.config for t in c]
    assert a[0].config != c[0].config


def test_charged_time_stays_within_budget_plus_one_step(runs: MethodRuns) -> None:
    """final.elapsed_s ≤ budget + one training step + fixed bookkeeping, in fake time (MAX_OVERSHOOT_S)."""
    for outcome in (runs.first, runs.repeat, runs.other_seed):
        assert BUDGET_S <= outcome.final.elapsed_s <= BUDGET_S + MAX_OVERSHOOT_S


def test_trial_timestamps_increase_and_end_before_the_final_reading(runs: MethodRuns) -> None:
    elapsed = [t.elapsed_s for t in runs.trials()]
    assert elapsed == sorted(elapsed)
    assert elapsed[-1] <= runs.first.final.elapsed_s


def test_trial_records_round_trip_through_json(runs: MethodRuns) -> None:
    """from_json(to_json(r)) == r, also through a JSON string; the log holds what the harness reported."""
    trials = runs.trials()
    for record in trials:
        assert TrialRecord.from_json(record.to_json()) == record
        assert TrialRecord.from_json(json.loads(json.dumps(record.to_json()))) == record
    assert trials == runs.live


def test_final_record_round_trips_through_json(runs: MethodRuns) -> None:
    final = runs.first.final
    assert FinalRecord.from_json(final.to_json()) == final
    assert FinalRecord.from_json(json.loads(json.dumps(final.to_json()))) == final
    assert load_final(runs.first.run_dir) == final


def test_charged_total_equals_sum_of_phase_totals(runs: MethodRuns) -> None:
    """Every charged second belongs to exactly one phase: elapsed_s == sum(phases_s)."""
    final = runs.first.final
    assert "paused" not in final.phases_s
    assert math.fsum(final.phases_s.values()) == pytest.approx(final.elapsed_s, rel=1e-9, abs=1e-9)


def test_trial_phases_are_timed(runs: MethodRuns) -> None:
    """ask/train/validate in every trial that validated; tell unless the deadline came first."""
    trials = runs.trials()
    for trial in trials[:-1]:  # the loop went on after these, so the deadline had not come at tell
        assert {"ask", "train", "validate", "tell"} <= set(trial.phases_s), trial
        assert all(v > 0 for v in trial.phases_s.values())
        assert "paused" not in trial.phases_s
    last = trials[-1]
    assert {"ask", "train"} <= set(last.phases_s)
    if last.status is TrialStatus.OUT_OF_BUDGET:
        assert "tell" not in last.phases_s, "nothing can use what a method learns after the deadline"


def test_best_so_far_is_the_running_minimum(runs: MethodRuns) -> None:
    best: float | None = None
    for trial in runs.trials():
        if trial.val_loss is not None and (best is None or trial.val_loss < best):
            best = trial.val_loss
        assert trial.best_so_far == best


def test_only_incumbents_have_a_test_loss(runs: MethodRuns) -> None:
    """The test set is evaluated exactly when a trial improves on the best validation loss so far."""
    best: float | None = None
    for trial in runs.trials():
        improves = trial.val_loss is not None and (best is None or trial.val_loss < best)
        assert (trial.test_loss is not None) == improves, trial
        if improves:
            best = trial.val_loss
    assert runs.trials()[0].test_loss is not None


def test_final_incumbent_is_the_best_trial(runs: MethodRuns) -> None:
    trials = runs.trials()
    validated = [t for t in trials if t.val_loss is not None]
    best = min(validated, key=lambda t: (t.val_loss, t.index))
    final = runs.first.final
    assert final.incumbent_trial == best.index
    assert final.incumbent_config == best.config
    assert final.incumbent_val_loss == best.val_loss
    assert final.incumbent_test_loss == best.test_loss
    assert final.incumbent_test_loss is not None


def test_metadata_records_the_run(runs: MethodRuns) -> None:
    """The meta line names the run and its options (defaults filled in) and the method's libraries."""
    meta, _, _ = load_log(runs.first.run_dir)
    assert meta == runs.first.final.meta
    assert (meta.task, meta.preset, meta.method, meta.seed, meta.budget_s) == (
        TASK,
        PRESET,
        runs.method,
        0,
        BUDGET_S,
    )
    method_cls = get_method(runs.method)
    assert meta.method_options == method_cls(runs.options).options_dict()
    assert set(method_cls.libraries) <= set(meta.versions)
    assert {"python", "torch", "numpy"} <= set(meta.versions)
