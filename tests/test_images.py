"""Image loading: every mode becomes RGB in [-1, 1], EXIF orientation applied, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sincut.data.images import load_image, save_image
from sincut.errors import UserError

from .conftest import random_rgb


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16", "RGB"])
def test_modes_become_rgb(tmp_path: Path, mode: str):
    img = random_rgb(12, 10).convert(mode) if mode != "I;16" else Image.fromarray(
        (np.arange(120, dtype=np.uint16).reshape(12, 10) * 500))
    path = tmp_path / f"img_{mode.replace(';', '')}.{'tif' if mode in ('CMYK', 'I;16') else 'png'}"
    img.save(path)
    if mode == "I;16":
        assert Image.open(path).mode.startswith("I")
    t = load_image(path)
    assert t.shape == (1, 3, 12, 10) and t.dtype == torch.float32
    assert t.min() >= -1 and t.max() <= 1


def test_sixteen_bit_keeps_its_scale(tmp_path: Path):
    arr = np.full((4, 4), 65535, dtype=np.uint16)
    arr[0, 0] = 0
    Image.fromarray(arr).save(tmp_path / "a.png")
    t = load_image(tmp_path / "a.png")
    assert t[0, :, 1, 1].tolist() == [1.0, 1.0, 1.0] and t[0, :, 0, 0].tolist() == [-1.0, -1.0, -1.0]


def test_exif_orientation_is_applied(tmp_path: Path):
    img = random_rgb(20, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    assert load_image(tmp_path / "rot.jpg").shape == (1, 3, 30, 20)


def test_values_round_trip_through_save(tmp_path: Path):
    img = random_rgb(8, 9)
    img.save(tmp_path / "a.png")
    t = load_image(tmp_path / "a.png")
    save_image(t, tmp_path / "b.png")
    assert Image.open(tmp_path / "b.png").tobytes() == img.tobytes()
    assert not list(tmp_path.glob("*.tmp"))


def test_unicode_and_space_paths(tmp_path: Path):
    p = tmp_path / "café photo é.png"
    random_rgb(5, 5).save(p)
    assert load_image(p).shape == (1, 3, 5, 5)


@pytest.mark.parametrize("case,message", [
    ("missing", "no such file"), ("empty", "is empty"), ("text", "not a readable image"),
    ("truncated", "truncated"), ("folder", "is a folder"),
])
def test_bad_files_name_the_file(tmp_path: Path, case: str, message: str):
    p = tmp_path / f"{case}.jpg"
    if case == "empty":
        p.write_bytes(b"")
    elif case == "text":
        p.write_text("hello")
    elif case == "truncated":
        random_rgb(200, 200).save(tmp_path / "full.jpg", quality=95)
        data = (tmp_path / "full.jpg").read_bytes()
        p.write_bytes(data[: len(data) // 3])
    elif case == "folder":
        p.mkdir()
    with pytest.raises(UserError) as info:
        load_image(p)
    assert str(p) in str(info.value) and message in str(info.value)
