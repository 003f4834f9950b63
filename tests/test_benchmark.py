"""The user's job end to end: the smoke suite's runs, then its tables and figures; a re-run runs nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import CliRunner

from hpobench_stn.orchestration.suite import load_suite
from hpobench_stn.reporting.pipeline import default_plots_dir, make_report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(run_cli: CliRunner, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    root = tmp_path_factory.mktemp("bench")
    out = root / "results" / "smoke"
    suite = run_cli("suite", "smoke", "--out", str(out), cwd=root)
    assert suite.returncode == 0, suite.stderr
    report = run_cli("report", str(out), cwd=root)
    assert report.returncode == 0, report.stderr
    return out, suite.stdout, report.stdout


def test_the_smoke_suite_writes_runs_tables_and_figures(smoke: tuple[Path, str, str]) -> None:
    out, suite_stdout, report_stdout = smoke
    n_runs = len(load_suite("smoke").runs())
    assert f"[{n_runs}/{n_runs}]" in suite_stdout
    for name in ("runs.csv", "summary.md", "summary.csv", "summary.tex"):
        assert (out / name).stat().st_size > 0, name
    plots = out.parent.parent / "plots" / "smoke"  # results/<suite> → plots/<suite>
    assert default_plots_dir(out) == plots
    stems = (
        "best_val_vs_time",
        "best_val_vs_log_time",
        "final_best",
        "budget",
        "epochs_per_trial",
        "schedule_digits_mlp",
    )
    for stem in stems:
        for ext in ("pdf", "png"):
            assert (plots / f"{stem}.{ext}").stat().st_size > 1000, stem
    summary = pd.read_csv(out / "summary.csv")
    assert sorted(summary["arm"]) == sorted(load_suite("smoke").methods)
    assert (summary["n"] == 2).all()
    assert summary["is_best"].sum() == 1
    assert "| digits_mlp (smoke) | stn" in report_stdout  # the Markdown table is printed


def test_a_second_invocation_runs_nothing_and_regenerates_the_report(
    smoke: tuple[Path, str, str], run_cli: CliRunner
) -> None:
    out, _, _ = smoke
    again = run_cli("suite", "smoke", "--out", str(out), cwd=out)
    assert again.returncode == 0, again.stderr
    lines = [line for line in again.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == len(load_suite("smoke").runs())
    assert all("already complete" in line for line in lines)
    before = (out / "summary.md").read_text()
    report = make_report(out)
    assert report.markdown == before  # the same runs give the same table (its time: benchmarks/report_time.py)
