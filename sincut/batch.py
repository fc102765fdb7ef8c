"""One SinCUT model per (source, target) pair: the artist's "this painting against that folder of photos".

    OUT/runs/<source>__<target>/      a normal run directory per pair (what `sincut train` writes)
    OUT/images/<source>__<target>.png the translated source, full size
    OUT/contact_sheet.png             sources by rows, targets by columns, each with its own thumbnails

A pair is finished when its image exists, so a rerun skips it; an unfinished pair's run (left by a
crash or Ctrl-C) is resumed from its newest checkpoint. A failed pair is reported and the rest go on;
Ctrl-C stops the batch after saving the current pair's checkpoint, and so does a write fault that every
later pair would meet too (no space, read-only or unwritable OUT), with one line.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from PIL import Image, ImageOps

from .config import TrainConfig
from .data.images import atomic_write, can_write_below, images_in_folder, save_image, write_fault
from .errors import TrainingStopped, UserError, WriteFailed
from .progress import TrainingProgress
from .run_folder import RESULT_IMAGE, checkpoint_step, is_run_dir, list_checkpoints
from .training.loop import resume, train

THUMBNAIL = 256
GAP = 4
BACKGROUND = (32, 32, 32)


@dataclass(frozen=True)
class Pair:
    source: Path
    target: Path

    @property
    def name(self) -> str:
        return f"{self.source.stem}__{self.target.stem}"


def collect_images(items: list[str | os.PathLike], role: str) -> list[Path]:
    """Image files given directly or found in folders (recursively), sorted; stems must be unique
    because they name the outputs."""
    found: list[Path] = []
    for item in items:
        p = Path(item)
        if not p.exists():
            raise UserError(f"{p}: no such file or folder ({role}); check the path")
        if p.is_dir():
            found += images_in_folder(p, f" ({role})")
        elif p not in found:
            found.append(p)
    by_stem: dict[str, Path] = {}
    for f in found:
        other = by_stem.setdefault(f.stem, f)
        if other != f:
            raise UserError(f"{other} and {f}: two {role} images named {f.stem!r}; outputs are named after "
                            "the file name, so rename one")
    return found


def plan_pairs(sources: list[Path], targets: list[Path]) -> list[Pair]:
    return [Pair(s, t) for s in sources for t in targets]


@dataclass
class BatchSummary:
    trained: list[Pair] = field(default_factory=list)
    skipped: list[Pair] = field(default_factory=list)
    failed: list[tuple[Pair, str]] = field(default_factory=list)
    contact_sheet: Path | None = None
    seconds: float = 0.0


class BatchEvents(Protocol):
    """What the batch tells the outside world; `pair_progress` is handed to `train()` for the pair."""

    def start(self, total_pairs: int, steps_per_pair: int | None) -> None: ...
    def pair_progress(self, pair: Pair) -> TrainingProgress: ...
    def pair_done(self, pair: Pair, status: str, detail: str | None = None) -> None: ...
    def note(self, message: str) -> None: ...
    def finish(self) -> None: ...


def result_path(out: Path, pair: Pair) -> Path:
    return out / "images" / f"{pair.name}.png"


def _thumbnail(path: Path) -> Image.Image | None:
    """A cell of the contact sheet; None for an image that cannot be read (its pair failed anyway)."""
    try:
        with Image.open(path) as img:
            img.draft("RGB", (THUMBNAIL, THUMBNAIL))  # JPEG: decode at a fraction of full size
            return ImageOps.contain(ImageOps.exif_transpose(img).convert("RGB"), (THUMBNAIL, THUMBNAIL),
                                    Image.LANCZOS)
    except Exception:
        return None


def contact_sheet(out: Path, sources: list[Path], targets: list[Path]) -> Path:
    """Grid: the top row shows the targets, the left column the sources, each cell a pair's result."""
    cell = THUMBNAIL + GAP
    sheet = Image.new("RGB", (GAP + cell * (len(targets) + 1), GAP + cell * (len(sources) + 1)), BACKGROUND)

    def place(image: Image.Image | None, row: int, col: int) -> None:
        if image is not None:
            x = GAP + col * cell + (THUMBNAIL - image.width) // 2
            y = GAP + row * cell + (THUMBNAIL - image.height) // 2
            sheet.paste(image, (x, y))

    for col, target in enumerate(targets, start=1):
        place(_thumbnail(target), 0, col)
    for row, source in enumerate(sources, start=1):
        place(_thumbnail(source), row, 0)
        for col, target in enumerate(targets, start=1):
            result = result_path(out, Pair(source, target))
            place(_thumbnail(result) if result.exists() else None, row, col)
    return save_image(sheet, out / "contact_sheet.png")


def run_batch(config: TrainConfig, sources: list[str | os.PathLike], targets: list[str | os.PathLike],
              out: str | os.PathLike, device: torch.device, events: BatchEvents) -> BatchSummary:
    """Train and translate every (source, target) pair not finished yet; write the contact sheet."""
    config.validate()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is a file; pass a folder for --out")
    source_images, target_images = collect_images(sources, "source"), collect_images(targets, "style")
    pairs = plan_pairs(source_images, target_images)
    summary = BatchSummary()
    t0 = time.perf_counter()
    events.start(len(pairs), config.steps)
    try:
        for pair in pairs:
            final = result_path(out, pair)
            if final.exists():
                summary.skipped.append(pair)
                events.pair_done(pair, "skipped")
                continue
            run_dir = out / "runs" / pair.name
            try:
                if is_run_dir(run_dir):
                    events.note(f"{run_dir}: unfinished run from an earlier attempt; resuming it")
                    result_image = _resume_pair(run_dir, config, device, events.pair_progress(pair))
                else:
                    if run_dir.exists():  # died before its run files were written: nothing to keep
                        shutil.rmtree(run_dir)
                    result = train(config, pair.source, pair.target, run_dir, device, events.pair_progress(pair))
                    result_image = result.result_image
                image = result_image.read_bytes()
                atomic_write(final, image)
            except TrainingStopped:  # Ctrl-C stops the whole batch (the pair's checkpoint is saved)
                raise
            except Exception as e:  # one bad pair (unreadable image, diverged, out of memory) never stops the rest
                fault = e if isinstance(e, WriteFailed) else write_fault(e, getattr(e, "filename", None) or run_dir)
                if fault is not None and (fault.everywhere or not can_write_below(out)):
                    left = len(pairs) - len(summary.trained) - len(summary.skipped) - len(summary.failed)
                    raise fault.retold(
                        f"stopped at pair {pair.name}: {len(summary.trained) + len(summary.skipped)} pairs done, "
                        f"{left} not; {fault.remedy}, then run the same `sincut batch` command again (finished "
                        "pairs are skipped, an unfinished one resumes from its newest checkpoint)") from None
                first_line = (str(e).strip().splitlines() or [""])[0][:200]
                reason = f"{pair.name}: " + (str(fault or e) if isinstance(fault or e, (UserError, WriteFailed))
                                             else f"{type(e).__name__}: {first_line}")
                summary.failed.append((pair, reason))
                events.pair_done(pair, "failed", reason)
                continue
            summary.trained.append(pair)
            events.pair_done(pair, "trained")
    finally:
        events.finish()
    summary.contact_sheet = contact_sheet(out, source_images, target_images)
    summary.seconds = time.perf_counter() - t0
    return summary


def _resume_pair(run_dir: Path, config: TrainConfig, device: torch.device, progress) -> Path:
    """Continue a pair's run to this batch's step count; a run that already got there only lacks its copy."""
    done = list_checkpoints(run_dir)
    if config.steps is None:  # --minutes: the pair's run sized its own steps; it is done when it wrote its result
        if (run_dir / RESULT_IMAGE).is_file():
            return run_dir / RESULT_IMAGE
        return resume(run_dir, device, progress).result_image
    if done and checkpoint_step(done[-1]) >= config.steps and (run_dir / RESULT_IMAGE).is_file():
        return run_dir / RESULT_IMAGE
    return resume(run_dir, device, progress, {"steps": config.steps}).result_image
