"""Tiling geometry for translating images larger than one forward pass (no torch here, so the CLI
can show the defaults without loading it).

Along each axis an image is cut into tiles of one length. A tile keeps an output region and reads
CONTEXT more pixels of input on each inner side, which covers the generator's receptive field, so every kept pixel is
computed exactly as in the whole image. Neighbouring kept regions overlap and cross-fade with a
raised-cosine window, so even a model with a larger receptive field would show no seam.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Pixels of input read beyond each side of a tile's kept region. The generator's receptive radius is
# 30 px (tests/test_translate.py measures it with an impulse); 32 is the next multiple of its stride.
CONTEXT = 32
# Nominal width of the cross-fade between neighbouring tiles' kept regions.
BLEND = 32
# The side of training's evaluation images (train.EVAL_SOURCE_PIXELS = its square; 1024x768 stays whole).
# Translation tiles are sized by a memory budget instead (budget.py, `sincut translate --max-memory`).
DEFAULT_TILE = 896


def min_tile(context: int = CONTEXT) -> int:
    """The smallest tile that reads `context` pixels on both sides and keeps room for a full cross-fade
    at both ends of its kept region, so no pixel sees three tiles."""
    return 2 * context + 3 * BLEND


MIN_TILE = min_tile()  # for a plain G; one that reaches farther (--guide-radius) needs min_tile(its context)


@dataclass(frozen=True)
class Span:
    """One tile along one axis: the input it reads and the output it keeps, with cross-fade widths."""

    read_start: int
    read_end: int
    keep_start: int
    keep_end: int
    fade_in: int = 0
    fade_out: int = 0

    def weights(self) -> np.ndarray:
        """Blend weight over the kept region: 1, with raised-cosine ramps where a neighbour overlaps.

        Ramps are sampled at pixel centres, so they are > 0 everywhere, and a fade-out and the next
        tile's fade-in over the same pixels are cos^2 and sin^2 of one angle: they sum to 1.
        """
        w = np.ones(self.keep_end - self.keep_start, dtype=np.float32)
        if self.fade_in:
            t = (np.arange(self.fade_in) + 0.5) / self.fade_in
            w[: self.fade_in] *= np.sin(t * math.pi / 2) ** 2
        if self.fade_out:
            t = (np.arange(self.fade_out) + 0.5) / self.fade_out
            w[-self.fade_out:] *= np.cos(t * math.pi / 2) ** 2
        return w


def plan_spans(length: int, tile: int, stride: int, context: int = CONTEXT) -> list[Span]:
    """Cut one axis of `length` pixels into the fewest tiles that each read at most `tile` pixels.

    Every tile reads the same length R (a multiple of the stride; the last one reads R less the
    padding that takes `length` to a multiple of the stride, which pad_to_stride adds back), so all
    tiles of a grid have one shape and can share a forward pass, and no edge tile is a sliver. Tiles
    start on a multiple of the stride, so their downsampling grid is the whole image's. An inner side
    reads `context` pixels beyond what it keeps (CONTEXT: the plain G's reach; a G that reaches farther
    passes its own); an edge tile keeps up to the image's edge. Neighbouring kept regions are trimmed to
    overlap by BLEND pixels around the middle of their common part; trimmed pixels are valid output
    that is simply not used. R is the smallest length with which the tiles still overlap by BLEND.
    """
    if length <= tile:
        return [Span(0, length, 0, length)]
    tile = tile // stride * stride
    if tile < min_tile(context):
        raise ValueError(f"tile {tile} is too small: it must be at least {min_tile(context)}")
    padded = length + (-length) % stride
    per_extra_tile = 2 * context + BLEND  # what each further tile adds to the summed reads
    smallest = -(-min_tile(context) // stride) * stride  # an inner tile keeps room for two fades
    count = 2
    while True:
        read = -(-(padded + (count - 1) * per_extra_tile) // count)
        read = max(smallest, -(-read // stride) * stride)
        if read <= tile:
            break
        count += 1
    starts = [k * ((padded - read) // stride) // (count - 1) * stride for k in range(count)]
    keep_starts = [0] + [s + context for s in starts[1:]]
    keep_ends = [s + read - context for s in starts[:-1]] + [length]
    fades = []
    for k in range(count - 1):
        overlap = keep_ends[k] - keep_starts[k + 1]
        fade = min(overlap, BLEND)
        cut = keep_starts[k + 1] + (overlap - fade) // 2
        keep_starts[k + 1], keep_ends[k] = cut, cut + fade
        fades.append(fade)
    return [Span(starts[k], min(length, starts[k] + read), keep_starts[k], keep_ends[k],
                 fade_in=fades[k - 1] if k > 0 else 0, fade_out=fades[k] if k + 1 < count else 0)
            for k in range(count)]
