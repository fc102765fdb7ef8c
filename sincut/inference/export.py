"""Export a trained generator as a standalone TorchScript (or ONNX) model that needs only torch.

The exported model maps a float32 [N, 3, H, W] tensor in [-1, 1] to the translation, same shape,
unclamped (clamp to [-1, 1] before making an image), for any H and W: it pads to the network's stride
and crops back like `sincut translate`. It leaves out the per-pixel noise (the noise term is zero, its
mean), so it is deterministic; `sincut translate --no-noise` gives the same result.
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
import torch.nn.functional as F
from torch import Tensor, nn

from .. import __version__
from ..data.images import atomic_write
from ..errors import UserError
from ..nets import Generator
from .border import add_border, pad_to_stride
from .model import load_generator


class NoiseFreeGenerator(nn.Module):
    """G with its noise maps set to zero; input sides must divide by G's stride (traced as is)."""

    def __init__(self, G: Generator) -> None:
        super().__init__()
        self.G = G
        self.scales = G.noise_scales()

    def forward(self, x: Tensor) -> Tensor:
        noise = [torch.zeros_like(x[:, :1, ::s, ::s]) for s in self.scales]
        out, _ = self.G(x.contiguous(memory_format=torch.channels_last), noise=noise)
        return out


class PadToStride(nn.Module):
    """Mirrors the model's border around the image and pads H, W to the stride with border.py's own
    functions (the ones `sincut translate` uses), then crops back: scripted, so the padding follows each
    input's size instead of the example the core was traced with."""

    def __init__(self, core: nn.Module, stride: int, border: int = 0) -> None:
        super().__init__()
        self.core = core
        self.stride = stride
        self.border = border

    def forward(self, x: Tensor) -> Tensor:
        h, w, b = x.shape[2], x.shape[3], self.border
        return self.core(pad_to_stride(add_border(x, b), self.stride))[:, :, b:b + h, b:b + w]


class Bordered(nn.Module):
    """The ONNX graph's border: mirror `border` pixels on each side, run the core, crop them off (traced
    with dynamic H and W, so H and W must exceed the border)."""

    def __init__(self, core: nn.Module, border: int) -> None:
        super().__init__()
        self.core, self.border = core, border

    def forward(self, x: Tensor) -> Tensor:
        b = self.border
        return self.core(F.pad(x, [b, b, b, b], mode="reflect"))[:, :, b:-b, b:-b]


def _example(G: Generator) -> Tensor:
    side = max(16, getattr(G, "guide_radius", 0) + 1) * G.stride  # wider than a guided filter's reach
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
        core = torch.jit.trace(NoiseFreeGenerator(G), _example(G), check_trace=False)
        scripted = torch.jit.script(PadToStride(core, G.stride, config.border))
    about = {"sincut_version": __version__, "step": step, "ngf": config.ngf, "input": "float32 NCHW in [-1, 1]",
             "output": "same shape, unclamped", "noise": "off (sincut translate --no-noise)", "border": config.border}

    def write(f) -> None:
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(scripted, buffer, _extra_files={"sincut.json": json.dumps(about)})
        f.write(buffer.getvalue())

    return atomic_write(out, write)


def onnx_bytes(G: Generator, border: int = 0) -> bytes:
    """G (noise-free, with the mirrored border when > 0) as an ONNX graph with dynamic N, H, W. Exports a
    copy: G itself keeps its device and memory format."""
    G = copy.deepcopy(G).cpu().to(memory_format=torch.contiguous_format)
    graph = NoiseFreeGenerator(G) if border == 0 else Bordered(NoiseFreeGenerator(G), border)
    example = _example(G) if border == 0 else torch.zeros(1, 3, 2 * border + 32, 2 * border + 32)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the exporter's notes on constant folding
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # as in export_torchscript
        torch.onnx.export(graph, (example,), buffer, dynamo=False, input_names=["image"],
                          output_names=["translated"],
                          dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                        "translated": {0: "batch", 2: "height", 3: "width"}})
    return buffer.getvalue()


def export_onnx(model: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write an ONNX generator with dynamic N, H, W; H and W must divide by the stride (2): pad first.
    A model with a border (TrainConfig.border) mirrors it inside the graph: H and W must then exceed it."""
    if importlib.util.find_spec("onnx") is None:
        raise UserError("--format onnx needs the onnx package, which is not installed: `pip install onnx`, "
                        "or export TorchScript (the default)")
    G, config, _ = load_generator(model, torch.device("cpu"))
    graph = onnx_bytes(G, config.border)
    return atomic_write(out, lambda f: f.write(graph))
