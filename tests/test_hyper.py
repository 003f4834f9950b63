"""Hyper-layers: zero gate = plain layer, nonzero gate = the per-example formula, gradients, shapes, helpers."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hpobench_stn.nn import (
    HyperConv2d,
    HyperEmbedding,
    HyperInput,
    HyperLayers,
    HyperLinear,
    HyperLSTM,
    HyperModule,
    Layers,
    elementary_parameter_count,
    hyper_input_of,
    init_hyper_path,
    is_hyper_path,
    weight_sq_norm,
)

F64 = torch.float64
K = 3  # columns of h in most tests


@pytest.fixture(autouse=True)
def _seeded() -> Iterator[None]:
    # Scoped seeding: fork so no state leaks into other tests.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _elementary_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """The state entries a plain layer has (spelled out here, independent of ``is_hyper_path``)."""
    return {k: v for k, v in module.state_dict().items() if not k.split(".")[-1].startswith(("hyper_", "gate_"))}


def _assert_rows_pairwise_distinct(out: torch.Tensor) -> None:
    rows = out.flatten(1)
    dist = torch.cdist(rows, rows)
    off_diagonal = dist[~torch.eye(len(rows), dtype=torch.bool)]
    assert bool((off_diagonal > 1e-6).all()), f"some rows coincide: min distance {float(off_diagonal.min())}"


def _output(layer: nn.Module, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
    """A hyper-layer's output tensor (an LSTM's sequence output, without its final state)."""
    out = layer(x, h=h)
    result: torch.Tensor = out[0] if isinstance(out, tuple) else out
    return result


# --- zero gate: a hyper-layer is its plain counterpart ------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6, 5), (4, 6, 5)], ids=["batch", "time_first"])
def test_zero_gate_linear_equals_nn_linear(shape: tuple[int, ...]) -> None:
    """With V = 0, HyperLinear(x, h) equals nn.Linear(x) with the same elementary weights."""
    layer = HyperLinear(5, 4, n_hparams=K)
    layer.reset_hyper_path(None, gate_std=0.0)
    plain = nn.Linear(5, 4)
    plain.load_state_dict(_elementary_state(layer))
    x, h = torch.randn(shape), torch.randn(shape[-2], K)
    torch.testing.assert_close(layer(x, h), plain(x))


def test_zero_gate_conv_equals_nn_conv2d() -> None:
    """With V = 0, HyperConv2d (stride 2, padding 1) equals nn.Conv2d with the same elementary weights."""
    layer = HyperConv2d(3, 4, 3, n_hparams=K, stride=2, padding=1)
    layer.reset_hyper_path(None, gate_std=0.0)
    plain = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    plain.load_state_dict(_elementary_state(layer))
    x, h = torch.randn(5, 3, 7, 7), torch.randn(5, K)
    torch.testing.assert_close(layer(x, h), plain(x))


def test_zero_gate_embedding_equals_nn_embedding() -> None:
    """With V = 0, HyperEmbedding(tokens (T, N), h) equals nn.Embedding with the same table."""
    layer = HyperEmbedding(11, 4, n_hparams=K)
    layer.reset_hyper_path(None, gate_std=0.0)
    plain = nn.Embedding(11, 4)
    plain.load_state_dict(_elementary_state(layer))
    tokens, h = torch.randint(0, 11, (6, 5)), torch.randn(5, K)
    torch.testing.assert_close(layer(tokens, h), plain(tokens))


def test_zero_gate_lstm_equals_nn_lstm_with_given_and_returned_state() -> None:
    """With V = 0, HyperLSTM equals a one-layer nn.LSTM loaded from its ``*_l0`` entries, (h0, c0) in and out."""
    layer = HyperLSTM(4, 5, n_hparams=K)
    layer.reset_hyper_path(None, gate_std=0.0)
    plain = nn.LSTM(4, 5)
    plain.load_state_dict({k: v for k, v in layer.state_dict().items() if k.endswith("_l0")})
    x, h = torch.randn(7, 3, 4), torch.randn(3, K)
    h0, c0 = torch.randn(1, 3, 5), torch.randn(1, 3, 5)
    out, (h_t, c_t) = layer(x, (h0, c0), h)
    ref_out, (ref_h, ref_c) = plain(x, (h0, c0))
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h_t, ref_h)
    torch.testing.assert_close(c_t, ref_c)
    torch.testing.assert_close(out[-1], h_t[0])  # the returned state is the last step's


def test_zero_gate_lstm_with_hh_mask_equals_fused_lstm_with_masked_w_hh() -> None:
    """HyperLSTM's hh_mask is DropConnect on W_hh: with V = 0 it equals the fused LSTM run with W_hh * mask."""
    layer = HyperLSTM(4, 5, n_hparams=K)
    layer.reset_hyper_path(None, gate_std=0.0)
    mask = (torch.rand(20, 5) > 0.3).float() / 0.7
    x, h = torch.randn(6, 3, 4), torch.randn(3, K)
    h0, c0 = torch.randn(1, 3, 5), torch.randn(1, 3, 5)
    out, (h_t, c_t) = layer(x, (h0, c0), h, hh_mask=mask)
    w_ih, w_hh, b_ih, b_hh = layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0
    ref_out, ref_h, ref_c = torch._VF.lstm(
        x, (h0, c0), [w_ih, w_hh * mask, b_ih, b_hh], True, 1, 0.0, False, False, False
    )
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h_t, ref_h)
    torch.testing.assert_close(c_t, ref_c)
    unmasked, _ = layer(x, (h0, c0), h)
    assert not torch.allclose(out, unmasked)  # the mask did something


# --- nonzero gate: the per-example weights of the STN formula ----------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("time_first", [False, True])
def test_linear_matches_explicit_per_example_weights(bias: bool, time_first: bool) -> None:
    """HyperLinear = (W_e + diag(s_w[n]) W_h) x + b_e + s_b[n] ⊙ b_h, with (s_w, s_b) = V h split in that order."""
    layer = HyperLinear(5, 4, n_hparams=K, bias=bias, dtype=F64)
    layer.reset_hyper_path(_gen(), gate_std=0.5)
    n = 6
    x = torch.randn((3, n, 5) if time_first else (n, 5), dtype=F64)
    h = torch.randn(n, K, dtype=F64)
    scalars = h @ layer.gate_weight.T  # (N, 8) or (N, 4)
    s_w = scalars[:, :4]
    weights = layer.weight + s_w[:, :, None] * layer.hyper_weight  # (N, out, in): W_e + diag(s_w[n]) W_h
    expected = torch.einsum("noi,...ni->...no", weights, x)
    if bias:
        assert layer.bias is not None
        assert layer.hyper_bias is not None
        expected = expected + layer.bias + scalars[:, 4:] * layer.hyper_bias
    torch.testing.assert_close(layer(x, h), expected)


def test_conv_matches_explicit_per_example_weights() -> None:
    """HyperConv2d = conv(x[n], W_e + s_w[n] ⊙ W_h) + b_e + s_b[n] ⊙ b_h, gates per output channel."""
    layer = HyperConv2d(2, 3, 3, n_hparams=K, stride=2, padding=1, dtype=F64)
    layer.reset_hyper_path(_gen(), gate_std=0.5)
    x, h = torch.randn(4, 2, 5, 5, dtype=F64), torch.randn(4, K, dtype=F64)
    assert layer.bias is not None
    assert layer.hyper_bias is not None
    s_w, s_b = (h @ layer.gate_weight.T).split(3, dim=1)
    expected = torch.cat(
        [
            F.conv2d(
                x[i : i + 1],
                layer.weight + s_w[i, :, None, None, None] * layer.hyper_weight,
                layer.bias + s_b[i] * layer.hyper_bias,
                stride=2,
                padding=1,
            )
            for i in range(4)
        ]
    )
    torch.testing.assert_close(layer(x, h), expected)


def test_embedding_matches_explicit_per_example_table() -> None:
    """HyperEmbedding = E_e[t] + s[n] ⊙ E_h[t] with s = V h, for every (time, example) position."""
    layer = HyperEmbedding(11, 4, n_hparams=K, dtype=F64)
    layer.reset_hyper_path(_gen(), gate_std=0.5)
    tokens, h = torch.randint(0, 11, (6, 5)), torch.randn(5, K, dtype=F64)
    s = h @ layer.gate_weight.T  # (N, 4)
    expected = torch.stack(
        [
            torch.stack([layer.weight[tokens[t, i]] + s[i] * layer.hyper_weight[tokens[t, i]] for i in range(5)])
            for t in range(6)
        ]
    )
    torch.testing.assert_close(layer(tokens, h), expected)


def _lstm_reference(
    layer: HyperLSTM,
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    h: torch.Tensor,
    hh_mask: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A per-timestep loop over the docstring formula, with explicit per-example weight matrices."""
    g = 4 * layer.hidden_size
    scalars = h @ layer.gate_weight.T
    s_ih, s_hh, s_b = scalars[:, :g], scalars[:, g : 2 * g], scalars[:, 2 * g :]
    w_ih = layer.weight_ih_l0 + s_ih[:, :, None] * layer.hyper_weight_ih  # (N, 4H, in)
    mask = torch.ones_like(layer.weight_hh_l0) if hh_mask is None else hh_mask  # DropConnect on W_hh and U_hh
    w_hh = layer.weight_hh_l0 * mask + s_hh[:, :, None] * (layer.hyper_weight_hh * mask)  # (N, 4H, H)
    b = layer.bias_ih_l0 + layer.bias_hh_l0 + s_b * layer.hyper_bias  # (N, 4H)
    h_t, c_t = h0[0], c0[0]
    outs = []
    for t in range(x.shape[0]):
        pre = torch.einsum("ngi,ni->ng", w_ih, x[t]) + torch.einsum("ngj,nj->ng", w_hh, h_t) + b
        i, f, gg, o = pre.chunk(4, dim=1)
        c_t = torch.sigmoid(f) * c_t + torch.sigmoid(i) * torch.tanh(gg)
        h_t = torch.sigmoid(o) * torch.tanh(c_t)
        outs.append(h_t)
    return torch.stack(outs), h_t, c_t


@pytest.mark.parametrize("masked", [False, True])
def test_lstm_matches_per_timestep_reference_loop(masked: bool) -> None:
    """HyperLSTM (hoisted input projection, fused recurrent product) equals a naive loop over its formula."""
    layer = HyperLSTM(4, 5, n_hparams=K, dtype=F64)
    layer.reset_hyper_path(_gen(), gate_std=0.5)
    x, h = torch.randn(6, 3, 4, dtype=F64), torch.randn(3, K, dtype=F64)
    h0, c0 = torch.randn(1, 3, 5, dtype=F64), torch.randn(1, 3, 5, dtype=F64)
    mask = (torch.rand(20, 5, dtype=F64) > 0.3).to(F64) / 0.7 if masked else None
    out, (h_t, c_t) = layer(x, (h0, c0), h, hh_mask=mask)
    ref_out, ref_h, ref_c = _lstm_reference(layer, x, h0, c0, h, mask)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h_t[0], ref_h)
    torch.testing.assert_close(c_t[0], ref_c)


# --- gradients ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("masked", [False, True])
def test_lstm_hand_written_backward_matches_autograd_through_the_reference(masked: bool) -> None:
    """Every parameter's gradient (weights, hyper path, gates) and those of x, h, h_0, c_0 equal autograd's
    through the naive loop: the hand-written backpropagation through time is exact."""
    layer = HyperLSTM(4, 5, n_hparams=K, dtype=F64)
    layer.reset_hyper_path(_gen(), gate_std=0.5)
    x, h = torch.randn(6, 3, 4, dtype=F64, requires_grad=True), torch.randn(3, K, dtype=F64, requires_grad=True)
    h0 = torch.randn(1, 3, 5, dtype=F64, requires_grad=True)
    c0 = torch.randn(1, 3, 5, dtype=F64, requires_grad=True)
    mask = (torch.rand(20, 5, dtype=F64) > 0.3).to(F64) / 0.7 if masked else None
    weights = torch.randn(6, 3, 5, dtype=F64)  # a loss that weighs every output differently
    inputs = [x, h, h0, c0, *layer.parameters()]

    out, (h_t, c_t) = layer(x, (h0, c0), h, hh_mask=mask)
    ours = torch.autograd.grad((out * weights).sum() + h_t.sum() * 0.3 + c_t.sum() * 0.7, inputs)
    ref_out, ref_h, ref_c = _lstm_reference(layer, x, h0, c0, h, mask)
    ref = torch.autograd.grad((ref_out * weights).sum() + ref_h.sum() * 0.3 + ref_c.sum() * 0.7, inputs)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b)


def test_gradcheck_linear_wrt_x_and_h() -> None:
    """HyperLinear's backward is correct w.r.t. the input and the hypernetwork input (float64 gradcheck)."""
    layer = HyperLinear(3, 2, n_hparams=2, dtype=F64)
    layer.reset_hyper_path(_gen(), gate_std=0.5)
    x = torch.randn(4, 3, dtype=F64, requires_grad=True)
    h = torch.randn(4, 2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, h: layer(x, h), (x, h))


def test_gradcheck_conv_wrt_x_and_h() -> None:
    """HyperConv2d's backward is correct w.r.t. the input and the hypernetwork input (float64 gradcheck)."""
    layer = HyperConv2d(2, 2, 3, n_hparams=2, stride=2, padding=1, dtype=F64)
    layer.reset_hyper_path(_gen(), gate_std=0.5)
    x = torch.randn(2, 2, 4, 4, dtype=F64, requires_grad=True)
    h = torch.randn(2, 2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, h: layer(x, h), (x, h))


def test_gradcheck_embedding_wrt_h() -> None:
    """HyperEmbedding's backward is correct w.r.t. the hypernetwork input (float64 gradcheck)."""
    layer = HyperEmbedding(7, 3, n_hparams=2, dtype=F64)
    layer.reset_hyper_path(_gen(), gate_std=0.5)
    tokens = torch.randint(0, 7, (3, 4))
    h = torch.randn(4, 2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h: layer(tokens, h), (h,))


def test_gradcheck_lstm_wrt_x_h_and_initial_state() -> None:
    """HyperLSTM's backward is correct w.r.t. x, h and (h0, c0), through outputs and final state."""
    layer = HyperLSTM(3, 2, n_hparams=2, dtype=F64)
    layer.reset_hyper_path(_gen(), gate_std=0.5)
    x = torch.randn(3, 2, 3, dtype=F64, requires_grad=True)
    h = torch.randn(2, 2, dtype=F64, requires_grad=True)
    h0 = torch.randn(1, 2, 2, dtype=F64, requires_grad=True)
    c0 = torch.randn(1, 2, 2, dtype=F64, requires_grad=True)

    def run(
        x: torch.Tensor, h: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out, (h_t, c_t) = layer(x, (h0, c0), h)
        return out, h_t, c_t

    assert torch.autograd.gradcheck(run, (x, h, h0, c0))


# --- one row of h per example ------------------------------------------------------------------------------------


def test_distinct_h_rows_give_distinct_outputs_for_the_same_input_row() -> None:
    """The same input row under different h rows gives different outputs (and equal h rows give equal ones)."""
    n = 4
    h = torch.randn(n, K)
    same_h = h[:1].expand(n, K)
    linear = HyperLinear(5, 3, n_hparams=K)
    conv = HyperConv2d(2, 3, 3, n_hparams=K, padding=1)
    embedding = HyperEmbedding(9, 3, n_hparams=K)
    lstm = HyperLSTM(4, 3, n_hparams=K)
    for layer in (linear, conv, embedding, lstm):
        layer.reset_hyper_path(_gen(), gate_std=0.5)
    cases: list[tuple[nn.Module, torch.Tensor, int]] = [
        (linear, torch.randn(1, 5).expand(n, 5), 0),
        (conv, torch.randn(1, 2, 4, 4).expand(n, 2, 4, 4), 0),
        (embedding, torch.randint(0, 9, (3, 1)).expand(3, n), 1),  # tokens (T, N): the example axis is 1
        (lstm, torch.randn(3, 1, 4).expand(3, n, 4), 1),
    ]
    for module, x, example_axis in cases:
        _assert_rows_pairwise_distinct(_output(module, x, h).movedim(example_axis, 0))
        same = _output(module, x, same_h).movedim(example_axis, 0)
        torch.testing.assert_close(same, same[:1].expand_as(same))


# --- input checks ------------------------------------------------------------------------------------------------


def _all_layers(source: HyperInput | None = None) -> list[tuple[HyperModule, torch.Tensor]]:
    """Each hyper-layer with a valid input of N = 4 examples."""
    return [
        (HyperLinear(5, 3, n_hparams=K, source=source), torch.randn(4, 5)),
        (HyperConv2d(2, 3, 3, n_hparams=K, source=source), torch.randn(4, 2, 5, 5)),
        (HyperEmbedding(9, 3, n_hparams=K, source=source), torch.randint(0, 9, (2, 4))),
        (HyperLSTM(5, 3, n_hparams=K, source=source), torch.randn(2, 4, 5)),
    ]


def test_wrong_h_shape_is_refused_naming_the_expected_shape() -> None:
    """Every hyper-layer refuses h with the wrong number of columns or rows, naming (N, n_hparams)."""
    for layer, x in _all_layers():
        name = type(layer).__name__
        with pytest.raises(ValueError, match=re.escape(f"{name}: expected hparams of shape (4, {K}), got (4, 2)")):
            layer(x, h=torch.randn(4, 2))
        with pytest.raises(ValueError, match=re.escape(f"{name}: expected hparams of shape (4, {K}), got (3, {K})")):
            layer(x, h=torch.randn(3, K))
        with pytest.raises(ValueError, match="expected hparams of shape"):
            layer(x, h=torch.randn(K + 1))  # a 1-D h of the wrong length


def test_wrong_input_feature_size_is_refused() -> None:
    """HyperLinear, HyperConv2d and HyperLSTM refuse inputs of the wrong feature size or rank."""
    h = torch.randn(4, K)
    with pytest.raises(ValueError, match=re.escape("HyperLinear: expected input of shape (*, N, 5), got (4, 6)")):
        HyperLinear(5, 3, n_hparams=K)(torch.randn(4, 6), h)
    with pytest.raises(ValueError, match=re.escape("HyperLinear: expected input of shape (*, N, 5), got (5,)")):
        HyperLinear(5, 3, n_hparams=K)(torch.randn(5), h)
    conv = HyperConv2d(2, 3, 3, n_hparams=K)
    with pytest.raises(
        ValueError, match=re.escape("HyperConv2d: expected input of shape (N, 2, H, W), got (4, 3, 5, 5)")
    ):
        conv(torch.randn(4, 3, 5, 5), h)
    with pytest.raises(ValueError, match=re.escape("HyperConv2d: expected input of shape (N, 2, H, W)")):
        conv(torch.randn(2, 5, 5), h)
    lstm = HyperLSTM(5, 3, n_hparams=K)
    with pytest.raises(ValueError, match=re.escape("HyperLSTM: expected input of shape (T, N, 5), got (2, 4, 6)")):
        lstm(torch.randn(2, 4, 6), h=h)
    with pytest.raises(ValueError, match=re.escape("HyperLSTM: expected input of shape (T, N, 5), got (4, 5)")):
        lstm(torch.randn(4, 5), h=h)


def test_missing_h_is_refused_without_a_set_hyper_input() -> None:
    """Called without h, a layer with no HyperInput, or one whose h is unset, raises 'no hypernetwork input'."""
    source = HyperInput(K)
    for layer, x in [*_all_layers(), *_all_layers(source)]:
        with pytest.raises(ValueError, match=f"{type(layer).__name__}: no hypernetwork input"):
            layer(x)


def test_hyper_input_refuses_bad_shapes_and_n_hparams() -> None:
    """HyperInput.set refuses h that is not (N, k) or (k,); n_hparams < 1 is refused by holder and layers."""
    source = HyperInput(K)
    for bad in (torch.randn(4, K + 1), torch.randn(2, 4, K), torch.randn(K + 1), torch.tensor(1.0)):
        with pytest.raises(ValueError, match=re.escape(f"HyperInput: expected h of shape (N, {K}) or ({K},)")):
            source.set(bad)
    assert source.h is None  # a refused h is not stored
    with pytest.raises(ValueError, match=re.escape("HyperInput: n_hparams must be an integer >= 1, got 0")):
        HyperInput(0)
    with pytest.raises(ValueError, match=re.escape("HyperLinear: n_hparams must be an integer >= 1, got 0")):
        HyperLinear(3, 2, n_hparams=0)
    with pytest.raises(ValueError, match=re.escape("HyperLSTM: n_hparams must be an integer >= 1, got -1")):
        HyperLSTM(3, 2, n_hparams=-1)
    with pytest.raises(ValueError, match=re.escape("HyperConv2d: HyperInput has 3 columns, the layer 2")):
        HyperConv2d(2, 2, 3, n_hparams=2, source=source)


def test_lstm_refuses_bad_hh_mask_and_initial_state_shapes() -> None:
    """HyperLSTM refuses an hh_mask that is not (4H, H) and an (h0, c0) that is not (1, N, H) each."""
    lstm = HyperLSTM(5, 3, n_hparams=K)
    x, h = torch.randn(2, 4, 5), torch.randn(4, K)
    with pytest.raises(ValueError, match=re.escape("HyperLSTM: expected hh_mask of shape (12, 3), got (3, 12)")):
        lstm(x, h=h, hh_mask=torch.ones(3, 12))
    good = torch.zeros(1, 4, 3)
    with pytest.raises(ValueError, match=re.escape("HyperLSTM: expected h_0 of shape (1, 4, 3), got (4, 3)")):
        lstm(x, (torch.zeros(4, 3), good), h)
    with pytest.raises(ValueError, match=re.escape("HyperLSTM: expected c_0 of shape (1, 4, 3), got (1, 5, 3)")):
        lstm(x, (good, torch.zeros(1, 5, 3)), h)


# --- the shared HyperInput ---------------------------------------------------------------------------------------


def test_factory_layers_read_the_shared_hyper_input() -> None:
    """Layers from HyperLayers(k), called without h, use factory.hyper_input.h (and follow when it changes)."""
    factory = HyperLayers(K)
    layer = factory.linear(5, 3)
    assert isinstance(layer, HyperLinear)
    layer.reset_hyper_path(_gen(), gate_std=0.5)
    x, h1, h2 = torch.randn(4, 5), torch.randn(4, K), torch.randn(4, K)
    assert factory.hyper_input is not None
    factory.hyper_input.set(h1)
    torch.testing.assert_close(layer(x), layer(x, h1))
    factory.hyper_input.set(h2)
    torch.testing.assert_close(layer(x), layer(x, h2))
    assert not torch.allclose(layer(x, h1), layer(x, h2))


def test_one_dimensional_h_is_broadcast_to_every_example() -> None:
    """A 1-D h (k,), passed or shared, gives the same output as the expanded (N, k) tensor, for every layer."""
    factory = HyperLayers(K)
    assert factory.hyper_input is not None
    h_row = torch.randn(K)
    for layer, x in _all_layers(factory.hyper_input):
        layer.reset_hyper_path(_gen(), gate_std=0.5)
        expected = _output(layer, x, h_row.expand(4, K))  # every input in _all_layers has N = 4
        torch.testing.assert_close(_output(layer, x, h_row), expected)
        factory.hyper_input.set(h_row)
        torch.testing.assert_close(_output(layer, x, None), expected)


def test_hyper_input_of_finds_the_shared_holder_and_raises_without_one() -> None:
    """hyper_input_of returns the factory's HyperInput for Sequential/ModuleList models; 0 or 2 holders raise."""
    factory = HyperLayers(K)
    seq = nn.Sequential(factory.linear(5, 4), nn.ReLU(), factory.linear(4, 2))
    listed = nn.ModuleList([factory.embedding(9, 4), factory.lstm(4, 3)])
    assert hyper_input_of(seq) is factory.hyper_input
    assert hyper_input_of(listed) is factory.hyper_input
    plain = nn.Sequential(Layers().linear(5, 4), nn.ReLU())
    with pytest.raises(ValueError, match="share one HyperInput, found 0"):
        hyper_input_of(plain)
    with pytest.raises(ValueError, match="share one HyperInput, found 0"):
        hyper_input_of(nn.Sequential(HyperLinear(5, 4, n_hparams=K)))  # a hyper-layer with no holder
    mixed = nn.Sequential(factory.linear(5, 4), HyperLayers(K).linear(4, 2))
    with pytest.raises(ValueError, match="share one HyperInput, found 2"):
        hyper_input_of(mixed)


# --- init_hyper_path, names and counts ---------------------------------------------------------------------------


class TinyNet(nn.Module):
    """One architecture, built from either factory: embedding → 2 LSTMs, conv, then a linear head."""

    def __init__(self, layers: Layers) -> None:
        super().__init__()
        self.embedding = layers.embedding(11, 4)
        self.lstms = nn.ModuleList([layers.lstm(4, 5), layers.lstm(5, 3)])
        self.conv = layers.conv2d(1, 2, 3, stride=2, padding=1)
        self.fc1 = layers.linear(3 + 2 * 3 * 3, 2)

    def forward(self, tokens: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        seq = self.embedding(tokens)  # (T, N, 4)
        for lstm in self.lstms:
            seq, _ = lstm(seq)
        maps = torch.relu(self.conv(images)).flatten(1)  # (N, 18)
        out: torch.Tensor = self.fc1(torch.cat([seq[-1], maps], dim=1))  # (N, 2)
        return out


def _hyper_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.named_parameters() if k.split(".")[-1].startswith(("hyper_", "gate_"))}


def test_init_hyper_path_is_seeded_and_leaves_elementary_weights_alone() -> None:
    """init_hyper_path: same generator seed → same hyper path, other seed → different; elementary untouched."""
    model = TinyNet(HyperLayers(K))
    elementary = {k: v.clone() for k, v in _elementary_state(model).items()}
    assert elementary
    assert "lstms.0.weight_hh_l0" in elementary
    init_hyper_path(model, _gen(1), gate_std=0.01)
    first = _hyper_state(model)
    init_hyper_path(model, _gen(1), gate_std=0.01)
    again = _hyper_state(model)
    init_hyper_path(model, _gen(2), gate_std=0.01)
    other = _hyper_state(model)
    assert first.keys() == again.keys()
    assert "lstms.1.gate_weight" in first
    for name in first:
        assert torch.equal(first[name], again[name]), name
        assert not torch.equal(first[name], other[name]), name
    for name, value in _elementary_state(model).items():
        assert torch.equal(value, elementary[name]), name


def test_init_hyper_path_gate_std_zero_gives_zero_gates_and_negative_raises() -> None:
    """gate_std = 0 zeroes every gate (hyper weights stay random); a negative gate_std is refused."""
    model = TinyNet(HyperLayers(K))
    init_hyper_path(model, _gen(), gate_std=0.0)
    state = _hyper_state(model)
    gates = [v for k, v in state.items() if k.endswith("gate_weight")]
    assert len(gates) == 5
    assert all(bool((g == 0).all()) for g in gates)
    assert all(bool((v != 0).any()) for k, v in state.items() if "hyper_" in k)
    with pytest.raises(ValueError, match=re.escape("gate_std must be >= 0, got -0.1")):
        init_hyper_path(model, _gen(), gate_std=-0.1)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("fc1.gate_weight", True),
        ("lstms.0.hyper_weight_hh", True),
        ("hyper_bias", True),
        ("fc1.weight", False),
        ("embedding.weight", False),
        ("lstms.0.weight_hh_l0", False),
        ("hyper_net.fc.weight", False),  # only the last name component decides
    ],
)
def test_is_hyper_path_classifies_parameter_names(name: str, expected: bool) -> None:
    """is_hyper_path is true exactly for hyper_*/gate_* parameters, judged by the last name component."""
    assert is_hyper_path(name) is expected


def test_elementary_parameter_count_equals_the_plain_architecture() -> None:
    """A HyperLayers model's elementary parameter count equals the same architecture's count under Layers()."""
    hyper, plain = TinyNet(HyperLayers(K)), TinyNet(Layers())
    plain_count = sum(p.numel() for p in plain.parameters())
    assert elementary_parameter_count(hyper) == plain_count
    assert sum(p.numel() for p in hyper.parameters()) > plain_count  # the hyper path exists and is excluded
    assert elementary_parameter_count(plain) == plain_count


def test_plain_model_loads_the_elementary_weights_and_matches_at_zero_gate() -> None:
    """The elementary entries of a hyper-model load strictly into the plain model, which then computes the same."""
    factory = HyperLayers(K)
    hyper, plain = TinyNet(factory), TinyNet(Layers())
    init_hyper_path(hyper, _gen(), gate_std=0.0)
    plain.load_state_dict({k: v for k, v in hyper.state_dict().items() if not is_hyper_path(k)})
    tokens, images = torch.randint(0, 11, (5, 3)), torch.randn(3, 1, 6, 6)
    assert factory.hyper_input is not None
    factory.hyper_input.set(torch.randn(3, K))
    torch.testing.assert_close(hyper(tokens, images), plain(tokens, images))


# --- weight_sq_norm ----------------------------------------------------------------------------------------------


def test_weight_sq_norm_of_a_plain_layer_is_the_squared_frobenius_norm() -> None:
    """For nn.Linear / nn.Conv2d, weight_sq_norm is weight.pow(2).sum() (a scalar)."""
    for layer in (nn.Linear(5, 3), nn.Conv2d(2, 3, 3)):
        norm = weight_sq_norm(layer)
        assert norm.shape == ()
        torch.testing.assert_close(norm, layer.weight.pow(2).sum())


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_weight_sq_norm_of_a_hyper_layer_is_the_per_example_effective_norm(kind: str) -> None:
    """For HyperLinear/HyperConv2d, weight_sq_norm[n] = ||W_e + diag(s_w[n]) W_h||², with the same gradient in h."""
    layer: HyperLinear | HyperConv2d
    layer = HyperLinear(5, 3, n_hparams=K, dtype=F64) if kind == "linear" else HyperConv2d(2, 3, 3, K, dtype=F64)
    layer.reset_hyper_path(_gen(), gate_std=0.5)
    h = torch.randn(4, K, dtype=F64, requires_grad=True)
    s_w = (h @ layer.gate_weight.T)[:, :3]  # gates per output row / channel
    scale = s_w.reshape(4, 3, *([1] * (layer.weight.dim() - 1)))
    effective = layer.weight + scale * layer.hyper_weight  # (N, *weight.shape)
    expected = effective.pow(2).flatten(1).sum(1)
    norm = weight_sq_norm(layer, h)
    torch.testing.assert_close(norm, expected)
    (grad,) = torch.autograd.grad(norm.sum(), h)
    (expected_grad,) = torch.autograd.grad(expected.sum(), h)
    assert bool((grad != 0).any())
    torch.testing.assert_close(grad, expected_grad)


def test_weight_sq_norm_reads_the_shared_hyper_input() -> None:
    """Without h, weight_sq_norm of a factory-built hyper-layer uses the shared HyperInput's rows."""
    factory = HyperLayers(K)
    layer = factory.linear(5, 3)
    assert isinstance(layer, HyperLinear)
    assert factory.hyper_input is not None
    layer.reset_hyper_path(_gen(), gate_std=0.5)
    h = torch.randn(4, K)
    factory.hyper_input.set(h)
    torch.testing.assert_close(weight_sq_norm(layer), weight_sq_norm(layer, h))
    with pytest.raises(ValueError, match="no hypernetwork input"):
        weight_sq_norm(HyperLinear(5, 3, n_hparams=K))


def test_embedding_refuses_a_scalar_token_and_weight_sq_norm_a_layer_without_weights() -> None:
    """HyperEmbedding needs tokens with an example axis; weight_sq_norm needs a weight tensor."""
    emb = HyperEmbedding(10, 4, n_hparams=K)
    with pytest.raises(ValueError, match=re.escape("HyperEmbedding: expected tokens of shape (*, N), got ()")):
        emb(torch.tensor(3), torch.rand(1, K))
    with pytest.raises(TypeError, match="weight_sq_norm: ReLU has no weight tensor"):
        weight_sq_norm(nn.ReLU())
