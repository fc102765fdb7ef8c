"""Image files in and out, with every validation rule in one place.

Loading applies EXIF orientation and turns any mode (grayscale, palette, CMYK, RGBA, 16-bit) into RGB
in [-1, 1]. Saving is atomic: a temporary file in the destination folder, fsynced, then renamed, so a
crash never leaves a half-written image under the final name.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """HxWx3 float32 in [0, 1] from any PIL mode, keeping 16-bit and float precision."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        peak = 65535.0 if img.mode.startswith("I") else max(float(arr.max()), 1.0)
        gray = np.clip(arr / peak, 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.float32) / 255.0


def allow_large_images() -> None:
    """Lift Pillow's decompression-bomb limit for this process (the user vouched for the files)."""
    Image.MAX_IMAGE_PIXELS = None


def load_image(path: str | os.PathLike) -> torch.Tensor:
    """Read an image file as a [1, 3, H, W] float32 tensor in [-1, 1]."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such file; check the path")
    if p.is_dir():
        raise UserError(f"{p}: is a folder, expected an image file")
    if p.stat().st_size == 0:
        raise UserError(f"{p}: the file is empty; pass a valid image file")
    try:
        with warnings.catch_warnings():
            # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that: the refusal is our limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as opened:
                img = ImageOps.exif_transpose(opened)
                img.load()
                arr = _to_rgb_array(img)
    except Image.DecompressionBombError:
        raise UserError(f"{p}: image has more pixels than the safety limit ({Image.MAX_IMAGE_PIXELS * 2:,}) "
                        "against decompression bombs; pass --allow-large-images if you trust the file") from None
    except UnidentifiedImageError:
        raise UserError(f"{p}: not a readable image; pass a JPEG, PNG, WebP, BMP or TIFF file") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise UserError(f"{p}: the image could not be decoded ({e}); the file may be truncated or corrupt") from None
    tensor = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0)
    return tensor * 2.0 - 1.0


def to_pil(image: torch.Tensor) -> Image.Image:
    """[3, H, W] or [1, 3, H, W] tensor in [-1, 1] (clamped here) to an 8-bit RGB image."""
    if image.dim() == 4:
        image = image[0]
    arr = ((image.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return Image.fromarray(arr.permute(1, 2, 0).cpu().numpy(), mode="RGB")


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call `write(file_object)` on a temp file beside `path`, fsync, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_image(image: torch.Tensor | Image.Image, path: str | os.PathLike, quality: int = 95) -> Path:
    """Write an image atomically; the format follows the suffix (PNG by default)."""
    pil = image if isinstance(image, Image.Image) else to_pil(image)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(Path(path).suffix.lower(), "PNG")
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    return atomic_write(path, lambda f: pil.save(f, format=fmt, **options))


def side_by_side(images: list[torch.Tensor], height: int) -> Image.Image:
    """Images scaled to one height and placed left to right (the preview strip)."""
    tiles = []
    for t in images:
        pil = to_pil(t)
        w = max(1, round(pil.width * height / pil.height))
        tiles.append(pil.resize((w, height), Image.LANCZOS))
    sheet = Image.new("RGB", (sum(t.width for t in tiles), height))
    x = 0
    for t in tiles:
        sheet.paste(t, (x, 0))
        x += t.width
    return sheet
