"""The edge-aware change of a residual G (--guide-radius): a guided filter steered by the photo's luminance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sincut.config import make_config
from sincut.data.images import rgb_to_tensor
from sincut.nets import Generator
from sincut.nets.stylegan2 import GUIDE_EPS, LUMA, fine_detail, guided_change
from sincut.inference.tiles import CONTEXT
from sincut.inference.translator import Translator, translate_tensor


def naive_guided(luma: np.ndarray, change: np.ndarray, radius: int, eps: float, y: int, x: int) -> float:
    """He et al.'s formulas at one interior pixel, window by window in float64: every window k of side
    2r+1 covering (y, x) fits change ~ a_k * luma + b_k by least squares (a_k = cov / (var + eps) with
    population statistics); the output is mean_k(a_k) * luma[y, x] + mean_k(b_k)."""
    a_sum = b_sum = 0.0
    count = 0
    for cy in range(y - radius, y + radius + 1):
        for cx in range(x - radius, x + radius + 1):
            i = luma[cy - radius:cy + radius + 1, cx - radius:cx + radius + 1]
            p = change[cy - radius:cy + radius + 1, cx - radius:cx + radius + 1]
            a = ((i * p).mean() - i.mean() * p.mean()) / (i.var() + eps)
            a_sum += a
            b_sum += p.mean() - a * i.mean()
            count += 1
    return a_sum / count * luma[y, x] + b_sum / count


def test_guided_change_matches_the_formulas_window_by_window():
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 24, 24, generator=gen, dtype=torch.float64) * 2 - 1
    change = torch.randn(1, 3, 24, 24, generator=gen, dtype=torch.float64) * 0.3
    out = guided_change(image, change, radius=2)
    luma = sum(w * image[0, c].numpy() for c, w in enumerate(LUMA))
    for y, x in ((4, 4), (11, 17), (19, 8)):  # interior: every window inside the image, no border rule
        for c in range(3):
            expected = naive_guided(luma, change[0, c].numpy(), 2, GUIDE_EPS, y, x)
            assert out[0, c, y, x].item() == pytest.approx(expected, abs=1e-9)


def test_a_change_can_step_only_where_the_photo_does():
    """Photo: a bright sky over dark land (an edge at row 16). A change that steps with the photo's edge
    keeps its step; the same step where the photo is flat (column 16, inside the sky) is smoothed away."""
    image = torch.full((1, 3, 32, 32), 0.8)
    image[:, :, 16:] = -0.6
    along = torch.zeros(1, 3, 32, 32)
    along[:, :, 16:] = 0.5  # the change steps with the skyline
    kept = guided_change(image, along, radius=4)
    assert (kept[0, :, 17] - kept[0, :, 14]).abs().min() > 0.45  # still a step of ~0.5 across one row pair
    across = torch.zeros(1, 3, 32, 32)
    across[:, :, :, 16:] = 0.5  # a step inside the flat sky: nothing in the photo supports it
    smoothed = guided_change(image, across, radius=4)
    step_in_sky = (smoothed[0, :, 4, 17] - smoothed[0, :, 4, 14]).abs().max()
    assert step_in_sky < 0.3  # 0.5 spread over ~17 columns: about 3/17 of it across three columns
    assert smoothed[0, :, 4, :4].mean() < 0.01 and smoothed[0, :, 4, -4:].mean() > 0.49  # the levels far away


def test_tiles_read_the_filter_reach_too():
    """A guided G reaches 2r px past its convolutions; tiles read that much more, so tiled == whole. Tiles
    that read only a plain G's 32 px around what they keep miss most of the filter's 48 px, and differ."""
    torch.manual_seed(0)
    G = Generator(ngf=2, crop_size=32, residual=True, guide_radius=24)
    with torch.no_grad():
        for p in G.parameters():
            p.normal_(0, 0.5)
    G = G.eval().requires_grad_(False)
    rgb = (np.random.default_rng(0).random((120, 644, 3)) * 255).astype(np.uint8)
    whole = translate_tensor(G, rgb_to_tensor(rgb), seed=1)[0].permute(1, 2, 0)
    translator = Translator(G, torch.device("cpu"), tile=300, seed=1)
    assert translator.context == 30 + 48  # the plain G's measured 30 px (test_translate.py) and 2r
    assert (translator.translate_tiled(rgb) - whole).abs().max().item() < 1e-5
    translator.context = CONTEXT  # what a tile reads around a plain G: not enough for this one
    assert (translator.translate_tiled(rgb) - whole).abs().max().item() > 1e-4


def test_guide_radius_needs_a_residual_generator():
    assert make_config("quick", guide_radius=4).guide_radius == 4
    with pytest.raises(ValueError, match="--guide-radius"):
        make_config("sincut", guide_radius=4)


def test_quick_without_a_residual_generator_is_one_line(tiny_pair, tmp_path):
    from click.testing import CliRunner

    from sincut.cli import main

    src, tgt = tiny_pair
    args = ["train", str(src), str(tgt), "--preset", "quick", "--no-residual", "--steps", "2",
            "--out", str(tmp_path / "run"), "--device", "cpu"]
    result = CliRunner().invoke(main, args, prog_name="sincut")
    assert result.exit_code == 2 and "--guide-radius 0" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_fine_detail_is_the_change_minus_its_gaussian_blur():
    """--detail-sigma's bypass, against a Gaussian worked in numpy: an impulse far from the border leaves
    itself minus the normalised 3-sigma kernel; a constant change has no detail at all."""
    sigma, r = 1.5, 5  # 3 sigma rounded up
    impulse = torch.zeros(1, 3, 31, 31)
    impulse[:, :, 15, 15] = 1.0
    out = fine_detail(impulse, sigma)[0, 0].numpy()
    g = np.exp(-np.arange(-r, r + 1) ** 2 / (2 * sigma**2))
    kernel = np.outer(g, g) / g.sum() ** 2
    expected = -np.pad(kernel, 15 - r)
    expected[15, 15] += 1.0
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert fine_detail(torch.full((1, 3, 20, 20), 0.3), sigma).abs().max().item() < 1e-6


def test_detail_bypasses_the_filter_only_below_the_blur():
    """G's change is filtered as before, plus its own fine detail: with the filter's output known, what
    is left is exactly change - blur(change); and --detail-sigma without a guide radius is refused."""
    torch.manual_seed(0)
    G = Generator(ngf=2, crop_size=32, n_blocks=2, residual=True, guide_radius=2, detail_sigma=2.0)
    with torch.no_grad():
        for p in G.parameters():
            p.normal_(0, 0.3)
    x = torch.rand(1, 3, 40, 40) * 2 - 1
    noise = G.draw_noise(1, 40, 40, torch.Generator().manual_seed(0))
    G.detail_sigma = 0.0
    filtered = G(x, noise=noise)[0]
    G.detail_sigma = 2.0
    with_detail = G(x, noise=noise)[0]
    G.residual, G.guide_radius, G.detail_sigma = False, 0, 0.0  # the raw change: to_rgb's output
    raw = G(x, noise=noise)[0]
    torch.testing.assert_close(with_detail - filtered, fine_detail(raw, 2.0), atol=1e-5, rtol=0)
    assert fine_detail(raw, 2.0).abs().mean() > 1e-3  # a real difference, not zeros on both sides
    with pytest.raises(ValueError, match="--detail-sigma"):
        make_config("quick", guide_radius=0, detail_sigma=2.0)


def test_linear_change_darkens_as_freely_as_it_brightens():
    """The paper's last layer (leaky ReLU, slope 0.2, gain sqrt 2) passes a negative change at a fifth of a
    positive one's size; --linear-change passes both alike: negating to_rgb's weight negates the change."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    changes = {}
    for linear in (False, True):
        g = Generator(ngf=2, crop_size=16, n_blocks=2, residual=True, linear_change=linear).eval()
        assert (g.to_rgb.bias is None) == linear
        with torch.no_grad():
            w = torch.randn_like(g.to_rgb.weight)
            g.to_rgb.weight.copy_(w)
            up = g(x)[0] - x
            g.to_rgb.weight.copy_(-w)
            down = g(x)[0] - x
        changes[linear] = (up, down)
    up, down = changes[True]
    torch.testing.assert_close(down, -up, atol=1e-6, rtol=0)
    up, down = changes[False]
    slope = torch.nn.functional.leaky_relu(torch.tensor(-1.0), 0.2).abs().item()  # 0.2 by hand
    # Where the paper's change is positive the negated weight gives slope x its size, negative: a fifth.
    positive = up > 1e-4
    torch.testing.assert_close(down[positive], -slope * up[positive], atol=1e-6, rtol=1e-4)


def test_linear_change_needs_a_residual_generator():
    with pytest.raises(ValueError, match="--residual"):
        make_config("sincut", linear_change=True)
