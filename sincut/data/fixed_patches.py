"""The patch sampler in fixed shapes, with no host-device synchronisation: what a CUDA step (and a captured
CUDA graph) samples with.

`PatchSampler.sample` sizes its work from the batch it drew: it groups patches by pyramid level
(`torch.unique(...).tolist()`, `nonzero()`) and cuts windows as large as the batch needs (`.tolist()`,
`.item()`), so the host reads values back from the device several times a step. Here every size is fixed
on the host once, from the zoom range: each patch reads a window of the same size from its own level of the
pyramid (one gather from the buffer that holds every level, indexed by a per-patch level number; no Python
branch on a tensor value), and a bilinear resample of that window gives the patch. The draws are the same
calls on the same generator as `PatchSampler.sample`, so a seed gives the same positions, zooms and flips.

Patches agree with `PatchSampler.sample`'s within float32 rounding, not bitwise: Kornia's `crop_and_resize`
solves a homography for each box and normalises coordinates by the window's size (which there depends on
the batch), so its sampling positions carry a few ulps of rounding that the direct position
left + j * (right - left) / (crop - 1) used here does not; values differ by about 1e-6 of their range.

Cost: the float32 pyramid path gathers one window per patch as before (its size is the largest any level
can need, about crop x sqrt(2) + 3 px a side, instead of the largest this batch needs). The uint8 path
(images whose float pyramid would exceed PYRAMID_FLOAT_BUDGET) blurs a native window per patch that is as
large as the coarsest level needs, with each patch's own Gaussian (a grouped convolution), where
`PatchSampler` sized each level's windows to that level: a few times more blur work per step, milliseconds
on a GPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from kornia.filters import get_gaussian_kernel1d
from kornia.geometry.transform import hflip
from torch import Tensor

from .patches import LEVELS_PER_OCTAVE, PatchSampler, SingleImagePair, _lerp_cols, _lerp_rows

# A level is chosen for zooms down to its scale / sqrt(2) (PatchSampler._level_index); the paper's positions
# round the zoomed size to whole pixels, which may take a zoom half a pixel below that: this much headroom.
_ZOOM_SLACK = 1e-3


class FixedPatches:
    """`PatchSampler.sample` as fixed-shape device work: `sample(n, generator, zoom_scale, out=)` draws the
    same random numbers in the same order and returns (or writes into `out`) [n, 3, crop, crop] patches."""

    def __init__(self, sampler: PatchSampler, coarsest: float | None = None) -> None:
        s = self.sampler = sampler
        self.crop_size = c = s.crop_size
        dev = s.flat.device
        levels = len(s.scales)
        smallest = min(s.zoom[0], coarsest) if coarsest else s.zoom[0]
        # Per axis: each level's size, level pixels per native pixel (float32, as PatchSampler's Python
        # double multiplies a float32 tensor), and its first pixel in the flat buffer (levels are row-major
        # in (iy, ix)).
        widths = [s.level_sizes[(0, i)][1] for i in range(levels)]
        heights = [s.level_sizes[(i, 0)][0] for i in range(levels)]
        self.level_w = torch.tensor(widths, device=dev)
        self.level_h = torch.tensor(heights, device=dev)
        self.sx = torch.tensor([w / s.width for w in widths], device=dev, dtype=torch.float32)
        self.sy = torch.tensor([h / s.height for h in heights], device=dev, dtype=torch.float32)
        self.offsets = torch.tensor([s.offsets.get((iy, ix), 0) for iy in range(levels) for ix in range(levels)],
                                    device=dev)
        self.levels = levels
        self.uint8 = s.storage == torch.uint8
        # The largest window any patch can need, per axis: a box spans crop x (level scale / zoom) level px,
        # at most crop x sqrt(2) (or x scale / smallest zoom on the coarsest level), plus its bilinear taps.
        self.win_w = _window(c, widths, s.width, s.scales, smallest)
        self.win_h = _window(c, heights, s.height, s.scales, smallest)
        self.col = torch.arange(self.win_w, device=dev)
        self.row = torch.arange(self.win_h, device=dev)
        self.step = torch.arange(c, device=dev, dtype=torch.float32)
        if self.uint8:
            self._uint8_tables(dev, widths, heights)

    def _uint8_tables(self, dev: torch.device, widths: list[int], heights: list[int]) -> None:
        """Without a stored pyramid: each level's native-per-level factor, its Gaussian (kornia's, as
        `PatchSampler._level_windows` and kornia's antialiased rescale build it) zero-padded to the widest
        kernel, and the native window a level window needs at most."""
        s = self.sampler
        kernels_x, kernels_y, self.fw, self.fh = [], [], [], []
        for axis, sizes, native, kernels, factors in (("x", widths, s.width, kernels_x, self.fw),
                                                       ("y", heights, s.height, kernels_y, self.fh)):
            for size in sizes:
                factor = native / size
                sigma = max((factor - 1.0) / 2.0, 0.001)
                ks = 1 if native == 1 else int(max(4.0 * sigma, 3)) | 1
                kernels.append(get_gaussian_kernel1d(ks, sigma, device=dev)[0] if ks > 1 else torch.ones(1, device=dev))
                factors.append(factor)
        self.ks = max(k.numel() for k in kernels_x + kernels_y)
        pad = lambda k: F.pad(k, ((self.ks - k.numel()) // 2,) * 2)  # noqa: E731
        self.kernel_x = torch.stack([pad(k) for k in kernels_x])  # [levels, ks]
        self.kernel_y = torch.stack([pad(k) for k in kernels_y])
        self.margin = self.ks // 2 + 2
        self.span_w = min(s.width, math.ceil(self.win_w * max(self.fw)) + 2 + 2 * self.margin)
        self.span_h = min(s.height, math.ceil(self.win_h * max(self.fh)) + 2 + 2 * self.margin)
        self.fw_t = torch.tensor(self.fw, device=dev, dtype=torch.float32)
        self.fh_t = torch.tensor(self.fh, device=dev, dtype=torch.float32)

    def sample(self, batch_size: int, generator: torch.Generator | None = None, zoom_scale: float = 1.0,
               out: Tensor | None = None) -> Tensor:
        """[batch_size, 3, crop, crop] patches, float32 in [-1, 1], on the image's device; into `out` if given."""
        s, c = self.sampler, self.crop_size
        dev = s.flat.device
        zoom = (s.zoom[0] * zoom_scale, s.zoom[1] * zoom_scale)
        draw = s._grid_cells if s.positions == "paper" else s._stratified
        x0, y0, region_w, region_h = draw(batch_size, generator, dev, zoom)
        ix, iy = s._level_index(c / region_w), s._level_index(c / region_h)
        sx, sy = self.sx[ix], self.sy[iy]
        # Native-pixel edges -> level pixel centres, as PatchSampler.sample (inclusive corner pixels).
        left, right = x0 * sx, (x0 + region_w) * sx - 1.0
        top, bottom = y0 * sy, (y0 + region_h) * sy - 1.0
        lw, lh = self.level_w[ix], self.level_h[iy]
        wx0 = torch.minimum(left.floor().long().clamp(min=0), lw - self.win_w).clamp(min=0)
        wy0 = torch.minimum(top.floor().long().clamp(min=0), lh - self.win_h).clamp(min=0)
        if self.uint8:
            windows = self._computed_windows(ix, iy, wx0, wy0)
        else:
            cols = torch.minimum(wx0[:, None] + self.col, lw[:, None] - 1)  # [n, win_w]
            rows = torch.minimum(wy0[:, None] + self.row, lh[:, None] - 1)  # [n, win_h]
            index = self.offsets[iy * self.levels + ix][:, None, None] + rows[:, :, None] * lw[:, None, None] \
                + cols[:, None, :]
            windows = s.flat[:, index].transpose(0, 1)  # [n, 3, win_h, win_w]
        # Output pixel j samples left + j (right - left) / (crop - 1): kornia's crop_and_resize positions.
        xs = left[:, None] + self.step * ((right - left) / (c - 1))[:, None] - wx0[:, None]
        ys = top[:, None] + self.step * ((bottom - top) / (c - 1))[:, None] - wy0[:, None]
        patches = _lerp_rows(_lerp_cols(windows, xs), ys)
        if s.flip:
            flipped = torch.rand(batch_size, generator=generator, device=dev) < 0.5
            patches = torch.where(flipped.view(-1, 1, 1, 1), hflip(patches), patches)
        if out is None:
            return patches.contiguous()
        return out.copy_(patches)

    def _computed_windows(self, ix: Tensor, iy: Tensor, wx0: Tensor, wy0: Tensor) -> Tensor:
        """The level windows from the 8-bit image (PatchSampler._level_windows in fixed shapes): each patch
        blurs a native window with its level's Gaussian, then samples it where that level's pixels lie
        (native (j + 0.5) x factor - 0.5)."""
        s, n = self.sampler, ix.shape[0]
        fw, fh = self.fw_t[ix][:, None], self.fh_t[iy][:, None]
        u = (wx0[:, None] + self.col + 0.5) * fw - 0.5  # [n, win_w] native columns of the level pixels
        v = (wy0[:, None] + self.row + 0.5) * fh - 0.5
        nx0 = torch.minimum((u[:, 0].floor().long() - self.margin).clamp(min=0),
                            torch.full_like(wx0, s.width - self.span_w))
        ny0 = torch.minimum((v[:, 0].floor().long() - self.margin).clamp(min=0),
                            torch.full_like(wy0, s.height - self.span_h))
        cols = nx0[:, None] + torch.arange(self.span_w, device=ix.device)
        rows = ny0[:, None] + torch.arange(self.span_h, device=ix.device)
        native = s.flat.view(3, s.height, s.width)[:, rows[:, :, None], cols[:, None, :]].transpose(0, 1)
        native = native.float().div_(127.5).sub_(1.0)  # [n, 3, span_h, span_w]
        p = self.ks // 2
        blurred = F.pad(native.reshape(1, 3 * n, self.span_h, self.span_w), (p, p, p, p), mode="reflect")
        kx = self.kernel_x[ix].repeat_interleave(3, dim=0).view(3 * n, 1, 1, self.ks)
        ky = self.kernel_y[iy].repeat_interleave(3, dim=0).view(3 * n, 1, self.ks, 1)
        blurred = F.conv2d(F.conv2d(blurred, kx, groups=3 * n), ky, groups=3 * n)
        blurred = blurred.view(n, 3, self.span_h, self.span_w)
        return _lerp_rows(_lerp_cols(blurred, u - nx0[:, None]), v - ny0[:, None]).contiguous()


def _window(crop: int, sizes: list[int], native: int, scales: list[float], smallest: float) -> int:
    """Window size along one axis that holds every box's bilinear taps on any level: a box on level i spans
    crop x (level px per native px) / zoom px, the zoom being at least scales[i + 1] there (on the coarsest
    level the smallest zoom, less the paper's rounding to whole pixels), and at least crop / native (a
    region never exceeds the image)."""
    largest = 2
    for i, size in enumerate(sizes):
        lowest = scales[i + 1] if i + 1 < len(scales) else smallest - 0.5 / native
        lowest = max(lowest, crop / native) * (1 - _ZOOM_SLACK)
        largest = max(largest, min(size, math.ceil(crop * size / native / lowest) + 3))
    return largest


class FixedPatchPair:
    """SingleImagePair's `sample` in fixed shapes: a FixedPatches on each of SOURCE and TARGET, the same draws
    in the same order; `sample(step, rng, coarse, out=(src, tgt))` writes into static buffers."""

    def __init__(self, pair: SingleImagePair) -> None:
        self.pair = pair
        coarsest = pair.source_patches.zoom[0] * pair.coarse_zoom if pair.coarse_zoom < 1 else None
        self.source = FixedPatches(pair.source_patches, coarsest)
        self.target = FixedPatches(pair.target_patches, coarsest)

    def sample(self, step: int, rng: torch.Generator, coarse: bool = False,
               out: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        scale = self.pair.coarse_zoom if coarse else 1.0
        n = self.pair.batch_size
        return (self.source.sample(n, rng, scale, None if out is None else out[0]),
                self.target.sample(n, rng, scale, None if out is None else out[1]))


__all__ = ["FixedPatches", "FixedPatchPair", "LEVELS_PER_OCTAVE"]
