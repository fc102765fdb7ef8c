"""Unpaired folders for dataset mode (presets `cut` and `fastcut`).

Decoding and the resize to `load_size` x `load_size` (`crop_size` in the decay epochs, as in the
paper's code) run in DataLoader worker processes; the random
crop and flip run with Kornia on the training device. One epoch is max(|A|, |B|) samples: A is
visited in a shuffled order (sharded across processes by a DistributedSampler), and each A image
is paired with a B image drawn at random, from a seed that depends only on (seed, epoch, index), so
a run repeats exactly and resumes mid-epoch. An unreadable file is reported once and skipped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from kornia.geometry.transform import crop_and_resize, hflip
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..errors import UserError
from .images import images_in_folder, load_image


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under `folder`, recursively, in sorted order; a clear error if there are none."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"{root}: not a folder; dataset mode needs two folders of images")
    return images_in_folder(root)


def load_resized(path: Path, size: int) -> Tensor:
    """[3, size, size] in [-1, 1]: any image mode to RGB, EXIF applied, bicubic with antialiasing."""
    image = load_image(path)
    out = F.interpolate(image, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return out[0].clamp_(-1, 1)


class UnpairedFolders(Dataset):
    def __init__(self, folder_a: str | os.PathLike, folder_b: str | os.PathLike, load_size: int, seed: int) -> None:
        self.a = list_images(folder_a)
        self.b = list_images(folder_b)
        self.load_size = load_size
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def b_index(self, index: int) -> int:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 1_000_033 + index)
        return int(torch.randint(len(self.b), (), generator=g))

    def __getitem__(self, index: int) -> dict:
        paths = (self.a[index % len(self.a)], self.b[self.b_index(index)])
        try:
            return {"a": load_resized(paths[0], self.load_size), "b": load_resized(paths[1], self.load_size)}
        except UserError as e:
            return {"bad": str(e)}


def _collate(items: list[dict]) -> dict:
    good = [it for it in items if "bad" not in it]
    batch: dict = {"bad": [it["bad"] for it in items if "bad" in it]}
    if good:
        batch["a"] = torch.stack([it["a"] for it in good])
        batch["b"] = torch.stack([it["b"] for it in good])
    return batch


class FolderPairs:
    """Endless stream of (A, B) crops on the device, epoch by epoch, resumable at any step."""

    def __init__(self, folder_a: str | os.PathLike, folder_b: str | os.PathLike, *, load_size: int, crop_size: int,
                 batch_size: int, flip: bool, seed: int, device: torch.device, rank: int = 0, world_size: int = 1,
                 workers: int | None = None, on_bad_file: Callable[[str], None] | None = None) -> None:
        self.dataset = UnpairedFolders(folder_a, folder_b, load_size, seed)
        self.sampler = DistributedSampler(self.dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        self.batch_size = batch_size
        self.crop_size = crop_size
        self.load_size = load_size
        # The paper's decay epochs resize straight to the crop size (no resize-and-crop jitter);
        # the training loop sets the first such epoch (None: jitter in every epoch).
        self.fixed_size_from_epoch: int | None = None
        self.flip = flip
        self.device = device
        self.workers = min(4, os.cpu_count() or 1) if workers is None else workers
        self.steps_per_epoch = max(1, len(self.sampler) // batch_size)
        self.on_bad_file = on_bad_file or (lambda message: None)
        self.bad_files: set[str] = set()
        self._iterator: Iterator[dict] | None = None
        self._next_index = 0

    def _start_epoch(self, epoch: int, skip_batches: int) -> None:
        self.sampler.set_epoch(epoch)
        self.dataset.epoch = epoch  # workers start per epoch, so they see it (and the load size)
        fixed = self.fixed_size_from_epoch is not None and epoch >= self.fixed_size_from_epoch
        self.dataset.load_size = self.crop_size if fixed else self.load_size
        indices = list(self.sampler)[skip_batches * self.batch_size:]
        loader = DataLoader(self.dataset, batch_size=self.batch_size, sampler=indices, drop_last=True,
                            num_workers=self.workers, collate_fn=_collate, pin_memory=self.device.type == "cuda")
        self._iterator = iter(loader)
        self._next_index = epoch * self.steps_per_epoch + skip_batches

    def _batch_at(self, k: int) -> dict:
        """The k-th batch of the whole run (epoch k // steps_per_epoch); restarts the loader only when
        the stream is not already there (first call, resume, or after a skipped batch)."""
        if self._iterator is None or self._next_index != k:
            self._start_epoch(*divmod(k, self.steps_per_epoch))
        batch = next(self._iterator)
        self._next_index = k + 1
        if self._next_index % self.steps_per_epoch == 0:
            self._iterator = None  # the epoch is over; the next call starts the next one
        return batch

    def sample(self, step: int, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        k = step
        batch = self._batch_at(k)
        while "a" not in batch:  # every image of this batch was unreadable: report it, take the next
            self._report(batch["bad"])
            k += 1
            batch = self._batch_at(k)
        self._report(batch["bad"])
        return self._augment(batch["a"], rng), self._augment(batch["b"], rng)

    def _report(self, messages: list[str]) -> None:
        for message in messages:
            if message not in self.bad_files:
                self.bad_files.add(message)
                self.on_bad_file(f"skipped: {message}")

    def _augment(self, images: Tensor, rng: torch.Generator) -> Tensor:
        """Random crop_size crop (an exact pixel copy: integer box) and random horizontal flip."""
        images = images.to(self.device, non_blocking=True)
        n, _, h, w = images.shape
        c = self.crop_size
        u = torch.rand(n, 3, device=self.device, generator=rng)
        x0 = torch.floor(u[:, 0] * (w - c + 1)).clamp(max=w - c)
        y0 = torch.floor(u[:, 1] * (h - c + 1)).clamp(max=h - c)
        x1, y1 = x0 + c - 1, y0 + c - 1
        boxes = torch.stack([torch.stack([x0, y0], 1), torch.stack([x1, y0], 1),
                             torch.stack([x1, y1], 1), torch.stack([x0, y1], 1)], 1)
        out = crop_and_resize(images, boxes, (c, c))
        if self.flip:
            out = torch.where((u[:, 2] < 0.5).view(-1, 1, 1, 1), hflip(out), out)
        return out

    def preview_images(self) -> tuple[Tensor, Tensor]:
        """The first readable image of each folder at load_size, [1, 3, H, W], for previews and result.png."""
        return self._first_readable(self.dataset.a), self._first_readable(self.dataset.b)

    def _first_readable(self, paths: list[Path]) -> Tensor:
        for path in paths:
            try:
                return load_resized(path, self.load_size)[None]
            except UserError:
                continue
        raise UserError(f"{paths[0].parent}: none of its {len(paths)} images can be read")

