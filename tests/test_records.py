"""Run records: JSON round trips, the append-only log, the atomic final record, and run-dir recovery."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from hpobench_stn import FinalRecord, RunMetadata, ScheduleRecord, TrialRecord, TrialStatus
from hpobench_stn.harness.records import (
    FINAL_NAME,
    LOG_NAME,
    RecordError,
    RunLog,
    RunState,
    finite,
    load_final,
    load_log,
    prepare_run_dir,
    write_final,
)


def _snapshot(folder: Path) -> list[bytes]:
    """The contents of every file under ``folder``, sorted: renames keep it, deletions change it."""
    return sorted(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def _write_log(run_dir: Path, meta: RunMetadata, trials: list[TrialRecord]) -> None:
    with RunLog(run_dir) as log:
        log.append(meta)
        for t in trials:
            log.append(t)


# ------------------------------------------------------------------------------------------------------
# Round trips


def test_trial_record_round_trips(trial: TrialRecord) -> None:
    assert TrialRecord.from_json(trial.to_json()) == trial
    assert TrialRecord.from_json(json.loads(json.dumps(trial.to_json()))) == trial
    d = trial.to_json()
    assert d["type"] == "trial"
    assert d["status"] == "complete"


def test_failed_trial_record_round_trips(trial: TrialRecord) -> None:
    failed = replace(trial, status=TrialStatus.FAILED, val_loss=None, test_loss=None, reason="non-finite")
    assert TrialRecord.from_json(json.loads(json.dumps(failed.to_json()))) == failed


def test_final_and_meta_records_round_trip(final: FinalRecord, meta: RunMetadata) -> None:
    assert FinalRecord.from_json(final.to_json()) == final
    assert FinalRecord.from_json(json.loads(json.dumps(final.to_json()))) == final
    assert RunMetadata.from_json(json.loads(json.dumps(meta.to_json()))) == meta


def test_schedule_record_round_trips() -> None:
    record = ScheduleRecord(step=10, elapsed_s=1.5, values={"dropout": 0.25, "sigma/dropout": 0.5})
    assert ScheduleRecord.from_json(json.loads(json.dumps(record.to_json()))) == record


def test_finite_maps_non_finite_to_none() -> None:
    assert finite(None) is None
    assert finite(float("nan")) is None
    assert finite(float("inf")) is None
    assert finite(2) == 2.0
    assert type(finite(2)) is float


# ------------------------------------------------------------------------------------------------------
# The log


def test_run_log_lines_are_flushed_as_they_are_appended(tmp_path: Path, meta: RunMetadata, trial: TrialRecord) -> None:
    """A reader sees each record while the log is still open: a crash loses nothing written."""
    with RunLog(tmp_path) as log:
        log.append(meta)
        assert len((tmp_path / LOG_NAME).read_text().splitlines()) == 1
        log.append(trial)
        lines = (tmp_path / LOG_NAME).read_text().splitlines()
        assert len(lines) == 2
        assert json.loads(lines[1]) == trial.to_json()
    assert load_log(tmp_path) == (meta, [trial], [])


def test_run_log_appends_rather_than_truncates(tmp_path: Path, meta: RunMetadata, trial: TrialRecord) -> None:
    _write_log(tmp_path, meta, [trial])
    with RunLog(tmp_path) as log:
        log.append(trial)
    assert load_log(tmp_path)[1] == [trial, trial]


def test_run_log_refuses_appends_outside_its_block(tmp_path: Path, meta: RunMetadata) -> None:
    log = RunLog(tmp_path)
    with pytest.raises(RuntimeError, match=r"outside its 'with' block"):
        log.append(meta)


def test_run_log_writes_strict_json(tmp_path: Path, meta: RunMetadata, trial: TrialRecord) -> None:
    """NaN is not JSON: a record holding one is refused rather than written as a bare NaN."""
    with RunLog(tmp_path) as log, pytest.raises(ValueError, match=r"JSON compliant"):
        log.append(replace(trial, val_loss=float("nan")))


@pytest.mark.parametrize(
    "bad_line",
    [
        pytest.param('{"type": "trial", "index": 1, "conf', id="truncated"),
        pytest.param("garbage\n", id="garbage"),
        pytest.param('{"type": "mystery"}\n', id="unknown-type"),
        pytest.param('{"index": 1}\n', id="no-type"),
        pytest.param('{"type": "trial", "index": 1}\n', id="missing-fields"),
    ],
)
def test_load_log_names_the_bad_line(tmp_path: Path, meta: RunMetadata, trial: TrialRecord, bad_line: str) -> None:
    _write_log(tmp_path, meta, [trial])
    with (tmp_path / LOG_NAME).open("a") as fh:
        fh.write(bad_line)
    with pytest.raises(RecordError, match=rf"{LOG_NAME}:3: malformed record"):
        load_log(tmp_path)


def test_load_log_needs_the_metadata_line(tmp_path: Path, trial: TrialRecord) -> None:
    with RunLog(tmp_path) as log:
        log.append(trial)
    with pytest.raises(RecordError, match=r"no metadata record"):
        load_log(tmp_path)


# ------------------------------------------------------------------------------------------------------
# The final record


def test_write_final_is_atomic_and_leaves_no_temporary_file(tmp_path: Path, final: FinalRecord) -> None:
    path = write_final(tmp_path, final)
    assert path == tmp_path / FINAL_NAME
    assert sorted(p.name for p in tmp_path.iterdir()) == [FINAL_NAME]
    assert load_final(tmp_path) == final


def test_write_final_failure_keeps_the_old_file_and_cleans_up(
    tmp_path: Path, final: FinalRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash before the rename leaves the previous final.json intact and no temporary file behind."""
    write_final(tmp_path, final)
    before = (tmp_path / FINAL_NAME).read_bytes()

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_final(tmp_path, replace(final, n_trials=99))
    assert sorted(p.name for p in tmp_path.iterdir()) == [FINAL_NAME]
    assert (tmp_path / FINAL_NAME).read_bytes() == before


def test_load_final_names_the_file_when_malformed(tmp_path: Path) -> None:
    (tmp_path / FINAL_NAME).write_text('{"meta": {')
    with pytest.raises(RecordError, match=rf"{FINAL_NAME}: malformed final record"):
        load_final(tmp_path)


# ------------------------------------------------------------------------------------------------------
# prepare_run_dir: complete runs untouched, anything else moved aside, nothing deleted


def test_complete_run_is_left_untouched(
    tmp_path: Path, meta: RunMetadata, trial: TrialRecord, final: FinalRecord
) -> None:
    _write_log(tmp_path, meta, [trial])
    write_final(tmp_path, final)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert prepare_run_dir(tmp_path) == (RunState.COMPLETE, [])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_empty_run_dir_is_incomplete_with_nothing_to_move(tmp_path: Path) -> None:
    assert prepare_run_dir(tmp_path) == (RunState.INCOMPLETE, [])


def test_incomplete_log_is_moved_aside(tmp_path: Path, meta: RunMetadata, trial: TrialRecord) -> None:
    _write_log(tmp_path, meta, [trial])
    before = _snapshot(tmp_path)
    state, moved = prepare_run_dir(tmp_path)
    assert state is RunState.INCOMPLETE
    assert len(moved) == 1
    assert moved[0].name.startswith(f"{LOG_NAME}.incomplete-")
    assert not (tmp_path / LOG_NAME).exists()
    assert _snapshot(tmp_path) == before  # renamed, not deleted


def test_truncated_log_is_moved_aside_as_corrupt(tmp_path: Path, meta: RunMetadata, trial: TrialRecord) -> None:
    _write_log(tmp_path, meta, [trial, trial])
    log = tmp_path / LOG_NAME
    log.write_bytes(log.read_bytes()[:-20])  # the process died while writing the last line
    before = _snapshot(tmp_path)
    state, moved = prepare_run_dir(tmp_path)
    assert state is RunState.INCOMPLETE
    assert [p.name.startswith(f"{LOG_NAME}.corrupt-") for p in moved] == [True]
    assert not log.exists()
    assert _snapshot(tmp_path) == before


def test_corrupt_final_is_moved_aside_with_the_log(tmp_path: Path, meta: RunMetadata, trial: TrialRecord) -> None:
    _write_log(tmp_path, meta, [trial])
    (tmp_path / FINAL_NAME).write_text('{"meta": ')
    before = _snapshot(tmp_path)
    state, moved = prepare_run_dir(tmp_path)
    assert state is RunState.INCOMPLETE
    names = sorted(p.name for p in moved)
    assert len(names) == 2
    assert names[0].startswith(f"{FINAL_NAME}.corrupt-")
    assert names[1].startswith(f"{LOG_NAME}.incomplete-")
    assert not (tmp_path / FINAL_NAME).exists()
    assert not (tmp_path / LOG_NAME).exists()
    assert _snapshot(tmp_path) == before


def test_repeated_move_aside_never_overwrites(tmp_path: Path, meta: RunMetadata, trial: TrialRecord) -> None:
    """Two failed attempts within one second get distinct names; both survive."""
    _write_log(tmp_path, meta, [trial])
    prepare_run_dir(tmp_path)
    _write_log(tmp_path, meta, [trial, trial])
    prepare_run_dir(tmp_path)
    aside = sorted(tmp_path.iterdir())
    assert len(aside) == 2
    assert all(p.name.startswith(f"{LOG_NAME}.incomplete-") for p in aside)
    assert sorted(len(load_lines) for load_lines in (p.read_text().splitlines() for p in aside)) == [2, 3]
