"""``stn``: Self-Tuning Networks (MacKay et al., ICLR 2019), Algorithm 1, under the harness's clock.

One run trains one best-response model (the task's architecture built from hyper-layers,
:meth:`~hpobench_stn.Task.build_hyper_model`) and moves the hyperparameters λ while it trains:

1. **Warm-up**: ``warmup_epochs`` epochs of weight steps at perturbed λ (λ and σ fixed at their start).
2. Then alternate ``train_steps`` **weight steps** with ``hyper_steps`` **hyper-steps**:

   * weight step (phase ``train``): draw ``λ + σ·ε`` per example (per batch for the task's
     ``batch_level_hparams``, or all with ``perturb="batch"``), apply the regularisers and augmentation
     at those values (:meth:`~hpobench_stn.Task.regularised_loss`), step the weights (elementary and
     hyper path) with the task's own optimiser, clipping and learning-rate rule; λ does not move;
   * hyper-step (phase ``hyper``): model in eval mode, a **clean** validation batch
     (:meth:`~hpobench_stn.Task.tuning_batches`, scored by the same ``eval_sums`` as every
     validation) with the model answering for perturbed ``λ + σ·ε`` (reparameterised, so σ gets a
     gradient); loss = mean validation loss − ``tau``·entropy(σ); Adam steps λ and σ only. The loss
     is the plain validation loss: no AR/TAR or other training penalties on validation. With
     ``hyper_perturb=False`` (the official LSTM code's hyper-step) the model answers for the current λ
     instead: σ then has no validation gradient, so it is not tuned and the entropy term is dropped.

3. Every ``val_every`` epochs (phase ``validate``): a full clean validation at the current λ, recorded
   as one trial (config = λ as applied, Ints floored), then the task's ``after_validation`` rule (e.g.
   PTB's learning-rate decay). The harness tests each new best validation with the clock paused, so
   the incumbent's test loss is that of the best-validation checkpoint.

λ and σ are recorded every ``schedule_every`` weight steps (``ScheduleRecord``: each tuned value, Ints
as their continuous value, and ``sigma/<name>``), which is the schedule the reports draw and
:mod:`methods.schedule_replay` replays. The run ends at the deadline (or after ``max_epochs``); the
deadline is checked before every step. A non-finite loss ends the run with a FAILED record.

STN refuses hyperparameters the task marks as optimisation settings (learning rate, momentum, batch
size): the best-response cannot see them. Untuned hyperparameters stay at their defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

import torch

from hpobench_stn import (
    Batch,
    FitResult,
    Method,
    MethodError,
    RunContext,
    SearchSpace,
    Task,
    TrialStatus,
    register_method,
)
from hpobench_stn.harness.method import phase_delta
from hpobench_stn.nn import HyperInput, hyper_input_of, init_hyper_path
from hpobench_stn.nn.hparams import HNET_INPUTS, HParams

DEFAULT_WARMUP_EPOCHS = 1
DEFAULT_HYPER_LR = 3e-3
# σ's start: 1 in u, as the official LSTM code's fixed σ and the Delta-STN code's start. At 0.5 (the
# official CNN code's) STN never left the flat low end of ridge's log-scaled L2 range on 5 seeds of 5
# (benchmarks/known_optimum.py; docs/stn.md, "Bounded hyperparameters").
DEFAULT_SIGMA0 = 1.0


@dataclass(frozen=True)
class STNOptions:
    """Options of ``stn``; None means the task's default (:meth:`Task.best_response_defaults`), then ours."""

    warmup_epochs: int | None = None  # weight-only epochs at perturbed λ before λ moves (paper: CIFAR 5, PTB ~1)
    train_steps: int = 2  # weight steps per cycle (the paper's 2:1)
    hyper_steps: int = 1  # hyper-steps per cycle
    hyper_lr: float | None = None  # Adam learning rate of λ and σ (paper: CIFAR 3e-3, PTB 0.01)
    tau: float = 1e-3  # entropy weight
    sigma0: float | None = None  # initial perturbation scale (unconstrained space); None: the task's, then 1
    sigma_max: float = 2.0  # upper bound of σ (ours, not the paper's: see HParams.clamp_)
    tune_sigma: bool = True  # False keeps σ at sigma0 (a fixed perturbation scale; only λ moves)
    # Hyper-steps at perturbed λ (the official CNN code) or at the current λ (False: the official LSTM
    # code; σ is then fixed and no entropy term is used). None: the task's default, then True.
    hyper_perturb: bool | None = None
    # σ of the training perturbations when hyper-steps run at the current λ (σ is then not tuned).
    # None: the task's default, then sigma0. The official LSTM code fixes it at 1.
    sigma_fixed: float | None = None
    perturb: str = "example"  # "example" or "batch": one draw per example, or one per batch for every λ
    gate_std: float = 0.01  # hypernetwork gate initialisation N(0, gate_std²) (official STN; Delta-STN: 0)
    # What the hypernetwork sees: "offset" (σ·ε, centred on the current λ; Delta-STN's), "unconstrained"
    # (u + σ·ε: the official CNN code) or "position" (sigmoid(u + σ·ε): the official LSTM code).
    hnet_input: str = "offset"
    tune: list[str] | None = None  # hyperparameters to tune (default: all); the rest stay at their defaults
    init: dict[str, float] = field(
        default_factory=dict
    )  # starting values (unnamed: the task's, then the space's defaults)
    margin: float = 0.05  # starting values are moved at least this fraction of the range inside the bounds
    val_every: int = 1  # epochs between full validations
    schedule_every: int = 10  # weight steps between schedule records
    max_epochs: int | None = None  # stop after this many epochs even if budget is left (None: the budget decides)

    def __post_init__(self) -> None:
        def positive_int(name: str, value: Any, minimum: int = 1) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")

        if self.warmup_epochs is not None:
            positive_int("warmup_epochs", self.warmup_epochs, 0)
        positive_int("train_steps", self.train_steps)
        positive_int("hyper_steps", self.hyper_steps)
        positive_int("val_every", self.val_every)
        positive_int("schedule_every", self.schedule_every)
        if self.max_epochs is not None:
            positive_int("max_epochs", self.max_epochs)
        for name in ("hyper_lr", "sigma0", "sigma_max", "sigma_fixed"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 < value < math.inf):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        for name in ("tau", "gate_std"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value < math.inf):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not isinstance(self.tune_sigma, bool):
            raise ValueError(f"tune_sigma must be true or false, got {self.tune_sigma!r}")
        if self.hyper_perturb is not None and not isinstance(self.hyper_perturb, bool):
            raise ValueError(f"hyper_perturb must be true or false, got {self.hyper_perturb!r}")
        if self.hnet_input not in HNET_INPUTS:
            raise ValueError(f"hnet_input must be one of {list(HNET_INPUTS)}, got {self.hnet_input!r}")
        if self.perturb not in ("example", "batch"):
            raise ValueError(f"perturb must be 'example' or 'batch', got {self.perturb!r}")
        if not 0 < self.margin < 0.5:
            raise ValueError(f"margin must lie in (0, 0.5), got {self.margin!r}")


def _cycle(make: Callable[[], Iterable[Batch]]) -> Iterator[Batch]:
    """Batches of ``make()``, restarted whenever a pass ends (hyper-steps run through validation repeatedly)."""
    while True:
        empty = True
        for batch in make():
            empty = False
            yield batch
        if empty:
            raise MethodError("stn: the task's tuning_batches() yielded no batch")


@register_method("stn")
class STN(Method):
    """Self-Tuning Networks (see the module docstring)."""

    record_kind = "validation"  # one record per periodic validation of its single training run
    # Runs recorded before these options existed: perturbed hyper-steps (issue 13), positions as the
    # hypernetwork's input (issue 22).
    legacy_options: ClassVar[Mapping[str, Any]] = {"hyper_perturb": True, "hnet_input": "position"}

    Options = STNOptions
    options: STNOptions
    loop_class: ClassVar[type[STNLoop]]  # set below the loop's definition

    def task_defaults(self, task: Task) -> dict[str, Any]:
        """The task's best-response defaults that apply to this method."""
        return dict(task.best_response_defaults())

    def resolved(self, task: Task) -> STNOptions:
        """The options with None filled from the task's defaults, then ours."""
        defaults = self.task_defaults(task)
        unknown = sorted(set(defaults) - {f.name for f in fields(STNOptions)})
        if unknown:
            raise MethodError(f"task {task.name!r}: unknown best-response defaults {unknown}")
        opts = self.options
        # Start values: the user's, then the task's (the official code's), then the space's defaults.
        init = {**dict(defaults.pop("init", {})), **opts.init}
        filled = {k: v for k, v in defaults.items() if getattr(opts, k) is None}
        opts = replace(opts, init=init, **filled)
        return replace(
            opts,
            warmup_epochs=DEFAULT_WARMUP_EPOCHS if opts.warmup_epochs is None else int(opts.warmup_epochs),
            hyper_perturb=True if opts.hyper_perturb is None else opts.hyper_perturb,
            hyper_lr=DEFAULT_HYPER_LR if opts.hyper_lr is None else opts.hyper_lr,
            sigma0=DEFAULT_SIGMA0 if opts.sigma0 is None else opts.sigma0,
        )

    def tuned_names(self, task: Task, space: SearchSpace | None = None) -> list[str]:
        """The hyperparameters to tune, within ``space`` (the run's open space; default: the task's);
        raises :class:`MethodError` for unknown or optimisation settings."""
        space = task.space if space is None else space
        names = list(space) if self.options.tune is None else list(self.options.tune)
        unknown = [n for n in names if n not in space]
        if unknown or not names:
            raise MethodError(f"stn: cannot tune {unknown or 'nothing'}; the task's hyperparameters: {list(space)}")
        refused = [n for n in names if not space[n].kind.best_response_tunable]
        if refused:
            raise MethodError(
                f"stn cannot tune {refused}: task {task.name!r} marks them as optimisation settings, which a "
                f"best-response model cannot see. Tune the others with --option tune=[...] (untuned "
                f"hyperparameters stay at their defaults)"
            )
        return names

    def run(self, task: Task, ctx: RunContext) -> None:
        with task.noise_scope(ctx.seeds.noise):
            self.make_loop(task, ctx).run()

    def make_loop(self, task: Task, ctx: RunContext) -> STNLoop:
        """The run's model, hyperparameters and optimisers (charged to ``train``), ready to run."""
        opts = self.resolved(task)
        names = self.tuned_names(task, ctx.space)
        timer, seeds = ctx.timer, ctx.seeds
        fixed = task.space.default()
        init = {n: opts.init.get(n, fixed[n]) for n in names}
        per_batch = list(names) if opts.perturb == "batch" else [n for n in task.batch_level_hparams if n in names]
        method_rng = seeds.torch("method")  # hyper-path initialisation, then the order of tuning batches

        with timer.phase("train"):
            model = task.build_hyper_model(len(names), seeds.torch("init"))
            init_hyper_path(model, method_rng, opts.gate_std)
            # Hyper-steps at the current λ leave σ untuned: it is sigma_fixed (the task's, else sigma0).
            sigma0 = float(opts.sigma0 or DEFAULT_SIGMA0)
            sigma = sigma0 if opts.hyper_perturb or opts.sigma_fixed is None else opts.sigma_fixed
            hparams = HParams(
                task.space,
                names,
                init,
                sigma,
                per_batch=per_batch,
                margin=opts.margin,
                sigma_max=opts.sigma_max,
                hnet=opts.hnet_input,
                device=task.device,
            )
            weight_opt = task.make_optimizer(model)
            # With tune_sigma off, or hyper-steps at the current λ (no gradient for σ), σ is not handed to
            # the optimiser: it stays at sigma0 (up to an Int's floor).
            tune_sigma = opts.tune_sigma and bool(opts.hyper_perturb)
            tuned_params = list(hparams.parameters()) if tune_sigma else [hparams.unconstrained]
            hyper_opt = torch.optim.Adam(tuned_params, lr=float(opts.hyper_lr or DEFAULT_HYPER_LR))
        return self.loop_class(
            task, ctx, opts, model, hyper_input_of(model), hparams, fixed, weight_opt, hyper_opt, method_rng
        )


class TuningLoop:
    """One run of a method that tunes λ inside a single training run: weight steps, a hyper-step every
    ``train_steps`` of them after the warm-up, a full validation (recorded as a trial) every
    ``val_every`` epochs, the schedule every ``schedule_every`` steps. :meth:`run` reads top to bottom;
    a method supplies :meth:`weight_loss` (or a whole :meth:`weight_step`), :meth:`hyper_step` and
    :meth:`at_current_lambda`
    (``stn``'s :class:`STNLoop`, ``ift``'s loop)."""

    def __init__(
        self,
        task: Task,
        ctx: RunContext,
        opts: Any,  # the method's options: warmup_epochs, train_steps, hyper_steps, val_every, ...
        model: torch.nn.Module,
        hparams: HParams,
        fixed: Mapping[str, float | int],
        weight_opt: torch.optim.Optimizer,
        hyper_opt: torch.optim.Optimizer,
        method_rng: torch.Generator,
    ) -> None:
        self.task, self.ctx, self.opts, self.model = task, ctx, opts, model
        self.hparams, self.fixed = hparams, dict(fixed)
        self._untuned: dict[int, dict[str, torch.Tensor]] = {}  # batch size → untuned values, (N,) each
        self.weight_opt, self.hyper_opt = weight_opt, hyper_opt
        self.tuning = _cycle(lambda: task.tuning_batches(method_rng))
        self.steps = self.epochs = 0
        self.history: list[float] = []  # validation losses, oldest first
        self.snapshot = ctx.timer.totals()  # phase totals at the last record

    def run(self) -> None:
        timer, opts = self.ctx.timer, self.opts
        order = self.ctx.seeds.torch("order")
        self.record_schedule()
        while opts.max_epochs is None or self.epochs < opts.max_epochs:
            tuning = self.epochs >= (opts.warmup_epochs or 0)  # λ moves only after the warm-up
            with timer.phase("train"):
                batches = self.task.train_batches(order)
            for batch in batches:
                if not self.weight_step(batch):
                    return
                if tuning and self.steps % opts.train_steps == 0:
                    for _ in range(opts.hyper_steps):
                        if not self.hyper_step():
                            return
                if self.steps % opts.schedule_every == 0:
                    self.record_schedule()
            self.epochs += 1
            if self.epochs % opts.val_every == 0 and not self.validate():
                return
        self.record_schedule()  # max_epochs reached: the schedule's last point

    def weight_step(self, batch: Batch) -> bool:
        """One optimiser step of the weights on :meth:`weight_loss`; False when the run must stop."""
        timer = self.ctx.timer
        with timer.phase("train"):
            if timer.expired():
                self.stop(TrialStatus.OUT_OF_BUDGET, "deadline reached during training")
                return False
            loss = self.weight_loss(batch)
            if not torch.isfinite(loss):
                self.stop(TrialStatus.FAILED, f"non-finite training loss {loss.item()} at step {self.steps}")
                return False
            self.weight_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.task.clip_gradients(self.model)
            self.weight_opt.step()
            self.steps += 1
        return True

    def weight_loss(self, batch: Batch) -> torch.Tensor:
        """The training loss of one weight step on ``batch`` (the model put in training mode)."""
        raise NotImplementedError

    def hyper_step(self) -> bool:
        """One step of λ; False when the run must stop."""
        raise NotImplementedError

    def at_current_lambda(self) -> None:
        """Make the model answer for the current λ (validation's and the incumbent's model)."""

    def untuned_values(self, n: int) -> dict[str, torch.Tensor]:
        """The untuned hyperparameters at their fixed values, ``(n,)`` each (built once per batch size)."""
        if n not in self._untuned:
            tuned = set(self.hparams.names)
            device = self.task.device
            fixed = {k: v for k, v in self.fixed.items() if k not in tuned}
            self._untuned[n] = {k: torch.full((n,), float(v), device=device) for k, v in fixed.items()}
        return self._untuned[n]

    def validate(self) -> bool:
        """A full clean validation at the current λ, recorded as a trial; False when the run must stop."""
        timer = self.ctx.timer
        with timer.phase("validate"):
            self.at_current_lambda()
            val = self.task.evaluate(self.model, "val", timer)
        if val is None:
            self.stop(TrialStatus.OUT_OF_BUDGET, "deadline reached during validation")
            return False
        self.history.append(val.loss)
        if not math.isfinite(val.loss):
            self.stop(TrialStatus.FAILED, f"non-finite validation loss {val.loss} after epoch {self.epochs}")
            return False
        fit = FitResult(
            TrialStatus.COMPLETE, val, self.epochs, self.steps, model=self.model, val_losses=tuple(self.history)
        )
        self.record(fit)
        with timer.phase("validate"):
            self.task.after_validation(self.weight_opt, self.history)
        return True

    def stop(self, status: TrialStatus, reason: str) -> None:
        """Record how the run ended (no validation attached)."""
        self.record_schedule()
        self.record(FitResult(status, None, self.epochs, self.steps, reason, val_losses=tuple(self.history)))

    def record(self, fit: FitResult) -> None:
        totals = self.ctx.timer.totals()
        self.ctx.record(self.hparams.config(self.fixed), fit, phase_delta(self.snapshot, totals))
        self.snapshot = totals

    def record_schedule(self) -> None:
        """The current λ (Ints as their continuous value) at the current step."""
        self.ctx.record_schedule(self.steps, self.hparams.current())


class STNLoop(TuningLoop):
    """The state of one STN run (Algorithm 1: :meth:`TuningLoop.run` with STN's steps).

    A variant of the algorithm (``delta_stn``) subclasses it and overrides a step."""

    def __init__(
        self,
        task: Task,
        ctx: RunContext,
        opts: STNOptions,
        model: torch.nn.Module,
        hyper_input: HyperInput,
        hparams: HParams,
        fixed: Mapping[str, float | int],
        weight_opt: torch.optim.Optimizer,
        hyper_opt: torch.optim.Optimizer,
        method_rng: torch.Generator,
    ) -> None:
        super().__init__(task, ctx, opts, model, hparams, fixed, weight_opt, hyper_opt, method_rng)
        self.opts: STNOptions = opts
        self.hyper_input = hyper_input

    # ----------------------------------------------------------------------------------------------
    def weight_loss(self, batch: Batch) -> torch.Tensor:
        """The regularised training loss at perturbed λ, one draw per example."""
        n = self.task.examples_in(batch)
        draw = self.hparams.perturbed(n)  # hnet (N, K); values name → (N,)
        values = {**self.untuned_values(n), **draw.values}
        self.hyper_input.set(draw.hnet)
        self.model.train()
        return self.task.regularised_loss(self.model, batch, values)

    def hyper_step(self) -> bool:
        """One step of λ and σ on a clean validation batch; False when the run must stop."""
        timer = self.ctx.timer
        with timer.phase("hyper"):
            batch = next(self.tuning)
            if timer.expired():
                self.stop(TrialStatus.OUT_OF_BUDGET, "deadline reached during a hyper-step")
                return False
            self.model.eval()  # clean data: no dropout, no augmentation (eval_sums never augments)
            # The expected validation loss over the perturbation: the model answers for λ + σ·ε, one
            # draw per example, differentiable in λ and σ (reparameterised). Without it σ would see only
            # the entropy bonus and grow without bound.
            if self.opts.hyper_perturb:
                n = self.task.examples_in(batch)
                self.hyper_input.set(self.hparams.perturbed(n, differentiable=True).hnet)  # (N, K)
            else:  # the official LSTM hyper-step: the current λ, the same row for every example
                self.hyper_input.set(self.hparams.hnet_input())  # (K,), differentiable in u
            loss_sum, n, _ = self.task.eval_sums(self.model, batch)
            loss = loss_sum / n
            if self.opts.hyper_perturb:
                loss = loss - self.opts.tau * self.hparams.entropy()
            if not torch.isfinite(loss):
                self.stop(TrialStatus.FAILED, f"non-finite validation loss {loss.item()} in a hyper-step")
                return False
            # Gradients for λ and σ only: the weights' gradients are not needed (and not accumulated).
            params = [p for group in self.hyper_opt.param_groups for p in group["params"]]
            grads = torch.autograd.grad(loss, params)
            for p, g in zip(params, grads, strict=True):
                p.grad = g
            self.hyper_opt.step()
            self.hparams.clamp_()
        return True

    def at_current_lambda(self) -> None:
        """Make the model answer for the current λ (no gradient): validation's and the incumbent's model."""
        self.hyper_input.set(self.hparams.hnet_input().detach())

    def record_schedule(self) -> None:
        """The current λ and σ (``sigma/<name>``) at the current step."""
        with torch.no_grad():
            sigma = self.hparams.sigma().tolist()
        values = self.hparams.current()
        values.update({f"sigma/{name}": s for name, s in zip(self.hparams.names, sigma, strict=True)})
        self.ctx.record_schedule(self.steps, values)


STN.loop_class = STNLoop
