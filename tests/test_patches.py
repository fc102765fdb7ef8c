"""The Kornia patch sampler: shapes, value range, zoom bounds, flips, coverage and antialiasing."""

from __future__ import annotations

import pytest
import torch

from sincut.data.patches import PatchSampler


def ramp_image(h: int, w: int) -> torch.Tensor:
    """Channel 0 rises left to right, channel 1 top to bottom, both from -1 to 1 at pixel centres."""
    xs = -1 + 2 * (torch.arange(w) + 0.5) / w
    ys = -1 + 2 * (torch.arange(h) + 0.5) / h
    img = torch.zeros(1, 3, h, w)
    img[0, 0] = xs.view(1, w).expand(h, w)
    img[0, 1] = ys.view(h, 1).expand(h, w)
    return img


def interior_slope(p: torch.Tensor, dim: int) -> torch.Tensor:
    """Median step per output pixel along `dim` (2 = y, 3 = x), ignoring the border rows."""
    d = p.diff(dim=dim)[..., 4:-4, 4:-4]
    return d.flatten(1).median(dim=1).values


def test_shapes_and_value_range():
    torch.manual_seed(0)
    img = torch.rand(1, 3, 120, 200) * 2 - 1
    sampler = PatchSampler(img, crop_size=32)
    out = sampler.sample(16, torch.Generator().manual_seed(1))
    assert out.shape == (16, 3, 32, 32)
    assert out.dtype == torch.float32
    assert out.min() >= -1.0 - 1e-5 and out.max() <= 1.0 + 1e-5


def test_zoom_stays_in_bounds_and_axes_are_independent():
    h, w, c = 480, 640, 32
    sampler = PatchSampler(ramp_image(h, w), crop_size=c, zoom=(1 / 3, 1.0), flip=False)
    p = sampler.sample(64, torch.Generator().manual_seed(0))
    # slope per output pixel = (2 / W) * (region / crop), and zoom = crop / region
    zoom_x = 2 / (interior_slope(p[:, :1], 3) * w)
    zoom_y = 2 / (interior_slope(p[:, 1:2], 2) * h)
    assert zoom_x.min() > 1 / 3 * 0.97 and zoom_x.max() < 1.0 * 1.03
    assert zoom_y.min() > 1 / 3 * 0.97 and zoom_y.max() < 1.0 * 1.03
    assert zoom_x.max() - zoom_x.min() > 0.4  # the range is actually used
    assert not torch.allclose(zoom_x, zoom_y, atol=0.05)  # drawn independently


def test_fixed_zoom_is_exact():
    sampler = PatchSampler(ramp_image(300, 400), crop_size=32, zoom=(0.5, 0.5), flip=False)
    p = sampler.sample(8, torch.Generator().manual_seed(0))
    zoom_x = 2 / (interior_slope(p[:, :1], 3) * 400)
    assert torch.allclose(zoom_x, torch.full_like(zoom_x, 0.5), rtol=0.02)


def test_flips_are_random_per_patch():
    sampler = PatchSampler(ramp_image(200, 300), crop_size=32, flip=True)
    slopes = interior_slope(sampler.sample(64, torch.Generator().manual_seed(0))[:, :1], 3)
    flipped = (slopes < 0).sum().item()
    assert 10 < flipped < 54


def test_stratified_positions_cover_the_image():
    # zoom 1/2 on a 400 px wide image: each patch spans 64 native px, so its left edge is in [0, 336].
    w = 400
    sampler = PatchSampler(ramp_image(400, w), crop_size=32, zoom=(0.5, 0.5), flip=False, positions="stratified")
    p = sampler.sample(16, torch.Generator().manual_seed(3))
    left_px = ((p[:, 0, :, 0].mean(1) + 1) * w / 2) - 1  # centre of first output column, native px
    quarter = torch.clamp((left_px / (w - 64) * 4).long(), 0, 3)
    assert torch.bincount(quarter, minlength=4).tolist() == [4, 4, 4, 4]  # stratified: 4 per column


def test_downscaling_is_antialiased():
    # A one-pixel checkerboard has all its energy at the Nyquist frequency: at zoom 1/3 an
    # antialiased sampler returns nearly flat grey, a plain bilinear crop returns strong aliasing.
    yy, xx = torch.meshgrid(torch.arange(300), torch.arange(300), indexing="ij")
    board = (((yy + xx) % 2) * 2 - 1).float().expand(1, 3, 300, 300).contiguous()
    sampler = PatchSampler(board, crop_size=32, zoom=(1 / 3, 1 / 3), flip=False)
    p = sampler.sample(8, torch.Generator().manual_seed(0))
    assert p.std().item() < 0.1
    from kornia.geometry.transform import crop_and_resize
    box = torch.tensor([[[10.0, 10.0], [105.0, 10.0], [105.0, 105.0], [10.0, 105.0]]])
    naive = crop_and_resize(board, box, (32, 32))
    assert naive.std().item() > 0.3 > 3 * p.std().item()  # the moire the pyramid avoids


def test_images_smaller_than_the_crop_are_upscaled():
    sampler = PatchSampler(torch.rand(1, 3, 20, 30) * 2 - 1, crop_size=32)
    assert sampler.sample(4, torch.Generator().manual_seed(0)).shape == (4, 3, 32, 32)


def test_same_generator_seed_repeats():
    sampler = PatchSampler(torch.rand(1, 3, 100, 100), crop_size=16)
    a = sampler.sample(4, torch.Generator().manual_seed(5))
    b = sampler.sample(4, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        PatchSampler(torch.rand(3, 10, 10))
    with pytest.raises(ValueError):
        PatchSampler(torch.rand(1, 3, 10, 10), zoom=(0.8, 0.5))


def test_paper_positions_are_cells_of_an_offset_grid():
    # The paper's code at zoom 1/2 on a 400 px wide image: zoomed width 200 = 6 cells of 32 plus 8 px of
    # room, so a patch's left edge is offset + 32 * cell with offset in 0..8 zoomed px: in native px,
    # 2 * offset (0..16) + 64 * cell, with every one of the 6 cells in use.
    w = 400
    sampler = PatchSampler(ramp_image(400, w), crop_size=32, zoom=(0.5, 0.5), flip=False)
    p = sampler.sample(64, torch.Generator().manual_seed(3))
    left_px = ((p[:, 0, :, 0].mean(1) + 1) * w / 2) - 1  # first output column's left edge, native px
    assert float((left_px % 64).max()) <= 16 + 0.2
    assert sorted(set((left_px // 64).long().tolist())) == [0, 1, 2, 3, 4, 5]
