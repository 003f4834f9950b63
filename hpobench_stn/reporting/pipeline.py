"""A suite's report in one call: load, aggregate and test, then write tables and figures.

``hpobench report results/cpu`` (and the end of ``nox -s benchmark``) call :func:`make_report`, which
runs the stages of :mod:`hpobench_stn.reporting` in order:

1. :mod:`~hpobench_stn.reporting.load`: ``results/<suite>/runs.csv`` (one row per run, complete or not),
   and the complete runs as :class:`~hpobench_stn.reporting.load.Runs`, whose arm order is fixed here;
2. :mod:`~hpobench_stn.reporting.aggregate`: the per task × arm summary, its paired tests and bootstrap
   intervals (:mod:`~hpobench_stn.reporting.significance`);
3. :mod:`~hpobench_stn.reporting.tables`: ``results/<suite>/summary.{md,csv,tex}``;
   :mod:`~hpobench_stn.reporting.figures`: ``plots/<suite>/*.{pdf,png}``.

Only complete runs enter the summary and the figures. Everything is recomputed from the run logs, so
a report can always be regenerated from a results folder alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..harness.method import AskTellMethod, Method
from ..harness.registry import RegistryError, get_method
from .aggregate import summarise
from .figures import write_figures
from .load import load_runs, write_csv
from .significance import check_test
from .tables import Provenance, flagged_runs, partly_tuned_arms, provenance, write_tables

__all__ = ["Report", "baseline_methods", "default_plots_dir", "make_report", "validation_methods"]


@dataclass(frozen=True)
class Report:
    """What :func:`make_report` wrote, and the numbers it wrote them from."""

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


def _registered_where(methods: Sequence[str], test: Callable[[type[Method]], bool]) -> set[str]:
    """The names among ``methods`` whose registered class passes ``test``; a method whose plug-in is
    not loaded here passes nothing."""
    found = set()
    for name in methods:
        try:
            if test(get_method(name)):
                found.add(name)
        except RegistryError:
            continue
    return found


def baseline_methods(methods: Sequence[str]) -> set[str]:
    """The black-box methods among ``methods`` (registered :class:`AskTellMethod` subclasses): the ones
    whose best result sets a task's time-to-target."""
    return _registered_where(methods, lambda cls: issubclass(cls, AskTellMethod))


def validation_methods(methods: Sequence[str]) -> set[str]:
    """The methods among ``methods`` whose records are periodic validations of one training run
    (``Method.record_kind == "validation"``, e.g. STN), not trials."""
    return _registered_where(methods, lambda cls: cls.record_kind == "validation")


def make_report(
    results_dir: Path,
    plots_dir: Path | None = None,
    *,
    times: Sequence[str] = ("linear", "log"),
    csv_path: Path | None = None,
    test: str = "wilcoxon",
) -> Report:
    """Write the per-run CSV, the summary tables and the figures of ``results_dir`` (see the module docstring).

    ``test`` is the paired test of the summary: ``"wilcoxon"`` (the default) or ``"t"``
    (:func:`~hpobench_stn.reporting.significance.paired_test`); an unknown name raises :class:`ValueError`
    before anything is written.
    """
    results_dir = Path(results_dir)
    check_test(test)
    # 1. Load: every run (complete or not) into the per-run CSV; the complete ones, with their arm order.
    paths = [Path(csv_path) if csv_path is not None else results_dir / "runs.csv"]
    table = write_csv(results_dir, paths[0])
    runs = load_runs(results_dir)
    # 2. Aggregate and test.
    methods = sorted(runs.runs["method"].unique())
    by_validation = validation_methods(methods)
    summary = summarise(runs, baseline_methods(methods), by_validation, test=test)
    prov = provenance(runs.runs)
    # 3. Write: tables beside the runs, figures into the plots folder.
    paths += write_tables(summary, prov, results_dir, flagged_runs(table), partly_tuned_arms(table))
    validation_arms = set(runs.runs.loc[runs.runs["method"].isin(by_validation), "arm"])
    plots = default_plots_dir(results_dir) if plots_dir is None else Path(plots_dir)
    paths += write_figures(runs, plots, times=times, validation_arms=validation_arms)
    markdown = (results_dir / "summary.md").read_text(encoding="utf-8")
    return Report(summary, prov, markdown, tuple(paths), runs.incomplete)
