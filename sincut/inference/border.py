"""What surrounds an image before G sees it: the mirrored border (TrainConfig.border) and the padding to G's
stride, for tensors and for HxWx3 arrays alike.

The padding is a gather of rows and columns whose indices are computed from the image's size with tensor
operations only (no Python branch on a size). Traced, as both exports are (export.py), those sizes are the
traced input's, so the TorchScript and ONNX models pad any height and width by the very rules `sincut
translate` follows: one implementation, not one per engine.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _source(length: Tensor, before: Tensor | int, after: Tensor | int, reflect: Tensor) -> Tensor:
    """For each position of an axis of `length` pixels padded by `before` and `after`, the pixel it copies:
    mirrored about the edge pixel without repeating it (torch's 'reflect', valid while the padding is
    shorter than the axis) where `reflect`, else the nearest edge pixel ('replicate')."""
    i = torch.arange(length + before + after) - before
    last = length - 1
    mirrored = last - (last - i.abs()).abs()
    return torch.where(reflect, mirrored, torch.minimum(i.clamp(min=0), last))


def padding_index(height: Tensor | int, width: Tensor | int, border: int, stride: int) -> tuple[Tensor, Tensor]:
    """The rows and columns of an image that its padded copy reads: `border` pixels mirrored on every side
    (replicated when a side is no longer than the border), then bottom and right padded until both sides
    divide by `stride` (mirrored; replicated when a side is no longer than that padding)."""
    h, w = torch.as_tensor(height), torch.as_tensor(width)
    mirror = torch.minimum(h, w) > border
    rows, cols = _source(h, border, border, mirror), _source(w, border, border, mirror)
    h, w = h + 2 * border, w + 2 * border
    pad_h, pad_w = (stride - h % stride) % stride, (stride - w % stride) % stride
    reflect = torch.minimum(h, w) > torch.maximum(pad_h, pad_w)
    return rows[_source(h, 0, pad_h, reflect)], cols[_source(w, 0, pad_w, reflect)]


def pad_for_generator(x: Tensor, border: int, stride: int) -> Tensor:
    """[N, C, H, W] with its mirrored border and padded to G's stride (padding_index); the caller crops
    `border` off the result's top and left and keeps H x W. Eager calls with nothing to pad return `x`
    itself (no copy of a large image); a trace always gathers, as the next input may need padding."""
    height, width = x.shape[2], x.shape[3]
    if not torch.jit.is_tracing() and border == 0 and height % stride == 0 and width % stride == 0:
        return x
    rows, cols = padding_index(height, width, border, stride)
    # indexing (not index_select) takes CPU indices for a tensor on any device, so a trace made on the
    # CPU keeps working on a GPU
    return x[:, :, rows][:, :, :, cols]


def pad_to_stride(x: Tensor, stride: int) -> Tensor:
    """Pad bottom and right so both sides divide by G's stride (reflect; replicate for 1-pixel sides)."""
    return pad_for_generator(x, 0, stride)


def add_border_rgb(rgb: np.ndarray, border: int) -> np.ndarray:
    """An HxWx3 array with `border` pixels mirrored on every side, by the same rule as the tensors."""
    if border == 0:
        return rgb
    rows, cols = padding_index(rgb.shape[0], rgb.shape[1], border, 1)
    return rgb[np.ix_(rows.numpy(), cols.numpy())]
