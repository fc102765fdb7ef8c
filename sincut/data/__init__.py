"""Data: image files in and out (images.py) and the on-device patch sampler (patches.py)."""

from .images import IMAGE_SUFFIXES, DecodedImage, load_image, read_image, save_image, side_by_side, to_pil
from .patches import PatchSampler

__all__ = ["IMAGE_SUFFIXES", "DecodedImage", "PatchSampler", "load_image", "read_image", "save_image",
           "side_by_side", "to_pil"]
