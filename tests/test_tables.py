"""The summary table in Markdown, CSV and LaTeX: formatting, marking and provenance."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import make_runs

from hpobench_stn.reporting.aggregate import summarise
from hpobench_stn.reporting.load import Runs
from hpobench_stn.reporting.significance import bootstrap_ci
from hpobench_stn.reporting.tables import (
    format_ci,
    format_p,
    provenance,
    render_latex,
    render_markdown,
    write_tables,
)

nan = math.nan


@pytest.mark.parametrize(
    ("mean", "low", "high", "text"),
    [
        (1.5318, 1.51, 1.55, "1.532 [1.510, 1.550]"),  # width 0.04: to the third decimal
        (4.0, 3.0, 5.0, "4.0 [3.0, 5.0]"),
        (123.4, 100.0, 150.0, "123 [100, 150]"),
        (5.95312, 5.95301, 5.95322, "5.9531 [5.9530, 5.9532]"),  # never more than 4 decimals
        (5.95312, nan, nan, "5.953"),  # one seed: no interval
        (1.5, 1.5, 1.5, "1.5000 [1.5000, 1.5000]"),  # every seed alike
        (nan, nan, nan, "–"),
    ],
)
def test_format_ci(mean: float, low: float, high: float, text: str) -> None:
    assert format_ci(mean, low, high) == text


@pytest.mark.parametrize(
    ("p", "text"), [(3 / 64, "0.0469"), (0.0625, "0.0625"), (1.0, "1"), (0.0004, "< 0.001"), (None, "–"), (nan, "–")]
)
def test_format_p(p: float | None, text: str) -> None:
    assert format_p(p) == text


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.split("|")[1:-1]]


def _rows(md: str) -> dict[str, list[str]]:
    return {_cells(line)[1]: _cells(line) for line in md.splitlines() if line.startswith("| t (smoke)")}


def test_markdown_shows_means_with_intervals_and_says_plainly_that_three_seeds_are_not_tested() -> None:
    """The fixture has three paired seeds: the default exact Wilcoxon test needs five, so a gets no
    mark either way, its p column says so and a legend line says why."""
    runs = make_runs()
    summary = summarise(runs, {"random"}, {"stn"})
    md = render_markdown(summary, provenance(runs.runs))
    rows = _rows(md)
    header = next(line for line in md.splitlines() if line.startswith("| task"))
    assert _cells(header) == [
        "task",
        "method",
        "n",
        "test at incumbent",
        "best validation",
        "p vs best (Holm)",
        "evaluations per run",
        "time to target (validation)",
    ]
    # The fixture's test losses are the validation losses + 0.25: b is best on test as on validation.
    b_test = format_ci(17 / 6 + 0.25, *bootstrap_ci([3.75, 2.25, 3.25]))
    assert rows["b"][3:6] == [f"**{b_test}**", format_ci(17 / 6, *bootstrap_ci([3.5, 2.0, 3.0])), "best"]
    assert rows["a"][3:6] == [format_ci(4.25, *bootstrap_ci([4.25, 3.25, 5.25])), rows["a"][4], "no test (n < 5)"]
    assert "[" in rows["a"][4]
    assert "†" not in rows["a"][3]
    assert "25 s (2/3)" in rows["a"]
    assert "10 s (3/3)" in rows["b"]
    # 7/3 trials: 6/3 at the cap, none stopped by patience or pruned, 1/3 failed
    assert "2.3 trials (2.0 / 0.0 / 0.0 / 0.3)" in rows["a"]
    assert "0.7 validations" in rows["b"]  # STN: its complete records (2/3), periodic validations, not trials
    assert "ranked on the test loss" in md
    assert "a 95 % bootstrap confidence interval" in md
    assert "one-sided exact Wilcoxon signed-rank test" in md
    assert "Holm's correction" in md
    assert "\n\nn < 5 paired seeds: no test" in md
    assert "t-test" not in md
    assert "Provenance: 6 runs, git 0123456789, 2026-11-27T00:00:00Z to 2026-11-27T00:02:00Z" in md
    assert "budget 30 s per run" in md


def test_the_t_option_names_itself_and_marks_three_seeds() -> None:
    """a − b: 0.5, 1, 2: p ≈ 0.059 by the t-test, not below 0.05, so a carries the dagger."""
    runs = make_runs()
    md = render_markdown(summarise(runs, {"random"}, {"stn"}, test="t"), provenance(runs.runs))
    rows = _rows(md)
    assert rows["a"][3].endswith(" †")
    assert rows["a"][5] == "0.059"
    assert "one-sided paired t-test (option --test t" in md
    assert "Wilcoxon" not in md
    assert "no test" not in md


def test_a_table_of_one_method_has_nothing_to_test() -> None:
    runs = make_runs({("a", seed): ([10.0], [2.0 + seed]) for seed in range(5)})
    md = render_markdown(summarise(runs, set()), provenance(runs.runs))
    assert _rows(md)["a"][5] == "best"
    assert "no test" not in md


def _six_seeds(diffs: dict[str, list[float]]) -> Runs:
    return make_runs(
        {(arm, seed): ([10.0], [2.0 + 0.25 * seed + d]) for arm, ds in diffs.items() for seed, d in enumerate(ds)}
    )


def test_daggers_follow_the_holm_adjusted_p_values() -> None:
    """Raw one-sided exact p-values 1/64, 2/64, 5/64; after Holm 3/64, 4/64, 5/64 (test_aggregate.py):
    b's raw p is below 0.05, but only a stays significantly worse after the correction."""
    runs = _six_seeds(
        {
            "a": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
            "b": [-0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
            "c": [0.1, 0.2, -0.3, 0.4, 0.5, 0.6],
            "best": [0.0] * 6,
        }
    )
    md = render_markdown(summarise(runs, set()), provenance(runs.runs))
    rows = _rows(md)
    assert [rows[arm][5] for arm in ("a", "b", "c", "best")] == ["0.0469", "0.0625", "0.0781", "best"]
    assert [rows[arm][3].endswith(" †") for arm in ("a", "b", "c")] == [False, True, True]
    assert rows["best"][3].startswith("**")
    assert "no test" not in md


def test_a_significantly_worse_arm_has_no_dagger() -> None:
    trials = {(arm, seed): ([10.0], [value]) for seed in range(3) for arm, value in (("a", 2.0 + seed), ("b", 1.0))}
    runs = make_runs(trials)
    md = render_markdown(summarise(runs, {"random"}, test="t"), provenance(runs.runs))
    row = _rows(md)["a"]
    assert row[3] == format_ci(3.25, *bootstrap_ci([2.25, 3.25, 4.25]))  # test (val + 0.25), no dagger
    assert row[5] == "0.0371"  # a − b = 1, 2, 3: t = 2√3 with 2 degrees of freedom


def test_latex_is_booktabs_with_escaped_names_and_provenance() -> None:
    runs = make_runs()
    summary = summarise(runs, {"random"})
    summary["arm"] = summary["arm"].replace({"b": "stn_fixed_sigma"})
    tex = render_latex(summary, provenance(runs.runs))
    for needle in ("\\toprule", "\\midrule", "\\bottomrule", "\\begin{tabular}{lrlllll}", "\\caption{"):
        assert needle in tex
    b_test = format_ci(17 / 6 + 0.25, *bootstrap_ci([3.75, 2.25, 3.25]))
    assert f"stn\\_fixed\\_sigma & 3 & \\textbf{{{b_test}}} & " in tex
    assert "no test (n $<$ 5)" in tex
    assert "n $<$ 5 paired seeds: no test" in tex
    assert "a 95 \\% bootstrap" in tex
    assert tex.startswith("% Generated by hpobench report; 6 runs, git 0123456789")
    for symbol in ("±", "†", "α", "≥", "<"):  # every symbol is LaTeX
        assert symbol not in tex.replace("$<$", "")


def test_latex_daggers_with_the_t_option() -> None:
    runs = make_runs()
    tex = render_latex(summarise(runs, {"random"}, test="t"), provenance(runs.runs))
    assert f"{format_ci(4.25, *bootstrap_ci([4.25, 3.25, 5.25]))}$^\\dagger$ & " in tex
    assert "$^\\dagger$ not significantly worse than the best at $\\alpha$ = 0.05" in tex
    assert "(option -{}-test t;" in tex  # "--" would print as an en dash


def test_write_tables_writes_three_files_and_the_csv_carries_raw_numbers_and_provenance(tmp_path: Path) -> None:
    runs = make_runs()
    paths = write_tables(summarise(runs, {"random"}), provenance(runs.runs), tmp_path / "out")
    assert [p.name for p in paths] == ["summary.md", "summary.csv", "summary.tex"]
    csv = pd.read_csv(paths[1])
    assert csv.loc[csv["arm"] == "b", "best_val_mean"].item() == pytest.approx(17 / 6)
    for column in ("best_val_ci_low", "best_val_ci_high", "test_ci_low", "test_ci_high", "p_value", "p_holm"):
        assert column in csv.columns
    b = csv[csv["arm"] == "b"].iloc[0]
    assert (b["test_ci_low"], b["test_ci_high"]) == pytest.approx(bootstrap_ci([3.75, 2.25, 3.25]))
    assert set(csv["test_name"]) == {"wilcoxon"}  # the test of the table, named on every row
    assert set(csv["git_sha"]) == {"0123456789abcdef"}
    assert set(csv["device"]) == {"cpu (x86_64, 1 threads)"}


def test_provenance_flags_a_dirty_checkout() -> None:
    runs = make_runs().runs
    runs.loc[0, "git_dirty"] = True
    assert provenance(runs).git_dirty
    assert "(uncommitted changes)" in provenance(runs).sentence()
