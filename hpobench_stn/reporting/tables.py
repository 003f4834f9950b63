"""Stage 3 of a report: the summary table of a suite in Markdown, CSV and LaTeX (booktabs), with provenance.

:func:`write_tables` takes :func:`hpobench_stn.reporting.aggregate.summarise`'s frame and writes
``summary.md``, ``summary.csv`` and ``summary.tex``. The headline column is the test loss at the
validation-selected incumbent: in Markdown and LaTeX the best arm of each task (lowest mean) is in
bold and arms not significantly worse than it carry a dagger; the best validation loss stands beside
it. The CSV keeps the raw numbers, the test and its p-value, and the provenance as columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

__all__ = [
    "Provenance",
    "flagged_runs",
    "format_pm",
    "provenance",
    "render_latex",
    "render_markdown",
    "write_tables",
]


@dataclass(frozen=True)
class Provenance:
    """Where a table's numbers come from: every distinct value across its runs."""

    git_shas: tuple[str, ...]
    git_dirty: bool  # True when any run was made from a checkout with uncommitted changes
    first_run: str  # ISO 8601 start of the earliest run
    last_run: str
    devices: tuple[str, ...]
    budgets_s: tuple[float, ...]
    presets: tuple[str, ...]
    n_runs: int

    def sentence(self) -> str:
        shas = ", ".join(s[:10] for s in self.git_shas) or "unknown"
        dirty = " (uncommitted changes)" if self.git_dirty else ""
        budgets = ", ".join(f"{b:g} s" for b in self.budgets_s)
        return (
            f"{self.n_runs} runs, git {shas}{dirty}, {self.first_run} to {self.last_run}, "
            f"device {'; '.join(self.devices)}, budget {budgets} per run, preset {', '.join(self.presets)}"
        )


def provenance(runs: pd.DataFrame) -> Provenance:
    """The :class:`Provenance` of the runs table of :func:`hpobench_stn.reporting.load.load_runs`."""

    def distinct(column: str) -> tuple[str, ...]:
        return tuple(sorted({str(v) for v in runs[column].dropna()}))

    return Provenance(
        git_shas=distinct("git_sha"),
        git_dirty=bool(runs["git_dirty"].fillna(False).astype(bool).any()),
        first_run=str(runs["started_at"].min()),
        last_run=str(runs["started_at"].max()),
        devices=distinct("device"),
        budgets_s=tuple(sorted({float(b) for b in runs["budget_s"]})),
        presets=distinct("preset"),
        n_runs=len(runs),
    )


def format_pm(mean: float, sd: float) -> str:
    """``mean ± sd`` with sd to two significant digits (at most 4 decimals) and the mean to the same place.

    One seed (sd NaN) gives the mean alone to 4 significant digits; a missing mean gives "–".
    """
    if mean is None or not math.isfinite(mean):
        return "–"
    if sd is None or not math.isfinite(sd):
        return f"{mean:.4g}"
    if sd == 0:
        return f"{mean:.4f} ± 0"
    decimals = min(4, max(0, 1 - math.floor(math.log10(abs(sd)))))  # at most 4: "± 0.0001" is small enough
    return f"{mean:.{decimals}f} ± {sd:.{decimals}f}"


def _ttt(row: pd.Series) -> str:
    n = int(row["n"])
    if not math.isfinite(row["ttt_median_s"]):
        return f"– ({int(row['ttt_reached'])}/{n})"
    return f"{row['ttt_median_s']:.0f} s ({int(row['ttt_reached'])}/{n})"


def _evaluations(row: pd.Series) -> str:
    """Trials per run with (complete / failed), or a gray-box method's periodic validations (its
    COMPLETE records: the record that ends its run at the deadline holds no validation)."""
    if row["record_kind"] == "validation":
        return f"{row['complete_mean']:.1f} validations"
    return f"{row['trials_mean']:.1f} trials ({row['complete_mean']:.1f} / {row['failed_mean']:.1f})"


def _display(summary: pd.DataFrame, bold: tuple[str, str], dagger: str) -> pd.DataFrame:
    """The human table: formatted strings, the best arm wrapped in ``bold``, a ``dagger`` for the ties."""
    rows = []
    for _, r in summary.iterrows():
        test = format_pm(r["test_mean"], r["test_sd"])
        if r["is_best"]:
            test = f"{bold[0]}{test}{bold[1]}"
        elif r["not_worse"] is True:
            test = f"{test}{dagger}"
        rows.append(
            {
                "task": f"{r['task']} ({r['preset']})",
                "method": r["arm"],
                "n": int(r["n"]),
                "test at incumbent": test,
                "best validation": format_pm(r["best_val_mean"], r["best_val_sd"]),
                "evaluations per run": _evaluations(r),
                "time to target (validation)": _ttt(r),
            }
        )
    return pd.DataFrame(rows)


def _legend(summary: pd.DataFrame) -> str:
    tests = sorted(set(summary.loc[~summary["is_best"], "test_name"]))
    said = {
        "wilcoxon": "a one-sided exact Wilcoxon signed-rank test over paired seeds (n ≥ 5)",
        "t": "a one-sided paired t-test over paired seeds (3 ≤ n < 5; it assumes normal differences)",
        "none": "no test where fewer than 3 seeds are paired",
    }
    how = "; ".join(said[t] for t in tests if t in said) or "no other arm to test"
    return (
        "Test loss at the incumbent (the checkpoint each run selected by its best validation loss) and "
        "that best validation loss, mean ± sd over seeds. Methods are ranked on the test loss: a "
        "gradient-based tuner fits the validation set, so its validation loss is optimistic. Bold: the "
        "lowest mean test loss per task; † not significantly worse than it at α = 0.05 by "
        f"{how}. Evaluations: for black-box methods the trials per run, in brackets those that trained "
        "all their epochs and those that failed (a non-finite loss); for a method that tunes within one "
        "training run (STN), its periodic validations. Time to target (validation): median charged "
        "seconds to reach the best black-box method's mean final best validation loss (the best "
        "method's when the table has no black-box method; seeds that never did count as infinitely "
        "late), and how many seeds reached it."
    )


def render_markdown(summary: pd.DataFrame, prov: Provenance, flagged: Sequence[str] = ()) -> str:
    """The summary table, its legend, the provenance, and the runs flagged with warnings (if any)."""
    table = _display(summary, ("**", "**"), " †").to_markdown(index=False)
    text = f"{table}\n\n{_legend(summary)}\n\nProvenance: {prov.sentence()}.\n"
    if flagged:
        items = "\n".join(f"- {line}" for line in flagged)
        text += f"\nFlagged runs ({len(flagged)}; column `warnings` of runs.csv):\n\n{items}\n"
    return text


def flagged_runs(runs: pd.DataFrame) -> list[str]:
    """``task/preset/arm/seedN: warnings`` for each run of the per-run table that has warnings."""
    if "warnings" not in runs.columns:
        return []
    rows = runs[runs["warnings"].fillna("").astype(str) != ""]
    return [f"{r.task}/{r.preset}/{r.arm}/seed{r.seed}: {r.warnings}" for r in rows.itertuples()]


def _latex_escape(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#")):
        text = text.replace(char, escaped)
    return text


def render_latex(summary: pd.DataFrame, prov: Provenance) -> str:
    """A booktabs ``table`` with one block per task (a midrule between tasks) and the legend as caption."""
    display = _display(summary, ("\\textbf{", "}"), "$^\\dagger$")
    header = ["Method", "$n$", "Test at incumbent", "Best validation", "Evaluations per run", "Time to target (val.)"]
    lines = [
        "% " + _latex_escape(f"Generated by hpobench report; {prov.sentence()}."),
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        "\\begin{tabular}{lrllll}",
        "\\toprule",
        " & ".join(header) + " \\\\",
    ]
    for task, block in display.groupby("task", sort=False):
        lines += ["\\midrule", f"\\multicolumn{{{len(header)}}}{{l}}{{\\emph{{{_latex_escape(str(task))}}}}} \\\\"]
        for _, r in block.iterrows():
            cells = [
                _latex_escape(str(r["method"])),
                str(r["n"]),
                r["test at incumbent"].replace("±", "$\\pm$"),
                r["best validation"].replace("±", "$\\pm$"),
                r["evaluations per run"].replace(" / ", "\\,/\\,"),
                r["time to target (validation)"].replace("–", "--"),
            ]
            lines.append(" & ".join(cells) + " \\\\")
    caption = _latex_escape(_legend(summary)).replace("±", "$\\pm$").replace("†", "$^\\dagger$")
    caption = caption.replace("α", "$\\alpha$").replace("≥", "$\\geq$").replace("≤", "$\\leq$")
    caption = caption.replace("<", "$<$")
    lines += [
        "\\bottomrule",
        "\\end{tabular}",
        f"\\caption{{{caption} {_latex_escape(prov.sentence())}.}}",
        "\\end{table}",
    ]
    return "\n".join(lines) + "\n"


def write_tables(summary: pd.DataFrame, prov: Provenance, out: Path, flagged: Sequence[str] = ()) -> list[Path]:
    """Write ``summary.md`` (with the ``flagged`` runs' warnings), ``summary.csv`` and ``summary.tex``
    into ``out``; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv = summary.assign(
        git_sha=" ".join(prov.git_shas),
        git_dirty=prov.git_dirty,
        first_run=prov.first_run,
        last_run=prov.last_run,
        device="; ".join(prov.devices),
    )
    paths = [out / "summary.md", out / "summary.csv", out / "summary.tex"]
    paths[0].write_text(render_markdown(summary, prov, flagged), encoding="utf-8")
    csv.to_csv(paths[1], index=False)
    paths[2].write_text(render_latex(summary, prov), encoding="utf-8")
    return paths
