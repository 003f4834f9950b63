"""Schedule: recorded hyperparameter values as a piecewise-constant step → config function."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpobench_stn import Float, Int, RunMetadata, ScheduleRecord, SearchSpace, SpaceError, TrialRecord
from hpobench_stn.harness.records import RecordError, RunLog
from hpobench_stn.harness.schedule import Schedule


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace(
        {
            "p": Float(0.0, 0.9),
            "wd": Float(1e-6, 1e-1, log=True),
            "holes": Int(0, 4),
            "alpha": Float(0.0, 4.0),
        }
    )


FIXED: dict[str, float | int] = {"p": 0.1, "wd": 1e-4, "holes": 1, "alpha": 2.5}


def rec(step: int, p: float, holes: float, **extra: float) -> ScheduleRecord:
    return ScheduleRecord(step=step, elapsed_s=step / 10, values={"p": p, "holes": holes, **extra})


@pytest.fixture
def schedule() -> Schedule:
    """Steps 5, 10, 20 (given out of order, with sigma columns)."""
    return Schedule.from_records(
        [
            rec(10, 0.4, 2.7, **{"sigma/p": 0.3, "sigma/holes": 0.5}),
            rec(5, 0.2, 1.2, **{"sigma/p": 0.4, "sigma/holes": 0.6}),
            rec(20, 0.6, 3.5, **{"sigma/p": 0.2, "sigma/holes": 0.4}),
        ]
    )


# ------------------------------------------------------------------------------------------------------
# from_records


def test_from_records_keeps_hyperparameters_and_sorts_by_step(schedule: Schedule) -> None:
    """Only hyperparameter columns survive (sigma/... dropped) and steps come out sorted."""
    assert schedule.steps == (5, 10, 20)
    assert set(schedule.values) == {"p", "holes"}
    assert schedule.values["p"] == (0.2, 0.4, 0.6)
    assert schedule.values["holes"] == (1.2, 2.7, 3.5)


def test_from_records_latest_record_at_a_step_wins() -> None:
    """Of two records at the same step (e.g. the last one at the deadline), the later one is kept."""
    s = Schedule.from_records([rec(0, 0.1, 1.0), rec(10, 0.2, 2.0), rec(10, 0.3, 3.0)])
    assert s.steps == (0, 10)
    assert s.values["p"] == (0.1, 0.3)
    assert s.values["holes"] == (1.0, 3.0)


def test_from_records_stores_floats() -> None:
    """Values are stored as floats, even when a record holds an int."""
    s = Schedule.from_records([ScheduleRecord(step=0, elapsed_s=0.0, values={"holes": 2})])
    assert s.values["holes"] == (2.0,)
    assert type(s.values["holes"][0]) is float


# ------------------------------------------------------------------------------------------------------
# at(): piecewise constant


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, {"p": 0.2, "holes": 1.2}),  # before the first record: the first
        (4, {"p": 0.2, "holes": 1.2}),
        (5, {"p": 0.2, "holes": 1.2}),  # exactly at a record
        (9, {"p": 0.2, "holes": 1.2}),  # between: the earlier record
        (10, {"p": 0.4, "holes": 2.7}),
        (19, {"p": 0.4, "holes": 2.7}),
        (20, {"p": 0.6, "holes": 3.5}),
        (10_000, {"p": 0.6, "holes": 3.5}),  # after the end: the last
    ],
)
def test_at_uses_the_latest_record_at_or_before_step(schedule: Schedule, step: int, expected: dict[str, float]) -> None:
    """at(step) is the record in force at step; before the first step the first record applies."""
    assert schedule.at(step) == expected


# ------------------------------------------------------------------------------------------------------
# config_at()


def test_config_at_floors_ints_and_fills_from_fixed(schedule: Schedule, space: SearchSpace) -> None:
    """Scheduled Ints are floored to Python ints; unscheduled names come from fixed; the config validates."""
    cfg = schedule.config_at(12, space, FIXED)
    assert cfg == {"p": 0.4, "wd": 1e-4, "holes": 2, "alpha": 2.5}
    assert type(cfg["holes"]) is int
    assert list(cfg) == list(space)
    assert space.validate(cfg) == cfg


def test_config_at_clips_out_of_range_values(space: SearchSpace) -> None:
    """Floats beyond a bound are clipped to it; Ints past high + 1 or below low are clipped to the range."""
    s = Schedule(steps=(0, 10), values={"p": (0.95, -0.01), "holes": (5.3, -0.2), "wd": (0.2, 1e-7)})
    high = s.config_at(0, space, FIXED)
    low = s.config_at(10, space, FIXED)
    assert (high["p"], high["holes"], high["wd"]) == (0.9, 4, 0.1)
    assert (low["p"], low["holes"], low["wd"]) == (0.0, 0, 1e-6)
    assert space.validate(high) == high
    assert space.validate(low) == low


@pytest.mark.parametrize(("continuous", "expected"), [(2.0, 2), (2.999, 2), (3.0, 3), (4.99, 4), (0.5, 0)])
def test_config_at_applies_the_int_rule(space: SearchSpace, continuous: float, expected: int) -> None:
    """A scheduled Int is Int.from_continuous of its value: integer k owns [k, k + 1)."""
    s = Schedule(steps=(0,), values={"holes": (continuous,)})
    holes = space["holes"]
    assert isinstance(holes, Int)
    assert s.config_at(0, space, FIXED)["holes"] == expected == holes.from_continuous(continuous)


# ------------------------------------------------------------------------------------------------------
# Errors


def test_empty_schedule_is_refused() -> None:
    """A Schedule needs at least one step."""
    with pytest.raises(SpaceError, match=r"a Schedule needs at least one record"):
        Schedule(steps=(), values={})


def test_from_no_records_is_refused() -> None:
    """from_records([]) says the run logged no schedule."""
    with pytest.raises(SpaceError, match=r"no schedule records"):
        Schedule.from_records([])


@pytest.mark.parametrize("steps", [(0, 0), (5, 3), (0, 10, 10), (0, 10, 5)])
def test_non_increasing_steps_are_refused(steps: tuple[int, ...]) -> None:
    """Steps must increase strictly."""
    with pytest.raises(SpaceError, match=r"schedule steps must increase strictly"):
        Schedule(steps=steps, values={"p": tuple(0.1 for _ in steps)})


def test_length_mismatch_is_refused() -> None:
    """Each name needs exactly one value per step; the message names it and both lengths."""
    with pytest.raises(SpaceError, match=r"schedule of 'p' has 1 values for 2 steps"):
        Schedule(steps=(0, 10), values={"p": (0.1,)})


def test_schedule_naming_an_unknown_hyperparameter_is_refused(space: SearchSpace) -> None:
    """config_at refuses a schedule whose names the space lacks."""
    s = Schedule(steps=(0,), values={"p": (0.1,), "dropconnect": (0.2,)})
    with pytest.raises(SpaceError, match=r"the schedule names \['dropconnect'\], which the space does not have"):
        s.config_at(0, space, FIXED)


# ------------------------------------------------------------------------------------------------------
# from_run


def test_from_run_reads_the_schedule_of_a_run_folder(tmp_path: Path, meta: RunMetadata, trial: TrialRecord) -> None:
    """A run's log.jsonl (meta, trials and schedule lines) gives the same Schedule as its records."""
    records = [
        rec(0, 0.1, 0.5, **{"sigma/p": 0.5}),
        rec(8, 0.3, 2.2, **{"sigma/p": 0.4}),
        rec(16, 0.5, 3.9, **{"sigma/p": 0.3}),
        rec(16, 0.55, 4.1, **{"sigma/p": 0.2}),
    ]
    with RunLog(tmp_path) as log:
        log.append(meta)
        log.append(records[0])
        log.append(records[1])
        log.append(trial)
        log.append(records[2])
        log.append(records[3])
    s = Schedule.from_run(tmp_path)
    assert s == Schedule.from_records(records)
    assert s.steps == (0, 8, 16)
    assert s.values == {"p": (0.1, 0.3, 0.55), "holes": (0.5, 2.2, 4.1)}
    assert Schedule.from_run(str(tmp_path)) == s


def test_from_run_without_schedule_lines_is_refused(tmp_path: Path, meta: RunMetadata, trial: TrialRecord) -> None:
    """A black-box run (no schedule lines) cannot be replayed; the error says why."""
    with RunLog(tmp_path) as log:
        log.append(meta)
        log.append(trial)
    with pytest.raises(SpaceError, match=r"no schedule records: was the run made by a gray-box method"):
        Schedule.from_run(tmp_path)


def test_from_run_without_metadata_is_refused(tmp_path: Path) -> None:
    """A log without its meta line is malformed (load_log's RecordError passes through)."""
    with RunLog(tmp_path) as log:
        log.append(rec(0, 0.1, 0.5))
    with pytest.raises(RecordError, match=r"no metadata record"):
        Schedule.from_run(tmp_path)


def test_fraction_at_bounds_weighs_each_record_by_the_steps_it_was_in_force(space: SearchSpace) -> None:
    """Positions on the sampling scale; within 1 % of either end counts; the last record has no duration."""
    log_space = SearchSpace({"l2": Float(1e-3, 1e3, log=True), "p": Float(0.0, 0.9)})
    sched = Schedule((0, 10, 40, 100), {"l2": (1.05e-3, 0.5, 0.5, 999.0), "p": (0.45, 0.895, 0.0, 0.45)})
    fractions = sched.fraction_at_bounds(log_space)
    assert fractions["l2"] == pytest.approx(0.1)  # 1.05e-3 sits 0.35 % up the log range for steps 0-10
    assert fractions["p"] == pytest.approx(0.9)  # 0.895 (99.4 %) for 30 steps, 0 for 60
    assert sched.fraction_at_bounds(log_space, tolerance=0.001)["p"] == pytest.approx(0.6)
    with pytest.raises(ValueError, match=r"tolerance must lie in \(0, 0.5\), got 0.5"):
        sched.fraction_at_bounds(log_space, tolerance=0.5)


def test_mean_position_averages_the_tail_of_the_run_by_steps() -> None:
    space = SearchSpace({"p": Float(0.0, 0.9)})
    sched = Schedule((0, 50, 75, 100), {"p": (0.09, 0.18, 0.45, 0.9)})
    assert sched.mean_position("p", space) == pytest.approx((50 * 0.1 + 25 * 0.2 + 25 * 0.5) / 100)
    assert sched.mean_position("p", space, since=0.75) == pytest.approx(0.5)
    assert sched.mean_position("p", space, since=0.6) == pytest.approx((15 * 0.2 + 25 * 0.5) / 40)
    with pytest.raises(SpaceError, match=r"the schedule has no 'q'"):
        sched.mean_position("q", space)
    with pytest.raises(ValueError, match=r"since must lie in \[0, 1\), got 1"):
        sched.mean_position("p", space, since=1)
