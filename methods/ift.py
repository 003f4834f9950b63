"""``ift``: hypergradients by implicit differentiation (Lorraine, Vicol & Duvenaud, AISTATS 2020).

One run trains the task's **plain** model (:meth:`~hpobench_stn.Task.build_model`, no hypernetwork) at
the current λ and moves λ while it trains, under the same clock and loop as ``stn``
(:class:`~hpobench_stn.methods.stn.TuningLoop`: warm-up, then one hyper-step every ``train_steps``
weight steps, a full clean validation every ``val_every`` epochs, the schedule every
``schedule_every`` steps):

* **weight step** (phase ``train``): the task's optimiser, clipping and learning-rate rule on the
  regularised training loss ``L_T(w, λ)`` at the current λ; the dropout masks relaxed (``relax_training``,
  below), the fused kernels as in every other method;
* **hyper-step** (phase ``hyper``): with ``w`` taken as the inner optimum ``w*(λ)``, the implicit function
  theorem gives the hypergradient

      dL_V/dλ = ∂L_V/∂λ − ∂L_V/∂w · H⁻¹ · ∂²L_T/∂w∂λ,      H = ∂²L_T/∂w²,

  computed as follows: ``v = ∂L_V/∂w`` on ``val_batches`` clean validation batches (eval mode, the
  task's tuning stream, :meth:`~hpobench_stn.Task.tuning_batches`); the training loss of the last
  weight step's batch again (from the same carried state), with relaxed masks and twice-differentiable
  layers (:func:`~hpobench_stn.nn.implicit.twice_differentiable`), and its gradient ``g = ∂L_T/∂w``
  with ``create_graph``; ``p ≈ H⁻¹v`` by :func:`inverse_hvp` (``neumann_terms`` Hessian-vector products
  ``Hx = ∂(g·x)/∂w``, never a Hessian); then ``∂(g·p)/∂λ`` by one more backward pass. The direct term
  ``∂L_V/∂λ`` is zero for every task here (validation is clean: no hyperparameter acts on it). Adam
  (``hyper_lr``) steps λ's unconstrained coordinates in :class:`~hpobench_stn.nn.HParams`, the
  container ``stn`` uses (its σ is unused here), clamped to the same bounds.

**What it tunes.** The hyperparameters of the open space that the task lists as differentiable in its
training loss (:attr:`~hpobench_stn.Task.differentiable_hparams`: dropout rates through relaxed masks,
AR/TAR and weight-decay weights, colour-jitter ranges); the others (cutout's integers) stay at their
defaults. ``tune`` narrows the list; a non-differentiable name is refused. The run's metadata records
the tuned list (``RunMetadata.method_tuned``) and reports print it.

**Relaxed masks.** A hard Bernoulli mask has no gradient in its rate, so the hyper-step's training loss
uses relaxed-Bernoulli ("concrete") masks at ``temperature`` (0.1, the temperature of concrete
dropout, Gal et al. 2017): :func:`~hpobench_stn.nn.regularizers.relaxed`. With ``relax_training``
(default) the weight steps use them too, so the weights approach the optimum of the very loss whose
derivatives the hyper-step takes (what the implicit function theorem assumes); ``False`` trains with
hard masks, as a replay of the schedule would.

**Defaults, and the reference code.** ``neumann_terms = 5``; ``neumann_alpha = None``: α is
``1/|λ|_max(H)``, tracked by power iteration (one more Hessian-vector product a hyper-step), the step
that makes ``I − αH`` contract on every direction of positive curvature. A fixed α cannot serve every
task: the paper's reading (α = the weight learning rate, the series as unrolled SGD) gives 20 on PTB,
far above ``2/λ_max``, and 0.02 on ridge (Adam's rate), where five terms then recover a tenth of
``H⁻¹`` on the flat directions and λ settled 30 % below the optimum. One hyper-step every
``train_steps = 2`` weight steps (stn's cadence) on ``val_batches = 4`` validation batches, Adam at
``hyper_lr = 0.03``. The last two are ours, chosen on the known-optimum problems
(``tests/test_known_optimum.py``, 5 seeds from each side): with one validation batch the noise of
``∂L_V/∂w`` dominated the hypergradient (dropout rate: 4 of 6 runs within the tolerance), and stn's
3e-3 (the task's best-response rate, tuned for stn's much less noisy hypergradient, and not used
here) left the dropout rate near its start. The public code (``lorraine2/implicit-hyper-opt``,
``rnn/train.py``) differs on purpose in three ways we do not copy: its "Hessian" term is the rank-1
outer product of the training gradient, not a Hessian-vector product; it uses no Neumann terms by
default (the identity; here ``neumann_terms=0``); and it takes a hyper-step after every weight step.
The warm-up and start values are the task's best-response defaults
(:meth:`~hpobench_stn.Task.best_response_defaults`), as for ``stn``, so both start from the same λ.

The Neumann series is :func:`inverse_hvp`, a small loop of our own with a guard against divergence
(its docstring says why torchopt's series is not used).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace

import torch

from hpobench_stn import (
    Batch,
    Method,
    MethodError,
    RunContext,
    SearchSpace,
    Task,
    TrialStatus,
    register_method,
)
from hpobench_stn.methods.stn import DEFAULT_WARMUP_EPOCHS, TuningLoop
from hpobench_stn.nn.hparams import HParams
from hpobench_stn.nn.implicit import twice_differentiable
from hpobench_stn.nn.regularizers import relaxed

DEFAULT_TEMPERATURE = 0.1  # concrete dropout's (Gal, Hron & Kendall 2017)
FIRST_POWER_STEPS = 10  # power iterations for |λ|_max(H) at the first hyper-step (then `power_steps` each)

Vectors = tuple[torch.Tensor, ...]


def inverse_hvp(hvp: Callable[[Vectors], Vectors], v: Vectors, alpha: float, terms: int) -> Vectors:
    """``H⁻¹v ≈ α Σ_{j=0}^{K} (I − αH)^j v`` with at most ``K = terms`` Hessian-vector products ``hvp``;
    ``terms = 0`` is the identity approximation ``α·v``.

    The series converges to ``H⁻¹v`` as ``K`` grows when ``H`` is positive definite and
    ``0 < α < 2/λ_max(H)``; truncated, it is ``K + 1`` steps of gradient descent at rate ``α`` on the
    quadratic model (the paper's reading). λ_max of a network's Hessian is not known in advance, and an
    ``α`` above ``2/λ_max`` makes the terms grow geometrically with alternating sign (measured on ridge
    from a large L2: the hypergradient then points the wrong way). So the series stops at the first
    term that is not smaller than the one before (as the reference code's ``rel_change`` test does),
    and ends as a shorter, still descent-like, estimate. That guard is why this is our own loop and not
    ``torchopt.linalg.ns`` (same series, no guard). One norm per term: a device sync on a GPU.
    """
    if isinstance(terms, bool) or not isinstance(terms, int) or terms < 0:
        raise ValueError(f"inverse_hvp: terms must be an integer >= 0, got {terms!r}")
    if not (alpha > 0 and math.isfinite(alpha)):
        raise ValueError(f"inverse_hvp: alpha must be a finite number > 0, got {alpha!r}")
    term, total = tuple(v), tuple(v)
    size = _norm(term)
    for _ in range(terms):
        nxt = tuple(t - alpha * h for t, h in zip(term, hvp(term), strict=True))  # (I − αH)·term
        nxt_size = _norm(nxt)
        if not nxt_size < size:
            break
        term, size = nxt, nxt_size
        total = tuple(a + b for a, b in zip(total, term, strict=True))
    return tuple(alpha * t for t in total)


def _norm(vectors: Vectors) -> float:
    return math.sqrt(sum(float(t.detach().pow(2).sum()) for t in vectors))


def top_curvature(hvp: Callable[[Vectors], Vectors], start: Vectors, steps: int) -> tuple[float, Vectors]:
    """``|λ|_max(H)`` by ``steps`` power iterations from ``start`` (any nonzero vectors): the estimate
    ``‖Hx‖`` at the last unit vector ``x``, and the next vector (to warm-start the next call: the Hessian
    moves slowly between hyper-steps). The estimate approaches ``|λ|_max`` from below.
    ``(0, start)`` when ``H·x`` vanishes."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"top_curvature: steps must be an integer >= 1, got {steps!r}")
    size = _norm(start)
    if not size > 0:
        raise ValueError("top_curvature: the start vector is zero")
    x = tuple(t.detach() / size for t in start)
    estimate = 0.0
    for _ in range(steps):
        hx = tuple(h.detach() for h in hvp(x))
        estimate = _norm(hx)
        if not (estimate > 0 and math.isfinite(estimate)):
            return 0.0, x
        x = tuple(h / estimate for h in hx)
    return estimate, x


@dataclass(frozen=True)
class IFTOptions:
    """Options of ``ift``; None means the task's best-response default, then ours."""

    warmup_epochs: int | None = None  # weight-only epochs before λ moves
    train_steps: int = 2  # weight steps per hyper-step (stn's 2:1)
    hyper_steps: int = 1  # hyper-steps per cycle
    hyper_lr: float = 0.03  # Adam learning rate of λ's unconstrained coordinates (ours, not the task's stn rate)
    neumann_terms: int = 5  # Hessian-vector products in the Neumann series (0: identity)
    neumann_alpha: float | None = None  # its step α; None: 1/|λ|_max(H), tracked by power iteration
    power_steps: int = 1  # power iterations per hyper-step after the first (which takes FIRST_POWER_STEPS)
    val_batches: int = 4  # validation batches per hyper-step
    temperature: float = DEFAULT_TEMPERATURE  # of the relaxed dropout masks
    relax_training: bool = True  # weight steps with relaxed masks too (False: hard masks)
    tune: list[str] | None = None  # hyperparameters to tune (default: every differentiable one)
    init: dict[str, float] = field(default_factory=dict)  # starting values (unnamed: the task's, then defaults)
    margin: float = 0.05  # starting values at least this fraction of the range inside the bounds
    val_every: int = 1  # epochs between full validations
    schedule_every: int = 10  # weight steps between schedule records
    max_epochs: int | None = None  # stop after this many epochs (None: the budget decides)

    def __post_init__(self) -> None:
        integers = (
            ("train_steps", 1),
            ("hyper_steps", 1),
            ("neumann_terms", 0),
            ("power_steps", 1),
            ("val_batches", 1),
        )
        for name, minimum in integers:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        for name in ("val_every", "schedule_every", "warmup_epochs", "max_epochs"):
            value = getattr(self, name)
            minimum = 0 if name == "warmup_epochs" else 1
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        for name in ("hyper_lr", "neumann_alpha", "temperature"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf
            ):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not isinstance(self.relax_training, bool):
            raise ValueError(f"relax_training must be true or false, got {self.relax_training!r}")
        if not 0 < self.margin < 0.5:
            raise ValueError(f"margin must lie in (0, 0.5), got {self.margin!r}")


@register_method("ift")
class IFT(Method):
    """Implicit-differentiation hypergradients (see the module docstring)."""

    record_kind = "validation"  # one record per periodic validation of its single training run
    Options = IFTOptions
    options: IFTOptions

    def tuned_names(self, task: Task, space: SearchSpace | None = None) -> list[str]:
        """The hyperparameters to tune within ``space``: the differentiable ones (or ``tune``'s);
        raises :class:`MethodError` for a name that is unknown or not differentiable."""
        space = task.space if space is None else space
        differentiable = [n for n in space if n in task.differentiable_hparams]
        if self.options.tune is None:
            if not differentiable:
                raise MethodError(
                    f"ift: task {task.name!r} lists none of {list(space)} as differentiable in its training loss"
                )
            return differentiable
        names = list(self.options.tune)
        refused = [n for n in names if n not in differentiable]
        if refused or not names:
            raise MethodError(
                f"ift cannot tune {refused or 'nothing'}: the open hyperparameters that task {task.name!r}'s "
                f"training loss is differentiable in are {differentiable}"
            )
        return names

    def method_tuned(self, task: Task, space: SearchSpace) -> list[str] | None:
        return self.tuned_names(task, space)

    def resolved(self, task: Task) -> IFTOptions:
        """The options with None filled from the task's best-response defaults (start values, warm-up),
        then ours. The task's ``hyper_lr`` is stn's and is not used: see the module docstring."""
        defaults = dict(task.best_response_defaults())
        opts = self.options
        init = {**dict(defaults.get("init", {})), **opts.init}
        warmup = opts.warmup_epochs if opts.warmup_epochs is not None else defaults.get("warmup_epochs")
        return replace(
            opts,
            init=init,
            warmup_epochs=DEFAULT_WARMUP_EPOCHS if warmup is None else int(warmup),
        )

    def run(self, task: Task, ctx: RunContext) -> None:
        with task.noise_scope(ctx.seeds.noise):
            self.make_loop(task, ctx).run()

    def make_loop(self, task: Task, ctx: RunContext) -> IFTLoop:
        """The run's plain model, hyperparameters and optimisers (charged to ``train``), ready to run."""
        opts = self.resolved(task)
        names = self.tuned_names(task, ctx.space)
        fixed = task.space.default()
        init = {n: opts.init.get(n, fixed[n]) for n in names}
        method_rng = ctx.seeds.torch("method")  # the order of the tuning batches
        with ctx.timer.phase("train"):
            model = task.build_model(fixed, ctx.seeds.torch("init"))
            # σ is unused: one container, the same unconstrained coordinates and bounds as stn's.
            hparams = HParams(task.space, names, init, margin=opts.margin, device=task.device)
            weight_opt = task.make_optimizer(model)
            hyper_opt = torch.optim.Adam([hparams.unconstrained], lr=float(opts.hyper_lr))
        power_rng = ctx.seeds.torch("method")  # the power iteration's first vector (its own stream)
        return IFTLoop(task, ctx, opts, model, hparams, fixed, weight_opt, hyper_opt, method_rng, power_rng)


class IFTLoop(TuningLoop):
    """The state of one ``ift`` run: :meth:`TuningLoop.run` with a plain weight step and an implicit hyper-step."""

    def __init__(
        self,
        task: Task,
        ctx: RunContext,
        opts: IFTOptions,
        model: torch.nn.Module,
        hparams: HParams,
        fixed: Mapping[str, float | int],
        weight_opt: torch.optim.Optimizer,
        hyper_opt: torch.optim.Optimizer,
        method_rng: torch.Generator,
        power_rng: torch.Generator,
    ) -> None:
        super().__init__(task, ctx, opts, model, hparams, fixed, weight_opt, hyper_opt, method_rng)
        self.opts: IFTOptions = opts
        self.power_rng = power_rng
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.top: Vectors | None = None  # the power iteration's current vector (warm start)
        self.curvature: float | None = None  # its last positive estimate of |λ|_max(H)
        self.last: tuple[Batch, object] | None = None  # the last weight step's batch and the state it started from

    def training_loss(self, batch: Batch, differentiable: bool) -> torch.Tensor:
        """``L_T(w, λ)`` on ``batch`` at the current λ (untuned values fixed); differentiable in λ with
        ``differentiable`` (the hyper-step), relaxed masks when the hyper-step or ``relax_training`` asks."""
        n = self.task.examples_in(batch)
        u = self.hparams.unconstrained
        current = self.hparams.values_of(u.expand(n, -1) if differentiable else u.detach().expand(n, -1))
        values = {**self.untuned_values(n), **current}
        masks = relaxed(self.opts.temperature) if differentiable or self.opts.relax_training else nullcontext()
        with masks:
            return self.task.regularised_loss(self.model, batch, values)

    def weight_loss(self, batch: Batch) -> torch.Tensor:
        """The training loss at the current λ; remembers the batch and the state it starts from (the
        hyper-step differentiates this loss again)."""
        self.last = (batch, self.task.carried_state(self.model))
        self.model.train()
        return self.training_loss(batch, differentiable=False)

    def hyper_step(self) -> bool:
        """One implicit hypergradient step of λ (see the module docstring); False when the run must stop."""
        timer, model = self.ctx.timer, self.model
        with timer.phase("hyper"):
            if timer.expired():
                self.stop(TrialStatus.OUT_OF_BUDGET, "deadline reached during a hyper-step")
                return False
            if self.last is None:
                return True  # no weight step yet: nothing to differentiate
            # v = ∂L_V/∂w: clean validation batches (eval mode, the tuning stream's own state).
            model.eval()
            losses = [self._mean_val_loss(next(self.tuning)) for _ in range(self.opts.val_batches)]
            val_loss = torch.stack(losses).mean()
            if not torch.isfinite(val_loss):
                self.stop(TrialStatus.FAILED, f"non-finite validation loss {val_loss.item()} in a hyper-step")
                return False
            v = self._grads(val_loss, create_graph=False)
            hypergrad = self.hypergradient(v)
            if hypergrad is None:
                return False
            self.hparams.unconstrained.grad = hypergrad
            self.hyper_opt.step()
            self.hparams.clamp_()
        return True

    def hypergradient(self, v: Sequence[torch.Tensor]) -> torch.Tensor | None:
        """``−∂²L_T/∂λ∂w · H⁻¹v`` (in λ's unconstrained coordinates) on the last weight step's batch, from
        the state that step started from; None (with a FAILED record) for a non-finite training loss."""
        assert self.last is not None
        batch, before = self.last
        task, model = self.task, self.model
        after = task.carried_state(model)
        task.restore_carried_state(model, before)
        model.train()
        with twice_differentiable():
            loss = self.training_loss(batch, differentiable=True)
        task.restore_carried_state(model, after)
        if not torch.isfinite(loss):
            self.stop(TrialStatus.FAILED, f"non-finite training loss {loss.item()} in a hyper-step")
            return None
        g = self._grads(loss, create_graph=True)  # ∂L_T/∂w, a function of w and λ

        def hvp(x: Vectors) -> Vectors:  # H·x = ∂(g·x)/∂w
            return self._grads_of(g, self.params, x)

        p = inverse_hvp(hvp, tuple(v), self.neumann_alpha(hvp), self.opts.neumann_terms)
        (mixed,) = self._grads_of(g, [self.hparams.unconstrained], p)  # ∂(g·p)/∂λ
        return -mixed.detach()

    def neumann_alpha(self, hvp: Callable[[Vectors], Vectors]) -> float:
        """The Neumann step α: the ``neumann_alpha`` option, else ``1/|λ|_max(H)`` (the step that makes
        ``I − αH`` contract on every direction of positive curvature), ``|λ|_max`` tracked by power
        iteration: :data:`FIRST_POWER_STEPS` Hessian-vector products at the first hyper-step from a
        seeded random vector, ``power_steps`` at each later one from the last vector."""
        if self.opts.neumann_alpha is not None:
            return float(self.opts.neumann_alpha)
        if self.top is None:
            start = tuple(torch.randn(p.shape, generator=self.power_rng).to(p) for p in self.params)
            estimate, self.top = top_curvature(hvp, start, FIRST_POWER_STEPS)
        else:
            estimate, self.top = top_curvature(hvp, self.top, self.opts.power_steps)
        if estimate > 0:
            self.curvature = estimate
        return 1.0 / self.curvature if self.curvature else 1.0

    def _mean_val_loss(self, batch: Batch) -> torch.Tensor:
        loss_sum, n, _ = self.task.eval_sums(self.model, batch)
        return loss_sum / n

    def _grads(self, loss: torch.Tensor, create_graph: bool) -> Vectors:
        grads = torch.autograd.grad(loss, self.params, create_graph=create_graph, allow_unused=True)
        return tuple(torch.zeros_like(p) if g is None else g for p, g in zip(self.params, grads, strict=True))

    @staticmethod
    def _grads_of(outputs: Vectors, inputs: Sequence[torch.Tensor], weights: Sequence[torch.Tensor]) -> Vectors:
        """``∂(Σ outputs·weights)/∂inputs`` (zeros where an input is unused), keeping the graph for the next."""
        pairs = [(o, w) for o, w in zip(outputs, weights, strict=True) if o.requires_grad]
        grads = torch.autograd.grad(
            [o for o, _ in pairs], list(inputs), [w.detach() for _, w in pairs], retain_graph=True, allow_unused=True
        )
        return tuple(torch.zeros_like(i) if g is None else g for i, g in zip(inputs, grads, strict=True))

    def at_current_lambda(self) -> None:
        """The plain model answers for the λ it was trained at: nothing to set."""
