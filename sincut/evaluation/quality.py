"""Quality figures for a translation: how close its look is to TARGET (style.py, texture.py), how much of
SOURCE it keeps (content.py); `evaluate` gathers them into one `Quality`, `StyleReference` does the same for a
training run's repeated evaluations against one TARGET.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from .content import content_scores
from .style import collect_descriptors, pyramid_levels, style_distance, style_distance_levels
from .swd import to_unit_range
from .texture import texture_descriptors, texture_distance, texture_distance_of


@dataclass(frozen=True)
class Quality:
    """The figures of one evaluation. Style levels are finest first; the last is the low-pass level."""

    style_levels: tuple[float, ...]
    ssim: float
    edge_correlation: float
    pairs: int = 1
    sifid: float | None = None  # only where the FID Inception network is installed
    texture_distance: float | None = None  # high-passed luminance patches at 512 px (see module doc)
    style_distance: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "style_distance", sum(self.style_levels) / len(self.style_levels))

    def to_dict(self) -> dict:
        figures = {"style_distance": self.style_distance, "style_levels": list(self.style_levels),
                   "ssim": self.ssim, "edge_correlation": self.edge_correlation, "pairs": self.pairs}
        if self.texture_distance is not None:
            figures["texture_distance"] = self.texture_distance
        if self.sifid is not None:
            figures["sifid"] = self.sifid
        return figures


def evaluate(output: Tensor, target: Tensor, source: Tensor) -> Quality:
    """All figures for one translation: OUTPUT against TARGET (style) and SOURCE (content)."""
    s, e = content_scores(output, source)
    return Quality(tuple(style_distance([output], [target])), s, e,
                   texture_distance=texture_distance([output], [target]))


class StyleReference:
    """TARGET's descriptors, computed once, for a training run's repeated evaluations."""

    def __init__(self, target: Tensor, output_size: tuple[int, int]) -> None:
        t = to_unit_range(target)
        self.levels = pyramid_levels(min(*t.shape[-2:], *output_size))
        self.descriptors = collect_descriptors([t], self.levels)
        self.texture = texture_descriptors([target])

    def evaluate(self, output: Tensor, source: Tensor) -> Quality:
        out = collect_descriptors([to_unit_range(output)], self.levels)
        s, e = content_scores(output, source)
        texture = texture_distance_of(texture_descriptors([output]), self.texture)
        return Quality(tuple(style_distance_levels(out, self.descriptors)), s, e, texture_distance=texture)
