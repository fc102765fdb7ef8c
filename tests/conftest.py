from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
# ../shared beside the checkout (as in CI); SINCUT_SHARED points elsewhere (e.g. from a git worktree).
SHARED = Path(os.environ.get("SINCUT_SHARED", ROOT.parent / "shared")) / "data"

# Networks small enough for 2 CPU cores; still the real architecture and objective: the paper's recipe
# (two images on a CPU would otherwise take the quick recipe), at the device's default precision.
TINY_TRAIN = ["--preset", "sincut", "--steps", "3", "--batch-size", "2", "--crop-size", "32", "--ngf", "2", "--ndf", "4",
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


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """One 3-step tiny run shared by the inference tests (its noise strength has moved off 0)."""
    from click.testing import CliRunner

    from sincut.cli import main

    root = tmp_path_factory.mktemp("tiny_model")
    Image.open(SAMPLES / "photo_montStMichel.jpg").resize((96, 54)).save(root / "photo.jpg", quality=95)
    Image.open(SAMPLES / "painting_vincent_van_gogh_village_street_in_auver.jpg").resize((80, 63)).save(
        root / "painting.png")
    args = ["train", str(root / "photo.jpg"), str(root / "painting.png"), "--out", str(root / "run"), *TINY_TRAIN]
    result = CliRunner().invoke(main, args, prog_name="sincut")
    assert result.exit_code == 0, result.output
    return root / "run"


@pytest.fixture(scope="session")
def bordered_model(tiny_model: Path, tmp_path_factory) -> Path:
    """tiny_model's checkpoint with a mirrored border of 8 px in its config (TrainConfig.border)."""
    import torch

    from sincut.run_folder import load_checkpoint, resolve_checkpoint, save_checkpoint

    state = load_checkpoint(resolve_checkpoint(tiny_model, "latest"))
    state["config"] = {**state["config"], "border": 8}
    run = tmp_path_factory.mktemp("bordered_model") / "run"
    save_checkpoint(run, int(state["step"]), state)
    assert torch.load(resolve_checkpoint(run, "latest"), weights_only=False)["config"]["border"] == 8
    return run


@pytest.fixture(scope="session")
def guided_model(tiny_model: Path, tmp_path_factory) -> Path:
    """tiny_model's weights as a residual G whose change goes through a guided filter of radius 4
    (TrainConfig.guide_radius): the same parameters, so only the config changes."""
    from sincut.run_folder import load_checkpoint, resolve_checkpoint, save_checkpoint

    state = load_checkpoint(resolve_checkpoint(tiny_model, "latest"))
    state["config"] = {**state["config"], "residual": True, "guide_radius": 4}
    run = tmp_path_factory.mktemp("guided_model") / "run"
    save_checkpoint(run, int(state["step"]), state)
    return run


@pytest.fixture(scope="session")
def coloured_model(tiny_model: Path, tmp_path_factory) -> Path:
    """tiny_model's weights as a residual, guided G that starts from a Pitie colour transfer fitted on
    tiny_model's two images (TrainConfig.colour_init): its change is tiny_model's trained output, so its
    noise shows in the translation (three quick-recipe steps would leave G's change and noise near zero;
    tests/test_recipe.py trains such a run through the CLI)."""
    from sincut.run_folder import load_checkpoint, resolve_checkpoint, save_checkpoint
    from sincut.nets.colour import fit_colour_transfer
    from sincut.config import TrainConfig
    from sincut.data.images import load_image
    from sincut.nets import build_generator

    state = load_checkpoint(resolve_checkpoint(tiny_model, "latest"))
    config = TrainConfig.from_dict({**state["config"], "residual": True, "guide_radius": 4, "colour_init": "pitie"})
    root = tiny_model.parent
    fitted = fit_colour_transfer("pitie", load_image(root / "photo.jpg").float(),
                                 load_image(root / "painting.png").float())
    for key in ("G", "G_average"):
        if state.get(key) is not None:
            G = build_generator(config)
            G.load_state_dict({**G.state_dict(), **state[key]})
            G.colour.load_state_dict(fitted.state_dict())
            state[key] = G.state_dict()
    state["config"] = {**state["config"], "residual": True, "guide_radius": 4, "colour_init": "pitie"}
    run = tmp_path_factory.mktemp("coloured_model") / "run"
    save_checkpoint(run, int(state["step"]), state)
    return run


@pytest.fixture(scope="session")
def coloured_run(tiny_model: Path) -> Path:
    """A tiny quick-recipe run whose G starts from a Pitie colour transfer and trains with the patch
    distribution term (--colour-init pitie --lambda-patch-swd 1), from tiny_model's two images."""
    from click.testing import CliRunner

    from sincut.cli import main

    root = tiny_model.parent
    args = ["train", str(root / "photo.jpg"), str(root / "painting.png"), "--out", str(root / "coloured"),
            *TINY_TRAIN, "--preset", "quick", "--colour-init", "pitie", "--lambda-patch-swd", "1"]
    result = CliRunner().invoke(main, args, prog_name="sincut")
    assert result.exit_code == 0, result.output
    return root / "coloured"


@pytest.fixture(params=["plain", "bordered", "guided", "coloured"])
def exportable_model(request, tiny_model: Path) -> Path:
    """Each export test runs on a model without and with a border, with an edge-aware change, and with
    a colour transfer inside G."""
    return tiny_model if request.param == "plain" else request.getfixturevalue(f"{request.param}_model")


def random_rgb(h: int, w: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
