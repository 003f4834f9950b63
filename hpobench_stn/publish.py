"""A suite's report in one call: tables into the results folder, figures into the plots folder.

``hpobench report results/cpu`` (and the end of ``nox -s benchmark``) call :func:`make_report`:

* ``results/<suite>/runs.csv``: one row per run, complete or not (:func:`hpobench_stn.report.collect`);
* ``results/<suite>/summary.{md,csv,tex}``: per task × method (:mod:`hpobench_stn.tables`);
* ``plots/<suite>/*.{pdf,png}``: the figures of :mod:`hpobench_stn.figures`.

Only complete runs enter the summary and the figures. Everything is recomputed from the run logs, so
a report can always be regenerated from a results folder alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .aggregate import summarise
from .figures import write_figures
from .method import AskTellMethod
from .registry import RegistryError, get_method
from .report import load_runs, write_csv
from .tables import Provenance, provenance, write_tables

__all__ = ["Report", "baseline_methods", "default_plots_dir", "make_report"]


@dataclass(frozen=True)
class Report:
    summary: pd.DataFrame  # aggregate.SUMMARY_COLUMNS, one row per task × arm
    provenance: Provenance
    markdown: str  # the Markdown summary table, as written to summary.md
    paths: tuple[Path, ...]  # every file written
    incomplete: int  # runs left out because they have not finished


def default_plots_dir(results_dir: Path) -> Path:
    """``<root>/plots/<suite>`` for ``<root>/results/<suite>``; otherwise ``<results_dir>/plots``."""
    results_dir = Path(results_dir)
    if results_dir.resolve().parent.name == "results":
        return results_dir.resolve().parent.parent / "plots" / results_dir.resolve().name
    return results_dir / "plots"


def baseline_methods(methods: Sequence[str]) -> set[str]:
    """The black-box methods among ``methods`` (registered :class:`AskTellMethod` subclasses): the ones
    whose best result sets a task's time-to-target."""
    found = set()
    for name in methods:
        try:
            if issubclass(get_method(name), AskTellMethod):
                found.add(name)
        except RegistryError:
            continue  # a method whose plug-in is not loaded here: not a baseline
    return found


def make_report(
    results_dir: Path,
    plots_dir: Path | None = None,
    *,
    times: Sequence[str] = ("linear", "log"),
    csv_path: Path | None = None,
) -> Report:
    """Write the per-run CSV, the summary tables and the figures of ``results_dir`` (see the module docstring)."""
    results_dir = Path(results_dir)
    paths = [Path(csv_path) if csv_path is not None else results_dir / "runs.csv"]
    write_csv(results_dir, paths[0])
    runs = load_runs(results_dir)
    summary = summarise(runs, baseline_methods(sorted(runs.runs["method"].unique())))
    prov = provenance(runs.runs)
    paths += write_tables(summary, prov, results_dir)
    paths += write_figures(runs, default_plots_dir(results_dir) if plots_dir is None else Path(plots_dir), times=times)
    markdown = (results_dir / "summary.md").read_text(encoding="utf-8")
    return Report(summary, prov, markdown, tuple(paths), runs.incomplete)
