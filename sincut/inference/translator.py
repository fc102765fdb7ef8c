"""Translate one image with a trained generator.

- `translate_tensor`: one image tensor, whole (training's previews and result use it).
- `Translator`: one decoded image of any size in bounded memory. An image whose forward pass fits the
  memory budget goes whole; a larger one in tiles of one shape, as large as the budget allows
  (budget.py), several per pass when the budget holds them (geometry in tiles.py). Each tile reads G's
  receptive radius around the region it keeps, and the generator's per-pixel noise is drawn once per
  image at full size and cropped per tile, so every kept pixel is the whole image's and kept regions
  simply abut.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import Tensor

from ..data.images import rgb_to_tensor, to_uint8_
from ..errors import UserError
from ..nets import Generator
from .border import add_border_rgb, pad_for_generator, pad_to_stride
from .budget import (ONNX_COST_FACTOR, PassCost, batch_for_budget, budget_error, default_budget, measure_cost,
                     tile_for_cost)
from .device import cpu_has_bf16_kernels
from .tiles import CONTEXT, Span, min_tile, plan_spans


def seeded_noise(G: Generator, height: int, width: int, seed: int, device: torch.device) -> list[Tensor]:
    """The noise maps of one (padded) image, from a generator seeded afresh for every image."""
    gen = torch.Generator(device=device).manual_seed(seed)
    return G.draw_noise(1, height, width, gen, device)


@torch.inference_mode()
def translate_tensor(G: Generator, image: Tensor, seed: int = 0, border: int = 0) -> Tensor:
    """[1, 3, H, W] in [-1, 1] -> same size, unclamped. Adds the mirrored border, pads to G's stride,
    and crops back.

    The per-pixel noise of G's upsampling layer is drawn from `seed`, so a translation repeats exactly.
    """
    h, w = image.shape[2:]
    x = pad_for_generator(image, border, G.stride)
    noise = seeded_noise(G, x.shape[2], x.shape[3], seed, image.device)
    # channels_last is markedly faster for these convolutions on CPUs (oneDNN) and with cuDNN.
    out, _ = G(x.contiguous(memory_format=torch.channels_last), noise=noise)
    return out[:, :, border:border + h, border:border + w]


def _padded_read(span: Span, stride: int) -> int:
    """The length a tile's input has after pad_to_stride (one for every tile of an axis)."""
    return -(-(span.read_end - span.read_start) // stride) * stride


class Translator:
    """Translates decoded images of any size with one generator; memory is bounded by `max_memory`
    (bytes for the forward passes; default: budget.default_budget) or by an explicit `tile`."""

    def __init__(self, G: Generator, device: torch.device, tile: int | None = None, seed: int = 0,
                 noise: bool = True, precision: str = "fp32", border: int = 0, engine: str = "torch",
                 max_memory: int | None = None) -> None:
        # Tiles read G's receptive radius around what they keep, rounded up to its stride (CONTEXT plus
        # any guided filter's reach for a G that does not state its radius).
        reach = getattr(G, "receptive_radius", None)
        if reach is None:
            reach = CONTEXT + getattr(G, "extra_context", 0)
        self.context = -(-reach // G.stride) * G.stride
        smallest = min_tile(self.context, G.stride)
        if tile is not None and tile < smallest:
            raise UserError(f"--tile {tile}: must be at least {smallest} pixels for this model")
        if precision == "bf16" and device.type == "cpu" and not cpu_has_bf16_kernels():
            raise UserError("--precision bf16: this CPU has no bfloat16 convolution kernels (needs AVX512-BF16 or "
                            "AMX), so it would translate many times slower; use --precision auto or fp32")
        if precision == "fp16" and device.type == "cpu":
            raise UserError("--precision fp16 is for GPUs (CPUs run float16 convolutions slowly); use --precision "
                            "auto, bf16 or fp32")
        self.G, self.device, self.tile, self.seed, self.noise = G, device, tile, seed, noise
        self.border = border  # mirrored around every image first, cropped after (TrainConfig.border)
        self.onnx = None  # engine "onnxruntime": the noise-free G as an onnxruntime session (CPU)
        if engine == "onnxruntime":
            if noise or precision != "fp32" or device.type != "cpu":
                raise UserError("--engine onnxruntime runs the exported, noise-free generator in float32 on the "
                                "CPU: add --no-noise, and use --precision fp32 (or auto) and --device cpu")
            from .onnx_engine import OnnxRuntimeGenerator

            self.onnx = OnnxRuntimeGenerator(G, torch.get_num_threads())
        elif engine != "torch":
            raise UserError(f"--engine must be torch or onnxruntime, got {engine!r}")
        # The autocast dtype of bf16/fp16 (inference/device.py resolve_precision picks it for 'auto').
        self.half_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.budget = max_memory if max_memory is not None else default_budget(device)
        self.cost: PassCost | None = None  # bytes of a pass; only measured for a G that can be tiled
        self.tile, self.explicit_tile = tile, tile is not None
        self.max_pixels = tile * tile if tile is not None else None  # larger images go in tiles
        if getattr(G, "tileable", True):
            self.cost = measure_cost(G).scaled(ONNX_COST_FACTOR if self.onnx is not None else 1.0)
            if tile is None or max_memory is not None:  # an explicit budget must hold the smallest tile
                try:
                    budget_tile = tile_for_cost(self.cost, self.budget, G.stride, self.context)
                except ValueError as e:
                    raise budget_error(self.budget, str(e), default=max_memory is None) from None
                if tile is None:
                    self.tile, self.max_pixels = budget_tile, self.cost.pixels(self.budget)

    def fits_whole(self, height: int, width: int) -> bool:
        """Memory follows the pixel count, so an image whose pass (border and stride padding included)
        fits the budget goes in one pass; with an explicit tile, one of up to tile x tile pixels.
        Generators with instance norm (cut, fastcut) always take whole images: tiles would change
        the normalisation statistics."""
        if self.cost is None:
            return True
        if self.explicit_tile:
            return height * width <= self.max_pixels
        b, s = 2 * self.border, self.G.stride
        return -(-(height + b) // s) * s * -(-(width + b) // s) * s <= self.max_pixels

    def _noise(self, height: int, width: int) -> list[Tensor]:
        if not self.noise:
            return [torch.zeros(1, 1, height // s, width // s, device=self.device) for s in self.G.noise_scales()]
        return seeded_noise(self.G, height, width, self.seed, self.device)

    @torch.inference_mode()
    def _run(self, x: Tensor, noise: list[Tensor]) -> Tensor:
        """G on a padded batch [B, 3, h, w] (h, w divisible by the stride); float32 result on the CPU."""
        if self.onnx is not None:
            return self.onnx(x)  # no noise: the maps are zeros
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        autocast = (torch.autocast(self.device.type, dtype=self.half_dtype) if self.half_dtype is not None
                    else contextlib.nullcontext())
        with autocast:
            out, _ = self.G(x, noise=noise)
        return out.float().cpu()

    @torch.inference_mode()
    def translate_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Equal-sized images of up to tile x tile pixels in one forward pass; HxWx3 uint8 each.

        Each image gets the noise it would get alone, so batching never changes a result's noise.
        """
        h, w, b = images[0].shape[0], images[0].shape[1], self.border
        x = pad_for_generator(torch.cat([rgb_to_tensor(rgb) for rgb in images]), b, self.G.stride)
        maps = [self._noise(x.shape[2], x.shape[3]) for _ in images]
        noise = [torch.cat(level) for level in zip(*maps)]
        out = self._run(x, noise)[:, :, b:b + h, b:b + w]
        return [np.ascontiguousarray(to_uint8_(o.permute(1, 2, 0)).numpy()) for o in out]

    @torch.inference_mode()
    def translate(self, rgb: np.ndarray) -> np.ndarray:
        """One HxWx3 image of any size to HxWx3 uint8."""
        if self.fits_whole(*rgb.shape[:2]):
            return self.translate_batch([rgb])[0]
        h, w, b = rgb.shape[0], rgb.shape[1], self.border
        return to_uint8_(self.translate_tiled(add_border_rgb(rgb, b))[b:b + h, b:b + w]).numpy()

    def tiles_per_pass(self, tile_pixels: int, count: int) -> int:
        """How many tiles of `tile_pixels` (padded) input pixels share one forward pass in the budget."""
        return 1 if self.cost is None else batch_for_budget(self.cost, self.budget, tile_pixels, count)

    def plan(self, height: int, width: int) -> tuple[int, int, int]:
        """(tiles, tiles per pass, padded pixels per tile) for an image; (1, 1, its pixels) when whole."""
        b, s = 2 * self.border, self.G.stride
        h, w = height + b, width + b
        if self.fits_whole(height, width):
            return 1, 1, -(-h // s) * s * -(-w // s) * s
        rows = plan_spans(h, self.tile, s, self.context)
        cols = plan_spans(w, self.tile, s, self.context)
        pixels = _padded_read(rows[0], s) * _padded_read(cols[0], s)
        return len(rows) * len(cols), self.tiles_per_pass(pixels, len(rows) * len(cols)), pixels

    @torch.inference_mode()
    def translate_tiled(self, rgb: np.ndarray) -> Tensor:
        """HxWx3 image in tiles of at most tile x tile pixels -> HxWx3 float32, unclamped.

        Each tile's kept region is copied into the result (kept regions abut; plan_spans). Every tile has
        one shape, so as many as the budget holds share a forward pass. Holds the input, the result
        (HxWx3 float32), the noise (HxW) and one pass's activations: for 6000x4000, 0.46 GB plus the pass.
        """
        h, w = rgb.shape[:2]
        stride = self.G.stride
        rows = plan_spans(h, self.tile, stride, self.context)
        cols = plan_spans(w, self.tile, stride, self.context)
        noise = self._noise(h + (-h) % stride, w + (-w) % stride)
        result = torch.empty(h, w, 3)  # HWC, like PIL, so the result converts to uint8 in place
        tiles = [(r, c) for r in rows for c in cols]
        tile_pixels = _padded_read(rows[0], stride) * _padded_read(cols[0], stride)
        per_pass = self.tiles_per_pass(tile_pixels, len(tiles))
        for first in range(0, len(tiles), per_pass):
            group = tiles[first:first + per_pass]
            x = torch.cat([pad_to_stride(rgb_to_tensor(rgb[r.read_start:r.read_end, c.read_start:c.read_end]),
                                         stride) for r, c in group])
            crops = [torch.cat([n[:, :, r.read_start // s:(r.read_start + x.shape[2]) // s,
                                  c.read_start // s:(c.read_start + x.shape[3]) // s] for r, c in group])
                     for n, s in zip(noise, self.G.noise_scales())]
            out = self._run(x, crops)
            del x, crops
            for (r, c), o in zip(group, out):
                result[r.keep_start:r.keep_end, c.keep_start:c.keep_end] = \
                    o[:, r.keep_start - r.read_start:r.keep_end - r.read_start,
                      c.keep_start - c.read_start:c.keep_end - c.read_start].permute(1, 2, 0)
            del out
        del noise
        return result
