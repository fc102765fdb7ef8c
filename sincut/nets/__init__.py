"""Network definitions only: no losses, no training logic."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .projection import ProjectionHead
from .resnet import PatchGANDiscriminator, ResnetGenerator
from .stylegan2 import Discriminator, Generator

__all__ = ["Discriminator", "Generator", "PatchGANDiscriminator", "ProjectionHead", "ResnetGenerator",
           "build_discriminator", "build_generator", "memory_format"]


def build_generator(config: Any) -> nn.Module:
    """G for a TrainConfig (or anything with the same fields)."""
    if config.generator == "resnet":
        return ResnetGenerator(ngf=config.ngf, n_blocks=config.n_blocks, init_gain=config.init_gain)
    return Generator(ngf=config.ngf, crop_size=config.crop_size, n_blocks=config.n_blocks,
                     residual=config.residual, guide_radius=config.guide_radius,
                     colour_init=getattr(config, "colour_init", "none"),
                     detail_sigma=getattr(config, "detail_sigma", 0.0),
                     linear_change=getattr(config, "linear_change", False))


def build_discriminator(config: Any) -> nn.Module:
    if config.discriminator == "patchgan":
        return PatchGANDiscriminator(ndf=config.ndf, init_gain=config.init_gain)
    return Discriminator(ndf=config.ndf, crop_size=config.crop_size,
                         local=getattr(config, "lambda_local_gan", 0.0) > 0)


def memory_format(net: nn.Module, device: torch.device) -> torch.memory_format:
    """channels_last where it measured faster: on GPUs, and on CPUs for nets without instance norm.
    On a CPU, instance norm and reflection padding turn NHWC tensors back to NCHW and back at every
    layer (copies that cost more than oneDNN's NHWC convolutions save: benchmarks/ab.py contiguous)."""
    if device.type == "cpu" and not getattr(net, "channels_last_on_cpu", True):
        return torch.contiguous_format
    return torch.channels_last
