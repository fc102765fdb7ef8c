"""`sincut translate --engine onnxruntime`: the exported, noise-free generator run by onnxruntime on the CPU."""

from __future__ import annotations

import importlib.util

import torch
from torch import Tensor

from ..errors import UserError
from ..nets import Generator
from .export import onnx_bytes


class OnnxRuntimeGenerator:
    """G run by onnxruntime on the CPU (`sincut translate --engine onnxruntime`): `sincut export --format
    onnx`'s graph without a border (Translator adds the border to the whole image before tiling), so
    `G(x, noise=zeros)` for inputs whose sides divide by the stride, and for others the same padding and
    crop as torch's Translator; [B, 3, h, w] float32 in, float32 out. benchmarks/translate.py times it
    against torch."""

    def __init__(self, G: Generator, threads: int) -> None:
        missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
        if missing:
            raise UserError(f"--engine onnxruntime needs {' and '.join(missing)}, not installed: "
                            f"`pip install {' '.join(missing)}`, or leave out --engine")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(onnx_bytes(G), options,
                                                    providers=["CPUExecutionProvider"])

    def __call__(self, x: Tensor) -> Tensor:
        out = self.session.run(None, {"image": x.float().contiguous().numpy()})[0]
        return torch.from_numpy(out)
