"""Network definitions only: no losses, no training logic."""

from .projection import ProjectionHead
from .stylegan2 import Discriminator, Generator

__all__ = ["Discriminator", "Generator", "ProjectionHead"]
