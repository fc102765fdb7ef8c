"""The photo/painting pairs the quality screens train on, and the inputs each preset's speed is measured on: the
bundled samples always, the pairs under ../shared when present (skipped with a line when absent)."""

from __future__ import annotations

import sys
from pathlib import Path

from sincut.config import DATASET_PRESETS

from .args import fail
from .paths import SAMPLE_PAINTING, SAMPLE_PHOTO, SHARED_DATA

CANDIDATES = SHARED_DATA / "samples_candidates"
ETRETAT = SHARED_DATA / "single_image_monet_etretat"
UNPAIRED = SHARED_DATA / "unpaired_small"
PHOTOS = {"montStMichel": SAMPLE_PHOTO,
          "machuPicchu": CANDIDATES / "photo_machuPicchu.jpg",
          "greatWall": CANDIDATES / "photo_greatWallofChina.jpg"}
PAINTINGS = {"vanGogh": SAMPLE_PAINTING,
             "bruegel": CANDIDATES / "painting_pieter_brugel_the_harvesters.jpg",
             "bazille": CANDIDATES / "painting_bazille_the_ramparts_at_aigues_mortes.jpg"}
PAIRS: dict[str, tuple[Path, Path]] = {  # the quality benchmark's four defaults
    "montStMichel-vanGogh": (PHOTOS["montStMichel"], PAINTINGS["vanGogh"]),
    "etretat-monet": (ETRETAT / "etretat-normandy-france.jpg", ETRETAT / "monet.jpg"),
    "machuPicchu-bruegel": (PHOTOS["machuPicchu"], PAINTINGS["bruegel"]),
    "greatWall-bazille": (PHOTOS["greatWall"], PAINTINGS["bazille"]),
}
ALL_PAIRS = {**PAIRS, **{f"{p}-{q}": (PHOTOS[p], PAINTINGS[q]) for p in PHOTOS for q in PAINTINGS
                         if f"{p}-{q}" not in PAIRS}}


def select_pairs(names: str) -> dict[str, tuple[Path, Path]]:
    """The comma-separated pairs (or `all`) that exist here; those under ../shared skipped, with a line,
    when absent."""
    chosen = list(ALL_PAIRS) if names == "all" else names.split(",")
    pairs = {}
    for name in chosen:
        if name not in ALL_PAIRS:
            fail(f"--pairs: unknown pair {name!r}; choose from all, {', '.join(ALL_PAIRS)}")
        if all(p.is_file() for p in ALL_PAIRS[name]):
            pairs[name] = ALL_PAIRS[name]
        else:
            print(f"skipping {name}: {ALL_PAIRS[name][0].parent} is absent", file=sys.stderr)
    return pairs


def image_pair() -> tuple[Path, Path]:
    """The paper's Etretat/Monet pair when ../shared has it, else the bundled samples: the single-image
    presets' speed inputs."""
    etretat = PAIRS["etretat-monet"]
    return etretat if all(p.is_file() for p in etretat) else PAIRS["montStMichel-vanGogh"]


def folder_pair(scratch: Path) -> tuple[Path, Path]:
    """../shared's small unpaired set, else four crops of each sample image written under `scratch`."""
    if (UNPAIRED / "trainA").is_dir():
        return UNPAIRED / "trainA", UNPAIRED / "trainB"
    from PIL import Image

    for name, src in zip("AB", image_pair()):
        (scratch / name).mkdir(parents=True, exist_ok=True)
        img = Image.open(src).convert("RGB")
        for i in range(4):
            img.crop((i * 40, 0, i * 40 + 300, 300)).save(scratch / name / f"{i}.jpg")
    return scratch / "A", scratch / "B"


def inputs_for(preset: str, scratch: Path) -> tuple[Path, Path]:
    """Two images for the single-image presets (sincut, quick), two folders for cut and fastcut."""
    return folder_pair(scratch) if preset in DATASET_PRESETS else image_pair()
