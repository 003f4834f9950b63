"""Batched per-example augmentation: identity at zero strength, per-example draws, torchvision parity, cutout."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import functional as TF

from hpobench_stn.nn.augment import (
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    color_jitter,
    cutout,
    cutout_mask,
)

N = 64


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand((N, 3, 16, 16), generator=torch.Generator().manual_seed(0))


def _zeros(n: int = N) -> torch.Tensor:
    return torch.zeros(n)


def test_zero_ranges_are_the_exact_identity(images: torch.Tensor) -> None:
    """All ranges 0 (and length or holes 0) leave every image bit-identical."""
    assert torch.equal(color_jitter(images, _zeros(), _zeros(), _zeros(), _zeros()), images)
    full = torch.full((N,), 4, dtype=torch.long)
    assert torch.equal(cutout(images, torch.zeros(N, dtype=torch.long), full), images)
    assert torch.equal(cutout(images, torch.full((N,), 8, dtype=torch.long), torch.zeros(N, dtype=torch.long)), images)


def test_neutral_factors_are_the_identity_per_row(images: torch.Tensor) -> None:
    """Factor 1 (brightness/contrast/saturation) and hue shift 0 return the row unchanged, also among other rows."""
    f = torch.ones(N)
    f[1::2] = 1.7
    for fn in (adjust_brightness, adjust_contrast, adjust_saturation):
        out = fn(images, f)
        assert torch.equal(out[0::2], images[0::2]), fn.__name__
        assert not torch.equal(out[1::2], images[1::2]), fn.__name__
    shift = torch.zeros(N)
    shift[1::2] = 0.25
    out = adjust_hue(images, shift)
    assert torch.equal(out[0::2], images[0::2])
    assert not torch.allclose(out[1::2], images[1::2])


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (adjust_brightness, TF.adjust_brightness),
        (adjust_contrast, TF.adjust_contrast),
        (adjust_saturation, TF.adjust_saturation),
    ],
)
def test_factor_ops_match_torchvision_per_image(ours: object, theirs: object, images: torch.Tensor) -> None:
    """Each row with its own factor equals torchvision's functional op on that image alone."""
    factors = torch.linspace(0.0, 2.0, N)
    out = ours(images, factors)  # type: ignore[operator]
    ref = torch.stack([theirs(images[i], float(factors[i])) for i in range(N)])  # type: ignore[operator]
    torch.testing.assert_close(out, ref)


def test_hue_matches_torchvision_and_preserves_greyscale(images: torch.Tensor) -> None:
    """Hue rotation equals torchvision's adjust_hue; grey images (r = g = b) are unchanged by any shift."""
    shifts = torch.linspace(-0.5, 0.5, N)
    ref = torch.stack([TF.adjust_hue(images[i], float(shifts[i])) for i in range(N)])
    torch.testing.assert_close(adjust_hue(images, shifts), ref, atol=1e-5, rtol=0)
    grey = images[:, :1].expand(N, 3, 16, 16).contiguous()
    torch.testing.assert_close(adjust_hue(grey, shifts), grey, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"shifts must lie in \[-0.5, 0.5\]"):
        adjust_hue(images, torch.full((N,), 0.6))


def test_brightness_factors_are_drawn_per_example_within_each_rows_range() -> None:
    """On a constant image the brightness factor is visible per row: uniform in [max(0, 1-r), 1+r] for that row."""
    n = 4000
    r = torch.tensor([0.0, 0.2, 0.5, 1.0]).repeat_interleave(n // 4)
    x = torch.full((n, 3, 2, 2), 0.4)
    torch.manual_seed(0)
    out = color_jitter(x, r, torch.zeros(n), torch.zeros(n), torch.zeros(n))
    factor = out[:, 0, 0, 0] / 0.4  # the factor each row drew (no clamping: 0.4 · 2 < 1)
    for k, rk in enumerate((0.0, 0.2, 0.5, 1.0)):
        f = factor[k * n // 4 : (k + 1) * n // 4]
        low, high = max(0.0, 1 - rk), 1 + rk
        assert float(f.min()) >= low - 1e-5
        assert float(f.max()) <= high + 1e-5
        assert float(f.mean()) == pytest.approx((low + high) / 2, abs=0.03 + 0.02 * rk)
        assert float(f.std()) == pytest.approx((high - low) / 12**0.5, abs=0.02 + 0.02 * rk)
    # every example draws its own factor: the rows of one range are not all equal
    assert factor[n // 4 : n // 2].unique().numel() > 100


def test_jitter_rejects_bad_ranges(images: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"hue ranges must be <= 0\.5"):
        color_jitter(images, _zeros(), _zeros(), _zeros(), torch.full((N,), 0.7))
    with pytest.raises(ValueError, match="contrast ranges must be >= 0"):
        color_jitter(images, _zeros(), torch.full((N,), -0.1), _zeros(), _zeros())
    with pytest.raises(ValueError, match=r"expected per-example values of shape \(64,\)"):
        color_jitter(images, torch.zeros(3), _zeros(), _zeros(), _zeros())


def test_cutout_masks_have_the_requested_size_and_hole_count_per_example() -> None:
    """With centres well inside a large image, example n masks exactly holes[n] disjoint squares of length[n]²."""
    length = torch.tensor([0, 1, 4, 5, 8, 24, 3, 7])
    holes = torch.tensor([3, 1, 2, 4, 0, 1, 4, 3])
    n, size = len(length), 200
    # four well-separated centres, identical for every example
    centres = torch.tensor([[30, 30], [30, 150], [150, 30], [150, 150]]).expand(n, 4, 2)
    mask = cutout_mask(n, size, size, length, holes, centres=centres)
    assert mask.shape == (n, size, size)
    assert mask.sum(dim=(1, 2)).tolist() == (holes * length**2).tolist()
    # the square is exactly `length` wide, starting at centre - length // 2
    rows = mask[6].any(dim=1).nonzero().squeeze(1)
    assert rows[:3].tolist() == [29, 30, 31]


def test_cutout_holes_are_clipped_at_the_border_and_random_centres_vary() -> None:
    """A hole centred in a corner is clipped; random centres differ between examples."""
    mask = cutout_mask(1, 32, 32, torch.tensor([8]), torch.tensor([1]), centres=torch.tensor([[[0, 0]]]))
    assert int(mask.sum()) == 4 * 4  # rows/cols 0..3 of the square -4..3
    torch.manual_seed(0)
    mask = cutout_mask(100, 32, 32, torch.full((100,), 4), torch.full((100,), 1))
    assert mask.sum(dim=(1, 2)).max() <= 16
    assert len({tuple(m.nonzero()[0].tolist()) for m in mask}) > 20


def test_cutout_fills_with_the_given_per_channel_value(images: torch.Tensor) -> None:
    fill = torch.tensor([0.1, 0.2, 0.3])
    length, holes = torch.full((N,), 6), torch.full((N,), 2)
    torch.manual_seed(1)
    out = cutout(images, length, holes, fill)
    torch.manual_seed(1)
    mask = cutout_mask(N, 16, 16, length, holes)
    for c in range(3):
        assert torch.all(out[:, c][mask] == fill[c])
    assert torch.equal(out.permute(1, 0, 2, 3)[:, ~mask], images.permute(1, 0, 2, 3)[:, ~mask])


def test_fused_colour_map_equals_the_single_operations_in_order(images: torch.Tensor) -> None:
    """Without hue, the fused per-example map is brightness → contrast → saturation applied one by one
    (mid-range images and mild factors, so no intermediate value is clipped)."""
    from hpobench_stn.nn.augment import color_matrix

    x = 0.4 + 0.2 * images  # values in [0.4, 0.6]
    g = torch.Generator().manual_seed(1)
    b, c, s = (0.8 + 0.4 * torch.rand(N, generator=g) for _ in range(3))
    matrix, offset = color_matrix(b, c, s, torch.zeros(N))
    flat = x.reshape(N, 3, -1)
    grey_mean = (torch.tensor([0.2989, 0.587, 0.114]) @ flat.mean(dim=2).t()).view(N, 1)
    fused = (torch.bmm(matrix, flat) + (offset * grey_mean).unsqueeze(-1)).view_as(x)
    sequential = adjust_saturation(adjust_contrast(adjust_brightness(x, b), c), s)
    torch.testing.assert_close(fused, sequential, atol=1e-5, rtol=0)


def test_fused_hue_rotation_keeps_greys_and_luma() -> None:
    """The YIQ hue rotation used by color_jitter leaves grey pixels unchanged and keeps each pixel's luma."""
    from hpobench_stn.nn.augment import color_matrix

    ones = torch.ones(8)
    matrix, offset = color_matrix(ones, ones, ones, torch.linspace(-0.5, 0.5, 8))
    assert torch.equal(offset, torch.zeros(8, 3))
    grey = torch.full((8, 3, 1), 0.3)
    torch.testing.assert_close(torch.bmm(matrix, grey), grey, atol=1e-6, rtol=0)
    colour = torch.rand(8, 3, 50, generator=torch.Generator().manual_seed(2))
    yiq_luma = torch.tensor([0.299, 0.587, 0.114])
    torch.testing.assert_close(yiq_luma @ torch.bmm(matrix, colour), yiq_luma @ colour, atol=1e-5, rtol=0)


def test_a_static_hole_bound_gives_the_same_holes_as_the_data_dependent_one() -> None:
    """cutout_mask(max_holes=K) (no device sync to size the masks) cuts exactly the requested holes."""
    n = 3
    length = torch.tensor([4, 4, 4])
    holes = torch.tensor([0, 1, 2])
    centres = torch.tensor([[[5, 5], [20, 20], [0, 0], [0, 0]]] * n)  # (N, K=4, 2), far apart
    static = cutout_mask(n, 32, 32, length, holes, centres=centres, max_holes=4)
    dynamic = cutout_mask(n, 32, 32, length, holes, centres=centres[:, :2])
    assert torch.equal(static, dynamic)
    assert static.flatten(1).sum(dim=1).tolist() == [0, 16, 32]
