"""HParams: trainable hyperparameters projected onto a search space, their perturbations and entropy."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from hpobench_stn import Float, Int, SearchSpace, SpaceError
from hpobench_stn.nn.hparams import HParams

K_CONST = 0.5 * (1.0 + math.log(2 * math.pi))  # per-dimension constant of a Gaussian's entropy


def logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace(
        {
            "p": Float(0.0, 0.9),
            "wd": Float(1e-6, 1e-1, log=True),
            "holes": Int(0, 4),
            "width": Int(1, 64, log=True),
            "alpha": Float(0.0, 4.0),
        }
    )


INIT: dict[str, float] = {"p": 0.3, "wd": 1e-3, "holes": 2, "width": 8, "alpha": 1.0}
NAMES = ["p", "wd", "holes", "width"]
FIXED: dict[str, float | int] = {"p": 0.1, "wd": 1e-4, "holes": 1, "width": 16, "alpha": 2.5}


@pytest.fixture
def hp(space: SearchSpace) -> HParams:
    return HParams(space, NAMES, INIT, 0.5)


def set_u(hp: HParams, values: list[float] | float) -> None:
    with torch.no_grad():
        if isinstance(values, float):
            hp.unconstrained.fill_(values)
        else:
            hp.unconstrained.copy_(torch.tensor(values))


def sigma_of(hp: HParams, k: int = 0) -> float:
    return float(hp.sigma().detach()[k])


def set_rho(hp: HParams, value: float) -> None:
    with torch.no_grad():
        hp.rho.fill_(value)


# ------------------------------------------------------------------------------------------------------
# Starting values


@pytest.mark.parametrize(
    ("dist", "init"),
    [
        (Float(0.0, 0.9), 0.3),
        (Float(0.0, 0.9), 0.7),
        (Float(-2.0, 3.0), -1.25),
        (Float(1e-6, 1e-1, log=True), 1e-3),
        (Float(1e-6, 1e-1, log=True), 3e-5),
    ],
)
def test_current_returns_interior_float_init(dist: Float, init: float) -> None:
    """A Float starting value strictly inside the range comes back from current() (float32 tolerance)."""
    hp = HParams(SearchSpace({"x": dist}), ["x"], {"x": init})
    assert hp.current()["x"] == pytest.approx(init, rel=1e-4, abs=1e-6)


def test_log_float_init_round_trips_relatively() -> None:
    """Log-scale Float: init 1e-3 in [1e-6, 1e-1] gives current() 1e-3 to a relative 1e-4."""
    hp = HParams(SearchSpace({"wd": Float(1e-6, 1e-1, log=True)}), ["wd"], {"wd": 1e-3})
    assert hp.current()["wd"] == pytest.approx(1e-3, rel=1e-4)


@pytest.mark.parametrize(("init", "margin"), [(0.0, 0.05), (0.9, 0.05), (0.0, 0.1), (0.9, 0.2)])
def test_value_on_a_bound_is_moved_inside_by_margin(init: float, margin: float) -> None:
    """A start on a bound is clamped to position margin (1 - margin): low + margin·(high - low)."""
    low, high = 0.0, 0.9
    hp = HParams(SearchSpace({"p": Float(low, high)}), ["p"], {"p": init}, margin=margin)
    position = margin if init == low else 1.0 - margin
    assert hp.current()["p"] == pytest.approx(low + position * (high - low), abs=1e-6)
    assert torch.isfinite(hp.unconstrained).all()


def test_log_float_on_a_bound_is_clamped_in_log_space() -> None:
    """Log Float at its low bound starts at exp(ln low + margin·(ln high - ln low))."""
    hp = HParams(SearchSpace({"wd": Float(1e-6, 1e-1, log=True)}), ["wd"], {"wd": 1e-6}, margin=0.2)
    expected = math.exp(math.log(1e-6) + 0.2 * (math.log(1e-1) - math.log(1e-6)))  # 1e-5
    assert hp.current()["wd"] == pytest.approx(expected, rel=1e-4)


def test_int_position_maps_onto_low_to_high_plus_one() -> None:
    """Int(0, 4): the continuous value is low + (high + 1 - low)·sigmoid(u), spanning (0, 5)."""
    hp = HParams(SearchSpace({"holes": Int(0, 4)}), ["holes"], {"holes": 2})
    for u in (-3.0, -0.5, 0.0, 0.8, 2.0):
        set_u(hp, u)
        assert hp.current()["holes"] == pytest.approx(5.0 / (1.0 + math.exp(-u)), rel=1e-6)
    set_u(hp, 30.0)
    assert hp.current()["holes"] == pytest.approx(5.0)
    set_u(hp, -30.0)
    assert hp.current()["holes"] == pytest.approx(0.0, abs=1e-9)


def test_int_init_starts_in_the_middle_of_its_interval() -> None:
    """Int(2, 9) init 5: continuous value 5.5, position (5.5 - 2)/(10 - 2); the applied config is 5."""
    hp = HParams(SearchSpace({"n": Int(2, 9)}), ["n"], {"n": 5})
    assert float(torch.sigmoid(hp.unconstrained.detach())[0]) == pytest.approx(3.5 / 8, rel=1e-6)
    assert hp.current()["n"] == pytest.approx(5.5, rel=1e-6)
    assert hp.config({}) == {"n": 5}


@pytest.mark.parametrize("dist", [Int(0, 4), Int(0, 100), Int(1, 64, log=True)])
def test_int_init_applies_as_itself(dist: Int) -> None:
    """Every Int start whose position is not margin-clamped is applied (config) as exactly that integer."""
    space = SearchSpace({"n": dist})
    span = (dist.high + 1) - dist.low
    wrong = {}
    for k in range(dist.low, dist.high + 1):
        if dist.log:
            position = (math.log(k) - math.log(dist.low)) / (math.log(dist.high + 1) - math.log(dist.low))
        else:
            position = (k - dist.low) / span
        if not 0.05 <= position <= 0.95:
            continue
        got = HParams(space, ["n"], {"n": k}).config({})["n"]
        if got != k:
            wrong[k] = got
    assert wrong == {}


# ------------------------------------------------------------------------------------------------------
# values_of and perturbed values stay in the space


@pytest.mark.parametrize("u", [30.0, -30.0, 0.0, 4.0, -4.0])
def test_values_of_stays_within_bounds_for_extreme_u(hp: HParams, space: SearchSpace, u: float) -> None:
    """Linear Floats and Ints lie in [low, high]; log Floats within float32 rounding of the bounds."""
    set_u(hp, u)
    values = hp.values_of(hp.unconstrained.detach())
    for name in NAMES:
        dist = space[name]
        v = values[name]
        assert v.shape == ()
        if isinstance(dist, Float) and dist.log:
            assert float(v) > 0
            assert dist.low * (1 - 1e-6) <= float(v) <= dist.high * (1 + 1e-6)
        else:
            assert dist.low <= float(v) <= dist.high


def test_log_float_values_lie_exactly_within_bounds() -> None:
    """A log Float at saturated u lies within [low, high] as float32 holds them (exp may overshoot; clipped)."""
    dist = Float(1e-6, 1e-1, log=True)
    hp = HParams(SearchSpace({"wd": dist}), ["wd"], {"wd": 1e-3})
    low32, high32 = (float(torch.tensor(b, dtype=torch.float32)) for b in (dist.low, dist.high))
    for u in (30.0, -30.0):
        set_u(hp, u)
        v = float(hp.values_of(hp.unconstrained.detach())["wd"])
        assert low32 <= v <= high32, (u, v)


@pytest.mark.parametrize("u", [30.0, -30.0])
def test_perturbed_values_stay_within_bounds_for_extreme_u(hp: HParams, space: SearchSpace, u: float) -> None:
    """Perturbed draws at saturated u (and large σ) stay in the space; Ints integral in {low..high}."""
    set_u(hp, u)
    set_rho(hp, 2.0)
    torch.manual_seed(0)
    values = hp.perturbed(256).values
    for name in NAMES:
        dist = space[name]
        v = values[name]
        assert v.shape == (256,)
        if isinstance(dist, Int):
            assert torch.equal(v, v.floor())
            assert set(v.tolist()) <= set(range(dist.low, dist.high + 1))
        elif dist.log:
            assert (v > 0).all()
            assert (v >= dist.low * (1 - 1e-6)).all()
            assert (v <= dist.high * (1 + 1e-6)).all()
        else:
            assert (v >= dist.low).all()
            assert (v <= dist.high).all()


def test_perturbed_ints_cover_every_integer_with_large_sigma(hp: HParams) -> None:
    """With a wide perturbation, an Int(0, 4) draw takes every value in {0..4} and nothing else."""
    set_rho(hp, 3.0)
    torch.manual_seed(1)
    assert set(hp.perturbed(2000).values["holes"].tolist()) == {0.0, 1.0, 2.0, 3.0, 4.0}


@pytest.mark.parametrize(("continuous", "expected"), [(2.7, 2), (0.2, 0), (3.99, 3), (4.5, 4), (1.01, 1)])
def test_values_of_floors_ints(continuous: float, expected: int) -> None:
    """Int values are the floor of the continuous value (2.7 → 2), not its rounding."""
    hp = HParams(SearchSpace({"holes": Int(0, 4)}), ["holes"], {"holes": 2})
    u = torch.tensor([logit(continuous / 5.0)])
    assert float(hp.values_of(u)["holes"]) == expected


def test_values_of_accepts_batched_u(hp: HParams) -> None:
    """values_of maps a (*, K) batch to name → (*) values, row by row."""
    u = torch.randn(3, 2, len(NAMES))
    values = hp.values_of(u)
    assert list(values) == NAMES
    for name in NAMES:
        assert values[name].shape == (3, 2)
        assert torch.equal(values[name][1, 0], hp.values_of(u[1, 0])[name])


# ------------------------------------------------------------------------------------------------------
# perturbed(): shapes, per-batch columns, randomness, gradients


def test_perturbed_hnet_is_the_offset_of_each_draw_from_u(hp: HParams) -> None:
    """By default the hypernetwork sees σ·ε: (n, K), centred on zero, spread σ, and the draw minus u."""
    torch.manual_seed(0)
    out = hp.perturbed(4000)
    assert out.hnet.shape == (4000, len(NAMES))
    sigma = hp.sigma().detach()
    torch.testing.assert_close(out.hnet.mean(0), torch.zeros(len(NAMES)), atol=0.05, rtol=0.0)
    torch.testing.assert_close(out.hnet.std(0), sigma, atol=0.03, rtol=0.0)
    # Each row's values are the space's values of u + hnet (floats: exactly that projection).
    values = hp.values_of(hp.unconstrained.detach() + out.hnet)
    torch.testing.assert_close(out.values["p"], values["p"])


@pytest.mark.parametrize(("kind", "expected"), [("position", torch.sigmoid), ("unconstrained", lambda u: u)])
def test_the_official_codes_inputs_are_the_draw_and_its_position(
    space: SearchSpace, kind: str, expected: Callable[[torch.Tensor], torch.Tensor]
) -> None:
    """hnet="position": sigmoid(u + σε) in (0, 1) (the official LSTM code); "unconstrained": u + σε (CNN)."""
    hp = HParams(space, NAMES, INIT, 0.5, hnet=kind)
    torch.manual_seed(0)
    offsets = HParams(space, NAMES, INIT, 0.5).perturbed(64).hnet
    torch.manual_seed(0)
    hnet = hp.perturbed(64).hnet
    torch.testing.assert_close(hnet, expected(hp.unconstrained.detach() + offsets))
    torch.testing.assert_close(hp.hnet_input(), expected(hp.unconstrained).detach())
    if kind == "position":
        assert ((hnet > 0) & (hnet < 1)).all()


def test_an_unknown_hnet_input_is_refused(space: SearchSpace) -> None:
    with pytest.raises(ValueError, match=r"hnet must be one of \['offset', 'unconstrained', 'position'\], got 'logit'"):
        HParams(space, NAMES, INIT, 0.5, hnet="logit")


def test_per_batch_column_is_shared_and_per_example_column_is_not(space: SearchSpace) -> None:
    """per_batch names get one value for the whole batch (bit-identical rows); others differ per row."""
    hp = HParams(space, ["p", "alpha"], INIT, 0.5, per_batch=["p"])
    torch.manual_seed(0)
    out = hp.perturbed(16)
    p, alpha = out.values["p"], out.values["alpha"]
    assert all(torch.equal(p[i], p[0]) for i in range(16))
    assert torch.unique(alpha).numel() == 16
    torch.testing.assert_close(out.hnet[:, 0], out.hnet[:1, 0].expand(16))
    assert torch.unique(out.hnet[:, 1]).numel() == 16


def test_perturbations_follow_torch_default_generator(hp: HParams) -> None:
    """Same torch.manual_seed → same draws; a different seed → different draws."""
    torch.manual_seed(5)
    a = hp.perturbed(2)
    torch.manual_seed(5)
    b = hp.perturbed(2)
    torch.manual_seed(6)
    c = hp.perturbed(2)
    assert torch.equal(a.hnet, b.hnet)
    assert all(torch.equal(a.values[n], b.values[n]) for n in NAMES)
    assert not torch.equal(a.hnet, c.hnet)


def test_perturbed_is_detached_by_default(hp: HParams) -> None:
    """Weight-step draws carry no graph: neither hnet nor any value requires grad."""
    out = hp.perturbed(4)
    assert not out.hnet.requires_grad
    assert not any(v.requires_grad for v in out.values.values())


def test_differentiable_draws_reach_u_and_rho(space: SearchSpace) -> None:
    """perturbed(differentiable=True).hnet.sum().backward() gives nonzero grads to u and ρ of every Float."""
    hp = HParams(space, ["p", "wd", "alpha"], INIT, 0.5)
    torch.manual_seed(0)
    out = hp.perturbed(8, differentiable=True)
    assert out.hnet.requires_grad
    out.hnet.sum().backward()
    assert hp.unconstrained.grad is not None
    assert hp.rho.grad is not None
    assert (hp.unconstrained.grad != 0).all()
    assert (hp.rho.grad != 0).all()


def test_hnet_input_at_the_current_lambda_is_zero_and_differentiable_in_u(hp: HParams) -> None:
    """The offset at the current λ is zero (the model is its elementary weights), with gradient 1 in u:
    a hyper-step at the current λ still reaches u through the hypernetwork."""
    x = hp.hnet_input()
    assert x.shape == (len(NAMES),)
    assert torch.equal(x.detach(), torch.zeros(len(NAMES)))
    x.sum().backward()
    assert hp.unconstrained.grad is not None
    torch.testing.assert_close(hp.unconstrained.grad, torch.ones(len(NAMES)))


# ------------------------------------------------------------------------------------------------------
# σ, the Int floor and entropy


@pytest.mark.parametrize("sigma0", [0.01, 0.1, 0.5, 1.0, 3.0])
def test_sigma0_round_trips_for_floats(space: SearchSpace, sigma0: float) -> None:
    """At construction, σ of every Float equals sigma0 (softplus⁻¹ then softplus), within 1e-6."""
    hp = HParams(space, ["p", "wd", "alpha"], INIT, sigma0)
    torch.testing.assert_close(hp.sigma(), torch.full((3,), sigma0), rtol=0.0, atol=1e-6)


def test_sigma_is_softplus_of_rho_for_floats(space: SearchSpace) -> None:
    """For Floats σ = softplus(ρ), whatever ρ is."""
    hp = HParams(space, ["p", "wd", "alpha"], INIT)
    with torch.no_grad():
        hp.rho.copy_(torch.tensor([-3.0, 0.2, 4.0]))
    torch.testing.assert_close(hp.sigma(), F.softplus(hp.rho))


def test_int_floor_keeps_sigma_positive_and_reaching_a_neighbour() -> None:
    """Int(0, 4) at continuous 2.5 with ρ = -20: σ is still > 0 and 2000 draws take several integers."""
    hp = HParams(SearchSpace({"holes": Int(0, 4)}), ["holes"], {"holes": 2})
    set_u(hp, 0.0)  # sigmoid(0) = 0.5: continuous value 2.5, the middle of integer 2's interval
    set_rho(hp, -20.0)
    assert sigma_of(hp) > 0.1
    torch.manual_seed(0)
    assert len(set(hp.perturbed(2000).values["holes"].tolist())) >= 2


@pytest.mark.parametrize("continuous", [2.5, 2.7, 2.2, 1.5, 3.9])
def test_int_floor_is_distance_in_u_to_nearest_boundary(continuous: float) -> None:
    """Int(0, 4) with ρ = -20: σ equals the smaller u-distance to floor(x) and floor(x) + 1 (both interior)."""
    hp = HParams(SearchSpace({"holes": Int(0, 4)}), ["holes"], {"holes": 2})
    u = logit(continuous / 5.0)
    set_u(hp, u)
    set_rho(hp, -20.0)
    below, above = math.floor(continuous), math.floor(continuous) + 1
    expected = min(u - logit(below / 5.0), logit(above / 5.0) - u)
    assert sigma_of(hp) == pytest.approx(expected, rel=1e-4)


def test_int_floor_at_the_middle_is_logit_three_fifths() -> None:
    """Int(0, 4) at 2.5: boundaries 2 and 3 are both |logit(3/5) - logit(1/2)| = logit(0.6) away in u."""
    hp = HParams(SearchSpace({"holes": Int(0, 4)}), ["holes"], {"holes": 2})
    set_u(hp, 0.0)
    set_rho(hp, -20.0)
    assert sigma_of(hp) == pytest.approx(logit(0.6), rel=1e-5)


def test_int_floor_at_lowest_integer_uses_only_the_boundary_above() -> None:
    """Int(0, 4) init 0 (value 0.5, position 0.1): the floor is logit(1/5) - logit(0.1), no boundary below 0."""
    hp = HParams(SearchSpace({"holes": Int(0, 4)}), ["holes"], {"holes": 0}, margin=0.05)
    assert hp.current()["holes"] == pytest.approx(0.5, rel=1e-5)
    set_rho(hp, -20.0)
    assert sigma_of(hp) == pytest.approx(logit(0.2) - logit(0.1), rel=1e-5)


@pytest.mark.parametrize("u", [-10.0, -6.0])
def test_int_floor_deep_in_lowest_integer_ignores_the_range_end(u: float) -> None:
    """Int(0, 4) with u far below: the floor is the way up to boundary 1, not to the range's end at 0."""
    hp = HParams(SearchSpace({"holes": Int(0, 4)}), ["holes"], {"holes": 2})
    set_u(hp, u)
    set_rho(hp, -20.0)
    assert sigma_of(hp) == pytest.approx(logit(0.2) - u, rel=1e-5)


@pytest.mark.parametrize("u", [logit(4.6 / 5.0), 6.0, 10.0])
def test_int_floor_at_highest_integer_uses_only_the_boundary_below(u: float) -> None:
    """Int(0, 4) in 4's interval: only boundary 4 counts, 5 is the range's end (not a boundary)."""
    hp = HParams(SearchSpace({"holes": Int(0, 4)}), ["holes"], {"holes": 2})
    set_u(hp, u)
    set_rho(hp, -20.0)
    assert sigma_of(hp) == pytest.approx(u - logit(4.0 / 5.0), rel=1e-5)


def test_int_reach_scales_the_floor() -> None:
    """int_reach multiplies the Int floor (2 × the distance to the nearest boundary)."""
    hp = HParams(SearchSpace({"holes": Int(0, 4)}), ["holes"], {"holes": 2}, int_reach=2.0)
    set_u(hp, 0.0)
    set_rho(hp, -20.0)
    assert sigma_of(hp) == pytest.approx(2.0 * logit(0.6), rel=1e-5)


def test_int_floor_does_not_lower_a_large_sigma() -> None:
    """The floor is a lower bound: a σ already above it stays softplus(ρ)."""
    hp = HParams(SearchSpace({"holes": Int(0, 4)}), ["holes"], {"holes": 2})
    set_u(hp, 0.0)
    set_rho(hp, 3.0)
    assert sigma_of(hp) == pytest.approx(float(F.softplus(torch.tensor(3.0))), rel=1e-6)


def test_int_floor_keeps_integers_moving_from_init_values() -> None:
    """Int(0, 4) started at each interior integer, ρ = -20: 2000 draws still take >= 2 distinct integers."""
    stuck = {}
    for k in (1, 2, 3, 4):
        hp = HParams(SearchSpace({"holes": Int(0, 4)}), ["holes"], {"holes": k})
        set_rho(hp, -20.0)
        torch.manual_seed(0)
        seen = set(hp.perturbed(2000).values["holes"].tolist())
        if len(seen) < 2 or sigma_of(hp) < 1e-3:
            stuck[k] = (seen, sigma_of(hp))
    assert stuck == {}


def test_entropy_matches_diagonal_gaussian(hp: HParams) -> None:
    """entropy() = Σ ln σ_k + K/2·(1 + ln 2π), with σ including the Int floor."""
    with torch.no_grad():
        hp.rho.copy_(torch.tensor([-1.0, 0.0, 0.5, 2.0]))
    expected = torch.log(hp.sigma()).sum() + len(NAMES) * K_CONST
    torch.testing.assert_close(hp.entropy(), expected)
    assert hp.entropy().shape == ()


def test_entropy_of_floats_in_closed_form(space: SearchSpace) -> None:
    """Two Floats at sigma0 = 0.5: entropy is 2·ln 0.5 + (1 + ln 2π)."""
    hp = HParams(space, ["p", "alpha"], INIT, 0.5)
    assert float(hp.entropy().detach()) == pytest.approx(2 * math.log(0.5) + 2 * K_CONST, abs=1e-5)


def test_entropy_increases_with_rho(space: SearchSpace) -> None:
    """A larger ρ (wider perturbation) has a larger entropy, and ρ gets a positive entropy gradient."""
    hp = HParams(space, ["p", "wd", "alpha"], INIT, 0.5)
    before = float(hp.entropy().detach())
    set_rho(hp, float(hp.rho.detach()[0]) + 1.0)
    after = hp.entropy()
    assert float(after.detach()) > before
    after.backward()
    assert hp.rho.grad is not None
    assert (hp.rho.grad > 0).all()


# ------------------------------------------------------------------------------------------------------
# config()


def test_config_validates_and_applies_tuned_values(hp: HParams, space: SearchSpace) -> None:
    """config(fixed) is a valid config: tuned Floats as current(), Ints floored ints, untuned from fixed."""
    set_u(hp, [0.3, -0.7, logit(2.7 / 5), 0.4])
    cfg = hp.config(FIXED)
    assert space.validate(cfg) == cfg
    assert list(cfg) == list(space)
    current = hp.current()
    assert cfg["p"] == current["p"]
    assert cfg["wd"] == current["wd"]
    assert cfg["holes"] == 2
    assert type(cfg["holes"]) is int
    assert cfg["width"] == math.floor(current["width"])
    assert type(cfg["width"]) is int
    assert cfg["alpha"] == FIXED["alpha"]


@pytest.mark.parametrize("u", [30.0, -30.0])
def test_config_validates_at_saturated_u(hp: HParams, space: SearchSpace, u: float) -> None:
    """At extreme u the config still validates: Floats are clipped to their bounds, Ints clipped."""
    set_u(hp, u)
    cfg = hp.config(FIXED)
    assert space.validate(cfg) == cfg
    if u > 0:
        assert (cfg["holes"], cfg["width"]) == (4, 64)
    else:
        assert (cfg["holes"], cfg["width"]) == (0, 1)


def test_config_at_init_matches_init(hp: HParams, space: SearchSpace) -> None:
    """Right after construction the config reproduces the starting values (Floats to float32 tolerance)."""
    cfg = hp.config(FIXED)
    assert cfg["p"] == pytest.approx(INIT["p"], rel=1e-5)
    assert cfg["wd"] == pytest.approx(INIT["wd"], rel=1e-4)
    assert cfg["alpha"] == FIXED["alpha"]
    assert space.validate(cfg) == cfg


def test_len_and_repr_name_the_tuned_hyperparameters(hp: HParams) -> None:
    """len() is K and the repr lists the tuned names in column order."""
    assert len(hp) == len(NAMES)
    assert "names=['p', 'wd', 'holes', 'width']" in repr(hp)


# ------------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"names": ["p", "nope"]}, SpaceError, r"unknown hyperparameters \['nope'\]"),
        ({"per_batch": ["drop"]}, SpaceError, r"unknown hyperparameters \['drop'\]"),
        ({"init": {**INIT, "extra": 1.0}}, SpaceError, r"unknown hyperparameters \['extra'\]"),
        ({"init": {"p": 0.3}}, SpaceError, r"no starting value for \['wd', 'holes', 'width'\]"),
        ({"names": []}, SpaceError, r"no hyperparameters to tune"),
        ({"sigma0": 0.0}, ValueError, r"sigma0 must be"),
        ({"sigma0": -0.5}, ValueError, r"sigma0 must be"),
        ({"sigma0": math.nan}, ValueError, r"sigma0 must be"),
        ({"sigma0": math.inf}, ValueError, r"sigma0 must be"),
        ({"margin": 0.0}, ValueError, r"margin must lie in \(0, 0.5\)"),
        ({"margin": 0.5}, ValueError, r"margin must lie in \(0, 0.5\)"),
        ({"margin": -0.1}, ValueError, r"margin must lie in \(0, 0.5\)"),
        ({"margin": math.nan}, ValueError, r"margin must lie in \(0, 0.5\)"),
        ({"init": {**INIT, "p": 0.95}}, SpaceError, r"p=0.95 lies outside \[0.0, 0.9\]"),
        ({"init": {**INIT, "wd": 1.0}}, SpaceError, r"wd=1.0 lies outside"),
        ({"init": {**INIT, "holes": 5}}, SpaceError, r"holes=5 lies outside \[0, 4\]"),
        ({"init": {**INIT, "holes": 2.5}}, SpaceError, r"holes=2.5 is not an integer"),
    ],
)
def test_bad_arguments_are_refused_with_a_message(
    space: SearchSpace, kwargs: Mapping[str, Any], error: type[Exception], match: str
) -> None:
    """Each invalid argument raises, naming the culprit."""
    args: dict[str, Any] = {"names": NAMES, "init": INIT, "sigma0": 0.5, **kwargs}
    with pytest.raises(error, match=match):
        HParams(space, **args)


def test_clamp_bounds_u_and_sigma() -> None:
    """clamp_() keeps u in [-u_max, u_max] and σ <= sigma_max (σ of Ints may still exceed it through the floor)."""
    space = SearchSpace({"p": Float(0.0, 0.9), "q": Float(0.0, 1.0)})
    hp = HParams(space, ["p", "q"], {"p": 0.3, "q": 0.5}, 0.5, u_max=4.0, sigma_max=1.5)
    with torch.no_grad():
        hp.unconstrained.copy_(torch.tensor([-30.0, 30.0]))
        hp.rho.fill_(50.0)
    hp.clamp_()
    assert hp.unconstrained.tolist() == [-4.0, 4.0]
    assert hp.sigma().tolist() == pytest.approx([1.5, 1.5], rel=1e-5)
    with pytest.raises(ValueError, match="sigma_max must be a number >= sigma0"):
        HParams(space, ["p"], {"p": 0.3}, 0.5, sigma_max=0.4)
