"""CUDA paths: the clock synchronises the device, tasks train on it, runs record it. Skipped without a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpobench_stn import Budget, BudgetTimer, RunSeeds, WallClock, get_task
from hpobench_stn.harness.records import load_log
from hpobench_stn.harness.runner import RunSpec, execute

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_wall_clock_charges_queued_kernels_to_the_phase_that_launched_them() -> None:
    """Without synchronisation a big matmul would return at once and land in the next phase."""
    device = torch.device("cuda")
    a = torch.randn(8192, 8192, device=device)
    timer = BudgetTimer(Budget(1e9), WallClock(device))
    timer.start()
    with timer.phase("train"):
        for _ in range(20):
            a = a @ a
            a = a / a.norm()
    with timer.phase("validate"):
        pass
    totals = timer.totals()
    assert totals["train"] > 10 * totals["validate"]


def test_digits_fit_on_cuda_is_deterministic_per_seed() -> None:
    """Same seed, same config on the GPU → the same validation loss (paired comparisons hold there too)."""
    task = get_task("digits_mlp")("smoke", device="cuda")
    task.prepare()
    seeds = RunSeeds.from_master(0)
    task.load(seeds)
    config = {"dropout_in": 0.1, "dropout_h1": 0.2, "dropout_h2": 0.2, "weight_decay": 1e-4, "shift": 1}
    losses = []
    for _ in range(2):
        timer = BudgetTimer(Budget(1e9), WallClock(task.device))
        timer.start()
        fit = task.fit(config, timer, seeds)
        assert fit.val is not None
        losses.append(fit.val.loss)
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_run_on_cuda_records_the_gpu(tmp_path: Path) -> None:
    outcome = execute(RunSpec("digits_mlp", "random", "smoke", 0, Budget(3)), tmp_path, device="cuda")
    meta, trials, _ = load_log(outcome.run_dir)
    assert meta.device == torch.cuda.get_device_name(0)
    assert trials
    assert outcome.final.incumbent_test_loss is not None


def test_stn_runs_on_cuda_and_its_hyper_lstm_matches_the_cpu(tmp_path: Path) -> None:
    """STN trains on the GPU (schedule recorded), and the hyper-LSTM's hand-written BPTT gives the CPU's
    outputs and gradients there too."""
    from hpobench_stn.nn import HyperLSTM

    outcome = execute(RunSpec("digits_mlp", "stn", "smoke", 0, Budget(10), {"max_epochs": 5}), tmp_path, device="cuda")
    meta, trials, schedule = load_log(outcome.run_dir)
    assert meta.device == torch.cuda.get_device_name(0)
    assert len(trials) == 5
    assert schedule
    torch.manual_seed(0)
    cpu = HyperLSTM(8, 16, n_hparams=3)
    cpu.reset_hyper_path(torch.Generator().manual_seed(1), gate_std=0.5)
    gpu = HyperLSTM(8, 16, n_hparams=3, device="cuda")
    gpu.load_state_dict(cpu.state_dict())
    x, h = torch.randn(12, 4, 8), torch.rand(4, 3)
    results = []
    for layer, device in ((cpu, "cpu"), (gpu, "cuda")):
        out, _ = layer(x.to(device), None, h.to(device))
        out.square().sum().backward()
        results.append((out.cpu(), [p.grad.cpu() for p in layer.parameters() if p.grad is not None]))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-4, atol=1e-5)
    for a, b in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
