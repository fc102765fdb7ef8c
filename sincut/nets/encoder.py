"""What PatchNCE needs from any generator: its encoder as an indexed list of layers."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class EncoderFeatures:
    """Mixin for generators with `self.encoder` (an nn.ModuleList; index i is NCE layer i) and
    `self.stride` (the product of the encoder's downsamplings)."""

    encoder: nn.ModuleList
    stride: int

    def encode(self, x: Tensor, layers: tuple[int, ...]) -> list[Tensor]:
        """Features of the requested encoder layers; stops after the deepest one."""
        if layers and max(layers) >= len(self.encoder):
            raise ValueError(f"NCE layer {max(layers)} does not exist: the encoder has layers 0..{len(self.encoder) - 1}")
        feats = []
        last = max(layers)
        for i, layer in enumerate(self.encoder):
            x = layer(x)
            if i in layers:
                feats.append(x)
            if i == last:
                break
        return feats

    def feature_channels(self, layers: tuple[int, ...]) -> list[int]:
        """Channel count of each requested encoder layer, found by a tiny dry run."""
        with torch.no_grad():
            w = next(self.parameters())  # type: ignore[attr-defined]
            probe = torch.zeros(1, 3, 4 * self.stride, 4 * self.stride, device=w.device, dtype=w.dtype)
            return [f.shape[1] for f in self.encode(probe, layers)]
