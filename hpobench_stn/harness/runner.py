"""Run one (task, method, preset, seed, budget) end to end, resumably.

:func:`execute` is the only place that starts the clock. Its order of events is the fairness
protocol (``docs/architecture.md``):

1. refuse an unwritable output directory before anything is trained;
2. skip a run whose ``final.json`` is valid; move aside an incomplete or corrupt log;
3. ``task.prepare()`` (one-time download/decode, *not* charged);
4. start the clock; ``task.load(seeds)`` (charged, phase ``data``); ``task.warm_up()`` (paused: one
   step of lazy initialisation, so the first run of a process is not billed for it);
5. write the metadata (paused: it checksums the data files); ``method.run`` (charged, except test
   evaluation and records);
6. write ``final.json`` atomically (paused).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..datasets import CACHE_ENV, DATA_ENV
from ..foundation.clock import PAUSED, Budget, BudgetTimer, Clock, WallClock
from ..foundation.provenance import (
    data_file,
    describe_device,
    git_state,
    library_versions,
    portable_command,
    portable_path,
    portable_text,
)
from ..foundation.seeding import RunSeeds, check_seed
from ..foundation.space import SearchSpace, SpaceError
from .method import MethodError, RunContext
from .records import (
    FINAL_NAME,
    LOG_NAME,
    FinalRecord,
    RunLog,
    RunMetadata,
    RunState,
    TrialRecord,
    TrialStatus,
    WarningRecord,
    load_final,
    load_log,
    move_aside,
    prepare_run_dir,
    write_final,
)
from .registry import RegistryError, get_method, get_task, loaded_plugins
from .schedule import BOUND_WARNING, Schedule
from .task import TaskError

__all__ = [
    "OutputDirError",
    "RunMismatchError",
    "RunOutcome",
    "RunSpec",
    "check_specs",
    "check_writable",
    "execute",
    "machine_roots",
    "schedule_warnings",
]


class OutputDirError(OSError):
    """The output directory cannot be created or written."""


class RunMismatchError(ValueError):
    """A finished run at the same path was made with different settings."""


@dataclass(frozen=True)
class RunSpec:
    """One run of a suite: which task, method, preset, seed and budget (and the method's options)."""

    task: str
    method: str
    preset: str
    seed: int
    budget: Budget
    method_options: Mapping[str, Any] = field(default_factory=dict)
    arm: str | None = None  # the suite's name for this method with these options (None: the method's name)
    tune: tuple[str, ...] | None = None  # the hyperparameters open to the method (None: all of the task's)

    def __post_init__(self) -> None:
        check_seed(self.seed)

    @property
    def name(self) -> str:
        """The arm's name: the folder the run is filed under and the name reports group it by."""
        return self.arm or self.method

    def run_dir(self, out: Path) -> Path:
        return Path(out) / self.task / self.preset / self.name / f"seed{self.seed}"

    def label(self) -> str:
        return f"{self.task}/{self.preset}/{self.name}/seed{self.seed}"

    def matches(self, meta: RunMetadata) -> bool:
        return (
            meta.task == self.task
            and meta.method == self.method
            and (meta.arm or meta.method) == self.name
            and meta.preset == self.preset
            and meta.seed == self.seed
            and meta.budget_s == self.budget.seconds
            and (None if meta.tuned is None else tuple(meta.tuned)) == self.tune
            and _recorded_options(meta) == _options_of(self)
        )


def _options_of(spec: RunSpec) -> dict[str, Any]:
    """The method's options as recorded (defaults filled in), for resume checks."""
    return get_method(spec.method)(spec.method_options).options_dict()


def _recorded_options(meta: RunMetadata) -> dict[str, Any] | None:
    """A finished run's options as today's Options read them (None if they no longer parse): an option
    the record lacks takes the method's ``legacy_options`` value (the behaviour before it existed), else
    today's default, so that a new option that keeps the old behaviour does not orphan older runs."""
    try:
        cls = get_method(meta.method)
        legacy = {k: v for k, v in cls.legacy_options.items() if k not in meta.method_options}
        return cls({**legacy, **meta.method_options}).options_dict()
    except (MethodError, RegistryError):
        return None


@dataclass(frozen=True)
class RunOutcome:
    final: FinalRecord
    run_dir: Path
    skipped: bool  # True when the run was already complete and nothing ran
    moved_aside: tuple[Path, ...] = ()  # logs of earlier, incomplete attempts


def check_writable(out: Path) -> None:
    """Create ``out`` and prove a file can be written there, or raise :class:`OutputDirError`."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputDirError(f"output directory {str(out)!r} is not writable: {exc.strerror or exc}") from exc


def check_specs(specs: list[RunSpec]) -> None:
    """Resolve every task, preset, method and option of ``specs`` up front, so that a typo in a suite
    is reported before its first run trains anything."""
    for spec in specs:
        task_cls = get_task(spec.task)
        if spec.preset not in task_cls.presets:
            raise TaskError(
                f"unknown preset {spec.preset!r} for task {spec.task!r}; known: {', '.join(task_cls.presets)}"
            )
        get_method(spec.method)(spec.method_options)
        if spec.tune is not None:
            if not spec.tune:
                raise SpaceError(f"{spec.label()}: tune names no hyperparameter; the task's: {list(task_cls.space)}")
            task_cls.space.subspace(list(spec.tune))  # raises naming the unknown ones


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto``/None → CUDA when available, else CPU; otherwise the named device, checked."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    return dev


def machine_roots(data_dir: Path | None) -> dict[str, Path]:
    """The folders a record names by placeholder rather than by path (see
    :func:`~hpobench_stn.foundation.provenance.portable_command`): the data root (``data_dir``, else
    ``$HPOBENCH_STN_DATA``, when either is given), the decoded-data cache (``$HPOBENCH_STN_CACHE``, when
    set), the working directory (``.``: paths under it become relative) and the home directory (``~``)."""
    roots: dict[str, Path] = {}
    data = data_dir if data_dir is not None else os.environ.get(DATA_ENV)
    if data:
        roots[f"${DATA_ENV}"] = Path(data)
    cache = os.environ.get(CACHE_ENV)
    if cache:
        roots[f"${CACHE_ENV}"] = Path(cache)
    roots["."] = Path.cwd()
    roots["~"] = Path.home()
    return roots


def execute(
    spec: RunSpec,
    out: Path,
    *,
    data_dir: Path | None = None,
    device: str | torch.device | None = "auto",
    clock: Clock | None = None,
    on_trial: Callable[[TrialRecord], None] | None = None,
    command: list[str] | None = None,
    rerun_stale: bool = False,
) -> RunOutcome:
    """Run ``spec`` into ``out`` (or return the finished run found there). See the module docstring.

    A finished run at the same path made with other settings (a budget, an option, or a method default
    that changed since) raises :class:`RunMismatchError`; with ``rerun_stale`` (suites) its files are
    moved aside as ``.stale-<time>`` and the run is made again with today's settings."""
    task_cls = get_task(spec.task)
    method = get_method(spec.method)(spec.method_options)
    dev = resolve_device(device)
    task = task_cls(spec.preset, device=dev, data_dir=data_dir)  # validates the preset name
    check_writable(out)

    run_dir = spec.run_dir(out)
    run_dir.mkdir(parents=True, exist_ok=True)
    state, moved = prepare_run_dir(run_dir)
    if state is RunState.COMPLETE:
        final = load_final(run_dir)
        if spec.matches(final.meta):
            return RunOutcome(final, run_dir, skipped=True)
        if not rerun_stale:
            raise RunMismatchError(
                f"{run_dir} holds a finished run with other settings (budget {final.meta.budget_s}s, "
                f"options {final.meta.method_options}); choose another output directory"
            )
        moved = [move_aside(run_dir / name, "stale") for name in (FINAL_NAME, LOG_NAME) if (run_dir / name).exists()]

    task.prepare()
    seeds = RunSeeds.from_master(spec.seed)
    clock = clock if clock is not None else WallClock(dev)
    timer = BudgetTimer(spec.budget, clock)
    wall_start = clock.now()
    timer.start()
    with timer.phase("data"):
        data_source = task.load(seeds)
    with timer.paused():
        task.warm_up()

    space = task.space if spec.tune is None else task.space.subspace(list(spec.tune))
    with RunLog(run_dir) as log:
        with timer.paused():
            method_tuned = method.method_tuned(task, space)
            sha, dirty = git_state()
            roots = machine_roots(data_dir)  # a record names no folder of this machine
            meta = RunMetadata(
                task=spec.task,
                preset=spec.preset,
                method=spec.method,
                method_options=method.options_dict(),
                arm=spec.name,
                tuned=None if spec.tune is None else list(spec.tune),
                method_tuned=method_tuned,
                seed=spec.seed,
                budget_s=spec.budget.seconds,
                data_source=portable_text(data_source, roots),
                data_files=tuple(data_file(p, roots.get(f"${DATA_ENV}"), roots) for p in task.data_files()),
                device=describe_device(dev),
                git_sha=sha,
                git_dirty=dirty,
                versions=library_versions(method.libraries + task.libraries),
                plugins={portable_path(path, roots): digest for path, digest in loaded_plugins().items()},
                command=portable_command(command if command is not None else sys.argv, roots),
                started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            )
            log.append(meta)
        ctx = RunContext(task, timer, seeds, log, spec.method, on_trial, space, run_dir)
        method.run(task, ctx)
        with timer.paused():
            elapsed = timer.charged()  # read while paused: exactly the sum of the charged phases
            warnings = schedule_warnings(task.space, run_dir) if method.warn_at_bounds else []
            for message in warnings:
                log.append(WarningRecord(message))
            trials, inc = ctx.results_for_harness()
            final = FinalRecord(
                meta=meta,
                incumbent_config=inc.config if inc is not None else None,
                incumbent_val_loss=inc.val_loss if inc is not None else None,
                incumbent_test_loss=inc.test_loss if inc is not None else None,
                incumbent_trial=inc.index if inc is not None else None,
                n_trials=len(trials),
                n_complete=sum(t.status.finished for t in trials),
                n_early_stopped=sum(t.status is TrialStatus.EARLY_STOPPED for t in trials),
                n_pruned=sum(t.status is TrialStatus.PRUNED for t in trials),
                elapsed_s=elapsed,
                wall_s=clock.now() - wall_start,
                phases_s={k: v for k, v in timer.totals().items() if k != PAUSED},
                warnings=warnings,
            )
            write_final(run_dir, final)
    return RunOutcome(final, run_dir, skipped=False, moved_aside=tuple(moved))


def schedule_warnings(space: SearchSpace, run_dir: Path) -> list[str]:
    """Warnings about the schedule a gray-box run logged: each hyperparameter that spent more than
    ``BOUND_WARNING`` of the run within ``BOUND_TOLERANCE`` of an end of its range (none without a
    schedule)."""
    _, _, records = load_log(run_dir)
    if not records:
        return []
    fractions = Schedule.from_records(records).fraction_at_bounds(space)
    return [
        f"{name} sat at a bound of its range for {frac:.0%} of the schedule (more than {BOUND_WARNING:.0%}): "
        "a gradient-based tuner parked there is usually stuck, not at an optimum"
        for name, frac in fractions.items()
        if frac > BOUND_WARNING
    ]
