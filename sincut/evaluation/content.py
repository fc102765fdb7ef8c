"""Content preservation: SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, C1 = (0.01 L)^2,
C2 = (0.03 L)^2, L = 1, 'valid' windows only, mean of the map) between the Rec. 601 luminance
Y = 0.299 R + 0.587 G + 0.114 B of OUTPUT and SOURCE; and the Pearson correlation of their Sobel
edge magnitudes. When the sizes differ, OUTPUT is resized to SOURCE's size (bilinear, antialiased).

SSIM and edges run on the CPU in float64, so a repeated call agrees exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .swd import to_unit_range


SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
LUMA = (0.299, 0.587, 0.114)  # Rec. 601


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
