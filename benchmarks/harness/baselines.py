"""What a translation has to beat: the photo itself and two closed-form colour transfers (Reinhard's and
Pitie's), scored with the figures the training loop measures, so that a recipe's run and its baselines compare."""

from __future__ import annotations

from pathlib import Path

import torch

from sincut.data.images import load_image, save_image
from sincut.evaluation.content import content_scores
from sincut.evaluation.inception_metrics import SifidReference
from sincut.evaluation.style import style_distance
from sincut.evaluation.texture import texture_distance
from sincut.nets.colour import pitie_transfer, reinhard_transfer

BASELINES = ("photo", "reinhard", "pitie")
TRANSFERS = ("reinhard", "pitie")


def score(image: torch.Tensor, photo: torch.Tensor, painting: torch.Tensor,
          sifid_reference: SifidReference | None) -> dict:
    """training_runs.FIGURE_KEYS of one image, as the training loop measures them (SIFID None without the
    FID Inception network)."""
    ssim, edges = content_scores(image, photo)
    levels = style_distance([image], [painting])
    return {"sifid": sifid_reference.distance(image) if sifid_reference else None,
            "texture_distance": texture_distance([image], [painting]),
            "ssim": ssim, "edge_correlation": edges, "style_distance": sum(levels) / len(levels)}


def score_baselines(pair: str, source: Path, target: Path, out: Path, network) -> dict[str, dict]:
    """The photo and its two colour transfers, scored and saved as out/baselines/PAIR-NAME.png."""
    photo, painting = load_image(source), load_image(target)
    sifid_reference = SifidReference(painting, network) if network is not None else None
    images = {"photo": photo, "reinhard": reinhard_transfer(photo, painting),
              "pitie": pitie_transfer(photo, painting, iterations=20, seed=0)}
    (out / "baselines").mkdir(parents=True, exist_ok=True)
    figures = {}
    for name, image in images.items():
        save_image(image, out / "baselines" / f"{pair}-{name}.png")
        figures[name] = score(image, photo, painting, sifid_reference)
    return figures


def best_transfer_sifid(baselines: dict[str, dict]) -> float | None:
    """The lower SIFID of the two colour transfers: what "SIFID / best transfer" divides by."""
    values = [baselines[t]["sifid"] for t in TRANSFERS if baselines[t]["sifid"] is not None]
    return min(values) if values else None
