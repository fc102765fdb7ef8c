"""Quality figures for a translation: how close its look is to TARGET, how much of SOURCE it keeps.

Style distance: a multi-scale sliced Wasserstein distance (SWD) between the 7x7 RGB patch
distributions of OUTPUT and TARGET, level by level of a Laplacian pyramid (as in Karras et al.,
"Progressive Growing of GANs", 2018, with the choices below fixed so the number is repeatable):

- Images in [0, 1]. Gaussian levels by `kornia.geometry.transform.pyrdown` (5x5 binomial blur, then
  half size, rounded down); band k = Gaussian level k minus level k+1 expanded back bilinearly; the
  last level is the low-pass Gaussian itself (it carries the colours). Levels go down while the
  smaller side of the smallest image involved is still >= 16 px, so OUTPUT and TARGET get the same
  number of levels even when their sizes differ.
- Per level, 4,096 patch centres per image set (spread evenly over its images; all positions when an
  image has fewer), drawn from a seeded generator, so identical inputs give identical samples.
- Normalisation is joint: per level and colour channel, the mean and standard deviation of the two
  sets together are subtracted and divided out. A per-image normalisation would hide exactly the
  colour and contrast differences a style distance should see.
- 512 random unit directions in the 147-d patch space (seeded). SWD of two equal-size sets = mean over
  directions of mean |sorted(a . p) - sorted(b . p)| (the L1 form: a Wasserstein-1 estimate). Sets of
  unequal size are cut to the smaller one by a seeded shuffle.

Content preservation: SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, C1 = (0.01 L)^2,
C2 = (0.03 L)^2, L = 1, 'valid' windows only, mean of the map) between the Rec. 601 luminance
Y = 0.299 R + 0.587 G + 0.114 B of OUTPUT and SOURCE; and the Pearson correlation of their Sobel
edge magnitudes. When the sizes differ, OUTPUT is resized to SOURCE's size (bilinear, antialiased).

Texture distance: a sliced Wasserstein distance between the 7x7 patches of the two images' high-passed
luminance at one fixed scale. It asks "are the brush strokes / grain alike?" with colour and global
contrast taken out (SIFID at 256 px and the low-pass style levels mostly see the palette):

- Each image ([0, 1], Rec. 601 luminance Y) is resized (bilinear, antialiased) to 512 px on its
  shorter side, so the figure does not depend on the resolution the translation was evaluated at.
- High-pass: Y minus its Gaussian blur (sigma 2 px, 13 taps, reflected borders), then divided by its
  own standard deviation, so an affine change of brightness or contrast leaves the figure unchanged.
- 32,768 patch centres per image set (valid positions only, spread evenly over the images), drawn
  from a generator seeded by (image index, image size); sets cut to equal size by a seeded shuffle.
- 256 seeded unit directions in the 49-d patch space; the same L1 form of SWD as the style distance.

This is an evaluation figure, unlike the training-time patch SWD on 7x7 RGB patches at crop scale:
no colour, and one scale for every image, so runs trained at different sizes compare.

Everything runs on the CPU in float32 (SSIM and edges in float64), so a repeated call agrees exactly
and a GPU run reports the same numbers as `sincut eval` on its saved images (up to 8-bit rounding).
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from kornia.geometry.transform import pyrdown
from PIL import Image
from torch import Tensor

from .errors import UserError

if TYPE_CHECKING:
    from .inception import Inception

SMALLEST_LEVEL = 16        # px: the pyramid stops before the smaller side drops below this
PATCH = 7                  # neighbourhood side
SAMPLES_PER_LEVEL = 4096   # patch centres per level per image set
PROJECTIONS = 512          # random directions of the sliced Wasserstein distance
SEED = 0
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
LUMA = (0.299, 0.587, 0.114)  # Rec. 601
MIN_SIDE = max(SMALLEST_LEVEL, SSIM_WINDOW)
TEXTURE_SIDE = 512          # px: the shorter side both images are brought to
TEXTURE_SIGMA = 2.0         # px: the Gaussian whose blur the high-pass removes
TEXTURE_SAMPLES = 32768     # patch centres per image set (noise floor: ~0.010, an image against itself elsewhere)
TEXTURE_PROJECTIONS = 256   # random directions in the 49-d patch space



@dataclass(frozen=True)
class Quality:
    """The figures of one evaluation. Style levels are finest first; the last is the low-pass level."""

    style_levels: tuple[float, ...]
    ssim: float
    edge_correlation: float
    pairs: int = 1
    sifid: float | None = None  # only where the FID Inception network is installed
    texture_distance: float | None = None  # high-passed luminance patches at 512 px (see module doc)
    style_distance: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "style_distance", sum(self.style_levels) / len(self.style_levels))

    def to_dict(self) -> dict:
        figures = {"style_distance": self.style_distance, "style_levels": list(self.style_levels),
                   "ssim": self.ssim, "edge_correlation": self.edge_correlation, "pairs": self.pairs}
        if self.texture_distance is not None:
            figures["texture_distance"] = self.texture_distance
        if self.sifid is not None:
            figures["sifid"] = self.sifid
        return figures


def to_unit_range(image: Tensor) -> Tensor:
    """sincut's [-1, 1] image convention (clamped, as when saved) to [0, 1], float32 on the CPU."""
    return ((image.detach().float().cpu().clamp(-1, 1) + 1.0) / 2.0)


# ---------------------------------------------------------------- style: sliced Wasserstein distance

def pyramid_levels(min_side: int) -> int:
    """How many levels a pyramid gets when the smallest image involved has this smaller side."""
    if min_side < MIN_SIDE:
        raise ValueError(f"images need at least {MIN_SIDE} px on each side, got {min_side}")
    return int(math.floor(math.log2(min_side / SMALLEST_LEVEL))) + 1


def laplacian_pyramid(image: Tensor, levels: int) -> list[Tensor]:
    """[1, 3, H, W] in [0, 1] -> `levels` tensors [3, h, w]: band-pass levels, then the low-pass rest."""
    gaussians = [image]
    for _ in range(levels - 1):
        gaussians.append(pyrdown(gaussians[-1]))
    bands = [g - F.interpolate(g_next, size=g.shape[-2:], mode="bilinear", align_corners=False)
             for g, g_next in zip(gaussians, gaussians[1:])]
    return [b[0] for b in bands + [gaussians[-1]]]


def _generator(*parts: int) -> torch.Generator:
    seed = SEED
    for p in parts:
        seed = seed * 1_000_003 + p
    return torch.Generator().manual_seed(seed % (2**63))


def patch_descriptors(level: Tensor, count: int, gen: torch.Generator) -> Tensor:
    """`count` (or all, if fewer) 7x7 neighbourhoods of a [3, h, w] level as rows [n, 3, 49]."""
    _, h, w = level.shape
    r = PATCH // 2
    valid_h, valid_w = h - 2 * r, w - 2 * r
    total = valid_h * valid_w
    idx = torch.arange(total) if total <= count else torch.randperm(total, generator=gen)[:count]
    ys, xs = idx // valid_w + r, idx % valid_w + r
    offsets = torch.arange(-r, r + 1)
    rows = ys[:, None, None] + offsets[None, :, None]
    cols = xs[:, None, None] + offsets[None, None, :]
    patches = level[:, rows, cols]  # [3, n, 7, 7]
    return patches.permute(1, 0, 2, 3).reshape(len(idx), 3, PATCH * PATCH)


def collect_descriptors(images: Sequence[Tensor], levels: int) -> list[Tensor]:
    """Per level, the patch descriptors of a set of [1, 3, H, W] images in [0, 1], pooled.

    Positions depend only on (image index, level, image size), so two identical sets sample alike.
    """
    per_image = math.ceil(SAMPLES_PER_LEVEL / len(images))
    pooled: list[list[Tensor]] = [[] for _ in range(levels)]
    for i, image in enumerate(images):
        add_descriptors(pooled, image, levels, per_image, i)
    return [torch.cat(p) for p in pooled]


def add_descriptors(pooled: list[list[Tensor]], image: Tensor, levels: int, per_image: int, index: int) -> None:
    """Append one image's descriptors to `pooled` (one list per level); lets folders stream."""
    for k, level in enumerate(laplacian_pyramid(image, levels)):
        pooled[k].append(patch_descriptors(level, per_image, _generator(index, k)))


def random_projections(dim: int, count: int = PROJECTIONS) -> Tensor:
    """`count` unit vectors in R^dim as the columns of a [dim, count] matrix, always the same ones."""
    p = torch.randn(dim, count, generator=_generator(dim, count))
    return p / p.norm(dim=0, keepdim=True)


def sliced_wasserstein(a: Tensor, b: Tensor, projections: Tensor) -> float:
    """Mean over directions of the mean |sorted(a p) - sorted(b p)|; a, b: [n, d] sets of equal size."""
    if a.shape != b.shape:
        raise ValueError(f"sample sets must have equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    # numpy's sort (SIMD) is about 20x faster than torch.sort here; rows are directions.
    pa = np.sort((projections.T @ a.T).numpy(), axis=1)
    pb = np.sort((projections.T @ b.T).numpy(), axis=1)
    return float(np.abs(pa - pb).mean(dtype=np.float64))


def _equal_size(a: Tensor, b: Tensor, level: int) -> tuple[Tensor, Tensor]:
    n = min(len(a), len(b))
    cut = []
    for side, x in enumerate((a, b)):
        cut.append(x if len(x) == n else x[torch.randperm(len(x), generator=_generator(7, level, side))[:n]])
    return cut[0], cut[1]


def style_distance_levels(a_levels: Sequence[Tensor], b_levels: Sequence[Tensor]) -> list[float]:
    """SWD per level between two pooled descriptor sets (from `collect_descriptors`)."""
    distances = []
    for k, (a, b) in enumerate(zip(a_levels, b_levels, strict=True)):
        a, b = _equal_size(a, b, k)
        both = torch.cat([a, b])
        mean = both.mean(dim=(0, 2), keepdim=True)
        std = both.std(dim=(0, 2), keepdim=True).clamp_min(1e-8)
        a, b = ((a - mean) / std).flatten(1), ((b - mean) / std).flatten(1)
        distances.append(sliced_wasserstein(a, b, random_projections(a.shape[1])))
    return distances


def style_distance(outputs: Sequence[Tensor], targets: Sequence[Tensor]) -> list[float]:
    """Per-level SWD between two sets of [1, 3, H, W] images in [-1, 1] (one image each is a set)."""
    outputs = [to_unit_range(t) for t in outputs]
    targets = [to_unit_range(t) for t in targets]
    levels = pyramid_levels(min(min(t.shape[-2:]) for t in [*outputs, *targets]))
    return style_distance_levels(collect_descriptors(outputs, levels), collect_descriptors(targets, levels))


# ---------------------------------------------------------------- texture: high-passed luminance patches

def texture_map(image: Tensor) -> Tensor:
    """[1, 3, H, W] in [-1, 1] -> [h, w] float32: luminance at TEXTURE_SIDE px short side, high-passed
    and divided by its own standard deviation (a flat image, std under 1e-6, gives zeros)."""
    y = luminance(to_unit_range(image)).float()
    h, w = y.shape[-2:]
    scale = TEXTURE_SIDE / min(h, w)
    size = (max(TEXTURE_SIDE, round(h * scale)), max(TEXTURE_SIDE, round(w * scale)))
    if size != (h, w):
        y = F.interpolate(y, size=size, mode="bilinear", align_corners=False, antialias=True)
    return high_pass(y)[0, 0]


def high_pass(y: Tensor) -> Tensor:
    """[1, 1, H, W] -> Y minus its Gaussian blur (reflected borders), over the result's own std."""
    g = gaussian_window(2 * math.ceil(3 * TEXTURE_SIGMA) + 1, TEXTURE_SIGMA).to(y.dtype)
    r = len(g) // 2
    blurred = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), g.view(1, 1, 1, -1))
    blurred = F.conv2d(F.pad(blurred, (0, 0, r, r), mode="reflect"), g.view(1, 1, -1, 1))
    detail = y - blurred
    std = float(detail.std())
    # Below a thousandth of an 8-bit step it is float rounding of a flat image, not texture.
    return detail / std if std > 1e-6 else torch.zeros_like(detail)


def texture_positions(shape: tuple[int, int], count: int, index: int) -> tuple[Tensor, Tensor]:
    """(rows, cols) of `count` patch centres (all, if fewer) of an [h, w] map; seeded by size and index."""
    h, w = shape
    r = PATCH // 2
    valid_h, valid_w = h - 2 * r, w - 2 * r
    total = valid_h * valid_w
    gen = _generator(13, index, h, w)
    idx = torch.arange(total) if total <= count else torch.randperm(total, generator=gen)[:count]
    return idx // valid_w + r, idx % valid_w + r


def texture_patches(detail: Tensor, count: int, index: int = 0) -> Tensor:
    """`count` 7x7 patches of an [h, w] high-pass map as rows [n, 49] (positions: texture_positions)."""
    ys, xs = texture_positions(tuple(detail.shape), count, index)
    r = PATCH // 2
    offsets = torch.arange(-r, r + 1)
    patches = detail[ys[:, None, None] + offsets[None, :, None], xs[:, None, None] + offsets[None, None, :]]
    return patches.reshape(len(ys), PATCH * PATCH)


def texture_descriptors(images: Sequence[Tensor]) -> Tensor:
    """The pooled patch rows of a set of [1, 3, H, W] images in [-1, 1] (one image is a set)."""
    per_image = math.ceil(TEXTURE_SAMPLES / len(images))
    return torch.cat([texture_patches(texture_map(im), per_image, i) for i, im in enumerate(images)])


def texture_distance_of(a: Tensor, b: Tensor) -> float:
    """SWD between two pooled patch sets (texture_descriptors), cut to equal size first."""
    a, b = _equal_size(a, b, 1000)
    return sliced_wasserstein(a, b, random_projections(PATCH * PATCH, TEXTURE_PROJECTIONS))


def texture_distance(outputs: Sequence[Tensor], targets: Sequence[Tensor]) -> float:
    """Texture distance (module doc) between two sets of [1, 3, H, W] images in [-1, 1]."""
    return texture_distance_of(texture_descriptors(outputs), texture_descriptors(targets))


# ---------------------------------------------------------------- content: SSIM and edges

def luminance(image: Tensor) -> Tensor:
    """[1, 3, H, W] in [0, 1] -> [1, 1, H, W] Rec. 601 Y, float64."""
    w = torch.tensor(LUMA, dtype=torch.float64).view(1, 3, 1, 1)
    return (image.double() * w).sum(dim=1, keepdim=True)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur_valid(x: Tensor, g: Tensor) -> Tensor:
    """Separable Gaussian over 'valid' positions only (no padding: borders are not invented)."""
    x = F.conv2d(x, g.view(1, 1, 1, -1))
    return F.conv2d(x, g.view(1, 1, -1, 1))


def ssim(x: Tensor, y: Tensor, dynamic_range: float = 1.0) -> float:
    """Mean SSIM of two [1, 1, H, W] single-channel images (Wang et al. 2004, Gaussian window)."""
    g = gaussian_window()
    c1, c2 = (SSIM_K1 * dynamic_range) ** 2, (SSIM_K2 * dynamic_range) ** 2
    mu_x, mu_y = _blur_valid(x, g), _blur_valid(y, g)
    var_x = _blur_valid(x * x, g) - mu_x**2
    var_y = _blur_valid(y * y, g) - mu_y**2
    cov = _blur_valid(x * y, g) - mu_x * mu_y
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(index.mean())


def sobel_magnitude(x: Tensor) -> Tensor:
    """Gradient magnitude of a [1, 1, H, W] image with the 3x3 Sobel kernels, valid positions only."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype)
    kernels = torch.stack([kx, kx.T]).unsqueeze(1)
    gx, gy = F.conv2d(x, kernels).unbind(1)
    return torch.sqrt(gx**2 + gy**2)


def edge_correlation(x: Tensor, y: Tensor) -> float:
    """Pearson correlation of the Sobel magnitudes of two [1, 1, H, W] images.

    An image without any edge has no defined correlation: two such images count as 1, one as 0.
    """
    a, b = sobel_magnitude(x).flatten(), sobel_magnitude(y).flatten()
    a, b = a - a.mean(), b - b.mean()
    norm_a, norm_b = float(a.norm()), float(b.norm())
    if norm_a == 0.0 or norm_b == 0.0:
        return 1.0 if norm_a == norm_b else 0.0
    return max(-1.0, min(1.0, float((a @ b) / (norm_a * norm_b))))  # rounding can step past 1


def content_scores(output: Tensor, source: Tensor) -> tuple[float, float]:
    """(SSIM, edge correlation) of OUTPUT's and SOURCE's luminance; [1, 3, H, W] in [-1, 1]."""
    out, src = to_unit_range(output), to_unit_range(source)
    if out.shape[-2:] != src.shape[-2:]:
        out = F.interpolate(out, size=src.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
    y_out, y_src = luminance(out), luminance(src)
    return ssim(y_out, y_src), edge_correlation(y_out, y_src)


def evaluate(output: Tensor, target: Tensor, source: Tensor) -> Quality:
    """All figures for one translation: OUTPUT against TARGET (style) and SOURCE (content)."""
    s, e = content_scores(output, source)
    return Quality(tuple(style_distance([output], [target])), s, e,
                   texture_distance=texture_distance([output], [target]))


class StyleReference:
    """TARGET's descriptors, computed once, for a training run's repeated evaluations."""

    def __init__(self, target: Tensor, output_size: tuple[int, int]) -> None:
        t = to_unit_range(target)
        self.levels = pyramid_levels(min(*t.shape[-2:], *output_size))
        self.descriptors = collect_descriptors([t], self.levels)
        self.texture = texture_descriptors([target])

    def evaluate(self, output: Tensor, source: Tensor) -> Quality:
        out = collect_descriptors([to_unit_range(output)], self.levels)
        s, e = content_scores(output, source)
        texture = texture_distance_of(texture_descriptors([output]), self.texture)
        return Quality(tuple(style_distance_levels(out, self.descriptors)), s, e, texture_distance=texture)


# ---------------------------------------------------------------- Inception figures: SIFID, FID, KID

def gaussian_fit(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and unbiased covariance (divisor n - 1, as numpy.cov) of [n, d] samples, float64."""
    if features.shape[0] < 2:
        raise ValueError(f"a Gaussian fit needs at least 2 samples, got {features.shape[0]}")
    x = features.double()
    mean = x.mean(dim=0)
    centred = x - mean
    return mean, centred.T @ centred / (x.shape[0] - 1)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Eigen-decompositions and SVDs on one thread: for these matrix sizes the threaded LAPACK path
    was 200x slower on a busy 2-core CPU (4 s against 0.02 s for a 192 x 192 eigh), and one thread
    gives the same bits on every machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _psd_sqrt(matrix: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix by eigen-decomposition (float64)."""
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(mean_a: Tensor, cov_a: Tensor, mean_b: Tensor, cov_b: Tensor) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mean_a, cov_a) and N(mean_b, cov_b):
    |mean_a - mean_b|^2 + tr(cov_a + cov_b - 2 (cov_a cov_b)^(1/2)).

    tr((A B)^(1/2)) is taken as the sum of the square roots of the eigenvalues of the symmetric
    A^(1/2) B A^(1/2) (same eigenvalues as A B), so no general matrix square root (SciPy) is needed.
    """
    mean_a, cov_a, mean_b, cov_b = (t.double() for t in (mean_a, cov_a, mean_b, cov_b))
    with _one_thread():
        root_a = _psd_sqrt(cov_a)
        middle = root_a @ cov_b @ root_a
        trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    value = (mean_a - mean_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt
    return max(0.0, float(value))  # rounding can dip below 0 for identical Gaussians


def frechet_distance_of_samples(a: Tensor, b: Tensor) -> float:
    """frechet_distance of the Gaussians fitted (gaussian_fit) to samples a [n, d] and b [m, d].

    With fewer samples than dimensions (FID on a few images: 2048-d features) it works in sample
    space: for centred X, Y, cov_a = X^T X / (n-1), cov_b = Y^T Y / (m-1), and the nonzero eigenvalues
    of cov_a cov_b are the squared singular values of X Y^T / sqrt((n-1)(m-1)), so
    tr (cov_a cov_b)^(1/2) is that matrix's nuclear norm: an n x m SVD instead of d x d eigen-problems.
    """
    n, m, d = a.shape[0], b.shape[0], a.shape[1]
    if min(n, m) >= d:
        return frechet_distance(*gaussian_fit(a), *gaussian_fit(b))
    if n < 2 or m < 2:
        raise ValueError(f"a Gaussian fit needs at least 2 samples, got {n} and {m}")
    a, b = a.double(), b.double()
    x, y = a - a.mean(dim=0), b - b.mean(dim=0)
    scale = ((n - 1) * (m - 1)) ** 0.5
    with _one_thread():
        trace_sqrt = torch.linalg.svdvals(x @ y.T).sum() / scale
    value = ((a.mean(dim=0) - b.mean(dim=0)).square().sum() + x.square().sum() / (n - 1)
             + y.square().sum() / (m - 1) - 2 * trace_sqrt)
    return max(0.0, float(value))


def sifid(output: Tensor, target: Tensor, network: Inception | None = None) -> float:
    """Single-image FID (Shaham et al. 2019) of OUTPUT against TARGET, lower is closer.

    Both are [1, 3, H, W] in [-1, 1] (sincut's convention), sizes may differ. Each is resized to a
    shorter side of 256 px; the Frechet distance is taken between Gaussians fitted to the 192-channel
    Conv2d_4a_3x3 map of the FID Inception network, every spatial position one sample. `network`
    defaults to the installed one (`inception.require_inception`: UserError when there is none).
    """
    return SifidReference(target, network).distance(output)


class SifidReference:
    """TARGET's Gaussian fitted once, for repeated SIFID evaluations (training, folders)."""

    def __init__(self, target: Tensor, network: Inception | None = None) -> None:
        from .inception import require_inception

        self.network = network if network is not None else require_inception()
        self.mean, self.cov = gaussian_fit(self.network.sifid_features(target))

    def distance(self, output: Tensor) -> float:
        mean, cov = gaussian_fit(self.network.sifid_features(output))
        return frechet_distance(mean, cov, self.mean, self.cov)


def polynomial_kernel(a: Tensor, b: Tensor) -> Tensor:
    """k(x, y) = (x . y / d + 1)^3, the kernel of KID (Binkowski et al. 2018), float64."""
    return (a.double() @ b.double().T / a.shape[1] + 1.0) ** 3


def mmd_unbiased(a: Tensor, b: Tensor) -> float:
    """Unbiased estimate of the squared MMD between sets a [m, d] and b [n, d] under the cubic
    polynomial kernel: off-diagonal means of k(a, a) and k(b, b), minus twice the mean of k(a, b)."""
    m, n = a.shape[0], b.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {m} and {n}")
    k_aa, k_bb, k_ab = polynomial_kernel(a, a), polynomial_kernel(b, b), polynomial_kernel(a, b)
    within_a = (k_aa.sum() - k_aa.diagonal().sum()) / (m * (m - 1))
    within_b = (k_bb.sum() - k_bb.diagonal().sum()) / (n * (n - 1))
    return float(within_a + within_b - 2 * k_ab.mean())


KID_SUBSET_SIZE, KID_SUBSETS = 1000, 100


def kernel_inception_distance(a: Tensor, b: Tensor, subset_size: int = KID_SUBSET_SIZE,
                              subsets: int = KID_SUBSETS) -> float:
    """KID: the unbiased MMD^2 averaged over `subsets` seeded random subsets of min(subset_size, m, n)
    samples from each set, as in the KID paper; when both sets fit in one subset, the full sets once."""
    size = min(subset_size, a.shape[0], b.shape[0])
    if size == a.shape[0] == b.shape[0]:
        return mmd_unbiased(a, b)
    gen = _generator(11, size)
    total = 0.0
    for _ in range(subsets):
        ia = torch.randperm(a.shape[0], generator=gen)[:size]
        ib = torch.randperm(b.shape[0], generator=gen)[:size]
        total += mmd_unbiased(a[ia], b[ib])
    return total / subsets


def sifid_files(outputs: Sequence[Path], target: Path, network: Inception) -> list[float]:
    """SIFID of each OUTPUT file against one TARGET file (TARGET's Gaussian fitted once)."""
    from .data.images import load_image

    reference = SifidReference(load_image(target), network)
    return [reference.distance(load_image(p)) for p in outputs]


def fid_kid_files(outputs: Sequence[Path], targets: Sequence[Path], network: Inception) -> tuple[float, float]:
    """(FID, KID) of two image sets on the 2048-d pool features (images resized to 299 x 299)."""
    from .data.images import load_image

    if len(outputs) < 2 or len(targets) < 2:
        raise UserError(f"FID/KID compare two folders of at least 2 images each, got {len(outputs)} outputs "
                        f"and {len(targets)} targets; pass larger folders")
    features = [network.pool_features([load_image(p) for p in paths]) for paths in (outputs, targets)]
    fid = frechet_distance_of_samples(features[0], features[1])
    return fid, kernel_inception_distance(features[0], features[1])


# ---------------------------------------------------------------- choosing the best checkpoint

def selection_key(quality: dict, select_by: str, min_ssim: float) -> float | None:
    """Lower is better; None when this evaluation may not become `best`.

    style, sifid: lowest style distance or SIFID among evaluations whose SSIM is at least `min_ssim`
    (a translation that has lost the source's content must not win on style alone); an evaluation
    without SIFID (no network) is never chosen by it. ssim, edges: highest value.
    """
    if select_by == "style":
        return quality["style_distance"] if quality["ssim"] >= min_ssim else None
    if select_by == "sifid":
        return quality.get("sifid") if quality["ssim"] >= min_ssim else None
    if select_by == "ssim":
        return -quality["ssim"]
    if select_by == "edges":
        return -quality["edge_correlation"]
    raise ValueError(f"--select-by must be style, sifid, ssim or edges, got {select_by!r}")


# ---------------------------------------------------------------- files and folders (`sincut eval`)

def _min_side(path: Path) -> int:
    """The smaller side from the file header (EXIF rotation cannot change it); decoding errors later."""
    try:
        with Image.open(path) as img:
            return min(img.size)
    except Exception:  # unreadable: load_image will raise the precise error
        from .data.images import load_image

        return min(load_image(path).shape[-2:])


def _check_size(path: Path) -> int:
    side = _min_side(path)
    if side < MIN_SIDE:
        raise UserError(f"{path}: the image is {side} px on its smaller side; the metrics need at least "
                        f"{MIN_SIDE} px (pass a larger image)")
    return side


def evaluate_files(pairs: Sequence[tuple[Path, Path]], targets: Sequence[Path]) -> Quality:
    """(OUTPUT, SOURCE) file pairs against TARGET files: style of all outputs pooled against all
    targets pooled (one distribution distance), content scores averaged over the pairs."""
    from .data.images import load_image

    if not pairs or not targets:
        raise ValueError("evaluate_files needs at least one pair and one target")
    sides = {p: _check_size(p) for p in {*(p for pair in pairs for p in pair), *targets}}
    levels = pyramid_levels(min(sides[p] for p in [*(o for o, _ in pairs), *targets]))
    out_pool: list[list[Tensor]] = [[] for _ in range(levels)]
    tgt_pool: list[list[Tensor]] = [[] for _ in range(levels)]
    out_texture: list[Tensor] = []
    tgt_texture: list[Tensor] = []
    scores = []
    per_output = math.ceil(SAMPLES_PER_LEVEL / len(pairs))
    texture_per_output = math.ceil(TEXTURE_SAMPLES / len(pairs))
    for i, (out_path, src_path) in enumerate(pairs):
        output = load_image(out_path)
        scores.append(content_scores(output, load_image(src_path)))
        add_descriptors(out_pool, to_unit_range(output), levels, per_output, i)
        out_texture.append(texture_patches(texture_map(output), texture_per_output, i))
    per_target = math.ceil(SAMPLES_PER_LEVEL / len(targets))
    texture_per_target = math.ceil(TEXTURE_SAMPLES / len(targets))
    for i, path in enumerate(targets):
        target = load_image(path)
        add_descriptors(tgt_pool, to_unit_range(target), levels, per_target, i)
        tgt_texture.append(texture_patches(texture_map(target), texture_per_target, i))
    style = style_distance_levels([torch.cat(p) for p in out_pool], [torch.cat(p) for p in tgt_pool])
    texture = texture_distance_of(torch.cat(out_texture), torch.cat(tgt_texture))
    n = len(scores)
    return Quality(tuple(style), sum(s for s, _ in scores) / n, sum(e for _, e in scores) / n, pairs=n,
                   texture_distance=texture)


def match_pairs(output: str | os.PathLike, source: str | os.PathLike) -> list[tuple[Path, Path]]:
    """OUTPUT and SOURCE as files, or folders matched by relative path without the suffix."""
    from .inference.files import expand_inputs

    out, src = Path(output), Path(source)
    for p in (out, src):
        if not p.exists():
            raise UserError(f"{p}: no such file or folder; check the path")
    if out.is_dir() != src.is_dir():
        raise UserError(f"{out} and {src}: pass two image files or two folders (OUTPUT and --content)")
    if not out.is_dir():
        return [(out, src)]
    sources = {rel.with_suffix(""): f for f, rel in expand_inputs([src])}
    pairs = []
    for f, rel in expand_inputs([out]):
        match = sources.get(rel.with_suffix(""))
        if match is None:
            raise UserError(f"{f}: no image named {rel.with_suffix('')}.* in {src}; outputs and sources "
                            "must share file names (as `sincut translate` writes them)")
        pairs.append((f, match))
    return pairs
