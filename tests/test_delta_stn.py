"""Delta-STN (``methods/delta_stn.py``): the linearisation, the two sub-steps, the best-response Jacobian,
and the ridge optimum against STN. Known optima at default options are in ``test_known_optimum.py``."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, cast

import pytest
import torch

from hpobench_stn import Budget, FakeClock, RunSeeds, Task, TrialStatus, get_method, get_task
from hpobench_stn.foundation.clock import BudgetTimer
from hpobench_stn.harness.method import RunContext
from hpobench_stn.harness.records import RunLog, load_log
from hpobench_stn.harness.runner import RunSpec, execute
from hpobench_stn.methods.delta_stn import DeltaSTNLoop, general_loss, response_loss
from hpobench_stn.methods.stn import STN
from hpobench_stn.nn import (
    HyperInput,
    HyperLinear,
    hyper_input_of,
    init_hyper_path,
    is_hyper_path,
    linearise,
    linearised,
)
from hpobench_stn.tasks.cifar_alexnet import CifarAlexNet
from hpobench_stn.tasks.digits_mlp import DigitsTask
from hpobench_stn.tasks.known_optimum import Ridge
from hpobench_stn.tasks.ptb_lstm import PTBTask

_ENV = os.environ.get("HPOBENCH_STN_DATA")
DATA = Path(_ENV) if _ENV else Path(__file__).resolve().parents[2] / "shared" / "data"
HAS_PTB = (DATA / "ptb" / "ptb.train.txt").is_file()
HAS_CIFAR = (DATA / "cifar10").is_dir()


def _task(name: str) -> Task:
    if (name == "ptb_lstm" and not HAS_PTB) or (name == "cifar_alexnet" and not HAS_CIFAR):
        pytest.skip(f"no data for {name} under {DATA}")
    classes: dict[str, Any] = {
        "digits_mlp": DigitsTask,
        "ptb_lstm": PTBTask,
        "cifar_alexnet": CifarAlexNet,
        "ridge": Ridge,
    }
    cls = classes[name]
    task: Task = cls("smoke", data_dir=DATA) if name in ("ptb_lstm", "cifar_alexnet") else cls("smoke")
    task.prepare()
    task.load(RunSeeds.from_master(0))
    return task


# ------------------------------------------------------------------------------------------------------
# The linearisation


def _linearisation_case(task: Task) -> tuple[torch.nn.Module, HyperInput, Any, dict[str, torch.Tensor], torch.Tensor]:
    """A hyper-model in training mode with a response far from zero (gates N(0, 0.3²)), a training
    batch, the default config per example, and offsets Δ ``(N, K)``."""
    names = list(task.space)
    model = task.build_hyper_model(len(names), torch.Generator().manual_seed(0))
    init_hyper_path(model, torch.Generator().manual_seed(1), gate_std=0.3)
    model.train()
    batch = next(iter(task.train_batches(torch.Generator().manual_seed(0))))
    values = task.per_example_values(task.space.default(), batch)
    offsets = torch.randn(task.examples_in(batch), len(names), generator=torch.Generator().manual_seed(2))
    return model, hyper_input_of(model), batch, values, offsets


@pytest.mark.parametrize("name", ["digits_mlp", "ptb_lstm", "cifar_alexnet", "ridge"])
def test_the_jvp_is_the_finite_difference_of_the_outputs_each_task_marks(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In training mode (same masks in every pass), the tangent of each output a task's loss passes
    through ``linearised`` is the central difference of that output between inputs ±ε·Δ (relative error
    of the whole output under 1 %)."""
    task = _task(name)
    module = __import__(type(task).__module__, fromlist=["linearised"])
    seen: list[torch.Tensor] = []
    tangents: list[torch.Tensor] = []

    def spy(t: torch.Tensor) -> torch.Tensor:
        primal, tangent = torch.autograd.forward_ad.unpack_dual(t)
        seen.append(primal.detach().clone())
        if tangent is not None:
            tangents.append(tangent.detach().clone())
        return linearised(t)

    monkeypatch.setattr(module, "linearised", spy)
    model, hyper_input, batch, values, offsets = _linearisation_case(task)
    eps = 1e-4  # small: the networks are piecewise linear, and a kink crossed between ±ε spoils a difference

    def outputs(h: torch.Tensor | None) -> list[torch.Tensor]:
        seen.clear()
        with task.noise_scope(7), torch.no_grad():
            if h is None:
                with linearise(hyper_input, offsets):
                    task.regularised_loss(model, batch, values)
            else:
                hyper_input.set(h)
                task.regularised_loss(model, batch, values)
        return list(seen)

    outputs(None)
    assert tangents, f"{name}: no output carried a tangent"
    plus, minus = outputs(eps * offsets), outputs(-eps * offsets)
    for tangent, p, m in zip(tangents, plus, minus, strict=True):
        fd = (p - m) / (2 * eps)
        # Relative to the whole output (measured: 0.09 % PTB, 0.14 % digits, 0.3 % CIFAR, 0.08 % ridge).
        assert fd.norm().item() > 0
        assert (tangent - fd).norm().item() < 1e-2 * fd.norm().item(), name


@pytest.mark.parametrize("name", ["digits_mlp", "ptb_lstm", "cifar_alexnet"])
def test_the_layers_written_out_tangents_give_forward_modes_gradients(name: str) -> None:
    """The hyper-layers' linearised pass (primal without the response, tangents written out; the LSTM's
    tangent recurrence) gives the response the same loss and gradients as torch's generic forward mode
    through the ordinary pass at the dual input (0, Δ) (the LSTM's time loop then as plain operations).
    At the default configs weight penalties are off or negligible (digits 1e-6): the linearised pass
    takes a penalty on the weights exactly, the generic pass would linearise it (ridge differs by design)."""
    task = _task(name)
    model, hyper_input, batch, values, offsets = _linearisation_case(task)
    response = [p for k, p in model.named_parameters() if is_hyper_path(k)]
    with task.noise_scope(7):
        fast = response_loss(task, model, hyper_input, batch, values, offsets)
    fast_grads = torch.autograd.grad(fast, response, allow_unused=True)
    with task.noise_scope(7), torch.autograd.forward_ad.dual_level():
        hyper_input.set(torch.autograd.forward_ad.make_dual(torch.zeros_like(offsets), offsets))
        generic = task.regularised_loss(model, batch, values)
    generic_grads = torch.autograd.grad(generic, response, allow_unused=True)
    assert fast.item() == pytest.approx(generic.item(), rel=1e-5)
    for a, b in zip(
        cast(list[torch.Tensor | None], fast_grads), cast(list[torch.Tensor | None], generic_grads), strict=True
    ):
        if a is None or b is None:
            assert a is None or not a.any()
            assert b is None or not b.any()
            continue
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


def test_a_loss_that_does_not_mark_its_outputs_is_refused() -> None:
    task = _task("digits_mlp")

    class Unmarked(DigitsTask):
        def regularised_loss(self, model: Any, batch: Any, values: Any) -> torch.Tensor:
            x, y = batch
            return torch.nn.functional.cross_entropy(
                model(x, *(values[k] for k in ("dropout_in", "dropout_h1", "dropout_h2"))), y
            )

    unmarked = Unmarked("smoke")
    unmarked.prepare()
    unmarked.load(RunSeeds.from_master(0))
    names = list(task.space)
    model = task.build_hyper_model(len(names), torch.Generator().manual_seed(0))
    batch = next(iter(task.train_batches(torch.Generator().manual_seed(0))))
    values = task.per_example_values(task.space.default(), batch)
    offsets = torch.randn(task.examples_in(batch), len(names))
    with pytest.raises(ValueError, match=r"still a forward-mode dual number.*linearised\(\)"):
        response_loss(unmarked, model, hyper_input_of(model), batch, values, offsets)


def test_centred_hyper_layers_are_the_elementary_network() -> None:
    """A centred model computes what a zero input computes, and gives the hyper path no gradient."""
    for name in ("digits_mlp", "ptb_lstm", "cifar_alexnet"):
        task = _task(name)
        model = task.build_hyper_model(len(task.space), torch.Generator().manual_seed(0))
        init_hyper_path(model, torch.Generator().manual_seed(1), gate_std=0.3)
        model.eval()
        batch = next(iter(task.eval_batches("val")))
        hyper_input_of(model).set(torch.zeros(len(task.space)))
        zero, _, _ = task.eval_sums(model, batch)
        hyper_input_of(model).centre()
        centred, _, _ = task.eval_sums(model, batch)
        assert centred.item() == pytest.approx(zero.item(), rel=1e-5), name


# ------------------------------------------------------------------------------------------------------
# The two sub-steps


def _loop(task: Task, method: str, options: dict[str, Any], seed: int, log: RunLog) -> Any:
    seeds = RunSeeds.from_master(seed)
    timer = BudgetTimer(Budget(1e9), FakeClock(tick=1e-6))
    timer.start()
    ctx = RunContext(task, timer, seeds, log, method)
    stn = get_method(method)(options)
    assert isinstance(stn, STN)
    return stn.make_loop(task, ctx)


def test_sub_step_one_moves_w0_only_and_sub_step_two_the_response_only(tmp_path: Path) -> None:
    task = _task("digits_mlp")
    with RunLog(tmp_path) as log, task.noise_scope(0):
        loop = _loop(task, "delta_stn", {"gate_std": 0.1}, 0, log)
        assert isinstance(loop, DeltaSTNLoop)
        batch = next(iter(task.train_batches(torch.Generator().manual_seed(0))))
        before = {k: v.detach().clone() for k, v in loop.model.named_parameters()}
        n = task.examples_in(batch)
        loss = general_loss(
            task, loop.model, loop.hyper_input, batch, {**loop.untuned_values(n), **loop.hparams.values_at_current(n)}
        )
        assert loop.descend(loss, loop.general, "training")
        after = {k: v.detach().clone() for k, v in loop.model.named_parameters()}
        for k in before:
            assert torch.equal(before[k], after[k]) == is_hyper_path(k), k
        draw = loop.hparams.perturbed(n)
        loss = response_loss(
            task, loop.model, loop.hyper_input, batch, {**loop.untuned_values(n), **draw.values}, draw.hnet
        )
        assert loop.descend(loss, loop.response, "response")
        last = {k: v.detach().clone() for k, v in loop.model.named_parameters()}
        for k in before:
            assert torch.equal(after[k], last[k]) != is_hyper_path(k), k


def test_ptb_both_sub_steps_start_from_one_hidden_state_and_keep_the_first(tmp_path: Path) -> None:
    task = _task("ptb_lstm")
    batches = iter(task.train_batches(torch.Generator().manual_seed(0)))
    first, second = next(batches), next(batches)
    with RunLog(tmp_path) as log, task.noise_scope(0):
        loop = _loop(task, "delta_stn", {"gate_std": 0.1}, 0, log)
        assert loop.weight_step(first)
        starts: list[Any] = []
        ends: list[Any] = []
        original = task.regularised_loss

        def spy(m: Any, batch: Any, values: Any) -> torch.Tensor:
            starts.append(task.carried_state(m))
            loss = original(m, batch, values)
            ends.append(task.carried_state(m))
            return loss

        task.regularised_loss = spy  # type: ignore[method-assign,assignment]
        before = task.carried_state(loop.model)
        assert loop.weight_step(second)
    assert len(starts) == 2
    before = cast(dict[str, Any], before)
    for state in starts:  # both sub-steps read the state the first batch left
        assert [tuple(map(id, hc)) for hc in state["train"]] == [tuple(map(id, hc)) for hc in before["train"]]
    kept = cast(dict[str, Any], task.carried_state(loop.model))["train"]
    assert [tuple(map(id, hc)) for hc in kept] == [tuple(map(id, hc)) for hc in ends[0]["train"]]  # sub-step 1's
    assert not any(torch.equal(a[0], b[0]) for a, b in zip(ends[0]["train"], ends[1]["train"], strict=True))


def test_options_are_checked_and_the_task_defaults_of_the_official_lstm_code_are_not_read() -> None:
    cls = get_method("delta_stn")
    for bad, match in (
        ({"hnet_input": "position"}, "hnet_input must be 'offset'"),
        ({"hyper_perturb": False}, "hyper_perturb must not be false"),
        ({"sigma_fixed": 1.0}, "sigma_fixed must be unset"),
        ({"linearize": "yes"}, "linearize must be true or false"),
    ):
        with pytest.raises(ValueError, match=match):
            cls(bad)
    ptb = PTBTask("smoke")
    method = cls({})
    assert isinstance(method, STN)
    resolved = method.resolved(ptb)
    assert resolved.hyper_perturb is True
    assert resolved.sigma_fixed is None
    assert resolved.warmup_epochs == 1
    assert resolved.hyper_lr == 0.01
    assert (resolved.tau, resolved.gate_std, getattr(resolved, "linearize", None)) == (1e-4, 0.01, True)


# ------------------------------------------------------------------------------------------------------
# The best-response Jacobian of a linear model, in closed form


def ridge_jacobian_error(method: str, seed: int, sigma: float, tmp_path: Path) -> tuple[float, float]:
    """Train ``method``'s weights on ``ridge`` at a fixed λ (no hyper-steps) with perturbation scale
    ``sigma``; return the relative errors of its response ``dw/du`` against the exact best-response
    Jacobian, and of its ``w0`` against ``w*(λ)``."""
    from dataclasses import replace

    task = Ridge("smoke")
    task.preset = replace(task.preset, batch_size=task.preset.n_train, lr=0.002)  # full batch, small steps
    task.load(RunSeeds.from_master(seed))
    epochs = 3000
    opts = {
        "max_epochs": epochs,
        "warmup_epochs": epochs,  # λ never moves
        "sigma0": sigma,
        "tune_sigma": False,
        "init": {"l2": task.value_at(0.5)},
    }
    (tmp_path / f"{method}{seed}").mkdir()
    with RunLog(tmp_path / f"{method}{seed}") as log, task.noise_scope(RunSeeds.from_master(seed).noise):
        loop = _loop(task, method, opts, seed, log)
        loop.run()
    return task.response_errors(loop.model, loop.hparams)


@pytest.mark.slow
def test_the_response_is_the_closed_form_best_response_jacobian(tmp_path: Path) -> None:
    """On ridge regression (a linear model, where linearising changes nothing), Delta-STN's response is
    the exact best-response Jacobian within 10 % on each of 3 seeds, its w0 is the exact best response,
    and it is at least as close as STN's, whose w0 is fitted to the perturbation-averaged loss."""
    for seed in range(3):
        delta, delta_w0 = ridge_jacobian_error("delta_stn", seed, 0.1, tmp_path)
        stn, stn_w0 = ridge_jacobian_error("stn", seed, 0.1, tmp_path)
        print(
            f"seed {seed}: Jacobian error delta_stn {delta:.3f}, stn {stn:.3f}; w0 error {delta_w0:.4f}, {stn_w0:.4f}"
        )
        assert delta < 0.10
        assert delta_w0 < 1e-3 < stn_w0
        assert delta <= stn


# ------------------------------------------------------------------------------------------------------
# Runs through the harness


@pytest.mark.parametrize("name", ["digits_mlp", "ptb_lstm", "cifar_alexnet"])
def test_delta_stn_runs_on_every_task(name: str, tmp_path: Path) -> None:
    _task(name)  # skips without data
    spec = RunSpec(name, "delta_stn", "smoke", 0, Budget(4.0), {"warmup_epochs": 0, "max_epochs": 2})
    outcome = execute(spec, tmp_path, clock=FakeClock(tick=1e-3), device="cpu", data_dir=DATA)
    _, trials, schedule = load_log(outcome.run_dir)
    assert trials
    assert all(math.isfinite(t.val_loss) for t in trials if t.val_loss is not None)
    assert len(schedule) >= 2
    tuned = [k for k in schedule[0].values if "/" not in k]
    assert set(tuned) == set(get_task(name).space)
    assert any(schedule[-1].values[k] != schedule[0].values[k] for k in tuned)  # λ moved


def test_linearised_inputs_of_the_wrong_shape_are_refused() -> None:
    source = HyperInput(3)
    with pytest.raises(ValueError, match=r"linearise needs offsets of shape \(N, 3\), got \(3,\)"):
        source.linearise(torch.zeros(3))
    layer = HyperLinear(4, 2, n_hparams=3, source=source)
    source.linearise(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"HyperLinear: expected offsets of shape \(8, 3\), got \(5, 3\)"):
        layer(torch.randn(8, 4))


def test_a_non_finite_response_loss_ends_the_run_as_failed(tmp_path: Path) -> None:
    task = _task("digits_mlp")
    with RunLog(tmp_path) as log, task.noise_scope(0):
        loop = _loop(task, "delta_stn", {}, 0, log)
        assert not loop.descend(torch.tensor(float("nan")), loop.response, "response")
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    failed = [r for r in records if r.get("status") == TrialStatus.FAILED.value]
    assert len(failed) == 1
    assert "non-finite response loss nan at step 0" in failed[0]["reason"]
