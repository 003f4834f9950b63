"""Batched, per-example image augmentation on tensors, on whatever device the batch lives on.

Every function takes a batch ``x`` of RGB images in ``[0, 1]`` with shape ``(N, 3, H, W)`` and one
strength per example (a tensor of shape ``(N,)``), so fixed-config training (all rows equal) and a
best-response method (rows differ) share one code path, as in :mod:`hpobench_stn.nn.regularizers`. Work
is vectorised over the batch: no Python loop over images. Random draws come from torch's default
generator on ``x``'s device (seeded by :meth:`hpobench_stn.Task.noise_scope`). Every function is the
exact identity at zero strength (range 0, factor 1, shift 0, length 0 or holes 0), also per row.

Colour jitter follows ``torchvision.transforms.ColorJitter`` (tensor semantics): for a range ``r`` the
brightness, contrast and saturation factors are drawn uniformly from ``[max(0, 1 - r), 1 + r]`` and
the hue shift from ``[-r, r]`` (``r <= 0.5``), independently per example. The single operations
(:func:`adjust_brightness`, :func:`adjust_contrast`, :func:`adjust_saturation`, :func:`adjust_hue`)
match torchvision's functions. :func:`color_jitter` differs in three documented ways, which make it one
batched matrix product per batch instead of a dozen passes: the operations run in a fixed order
(brightness, contrast, saturation, hue) rather than a random order per image; they are composed into
one affine colour map with a single clamp at the end; and hue is a rotation in YIQ space (linear,
exact at 0, grey-preserving) rather than HSV.

Cutout follows DeVries & Taylor (2017): each hole's centre is uniform over the image's pixels and the
square is clipped at the border, so a hole near the border masks fewer than ``length²`` pixels and
holes may overlap. The square is exactly ``length`` pixels on a side (rows ``cy - length // 2`` to
``cy - length // 2 + length - 1``); the reference code's odd lengths mask ``length - 1``.
"""

from __future__ import annotations

import torch

from .regularizers import checks_values

__all__ = [
    "GRAY_WEIGHTS",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "color_jitter",
    "color_matrix",
    "cutout",
    "cutout_mask",
    "grayscale",
    "jitter_factors",
]

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601-2 luma, as torchvision's rgb_to_grayscale


def _check(name: str, x: torch.Tensor, v: torch.Tensor) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name}: expected images of shape (N, 3, H, W), got {tuple(x.shape)}")
    if v.shape != (x.shape[0],):
        raise ValueError(f"{name}: expected per-example values of shape ({x.shape[0]},), got {tuple(v.shape)}")


def _rows(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma of each pixel. Shape: x ``(N, 3, H, W)``; output ``(N, 1, H, W)``."""
    r, g, b = x.unbind(dim=1)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b).unsqueeze(1)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    # factor·x + (1 - factor)·other; factor 1 gives x exactly (0·other adds nothing).
    f = _rows(factor, x)
    return (f * x + (1.0 - f) * other).clamp_(0.0, 1.0)


def adjust_brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Multiply example ``n`` by ``factor[n]`` (then clamp to ``[0, 1]``).

    Shape: x ``(N, 3, H, W)``; factor ``(N,)`` >= 0; output like ``x``.
    """
    _check("adjust_brightness", x, factor)
    return (x * _rows(factor, x)).clamp_(0.0, 1.0)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend example ``n`` with its mean grey level by ``factor[n]`` (0: flat grey, 1: unchanged).

    Shape: x ``(N, 3, H, W)``; factor ``(N,)`` >= 0; output like ``x``.
    """
    _check("adjust_contrast", x, factor)
    mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1)
    return _blend(x, mean, factor)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend example ``n`` with its greyscale version by ``factor[n]`` (0: grey, 1: unchanged).

    Shape: x ``(N, 3, H, W)``; factor ``(N,)`` >= 0; output like ``x``.
    """
    _check("adjust_saturation", x, factor)
    return _blend(x, grayscale(x), factor)


def adjust_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of example ``n`` by ``shift[n]`` turns (HSV space, as torchvision's ``adjust_hue``).

    Value and saturation are kept, so grey pixels (saturation 0) are unchanged; rows with shift 0 are
    returned exactly.

    Shape: x ``(N, 3, H, W)`` in ``[0, 1]``; shift ``(N,)`` in ``[-0.5, 0.5]``; output like ``x``.
    """
    _check("adjust_hue", x, shift)
    if checks_values(shift) and bool((shift.abs() > 0.5).any()):
        raise ValueError(f"adjust_hue: shifts must lie in [-0.5, 0.5], got max |shift| {shift.abs().max().item():.4g}")
    r, g, b = x.unbind(dim=1)  # each (N, H, W)
    maxc, argmax = x.max(dim=1)
    minc = x.min(dim=1).values
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    # Hue in turns, by which channel is largest (the standard piecewise formula).
    h = (
        torch.where(
            argmax == 0,
            ((g - b) / safe) % 6.0,
            torch.where(argmax == 1, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
        )
        / 6.0
    )
    h = (h + _rows(shift, x).squeeze(1)) % 1.0
    # Back to RGB: a channel's value is v - delta·clamp(min(k, 4 - k), 0, 1) with k = (n + 6h) mod 6.
    n = torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    k = (n + 6.0 * h.unsqueeze(1)) % 6.0  # (N, 3, H, W)
    out = maxc.unsqueeze(1) - delta.unsqueeze(1) * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)
    keep = (shift == 0).view(-1, 1, 1, 1)
    return torch.where(keep, x, out.clamp_(0.0, 1.0))


def jitter_factors(strength: torch.Tensor) -> torch.Tensor:
    """Per-example factors uniform in ``[max(0, 1 - r), 1 + r]`` (ColorJitter's brightness/contrast/saturation).

    Shape: strength ``(N,)`` >= 0; output ``(N,)``.
    """
    low = (1.0 - strength).clamp(min=0.0)
    high = 1.0 + strength
    return low + (high - low) * torch.rand_like(strength)


# YIQ: luma plus two chroma axes; a hue shift is a rotation of the (I, Q) plane (as NVIDIA DALI does).
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)
# H(θ) = I + (cos θ - 1)·T⁻¹ diag(0, 1, 1) T + sin θ·T⁻¹ [[0,0,0],[0,0,-1],[0,1,0]] T: exactly I at θ = 0.
_HUE_COS = _YIQ_TO_RGB @ torch.diag(torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)) @ _RGB_TO_YIQ
_HUE_SIN = (
    _YIQ_TO_RGB @ torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]], dtype=torch.float64) @ _RGB_TO_YIQ
)


def color_matrix(
    brightness: torch.Tensor, contrast: torch.Tensor, saturation: torch.Tensor, hue_shift: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-example linear colour map of brightness, contrast, saturation and hue, composed.

    Each of the four operations is linear in RGB (contrast up to the image's mean grey level, which
    is an offset), so their composition is one matrix and one offset per example:
    ``x' = M_n·x + c_n·mean_grey(x_n)``. Hue is a rotation in YIQ space by ``2π·hue_shift`` (an
    approximation of torchvision's HSV hue rotation that is linear and exact at 0).

    Shape: factors ``(N,)``; returns ``M`` ``(N, 3, 3)`` and ``c`` ``(N, 3)`` (scaled by the mean grey).
    """
    dtype, device = brightness.dtype, brightness.device
    eye = torch.eye(3, dtype=dtype, device=device)
    w = torch.tensor(GRAY_WEIGHTS, dtype=dtype, device=device)
    theta = 2.0 * torch.pi * hue_shift
    hue = (
        eye
        + (torch.cos(theta) - 1.0).view(-1, 1, 1) * _HUE_COS.to(device, dtype)
        + torch.sin(theta).view(-1, 1, 1) * _HUE_SIN.to(device, dtype)
    )  # (N, 3, 3)
    s = saturation.view(-1, 1, 1)
    sat = s * eye + (1.0 - s) * torch.ones(3, 1, dtype=dtype, device=device) @ w.view(1, 3)  # (N, 3, 3)
    hs = hue @ sat
    b, c = brightness.view(-1, 1, 1), contrast.view(-1, 1, 1)
    matrix = c * b * hs  # brightness then contrast scale the image ...
    offset = ((1.0 - c) * b * hs).sum(dim=2)  # ... and contrast pulls it toward its mean grey (a grey vector)
    return matrix, offset


def color_jitter(
    x: torch.Tensor,
    brightness: torch.Tensor,
    contrast: torch.Tensor,
    saturation: torch.Tensor,
    hue: torch.Tensor,
) -> torch.Tensor:
    """ColorJitter with one range per example, as one fused per-example affine colour map.

    Each example draws its own brightness, contrast and saturation factors and hue shift within its
    own ranges (see the module docstring); the four operations (in that order) are composed into one
    3×3 matrix and offset per example (:func:`color_matrix`) and applied in a single batched matrix
    product, with one clamp to ``[0, 1]`` at the end (torchvision clamps after each operation; the two
    agree whenever no intermediate value leaves ``[0, 1]``). Rows whose four ranges are all 0 are
    returned exactly (their map is exactly the identity).

    Shape:
        x: ``(N, 3, H, W)`` in ``[0, 1]``; brightness, contrast, saturation: ``(N,)`` >= 0;
        hue: ``(N,)`` in ``[0, 0.5]``; output: like ``x``.
    """
    for name, r in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation), ("hue", hue)):
        _check(f"color_jitter({name})", x, r)
        if checks_values(r) and bool((r < 0).any()):
            raise ValueError(f"color_jitter: {name} ranges must be >= 0, got min {r.min().item():.4g}")
    if checks_values(hue) and bool((hue > 0.5).any()):
        raise ValueError(f"color_jitter: hue ranges must be <= 0.5, got max {hue.max().item():.4g}")
    ranges = torch.stack([brightness, contrast, saturation, hue], dim=1).to(device=x.device, dtype=x.dtype)  # (N, 4)
    if checks_values(ranges) and not bool(ranges.any()):
        return x  # nothing to do (a free test on the CPU; on a GPU it would cost a device sync)
    b, c, s = (jitter_factors(ranges[:, i]) for i in range(3))
    shift = (2.0 * torch.rand_like(ranges[:, 3]) - 1.0) * ranges[:, 3]
    matrix, offset = color_matrix(b, c, s, shift)
    n, _, h, w = x.shape
    flat = x.reshape(n, 3, h * w)
    grey_mean = (torch.tensor(GRAY_WEIGHTS, device=x.device, dtype=x.dtype) @ flat.mean(dim=2).t()).view(n, 1)
    out = torch.bmm(matrix, flat)  # (N, 3, H·W); baddbmm is several times slower on CPU for 3×3 blocks
    out.add_((offset * grey_mean).unsqueeze(-1)).clamp_(0.0, 1.0)
    # A row whose ranges are all 0 gets factors exactly 1 and shift exactly 0, so M = I and offset 0:
    # the map returns it bit for bit (inputs in [0, 1]), with no per-row branch.
    return out.view_as(x)


def cutout_mask(
    n: int,
    height: int,
    width: int,
    length: torch.Tensor,
    holes: torch.Tensor,
    *,
    centres: torch.Tensor | None = None,
    max_holes: int | None = None,
) -> torch.Tensor:
    """Boolean mask of the pixels cut out: ``holes[n]`` squares of side ``length[n]`` per example.

    Args:
        n, height, width: batch size and image size.
        length: ``(N,)`` integer side of each example's squares (0: no hole).
        holes: ``(N,)`` integer number of squares per example (0: none).
        centres: optional ``(N, K, 2)`` integer (row, column) centres, for tests; by default
            uniform over the image's pixels, drawn from the default generator on ``length``'s device.
        max_holes: a static upper bound ``K`` on ``holes`` (e.g. the search space's bound); without it
            ``K = max(holes)`` is read from the tensor, a device synchronisation on a GPU.

    Returns:
        ``(N, height, width)`` bool, True where the image is cut. Squares are clipped at the border.
    """
    if length.shape != (n,) or holes.shape != (n,):
        raise ValueError(
            f"cutout: expected length and holes of shape ({n},), got {tuple(length.shape)}, {tuple(holes.shape)}"
        )
    if checks_values(length) and bool(((length < 0) | (holes < 0)).any()):
        raise ValueError("cutout: length and holes must be >= 0")
    device = length.device
    length, holes = length.long(), holes.long().to(device)
    if max_holes is None:
        max_holes = int(holes.max().item()) if n else 0
    if max_holes == 0:
        return torch.zeros((n, height, width), dtype=torch.bool, device=device)
    if centres is None:
        u = torch.rand((n, max_holes, 2), device=device)
        size = torch.tensor([height, width], device=device)
        centres = (u * size).long().clamp_max(size - 1)
    elif centres.shape != (n, max_holes, 2):
        raise ValueError(f"cutout: expected centres of shape ({n}, {max_holes}, 2), got {tuple(centres.shape)}")
    centres = centres.to(device).long()
    start = centres - (length // 2).view(-1, 1, 1)  # (N, K, 2) top-left corner, may lie outside
    stop = start + length.view(-1, 1, 1)
    active = torch.arange(max_holes, device=device).view(1, -1) < holes.view(-1, 1)  # (N, K)
    rows = torch.arange(height, device=device).view(1, 1, -1)
    cols = torch.arange(width, device=device).view(1, 1, -1)
    in_rows = (rows >= start[..., 0:1]) & (rows < stop[..., 0:1]) & active.unsqueeze(-1)  # (N, K, H)
    in_cols = (cols >= start[..., 1:2]) & (cols < stop[..., 1:2])  # (N, K, W)
    return (in_rows.unsqueeze(-1) & in_cols.unsqueeze(-2)).any(dim=1)  # (N, H, W)


def cutout(
    x: torch.Tensor,
    length: torch.Tensor,
    holes: torch.Tensor,
    fill: torch.Tensor | float = 0.0,
    *,
    centres: torch.Tensor | None = None,
    max_holes: int | None = None,
) -> torch.Tensor:
    """Cut ``holes[n]`` squares of side ``length[n]`` out of example ``n``, setting them to ``fill``.

    ``fill`` may be a per-channel ``(C,)`` tensor: filling with the dataset mean makes the holes zero
    after normalisation, as cutout applied to normalised images does in the reference code.

    ``max_holes`` is passed to :func:`cutout_mask` (a static bound avoids a device synchronisation).

    Shape: x ``(N, C, H, W)``; length, holes ``(N,)`` integers; output like ``x``.
    """
    if x.dim() != 4:
        raise ValueError(f"cutout: expected images of shape (N, C, H, W), got {tuple(x.shape)}")
    n, c, h, w = x.shape
    if checks_values(length) and not bool(((length > 0) & (holes > 0)).any()):
        return x  # cheaper than building the (N, H, W) mask; on a GPU the test would cost a sync
    mask = cutout_mask(n, h, w, length.to(x.device), holes.to(x.device), centres=centres, max_holes=max_holes)
    value = torch.as_tensor(fill, device=x.device, dtype=x.dtype)
    value = value.view(1, c, 1, 1) if value.dim() == 1 else value
    return torch.where(mask.unsqueeze(1), value, x)
