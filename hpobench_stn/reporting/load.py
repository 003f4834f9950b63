"""Stage 1 of a report: read a folder of runs into tidy tables, and fix the order of the arms.

:func:`collect` walks a results folder for run directories (those holding ``log.jsonl`` or
``final.json``) and returns one row per run with the columns of :data:`COLUMNS`, the per-run CSV.
Incomplete runs are listed too (status ``incomplete``), from their log, so a user sees what is missing.

:func:`load_runs` reads the *complete* runs into three long tables (:class:`Runs`): one row per run,
one per trial, one per schedule value. Reports are built only from complete runs: an unfinished run
has not spent its budget, so its best-so-far is not comparable.

Runs are grouped by their *arm*: the name a suite gives a method with its options (``stn_1to1`` for
``stn`` with ``train_steps = 1``). For a plain suite the arm is the method's name. The order in which
arms appear in every table and figure (and so which colour each gets) is decided here, once
(:func:`arm_order`, kept in :attr:`Runs.arms`); the later stages take it from there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..foundation.provenance import portable_command
from ..harness.records import (
    FINAL_NAME,
    LOG_NAME,
    FinalRecord,
    RecordError,
    RunState,
    TrialStatus,
    load_final,
    load_log,
)

__all__ = ["COLUMNS", "KNOWN_ARMS", "Runs", "arm_order", "collect", "load_runs", "write_csv"]

COLUMNS = [
    "task",
    "preset",
    "arm",
    "method",
    "seed",
    "budget_s",
    "n_trials",
    "n_complete",  # trials trained to their own end: the epoch cap or patience
    "n_early_stopped",  # of those, stopped by patience (empty for records made before patience existed)
    "n_pruned",  # trials stopped by a multi-fidelity method (empty for records made before pruning existed)
    "best_val",
    "test_at_best",
    "elapsed_s",
    "wall_s",
    "status",
    "warnings",  # the run's warnings (e.g. a schedule parked at a bound), "; "-joined; empty when none
    "method_tuned",  # what the method moved when only part of the open space (ift), ", "-joined; empty: all
]

# The order (and, in figures, the colours) of the methods this project ships; other arms follow.
KNOWN_ARMS = (
    "grid",
    "random",
    "skopt_gp",
    "optuna_tpe",
    "optuna_gp",
    "optuna_sh",
    "optuna_hyperband",
    "stn",
    "delta_stn",
    "ift",
    "pbt",
    "schedule_replay",
)


def arm_order(arms: Iterable[str]) -> list[str]:
    """Known methods first in :data:`KNOWN_ARMS` order, then the others in natural order (``stn_2to1``
    before ``stn_10to1``)."""

    def natural(name: str) -> tuple[tuple[int, int | str], ...]:
        return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part)

    unique = list(dict.fromkeys(arms))
    known = [a for a in KNOWN_ARMS if a in unique]
    return known + sorted((a for a in unique if a not in KNOWN_ARMS), key=natural)


def _run_dirs(root: Path) -> list[Path]:
    found = {p.parent for p in root.rglob(FINAL_NAME)} | {p.parent for p in root.rglob(LOG_NAME)}
    return sorted(found)


def _check_root(root: Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no results folder at {str(root)!r}")
    return root


def collect(root: Path) -> pd.DataFrame:
    """One row per run under ``root``; raises :class:`FileNotFoundError` when there is none."""
    root = _check_root(root)
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
                    "arm": meta.arm or meta.method,
                    "method": meta.method,
                    "seed": meta.seed,
                    "budget_s": meta.budget_s,
                    "n_trials": len(trials),
                    "n_complete": sum(t.status.finished for t in trials),
                    "n_early_stopped": sum(t.status is TrialStatus.EARLY_STOPPED for t in trials),
                    "n_pruned": sum(t.status is TrialStatus.PRUNED for t in trials),
                    "best_val": best[-1] if best else None,
                    "test_at_best": None,
                    "elapsed_s": trials[-1].elapsed_s if trials else 0.0,
                    "wall_s": None,
                    "status": RunState.INCOMPLETE.value,
                    "warnings": "",
                    "method_tuned": ", ".join(meta.method_tuned or ()),
                }
            )
            continue
        rows.append({**_final_row(final), "status": RunState.COMPLETE.value})
    if not rows:
        raise FileNotFoundError(f"no runs under {str(root)!r}")
    return pd.DataFrame(rows, columns=COLUMNS).sort_values(["task", "preset", "arm", "seed"], ignore_index=True)


def _final_row(final: FinalRecord) -> dict[str, Any]:
    """The per-run columns a finished run's ``final.json`` holds (all of :data:`COLUMNS` but ``status``)."""
    m = final.meta
    return {
        "task": m.task,
        "preset": m.preset,
        "arm": m.arm or m.method,
        "method": m.method,
        "seed": m.seed,
        "budget_s": m.budget_s,
        "n_trials": final.n_trials,
        "n_complete": final.n_complete,
        "n_early_stopped": final.n_early_stopped,
        "n_pruned": final.n_pruned,
        "best_val": final.incumbent_val_loss,
        "test_at_best": final.incumbent_test_loss,
        "elapsed_s": final.elapsed_s,
        "wall_s": final.wall_s,
        "warnings": "; ".join(final.warnings),
        "method_tuned": ", ".join(m.method_tuned or ()),
    }


def write_csv(root: Path, csv_path: Path) -> pd.DataFrame:
    """Write :func:`collect`'s table to ``csv_path`` (folders created) and return it."""
    table = collect(root)
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv_path, index=False)
    return table


@dataclass(frozen=True)
class Runs:
    """The complete runs under a folder, as three long tables.

    Attributes:
        runs: one row per run: ``task, preset, arm, method, seed, budget_s, n_trials, n_complete,
            best_val, test_at_best, elapsed_s, wall_s``, the provenance (``git_sha, git_dirty, device,
            started_at, command``: nothing machine-specific beyond the device; the command without
            absolute paths, even where an older record holds them), ``options`` (the method's options
            as JSON) and one ``phase/<name>`` column of charged seconds per clock phase (0 where a run
            never entered it).
        trials: one row per trial: ``task, arm, seed, index, elapsed_s, val_loss, best_so_far, status,
            epochs`` (epochs trained).
        schedules: one row per logged hyperparameter value: ``task, arm, seed, step, elapsed_s, name,
            value`` (``name`` includes ``sigma/<hp>`` entries).
        incomplete: how many runs under the folder are not complete (left out of the three tables).
        arms: every arm of ``runs`` once, in the order of every table and figure (:func:`arm_order`).
    """

    runs: pd.DataFrame
    trials: pd.DataFrame
    schedules: pd.DataFrame
    incomplete: int
    arms: tuple[str, ...]

    def __post_init__(self) -> None:
        present = set(self.runs["arm"])
        if len(set(self.arms)) != len(self.arms) or set(self.arms) != present:
            raise ValueError(
                f"Runs.arms must list each arm of the runs table once, got {list(self.arms)} "
                f"for the arms {sorted(present)}"
            )

    def ordered(self, arms: Iterable[str]) -> list[str]:
        """The arms among ``arms`` (any iterable, repeats allowed) in :attr:`arms` order."""
        wanted = set(arms)
        return [a for a in self.arms if a in wanted]


def load_runs(root: Path) -> Runs:
    """Read every complete run under ``root``; raises :class:`FileNotFoundError` when there is none."""
    root = _check_root(root)
    run_rows, trial_rows, schedule_rows = [], [], []
    incomplete = 0
    for run_dir in _run_dirs(root):
        try:
            final = load_final(run_dir)
            meta, trials, schedule = load_log(run_dir)
        except (RecordError, FileNotFoundError):
            incomplete += 1
            continue
        key = {"task": meta.task, "arm": meta.arm or meta.method, "seed": meta.seed}
        run_rows.append(
            {
                **_final_row(final),
                "git_sha": meta.git_sha,
                "git_dirty": meta.git_dirty,
                "device": meta.device,
                "started_at": meta.started_at,
                # Older records hold the machine's paths: a report shows none (portable_command is idempotent).
                "command": " ".join(portable_command(meta.command, {})),
                "options": json.dumps(meta.method_options, sort_keys=True),
                **{f"phase/{k}": v for k, v in final.phases_s.items()},
            }
        )
        trial_rows += [
            {
                **key,
                "index": t.index,
                "elapsed_s": t.elapsed_s,
                "val_loss": t.val_loss,
                "best_so_far": t.best_so_far,
                "status": t.status.value,
                "epochs": t.epochs,
            }
            for t in trials
        ]
        schedule_rows += [
            {**key, "step": s.step, "elapsed_s": s.elapsed_s, "name": name, "value": value}
            for s in schedule
            for name, value in s.values.items()
        ]
    if not run_rows:
        raise FileNotFoundError(f"no complete runs under {str(root)!r} ({incomplete} incomplete)")
    runs = pd.DataFrame(run_rows).sort_values(["task", "arm", "seed"], ignore_index=True)
    phase_cols = [c for c in runs.columns if c.startswith("phase/")]
    runs[phase_cols] = runs[phase_cols].fillna(0.0)
    trials_df = pd.DataFrame(
        trial_rows,
        columns=["task", "arm", "seed", "index", "elapsed_s", "val_loss", "best_so_far", "status", "epochs"],
    )
    schedules_df = pd.DataFrame(schedule_rows, columns=["task", "arm", "seed", "step", "elapsed_s", "name", "value"])
    return Runs(runs, trials_df, schedules_df, incomplete, arms=tuple(arm_order(runs["arm"])))
