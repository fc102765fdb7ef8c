"""The quality figures against values worked out independently: explicit loops, closed forms, invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sincut.evaluation.quality import StyleReference, evaluate
from sincut.evaluation.content import content_scores, edge_correlation, luminance, ssim
from sincut.evaluation.files import evaluate_files
from sincut.evaluation.style import laplacian_pyramid, patch_descriptors, pyramid_levels, style_distance
from sincut.evaluation.swd import random_projections, sliced_wasserstein, to_unit_range
from sincut.evaluation.selection import selection_key
from sincut.errors import UserError
from sincut.data.images import load_image

from .conftest import SAMPLES


def gray(values: np.ndarray) -> torch.Tensor:
    """An [H, W] array in [0, 1] as a grey [1, 3, H, W] image in sincut's [-1, 1] range."""
    t = torch.from_numpy(values).float()
    return (t * 2 - 1).expand(1, 3, *t.shape).clone()


@pytest.fixture(scope="module")
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled photo and painting at 128 x 72 and 112 x 88 (3 pyramid levels)."""
    src = Image.open(SAMPLES / "photo_montStMichel.jpg").convert("RGB").resize((128, 72), Image.LANCZOS)
    tgt = Image.open(SAMPLES / "painting_vincent_van_gogh_village_street_in_auver.jpg").convert("RGB")
    tgt = tgt.resize((112, 88), Image.LANCZOS)
    def to_tensor(im: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]

    return to_tensor(src), to_tensor(tgt)


def colour_transfer(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-channel mean and standard deviation of `image` matched to `reference`'s."""
    m, s = image.mean((2, 3), keepdim=True), image.std((2, 3), keepdim=True)
    rm, rs = reference.mean((2, 3), keepdim=True), reference.std((2, 3), keepdim=True)
    return ((image - m) / s * rs + rm).clamp(-1, 1)


# ---------------------------------------------------------------- identity and repeatability

def test_identical_images_give_zero_distance_and_perfect_content(pair):
    src, _ = pair
    q = evaluate(src, src, src)
    assert q.style_levels == (0.0, 0.0, 0.0) and q.style_distance == 0.0
    assert q.ssim == 1.0
    assert q.edge_correlation == pytest.approx(1.0, abs=1e-12)


def test_repeated_calls_agree_exactly_and_training_reference_matches(pair):
    src, tgt = pair
    out = colour_transfer(src, tgt)
    first, second = evaluate(out, tgt, src), evaluate(out, tgt, src)
    assert first == second
    # The training loop's cached TARGET descriptors give the very same figures.
    assert StyleReference(tgt, tuple(src.shape[-2:])).evaluate(out, src) == first


# ---------------------------------------------------------------- SSIM

def ssim_by_loops(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al.'s SSIM written out: Gaussian weights from the formula, every valid window by hand."""
    size, sigma = 11, 1.5
    g = [math.exp(-((i - 5) ** 2) / (2 * sigma**2)) for i in range(size)]
    total = sum(g)
    w = [[g[a] * g[b] / total**2 for b in range(size)] for a in range(size)]
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for i in range(x.shape[0] - size + 1):
        for j in range(x.shape[1] - size + 1):
            mx = my = sxx = syy = sxy = 0.0
            for a in range(size):
                for b in range(size):
                    mx += w[a][b] * x[i + a, j + b]
                    my += w[a][b] * y[i + a, j + b]
            for a in range(size):
                for b in range(size):
                    dx, dy = x[i + a, j + b] - mx, y[i + a, j + b] - my
                    sxx += w[a][b] * dx * dx
                    syy += w[a][b] * dy * dy
                    sxy += w[a][b] * dx * dy
            values.append((2 * mx * my + c1) * (2 * sxy + c2) / ((mx * mx + my * my + c1) * (sxx + syy + c2)))
    return sum(values) / len(values)


def test_ssim_matches_a_loop_implementation():
    rng = np.random.default_rng(3)
    x = rng.random((14, 13))
    y = np.clip(0.6 * x + 0.3 * rng.random((14, 13)) + 0.05, 0, 1)  # related but not equal
    expected = ssim_by_loops(x, y)
    got = ssim(torch.from_numpy(x)[None, None], torch.from_numpy(y)[None, None])
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0.2 < expected < 0.95  # a case that tests something


def test_ssim_of_two_flat_images_is_the_luminance_term():
    # No variance anywhere, so SSIM = (2 a b + C1) / (a^2 + b^2 + C1) with a, b the two grey levels.
    a, b, c1 = 0.5, 0.25, 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # = 0.25010 / 0.31260 = 0.80006...
    ssim, edges = content_scores(gray(np.full((16, 20), a)), gray(np.full((16, 20), b)))
    assert ssim == pytest.approx(expected, abs=1e-6)  # the inputs pass through float32
    assert edges == 1.0  # neither has an edge: counted as agreeing


def test_luminance_is_rec601():
    rgb = torch.tensor([0.2, 0.6, 1.0], dtype=torch.float64).view(1, 3, 1, 1)
    assert float(luminance(rgb)) == pytest.approx(0.299 * 0.2 + 0.587 * 0.6 + 0.114 * 1.0, abs=1e-12)


def test_output_of_another_size_is_resized_to_the_source(pair):
    src, _ = pair
    bigger = F.interpolate(src, scale_factor=2, mode="bilinear", align_corners=False)
    ssim, edges = content_scores(bigger, src)
    assert ssim > 0.9 and edges > 0.9


# ---------------------------------------------------------------- edges

def sobel_by_loops(x: np.ndarray) -> np.ndarray:
    kx = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    out = np.zeros((x.shape[0] - 2, x.shape[1] - 2))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            gx = sum(kx[a][b] * x[i + a, j + b] for a in range(3) for b in range(3))
            gy = sum(kx[b][a] * x[i + a, j + b] for a in range(3) for b in range(3))
            out[i, j] = math.hypot(gx, gy)
    return out


def test_edge_correlation_matches_numpy_corrcoef():
    rng = np.random.default_rng(5)
    x = rng.random((12, 15))
    y = np.clip(x + 0.4 * rng.random((12, 15)), 0, 1)
    expected = np.corrcoef(sobel_by_loops(x).ravel(), sobel_by_loops(y).ravel())[0, 1]
    got = edge_correlation(torch.from_numpy(x)[None, None], torch.from_numpy(y)[None, None])
    assert got == pytest.approx(expected, abs=1e-12)


def test_edge_correlation_ignores_inversion_and_contrast():
    x = np.random.default_rng(6).random((20, 20))
    for y in (1 - x, 0.3 * x + 0.2):
        assert edge_correlation(torch.from_numpy(x)[None, None], torch.from_numpy(y)[None, None]) == \
            pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------- style distance

def test_sliced_wasserstein_of_a_shifted_set_is_the_mean_projected_shift():
    rng = np.random.default_rng(7)
    a = torch.from_numpy(rng.normal(size=(50, 6))).float()
    shift = torch.tensor([0.5, -1.0, 0.0, 2.0, 0.25, 0.0])
    p = random_projections(6, 32)
    # Sorting keeps the order when every point moves by the same amount along a direction.
    expected = float((shift @ p).abs().mean())
    assert sliced_wasserstein(a, a + shift, p) == pytest.approx(expected, rel=1e-5)


def test_sliced_wasserstein_matches_sorted_lists_by_hand():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(9, 4)), rng.normal(size=(9, 4)) + 0.3
    p = random_projections(4, 5).double().numpy()
    expected = 0.0
    for k in range(p.shape[1]):
        pa = sorted(float(np.dot(row, p[:, k])) for row in a)
        pb = sorted(float(np.dot(row, p[:, k])) for row in b)
        expected += sum(abs(u - v) for u, v in zip(pa, pb)) / len(pa)
    expected /= p.shape[1]
    got = sliced_wasserstein(torch.from_numpy(a).float(), torch.from_numpy(b).float(), torch.from_numpy(p).float())
    assert got == pytest.approx(expected, rel=1e-5)


def test_projections_are_unit_and_fixed():
    p = random_projections(147)
    assert p.shape == (147, 512)
    assert torch.allclose(p.norm(dim=0), torch.ones(512))
    assert torch.equal(p, random_projections(147))


def test_pyramid_levels_stop_at_16_px():
    assert [pyramid_levels(s) for s in (16, 31, 32, 54, 72, 471, 576)] == [1, 1, 2, 2, 3, 5, 6]
    with pytest.raises(ValueError):
        pyramid_levels(15)


def test_laplacian_pyramid_adds_back_up_to_the_image(pair):
    image = to_unit_range(pair[0])
    levels = laplacian_pyramid(image, 3)
    assert [tuple(x.shape[-2:]) for x in levels] == [(72, 128), (36, 64), (18, 32)]
    rebuilt = levels[-1][None]
    for band in reversed(levels[:-1]):
        rebuilt = band[None] + F.interpolate(rebuilt, size=band.shape[-2:], mode="bilinear", align_corners=False)
    assert torch.allclose(rebuilt, image, atol=1e-5)


def test_patch_descriptors_are_the_7x7_neighbourhoods():
    level = torch.arange(3 * 9 * 10, dtype=torch.float32).view(3, 9, 10)
    d = patch_descriptors(level, 4096, torch.Generator().manual_seed(0))
    assert d.shape == (3 * 4, 3, 49)  # all (9-6) x (10-6) centres: fewer than the sample count
    assert torch.equal(d[0].view(3, 7, 7), level[:, 0:7, 0:7])
    assert torch.equal(d[-1].view(3, 7, 7), level[:, 2:9, 3:10])


def test_colour_transfer_is_closer_in_style_and_keeps_the_content(pair):
    src, tgt = pair
    moved = colour_transfer(src, tgt)
    before, after = evaluate(src, tgt, src), evaluate(moved, tgt, src)
    assert after.style_distance < before.style_distance
    assert after.style_levels[-1] < before.style_levels[-1]  # the low-pass level holds the colours
    assert after.ssim > 0.8 and after.edge_correlation > 0.9


def test_style_distance_of_sets_pools_the_images(pair):
    src, tgt = pair
    assert style_distance([src, tgt], [src, tgt]) == [0.0, 0.0, 0.0]
    assert min(style_distance([src], [src, tgt])) > 0


# ---------------------------------------------------------------- best-checkpoint rule

def test_selection_rule():
    good = {"style_distance": 0.4, "ssim": 0.7, "edge_correlation": 0.6}
    lost = {"style_distance": 0.1, "ssim": 0.3, "edge_correlation": 0.2}  # closer in style, content gone
    assert selection_key(good, "style", 0.5) == 0.4
    assert selection_key(lost, "style", 0.5) is None
    assert selection_key(lost, "style", 0.0) == 0.1
    assert selection_key(good, "ssim", 0.5) < selection_key(lost, "ssim", 0.5)
    assert selection_key(good, "edges", 0.5) == -0.6
    assert selection_key({**good, "sifid": 12.5}, "sifid", 0.5) == 12.5
    assert selection_key({**lost, "sifid": 3.0}, "sifid", 0.5) is None  # SIFID must not beat the floor
    assert selection_key(good, "sifid", 0.5) is None  # evaluated without the network


def test_files_too_small_are_named(tmp_path):
    small = tmp_path / "small.png"
    Image.new("RGB", (40, 12)).save(small)
    ok = tmp_path / "ok.png"
    Image.new("RGB", (40, 40)).save(ok)
    with pytest.raises(UserError, match="small.png.*12 px"):
        evaluate_files([(small, ok)], [ok])


def test_evaluate_files_matches_tensors(tmp_path, pair):
    src, tgt = pair
    paths = {}
    for name, t in (("src", src), ("tgt", tgt), ("out", colour_transfer(src, tgt))):
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray(((t[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)).save(paths[name])
    from_files = evaluate_files([(paths["out"], paths["src"])], [paths["tgt"]])
    from_tensors = evaluate(*(load_image(paths[n]) for n in ("out", "tgt", "src")))
    assert from_files == from_tensors
