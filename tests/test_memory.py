"""Bounded memory when training on a large SOURCE, files that follow the umask, and out-of-memory
as one line. The budgets are lowered here so that small images take the large-image paths."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import sincut.data.patches as patches
import sincut.training.loop as loop_module
import sincut.training.trainer as trainer_module
from sincut.cli import main
from sincut.data.images import atomic_write, save_image
from sincut.data.patches import PatchSampler
from sincut.inference.budget import measure_cost
from sincut.nets import Generator
from sincut.inference.tiles import MIN_TILE

from .conftest import SAMPLES, TINY_TRAIN


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="sincut")


@pytest.fixture
def larger_pair(tmp_path: Path) -> tuple[Path, Path]:
    """A SOURCE larger than a few small tiles (so a small budget translates it in tiles), small TARGET."""
    src, tgt = tmp_path / "photo.png", tmp_path / "painting.png"
    Image.open(SAMPLES / "photo_montStMichel.jpg").resize((400, 226)).save(src)
    Image.open(SAMPLES / "painting_vincent_van_gogh_village_street_in_auver.jpg").resize((80, 63)).save(tgt)
    return src, tgt


def test_large_source_evaluates_downscaled_and_writes_full_size_results_in_tiles(larger_pair, tmp_path, monkeypatch):
    eval_pixels = 120 * 68
    monkeypatch.setattr(loop_module, "EVAL_SOURCE_PIXELS", eval_pixels)
    # a budget of 1.5 tiles of 2 x MIN_TILE for the tiny G (a 160 px tile): 226x400 (90,400 pixels) cannot go
    # whole, and goes in 2 x 4 tiles
    budget = int(measure_cost(Generator(ngf=2, crop_size=32)).bytes(int(1.5 * (2 * MIN_TILE) ** 2)))
    monkeypatch.setattr(trainer_module, "RESULT_MEMORY", budget)
    tiled_sizes: list[tuple[int, int]] = []
    whole_sizes: list[tuple[int, ...]] = []
    real_tiled, real_whole = trainer_module.Translator.translate_tiled, trainer_module.translate_tensor

    def spy_tiled(self, rgb):
        tiled_sizes.append(rgb.shape[:2])
        return real_tiled(self, rgb)

    def spy_whole(G, image, seed=0, border=0):
        whole_sizes.append(tuple(image.shape[-2:]))
        return real_whole(G, image, seed, border)

    monkeypatch.setattr(trainer_module.Translator, "translate_tiled", spy_tiled)
    monkeypatch.setattr(trainer_module, "translate_tensor", spy_whole)
    run = tmp_path / "run"
    result = cli("train", *larger_pair, "--out", run, *TINY_TRAIN, "--select-min-ssim", "0")
    assert result.exit_code == 0, result.output

    # Previews and evaluations: one pass over SOURCE downscaled to the budget, never the full image.
    assert whole_sizes and all(h * w <= eval_pixels and (h, w) != (226, 400) for h, w in whole_sizes)
    assert Image.open(run / "source.png").size[0] * Image.open(run / "source.png").size[1] <= eval_pixels
    # result.png and best.png: full size, made by the tiled translator (once per step that needs them).
    assert tiled_sizes and set(tiled_sizes) == {(226, 400)}
    assert Image.open(run / "result.png").size == (400, 226)
    assert Image.open(run / "best.png").size == (400, 226)
    # ... and result.png is exactly what `sincut translate` makes from the final checkpoint.
    out = tmp_path / "translated"
    done = cli("translate", run, larger_pair[0], "--out", out, "--checkpoint", "latest", "--max-memory", f"{budget}B",
               "--device", "cpu")
    assert done.exit_code == 0, done.output
    assert np.array_equal(np.asarray(Image.open(run / "result.png")), np.asarray(Image.open(out / "photo.png")))


def test_small_source_result_is_the_preview_translation(tiny_pair, tmp_path, monkeypatch):
    """Within the evaluation size nothing is translated twice: result.png is the one-pass translation."""
    called = []
    monkeypatch.setattr(trainer_module.Trainer, "translate_full", lambda self, rgb: called.append(1))
    run = tmp_path / "run"
    assert cli("train", *tiny_pair, "--out", run, *TINY_TRAIN).exit_code == 0
    assert not called and Image.open(run / "result.png").size == Image.open(tiny_pair[0]).size


def _gradient_image(h: int, w: int) -> torch.Tensor:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def _smooth_image(h: int, w: int) -> torch.Tensor:
    """8-bit values of smooth waves: two antialiased resizes of it agree closely."""
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    channels = [torch.sin(x / 9.0) * torch.cos(y / 13.0), torch.sin((x + y) / 17.0), torch.cos(x / 23.0)]
    rgb = ((torch.stack(channels) * 0.9 + 1) * 127.5).round()
    return (rgb / 127.5 - 1.0)[None]


@pytest.mark.parametrize("positions", ["paper", "stratified"])
def test_over_budget_the_image_is_kept_as_uint8_and_samples_alike(monkeypatch, positions):
    """Above the budget only the 8-bit image is stored (no pyramid), and each patch's level window is
    computed on the fly. On an image that is exactly 8-bit, the patches equal the stored float32
    pyramid's (kornia's antialiased rescale of the whole image) to float rounding, at every level."""
    image = _smooth_image(150, 200)
    exact = PatchSampler(image, crop_size=32, zoom=(0.2, 1.0), positions=positions)
    assert exact.storage == torch.float32 and len(exact.levels) == len(exact.scales) ** 2
    monkeypatch.setattr(patches, "PYRAMID_FLOAT_BUDGET", 0)
    compact = PatchSampler(image, crop_size=32, zoom=(0.2, 1.0), positions=positions)
    assert compact.storage == torch.uint8
    assert list(compact.levels) == [(0, 0)] and compact.levels[(0, 0)].dtype == torch.uint8
    assert torch.equal(compact.levels[(0, 0)].float() / 127.5 - 1, image)  # the 8-bit source is kept exactly
    used = set()
    for seed in range(6):
        a = exact.sample(32, torch.Generator().manual_seed(seed))
        b = compact.sample(32, torch.Generator().manual_seed(seed))
        assert (a - b).abs().max() < 1e-4, seed
        g = torch.Generator().manual_seed(seed)  # which levels this seed's patches read
        x0, y0, rw, rh = (exact._grid_cells if positions == "paper" else exact._stratified)(32, g, image.device)
        used |= set(zip(exact._level_index(32 / rh).tolist(), exact._level_index(32 / rw).tolist()))
    assert len(used) >= 6  # the comparison covered many anisotropic levels, not only the image itself


def test_over_budget_random_pixels_sample_alike(monkeypatch):
    """High-frequency content (where a misplaced window or kernel shows most) and small crops."""
    image = _gradient_image(130, 170)
    exact = PatchSampler(image, crop_size=24, zoom=(0.2, 1.0), flip=False)
    monkeypatch.setattr(patches, "PYRAMID_FLOAT_BUDGET", 0)
    compact = PatchSampler(image, crop_size=24, zoom=(0.2, 1.0), flip=False)
    for seed in range(4):
        a, b = (s.sample(32, torch.Generator().manual_seed(seed)) for s in (exact, compact))
        assert (a - b).abs().max() < 1e-4, seed


def test_uint8_images_are_sampled_without_a_float_copy():
    """A uint8 image (how training loads 8-bit files) samples like its float32 form."""
    image = _smooth_image(90, 120)
    as_bytes = ((image + 1) * 127.5).round().to(torch.uint8)
    a = PatchSampler(image, crop_size=32).sample(8, torch.Generator().manual_seed(1))
    b = PatchSampler(as_bytes, crop_size=32).sample(8, torch.Generator().manual_seed(1))
    assert (a - b).abs().max() < 1e-5


def test_uint8_pyramid_is_antialiased_too(monkeypatch):
    monkeypatch.setattr(patches, "PYRAMID_FLOAT_BUDGET", 0)
    yy, xx = torch.meshgrid(torch.arange(300), torch.arange(300), indexing="ij")
    board = (((yy + xx) % 2) * 2 - 1).float().expand(1, 3, 300, 300).contiguous()
    sampler = PatchSampler(board, crop_size=32, zoom=(1 / 3, 1 / 3), flip=False)
    assert sampler.storage == torch.uint8
    assert sampler.sample(8, torch.Generator().manual_seed(0)).std().item() < 0.1


def test_windowed_reads_equal_crops_of_the_whole_level(monkeypatch):
    """Reading only each patch's window gives what a crop of the whole level gives."""
    image = _gradient_image(130, 170)
    sampler = PatchSampler(image, crop_size=32, flip=False)
    windowed = sampler.sample(16, torch.Generator().manual_seed(7))
    whole = lambda self, level, boxes: (level.expand(len(boxes), -1, -1, -1), boxes)  # noqa: E731
    monkeypatch.setattr(PatchSampler, "_read_windows", whole)
    reference = sampler.sample(16, torch.Generator().manual_seed(7))
    assert torch.allclose(windowed, reference, atol=5e-4)


def test_out_of_memory_is_one_line_naming_the_image(tiny_pair, tmp_path, monkeypatch):
    def exhausted(self, step):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 15400000000 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(trainer_module.Trainer, "step", exhausted)
    result = cli("train", *tiny_pair, "--out", tmp_path / "run", *TINY_TRAIN)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output
    assert lines[-1].startswith(f"Error: {tiny_pair[0]}: out of memory") and "--batch-size" in lines[-1]


def test_other_runtime_errors_are_not_called_out_of_memory(tiny_pair, tmp_path, monkeypatch):
    def broken(self, step):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(trainer_module.Trainer, "step", broken)
    result = cli("train", *tiny_pair, "--out", tmp_path / "run", *TINY_TRAIN)
    assert isinstance(result.exception, RuntimeError) and "shape mismatch" in str(result.exception)


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path: Path, umask: int, mode: int):
    old = os.umask(umask)
    try:
        path = atomic_write(tmp_path / "report.json", lambda f: f.write(b"{}"))
        image = save_image(torch.zeros(1, 3, 4, 4), tmp_path / "result.png")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode
    assert image.stat().st_mode & 0o777 == mode


def test_a_training_run_is_readable_by_others_under_umask_022(tiny_pair, tmp_path: Path):
    old = os.umask(0o022)
    try:
        run = tmp_path / "run"
        assert cli("train", *tiny_pair, "--out", run, *TINY_TRAIN).exit_code == 0
    finally:
        os.umask(old)
    files = [p for p in run.rglob("*") if p.is_file()]
    assert {"result.png", "config.json", "report.html", "step_0000003.pt"} <= {p.name for p in files}
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o644)}
