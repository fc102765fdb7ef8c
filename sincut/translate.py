"""Inference: translate images of any size, one file or thousands, with a trained generator.

- `translate_tensor`: one image tensor, whole (training's previews and result use it).
- `Translator`: one decoded image of any size in bounded memory. An image whose forward pass fits the
  memory budget goes whole; a larger one in tiles of one shape, as large as the budget allows
  (budget.py), several per pass when the budget holds them (geometry in tiles.py). Each tile reads G's
  receptive radius around the region it keeps, and the generator's per-pixel noise is drawn once per
  image at full size and cropped per tile, so every kept pixel is the whole image's and kept regions
  simply abut.
- `translate_files`: the batch: inputs (files, folders, globs) -> sorted jobs -> this shard's share;
  existing outputs skipped, each output written atomically, one bad file reported and skipped over.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from .budget import (ONNX_COST_FACTOR, PassCost, batch_for_budget, budget_error, default_budget, measure_cost,
                     tile_for_cost)
from .training.checkpoint import load_checkpoint, resolve_checkpoint
from .config import TrainConfig
from .data.images import IMAGE_SUFFIXES, DecodedImage, read_image, rgb_to_tensor, save_image, to_uint8_
from .errors import UserError
from .nets import Generator, build_generator
from .training.official import is_official, load_official_generator
from .tiles import CONTEXT, Span, min_tile, plan_spans

OUTPUT_FORMATS = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}


def pick_device(name: str = "auto") -> torch.device:
    """'auto' takes CUDA, then Apple's MPS, then the CPU; a named device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA GPU is visible to PyTorch; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps: Apple's MPS backend is not available here; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: not a device name; use auto, cpu, cuda, cuda:N or mps") from None


def cpu_has_bf16_kernels() -> bool:
    """Whether oneDNN has bfloat16 convolutions on this CPU (AVX512-BF16 or AMX). Without them PyTorch
    runs bf16 convolutions in a reference loop (aten::_slow_conv2d_forward), many times slower than fp32."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def load_generator(model: str | os.PathLike, device: torch.device,
                   checkpoint: str = "auto") -> tuple[Generator, TrainConfig, int]:
    """The generator of a checkpoint file, or of a run directory's best.pt (when it has one and
    `checkpoint` is auto or best) or latest checkpoint; in eval mode. A checkpoint of the paper's code
    (its `checkpoints/NAME` folder or a `*_net_G.pth`) loads too, its step being 0."""
    if is_official(model):
        G, config, _ = load_official_generator(model)
        G = G.to(device, memory_format=torch.channels_last).eval().requires_grad_(False)
        return G, config, 0
    path = resolve_checkpoint(model, checkpoint)
    state = load_checkpoint(path)
    config = TrainConfig.from_dict(state["config"])
    G = build_generator(config)
    try:
        G.load_state_dict(state.get("G_average", state["G"]))  # a run with --ema-halflife: its average
    except RuntimeError as e:
        raise UserError(f"{path}: its generator weights do not match its {config.preset} config "
                        f"({str(e).splitlines()[0][:160]})") from None
    G = G.to(device, memory_format=torch.channels_last).eval().requires_grad_(False)
    return G, config, int(state["step"])


def pad_to_stride(x: Tensor, stride: int) -> Tensor:
    """Pad bottom and right so both sides divide by G's stride (reflect; replicate for 1-pixel sides)."""
    h, w = x.shape[2:]
    pad_h, pad_w = (-h) % stride, (-w) % stride
    if pad_h == pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate" if min(h, w) <= max(pad_h, pad_w) else "reflect")


def seeded_noise(G: Generator, height: int, width: int, seed: int, device: torch.device) -> list[Tensor]:
    """The noise maps of one (padded) image, from a generator seeded afresh for every image."""
    gen = torch.Generator(device=device).manual_seed(seed)
    return G.draw_noise(1, height, width, gen, device)


def _border_mode(height: int, width: int, border: int) -> str:
    """Reflection needs a side longer than the border; tiny images replicate their edge instead."""
    return "reflect" if min(height, width) > border else "replicate"


def add_border(image: Tensor, border: int) -> Tensor:
    """[N, 3, H, W] with `border` pixels of its edge mirrored on every side (see TrainConfig.border)."""
    if border == 0:
        return image
    return F.pad(image, (border,) * 4, mode=_border_mode(image.shape[2], image.shape[3], border))


def add_border_rgb(rgb: np.ndarray, border: int) -> np.ndarray:
    """The same for an HxWx3 array (NumPy's 'reflect' mirrors like torch's, without the edge pixel)."""
    if border == 0:
        return rgb
    mode = "reflect" if _border_mode(rgb.shape[0], rgb.shape[1], border) == "reflect" else "edge"
    return np.pad(rgb, ((border, border), (border, border), (0, 0)), mode=mode)


@torch.inference_mode()
def translate_tensor(G: Generator, image: Tensor, seed: int = 0, border: int = 0) -> Tensor:
    """[1, 3, H, W] in [-1, 1] -> same size, unclamped. Adds the mirrored border, pads to G's stride,
    and crops back.

    The per-pixel noise of G's upsampling layer is drawn from `seed`, so a translation repeats exactly.
    """
    h, w = image.shape[2:]
    x = pad_to_stride(add_border(image, border), G.stride)
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
                 noise: bool = True, half: bool = False, border: int = 0, engine: str = "torch",
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
        if half and device.type == "cpu" and not cpu_has_bf16_kernels():
            raise UserError("--half: this CPU has no bfloat16 convolution kernels (needs AVX512-BF16 or AMX), "
                            "so it would translate many times slower; leave out --half")
        self.G, self.device, self.tile, self.seed, self.noise = G, device, tile, seed, noise
        self.border = border  # mirrored around every image first, cropped after (TrainConfig.border)
        self.onnx = None  # engine "onnxruntime": the noise-free G as an onnxruntime session (CPU)
        if engine == "onnxruntime":
            if noise or half or device.type != "cpu":
                raise UserError("--engine onnxruntime runs the exported, noise-free generator in float32 on the "
                                "CPU: add --no-noise, and leave out --half and --device other than cpu")
            from .export import OnnxRuntimeGenerator

            self.onnx = OnnxRuntimeGenerator(G, torch.get_num_threads())
        elif engine != "torch":
            raise UserError(f"--engine must be torch or onnxruntime, got {engine!r}")
        # float16 where GPUs run it fast (CUDA, MPS); bfloat16 on CPUs, whose float16 support is patchy.
        self.half_dtype = (torch.float16 if device.type in ("cuda", "mps") else torch.bfloat16) if half else None
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
        x = pad_to_stride(add_border(torch.cat([rgb_to_tensor(rgb) for rgb in images]), b), self.G.stride)
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


# ----------------------------------------------------------------------------------------------------
# The batch over files


@dataclass(frozen=True)
class Job:
    source: Path
    output: Path


_GLOB_MAGIC = re.compile(r"[*?[]")


def _images_under(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def expand_inputs(inputs: list[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """(file, path relative to the output folder) for each image.

    A file keeps its name; a folder is walked recursively and its tree mirrored; a glob pattern
    (quoted, so the shell leaves it alone; `**` recurses) mirrors the tree below its first wildcard.
    """
    pairs: list[tuple[Path, Path]] = []
    for item in inputs:
        p = Path(item)
        if not p.exists() and _GLOB_MAGIC.search(str(item)):
            parts = p.parts
            fixed = next(i for i, part in enumerate(parts) if _GLOB_MAGIC.search(part))
            base = Path(*parts[:fixed]) if fixed else Path(".")
            matches = sorted(Path(m) for m in glob.glob(str(item), recursive=True))
            files = [m for m in matches if m.is_file() and m.suffix.lower() in IMAGE_SUFFIXES]
            files += [f for m in matches if m.is_dir() for f in _images_under(m)]
            if not files:
                raise UserError(f"{item}: the pattern matches no images ({', '.join(IMAGE_SUFFIXES)}); "
                                "check the pattern")
            pairs += [(f, f.relative_to(base)) for f in files]
        elif not p.exists():
            raise UserError(f"{p}: no such file or folder; check the path")
        elif p.is_dir():
            files = _images_under(p)
            if not files:
                raise UserError(f"{p}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            pairs += [(f, f.relative_to(p)) for f in files]
        else:
            pairs.append((p, Path(p.name)))
    return pairs


def plan_jobs(inputs: list[str | os.PathLike], out_dir: str | os.PathLike, suffix: str = "",
              fmt: str = "png") -> list[Job]:
    """Every input's output path, sorted by input path: the deterministic list that shards split.

    Refuses, before any work, two inputs that would write one output, or an output that is its input.
    """
    ext = OUTPUT_FORMATS[fmt]
    jobs = sorted({Job(src, Path(out_dir) / rel.with_name(rel.stem + suffix + ext))
                   for src, rel in expand_inputs(inputs)}, key=lambda j: (str(j.source), str(j.output)))
    writers: dict[Path, Path] = {}
    for job in jobs:
        if job.output.resolve() == job.source.resolve():
            raise UserError(f"{job.source}: the output would replace this input; pass another --out or a --suffix")
        first = writers.setdefault(job.output.resolve(), job.source)
        if first != job.source:
            raise UserError(f"{first} and {job.source} would both be written to {job.output}; "
                            "rename one, or translate them in separate runs with another --out or --suffix")
    return jobs


def take_shard(jobs: list[Job], index: int, count: int) -> list[Job]:
    """The `index`-th (1-based) of `count` shares: every count-th job, so each share mixes all folders."""
    if not 1 <= index <= count:
        raise UserError(f"--shard {index}/{count}: K must be between 1 and N")
    return jobs[index - 1::count]


@dataclass
class TranslateOptions:
    suffix: str = ""
    format: str = "png"
    quality: int = 95
    overwrite: bool = False
    tile: int | None = None  # None: the largest tile the memory budget holds
    max_memory: int | None = None  # bytes for the forward passes; None: budget.default_budget(device)
    batch_size: int = 1
    seed: int = 0
    noise: bool = True
    half: bool = False
    shard: tuple[int, int] = (1, 1)
    checkpoint: str = "auto"  # for a run directory: auto (best.pt when present), best or latest
    load_size: int | None = None  # resize every input to load_size x load_size first (the paper's test)
    border: int | None = None  # mirrored border in pixels; None: the model's own (TrainConfig.border)
    engine: str = "torch"  # or "onnxruntime" (CPU, with noise off)


@dataclass
class TranslateSummary:
    translated: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return len(self.translated) / self.seconds if self.seconds > 0 else 0.0


class TranslateEvents(Protocol):
    """What the batch tells the outside world (the CLI shows it with rich; see progress.py)."""

    def start(self, total: int) -> None: ...
    def done(self, job: Job, status: str, detail: str | None = None) -> None: ...
    def note(self, message: str) -> None: ...
    def finish(self) -> None: ...


class _NoEvents:
    def start(self, total: int) -> None: ...
    def done(self, job: Job, status: str, detail: str | None = None) -> None: ...
    def note(self, message: str) -> None: ...
    def finish(self) -> None: ...


def save_translation(rgb: np.ndarray, alpha: np.ndarray | None, path: Path, quality: int) -> Path:
    """Write HxWx3 uint8 (plus the input's alpha, unchanged, when given) atomically."""
    pixels = rgb if alpha is None else np.dstack([rgb, alpha])
    return save_image(Image.fromarray(pixels, "RGB" if alpha is None else "RGBA"), path, quality=quality)


def _reason(job: Job, error: Exception) -> str:
    if isinstance(error, UserError):
        return str(error)
    first = (str(error).strip().splitlines() or [""])[0][:200]
    return f"{job.source}: {type(error).__name__}: {first}"


def resize_square(decoded: DecodedImage, size: int) -> DecodedImage:
    """The paper's test-time resize: to size x size, bicubic (PIL, as its torchvision transform does)."""
    def resize(pixels: np.ndarray) -> np.ndarray:
        if pixels.dtype == np.uint8:
            mode = "RGB" if pixels.ndim == 3 else "L"
            return np.asarray(Image.fromarray(pixels, mode).resize((size, size), Image.BICUBIC))
        channels = pixels[..., None] if pixels.ndim == 2 else pixels
        out = [np.asarray(Image.fromarray(channels[..., c].astype(np.float32), "F").resize((size, size),
                                                                                           Image.BICUBIC))
               for c in range(channels.shape[2])]
        hi = np.iinfo(pixels.dtype).max if np.issubdtype(pixels.dtype, np.integer) else 1.0
        stacked = np.clip(np.stack(out, axis=2), 0, hi)
        stacked = np.rint(stacked) if np.issubdtype(pixels.dtype, np.integer) else stacked
        stacked = stacked.astype(pixels.dtype)
        return stacked[..., 0] if pixels.ndim == 2 else stacked

    return DecodedImage(resize(decoded.rgb), None if decoded.alpha is None else resize(decoded.alpha), decoded.note)


def translate_files(model: str | os.PathLike, inputs: list[str | os.PathLike], out_dir: str | os.PathLike,
                    device: torch.device, options: TranslateOptions | None = None,
                    events: TranslateEvents | None = None) -> TranslateSummary:
    """Translate every input image (this shard's share) into `out_dir`; a failure never stops the rest."""
    options = options or TranslateOptions()
    events = events or _NoEvents()
    jobs = take_shard(plan_jobs(inputs, out_dir, options.suffix, options.format), *options.shard)
    G, config, _ = load_generator(model, device, options.checkpoint)
    border = config.border if options.border is None else options.border
    translator = Translator(G, device, tile=options.tile, seed=options.seed, noise=options.noise, half=options.half,
                            border=border, engine=options.engine, max_memory=options.max_memory)
    summary = TranslateSummary()
    keeps_alpha = options.format != "jpg"
    pending: list[tuple[Job, DecodedImage]] = []
    t0 = time.perf_counter()

    def fail(job: Job, error: Exception) -> None:
        summary.failed.append((job.source, _reason(job, error)))
        events.done(job, "failed", summary.failed[-1][1])

    def save(job: Job, decoded: DecodedImage, rgb: np.ndarray) -> None:
        if decoded.alpha is not None and not keeps_alpha:
            events.note(f"{job.source}: JPEG has no alpha channel, so the alpha was dropped "
                        "(use --format png or webp to keep it)")
        try:
            save_translation(rgb, decoded.alpha if keeps_alpha else None, job.output, options.quality)
        except Exception as e:  # a full disk or an unwritable folder fails this image, not the batch
            fail(job, e)
            return
        summary.translated.append(job.output)
        events.done(job, "translated")

    def flush() -> None:
        if not pending:
            return
        try:
            results = translator.translate_batch([d.rgb for _, d in pending])
        except Exception as e:
            for job, _ in pending:
                fail(job, e)
        else:
            for (job, decoded), rgb in zip(pending, results):
                save(job, decoded, rgb)
        pending.clear()

    events.start(len(jobs))
    try:
        for job in jobs:
            if job.output.exists() and not options.overwrite:
                summary.skipped.append(job.output)
                events.done(job, "skipped")
                continue
            try:
                decoded = read_image(job.source)
            except Exception as e:
                fail(job, e)
                continue
            if decoded.note:
                events.note(f"{job.source}: {decoded.note}")
            if options.load_size:
                decoded = resize_square(decoded, options.load_size)
            if options.batch_size > 1 and translator.fits_whole(*decoded.size):
                if pending and pending[0][1].size != decoded.size:
                    flush()
                pending.append((job, decoded))
                if len(pending) == options.batch_size:
                    flush()
                continue
            flush()
            try:
                rgb = translator.translate(decoded.rgb)
            except Exception as e:
                fail(job, e)
                continue
            save(job, decoded, rgb)
        flush()
    finally:
        summary.seconds = time.perf_counter() - t0
        events.finish()
    return summary
