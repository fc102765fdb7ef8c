"""Random zoomed patches from one image, sampled in batches on the training device with Kornia.

The image is loaded once and turned into an antialiased anisotropic pyramid: one level per pair of
(vertical, horizontal) scales 2^(-i/2). A patch with zoom (zx, zy) reads from the finest level that
is not coarser than it needs, so the bilinear crop-and-resize that remains shrinks by at most
sqrt(2) along each axis and does not alias. Each step is then a handful of batched
`kornia.geometry.transform.crop_and_resize` calls on small regions: no per-sample PIL work and no
full-image resize per sample.

Memory: a float32 pyramid costs about 6.6 times the float32 image (16 levels for zoom 1/3), 1.9 GB
for a 6000x4000 photo. Above PYRAMID_FLOAT_BUDGET no pyramid is stored: the image is kept as uint8
(the 8-bit precision of the usual source file; 72 MB there) and each patch computes only the small
window of its level that it reads, with the same blur and bilinear resampling that build a stored
level, so both paths give the same patches up to the source's 8-bit rounding.
"""

from __future__ import annotations

import math

import torch
from kornia.filters import gaussian_blur2d
from kornia.geometry.transform import crop_and_resize, hflip, rescale
from torch import Tensor

from .images import as_float

LEVELS_PER_OCTAVE = 2
# Largest float32 pyramid kept as float32; larger ones are stored as uint8 (1/4 of the memory).
PYRAMID_FLOAT_BUDGET = 256 * 2**20


class PatchSampler:
    """Batches of `crop_size` patches of one [1, 3, H, W] image (float32 in [-1, 1], or uint8), with
    random zoom, position and flip; patches are float32 in [-1, 1].

    zoom: (min, max) factors applied independently to width and height, relative to the native size
    (the paper: uniform in [1/3, 1]). A zoom that would make the zoomed image narrower than the crop
    is raised to fit the crop, as the paper's code does; images smaller than the crop are upscaled.

    positions="paper" (the paper's code): each patch independently zooms the image to whole pixels,
    lays a grid of crop-size cells over it at a random offset, and takes one random cell.
    positions="stratified": a batch's patches spread over the image, each in its own cell of a
    jittered g x g grid (g = ceil(sqrt(batch))), at any sub-pixel position.
    """

    POSITIONS = ("paper", "stratified")

    def __init__(self, image: Tensor, crop_size: int = 64, zoom: tuple[float, float] = (1 / 3, 1.0),
                 flip: bool = True, positions: str = "paper", coarsest: float | None = None) -> None:
        if image.dim() != 4 or image.shape[:2] != (1, 3):
            raise ValueError(f"expected a [1, 3, H, W] image, got {tuple(image.shape)}")
        if not 0 < zoom[0] <= zoom[1]:
            raise ValueError(f"zoom range must satisfy 0 < min <= max, got {zoom}")
        if positions not in self.POSITIONS:
            raise ValueError(f"positions must be one of {', '.join(self.POSITIONS)}, got {positions!r}")
        self.positions = positions
        self.crop_size = crop_size
        self.zoom = zoom
        self.flip = flip
        self.height, self.width = image.shape[2], image.shape[3]
        # `coarsest`: the smallest zoom any call will ask for (sample's zoom_scale), if below zoom[0]
        smallest = min(zoom[0], coarsest) if coarsest else zoom[0]
        n_levels = 1 + max(0, math.floor(LEVELS_PER_OCTAVE * math.log2(1.0 / smallest) + 1e-6))
        self.scales = [2.0 ** (-i / LEVELS_PER_OCTAVE) for i in range(n_levels)]
        float_bytes = image.numel() * 4 * sum(self.scales) ** 2
        self.storage = torch.float32 if float_bytes <= PYRAMID_FLOAT_BUDGET else torch.uint8
        self.level_sizes = {(iy, ix): (int(self.height * sy), int(self.width * sx))  # as kornia's rescale
                            for iy, sy in enumerate(self.scales) for ix, sx in enumerate(self.scales)}
        self.levels: dict[tuple[int, int], Tensor] = {}
        # (width, height) on the device once: the draws scale by it without copying host values each call
        self.native_size = torch.tensor([self.width, self.height], device=image.device, dtype=torch.float32)
        if self.storage == torch.uint8:  # only the image itself; levels are computed per patch window
            self.levels[(0, 0)] = self._store(image)
            self.flat, self.offsets = self.levels[(0, 0)][0].reshape(3, -1), {(0, 0): 0}
            return
        # Every level in one [3, sum of level areas] buffer, each level a view into it: a batch's patches
        # can then read their own levels in one gather (data/fixed_patches.py), with no copy of the pyramid.
        image = self._store(image)
        areas = {key: h * w for key, (h, w) in self.level_sizes.items()}
        self.flat = torch.empty(3, sum(areas.values()), device=image.device, dtype=torch.float32)
        self.offsets: dict[tuple[int, int], int] = {}
        start = 0
        for iy, sy in enumerate(self.scales):
            for ix, sx in enumerate(self.scales):
                if iy == 0 and ix == 0:
                    level = image
                else:
                    level = rescale(image, (sy, sx), interpolation="bilinear", antialias=True)
                h, w = self.level_sizes[(iy, ix)]
                view = self.flat[:, start:start + h * w]
                view.copy_(level.reshape(3, h * w))
                self.levels[(iy, ix)] = view.view(1, 3, h, w)
                self.offsets[(iy, ix)] = start
                start += h * w

    def _store(self, image: Tensor) -> Tensor:
        """The image in this sampler's storage: float32 in [-1, 1], or uint8 (a uint8 image as is)."""
        if self.storage == torch.float32:
            return as_float(image)
        if image.dtype == torch.uint8:
            return image.contiguous()
        return image.clamp(-1, 1).add(1.0).mul_(127.5).round_().to(torch.uint8).contiguous()

    def _level_windows(self, key: tuple[int, int], boxes: Tensor) -> tuple[Tensor, Tensor]:
        """Without a stored level: what `_read_windows` would read from level `key`, computed from
        the 8-bit image. Kornia's antialiased rescale blurs the whole image with a Gaussian (reflected
        at the borders) and samples it bilinearly at level pixel j -> native (j + 0.5) * H / h - 0.5;
        here each patch blurs a native window with a margin wider than the kernel (so the window's
        inner edges never reach a kept pixel; at the image's edges both reflect alike) and samples
        the same positions."""
        base = self.levels[(0, 0)]
        if key == (0, 0):
            return self._read_windows(base, boxes)
        (lh, lw), (nh, nw) = self.level_sizes[key], (self.height, self.width)
        factors = (nh / lh, nw / lw)
        sigmas = tuple(max((f - 1.0) / 2.0, 0.001) for f in factors)
        ks = tuple(int(max(4.0 * s, 3)) | 1 for s in sigmas)  # kornia's odd kernel size for that sigma
        ks = (1 if nh == 1 else ks[0], 1 if nw == 1 else ks[1])
        # The level window the boxes need, exactly as `_read_windows` cuts it from a stored level.
        x0, y0, win_w, win_h = _window_corners(boxes, lh, lw)
        dev = boxes.device
        # Native coordinates of those level pixels, and the native window (with margin) that covers them.
        u = (x0[:, None] + torch.arange(win_w, device=dev) + 0.5) * factors[1] - 0.5  # [n, win_w]
        v = (y0[:, None] + torch.arange(win_h, device=dev) + 0.5) * factors[0] - 0.5  # [n, win_h]
        margin_x, margin_y = ks[1] // 2 + 2, ks[0] // 2 + 2
        nx0 = (u[:, 0].floor().long() - margin_x).clamp(min=0)
        ny0 = (v[:, 0].floor().long() - margin_y).clamp(min=0)
        span_w = int(min(nw, (u[:, -1].floor().long() + 2 + margin_x - nx0).max().item()))
        span_h = int(min(nh, (v[:, -1].floor().long() + 2 + margin_y - ny0).max().item()))
        nx0 = torch.minimum(nx0, torch.tensor(nw - span_w, device=dev))
        ny0 = torch.minimum(ny0, torch.tensor(nh - span_h, device=dev))
        cols = nx0[:, None] + torch.arange(span_w, device=dev)
        rows = ny0[:, None] + torch.arange(span_h, device=dev)
        native = base[0][:, rows[:, :, None], cols[:, None, :]].transpose(0, 1).float().div_(127.5).sub_(1.0)
        blurred = gaussian_blur2d(native.contiguous(), ks, sigmas)
        windows = _lerp_rows(_lerp_cols(blurred, u - nx0[:, None]), v - ny0[:, None])
        shift = torch.stack([x0, y0], dim=1).to(boxes.dtype)[:, None, :]
        return windows.contiguous(), boxes - shift

    def _read_windows(self, level: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor]:
        """The part of `level` each box's bilinear taps touch, as a float32 batch of equal-sized
        windows, and the boxes in window coordinates: a patch never reads (or converts) a whole level."""
        x0, y0, win_w, win_h = _window_corners(boxes, level.shape[2], level.shape[3])
        cols = x0[:, None] + torch.arange(win_w, device=x0.device)
        rows = y0[:, None] + torch.arange(win_h, device=x0.device)
        windows = level[0][:, rows[:, :, None], cols[:, None, :]].transpose(0, 1)  # [n, 3, win_h, win_w]
        if windows.dtype == torch.uint8:
            windows = windows.float().div_(127.5).sub_(1.0)
        shift = torch.stack([x0, y0], dim=1).to(boxes.dtype)[:, None, :]
        return windows.contiguous(), boxes - shift

    def _level_index(self, z: Tensor) -> Tensor:
        """Finest pyramid level whose scale is still >= z."""
        i = torch.floor(LEVELS_PER_OCTAVE * torch.log2(1.0 / z.clamp(max=1.0)) + 1e-6).long()
        return i.clamp(0, len(self.scales) - 1)

    def _grid_cells(self, n: int, generator: torch.Generator | None, dev: torch.device,
                    zoom: tuple[float, float] | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The paper's positions: zoomed size max(crop, round(side x zoom)) in whole pixels; a grid of
        floor(side / crop) cells starting at a random offset in [0, side mod crop]; one random cell.
        Returned as the native-pixel left/top corner and size of each patch's region."""
        c = self.crop_size
        lo, hi = zoom or self.zoom
        u = torch.rand(n, 6, generator=generator, device=dev)
        native = self.native_size
        zoomed = torch.round(native * (lo + (hi - lo) * u[:, :2])).clamp(min=c)  # [n, (w, h)]
        cells = torch.floor(zoomed / c)
        room = zoomed - cells * c
        offset = torch.floor(u[:, 2:4] * (room + 1)).clamp(max=room)
        cell = torch.floor(u[:, 4:6] * cells).clamp(max=cells - 1)
        corner = offset + cell * c  # in zoomed pixels
        scale = native / zoomed  # native pixels per zoomed pixel
        region = c * scale
        return corner[:, 0] * scale[:, 0], corner[:, 1] * scale[:, 1], region[:, 0], region[:, 1]

    def _stratified(self, n: int, generator: torch.Generator | None, dev: torch.device,
                    zoom: tuple[float, float] | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """A g x g grid of cells over the free range, one jittered cell per patch."""
        c = self.crop_size
        lo, hi = zoom or self.zoom
        u = torch.rand(n, 4, generator=generator, device=dev)
        zx = (lo + (hi - lo) * u[:, 0]).clamp(min=c / self.width)
        zy = (lo + (hi - lo) * u[:, 1]).clamp(min=c / self.height)
        region_w, region_h = c / zx, c / zy
        g = max(1, math.ceil(math.sqrt(n)))
        cells = torch.randperm(g * g, generator=generator, device=dev)[:n]
        fx = ((cells % g).float() + u[:, 2]) / g
        fy = ((cells // g).float() + u[:, 3]) / g
        x0 = fx * (self.width - region_w).clamp(min=0)
        y0 = fy * (self.height - region_h).clamp(min=0)
        return x0, y0, region_w, region_h

    def sample(self, batch_size: int, generator: torch.Generator | None = None,
               zoom_scale: float = 1.0) -> Tensor:
        """[batch_size, 3, crop, crop] patches in the image's value range, on the image's device.
        `zoom_scale` < 1 zooms every patch out by that factor (coarser views; the pyramid must reach them:
        see `coarsest`)."""
        dev = self.levels[(0, 0)].device
        c = self.crop_size
        zoom = (self.zoom[0] * zoom_scale, self.zoom[1] * zoom_scale)
        if self.positions == "paper":
            x0, y0, region_w, region_h = self._grid_cells(batch_size, generator, dev, zoom)
        else:
            x0, y0, region_w, region_h = self._stratified(batch_size, generator, dev, zoom)
        ix, iy = self._level_index(c / region_w), self._level_index(c / region_h)
        out = torch.empty(batch_size, 3, c, c, device=dev, dtype=torch.float32)
        for key in torch.unique(torch.stack([iy, ix], 1), dim=0).tolist():
            sel = ((iy == key[0]) & (ix == key[1])).nonzero().squeeze(1)
            # Native-pixel edges -> level pixel centres (kornia boxes are inclusive corner pixels).
            level_h, level_w = self.level_sizes[(key[0], key[1])]
            sx, sy = level_w / self.width, level_h / self.height
            left = x0[sel] * sx
            right = (x0[sel] + region_w[sel]) * sx - 1.0
            top = y0[sel] * sy
            bottom = (y0[sel] + region_h[sel]) * sy - 1.0
            boxes = torch.stack([
                torch.stack([left, top], 1), torch.stack([right, top], 1),
                torch.stack([right, bottom], 1), torch.stack([left, bottom], 1),
            ], dim=1)
            if self.storage == torch.uint8:
                windows, boxes = self._level_windows((key[0], key[1]), boxes)
            else:
                windows, boxes = self._read_windows(self.levels[(key[0], key[1])], boxes)
            out[sel] = crop_and_resize(windows, boxes, (c, c))
        if self.flip:
            flipped = torch.rand(batch_size, generator=generator, device=dev) < 0.5
            out = torch.where(flipped.view(-1, 1, 1, 1), hflip(out), out)
        return out


def _window_corners(boxes: Tensor, height: int, width: int) -> tuple[Tensor, Tensor, int, int]:
    """One window size for a batch of boxes (the largest any box's bilinear taps need, the taps at
    floor + 1 included) and each box's window corner, kept inside a height x width level."""
    lo = boxes.amin(dim=1).floor().long().clamp(min=0)  # [n, 2] (x, y)
    hi = torch.minimum(boxes.amax(dim=1).floor().long() + 2, torch.tensor([width, height], device=boxes.device))
    win_w, win_h = (hi - lo).amax(dim=0).tolist()
    x0 = torch.minimum(lo[:, 0], torch.tensor(width - win_w, device=lo.device)).clamp(min=0)
    y0 = torch.minimum(lo[:, 1], torch.tensor(height - win_h, device=lo.device)).clamp(min=0)
    return x0, y0, win_w, win_h


def _lerp_cols(images: Tensor, x: Tensor) -> Tensor:
    """[n, C, H, W] sampled bilinearly along W at per-image positions x [n, k] (pixel centres at
    integers, clamped to the image like torch's interpolate) -> [n, C, H, k]."""
    x = x.clamp(0, images.shape[3] - 1)
    left = x.floor().long().clamp(max=images.shape[3] - 1)
    right = (left + 1).clamp(max=images.shape[3] - 1)
    frac = (x - left).to(images.dtype)[:, None, None, :]
    n, c, h, _ = images.shape
    gather = lambda i: images.gather(3, i[:, None, None, :].expand(n, c, h, -1))  # noqa: E731
    return torch.lerp(gather(left), gather(right), frac)


def _lerp_rows(images: Tensor, y: Tensor) -> Tensor:
    """The same along H: [n, C, H, W] at positions y [n, k] -> [n, C, k, W]."""
    return _lerp_cols(images.transpose(2, 3), y).transpose(2, 3)


def scaled_to_area(image: Tensor, pixels: int) -> Tensor:
    """[1, 3, H, W] resized (antialiased, aspect kept) to about `pixels` pixels, as float32 in [-1, 1]:
    TARGET at SOURCE's size, so a patch at one zoom covers the same share of either picture."""
    h, w = image.shape[-2:]
    scale = (pixels / (h * w)) ** 0.5
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return torch.nn.functional.interpolate(as_float(image), size=size, mode="bilinear", antialias=True,
                                           align_corners=False).clamp_(-1, 1)


class SingleImagePair:
    """The single-image data source: a patch sampler on each of SOURCE and TARGET. The images may be
    uint8 (see `load_image_compact`): a large photo is then held at one byte per value."""

    def __init__(self, source: Tensor, target: Tensor, *, crop_size: int, zoom: tuple[float, float],
                 flip: bool, batch_size: int, positions: str = "paper", coarse_zoom: float = 1.0,
                 match_scale: bool = False) -> None:
        self.source, self.target = source, target
        coarsest = zoom[0] * coarse_zoom if coarse_zoom < 1 else None
        self.source_patches = PatchSampler(source, crop_size, zoom, flip, positions, coarsest)
        sampled = scaled_to_area(target, source.shape[-2] * source.shape[-1]) if match_scale else target
        self.target_patches = PatchSampler(sampled, crop_size, zoom, flip, positions, coarsest)
        self.batch_size = batch_size
        self.coarse_zoom = coarse_zoom  # the zoom scale of the coarse stage (coarse-to-fine)

    def sample(self, step: int, rng: torch.Generator, coarse: bool = False) -> tuple[Tensor, Tensor]:
        """A batch from each image; `coarse`: zoomed out by coarse_zoom (the coarse stage)."""
        scale = self.coarse_zoom if coarse else 1.0
        return (self.source_patches.sample(self.batch_size, rng, scale),
                self.target_patches.sample(self.batch_size, rng, scale))

    def preview_images(self) -> tuple[Tensor, Tensor]:
        """SOURCE and TARGET as float32 in [-1, 1] (a copy for uint8 images: drop it when done)."""
        return as_float(self.source), as_float(self.target)
