"""Stage 3 of a report: the summary table of a suite in Markdown, CSV and LaTeX (booktabs), with provenance.

:func:`write_tables` takes :func:`hpobench_stn.reporting.aggregate.summarise`'s frame and writes
``summary.md``, ``summary.csv`` and ``summary.tex``. The headline column is the test loss at the
validation-selected incumbent, each mean with its bootstrap interval: in Markdown and LaTeX the best
arm of each task (lowest mean) is in bold and arms not significantly worse than it (Holm-adjusted
p ≥ α) carry a dagger; the best validation loss stands beside it, then the adjusted p-value, or "no
test" where too few seeds are paired. The legend names the test. The CSV keeps the raw numbers (sd
and interval ends, the test, raw and adjusted p-values) and the provenance as columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .significance import ALPHA, CONFIDENCE, MIN_N, check_test

__all__ = [
    "Provenance",
    "flagged_runs",
    "format_ci",
    "format_p",
    "partly_tuned_arms",
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


def format_ci(mean: float, low: float, high: float) -> str:
    """``mean [low, high]``, all to the decimal place that gives the interval's width two significant
    digits (at most 4 decimals).

    No interval (one seed: ``low`` and ``high`` NaN) gives the mean alone to 4 significant digits; a
    missing mean gives "–".
    """
    if mean is None or not math.isfinite(mean):
        return "–"
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{mean:.4g}"
    width = high - low
    decimals = 4 if width <= 0 else min(4, max(0, 1 - math.floor(math.log10(width))))
    return f"{mean:.{decimals}f} [{low:.{decimals}f}, {high:.{decimals}f}]"


def format_p(p: float | None) -> str:
    """A p-value to three significant digits, "< 0.001" below that; "–" for none."""
    if p is None or not math.isfinite(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


def _ttt(row: pd.Series) -> str:
    n = int(row["n"])
    if not math.isfinite(row["ttt_median_s"]):
        return f"– ({int(row['ttt_reached'])}/{n})"
    return f"{row['ttt_median_s']:.0f} s ({int(row['ttt_reached'])}/{n})"


def _evaluations(row: pd.Series) -> str:
    """Trials per run with (stopped by the epoch cap / by patience / pruned by the method / failed), or a
    gray-box method's periodic validations (its COMPLETE records: the record that ends its run at the
    deadline holds no validation)."""
    if row["record_kind"] == "validation":
        return f"{row['complete_mean']:.1f} validations"
    counts = " / ".join(f"{row[c]:.1f}" for c in ("capped_mean", "patience_mean", "pruned_mean", "failed_mean"))
    return f"{row['trials_mean']:.1f} trials ({counts})"


def _vs_best(row: pd.Series) -> str:
    """The p column: the Holm-adjusted p-value, "best" for the best arm, "no test" where none was made."""
    if row["is_best"]:
        return "best"
    if pd.isna(row["p_holm"]):
        return f"no test (n < {MIN_N[check_test(row['test_name'])]})"
    return format_p(row["p_holm"])


def _display(summary: pd.DataFrame, bold: tuple[str, str], dagger: str) -> pd.DataFrame:
    """The human table: formatted strings, the best arm wrapped in ``bold``, a ``dagger`` for the ties."""
    rows = []
    for _, r in summary.iterrows():
        test = format_ci(r["test_mean"], r["test_ci_low"], r["test_ci_high"])
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
                "best validation": format_ci(r["best_val_mean"], r["best_val_ci_low"], r["best_val_ci_high"]),
                "p vs best (Holm)": _vs_best(r),
                "evaluations per run": _evaluations(r),
                "time to target (validation)": _ttt(r),
            }
        )
    return pd.DataFrame(rows)


TEST_SAID = {
    "wilcoxon": "a one-sided exact Wilcoxon signed-rank test",
    "t": "a one-sided paired t-test (option --test t; it assumes normally distributed differences)",
}


def _legend(summary: pd.DataFrame) -> str:
    """What the table shows and how it was tested; a line of its own says where no test was made."""
    names = sorted({check_test(t) for t in summary["test_name"]}) or ["wilcoxon"]
    how = " and ".join(TEST_SAID[t] for t in names)
    others = summary[~summary["is_best"].astype(bool)]
    untested = others[others["p_holm"].isna()]
    text = (
        "Test loss at the incumbent (the checkpoint each run selected by its best validation loss) and "
        f"that best validation loss: the mean over seeds and, in brackets, a {CONFIDENCE * 100:g} % bootstrap "
        "confidence interval of it (BCa). Methods are ranked on the test loss: a gradient-based tuner "
        "fits the validation set, so its validation loss is optimistic. Bold: the lowest mean test loss "
        f"per task. Every other method is tested against it on the test loss over the seeds both "
        f"finished, by {how}, with Holm's correction across the methods of the task; p: the adjusted "
        f"p-value; † not significantly worse than the best at α = {ALPHA:g} (adjusted p ≥ {ALPHA:g}). "
        "Evaluations: for black-box methods the trials per run, in brackets those stopped by the epoch "
        "cap, those stopped by patience (converged), those pruned by a multi-fidelity method (stopped "
        "early at a rung; each is judged by its best checkpoint, like every trial) and those that failed "
        "(a non-finite loss); the rest "
        "were cut by the deadline; for a method that tunes within one "
        "training run (STN), its periodic validations. Time to target (validation): median charged "
        "seconds to reach the best black-box method's mean final best validation loss (the best "
        "method's when the table has no black-box method; seeds that never did count as infinitely "
        "late), and how many seeds reached it."
    )
    for name in names:
        if (untested["test_name"] == name).any():
            text += f"\n\nn < {MIN_N[name]} paired seeds: no test (no † and no claim either way)."
    return text


def render_markdown(
    summary: pd.DataFrame, prov: Provenance, flagged: Sequence[str] = (), partly_tuned: Sequence[str] = ()
) -> str:
    """The summary table, its legend, the provenance, the arms that tuned only part of the space
    (:func:`partly_tuned_arms`) and the runs flagged with warnings (if any)."""
    table = _display(summary, ("**", "**"), " †").to_markdown(index=False)
    text = f"{table}\n\n{_legend(summary)}\n\nProvenance: {prov.sentence()}.\n"
    if partly_tuned:
        items = "\n".join(f"- {line}" for line in partly_tuned)
        text += f"\nArms that tuned part of the space (the rest stayed at their defaults):\n\n{items}\n"
    if flagged:
        items = "\n".join(f"- {line}" for line in flagged)
        text += f"\nFlagged runs ({len(flagged)}; column `warnings` of runs.csv):\n\n{items}\n"
    return text


def partly_tuned_arms(runs: pd.DataFrame) -> list[str]:
    """``task/preset/arm: names`` for each arm whose method tuned only part of its open space (column
    ``method_tuned`` of the per-run table, e.g. ``ift``: the hyperparameters differentiable in the loss)."""
    if "method_tuned" not in runs.columns:
        return []
    rows = runs[runs["method_tuned"].fillna("").astype(str) != ""]
    lines = {f"{r.task}/{r.preset}/{r.arm}: {r.method_tuned}" for r in rows.itertuples()}
    return sorted(lines)


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


def _latex_symbols(text: str) -> str:
    """The legend's and the p column's symbols in LaTeX (after :func:`_latex_escape`)."""
    symbols = {"<": "$<$", "†": "$^\\dagger$", "α": "$\\alpha$", "≥": "$\\geq$", "≤": "$\\leq$", "--": "-{}-"}
    for char, latex in symbols.items():
        text = text.replace(char, latex)
    return text


def render_latex(summary: pd.DataFrame, prov: Provenance) -> str:
    """A booktabs ``table`` with one block per task (a midrule between tasks) and the legend as caption."""
    display = _display(summary, ("\\textbf{", "}"), "$^\\dagger$")
    header = [
        "Method",
        "$n$",
        "Test at incumbent",
        "Best validation",
        "$p$ (Holm)",
        "Evaluations per run",
        "Time to target (val.)",
    ]
    lines = [
        "% " + _latex_escape(f"Generated by hpobench report; {prov.sentence()}."),
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        "\\begin{tabular}{lrlllll}",
        "\\toprule",
        " & ".join(header) + " \\\\",
    ]
    for task, block in display.groupby("task", sort=False):
        lines += ["\\midrule", f"\\multicolumn{{{len(header)}}}{{l}}{{\\emph{{{_latex_escape(str(task))}}}}} \\\\"]
        for _, r in block.iterrows():
            cells = [
                _latex_escape(str(r["method"])),
                str(r["n"]),
                r["test at incumbent"],
                r["best validation"],
                _latex_symbols(r["p vs best (Holm)"]),
                r["evaluations per run"].replace(" / ", "\\,/\\,"),
                r["time to target (validation)"].replace("–", "--"),
            ]
            lines.append(" & ".join(cells) + " \\\\")
    caption = _latex_symbols(_latex_escape(_legend(summary)).replace("\n\n", " "))
    lines += [
        "\\bottomrule",
        "\\end{tabular}",
        f"\\caption{{{caption} {_latex_escape(prov.sentence())}.}}",
        "\\end{table}",
    ]
    return "\n".join(lines) + "\n"


def write_tables(
    summary: pd.DataFrame,
    prov: Provenance,
    out: Path,
    flagged: Sequence[str] = (),
    partly_tuned: Sequence[str] = (),
) -> list[Path]:
    """Write ``summary.md`` (with the arms that tuned part of the space and the ``flagged`` runs'
    warnings), ``summary.csv`` and ``summary.tex`` into ``out``; return their paths."""
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
    paths[0].write_text(render_markdown(summary, prov, flagged, partly_tuned), encoding="utf-8")
    csv.to_csv(paths[1], index=False)
    paths[2].write_text(render_latex(summary, prov), encoding="utf-8")
    return paths
