"""Per-example regularisers: rates act per row, zero rates are identity, eval mode is clean."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from hpobench_stn.nn.regularizers import (
    activation_regularization,
    channel_dropout,
    drop_connect,
    element_dropout,
    embedding_dropout,
    locked_dropout,
    per_example,
    scale_noise,
    temporal_activation_regularization,
)

RATES = torch.tensor([0.0, 0.2, 0.5, 0.8])


@pytest.fixture(autouse=True)
def _seeded() -> Iterator[None]:
    # Scoped seeding: fork so no state leaks into other tests.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


def _drop_fraction_per_row(out: torch.Tensor) -> torch.Tensor:
    return (out == 0).flatten(1).float().mean(dim=1)


def test_element_dropout_drops_each_row_at_its_own_rate() -> None:
    x = torch.ones(4, 20000)
    out = element_dropout(x, RATES, training=True)
    torch.testing.assert_close(_drop_fraction_per_row(out), RATES, atol=0.015, rtol=0)
    # inverted scaling: kept units are 1 / (1 - p), so each row's mean stays ~1
    torch.testing.assert_close(out.mean(dim=1), torch.ones(4), atol=0.05, rtol=0)


def test_zero_rates_and_eval_mode_are_identity() -> None:
    x = torch.randn(4, 3, 5, 5)
    zeros = torch.zeros(4)
    assert torch.equal(element_dropout(x, zeros, training=True), x)
    assert torch.equal(channel_dropout(x, zeros, training=True), x)
    assert torch.equal(element_dropout(x, RATES, training=False), x)
    assert torch.equal(channel_dropout(x, RATES, training=False), x)
    seq = torch.randn(7, 4, 6)
    assert torch.equal(locked_dropout(seq, zeros, training=True), seq)
    assert torch.equal(locked_dropout(seq, RATES, training=False), seq)
    assert torch.equal(scale_noise(x, zeros, training=True), x)
    w = torch.randn(8, 3)
    assert torch.equal(drop_connect(w, zeros, training=True), w)
    assert torch.equal(drop_connect(w, RATES, training=False), w)


def test_channel_dropout_drops_whole_feature_maps_per_row() -> None:
    x = torch.ones(4, 4000, 3, 3)
    out = channel_dropout(x, RATES, training=True)
    per_map = out.flatten(2)
    assert bool(((per_map == 0).all(dim=2) | (per_map != 0).all(dim=2)).all())  # a map is dropped whole
    dropped = (per_map[:, :, 0] == 0).float().mean(dim=1)
    torch.testing.assert_close(dropped, RATES, atol=0.03, rtol=0)


def test_locked_dropout_shares_its_mask_over_time() -> None:
    x = torch.ones(50, 4, 3000)
    out = locked_dropout(x, RATES, training=True)
    assert torch.equal(out[0] == 0, out[-1] == 0)  # same units dropped at every step
    torch.testing.assert_close((out[0] == 0).float().mean(dim=1), RATES, atol=0.03, rtol=0)


def test_embedding_dropout_drops_every_occurrence_of_a_type_within_an_example() -> None:
    weight = torch.randn(50, 8)
    tokens = torch.randint(0, 50, (400, 4))
    out = embedding_dropout(tokens, weight, RATES, training=True)
    dropped = out.abs().sum(dim=2) == 0  # (T, N)
    for n in range(4):
        for tok in tokens[:, n].unique():
            occurrences = dropped[tokens[:, n] == tok, n]
            assert bool(occurrences.all()) or not bool(occurrences.any())
    assert not bool(dropped[:, 0].any())  # rate 0: nothing dropped
    assert torch.equal(embedding_dropout(tokens, weight, RATES, training=False), weight[tokens])


def test_drop_connect_shares_one_mask_when_rates_are_equal_and_one_per_row_otherwise() -> None:
    w = torch.ones(64, 64)
    shared = drop_connect(w, torch.full((3,), 0.5), training=True)
    assert shared.shape == (64, 64)
    assert 0.4 < float((shared == 0).float().mean()) < 0.6
    per_row = drop_connect(w, RATES, training=True)
    assert per_row.shape == (4, 64, 64)
    torch.testing.assert_close(_drop_fraction_per_row(per_row), RATES, atol=0.03, rtol=0)


def test_scale_noise_factors_lie_in_the_documented_range_per_row() -> None:
    x = torch.ones(2000, 3)
    s = torch.cat([torch.zeros(1000), torch.ones(1000)])
    out = scale_noise(x, s, training=True)
    factors = out[:, 0]
    assert torch.equal(factors[:1000], torch.ones(1000))
    assert float(factors[1000:].min()) >= 0.5
    assert float(factors[1000:].max()) <= 2.0
    assert bool((out == factors[:, None]).all())  # one factor per example


def test_ar_and_tar_weight_each_example_by_its_own_coefficient() -> None:
    h = torch.zeros(3, 2, 4)
    h[:, 1] = 2.0  # example 1 has activations 2 everywhere, constant in time
    ar = activation_regularization(h, torch.tensor([5.0, 1.0]))
    assert float(ar) == pytest.approx(4.0 / 2)  # (5 * 0 + 1 * 4) / 2
    assert float(temporal_activation_regularization(h, torch.tensor([1.0, 1.0]))) == 0.0
    h[1, 0] = 1.0
    tar = temporal_activation_regularization(h, torch.tensor([2.0, 0.0]))
    assert float(tar) == pytest.approx(2.0 * (2 * 4 * 1.0 / (2 * 4)) / 2)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: element_dropout(torch.ones(4, 3), torch.ones(3) * 0.1, True), r"expected rates of shape \(4,\)"),
        (lambda: element_dropout(torch.ones(2, 3), torch.tensor([0.1, 1.0]), True), r"rates must lie in \[0, 1\)"),
        (lambda: channel_dropout(torch.ones(2, 3), torch.zeros(2), True), r"expected x of shape \(N, C, H, W\)"),
        (lambda: locked_dropout(torch.ones(2, 3), torch.zeros(2), True), r"expected x of shape \(T, N, D\)"),
        (lambda: scale_noise(torch.ones(2, 3), torch.tensor([0.1, -0.1]), True), r"strengths must be >= 0"),
        (lambda: per_example(torch.zeros(3), 4, torch.ones(1)), r"expected per-example rates of shape \(4,\)"),
    ],
)
def test_bad_shapes_and_rates_are_refused_with_a_clear_message(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]
