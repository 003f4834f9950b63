"""Reports over a folder of runs. This module writes the per-run CSV; tables and figures build on it.

:func:`collect` walks a results folder for run directories (those holding ``log.jsonl`` or
``final.json``) and returns one row per run with the columns of :data:`COLUMNS`. Incomplete runs are
listed too (status ``incomplete``), from their log, so a user sees what is missing.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .records import FINAL_NAME, LOG_NAME, RecordError, RunState, load_final, load_log

__all__ = ["COLUMNS", "collect", "write_csv"]

COLUMNS = [
    "task",
    "preset",
    "method",
    "seed",
    "budget_s",
    "n_trials",
    "best_val",
    "test_at_best",
    "elapsed_s",
    "status",
]


def _run_dirs(root: Path) -> list[Path]:
    found = {p.parent for p in root.rglob(FINAL_NAME)} | {p.parent for p in root.rglob(LOG_NAME)}
    return sorted(found)


def collect(root: Path) -> pd.DataFrame:
    """One row per run under ``root``; raises :class:`FileNotFoundError` when there is none."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no results folder at {str(root)!r}")
    rows = []
    for run_dir in _run_dirs(root):
        try:
            final = load_final(run_dir)
        except (RecordError, FileNotFoundError):
            try:
                meta, trials, _ = load_log(run_dir)
            except (RecordError, FileNotFoundError):
                continue  # neither file parses: not a run we can describe
            best = [t.best_so_far for t in trials if t.best_so_far is not None]
            rows.append(
                {
                    "task": meta.task,
                    "preset": meta.preset,
                    "method": meta.method,
                    "seed": meta.seed,
                    "budget_s": meta.budget_s,
                    "n_trials": len(trials),
                    "best_val": best[-1] if best else None,
                    "test_at_best": None,
                    "elapsed_s": trials[-1].elapsed_s if trials else 0.0,
                    "status": RunState.INCOMPLETE.value,
                }
            )
            continue
        m = final.meta
        rows.append(
            {
                "task": m.task,
                "preset": m.preset,
                "method": m.method,
                "seed": m.seed,
                "budget_s": m.budget_s,
                "n_trials": final.n_trials,
                "best_val": final.incumbent_val_loss,
                "test_at_best": final.incumbent_test_loss,
                "elapsed_s": final.elapsed_s,
                "status": RunState.COMPLETE.value,
            }
        )
    if not rows:
        raise FileNotFoundError(f"no runs under {str(root)!r}")
    return pd.DataFrame(rows, columns=COLUMNS).sort_values(["task", "preset", "method", "seed"], ignore_index=True)


def write_csv(root: Path, csv_path: Path) -> pd.DataFrame:
    """Write :func:`collect`'s table to ``csv_path`` (folders created) and return it."""
    table = collect(root)
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv_path, index=False)
    return table
