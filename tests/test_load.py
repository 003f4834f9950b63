"""Stage 1 of a report: reading run folders (the per-run table, the long tables of complete runs, the arm order)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from hpobench_stn import Budget, FakeClock
from hpobench_stn.harness.records import FINAL_NAME
from hpobench_stn.harness.runner import RunSpec, execute
from hpobench_stn.reporting.load import COLUMNS, collect, write_csv


def _run(out: Path, method: str, seed: int, budget_s: float = 1.5) -> None:
    execute(
        RunSpec("digits_mlp", method, "smoke", seed, Budget(budget_s)),
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


def test_collect_counts_pruned_trials_in_complete_and_incomplete_runs(tmp_path: Path) -> None:
    """runs.csv's ``n_pruned`` is the final record's count in a complete run and is counted from the log
    in an incomplete one; both equal the PRUNED trials of the log."""
    from hpobench_stn import TrialStatus
    from hpobench_stn.harness.records import load_log

    _run(tmp_path, "optuna_sh", 0, budget_s=8.0)
    _run(tmp_path, "optuna_sh", 1, budget_s=8.0)
    incomplete = tmp_path / "digits_mlp" / "smoke" / "optuna_sh" / "seed1"
    (incomplete / FINAL_NAME).unlink()
    table = collect(tmp_path).set_index("seed")
    for seed in (0, 1):
        _, trials, _ = load_log(tmp_path / "digits_mlp" / "smoke" / "optuna_sh" / f"seed{seed}")
        pruned = sum(t.status is TrialStatus.PRUNED for t in trials)
        assert pruned >= 1
        assert table.loc[seed, "n_pruned"] == pruned
        assert table.loc[seed, "n_early_stopped"] == 0  # the smoke preset has no patience


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
    from hpobench_stn.harness.records import load_final, load_log
    from hpobench_stn.reporting.load import load_runs

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
    from hpobench_stn.reporting.load import load_runs

    _run(tmp_path, "random", 0)
    (tmp_path / "digits_mlp" / "smoke" / "random" / "seed0" / FINAL_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=r"no complete runs under .* \(1 incomplete\)"):
        load_runs(tmp_path)


def test_the_arm_order_is_fixed_once_and_every_later_stage_follows_it() -> None:
    from dataclasses import replace

    from report_fixtures import make_runs

    from hpobench_stn.reporting.aggregate import summarise
    from hpobench_stn.reporting.figures import plot_best_vs_time

    runs = make_runs()
    assert runs.arms == ("a", "b")
    assert runs.ordered(["b", "zzz", "a", "b"]) == ["a", "b"]  # repeats and unknown arms dropped
    # Handed a different order, the summary and the figures keep it instead of sorting again.
    flipped = replace(runs, arms=("b", "a"))
    assert list(summarise(flipped, {"random"})["arm"]) == ["b", "a"]
    assert [t.get_text() for t in plot_best_vs_time(flipped).legends[0].get_texts()] == ["b", "a"]


@pytest.mark.parametrize("arms", [("a",), ("a", "b", "c"), ("a", "b", "a")])
def test_runs_refuse_an_arm_order_that_is_not_the_arms_of_the_table(arms: tuple[str, ...]) -> None:
    from dataclasses import replace

    from report_fixtures import make_runs

    with pytest.raises(ValueError, match=r"Runs\.arms must list each arm of the runs table once, got \["):
        replace(make_runs(), arms=arms)
