"""Texture distance: a sliced Wasserstein distance between the 7x7 patches of the two images' high-passed
luminance at one fixed scale. It asks "are the brush strokes / grain alike?" with colour and global
contrast taken out (SIFID at 256 px and the low-pass style levels mostly see the palette):

- Each image ([0, 1], Rec. 601 luminance Y) is resized (bilinear, antialiased) to 512 px on its
  shorter side, so the figure does not depend on the resolution the translation was evaluated at.
- High-pass: Y minus its Gaussian blur (sigma 2 px, 13 taps, reflected borders), then divided by its
  own standard deviation, so an affine change of brightness or contrast leaves the figure unchanged.
- 32,768 patch centres per image set (valid positions only, spread evenly over the images), drawn
  from a generator seeded by (image index, image size); sets cut to equal size by a seeded shuffle.
- 256 seeded unit directions in the 49-d patch space; the same L1 form of SWD as the style distance.

This is an evaluation figure, unlike the training-time patch SWD on 7x7 RGB patches at crop scale:
no colour, and one scale for every image, so runs trained at different sizes compare.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .content import gaussian_window, luminance
from .swd import PATCH, equal_size, random_projections, seeded_generator, sliced_wasserstein, to_unit_range


TEXTURE_SIDE = 512          # px: the shorter side both images are brought to
TEXTURE_SIGMA = 2.0         # px: the Gaussian whose blur the high-pass removes
TEXTURE_SAMPLES = 32768     # patch centres per image set (noise floor: ~0.010, an image against itself elsewhere)
TEXTURE_PROJECTIONS = 256   # random directions in the 49-d patch space


def texture_map(image: Tensor) -> Tensor:
    """[1, 3, H, W] in [-1, 1] -> [h, w] float32: luminance at TEXTURE_SIDE px short side, high-passed
    and divided by its own standard deviation (a flat image, std under 1e-6, gives zeros)."""
    y = luminance(to_unit_range(image)).float()
    h, w = y.shape[-2:]
    scale = TEXTURE_SIDE / min(h, w)
    size = (max(TEXTURE_SIDE, round(h * scale)), max(TEXTURE_SIDE, round(w * scale)))
    if size != (h, w):
        y = F.interpolate(y, size=size, mode="bilinear", align_corners=False, antialias=True)
    return high_pass(y)[0, 0]


def high_pass(y: Tensor) -> Tensor:
    """[1, 1, H, W] -> Y minus its Gaussian blur (reflected borders), over the result's own std."""
    g = gaussian_window(2 * math.ceil(3 * TEXTURE_SIGMA) + 1, TEXTURE_SIGMA).to(y.dtype)
    r = len(g) // 2
    blurred = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), g.view(1, 1, 1, -1))
    blurred = F.conv2d(F.pad(blurred, (0, 0, r, r), mode="reflect"), g.view(1, 1, -1, 1))
    detail = y - blurred
    std = float(detail.std())
    # Below a thousandth of an 8-bit step it is float rounding of a flat image, not texture.
    return detail / std if std > 1e-6 else torch.zeros_like(detail)


def texture_positions(shape: tuple[int, int], count: int, index: int) -> tuple[Tensor, Tensor]:
    """(rows, cols) of `count` patch centres (all, if fewer) of an [h, w] map; seeded by size and index."""
    h, w = shape
    r = PATCH // 2
    valid_h, valid_w = h - 2 * r, w - 2 * r
    total = valid_h * valid_w
    gen = seeded_generator(13, index, h, w)
    idx = torch.arange(total) if total <= count else torch.randperm(total, generator=gen)[:count]
    return idx // valid_w + r, idx % valid_w + r


def texture_patches(detail: Tensor, count: int, index: int = 0) -> Tensor:
    """`count` 7x7 patches of an [h, w] high-pass map as rows [n, 49] (positions: texture_positions)."""
    ys, xs = texture_positions(tuple(detail.shape), count, index)
    r = PATCH // 2
    offsets = torch.arange(-r, r + 1)
    patches = detail[ys[:, None, None] + offsets[None, :, None], xs[:, None, None] + offsets[None, None, :]]
    return patches.reshape(len(ys), PATCH * PATCH)


def texture_descriptors(images: Sequence[Tensor]) -> Tensor:
    """The pooled patch rows of a set of [1, 3, H, W] images in [-1, 1] (one image is a set)."""
    per_image = math.ceil(TEXTURE_SAMPLES / len(images))
    return torch.cat([texture_patches(texture_map(im), per_image, i) for i, im in enumerate(images)])


def texture_distance_of(a: Tensor, b: Tensor) -> float:
    """SWD between two pooled patch sets (texture_descriptors), cut to equal size first."""
    a, b = equal_size(a, b, 1000)
    return sliced_wasserstein(a, b, random_projections(PATCH * PATCH, TEXTURE_PROJECTIONS))


def texture_distance(outputs: Sequence[Tensor], targets: Sequence[Tensor]) -> float:
    """Texture distance (module doc) between two sets of [1, 3, H, W] images in [-1, 1]."""
    return texture_distance_of(texture_descriptors(outputs), texture_descriptors(targets))
