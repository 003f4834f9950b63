"""Error paths of the core that the other modules' tests do not reach: each message names the culprit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hpobench_stn import (
    AskTellMethod,
    Budget,
    BudgetTimer,
    Config,
    FakeClock,
    Float,
    RegistryError,
    SearchSpace,
    SpaceError,
    TaskError,
    register_method,
)
from hpobench_stn.datasets import DataError, resolve_data_root
from hpobench_stn.harness.records import RecordError, RunLog, ScheduleRecord, load_log
from hpobench_stn.nn.augment import cutout_mask
from hpobench_stn.nn.regularizers import (
    activation_regularization,
    embedding_dropout,
    temporal_activation_regularization,
)
from hpobench_stn.orchestration.cli import main
from hpobench_stn.tasks.digits_mlp import DigitsTask
from hpobench_stn.tasks.ptb_lstm import batchify


def test_timer_misuse_is_refused() -> None:
    timer = BudgetTimer(Budget(1), FakeClock())
    with pytest.raises(RuntimeError, match=r"BudgetTimer used before start\(\)"), timer.phase("train"):
        pass
    timer.start()
    with pytest.raises(RuntimeError, match=r"start\(\) called twice"):
        timer.start()
    with pytest.raises(ValueError, match=r"use BudgetTimer.paused\(\) for uncharged time"), timer.phase("paused"):
        pass


def test_log_records_need_the_open_log_and_a_known_type(tmp_path: Path) -> None:
    log = RunLog(tmp_path)
    record = ScheduleRecord(step=1, elapsed_s=0.5, values={"dropout": 0.25})
    with pytest.raises(RuntimeError, match=r"RunLog.append outside its 'with' block"):
        log.append(record)
    (tmp_path / "log.jsonl").write_text(json.dumps({"type": "mystery"}) + "\n")
    with pytest.raises(RecordError, match=r"log.jsonl:1: malformed record \(unknown record type 'mystery'\)"):
        load_log(tmp_path)
    (tmp_path / "log.jsonl").write_text(json.dumps(record.to_json()) + "\n")
    with pytest.raises(RecordError, match=r"log.jsonl: no metadata record"):
        load_log(tmp_path)


def test_schedule_records_round_trip_through_the_log(tmp_path: Path) -> None:
    """Gray-box schedules (RunContext.record_schedule) are read back as ScheduleRecords, in order."""
    from hpobench_stn.harness.records import RunMetadata

    meta = RunMetadata("t", "smoke", "m", {}, 0, 1.0, "src", "cpu", None, None, {}, [], "2026-01-01T00:00:00Z")
    records = [ScheduleRecord(step=s, elapsed_s=0.1 * s, values={"dropout": 0.1 * s}) for s in range(3)]
    with RunLog(tmp_path) as log:
        log.append(meta)
        for r in records:
            log.append(r)
    _, trials, schedule = load_log(tmp_path)
    assert trials == []
    assert schedule == records


def test_space_subsets_name_the_unknown_hyperparameters() -> None:
    space = SearchSpace({"a": Float(0.0, 1.0)})
    with pytest.raises(SpaceError, match=r"unknown hyperparameters \['b'\]; known: \['a'\]"):
        space.subspace(["a", "b"])


def test_one_class_cannot_take_two_names(isolated_registry: None) -> None:
    class Twice(AskTellMethod):
        def setup(self, space: SearchSpace, seed: int) -> None:
            pass

        def ask(self) -> Config | None:
            return None

        def tell(self, config: Config, loss: float | None) -> None:
            pass

    register_method("twice_first")(Twice)
    with pytest.raises(RegistryError, match=r"Twice is already registered as method 'twice_first'"):
        register_method("twice_second")(Twice)
    assert Twice.name == "twice_first"
    with pytest.raises(RegistryError, match=r"@register_method\('x'\) needs a Method subclass"):
        register_method("x")(int)  # type: ignore[type-var]


def test_malformed_method_option_exits_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "--task", "digits_mlp", "--method", "grid", "--preset", "smoke", "--budget", "1", "--seed", "0"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", "unused", "--option", "points"])
    assert exit_info.value.code == 2
    assert "method options look like key=value, got 'points'" in capsys.readouterr().err


def test_no_data_directory_names_both_ways_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HPOBENCH_STN_DATA", raising=False)
    with pytest.raises(DataError, match=r"no data directory: pass --data-dir or set \$HPOBENCH_STN_DATA"):
        resolve_data_root(None)


def test_evaluating_an_empty_split_is_refused() -> None:
    class EmptyVal(DigitsTask):
        def eval_batches(self, split: str) -> list[tuple[torch.Tensor, ...]]:  # type: ignore[override]
            return []

    task = EmptyVal("smoke")
    model = task.build_model(task.space.default(), torch.Generator().manual_seed(0))
    with pytest.raises(TaskError, match=r"task 'digits_mlp': split 'val' is empty"):
        task.evaluate(model, "val")


def test_regulariser_and_cutout_shapes_are_checked() -> None:
    h = torch.zeros(3, 2, 4)
    with pytest.raises(ValueError, match=r"activation_regularization: expected alpha of shape \(2,\), got \(3,\)"):
        activation_regularization(h, torch.zeros(3))
    with pytest.raises(ValueError, match=r"temporal_activation_regularization: expected beta of shape \(2,\)"):
        temporal_activation_regularization(h, torch.zeros(1))
    with pytest.raises(ValueError, match=r"embedding_dropout: expected tokens of shape \(T, N\), got \(5,\)"):
        embedding_dropout(torch.zeros(5, dtype=torch.long), torch.zeros(10, 2), torch.zeros(5), True)
    with pytest.raises(ValueError, match=r"cutout: length and holes must be >= 0"):
        cutout_mask(2, 8, 8, torch.tensor([2, -1]), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match=r"cutout: expected centres of shape \(2, 1, 2\), got \(2, 3, 2\)"):
        cutout_mask(2, 8, 8, torch.tensor([2, 2]), torch.tensor([1, 1]), centres=torch.zeros(2, 3, 2))


def test_too_short_a_token_stream_for_the_columns_is_refused() -> None:
    with pytest.raises(TaskError, match=r"ptb_lstm: 5 tokens are too few for 4 columns"):
        batchify(torch.arange(5), 4)
