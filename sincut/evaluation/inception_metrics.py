"""The Inception-feature figures: SIFID (single-image FID, one image's Conv2d_4a feature positions against
another's), FID and KID over image sets; the network itself comes from inception.py.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator

import torch
from torch import Tensor

from .swd import seeded_generator

if TYPE_CHECKING:
    from .inception import Inception


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
    gen = seeded_generator(11, size)
    total = 0.0
    for _ in range(subsets):
        ia = torch.randperm(a.shape[0], generator=gen)[:size]
        ib = torch.randperm(b.shape[0], generator=gen)[:size]
        total += mmd_unbiased(a[ia], b[ib])
    return total / subsets
