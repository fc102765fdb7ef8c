"""The batch over files (`sincut translate`): inputs (files, folders, globs) -> sorted jobs -> this shard's
share; existing outputs skipped, each output written atomically, one bad file reported and skipped over; a
write fault every later file would meet too (no space, read-only output) stops the batch at once.
"""

from __future__ import annotations

import glob
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from ..data.images import (IMAGE_SUFFIXES, DecodedImage, can_write_below, images_in_folder, images_under,
                           is_image_file, read_image, save_image)
from ..errors import UserError, WriteFailed
from .model import load_generator
from .translator import Translator


OUTPUT_FORMATS = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}


@dataclass(frozen=True)
class Job:
    source: Path
    output: Path


_GLOB_MAGIC = re.compile(r"[*?[]")


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
            files = [m for m in matches if is_image_file(m)]
            files += [f for m in matches if m.is_dir() for f in images_under(m)]
            if not files:
                raise UserError(f"{item}: the pattern matches no images ({', '.join(IMAGE_SUFFIXES)}); "
                                "check the pattern")
            pairs += [(f, f.relative_to(base)) for f in files]
        elif not p.exists():
            raise UserError(f"{p}: no such file or folder; check the path")
        elif p.is_dir():
            pairs += [(f, f.relative_to(p)) for f in images_in_folder(p)]
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
    precision: str = "auto"  # auto = fp32 (translation_precision); bf16 or fp16 on request
    shard: tuple[int, int] = (1, 1)
    checkpoint: str = "auto"  # for a run directory: auto (best.pt when present), best or latest
    load_size: int | None = None  # resize every input to load_size x load_size first (the paper's test)
    border: int | None = None  # mirrored border in pixels; None: the model's own (TrainConfig.border)
    engine: str = "torch"  # or "onnxruntime" (CPU, with noise off)


def translation_precision(requested: str) -> str:
    """--precision of translate: 'auto' is fp32. bf16 translation of a quick model on a Xeon with AMX took
    as long as fp32 (1024x576: 0.45 against 0.46 s; its small G and float32 guided filter leave the
    convolutions little of the time) and differed by up to 5 8-bit levels (docs/performance.md); models of
    the other recipes were trained in fp32 by default. An explicit bf16 or fp16 is kept as asked."""
    return "fp32" if requested == "auto" else requested


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
    """Translate every input image (this shard's share) into `out_dir`. A bad file is reported and the rest
    go on; a write fault that every later file would meet too (no space, read-only or unwritable `out_dir`)
    stops the batch with one WriteFailed: what was written, what was not, how to rerun."""
    options = options or TranslateOptions()
    events = events or _NoEvents()
    jobs = take_shard(plan_jobs(inputs, out_dir, options.suffix, options.format), *options.shard)
    G, config, _ = load_generator(model, device, options.checkpoint)
    border = config.border if options.border is None else options.border
    precision = translation_precision(options.precision)
    translator = Translator(G, device, tile=options.tile, seed=options.seed, noise=options.noise,
                            precision=precision, border=border, engine=options.engine, max_memory=options.max_memory)
    summary = TranslateSummary()
    keeps_alpha = options.format != "jpg"
    pending: list[tuple[Job, DecodedImage]] = []
    t0 = time.perf_counter()

    def fail(job: Job, error: Exception) -> None:
        summary.failed.append((job.source, _reason(job, error)))
        events.done(job, "failed", summary.failed[-1][1])

    def stop(fault: WriteFailed) -> WriteFailed:
        failed = f", {len(summary.failed)} failed" if summary.failed else ""
        left = len(jobs) - len(summary.translated) - len(summary.skipped) - len(summary.failed)
        return fault.retold(f"stopped: {len(summary.translated)} translated, {len(summary.skipped)} already there"
                            f"{failed}, {left} not written; {fault.remedy}, then run the same command again "
                            "(finished images are skipped)")

    def save(job: Job, decoded: DecodedImage, rgb: np.ndarray) -> None:
        if decoded.alpha is not None and not keeps_alpha:
            events.note(f"{job.source}: JPEG has no alpha channel, so the alpha was dropped "
                        "(use --format png or webp to keep it)")
        try:
            save_translation(rgb, decoded.alpha if keeps_alpha else None, job.output, options.quality)
        except WriteFailed as e:  # one unwritable subfolder fails its images; a full disk stops the batch
            if e.everywhere or not can_write_below(out_dir):
                raise stop(e) from None
            fail(job, e)
            return
        except Exception as e:
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
