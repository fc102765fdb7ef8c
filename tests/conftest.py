from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
SHARED = ROOT.parent / "shared" / "data"

# Networks small enough for 2 CPU cores; still the real architecture and objective.
TINY_TRAIN = ["--steps", "3", "--batch-size", "2", "--crop-size", "32", "--ngf", "2", "--ndf", "4",
              "--log-every", "1", "--preview-every", "2", "--checkpoint-every", "2", "--device", "cpu"]


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(2)


@pytest.fixture
def tiny_pair(tmp_path: Path) -> tuple[Path, Path]:
    """The bundled photo and painting, shrunk so a whole run takes seconds."""
    src = tmp_path / "photo.jpg"
    tgt = tmp_path / "painting.png"
    Image.open(SAMPLES / "photo_montStMichel.jpg").resize((96, 54)).save(src, quality=95)
    Image.open(SAMPLES / "painting_vincent_van_gogh_village_street_in_auver.jpg").resize((80, 63)).save(tgt)
    return src, tgt


def random_rgb(h: int, w: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
