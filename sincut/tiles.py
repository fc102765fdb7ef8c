"""Tiling geometry for translating images larger than one forward pass (no torch here, so the CLI
can show the defaults without loading it).

Along each axis an image is cut into tiles. A tile keeps an output region and reads CONTEXT more
pixels of input on each side, which covers the generator's receptive field, so every kept pixel is
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
# Images of up to DEFAULT_TILE x DEFAULT_TILE pixels go through the generator in one pass; larger ones in
# tiles of at most that size. One 896x896 pass of the default (ngf=10) generator needs about 1.16 GiB of
# activations on a CPU (docs/large-images-and-resume.md), and 1024x768 still goes in one pass.
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
    """Cut one axis of `length` pixels into tiles that each read at most about `tile` pixels.

    Tiles are spread evenly and start on a multiple of the generator's stride, so their downsampling
    grid is the whole image's. Each reads CONTEXT pixels beyond what it keeps (except at the image's
    edges; a generator that reaches farther passes its own `context`). Neighbouring kept regions are
    trimmed to overlap by min(overlap, BLEND) pixels around the middle of their common part; trimmed
    pixels are valid output that is simply not used.
    """
    if length <= tile:
        return [Span(0, length, 0, length)]
    keep = (tile - 2 * context) // stride * stride
    if keep < 3 * BLEND:
        raise ValueError(f"tile {tile} is too small: it must be at least {min_tile(context)}")
    count = math.ceil((length - BLEND) / (keep - BLEND))
    starts = [(k * (length - keep) // (count - 1)) // stride * stride for k in range(count)]
    ends = [s + keep for s in starts[:-1]] + [length]
    reads = [(max(0, s - context), min(length, e + context)) for s, e in zip(starts, ends)]
    fades = []
    for k in range(count - 1):
        overlap = ends[k] - starts[k + 1]
        fade = min(overlap, BLEND)
        cut = starts[k + 1] + (overlap - fade) // 2
        starts[k + 1], ends[k] = cut, cut + fade
        fades.append(fade)
    return [Span(*reads[k], starts[k], ends[k], fade_in=fades[k - 1] if k > 0 else 0,
                 fade_out=fades[k] if k + 1 < count else 0)
            for k in range(count)]
