"""`sincut eval`: the quality figures of image files on disk (translations matched to their sources by name)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch
from PIL import Image
from torch import Tensor

from ..errors import UserError
from .content import content_scores
from .inception_metrics import SifidReference, frechet_distance_of_samples, kernel_inception_distance
from .quality import Quality
from .style import MIN_SIDE, SAMPLES_PER_LEVEL, add_descriptors, pyramid_levels, style_distance_levels
from .swd import to_unit_range
from .texture import TEXTURE_SAMPLES, texture_distance_of, texture_map, texture_patches

if TYPE_CHECKING:
    from .inception import Inception


def sifid_files(outputs: Sequence[Path], target: Path, network: Inception) -> list[float]:
    """SIFID of each OUTPUT file against one TARGET file (TARGET's Gaussian fitted once)."""
    from ..data.images import load_image

    reference = SifidReference(load_image(target), network)
    return [reference.distance(load_image(p)) for p in outputs]


def fid_kid_files(outputs: Sequence[Path], targets: Sequence[Path], network: Inception) -> tuple[float, float]:
    """(FID, KID) of two image sets on the 2048-d pool features (images resized to 299 x 299)."""
    from ..data.images import load_image

    if len(outputs) < 2 or len(targets) < 2:
        raise UserError(f"FID/KID compare two folders of at least 2 images each, got {len(outputs)} outputs "
                        f"and {len(targets)} targets; pass larger folders")
    features = [network.pool_features([load_image(p) for p in paths]) for paths in (outputs, targets)]
    fid = frechet_distance_of_samples(features[0], features[1])
    return fid, kernel_inception_distance(features[0], features[1])


def _min_side(path: Path) -> int:
    """The smaller side from the file header (EXIF rotation cannot change it); decoding errors later."""
    try:
        with Image.open(path) as img:
            return min(img.size)
    except Exception:  # unreadable: load_image will raise the precise error
        from ..data.images import load_image

        return min(load_image(path).shape[-2:])


def _check_size(path: Path) -> int:
    side = _min_side(path)
    if side < MIN_SIDE:
        raise UserError(f"{path}: the image is {side} px on its smaller side; the metrics need at least "
                        f"{MIN_SIDE} px (pass a larger image)")
    return side


def evaluate_files(pairs: Sequence[tuple[Path, Path]], targets: Sequence[Path]) -> Quality:
    """(OUTPUT, SOURCE) file pairs against TARGET files: style of all outputs pooled against all
    targets pooled (one distribution distance), content scores averaged over the pairs."""
    from ..data.images import load_image

    if not pairs or not targets:
        raise ValueError("evaluate_files needs at least one pair and one target")
    sides = {p: _check_size(p) for p in {*(p for pair in pairs for p in pair), *targets}}
    levels = pyramid_levels(min(sides[p] for p in [*(o for o, _ in pairs), *targets]))
    out_pool: list[list[Tensor]] = [[] for _ in range(levels)]
    tgt_pool: list[list[Tensor]] = [[] for _ in range(levels)]
    out_texture: list[Tensor] = []
    tgt_texture: list[Tensor] = []
    scores = []
    per_output = math.ceil(SAMPLES_PER_LEVEL / len(pairs))
    texture_per_output = math.ceil(TEXTURE_SAMPLES / len(pairs))
    for i, (out_path, src_path) in enumerate(pairs):
        output = load_image(out_path)
        scores.append(content_scores(output, load_image(src_path)))
        add_descriptors(out_pool, to_unit_range(output), levels, per_output, i)
        out_texture.append(texture_patches(texture_map(output), texture_per_output, i))
    per_target = math.ceil(SAMPLES_PER_LEVEL / len(targets))
    texture_per_target = math.ceil(TEXTURE_SAMPLES / len(targets))
    for i, path in enumerate(targets):
        target = load_image(path)
        add_descriptors(tgt_pool, to_unit_range(target), levels, per_target, i)
        tgt_texture.append(texture_patches(texture_map(target), texture_per_target, i))
    style = style_distance_levels([torch.cat(p) for p in out_pool], [torch.cat(p) for p in tgt_pool])
    texture = texture_distance_of(torch.cat(out_texture), torch.cat(tgt_texture))
    n = len(scores)
    return Quality(tuple(style), sum(s for s, _ in scores) / n, sum(e for _, e in scores) / n, pairs=n,
                   texture_distance=texture)


def match_pairs(output: str | os.PathLike, source: str | os.PathLike) -> list[tuple[Path, Path]]:
    """OUTPUT and SOURCE as files, or folders matched by relative path without the suffix."""
    from ..inference.files import expand_inputs

    out, src = Path(output), Path(source)
    for p in (out, src):
        if not p.exists():
            raise UserError(f"{p}: no such file or folder; check the path")
    if out.is_dir() != src.is_dir():
        raise UserError(f"{out} and {src}: pass two image files or two folders (OUTPUT and --content)")
    if not out.is_dir():
        return [(out, src)]
    sources = {rel.with_suffix(""): f for f, rel in expand_inputs([src])}
    pairs = []
    for f, rel in expand_inputs([out]):
        match = sources.get(rel.with_suffix(""))
        if match is None:
            raise UserError(f"{f}: no image named {rel.with_suffix('')}.* in {src}; outputs and sources "
                            "must share file names (as `sincut translate` writes them)")
        pairs.append((f, match))
    return pairs
