"""Data: image files in and out (images.py) and the on-device patch sampler (patches.py)."""

from .images import IMAGE_SUFFIXES, load_image, save_image, side_by_side, to_pil
from .patches import PatchSampler

__all__ = ["IMAGE_SUFFIXES", "PatchSampler", "load_image", "save_image", "side_by_side", "to_pil"]
