"""Run records: typed, JSON-serialisable, appended as they happen, finished atomically.

A run directory holds two files:

* ``log.jsonl``: one JSON object per line, flushed after each line. The first line is the run's
  :class:`RunMetadata` (``"type": "meta"``); each evaluation adds a :class:`TrialRecord`
  (``"type": "trial"``); gray-box methods may add :class:`ScheduleRecord` lines (``"type": "schedule"``).
* ``final.json``: the :class:`FinalRecord`, written to a temporary file and renamed into place. A run
  is complete exactly when this file exists and parses.

A run directory without a valid ``final.json`` is incomplete: :func:`prepare_run_dir` moves its log
aside (``log.jsonl.incomplete-<time>``, or ``.corrupt-<time>`` when a line does not parse) so that the
run is redone from scratch. Nothing is ever deleted.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..foundation.provenance import DataFile

__all__ = [
    "FinalRecord",
    "RecordError",
    "RunLog",
    "RunMetadata",
    "RunState",
    "ScheduleRecord",
    "TrialRecord",
    "TrialStatus",
    "WarningRecord",
    "finite",
    "load_final",
    "load_log",
    "move_aside",
    "prepare_run_dir",
    "write_final",
]

LOG_NAME = "log.jsonl"
FINAL_NAME = "final.json"


class RecordError(ValueError):
    """A record file is unreadable or malformed; the message names the file and line."""


class TrialStatus(enum.Enum):
    COMPLETE = "complete"  # trained until the preset's epoch cap
    EARLY_STOPPED = "early_stopped"  # stopped by patience: no new best validation loss for that many epochs
    PRUNED = "pruned"  # stopped by a multi-fidelity method after a validation; its epochs and checkpoint count
    FAILED = "failed"  # non-finite loss or an error in training; ``reason`` says which
    OUT_OF_BUDGET = "out_of_budget"  # stopped at the deadline; validations done so far count

    @property
    def finished(self) -> bool:
        """The trial trained to its own end (the epoch cap or patience): not FAILED, not PRUNED by the
        method, not cut by the deadline."""
        return self in (TrialStatus.COMPLETE, TrialStatus.EARLY_STOPPED)


class RunState(enum.Enum):
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class TrialRecord:
    """One evaluation of a config (a black-box trial, or a periodic validation of a gray-box run)."""

    index: int  # 0-based order within the run
    config: dict[str, float | int]
    status: TrialStatus
    val_loss: float | None  # best clean validation loss reached by this trial; None if none finished
    val_metrics: dict[str, float]  # other clean validation metrics at that point (e.g. accuracy)
    best_so_far: float | None  # lowest val_loss over trials 0..index
    test_loss: float | None  # test loss, only when this trial became the incumbent (clock paused)
    elapsed_s: float  # charged wall-clock seconds since the run started, at the end of the trial
    phases_s: dict[str, float]  # charged seconds per phase during this trial (ask/train/validate/tell/...)
    epochs: int  # epochs trained (partial epochs not counted)
    steps: int  # optimiser steps taken
    reason: str | None = None  # why the trial stopped (epoch cap, patience, deadline, or what FAILED)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["status"] = self.status.value
        d["type"] = "trial"
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TrialRecord:
        kwargs = {k: v for k, v in d.items() if k != "type"}
        kwargs["status"] = TrialStatus(kwargs["status"])
        return cls(**kwargs)


@dataclass(frozen=True)
class ScheduleRecord:
    """Hyperparameter values of a gray-box method at one step (for schedule figures)."""

    step: int  # optimiser steps since the start of training
    elapsed_s: float  # charged seconds since the run started
    values: dict[str, float]  # constrained hyperparameter values (and e.g. ``sigma/<name>``)

    def to_json(self) -> dict[str, Any]:
        return {"type": "schedule", **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ScheduleRecord:
        return cls(**{k: v for k, v in d.items() if k != "type"})


@dataclass(frozen=True)
class WarningRecord:
    """Something a reader of the run should know that does not fail it (e.g. a schedule parked at a
    bound of its range); also listed in ``final.json``'s ``warnings``."""

    message: str

    def to_json(self) -> dict[str, Any]:
        return {"type": "warning", **dataclasses.asdict(self)}


# Keys of a meta record that are not fields: the record's type, and what older records held that a
# record no longer keeps (the hostname: machine-specific).
_LEGACY_META_KEYS = frozenset({"type", "host"})


@dataclass(frozen=True)
class RunMetadata:
    """Everything needed to say what ran, on which device, and with which versions.

    Nothing machine-specific beyond the device and the versions: no host, no user, no absolute path
    (the runner writes ``command``, ``data_source``, ``data_files`` and ``plugins`` with
    :func:`~hpobench_stn.foundation.provenance.portable_command` and its siblings). Records written
    before that may still hold a ``host``; :meth:`from_json` drops it.
    """

    task: str
    preset: str
    method: str
    method_options: dict[str, Any]
    seed: int
    budget_s: float
    data_source: str  # what the task loaded (Task.load's description; paths relative to the data root)
    device: str  # e.g. "cpu (x86_64, 2 threads)" or "NVIDIA H100 80GB HBM3"
    git_sha: str | None
    git_dirty: bool | None
    versions: dict[str, str]  # python, torch, numpy, and the method's libraries
    command: list[str]  # sys.argv of the process that ran it, without machine paths (portable_command)
    started_at: str  # ISO 8601, UTC
    plugins: dict[str, str] = field(default_factory=dict)  # out-of-tree plug-in file (portable path) → sha256
    arm: str | None = None  # the suite's name for this method and its options (None: the method's name)
    tuned: list[str] | None = None  # the hyperparameters open to the method (None: the task's whole space)
    data_files: tuple[DataFile, ...] = ()  # the files Task.data_files named, relative to the data root, with sha256
    method_tuned: list[str] | None = None  # what the method moved, when only part of `tuned` (Method.method_tuned)

    def to_json(self) -> dict[str, Any]:
        return {"type": "meta", **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RunMetadata:
        kwargs = {k: v for k, v in d.items() if k not in _LEGACY_META_KEYS}
        kwargs["data_files"] = tuple(DataFile(**f) for f in d.get("data_files", ()))
        return cls(**kwargs)


@dataclass(frozen=True)
class FinalRecord:
    """The outcome of a finished run; its presence marks the run complete."""

    meta: RunMetadata
    incumbent_config: dict[str, float | int] | None  # lowest-validation config; None if nothing validated
    incumbent_val_loss: float | None
    incumbent_test_loss: float | None  # test loss of the incumbent's best-validation checkpoint
    incumbent_trial: int | None
    n_trials: int  # trials recorded, any status
    n_complete: int  # trials that finished training (status COMPLETE or EARLY_STOPPED)
    elapsed_s: float  # charged seconds at the end: the budget plus at most one step, batch or ask/tell call
    wall_s: float  # wall-clock seconds including paused time (test evaluation, record writing)
    phases_s: dict[str, float] = field(default_factory=dict)  # charged seconds per phase, whole run
    warnings: list[str] = field(default_factory=list)  # the run's WarningRecord messages
    n_early_stopped: int | None = None  # trials stopped by patience (None: recorded before patience existed)
    n_pruned: int | None = None  # trials stopped by the method (None: recorded before pruning existed)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["meta"] = self.meta.to_json()
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FinalRecord:
        kwargs = dict(d)
        kwargs["meta"] = RunMetadata.from_json(d["meta"])
        return cls(**kwargs)


def _dumps(obj: Mapping[str, Any]) -> str:
    # allow_nan=False: the logs must be strict JSON; non-finite values are stored as null.
    return json.dumps(obj, allow_nan=False, sort_keys=False)


class RunLog:
    """Appends records to ``log.jsonl``, one line each, flushed immediately.

    Use as a context manager; the file is opened in append mode so that nothing written is lost
    if the process dies.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOG_NAME
        self._fh: IO[str] | None = None

    def __enter__(self) -> RunLog:
        self._fh = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def append(self, record: TrialRecord | ScheduleRecord | RunMetadata | WarningRecord) -> None:
        if self._fh is None:
            raise RuntimeError("RunLog.append outside its 'with' block")
        self._fh.write(_dumps(record.to_json()) + "\n")
        self._fh.flush()


def load_log(run_dir: Path) -> tuple[RunMetadata, list[TrialRecord], list[ScheduleRecord]]:
    """Parse ``log.jsonl``; raise :class:`RecordError` naming the line that does not parse."""
    path = Path(run_dir) / LOG_NAME
    meta: RunMetadata | None = None
    trials: list[TrialRecord] = []
    schedule: list[ScheduleRecord] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            try:
                d = json.loads(line)
                kind = d["type"]
                if kind == "meta":
                    meta = RunMetadata.from_json(d)
                elif kind == "trial":
                    trials.append(TrialRecord.from_json(d))
                elif kind == "schedule":
                    schedule.append(ScheduleRecord.from_json(d))
                elif kind == "warning":
                    str(d["message"])  # kept in final.json's warnings; checked here for shape only
                else:
                    raise ValueError(f"unknown record type {kind!r}")
            except (ValueError, KeyError, TypeError) as exc:
                raise RecordError(f"{path}:{lineno}: malformed record ({exc})") from exc
    if meta is None:
        raise RecordError(f"{path}: no metadata record")
    return meta, trials, schedule


def write_final(run_dir: Path, final: FinalRecord) -> Path:
    """Write ``final.json`` atomically: a temporary file in the same folder, fsynced, then renamed."""
    run_dir = Path(run_dir)
    fd, tmp = tempfile.mkstemp(prefix=".final-", suffix=".json", dir=run_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(final.to_json(), allow_nan=False, indent=2) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, run_dir / FINAL_NAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return run_dir / FINAL_NAME


def load_final(run_dir: Path) -> FinalRecord:
    path = Path(run_dir) / FINAL_NAME
    try:
        return FinalRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordError(f"{path}: malformed final record ({exc})") from exc


def move_aside(path: Path, label: str) -> Path:
    """Rename ``path`` to ``<name>.<label>-<UTC time>`` beside it (never overwriting); the new path."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = path.with_name(f"{path.name}.{label}-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.{label}-{stamp}-{n}")
        n += 1
    path.rename(target)
    return target


def prepare_run_dir(run_dir: Path) -> tuple[RunState, list[Path]]:
    """Decide whether the run in ``run_dir`` is complete; if not, clear the way for a redo.

    Returns the state and the paths of files moved aside. A valid ``final.json`` means complete
    (nothing touched). Otherwise a malformed ``final.json`` is moved aside as ``.corrupt-<time>``,
    and a log is moved aside as ``.corrupt-<time>`` when a line fails to parse, else as
    ``.incomplete-<time>``.
    """
    run_dir = Path(run_dir)
    moved: list[Path] = []
    final_path = run_dir / FINAL_NAME
    if final_path.exists():
        try:
            load_final(run_dir)
            return RunState.COMPLETE, moved
        except RecordError:
            moved.append(move_aside(final_path, "corrupt"))
    log_path = run_dir / LOG_NAME
    if log_path.exists():
        try:
            load_log(run_dir)
            label = "incomplete"
        except RecordError:
            label = "corrupt"
        moved.append(move_aside(log_path, label))
    return RunState.INCOMPLETE, moved


def finite(x: float | None) -> float | None:
    """``x`` as a float, or None when it is missing or not finite (for strict-JSON records)."""
    return None if x is None or not math.isfinite(x) else float(x)
