"""What the style and texture distances (and KID's subsets) share: images in [0, 1], generators seeded by
what is sampled, random unit directions, and the sliced Wasserstein distance (its L1 form) of two patch sets.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


PATCH = 7                  # neighbourhood side
PROJECTIONS = 512          # random directions of the sliced Wasserstein distance
SEED = 0


def to_unit_range(image: Tensor) -> Tensor:
    """sincut's [-1, 1] image convention (clamped, as when saved) to [0, 1], float32 on the CPU."""
    return ((image.detach().float().cpu().clamp(-1, 1) + 1.0) / 2.0)


def seeded_generator(*parts: int) -> torch.Generator:
    seed = SEED
    for p in parts:
        seed = seed * 1_000_003 + p
    return torch.Generator().manual_seed(seed % (2**63))


def random_projections(dim: int, count: int = PROJECTIONS) -> Tensor:
    """`count` unit vectors in R^dim as the columns of a [dim, count] matrix, always the same ones."""
    p = torch.randn(dim, count, generator=seeded_generator(dim, count))
    return p / p.norm(dim=0, keepdim=True)


def sliced_wasserstein(a: Tensor, b: Tensor, projections: Tensor) -> float:
    """Mean over directions of the mean |sorted(a p) - sorted(b p)|; a, b: [n, d] sets of equal size."""
    if a.shape != b.shape:
        raise ValueError(f"sample sets must have equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    # numpy's sort (SIMD) is about 20x faster than torch.sort here; rows are directions.
    pa = np.sort((projections.T @ a.T).numpy(), axis=1)
    pb = np.sort((projections.T @ b.T).numpy(), axis=1)
    return float(np.abs(pa - pb).mean(dtype=np.float64))


def equal_size(a: Tensor, b: Tensor, level: int) -> tuple[Tensor, Tensor]:
    n = min(len(a), len(b))
    cut = []
    for side, x in enumerate((a, b)):
        cut.append(x if len(x) == n else x[torch.randperm(len(x), generator=seeded_generator(7, level, side))[:n]])
    return cut[0], cut[1]
