"""Tiling geometry for translating images larger than one forward pass (no torch here, so the CLI
can show the defaults without loading it).

Along each axis an image is cut into tiles of one length. A tile keeps an output region and reads
`context` more pixels of input on each inner side, which covers the generator's receptive field, and
its noise is cropped from one image-wide map, so every kept pixel is computed exactly as in the whole
image. Kept regions therefore simply abut: no overlap, no cross-fade.
"""

from __future__ import annotations

from dataclasses import dataclass

# Pixels of input read beyond each side of a tile's kept region, for a generator that does not state its
# receptive radius (Generator.receptive_radius; the default G's is 30 px, measured with an impulse in
# tests/test_translate.py); 32 is the next multiple of its stride.
CONTEXT = 32
# The downsampling factor of the generators sincut builds (n_downsampling=1); MIN_TILE assumes it.
STRIDE = 2
# The side of training's evaluation images (training.loop.EVAL_SOURCE_PIXELS = its square; 1024x768 stays whole).
# Translation tiles are sized by a memory budget instead (budget.py, `sincut translate --max-memory`).
DEFAULT_TILE = 896


def min_tile(context: int = CONTEXT, stride: int = STRIDE) -> int:
    """The smallest tile: it reads `context` pixels on both sides and keeps one stride between them (tiles
    start on the stride grid, so an inner tile keeps a multiple of it). Tiles this small spend almost all
    of a pass on context; the budget normally gives far larger ones."""
    return 2 * context + stride


MIN_TILE = min_tile()  # 66 px, the CLI's floor; Translator checks min_tile(its context, its stride) per model


@dataclass(frozen=True)
class Span:
    """One tile along one axis: the input it reads and the output it keeps."""

    read_start: int
    read_end: int
    keep_start: int
    keep_end: int


def plan_spans(length: int, tile: int, stride: int, context: int = CONTEXT) -> list[Span]:
    """Cut one axis of `length` pixels into the fewest tiles that each read at most `tile` pixels.

    Every tile reads the same length R (a multiple of the stride; the last one reads R less the
    padding that takes `length` to a multiple of the stride, which pad_to_stride adds back), so all
    tiles of a grid have one shape and can share a forward pass, and no edge tile is a sliver. Tiles
    start on a multiple of the stride, so their downsampling grid is the whole image's. An inner side
    reads `context` pixels (a multiple of the stride) beyond what it keeps; an edge tile keeps up to the
    image's edge. n tiles of R keep n R - 2 (n - 1) context pixels, so n is the smallest count whose
    largest R covers the axis, and R the smallest that then does. Each kept region ends where the next
    tile's context ends; it lies inside its own tile's valid output because starts step by at most
    R - 2 context.
    """
    if length <= tile:
        return [Span(0, length, 0, length)]
    tile = tile // stride * stride
    if tile < min_tile(context, stride):
        raise ValueError(f"tile {tile} is too small: it must be at least {min_tile(context, stride)}")
    padded = length + (-length) % stride
    count = -(-(padded - 2 * context) // (tile - 2 * context))
    read = -(-(padded + 2 * (count - 1) * context) // count)
    read = -(-read // stride) * stride
    steps = (padded - read) // stride
    starts = [k * steps // (count - 1) * stride for k in range(count)]
    keep_starts = [0] + [s + context for s in starts[1:]]
    keep_ends = keep_starts[1:] + [length]
    return [Span(starts[k], min(length, starts[k] + read), keep_starts[k], keep_ends[k]) for k in range(count)]
