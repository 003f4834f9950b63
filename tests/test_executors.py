"""Suites on Dask: real LocalClusters of 2 worker processes, the local executor as reference, a worker killed
mid-run, an existing scheduler's address, and a second invocation that runs nothing."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import CliRunner
from distributed import Client, LocalCluster

from hpobench_stn import Budget
from hpobench_stn.harness.records import FINAL_NAME, LOG_NAME, TrialStatus, load_final, load_log
from hpobench_stn.harness.runner import RunSpec
from hpobench_stn.orchestration.executors import DaskExecutor, ExecutorError, PinWorker, RunJob, jobs_for

pytestmark = pytest.mark.slow

MINI_SUITE = """
[suite]
name = "mini"
tasks = ["digits_mlp"]
methods = ["random", "grid"]
seeds = [0, 1]
preset = "smoke"
budget_s = {budget}

[methods.grid]
points = 2
"""


def _suite_file(folder: Path, budget: float) -> Path:
    path = folder / "mini.toml"
    path.write_text(MINI_SUITE.format(budget=budget), encoding="utf-8")
    return path


def _runs(out: Path) -> dict[str, list[tuple[dict[str, float | int], float | None, TrialStatus]]]:
    """Run label → its trials (config, validation loss, status) as logged."""
    result = {}
    for final in sorted(out.rglob(FINAL_NAME)):
        meta, trials, _ = load_log(final.parent)
        result[f"{meta.method}/seed{meta.seed}"] = [(t.config, t.val_loss, t.status) for t in trials]
    return result


def test_dask_suite_equals_the_local_suite_apart_from_timings(run_cli: CliRunner, tmp_path: Path) -> None:
    """The same runs, trial for trial, through `hpobench suite --executor dask --workers 2` and locally.

    Timings differ, so a run may complete a different number of trials before its deadline: the trials
    both completed (all but the last of the shorter run) must agree exactly.
    """
    suite = _suite_file(tmp_path, budget=3)
    local = run_cli("suite", str(suite), "--out", str(tmp_path / "local"), "--device", "cpu", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    dask = run_cli(
        "suite", str(suite), "--out", str(tmp_path / "dask"), "--device", "cpu",
        "--executor", "dask", "--workers", "2", "--threads-per-run", "1", cwd=tmp_path,
    )  # fmt: skip
    assert dask.returncode == 0, dask.stderr
    assert "on a local cluster of 2 workers, 1 thread(s) per run" in dask.stdout
    done_lines = [line for line in dask.stdout.splitlines() if line.startswith("[") and "digits_mlp/smoke/" in line]
    assert len(done_lines) == 4
    a, b = _runs(tmp_path / "local"), _runs(tmp_path / "dask")
    assert sorted(a) == sorted(b) == ["grid/seed0", "grid/seed1", "random/seed0", "random/seed1"]
    for label in a:
        common = min(len(a[label]), len(b[label])) - 1
        assert common >= 3, (label, len(a[label]), len(b[label]))
        assert a[label][:common] == b[label][:common], label
    for final in (tmp_path / "dask").rglob(FINAL_NAME):
        assert "1 threads" in load_final(final.parent).meta.device  # the pinned thread count is recorded


REPLAY_SUITE = """
[suite]
name = "replay"
tasks = ["digits_mlp"]
methods = ["replay", "stn"]
seeds = [0, 1]
preset = "smoke"
budget_s = 3
tune = ["dropout_in", "dropout_h1"]

[methods.stn]
schedule_every = 2

[methods.replay]
method = "schedule_replay"
arm = "stn"
"""


def test_replay_arms_run_in_a_second_wave_after_the_runs_they_replay(run_cli: CliRunner, tmp_path: Path) -> None:
    """The replay arm is listed first, yet each replay reads the same seed's finished STN run."""
    suite = tmp_path / "replay.toml"
    suite.write_text(REPLAY_SUITE, encoding="utf-8")
    out = tmp_path / "out"
    proc = run_cli(
        "suite", str(suite), "--out", str(out), "--device", "cpu",
        "--executor", "dask", "--workers", "2", "--threads-per-run", "1", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    done = [line.split(":")[0].split("] ")[1] for line in proc.stdout.splitlines() if line.startswith("[")]
    assert sorted(done[:2]) == ["digits_mlp/smoke/stn/seed0", "digits_mlp/smoke/stn/seed1"]  # wave 1
    assert sorted(done[2:]) == ["digits_mlp/smoke/replay/seed0", "digits_mlp/smoke/replay/seed1"]  # wave 2
    for seed in (0, 1):
        replay = load_final(out / "digits_mlp" / "smoke" / "replay" / f"seed{seed}")
        stn = load_final(out / "digits_mlp" / "smoke" / "stn" / f"seed{seed}")
        assert replay.meta.arm == "replay"
        assert replay.meta.tuned == ["dropout_in", "dropout_h1"]
        assert replay.meta.started_at >= stn.meta.started_at
        _, trials, _ = load_log(out / "digits_mlp" / "smoke" / "replay" / f"seed{seed}")
        assert trials[0].status is TrialStatus.COMPLETE


def test_dask_without_workers_or_scheduler_is_refused(run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli("suite", "smoke", "--out", str(tmp_path), "--executor", "dask", cwd=tmp_path)
    assert result.returncode == 2
    assert "--executor dask needs --workers N (a local cluster) or --scheduler ADDRESS" in result.stderr


def _partial_run(out: Path) -> Path | None:
    """A run folder with a log and no final record yet (a run in progress)."""
    for log in out.rglob(LOG_NAME):
        if not (log.parent / FINAL_NAME).exists():
            return log.parent
    return None


def test_a_worker_killed_mid_run_leaves_every_run_complete_exactly_once(tmp_path: Path) -> None:
    """SIGKILL one worker process while it runs: Dask reruns that run elsewhere, the runner moves the partial
    log aside, every run ends with one final record; a second invocation then runs nothing. The cluster is
    started here and reached through its address (the --scheduler mode)."""
    out = tmp_path / "runs"
    specs = [RunSpec("digits_mlp", m, "smoke", s, Budget(4.0)) for m in ("random", "grid") for s in (0, 1)]
    jobs = jobs_for(specs, out, data_dir=None, device="cpu", plugins=[], command=["test"])
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        executor = DaskExecutor(scheduler=cluster.scheduler_address, threads_per_run=1)
        results: list[object] = []
        thread = threading.Thread(target=lambda: results.append(executor.run(jobs)))
        thread.start()
        killed_dir = None
        deadline = time.monotonic() + 60
        while killed_dir is None and time.monotonic() < deadline:
            run_dir = _partial_run(out)
            processing = {addr: keys for addr, keys in client.processing().items() if keys}
            if run_dir is not None and processing:
                label = "/".join(run_dir.relative_to(out).parts)
                victim = next((a for a, keys in processing.items() if any(label in str(k) for k in keys)), None)
                if victim is not None:
                    time.sleep(0.5)  # well inside the run (trials logged), far from its end
                    pid = client.run(os.getpid, workers=[victim])[victim]
                    os.kill(pid, signal.SIGKILL)
                    killed_dir = run_dir
            time.sleep(0.05)
        thread.join(timeout=240)
        assert not thread.is_alive()
    assert killed_dir is not None, "no run was caught in progress"
    assert len(results) == 1
    assert len(results[0]) == len(jobs)  # type: ignore[arg-type]
    finals = sorted(out.rglob(FINAL_NAME))
    assert len(finals) == len(jobs)  # every run complete, none duplicated
    assert list(killed_dir.glob(f"{LOG_NAME}.incomplete-*")) or list(killed_dir.glob(f"{LOG_NAME}.corrupt-*"))
    for final in finals:
        _, trials, _ = load_log(final.parent)
        assert load_final(final.parent).n_trials == len(trials)

    # A second invocation (a client restarted after completion) finds every run in the store.
    again = DaskExecutor(workers=1, threads_per_run=1).run(jobs)
    assert all(o.skipped for o in again)
    assert sorted(out.rglob(FINAL_NAME)) == finals


def test_pin_worker_sets_threads_and_one_gpu_per_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """PinWorker: torch threads as asked; worker k sees GPU gpus[k % len(gpus)] only; bad thread counts refused."""
    import torch

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    before = torch.get_num_threads()
    try:

        class FakeWorker:
            name = 3

        PinWorker(threads=2, gpus=(4, 5)).setup(FakeWorker())
        assert torch.get_num_threads() == 2
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads per run must be >= 1"):
        PinWorker(threads=0)


def test_run_job_keys_are_unique_per_run_and_folder(tmp_path: Path) -> None:
    spec = RunSpec("digits_mlp", "random", "smoke", 0, Budget(1.0))
    assert RunJob(spec, tmp_path / "a").key != RunJob(spec, tmp_path / "b").key
    assert RunJob(spec, tmp_path / "a").key == RunJob(spec, tmp_path / "a").key


def test_bad_cluster_settings_are_refused(run_cli: CliRunner, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="a local Dask cluster needs workers >= 1, got 0"):
        DaskExecutor(workers=0)
    result = run_cli("suite", "smoke", "--executor", "dask", "--workers", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "expected an integer >= 1, got '0'" in result.stderr


def test_runs_that_raise_are_reported_together_after_the_others(tmp_path: Path) -> None:
    """A run that fails on its worker does not stop the others; the client names it in one ExecutorError."""
    good = RunSpec("digits_mlp", "random", "smoke", 0, Budget(1.0))
    bad = RunSpec("digits_mlp", "random", "nope", 0, Budget(1.0))  # an unknown preset fails on the worker
    jobs = jobs_for([bad, good], tmp_path, data_dir=None, device="cpu", plugins=[], command=["test"])
    with pytest.raises(
        ExecutorError, match=r"1 run\(s\) failed:\n  digits_mlp/nope/random/seed0: TaskError: unknown preset"
    ):
        DaskExecutor(workers=1, threads_per_run=1).run(jobs)
    assert (tmp_path / "digits_mlp" / "smoke" / "random" / "seed0" / FINAL_NAME).exists()
