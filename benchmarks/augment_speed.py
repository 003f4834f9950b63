"""Images/s of the batched per-example augmentation versus torchvision's per-image PIL pipeline.

Both pipelines do the same work on the same CIFAR-sized images, in the same process: colour jitter
(brightness 0.4, contrast 0.4, saturation 0.4, hue 0.1) then cutout (one 8×8 hole), from uint8 HWC
images to float CHW tensors in ``[0, 1]``. The batched pipeline is :func:`hpobench_stn.nn.augment.color_jitter`
and :func:`hpobench_stn.nn.augment.cutout` on a ``(N, 3, 32, 32)`` tensor; the reference is
``transforms.ColorJitter`` on each PIL image, ``to_tensor``, and a per-image cutout (DeVries & Taylor).

    python benchmarks/augment_speed.py [--n 2048] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms import functional as TF

from hpobench_stn.nn.augment import color_jitter, cutout

BRIGHTNESS = CONTRAST = SATURATION = 0.4
HUE = 0.1
LENGTH, HOLES = 8, 1


def batched(images: torch.Tensor) -> torch.Tensor:
    n = images.shape[0]

    def full(v: float) -> torch.Tensor:
        return torch.full((n,), v, device=images.device)

    x = images.permute(0, 3, 1, 2).float().div_(255.0)  # (N, 3, 32, 32)
    x = color_jitter(x, full(BRIGHTNESS), full(CONTRAST), full(SATURATION), full(HUE))
    ints = torch.full((n,), LENGTH, device=images.device, dtype=torch.long)
    return cutout(x, ints, torch.full_like(ints, HOLES))


def per_image(images: np.ndarray, rng: np.random.Generator) -> list[torch.Tensor]:
    jitter = transforms.ColorJitter(BRIGHTNESS, CONTRAST, SATURATION, HUE)
    out = []
    for img in images:
        t = TF.to_tensor(jitter(Image.fromarray(img)))  # (3, 32, 32)
        for _ in range(HOLES):  # DeVries & Taylor's Cutout, one image at a time
            cy, cx = rng.integers(32), rng.integers(32)
            y1, y2 = max(cy - LENGTH // 2, 0), min(cy + LENGTH // 2, 32)
            x1, x2 = max(cx - LENGTH // 2, 0), min(cx + LENGTH // 2, 32)
            t[:, y1:y2, x1:x2] = 0.0
        out.append(t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2048, help="images per pipeline run")
    parser.add_argument("--repeats", type=int, default=10, help="best of this many runs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.n, 32, 32, 3), dtype=np.uint8)
    on_device = torch.from_numpy(images).to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    batched(on_device[:64])  # warm-up
    sync()
    fast = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        batched(on_device)
        sync()
        fast.append(time.perf_counter() - t0)
    slow = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        per_image(images, rng)
        slow.append(time.perf_counter() - t0)
    fast_ips, slow_ips = args.n / min(fast), args.n / min(slow)
    print(f"device {device}, {torch.get_num_threads()} thread(s), {args.n} images of 32×32, best of {args.repeats}")
    print(f"batched per-example (hpobench_stn.nn.augment): {fast_ips:12,.0f} images/s")
    print(f"per-image PIL (torchvision ColorJitter + cutout): {slow_ips:8,.0f} images/s")
    print(f"speed-up: {fast_ips / slow_ips:.1f}x (target >= 20x)")


if __name__ == "__main__":
    main()
