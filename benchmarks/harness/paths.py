"""Where the benchmarks find things: the repository, the scratch results folder, the bundled samples, and the
data beside the checkout (../shared, or wherever SINCUT_SHARED says, as the tests read it)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"  # ignored by git; a run that backs the docs goes to docs/results/
SAMPLES = ROOT / "samples"
SAMPLE_PHOTO = SAMPLES / "photo_montStMichel.jpg"
SAMPLE_PAINTING = SAMPLES / "painting_vincent_van_gogh_village_street_in_auver.jpg"
SHARED = Path(os.environ.get("SINCUT_SHARED", ROOT.parent / "shared"))
SHARED_DATA = SHARED / "data"
