"""Search spaces: distributions validate themselves, configs are checked, sampling and grids are exact."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest

from hpobench_stn import Float, HParamKind, Int, SearchSpace, SpaceError
from hpobench_stn.harness.backends import to_optuna, to_skopt


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace(
        {
            "p": Float(0.0, 0.8),
            "wd": Float(1e-6, 1e-1, log=True),
            "holes": Int(0, 4),
            "width": Int(8, 512, log=True, kind=HParamKind.OPTIMIZATION),
        }
    )


# ------------------------------------------------------------------------------------------------------
# Distributions refuse bad declarations, naming the problem


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"low": 1.0, "high": 1.0}, r"Float needs low < high, got low=1.0, high=1.0"),
        ({"low": 2.0, "high": 1.0}, r"Float needs low < high, got low=2.0, high=1.0"),
        ({"low": 0.0, "high": 1.0, "log": True}, r"log scale needs low > 0, got low=0.0"),
        ({"low": -1.0, "high": 1.0, "log": True}, r"log scale needs low > 0, got low=-1.0"),
        ({"low": 0.0, "high": 1.0, "default": 1.5}, r"Float default 1.5 lies outside \[0.0, 1.0\]"),
        ({"low": 0.0, "high": math.inf}, r"Float bounds must be finite"),
        ({"low": math.nan, "high": 1.0}, r"Float bounds must be finite"),
        ({"low": "0", "high": 1.0}, r"Float bounds must be numbers, got low='0'"),
    ],
)
def test_float_rejects_bad_declarations(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(SpaceError, match=match):
        Float(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"low": 3, "high": 3}, r"Int needs low < high, got low=3, high=3"),
        ({"low": 4, "high": 1}, r"Int needs low < high, got low=4, high=1"),
        ({"low": 0, "high": 8, "log": True}, r"Int on a log scale needs low > 0, got low=0"),
        ({"low": 0, "high": 2.5}, r"Int bounds must be integers, got high=2.5"),
        ({"low": 0.0, "high": 2}, r"Int bounds must be integers, got low=0.0"),
        ({"low": True, "high": 2}, r"Int bounds must be integers, got low=True"),
        ({"low": 0, "high": 4, "default": 5}, r"Int default 5 is not an integer in \[0, 4\]"),
        ({"low": 0, "high": 4, "default": 1.5}, r"Int default 1.5 is not an integer in \[0, 4\]"),
        ({"low": 0, "high": 4, "default": True}, r"Int default True is not an integer in \[0, 4\]"),
    ],
)
def test_int_rejects_bad_declarations(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(SpaceError, match=match):
        Int(**kwargs)


def test_space_errors_are_value_errors() -> None:
    """Callers that catch ValueError (the CLI) also catch SpaceError."""
    with pytest.raises(ValueError, match="low < high"):
        Float(1.0, 0.0)


def test_space_rejects_bad_names_and_distributions() -> None:
    with pytest.raises(SpaceError, match="at least one"):
        SearchSpace({})
    with pytest.raises(SpaceError, match=r"names must be identifiers, got 'drop-out'"):
        SearchSpace({"drop-out": Float(0.0, 1.0)})
    with pytest.raises(SpaceError, match=r"x: expected Float or Int, got tuple"):
        SearchSpace({"x": (0.0, 1.0)})  # type: ignore[dict-item]


def test_defaults_are_low_unless_given(space: SearchSpace) -> None:
    assert space.default() == {"p": 0.0, "wd": 1e-6, "holes": 0, "width": 8}
    assert Float(0.0, 1.0, default=0.3).default_value == 0.3
    assert Int(0, 4, default=2).default_value == 2


# ------------------------------------------------------------------------------------------------------
# validate(): a normalised copy, or an error naming the key and the value


def test_validate_normalises_types(space: SearchSpace) -> None:
    """Ints become int (3.0 from a backend is fine), floats become float, in the space's order."""
    config = {"width": np.int64(64), "holes": 3.0, "wd": np.float32(0.0625), "p": 0}
    out = space.validate(config)
    assert out == {"p": 0.0, "wd": 0.0625, "holes": 3, "width": 64}
    assert [type(v) for v in out.values()] == [float, float, int, int]
    assert list(out) == list(space)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"p": 0.9}, r"p=0.9 lies outside \[0.0, 0.8\]"),
        ({"p": -0.1}, r"p=-0.1 lies outside \[0.0, 0.8\]"),
        ({"wd": 0.5}, r"wd=0.5 lies outside \[1e-06, 0.1\]"),
        ({"holes": 5}, r"holes=5 lies outside \[0, 4\]"),
        ({"holes": 2.5}, r"holes=2.5 is not an integer"),
        ({"holes": "2"}, r"holes='2' is not an integer"),
        ({"holes": True}, r"holes=True is not an integer"),
        ({"holes": math.nan}, r"holes=nan is not an integer"),
        ({"p": math.nan}, r"p=nan is not a finite number"),
        ({"p": math.inf}, r"p=inf is not a finite number"),
        ({"p": None}, r"p=None is not a finite number"),
    ],
)
def test_validate_names_the_bad_key_and_value(space: SearchSpace, change: dict[str, Any], match: str) -> None:
    config: dict[str, Any] = {**space.default(), **change}
    with pytest.raises(SpaceError, match=match):
        space.validate(config)


def test_validate_names_missing_and_unknown_keys(space: SearchSpace) -> None:
    config: dict[str, Any] = dict(space.default())
    del config["holes"]
    with pytest.raises(SpaceError, match=r"missing \['holes'\]"):
        space.validate(config)
    with pytest.raises(SpaceError, match=r"unknown \['cutout'\]"):
        space.validate({**space.default(), "cutout": 1})


def test_validate_accepts_both_bounds(space: SearchSpace) -> None:
    config = {"p": 0.8, "wd": 1e-1, "holes": 4, "width": 512}
    assert space.validate(config) == config


# ------------------------------------------------------------------------------------------------------
# Sampling


def test_sampling_stays_in_bounds_and_is_reproducible(space: SearchSpace) -> None:
    a = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    rng = np.random.default_rng(7)
    draws = [space.sample(rng) for _ in range(2000)]
    assert a[0] == a[1] == a[2] == draws[0]
    for config in draws:
        assert space.validate(config) == config
    assert {c["holes"] for c in draws} == {0, 1, 2, 3, 4}
    assert draws != [space.sample(np.random.default_rng(8)) for _ in range(2000)]


def test_same_generator_state_gives_same_sequence(space: SearchSpace) -> None:
    r1, r2 = np.random.default_rng(123), np.random.default_rng(123)
    assert [space.sample(r1) for _ in range(20)] == [space.sample(r2) for _ in range(20)]


def test_log_float_sampling_covers_every_decade() -> None:
    """Log-uniform on [1e-6, 1e-1]: each of the 5 decades gets about a fifth of the draws."""
    dist = Float(1e-6, 1e-1, log=True)
    rng = np.random.default_rng(0)
    x = np.array([dist.sample(rng) for _ in range(5000)])
    counts = np.histogram(np.log10(x), bins=[-6, -5, -4, -3, -2, -1])[0]
    assert counts.sum() == 5000
    assert np.all((counts > 800) & (counts < 1200)), counts


def test_linear_float_sampling_is_uniform() -> None:
    """Not log: the lowest tenth of [1e-6, 1e-1] gets ~10 % of draws (log sampling would give ~80 %)."""
    dist = Float(1e-6, 1e-1)
    rng = np.random.default_rng(0)
    x = np.array([dist.sample(rng) for _ in range(5000)])
    assert 0.07 < np.mean(x < 1e-2) < 0.13


def test_log_int_sampling_covers_decades_and_bounds() -> None:
    dist = Int(1, 1000, log=True)
    rng = np.random.default_rng(0)
    x = np.array([dist.sample(rng) for _ in range(6000)])
    assert x.min() >= 1
    assert x.max() <= 1000
    counts = np.histogram(x, bins=[1, 10, 100, 1001])[0]
    assert np.all((counts > 1600) & (counts < 2400)), counts
    assert all(type(dist.sample(rng)) is int for _ in range(10))


# ------------------------------------------------------------------------------------------------------
# Grids


def test_float_grid_includes_both_bounds() -> None:
    assert Float(0.0, 0.8).grid(5) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    values = Float(0.1, 0.7).grid(4)
    assert values[0] == 0.1
    assert values[-1] == 0.7


def test_log_float_grid_is_geometric_and_in_bounds() -> None:
    values = Float(1e-6, 1e-1, log=True).grid(6)
    assert values == pytest.approx([1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1], rel=1e-9)
    assert values[0] >= 1e-6
    assert values[-1] <= 1e-1
    ratios = [b / a for a, b in itertools.pairwise(values)]
    assert ratios == pytest.approx([10.0] * 5)


def test_grid_of_one_point_is_the_default() -> None:
    assert Float(0.0, 1.0, default=0.3).grid(1) == [0.3]
    assert Int(0, 4, default=2).grid(1) == [2]


def test_int_grid_rounds_and_deduplicates() -> None:
    assert Int(0, 2).grid(5) == [0, 1, 2]
    assert Int(0, 10).grid(3) == [0, 5, 10]
    assert Int(1, 100, log=True).grid(3) == [1, 10, 100]
    assert Int(1, 3, log=True).grid(10) == [1, 2, 3]
    assert all(type(v) is int for v in Int(0, 10).grid(4))


def test_grid_axes_per_dimension(space: SearchSpace) -> None:
    axes = space.grid_axes(3)
    assert list(axes) == list(space)
    assert axes["holes"] == [0, 2, 4]
    assert axes["p"] == pytest.approx([0.0, 0.4, 0.8])
    for bad in (0, -1, 2.5):
        with pytest.raises(SpaceError, match=r"grid points per dimension must be an integer >= 1"):
            space.grid_axes(bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------------
# The integer rule and hyperparameter kinds


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (0.0, 0),
        (0.999, 0),
        (1.0, 1),
        (2.7, 2),
        (3.9999, 3),
        (4.0, 4),
        (4.99, 4),
        (7.3, 4),
        (-0.01, 0),
        (-5.0, 0),
    ],
)
def test_int_from_continuous_floors_then_clips(x: float, expected: int) -> None:
    """Integer k owns [k, k+1); values outside [low, high+1) clip to the bounds."""
    value = Int(0, 4).from_continuous(x)
    assert value == expected
    assert type(value) is int


def test_only_optimisation_settings_are_not_best_response_tunable() -> None:
    assert HParamKind.REGULARIZER.best_response_tunable
    assert HParamKind.AUGMENTATION.best_response_tunable
    assert not HParamKind.OPTIMIZATION.best_response_tunable
    assert Float(0.0, 1.0).kind is HParamKind.REGULARIZER  # the default kind


def test_subspace_keeps_order_and_rejects_unknown(space: SearchSpace) -> None:
    assert list(space.subspace(["holes", "p"])) == ["holes", "p"]
    with pytest.raises(SpaceError, match=r"unknown hyperparameters \['nope'\]"):
        space.subspace(["nope"])


# ------------------------------------------------------------------------------------------------------
# Backend translators


def test_to_skopt_translates_types_bounds_and_priors(space: SearchSpace) -> None:
    from skopt.space import Integer, Real

    dims = to_skopt(space)
    assert [d.name for d in dims] == list(space)
    p, wd, holes, width = dims
    assert isinstance(p, Real)
    assert (p.low, p.high, p.prior) == (0.0, 0.8, "uniform")
    assert isinstance(wd, Real)
    assert (wd.low, wd.high, wd.prior) == (1e-6, 1e-1, "log-uniform")
    assert isinstance(holes, Integer)
    assert (holes.low, holes.high, holes.prior) == (0, 4, "uniform")
    assert isinstance(width, Integer)
    assert (width.low, width.high, width.prior) == (8, 512, "log-uniform")


def test_to_optuna_translates_types_bounds_and_log(space: SearchSpace) -> None:
    from optuna.distributions import FloatDistribution, IntDistribution

    dists = to_optuna(space)
    assert list(dists) == list(space)
    assert dists["p"] == FloatDistribution(0.0, 0.8, log=False)
    assert dists["wd"] == FloatDistribution(1e-6, 1e-1, log=True)
    assert dists["holes"] == IntDistribution(0, 4, log=False)
    assert dists["width"] == IntDistribution(8, 512, log=True)
    assert type(dists["holes"]) is IntDistribution
    assert type(dists["p"]) is FloatDistribution


def test_from_continuous_floors_ints_clips_floats_and_fills_the_rest() -> None:
    """A continuous relaxation → a valid config: Ints by the integer rule, Floats clipped, others from fixed."""
    space = SearchSpace({"p": Float(0.0, 0.9), "k": Int(0, 4), "w": Float(1e-6, 1e-1, log=True)})
    config = space.from_continuous({"p": 0.9000001, "k": 4.99}, fixed={"w": 1e-3})
    assert config == {"p": 0.9, "k": 4, "w": 1e-3}
    assert type(config["k"]) is int
    assert space.validate(config) == config
    assert space.from_continuous({"p": -1e-9, "k": -0.5, "w": 0.5}, fixed={})["k"] == 0


def test_position_is_the_fraction_of_the_range_on_the_sampling_scale() -> None:
    assert Float(0.0, 0.9).position(0.45) == pytest.approx(0.5)
    assert Float(1e-3, 1e3, log=True).position(1.0) == pytest.approx(0.5)
    assert Int(0, 3).position(2.0) == pytest.approx(0.5)  # [0, 4): each integer owns a quarter
    assert Int(1, 3, log=True).position(2.0) == pytest.approx(0.5)  # [1, 4) on a log scale
    assert Float(0.0, 1.0).position(1.5) == pytest.approx(1.5)  # not clipped
    with pytest.raises(SpaceError, match=r"a log-scale value must be > 0, got 0\.0"):
        Float(1e-3, 1.0, log=True).position(0.0)
