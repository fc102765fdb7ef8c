"""Image files in and out, with every validation rule in one place.

Loading applies EXIF orientation and turns any mode (grayscale, palette, CMYK, RGBA, 16-bit) into RGB
in [-1, 1]; `read_image` also keeps the alpha channel and says how an unusual mode was converted. Saving is atomic: a temporary file in the destination folder, fsynced, then renamed, so a
crash never leaves a half-written image under the final name, and a full disk or an unwritable folder is one
WriteFailed line (write_fault: what the write needed, how to go on) with the temp file removed.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import warnings
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UserError, WriteFailed
from ..interrupt import kill_point

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def is_image_file(path: Path) -> bool:
    """A file whose suffix is one of IMAGE_SUFFIXES (any case)."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def images_under(folder: str | os.PathLike) -> list[Path]:
    """The image files under `folder`, recursively, sorted: how every command finds a folder's images."""
    return sorted(p for p in Path(folder).rglob("*") if is_image_file(p))


def images_in_folder(folder: str | os.PathLike, role: str = "") -> list[Path]:
    """images_under(folder), or a one-line UserError when it holds none (`role` says which input it was)."""
    found = images_under(folder)
    if not found:
        raise UserError(f"{folder}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)}){role}; check the folder")
    return found


_MODE_NAMES = {"1": "1-bit", "L": "grayscale", "LA": "grayscale", "P": "palette", "PA": "palette",
               "CMYK": "CMYK", "YCbCr": "YCbCr", "LAB": "Lab", "HSV": "HSV", "I": "32-bit grayscale",
               "F": "floating-point grayscale", "La": "grayscale", "RGBa": "premultiplied RGBA"}


def allow_large_images() -> None:
    """Lift Pillow's decompression-bomb limit for this process (the user vouched for the files)."""
    Image.MAX_IMAGE_PIXELS = None


@dataclass
class DecodedImage:
    """An image file's pixels before they become a tensor.

    `rgb` stays in its file's integer type (uint8, or uint16 for 16-bit files; float32 in [0, 1] for
    floating-point files) so a 24-megapixel photo costs 72 MB here, not 288 MB: translation converts
    one tile at a time. `alpha` is carried to the output unchanged; `note` says how an unusual mode
    was converted (None for RGB and RGBA).
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    note: str | None

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)"""
        return self.rgb.shape[0], self.rgb.shape[1]


def _decode(img: Image.Image) -> DecodedImage:
    """Split any PIL mode into RGB (in its integer precision), alpha and a conversion note."""
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img)
        if mode == "F":
            arr = np.clip(arr.astype(np.float32) / max(float(arr.max()), 1.0), 0.0, 1.0)
        else:
            arr = np.clip(arr, 0, 65535).astype(np.uint16)
        bits = "16-bit grayscale" if mode.startswith("I;16") else _MODE_NAMES[mode]
        note = f"{bits} converted to RGB (the output is 8-bit)"
        return DecodedImage(np.repeat(arr[..., None], 3, axis=2), None, note)
    note = None if mode in ("RGB", "RGBA") else f"{_MODE_NAMES.get(mode, mode)} ({mode}) converted to RGB"
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = np.asarray(img if mode == "RGBA" else img.convert("RGBA"))
        return DecodedImage(np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3]), note)
    return DecodedImage(np.asarray(img if mode == "RGB" else img.convert("RGB")), None, note)


def read_image(path: str | os.PathLike) -> DecodedImage:
    """Read an image file with EXIF orientation applied; every problem is a UserError naming the file."""
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
                return _decode(img)
    except Image.DecompressionBombError:
        raise UserError(f"{p}: image has more pixels than the safety limit ({Image.MAX_IMAGE_PIXELS * 2:,}) "
                        "against decompression bombs; pass --allow-large-images if you trust the file") from None
    except UnidentifiedImageError:
        raise UserError(f"{p}: not a readable image; pass a JPEG, PNG, WebP, BMP or TIFF file") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise UserError(f"{p}: the image could not be decoded ({e}); the file may be truncated or corrupt") from None


def rgb_to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8/uint16 (or float32 in [0, 1]) array, or a slice of one, to [1, 3, H, W] float32 in [-1, 1]."""
    peak = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(rgb.dtype, 1.0)
    arr = rgb.astype(np.float32) / peak
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0) * 2.0 - 1.0


def load_image(path: str | os.PathLike) -> torch.Tensor:
    """Read an image file as a [1, 3, H, W] float32 tensor in [-1, 1] (any mode; alpha dropped)."""
    return rgb_to_tensor(read_image(path).rgb)


def load_image_compact(path: str | os.PathLike) -> torch.Tensor:
    """An image file as [1, 3, H, W]: uint8 for 8-bit files (a quarter of float32's memory; see
    `as_float`), float32 in [-1, 1] for deeper ones, so no precision is lost."""
    rgb = read_image(path).rgb
    if rgb.dtype != np.uint8:
        return rgb_to_tensor(rgb)
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]  # one copy, writable


def as_float(image: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] uint8 (0..255) or float: float32 in [-1, 1], the range the networks take."""
    if image.dtype == torch.uint8:
        return image.float().div_(127.5).sub_(1.0)
    return image.float()


def fit_within(image: torch.Tensor, max_pixels: int) -> torch.Tensor:
    """[N, 3, H, W] downscaled (antialiased, aspect kept) to at most `max_pixels` pixels; smaller ones as is."""
    h, w = image.shape[-2:]
    if h * w <= max_pixels:
        return image
    scale = (max_pixels / (h * w)) ** 0.5
    size = (max(1, int(h * scale)), max(1, int(w * scale)))
    return torch.nn.functional.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)


def tensor_to_rgb(image: torch.Tensor) -> np.ndarray:
    """[1, 3, H, W] in [-1, 1] to HxWx3 uint8 (exact for a tensor that came from an 8-bit file)."""
    return np.ascontiguousarray(to_uint8_(image[0].detach().permute(1, 2, 0).to("cpu", torch.float32, copy=True)).numpy())


def to_uint8_(image: torch.Tensor) -> torch.Tensor:
    """Float image in [-1, 1] (any layout) to uint8, reusing the float tensor's memory for the maths."""
    return image.clamp_(-1, 1).add_(1.0).mul_(127.5).round_().to(torch.uint8)


def to_pil(image: torch.Tensor) -> Image.Image:
    """[3, H, W] or [1, 3, H, W] tensor in [-1, 1] (clamped here) to an 8-bit RGB image."""
    if image.dim() == 4:
        image = image[0]
    arr = ((image.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return Image.fromarray(arr.permute(1, 2, 0).cpu().numpy(), mode="RGB")


def _current_umask() -> int:
    """The process umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# The faults a write meets on a user's machine. Every later file meets the first three too (a batch stops at
# them); a folder without write permission fails only the files that go into it.
_FULL = {errno.ENOSPC, errno.EDQUOT}
_EVERYWHERE = _FULL | {errno.EROFS}
_PERMISSION = {errno.EACCES, errno.EPERM}


def _os_error_in(error: BaseException | None) -> OSError | None:
    """The OSError behind `error`: itself, or one it was raised from (torch.save reports a full disk as a
    RuntimeError raised while handling the OSError). Never behind a KeyboardInterrupt: that stays one."""
    seen: set[int] = set()
    while isinstance(error, Exception) and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def existing_folder(path: Path) -> Path:
    """`path`'s nearest folder that exists: where a failed write's permission and free space are looked up."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def can_write_below(folder: str | os.PathLike) -> bool:
    """Whether files could be created in `folder` (or, where it does not exist yet, its nearest parent that
    does): after one write failed for lack of permission, whether the others would fail too."""
    return os.access(existing_folder(Path(folder) / "x"), os.W_OK)


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def write_fault(error: BaseException, path: str | os.PathLike, written: int = 0, expected: int | None = None,
                at_most: bool = False) -> WriteFailed | None:
    """`error` as a one-line WriteFailed when it is a fault of the machine writing `path` (no space, quota,
    read-only file system, no permission), saying what the write needed; None for anything else, which
    keeps its traceback. `written`: bytes that reached the disk before it failed; `expected`: the whole
    (`at_most`: an upper bound, like an image's uncompressed size)."""
    os_error = _os_error_in(error)
    if os_error is None or os_error.errno not in _EVERYWHERE | _PERMISSION:
        return None
    path = Path(path)
    folder = existing_folder(path)
    reason = os_error.strerror or os.strerror(os_error.errno)
    if os_error.errno in _FULL:
        needs = [f"needs {'up to' if at_most else 'about'} {_size(expected)}"] if expected else (
            [f"{_size(written)} written before it failed"] if written else [])
        with suppress(OSError):
            if os_error.errno == errno.ENOSPC:
                needs.append(f"{_size(shutil.disk_usage(folder).free)} free there")
        what, remedy = ", ".join(needs) or "no room", "free space"
    elif os_error.errno == errno.EROFS:
        what, remedy = f"needs a writable file system at {folder}", f"make {folder} writable"
    else:
        what, remedy = f"needs write permission on {folder}", f"make {folder} writable"
    detail = f"{path}: {reason} ({what})"
    return WriteFailed(f"{detail}; nothing was written there; {remedy}, then run the same command again",
                       detail, remedy, os_error.errno in _EVERYWHERE)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object] | bytes,
                 expected_size: int | None = None, at_most: bool = False) -> Path:
    """Call `write(file_object)` (or write the bytes `write`) on a temp file beside `path`, fsync, then
    rename it over `path`.

    mkstemp creates the temp file with mode 0600 and the rename keeps it, so the mode is set to what
    a plain open() would give (0666 less the umask: 0644 under umask 022) before the rename.
    A full disk or a folder that cannot be written removes the temp file and raises WriteFailed, which
    says how much the write needed (`expected_size`, `at_most` for a bound; else the bytes' length or the
    size of the file it replaces); the file under `path`, if any, is left as it was.
    """
    path = Path(path)
    if isinstance(write, bytes):
        data, expected_size = write, len(write)
        write = lambda f: f.write(data)  # noqa: E731
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        kill_point(f"write:{path.name}")
        os.replace(tmp, path)
    except BaseException as e:
        written = 0
        if tmp is not None:
            with suppress(OSError):
                written = os.path.getsize(tmp)
            with suppress(OSError):
                os.unlink(tmp)
        if expected_size is None and path.is_file():
            expected_size = path.stat().st_size
        fault = write_fault(e, path, written, expected_size, at_most)
        if fault is None:
            raise
        raise fault from None
    return path


def save_image(image: torch.Tensor | Image.Image, path: str | os.PathLike, quality: int = 95) -> Path:
    """Write an image atomically; the format follows the suffix (PNG by default)."""
    pil = image if isinstance(image, Image.Image) else to_pil(image)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(Path(path).suffix.lower(), "PNG")
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    raw = pil.width * pil.height * len(pil.getbands())
    return atomic_write(path, lambda f: pil.save(f, format=fmt, **options), raw, at_most=True)


def fit_height(img: Image.Image, height: int) -> Image.Image:
    """The image scaled to `height` px, aspect kept (Lanczos)."""
    return img.resize((max(1, round(img.width * height / img.height)), height), Image.LANCZOS)


def hstack(images: list[Image.Image], gap: int = 0) -> Image.Image:
    """Images placed left to right on white, `gap` px apart, aligned at the top: the one strip builder
    (previews, the report's panels and image rows)."""
    width = sum(i.width for i in images) + gap * (len(images) - 1)
    sheet = Image.new("RGB", (width, max(i.height for i in images)), "white")
    x = 0
    for i in images:
        sheet.paste(i, (x, 0))
        x += i.width + gap
    return sheet


def side_by_side(images: list[torch.Tensor], height: int) -> Image.Image:
    """Images scaled to one height and placed left to right (the preview strip)."""
    return hstack([fit_height(to_pil(t), height) for t in images])
