"""``delta_stn``: Delta-STN (Bae & Grosse, NeurIPS 2020), STN with a well-posed best-response fit.

Delta-STN keeps STN's model (the task's hyper-model, :meth:`~hpobench_stn.Task.build_hyper_model`), its
hyperparameters (:class:`~hpobench_stn.nn.HParams`), its hyper-step and its schedule, and changes how the
weights are fitted. The hyper-model's weights split in two: the elementary weights ``w0`` and the
response ``Φ`` (the hyper weights and gates, :func:`~hpobench_stn.nn.is_hyper_path`), with the weights at
hyperparameters ``λ + Δ`` equal to ``w0 + ΦΔ``:

* **centred input**: the hypernetwork sees the offset ``Δ`` from the current λ (``hnet_input="offset"``,
  the only input it accepts), so at ``Δ = 0`` the model is exactly ``w0`` and ``Φ`` is the response's
  Jacobian;
* **two sub-steps per training batch** (phase ``train``), on the same batch:

  1. ``w0`` on the regularised training loss at the *unperturbed* λ (every regulariser at its current
     value; the model centred, so the hyper path is not even computed), stepping ``w0`` only. STN fits
     the weights to the loss averaged over perturbations instead, which biases them;
  2. ``Φ`` on the training loss at perturbed ``λ̃ = λ + σ·ε`` (per example, per batch for the task's
     ``batch_level_hparams``), with the network **linearised** around ``w0``:
     ``f(x, w0) + J·ΦΔ``, a forward-mode Jacobian-vector product (:mod:`hpobench_stn.nn.linearize`);
     this step moves ``Φ`` only. Without linearisation (``linearize=False``) the network runs at
     ``w0 + ΦΔ`` as in STN. A stateful task (PTB's hidden state) runs both sub-steps from the same
     carried state and keeps the first sub-step's (:meth:`~hpobench_stn.Task.carried_state`);

* **the hyper-step** is STN's: a clean validation batch in eval mode through the response at perturbed
  λ̃ (not linearised), loss minus ``tau``·entropy(σ), Adam on λ and σ. It always runs at perturbed λ̃ with
  σ tuned: the task's ``hyper_perturb`` / ``sigma_fixed`` defaults describe the official STN LSTM code
  and are not read;
* **evaluation** at ``Δ = 0``: the elementary weights ``w0`` alone.

Both sub-steps use the task's optimiser (one instance; each sub-step hands it the gradients of its own
group, so the other group's weights and momentum stay put; the learning-rate rule acts on both, as the
reference code's ``decay_both``) and its gradient clipping, per group.

Defaults: STN's, except ``tau = 1e-4`` (the Delta-STN code's README) and ``linearize = True`` (its
``--linearize``). The gates start as STN's, ``N(0, 0.01²)`` (``gate_std``; the Delta-STN code starts
them at zero), so both methods start from the same draw; on ``ridge`` from the flat low end of its log
range, zero gates left λ stuck on 2 seeds of 12 and 0.01 on 1 of 12, as STN (docs/stn.md, Delta-STN).
The warm-up, hyper learning rate, σ's start and the start values are the task's best-response defaults,
as for ``stn``; the step ratio stays STN's 2:1 (the reference examples use 5:1), so the two methods
differ only in what this docstring lists. Everything is recorded as ``stn`` records it (validations,
``ScheduleRecord``s with ``sigma/<name>``), so reports, schedule figures and
:mod:`methods.schedule_replay` read it unchanged.

Written from the paper and ``pomonam/Self-Tuning-Networks`` (MIT), whose linearisation uses a
double-backward trick on private autograd helpers; forward mode does it in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from hpobench_stn import Batch, Task, TrialStatus, register_method
from hpobench_stn.methods.stn import STN, STNLoop, STNOptions
from hpobench_stn.nn import HyperInput, check_linearised, is_hyper_path, linearise

# The official STN LSTM code's hyper-step at the current λ with a fixed σ: not Delta-STN's.
STN_ONLY_DEFAULTS = ("hyper_perturb", "sigma_fixed")


@dataclass(frozen=True)
class DeltaSTNOptions(STNOptions):
    """Options of ``delta_stn``: those of ``stn`` (same meaning) with Delta-STN's defaults, plus ``linearize``."""

    tau: float = 1e-4  # entropy weight (Delta-STN README: 1e-4; STN's 1e-3)
    linearize: bool = True  # fit Φ on the linearised network (f + J·ΦΔ), or on the network at w0 + ΦΔ

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.linearize, bool):
            raise ValueError(f"linearize must be true or false, got {self.linearize!r}")
        if self.hnet_input != "offset":
            raise ValueError(
                f"delta_stn needs the centred hypernetwork input: hnet_input must be 'offset', got {self.hnet_input!r}"
            )
        if self.hyper_perturb is False:
            raise ValueError("delta_stn's hyper-step runs at perturbed λ (σ tuned): hyper_perturb must not be false")
        if self.sigma_fixed is not None:
            raise ValueError(f"delta_stn tunes σ: sigma_fixed must be unset, got {self.sigma_fixed!r}")


@register_method("delta_stn")
class DeltaSTN(STN):
    """Delta-STN (see the module docstring)."""

    legacy_options: ClassVar[Mapping[str, Any]] = {}
    Options = DeltaSTNOptions
    options: DeltaSTNOptions

    def task_defaults(self, task: Task) -> dict[str, Any]:
        defaults = super().task_defaults(task)
        for name in STN_ONLY_DEFAULTS:
            defaults.pop(name, None)
        return defaults


def general_loss(
    task: Task, model: torch.nn.Module, hyper_input: HyperInput, batch: Batch, values: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """Sub-step 1's loss: the regularised training loss of ``w0`` alone (``values`` at the current λ)."""
    hyper_input.centre()
    return task.regularised_loss(model, batch, values)


def response_loss(
    task: Task,
    model: torch.nn.Module,
    hyper_input: HyperInput,
    batch: Batch,
    values: Mapping[str, torch.Tensor],
    offsets: torch.Tensor,
    linearize: bool = True,
) -> torch.Tensor:
    """Sub-step 2's loss: the regularised training loss at ``values`` (perturbed λ̃) of the network at
    ``w0 + ΦΔ`` for ``Δ = offsets`` ``(N, K)``, linearised around ``w0`` unless ``linearize`` is False."""
    if not linearize:
        hyper_input.set(offsets)
        return task.regularised_loss(model, batch, values)
    with linearise(hyper_input, offsets):
        return check_linearised(task.regularised_loss(model, batch, values), task.name)


class DeltaSTNLoop(STNLoop):
    """STN's loop with Delta-STN's weight step and evaluation at ``Δ = 0``."""

    opts: DeltaSTNOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        named = list(self.model.named_parameters())
        self.general = [p for name, p in named if not is_hyper_path(name)]  # w0
        self.response = [p for name, p in named if is_hyper_path(name)]  # Φ: hyper weights and gates

    def weight_step(self, batch: Batch) -> bool:
        """Delta-STN's two sub-steps on one batch; False when the run must stop."""
        timer, task, model = self.ctx.timer, self.task, self.model
        with timer.phase("train"):
            if timer.expired():
                self.stop(TrialStatus.OUT_OF_BUDGET, "deadline reached during training")
                return False
            n = task.examples_in(batch)
            untuned = self.untuned_values(n)
            model.train()
            before = task.carried_state(model)

            # 1. w0 on the regularised loss at the current λ: the model centred (exactly w0).
            loss = general_loss(task, model, self.hyper_input, batch, {**untuned, **self.hparams.values_at_current(n)})
            if not self.descend(loss, self.general, "training"):
                return False
            after = task.carried_state(model)

            # 2. Φ on the loss at perturbed λ̃, the network linearised around w0 (from the same carried state).
            task.restore_carried_state(model, before)
            draw = self.hparams.perturbed(n)  # hnet: the offsets Δ (N, K); values at λ̃, name → (N,)
            values = {**untuned, **draw.values}
            loss = response_loss(task, model, self.hyper_input, batch, values, draw.hnet, self.opts.linearize)
            if not self.descend(loss, self.response, "response"):
                return False
            task.restore_carried_state(model, after)
            self.steps += 1
        return True

    def descend(self, loss: torch.Tensor, params: list[torch.nn.Parameter], what: str) -> bool:
        """One optimiser step of ``params`` alone on ``loss`` (the other group keeps no gradient, so the
        optimiser leaves it and its state alone); False, with a FAILED record, for a non-finite loss."""
        if not torch.isfinite(loss):
            self.stop(TrialStatus.FAILED, f"non-finite {what} loss {loss.item()} at step {self.steps}")
            return False
        self.weight_opt.zero_grad(set_to_none=True)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        self.task.clip_gradients(self.model)  # sees only this group's gradients
        self.weight_opt.step()
        return True

    def at_current_lambda(self) -> None:
        self.hyper_input.centre()  # Δ = 0: the elementary weights alone


DeltaSTN.loop_class = DeltaSTNLoop
