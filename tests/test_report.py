"""The per-run table: one row per run directory, complete or not, with fixed columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from hpobench_stn import Budget, FakeClock
from hpobench_stn.records import FINAL_NAME
from hpobench_stn.report import COLUMNS, collect, write_csv
from hpobench_stn.runner import RunSpec, execute


def _run(out: Path, method: str, seed: int) -> None:
    execute(
        RunSpec("digits_mlp", method, "smoke", seed, Budget(1.5)),
        out,
        clock=FakeClock(tick=0.01),
        device="cpu",
    )


def test_collect_lists_complete_and_incomplete_runs(tmp_path: Path) -> None:
    _run(tmp_path, "random", 0)
    _run(tmp_path, "grid", 1)
    incomplete = tmp_path / "digits_mlp" / "smoke" / "grid" / "seed1"
    (incomplete / FINAL_NAME).unlink()  # as if the process died before finishing
    table = collect(tmp_path)
    assert list(table.columns) == COLUMNS
    assert list(zip(table["method"], table["seed"], table["status"], strict=True)) == [
        ("grid", 1, "incomplete"),
        ("random", 0, "complete"),
    ]
    assert table["n_trials"].min() >= 1
    grid = table[table["method"] == "grid"].iloc[0]
    assert pd.isna(grid["test_at_best"])  # not reported for an unfinished run


def test_write_csv_creates_folders_and_round_trips(tmp_path: Path) -> None:
    _run(tmp_path / "runs", "random", 0)
    csv_path = tmp_path / "deep" / "er" / "runs.csv"
    table = write_csv(tmp_path / "runs", csv_path)
    read = pd.read_csv(csv_path)
    assert list(read.columns) == COLUMNS
    assert read.shape == table.shape == (1, len(COLUMNS))


def test_collect_refuses_a_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no results folder"):
        collect(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=r"no runs under"):
        collect(tmp_path)


def test_load_runs_reads_complete_runs_into_long_tables(tmp_path: Path) -> None:
    from hpobench_stn.records import load_final, load_log
    from hpobench_stn.report import load_runs

    _run(tmp_path, "random", 0)
    execute(
        RunSpec("digits_mlp", "stn", "smoke", 1, Budget(1.0), {"schedule_every": 2}, arm="stn_a"),
        tmp_path,
        clock=FakeClock(tick=0.01),
        device="cpu",
    )
    _run(tmp_path, "grid", 1)
    (tmp_path / "digits_mlp" / "smoke" / "grid" / "seed1" / FINAL_NAME).unlink()
    runs = load_runs(tmp_path)
    assert runs.incomplete == 1
    assert list(runs.runs["arm"]) == ["random", "stn_a"]
    assert list(runs.runs["method"]) == ["random", "stn"]
    stn_dir = tmp_path / "digits_mlp" / "smoke" / "stn_a" / "seed1"
    final = load_final(stn_dir)
    row = runs.runs[runs.runs["arm"] == "stn_a"].iloc[0]
    assert row["best_val"] == final.incumbent_val_loss
    assert row["phase/hyper"] == final.phases_s["hyper"] > 0
    assert runs.runs.loc[runs.runs["arm"] == "random", "phase/hyper"].item() == 0.0  # never entered: 0
    _, trials, schedule = load_log(stn_dir)
    assert (runs.trials["arm"] == "stn_a").sum() == len(trials)
    assert (runs.schedules["arm"] == "stn_a").sum() == sum(len(s.values) for s in schedule)
    assert set(runs.schedules["name"]) >= {"dropout_in", "sigma/dropout_in"}
    assert runs.schedules["arm"].eq("stn_a").all()


def test_load_runs_without_a_complete_run_says_so(tmp_path: Path) -> None:
    from hpobench_stn.report import load_runs

    _run(tmp_path, "random", 0)
    (tmp_path / "digits_mlp" / "smoke" / "random" / "seed0" / FINAL_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=r"no complete runs under .* \(1 incomplete\)"):
        load_runs(tmp_path)
