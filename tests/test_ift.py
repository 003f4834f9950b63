"""``ift`` (``methods/ift.py``): the Neumann series, the implicit hypergradient against ridge's closed
form, relaxed masks, the twice-differentiable LSTM, and runs on every task. Known optima at default
options are in ``test_known_optimum.py``, which is also the gradient methods' direction check (a
hypergradient of the wrong sign drives λ away from λ* from either side; ``test_direction.py`` covers
the ask/tell methods); the contract and test-set invariance tests cover ``ift`` with every method."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hpobench_stn import Budget, FakeClock, MethodError, RunSeeds, SearchSpace, get_method, get_task
from hpobench_stn.foundation.clock import BudgetTimer
from hpobench_stn.harness.method import RunContext
from hpobench_stn.harness.records import RunLog, load_final, load_log
from hpobench_stn.harness.runner import RunSpec, execute
from hpobench_stn.methods.ift import IFT, IFTLoop, inverse_hvp, top_curvature
from hpobench_stn.nn.implicit import lstm_layer
from hpobench_stn.tasks.known_optimum import Ridge

_ENV = os.environ.get("HPOBENCH_STN_DATA")
DATA = Path(_ENV) if _ENV else Path(__file__).resolve().parents[2] / "shared" / "data"
NEEDS = {"ptb_lstm": DATA / "ptb" / "ptb.train.txt", "cifar_alexnet": DATA / "cifar10"}


def _skip_without_data(name: str) -> None:
    if name in NEEDS and not NEEDS[name].exists():
        pytest.skip(f"no data for {name} under {DATA}")


# ------------------------------------------------------------------------------------------------------
# The Neumann series


def test_the_neumann_estimate_converges_to_the_inverse_hessian_vector_product() -> None:
    """On a quadratic with H positive definite (eigenvalues in [0.5, 4]) and α = 0.4 < 2/λ_max, the
    error of the K-term estimate falls with K, geometrically as (1 - αλ_min)^(K+1), to H⁻¹v."""
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=torch.float64))
    h = q @ torch.diag(torch.linspace(0.5, 4.0, 6, dtype=torch.float64)) @ q.t()
    v = torch.randn(6, generator=gen, dtype=torch.float64)
    exact = torch.linalg.solve(h, v)

    def hvp(x: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (h @ x[0],)

    errors = [float((inverse_hvp(hvp, (v,), 0.4, k)[0] - exact).norm() / exact.norm()) for k in (0, 1, 5, 20, 80)]
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 1e-6
    bound = (1 - 0.4 * 0.5) ** 81
    assert errors[-1] <= bound * 10


def test_the_power_iteration_finds_the_top_curvature_and_warm_starts() -> None:
    """``top_curvature`` approaches |λ|_max from below (eigenvalues in [0.5, 4]: to 1e-6 in 200 steps),
    and one step from the vector it returns keeps the estimate (the warm start of later hyper-steps)."""
    gen = torch.Generator().manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=torch.float64))
    h = q @ torch.diag(torch.linspace(0.5, 4.0, 6, dtype=torch.float64)) @ q.t()

    def hvp(x: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (h @ x[0],)

    start = (torch.randn(6, generator=gen, dtype=torch.float64),)
    estimates = [top_curvature(hvp, start, k)[0] for k in (1, 5, 20, 200)]
    assert all(e <= 4.0 + 1e-9 for e in estimates)
    assert estimates == sorted(estimates)
    assert estimates[-1] == pytest.approx(4.0, rel=1e-6)
    _, vector = top_curvature(hvp, start, 200)
    assert top_curvature(hvp, vector, 1)[0] == pytest.approx(4.0, rel=1e-6)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        top_curvature(hvp, start, 0)
    with pytest.raises(ValueError, match="start vector is zero"):
        top_curvature(hvp, (torch.zeros(6, dtype=torch.float64),), 3)


def test_neumann_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="terms must be an integer >= 0"):
        inverse_hvp(lambda x: x, (torch.ones(1),), 0.1, -1)
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        inverse_hvp(lambda x: x, (torch.ones(1),), 0.0, 1)


# ------------------------------------------------------------------------------------------------------
# The hypergradient on ridge


def _ridge_loop(log: RunLog, options: dict[str, Any]) -> tuple[Ridge, IFTLoop]:
    task = Ridge("smoke")
    task.load(RunSeeds.from_master(0))
    timer = BudgetTimer(Budget(1e9), FakeClock(tick=1e-6))
    timer.start()
    ctx = RunContext(task, timer, RunSeeds.from_master(0), log, "ift")
    method = get_method("ift")(options)
    assert isinstance(method, IFT)
    return task, method.make_loop(task, ctx)


@pytest.mark.parametrize("alpha", [0.05, None], ids=["alpha-0.05", "alpha-by-power-iteration"])
@pytest.mark.parametrize("h", [0.05, 0.5, 5.0])
def test_the_hypergradient_at_the_inner_optimum_is_the_exact_implicit_gradient(
    h: float, alpha: float | None, tmp_path: Path
) -> None:
    """With the weights at the exact best response w*(h) and the whole training set as the batch, the
    hypergradient (Neumann series, enough terms; α fixed or the default 1/|λ|_max by power iteration)
    is d/du of the closed-form validation loss within 5 %."""
    with RunLog(tmp_path) as log:
        task, loop = _ridge_loop(log, {"init": {"l2": h}, "neumann_terms": 1000, "neumann_alpha": alpha})
        x, y = task.train_arrays()
        with torch.no_grad():
            (weight,) = list(loop.model.parameters())
            weight.copy_(
                torch.as_tensor(task.best_response(loop.hparams.current()["l2"]), dtype=torch.float32).view_as(weight)
            )
        batch = (torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32))
        loop.last = (batch, None)
        xv, yv = task.val_xy
        loop.model.eval()
        val = ((loop.model(xv).squeeze(-1) - yv) ** 2).mean()
        v = torch.autograd.grad(val, loop.params)
        hypergrad = loop.hypergradient(v)
    assert hypergrad is not None
    # The exact gradient in u: d val_loss_at(h(u)) / du by central differences (float64, closed form).
    u = float(loop.hparams.unconstrained.detach())
    low, high = math.log(1e-3), math.log(1e3)

    def h_of(u_: float) -> float:
        return math.exp(low + (high - low) / (1 + math.exp(-u_)))

    e = 1e-4
    exact = (task.val_loss_at(h_of(u + e)) - task.val_loss_at(h_of(u - e))) / (2 * e)
    assert float(hypergrad) == pytest.approx(exact, rel=0.05)


# ------------------------------------------------------------------------------------------------------
# Pieces


def test_the_plain_ops_lstm_is_nn_lstm_and_differentiates_twice() -> None:
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(5, 4)
    x = torch.randn(7, 3, 5)
    h0, c0 = torch.randn(1, 3, 4), torch.randn(1, 3, 4)
    out, (h, c) = lstm(x, (h0, c0))
    out2, h2, c2 = lstm_layer(x, h0, c0, *lstm._flat_weights)  # type: ignore[arg-type]
    torch.testing.assert_close(out2, out)
    torch.testing.assert_close(h2, h)
    torch.testing.assert_close(c2, c)
    params = list(lstm.parameters())
    g = torch.autograd.grad(out2.pow(2).sum(), params, create_graph=True)
    hv = torch.autograd.grad(g, params, [torch.ones_like(p) for p in params])
    assert all(torch.isfinite(t).all() for t in hv)


def test_ift_tunes_only_what_the_training_loss_is_differentiable_in() -> None:
    method = get_method("ift")()
    assert isinstance(method, IFT)
    cifar = get_task("cifar_alexnet")
    names = method.tuned_names(cifar("smoke", data_dir=DATA))
    assert "cutout_length" not in names
    assert "cutout_holes" not in names
    assert "hue" in names
    with pytest.raises(MethodError, match="cannot tune \\['cutout_holes'\\]"):
        IFT({"tune": ["cutout_holes"]}).tuned_names(cifar("smoke", data_dir=DATA))
    only_cutout = SearchSpace({"cutout_length": cifar.space["cutout_length"]})
    with pytest.raises(MethodError, match=r"lists none of \['cutout_length'\] as differentiable"):
        method.tuned_names(cifar("smoke", data_dir=DATA), only_cutout)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"neumann_terms": -1}, "neumann_terms must be an integer >= 0, got -1"),
        ({"train_steps": 0}, "train_steps must be an integer >= 1, got 0"),
        ({"hyper_steps": True}, "hyper_steps must be an integer >= 1, got True"),
        ({"val_batches": 0}, "val_batches must be an integer >= 1, got 0"),
        ({"power_steps": 0}, "power_steps must be an integer >= 1, got 0"),
        ({"warmup_epochs": -1}, "warmup_epochs must be an integer >= 0, got -1"),
        ({"max_epochs": 0}, "max_epochs must be an integer >= 1, got 0"),
        ({"hyper_lr": 0.0}, "hyper_lr must be a finite number > 0, got 0.0"),
        ({"neumann_alpha": float("inf")}, "neumann_alpha must be a finite number > 0, got inf"),
        ({"temperature": 0.0}, "temperature must be a finite number > 0, got 0.0"),
        ({"relax_training": "yes"}, "relax_training must be true or false, got 'yes'"),
        ({"margin": 0.5}, r"margin must lie in \(0, 0.5\), got 0.5"),
    ],
)
def test_bad_ift_options_are_refused_with_the_allowed_range(options: dict[str, Any], message: str) -> None:
    with pytest.raises(MethodError, match=message):
        IFT(options)


@pytest.mark.parametrize("name", ["digits_mlp", "ptb_lstm", "cifar_alexnet"])
def test_ift_runs_on_every_task_and_records_what_it_tuned(name: str, tmp_path: Path) -> None:
    _skip_without_data(name)
    spec = RunSpec(name, "ift", "smoke", 0, Budget(4.0), {"warmup_epochs": 0, "max_epochs": 2, "train_steps": 2})
    outcome = execute(spec, tmp_path, clock=FakeClock(tick=1e-3), device="cpu", data_dir=DATA)
    _, trials, schedule = load_log(outcome.run_dir)
    final = load_final(outcome.run_dir)
    task = get_task(name)
    assert final.meta.method_tuned == [n for n in task.space if n in task.differentiable_hparams]
    assert final.phases_s.get("hyper", 0.0) > 0
    assert trials
    assert all(math.isfinite(t.val_loss) for t in trials if t.val_loss is not None)
    tuned = list(schedule[0].values)
    assert tuned == final.meta.method_tuned  # no sigma/: ift has no perturbation
    assert any(schedule[-1].values[k] != schedule[0].values[k] for k in tuned)  # λ moved
    assert np.isfinite([schedule[-1].values[k] for k in tuned]).all()


# ------------------------------------------------------------------------------------------------------
# Relaxed masks


def _old_masked(x: torch.Tensor, p: torch.Tensor, mask_shape: tuple[int, ...], view: tuple[int, ...]) -> torch.Tensor:
    """The hard mask as written before relaxed masks existed (commit c2ef343), for the bit-identity test."""
    keep = (1.0 - p).view(view)
    return x * (torch.bernoulli(keep.expand(mask_shape)) / keep)


def test_without_relaxation_the_masks_are_bit_identical_to_the_hard_draws() -> None:
    from hpobench_stn.nn.regularizers import drop_connect, element_dropout, embedding_dropout_mask, locked_dropout

    x = torch.randn(4, 3, 5)
    p = torch.tensor([0.0, 0.3, 0.5])
    torch.manual_seed(7)
    new = locked_dropout(x, p, True)
    torch.manual_seed(7)
    old = _old_masked(x, p, (1, 3, 5), (1, -1, 1))
    assert torch.equal(new, old)
    y = torch.randn(3, 6)
    torch.manual_seed(8)
    new = element_dropout(y, p, True)
    torch.manual_seed(8)
    assert torch.equal(new, _old_masked(y, p, (3, 6), (-1, 1)))
    w = torch.randn(6, 4)
    torch.manual_seed(9)
    new = drop_connect(w, torch.full((3,), 0.4), True)
    torch.manual_seed(9)
    keep = torch.tensor(0.6)
    assert torch.equal(new, w * (torch.bernoulli(keep.expand_as(w)) / keep))
    tokens = torch.randint(0, 50, (5, 3), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(10)
    new = embedding_dropout_mask(tokens, 50, p)
    torch.manual_seed(10)
    keep_v = 1.0 - p
    assert torch.equal(new, torch.bernoulli(keep_v[:, None].expand(3, 50)).gather(1, tokens.t()).t() / keep_v)


def test_relaxed_masks_tend_to_the_hard_masks_as_the_temperature_falls_and_carry_a_gradient() -> None:
    from hpobench_stn.nn.regularizers import keep_mask, relaxed, relaxed_temperature

    keep = torch.full((200_000,), 0.7)
    hard_mean = float(keep_mask(keep).mean())
    gaps = []
    for t in (1.0, 0.3, 0.1, 0.01):
        with relaxed(t):
            assert relaxed_temperature() == t
            draws = keep_mask(keep)
        binary = float(((draws < 0.01) | (draws > 0.99)).float().mean())
        gaps.append(abs(float(draws.mean()) - hard_mean))
        if t == 0.01:
            assert binary > 0.95  # nearly every draw is 0 or 1
    assert relaxed_temperature() is None
    assert gaps[-1] < 0.01
    assert gaps[-1] <= gaps[0]
    rate = torch.tensor([0.3], requires_grad=True)
    from hpobench_stn.nn.regularizers import element_dropout

    with relaxed(0.1):
        out = element_dropout(torch.ones(1, 1000), rate, True)
        assert torch.equal(element_dropout(torch.ones(1, 10), torch.zeros(1), True), torch.ones(1, 10))
    (grad,) = torch.autograd.grad(out.sum(), rate)
    assert torch.isfinite(grad).all()
    assert float(grad) != 0.0
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"), relaxed(0.0):
        pass
