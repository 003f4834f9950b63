"""Where a suite's runs execute: in this process one after another, or on a Dask cluster.

Runs (task × method × seed) are independent, so scaling out is Dask's job (``distributed``), not a
home-made job system. One :class:`RunJob` describes a run completely and is all a worker needs; the
worker calls :func:`hpobench_stn.harness.runner.execute` exactly as the local executor does, so a run writes
the same files with the same atomic rules into the shared results folder.

* local (the default, ``hpobench suite`` without ``--executor``): in-process and sequential;
* :class:`DaskExecutor`: ``workers=N`` starts a ``LocalCluster`` of N worker processes on this machine;
  ``scheduler=ADDRESS`` connects to an existing cluster (for SLURM/PBS through ``dask-jobqueue``, see
  ``docs/scale-out.md``).

**Fairness.** Every worker has one task slot, so it runs one run at a time, and :class:`PinWorker`
fixes its torch thread count and, on a GPU machine, the one GPU it sees (``CUDA_VISIBLE_DEVICES``, by
worker ordinal): no two runs share a device. Both are recorded in each run's metadata (``device``).

**Fault tolerance.** A worker lost mid-run (killed, out of memory, node gone) makes the scheduler
re-run that run on another worker. The runner then finds the partial log, moves it aside, and starts
the run again; a run whose ``final.json`` was already written is skipped. Every run therefore ends
exactly once in the store, and a client restarted mid-suite resumes from the store (finished runs are
skipped by the runner, as in the local executor).
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
from distributed import Client, LocalCluster, WorkerPlugin, as_completed

from ..harness.registry import load_plugin
from ..harness.runner import RunOutcome, RunSpec, execute

__all__ = ["DaskExecutor", "ExecutorError", "PinWorker", "RunJob", "jobs_for", "run_job"]


class ExecutorError(RuntimeError):
    """Runs of a suite failed on the cluster; the message names each run and its error."""


@dataclass(frozen=True)
class RunJob:
    """Everything a worker needs for one run (picklable).

    Attributes:
        spec: the run.
        out: the results folder, shared by the client and every worker.
        data_dir: the data root (None: the worker's ``$HPOBENCH_STN_DATA``).
        device: ``auto``, ``cpu``, ``cuda``, ... as on the command line.
        plugins: plug-in files to load on the worker first (``--plugin``).
        command: the client's command line, recorded in the run's metadata.
    """

    spec: RunSpec
    out: Path
    data_dir: Path | None = None
    device: str = "auto"
    plugins: tuple[str, ...] = ()
    command: tuple[str, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        """A unique, stable task name for the scheduler (one per run and results folder)."""
        folder = hashlib.sha1(str(self.out.resolve()).encode()).hexdigest()[:10]
        return f"hpobench-{self.spec.label()}-{folder}"


def run_job(job: RunJob) -> RunOutcome:
    """Execute one run (on a worker, or locally): load plug-ins, then :func:`runner.execute`."""
    for plugin in job.plugins:
        load_plugin(plugin)
    return execute(
        job.spec, job.out, data_dir=job.data_dir, device=job.device, command=list(job.command), rerun_stale=True
    )


OnDone = Callable[[RunJob, RunOutcome], None]


class PinWorker(WorkerPlugin):
    """A Dask worker plugin: one run at a time on a fixed number of torch threads and at most one GPU.

    Args:
        threads: torch intra-op threads of every run on the worker.
        gpus: GPU indices to share out (``CUDA_VISIBLE_DEVICES``), by worker ordinal; empty: none.
    """

    name = "hpobench-pin"  # one registration per cluster; re-registering replaces it

    def __init__(self, threads: int, gpus: Sequence[int] = ()) -> None:
        if threads < 1:
            raise ValueError(f"threads per run must be >= 1, got {threads}")
        self.threads = threads
        self.gpus = tuple(gpus)

    def setup(self, worker: Any) -> None:
        import torch

        if self.gpus:
            # Before the worker's first CUDA call: the process then sees exactly one GPU, as device 0.
            ordinal = _ordinal(worker.name)
            os.environ["CUDA_VISIBLE_DEVICES"] = str(self.gpus[ordinal % len(self.gpus)])
        os.environ["OMP_NUM_THREADS"] = str(self.threads)
        torch.set_num_threads(self.threads)


def _ordinal(name: object) -> int:
    """A LocalCluster names its workers 0, 1, ...; other clusters get a stable number from the name."""
    if isinstance(name, int):
        return name
    text = str(name)
    digits = "".join(ch for ch in text.rsplit("-", 1)[-1] if ch.isdigit())
    return int(digits) if digits else sum(map(ord, text))


class DaskExecutor:
    """Runs on a Dask cluster: a new ``LocalCluster`` of ``workers`` processes, or ``scheduler``'s.

    Args:
        workers: worker processes of a new local cluster (ignored with ``scheduler``).
        scheduler: address of an existing scheduler, e.g. ``tcp://10.0.0.5:8786``.
        threads_per_run: torch threads per run (default: this machine's cores divided by ``workers``,
            at least 1; with ``scheduler``: 1).
        gpus: GPU indices to pin workers to (default: all visible GPUs when CUDA is available).
    """

    def __init__(
        self,
        workers: int | None = None,
        scheduler: str | None = None,
        threads_per_run: int | None = None,
        gpus: Sequence[int] | None = None,
    ) -> None:
        if scheduler is None and (workers is None or workers < 1):
            raise ValueError(f"a local Dask cluster needs workers >= 1, got {workers!r}")
        self.workers = workers
        self.scheduler = scheduler
        cores = os.cpu_count() or 1
        self.threads_per_run = threads_per_run or (1 if scheduler else max(1, cores // (workers or 1)))
        if gpus is None:
            import torch

            gpus = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        self.gpus = tuple(gpus)

    def run(
        self,
        jobs: Sequence[RunJob],
        on_done: OnDone | None = None,
        on_progress: Callable[[int, int, int], None] | None = None,
    ) -> list[RunOutcome]:
        """Submit every job, wait for all, and return their outcomes in ``jobs``' order.

        ``on_progress(done, running, left)`` is called after each completion. Runs that raise are
        collected and reported together in one :class:`ExecutorError` after the others finish.
        """
        cluster = None
        if self.scheduler is None:
            # Single-thread runs on Linux: fork the workers from this process, so they inherit torch and
            # the plug-ins already imported here instead of importing them again (~1.8 s per worker on
            # the dev machine). Multi-thread runs are spawned: a child forked after the parent used an
            # OpenMP thread pool can hang in its first parallel region (libgomp is not fork-safe).
            fork = sys.platform.startswith("linux") and self.threads_per_run == 1
            method = "fork" if fork else "spawn"
            with dask.config.set({"distributed.worker.multiprocessing-method": method}):
                cluster = LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,  # one task slot: one run at a time per worker
                    processes=True,
                    dashboard_address=None,
                )
            client = Client(cluster)
        else:
            client = Client(self.scheduler)
        try:
            client.register_plugin(PinWorker(self.threads_per_run, self.gpus), name=PinWorker.name)
            futures = {client.submit(run_job, job, key=job.key, pure=False): i for i, job in enumerate(jobs)}
            outcomes: list[RunOutcome | None] = [None] * len(jobs)
            errors: list[str] = []
            for done, future in enumerate(as_completed(futures), start=1):
                i = futures[future]
                try:
                    outcome = future.result()
                except Exception as exc:  # a run's own error, after Dask's retries on lost workers
                    errors.append(f"{jobs[i].spec.label()}: {type(exc).__name__}: {exc}")
                else:
                    outcomes[i] = outcome
                    if on_done is not None:
                        on_done(jobs[i], outcome)
                if on_progress is not None:
                    running = _running(client)
                    on_progress(done, running, len(jobs) - done - running)
            if errors:
                raise ExecutorError(f"{len(errors)} run(s) failed:\n  " + "\n  ".join(errors))
            return [o for o in outcomes if o is not None]
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def _running(client: Any) -> int:
    """Runs being executed now, as the scheduler sees them."""
    try:
        return sum(len(keys) for keys in client.processing().values())
    except Exception:  # progress only: never fail a suite over it
        return 0


def jobs_for(
    specs: Iterable[RunSpec],
    out: Path,
    *,
    data_dir: Path | None,
    device: str,
    plugins: Sequence[str],
    command: Sequence[str],
) -> list[RunJob]:
    """One :class:`RunJob` per spec, sharing the folder, data, device, plug-ins and command line."""
    return [RunJob(spec, out, data_dir, device, tuple(plugins), tuple(command)) for spec in specs]
