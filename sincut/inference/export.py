"""Export a trained generator as a standalone TorchScript (or ONNX) model that needs only torch.

The exported model maps a float32 [N, 3, H, W] tensor in [-1, 1] to the translation, same shape,
unclamped (clamp to [-1, 1] before making an image), for any H and W, in TorchScript and ONNX alike:
inside the graph it mirrors the model's border, pads to the network's stride and crops back, with the
code `sincut translate` pads with (border.py). It leaves out the per-pixel noise (the noise term is zero,
its mean), so it is deterministic; `sincut translate --no-noise` gives the same result.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from .. import __version__
from ..data.images import atomic_write
from ..errors import UserError
from ..nets import Generator
from .border import pad_for_generator
from .model import load_generator


class NoiseFreeGenerator(nn.Module):
    """G with its noise maps set to zero; input sides must divide by G's stride."""

    def __init__(self, G: Generator) -> None:
        super().__init__()
        self.G = G
        self.scales = G.noise_scales()

    def forward(self, x: Tensor) -> Tensor:
        noise = [torch.zeros_like(x[:, :1, ::s, ::s]) for s in self.scales]
        out, _ = self.G(x.contiguous(memory_format=torch.channels_last), noise=noise)
        return out


class PaddedGenerator(nn.Module):
    """What both exports trace: each input mirrored and padded to G's stride inside the graph by border.py
    (the code `sincut translate` pads with, its sizes traced from the input), G without noise, and the
    result cropped back to the input's size, so the graph takes any height and width."""

    def __init__(self, G: Generator, border: int = 0) -> None:
        super().__init__()
        self.core = NoiseFreeGenerator(G)
        self.stride, self.border = G.stride, border

    def forward(self, x: Tensor) -> Tensor:
        h, w, b = x.shape[2], x.shape[3], self.border
        return self.core(pad_for_generator(x, b, self.stride))[:, :, b:b + h, b:b + w]


def _example(G: Generator) -> Tensor:
    """The tracing input: wider than the reach of a guided filter or fine detail, whose radius is clamped
    for tiny images by a size check that a trace keeps as a constant."""
    side = max(16, getattr(G, "extra_context", 0) + 1) * G.stride
    return torch.zeros(1, 3, side, side)


def export_torchscript(model: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write a TorchScript generator (loadable with torch.jit.load alone) atomically to `out`."""
    G, config, step = load_generator(model, torch.device("cpu"))
    with warnings.catch_warnings():
        # torch 2.13 marks TorchScript deprecated in favour of torch.export, but it still works and it is
        # what a plain `torch.jit.load` (C++ and mobile included) reads.
        warnings.simplefilter("ignore", DeprecationWarning)
        # the guided filter's size checks (--guide-radius) are traced as constants: channels fixed, sizes free
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(PaddedGenerator(G, config.border), _example(G), check_trace=False)
    about = {"sincut_version": __version__, "step": step, "ngf": config.ngf, "input": "float32 NCHW in [-1, 1]",
             "output": "same shape, unclamped", "noise": "off (sincut translate --no-noise)", "border": config.border}

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(traced, buffer, _extra_files={"sincut.json": json.dumps(about)})
    return atomic_write(out, buffer.getvalue())


def onnx_bytes(G: Generator, border: int = 0) -> bytes:
    """G (noise-free, padded and cropped inside the graph: PaddedGenerator) as an ONNX graph with dynamic
    N, H, W. Exports a copy: G itself keeps its device and memory format."""
    G = copy.deepcopy(G).cpu().to(memory_format=torch.contiguous_format)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the exporter's notes on constant folding
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # as in export_torchscript
        torch.onnx.export(PaddedGenerator(G, border), (_example(G),), buffer, dynamo=False, input_names=["image"],
                          output_names=["translated"],
                          dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                        "translated": {0: "batch", 2: "height", 3: "width"}})
    return buffer.getvalue()


def export_onnx(model: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write an ONNX generator with dynamic N, H, W (any sizes: it pads and crops like the TorchScript one)."""
    if importlib.util.find_spec("onnx") is None:
        raise UserError("--format onnx needs the onnx package, which is not installed: `pip install onnx`, "
                        "or export TorchScript (the default)")
    G, config, _ = load_generator(model, torch.device("cpu"))
    graph = onnx_bytes(G, config.border)
    return atomic_write(out, graph)
