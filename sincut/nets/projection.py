"""PatchNCE projection head F: sample feature locations, project with a 2-layer MLP, L2-normalise."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ProjectionHead(nn.Module):
    """One MLP (C -> nc -> nc, ReLU between) per NCE layer.

    Built from the layer widths up front (rather than lazily at the first batch, as the paper's code
    does) so optimisers and checkpoints see every parameter from the start. Initialised like the
    paper's code: Xavier-normal weights with gain 0.02, zero biases.
    """

    def __init__(self, in_channels: list[int], nc: int = 256, init_gain: float = 0.02) -> None:
        super().__init__()
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(c, nc), nn.ReLU(), nn.Linear(nc, nc)) for c in in_channels
        )
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight, gain=init_gain)
                nn.init.zeros_(m.bias)

    @staticmethod
    def sample_locations(feats: list[Tensor], num_patches: int, generator: torch.Generator | None = None) -> list[Tensor]:
        """Random spatial indices per layer, shared by every image of the batch (as in the paper)."""
        ids = []
        for f in feats:
            hw = f.shape[2] * f.shape[3]
            perm = torch.randperm(hw, device=f.device, generator=generator)
            ids.append(perm[: min(num_patches, hw)])
        return ids

    def forward(self, feats: list[Tensor], patch_ids: list[Tensor]) -> list[Tensor]:
        """Rows ordered image-major: row b * num_patches + p is location p of image b."""
        if not len(feats) == len(patch_ids) == len(self.mlps):
            raise ValueError(f"F has {len(self.mlps)} MLPs but got {len(feats)} feature maps and "
                             f"{len(patch_ids)} index sets")
        out = []
        for f, ids, mlp in zip(feats, patch_ids, self.mlps):
            rows = f.flatten(2).index_select(2, ids).transpose(1, 2).flatten(0, 1)  # [B * P, C]
            rows = mlp(rows)
            out.append(rows / (rows.norm(p=2, dim=1, keepdim=True) + 1e-7))
        return out
