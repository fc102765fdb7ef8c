"""What surrounds an image before G sees it: the mirrored border (TrainConfig.border) and the padding to G's
stride, for tensors and for HxWx3 arrays alike. The tensor functions are TorchScript-compatible, so the
exported model (export.py) pads by these very rules and `sincut translate` and the export agree.
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from torch import Tensor


def pad_to_stride(x: Tensor, stride: int) -> Tensor:
    """Pad bottom and right so both sides divide by G's stride (reflect; replicate for 1-pixel sides)."""
    h, w = x.shape[2], x.shape[3]
    pad_h, pad_w = (stride - h % stride) % stride, (stride - w % stride) % stride
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, [0, pad_w, 0, pad_h], mode="replicate" if min(h, w) <= max(pad_h, pad_w) else "reflect")


def _border_mode(height: int, width: int, border: int) -> str:
    """Reflection needs a side longer than the border; tiny images replicate their edge instead."""
    return "reflect" if min(height, width) > border else "replicate"


def add_border(image: Tensor, border: int) -> Tensor:
    """[N, 3, H, W] with `border` pixels of its edge mirrored on every side (see TrainConfig.border)."""
    if border == 0:
        return image
    return F.pad(image, [border, border, border, border], mode=_border_mode(image.shape[2], image.shape[3], border))


def add_border_rgb(rgb: np.ndarray, border: int) -> np.ndarray:
    """The same for an HxWx3 array (NumPy's 'reflect' mirrors like torch's, without the edge pixel)."""
    if border == 0:
        return rgb
    mode = "reflect" if _border_mode(rgb.shape[0], rgb.shape[1], border) == "reflect" else "edge"
    return np.pad(rgb, ((border, border), (border, border), (0, 0)), mode=mode)
