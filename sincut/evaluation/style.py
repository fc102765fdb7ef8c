"""Style distance: a multi-scale sliced Wasserstein distance (SWD) between the 7x7 RGB patch
distributions of OUTPUT and TARGET, level by level of a Laplacian pyramid (as in Karras et al.,
"Progressive Growing of GANs", 2018, with the choices below fixed so the number is repeatable):

- Images in [0, 1]. Gaussian levels by `kornia.geometry.transform.pyrdown` (5x5 binomial blur, then
  half size, rounded down); band k = Gaussian level k minus level k+1 expanded back bilinearly; the
  last level is the low-pass Gaussian itself (it carries the colours). Levels go down while the
  smaller side of the smallest image involved is still >= 16 px, so OUTPUT and TARGET get the same
  number of levels even when their sizes differ.
- Per level, 4,096 patch centres per image set (spread evenly over its images; all positions when an
  image has fewer), drawn from a seeded generator, so identical inputs give identical samples.
- Normalisation is joint: per level and colour channel, the mean and standard deviation of the two
  sets together are subtracted and divided out. A per-image normalisation would hide exactly the
  colour and contrast differences a style distance should see.
- 512 random unit directions in the 147-d patch space (seeded). SWD of two equal-size sets = mean over
  directions of mean |sorted(a . p) - sorted(b . p)| (the L1 form: a Wasserstein-1 estimate). Sets of
  unequal size are cut to the smaller one by a seeded shuffle.

Everything runs on the CPU in float32 (SSIM and edges in float64), so a repeated call agrees exactly
and a GPU run reports the same numbers as `sincut eval` on its saved images (up to 8-bit rounding).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from kornia.geometry.transform import pyrdown
from torch import Tensor

from .content import SSIM_WINDOW
from .swd import PATCH, equal_size, random_projections, seeded_generator, sliced_wasserstein, to_unit_range


SMALLEST_LEVEL = 16        # px: the pyramid stops before the smaller side drops below this
SAMPLES_PER_LEVEL = 4096   # patch centres per level per image set
MIN_SIDE = max(SMALLEST_LEVEL, SSIM_WINDOW)


def pyramid_levels(min_side: int) -> int:
    """How many levels a pyramid gets when the smallest image involved has this smaller side."""
    if min_side < MIN_SIDE:
        raise ValueError(f"images need at least {MIN_SIDE} px on each side, got {min_side}")
    return int(math.floor(math.log2(min_side / SMALLEST_LEVEL))) + 1


def laplacian_pyramid(image: Tensor, levels: int) -> list[Tensor]:
    """[1, 3, H, W] in [0, 1] -> `levels` tensors [3, h, w]: band-pass levels, then the low-pass rest."""
    gaussians = [image]
    for _ in range(levels - 1):
        gaussians.append(pyrdown(gaussians[-1]))
    bands = [g - F.interpolate(g_next, size=g.shape[-2:], mode="bilinear", align_corners=False)
             for g, g_next in zip(gaussians, gaussians[1:])]
    return [b[0] for b in bands + [gaussians[-1]]]


def patch_descriptors(level: Tensor, count: int, gen: torch.Generator) -> Tensor:
    """`count` (or all, if fewer) 7x7 neighbourhoods of a [3, h, w] level as rows [n, 3, 49]."""
    _, h, w = level.shape
    r = PATCH // 2
    valid_h, valid_w = h - 2 * r, w - 2 * r
    total = valid_h * valid_w
    idx = torch.arange(total) if total <= count else torch.randperm(total, generator=gen)[:count]
    ys, xs = idx // valid_w + r, idx % valid_w + r
    offsets = torch.arange(-r, r + 1)
    rows = ys[:, None, None] + offsets[None, :, None]
    cols = xs[:, None, None] + offsets[None, None, :]
    patches = level[:, rows, cols]  # [3, n, 7, 7]
    return patches.permute(1, 0, 2, 3).reshape(len(idx), 3, PATCH * PATCH)


def collect_descriptors(images: Sequence[Tensor], levels: int) -> list[Tensor]:
    """Per level, the patch descriptors of a set of [1, 3, H, W] images in [0, 1], pooled.

    Positions depend only on (image index, level, image size), so two identical sets sample alike.
    """
    per_image = math.ceil(SAMPLES_PER_LEVEL / len(images))
    pooled: list[list[Tensor]] = [[] for _ in range(levels)]
    for i, image in enumerate(images):
        add_descriptors(pooled, image, levels, per_image, i)
    return [torch.cat(p) for p in pooled]


def add_descriptors(pooled: list[list[Tensor]], image: Tensor, levels: int, per_image: int, index: int) -> None:
    """Append one image's descriptors to `pooled` (one list per level); lets folders stream."""
    for k, level in enumerate(laplacian_pyramid(image, levels)):
        pooled[k].append(patch_descriptors(level, per_image, seeded_generator(index, k)))


def style_distance_levels(a_levels: Sequence[Tensor], b_levels: Sequence[Tensor]) -> list[float]:
    """SWD per level between two pooled descriptor sets (from `collect_descriptors`)."""
    distances = []
    for k, (a, b) in enumerate(zip(a_levels, b_levels, strict=True)):
        a, b = equal_size(a, b, k)
        both = torch.cat([a, b])
        mean = both.mean(dim=(0, 2), keepdim=True)
        std = both.std(dim=(0, 2), keepdim=True).clamp_min(1e-8)
        a, b = ((a - mean) / std).flatten(1), ((b - mean) / std).flatten(1)
        distances.append(sliced_wasserstein(a, b, random_projections(a.shape[1])))
    return distances


def style_distance(outputs: Sequence[Tensor], targets: Sequence[Tensor]) -> list[float]:
    """Per-level SWD between two sets of [1, 3, H, W] images in [-1, 1] (one image each is a set)."""
    outputs = [to_unit_range(t) for t in outputs]
    targets = [to_unit_range(t) for t in targets]
    levels = pyramid_levels(min(min(t.shape[-2:]) for t in [*outputs, *targets]))
    return style_distance_levels(collect_descriptors(outputs, levels), collect_descriptors(targets, levels))
