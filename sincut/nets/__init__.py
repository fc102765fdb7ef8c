"""Network definitions only: no losses, no training logic."""

from __future__ import annotations

from typing import Any

from torch import nn

from .projection import ProjectionHead
from .resnet import PatchGANDiscriminator, ResnetGenerator
from .stylegan2 import Discriminator, Generator

__all__ = ["Discriminator", "Generator", "PatchGANDiscriminator", "ProjectionHead", "ResnetGenerator",
           "build_discriminator", "build_generator"]


def build_generator(config: Any) -> nn.Module:
    """G for a TrainConfig (or anything with the same fields)."""
    if config.generator == "resnet":
        return ResnetGenerator(ngf=config.ngf, n_blocks=config.n_blocks, init_gain=config.init_gain)
    return Generator(ngf=config.ngf, crop_size=config.crop_size, n_blocks=config.n_blocks,
                     residual=config.residual)


def build_discriminator(config: Any) -> nn.Module:
    if config.discriminator == "patchgan":
        return PatchGANDiscriminator(ndf=config.ndf, init_gain=config.init_gain)
    return Discriminator(ndf=config.ndf, crop_size=config.crop_size)
