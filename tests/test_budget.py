"""Tiles sized by a memory budget: --max-memory parsing, the measured cost of a pass against a real
peak RSS, the budget -> tile rule, equal-length tiles, and batched tiles against the whole image."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from sincut.inference.budget import (GiB, MiB, PassCost, batch_for_budget, format_memory, measure_cost, parse_memory,
                                     tile_for_budget, tile_for_cost)
from sincut.cli import main
from sincut.data.images import rgb_to_tensor
from sincut.nets import Generator
from sincut.inference.tiles import min_tile, plan_spans
from sincut.inference.translator import Translator, translate_tensor

from .conftest import ROOT
from .test_translate import random_generator, smooth_photo


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="sincut")


# --- --max-memory --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,size", [("2GiB", 2 * 2**30), ("1500MiB", 1500 * 2**20), ("1500", 1500 * 2**20),
                                       ("1.5G", 3 * 2**29), ("800m", 800 * 2**20), ("512 KiB", 512 * 1024),
                                       ("123456B", 123456), ("1TB", 2**40)])
def test_memory_sizes_parse_in_binary_units(text: str, size: int):
    assert parse_memory(text) == size


@pytest.mark.parametrize("text", ["", "lots", "2 parsecs", "-1GiB", "1e9", "GiB"])
def test_bad_memory_sizes_are_refused(text: str):
    with pytest.raises(ValueError, match="memory size"):
        parse_memory(text)


def test_a_bad_max_memory_is_one_error_naming_the_option(tiny_model: Path, tmp_path: Path):
    smooth_photo(20, 30).save(tmp_path / "a.png")
    result = run("translate", tiny_model, tmp_path / "a.png", "--out", tmp_path / "out", "--max-memory", "lots")
    assert result.exit_code == 2 and "--max-memory" in result.output and "Traceback" not in result.output


def test_a_budget_below_the_smallest_tile_is_one_line_naming_the_minimum(tiny_model: Path, tmp_path: Path):
    smooth_photo(20, 30).save(tmp_path / "a.png")
    result = run("translate", tiny_model, tmp_path / "a.png", "--out", tmp_path / "out", "--max-memory", "1MiB",
                 "--device", "cpu")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --max-memory 1 MiB")
    # the minimum it names is the cost of the tiny G's smallest tile (ngf=2; context 30 px, stride 2: 62 px)
    smallest = min_tile(30, 2)
    assert smallest == 2 * 30 + 2
    need = measure_cost(Generator(ngf=2, crop_size=32)).bytes(smallest * smallest)
    assert f"smallest tile ({smallest} px) needs {format_memory(need)}" in lines[0]
    assert not (tmp_path / "out" / "a.png").exists()


# --- the cost of a pass --------------------------------------------------------------------------------


def test_cost_is_affine_in_pixels_and_predicts_a_third_size():
    """Measured at two sizes, the cost predicts the counted peak at a third to within 1%."""
    from sincut.inference.budget import _peak_bytes

    G = Generator().eval().requires_grad_(False)
    cost = measure_cost(G)
    assert 900 < cost.per_pixel < 1400  # bytes per pixel: about 280 float32 values live at the peak
    assert cost.bytes(320 * 320) == pytest.approx(_peak_bytes(G, 320), rel=0.01)


RSS_CHILD = """
import sys, torch
sys.path.insert(0, {root!r})
from sincut.nets import Generator
torch.set_num_threads(1)
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
G = Generator(**{kwargs!r}).to(memory_format=torch.channels_last).eval().requires_grad_(False)
side = {side}
x = torch.randn(1, 3, side, side).contiguous(memory_format=torch.channels_last)
noise = G.draw_noise(1, side, side)
with torch.inference_mode():  # a small pass first: oneDNN's one-off setup is not the pass's cost
    G(torch.zeros(1, 3, 64, 64).contiguous(memory_format=torch.channels_last), noise=G.draw_noise(1, 64, 64))
open("/proc/self/clear_refs", "w").write("5")  # VmHWM := VmRSS
before = status("VmRSS")
with torch.inference_mode():
    out, _ = G(x, noise=noise)
print(status("VmHWM") - before + x.numel() * 4 + noise[0].numel() * 4)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc peak-RSS reset")
@pytest.mark.parametrize("kwargs,side", [(dict(), 640),  # the sincut G
                                         (dict(ngf=2, n_blocks=4, residual=True, guide_radius=4), 1024)])  # quick's
def test_estimated_cost_matches_a_measured_peak_rss(kwargs: dict, side: int):
    """The estimate against the real peak resident memory of one pass in a fresh process (the input and
    noise made before the reset are added back). Measured at 1024x1024 on the 2-core EPYC: 1120.6 MiB
    against 1138 MiB estimated (sincut G), 341 against 360 (quick G); the tolerance is generous for other
    allocators."""
    done = subprocess.run([sys.executable, "-c", RSS_CHILD.format(root=str(ROOT), side=side, kwargs=kwargs)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    measured = int(done.stdout.strip().splitlines()[-1])
    estimate = measure_cost(Generator(**kwargs).eval()).bytes(side * side)
    assert 0.8 * estimate < measured < 1.2 * estimate, (measured / MiB, estimate / MiB)


# --- budget -> tile ------------------------------------------------------------------------------------


def test_tile_is_the_largest_whose_pass_fits_and_grows_with_the_budget():
    G = Generator().eval()
    cost = measure_cost(G)
    tiles = []
    for budget in (300 * MiB, 600 * MiB, 1 * GiB, 1.5 * GiB, 4 * GiB):
        tile = tile_for_budget(G, budget, 30)
        assert tile % G.stride == 0
        assert cost.bytes(tile * tile) <= budget < cost.bytes((tile + G.stride) ** 2)
        tiles.append(tile)
    assert tiles == sorted(tiles) and len(set(tiles)) == len(tiles)
    # by hand: 600 MiB over 1138.2 bytes per pixel (the fixed part is 0.5 MB) is 552,200 pixels: 742 px
    assert tiles[1] == 742


def test_tile_rule_by_hand_and_its_minimum():
    cost = PassCost(fixed=1000.0, per_pixel=10.0)
    assert tile_for_cost(cost, 1000 + 10 * 500 * 500, 2, 32) == 500
    assert tile_for_cost(cost, 1000 + 10 * 501 * 501, 2, 32) == 500  # rounded down to the stride
    assert tile_for_cost(cost, 1000 + 10 * 66 * 66, 2, 32) == 66  # min_tile(32, 2) = 2 x 32 + 2
    with pytest.raises(ValueError, match=r"smallest tile \(66 px\) needs 1 MiB"):
        tile_for_cost(cost, 1000 + 10 * 65 * 65, 2, 32)  # 44,560 bytes needed: rounded up to 1 MiB
    assert tile_for_cost(cost, 1000 + 10 * 68 * 68, 4, 32) == 68  # min_tile(32, 4) = 2 x 32 + 4
    with pytest.raises(ValueError, match=r"smallest tile \(68 px\)"):
        tile_for_cost(cost, 1000 + 10 * 67 * 67, 4, 32)  # 67 rounds down to 64 on the stride-4 grid
    assert batch_for_budget(cost, 1000 + 10 * 3 * 100, 100, 9) == 3
    assert batch_for_budget(cost, 1000 + 10 * 99, 100, 9) == 1  # never fewer than one
    assert batch_for_budget(cost, 10**9, 100, 9) == 9  # never more than there are tiles


# --- equal tiles -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stride,context", [(2, 30), (2, 38), (4, 36)])
def test_tiles_are_equal_fewest_and_kept_regions_abut(stride: int, context: int):
    for tile in (min_tile(context, stride), min_tile(context, stride) + 3, 300, 742):
        for length in range(tile + 1, 4 * tile, 13):
            spans = plan_spans(length, tile, stride, context)
            reads = [s.read_end - s.read_start for s in spans]
            assert max(reads) <= tile and max(reads) - min(reads) < stride  # the last lacks only the padding
            kept = np.zeros(length, dtype=int)
            for s in spans:
                assert s.read_start % stride == 0
                assert s.read_start == 0 or s.keep_start - s.read_start >= context
                assert s.read_end == length or s.read_end - s.keep_end >= context
                assert s.read_start <= s.keep_start < s.keep_end <= s.read_end
                kept[s.keep_start:s.keep_end] += 1
            assert (kept == 1).all()  # every pixel kept by exactly one tile: the regions abut
            # fewest: one tile fewer, each as long as allowed, would not cover the padded axis (n tiles of
            # R keep n R - 2 (n - 1) context pixels); and R is the shortest with which n tiles do
            n, longest, padded = len(spans), tile // stride * stride, length + (-length) % stride
            read = spans[0].read_end - spans[0].read_start
            assert (n - 1) * longest - 2 * (n - 2) * context < padded <= n * read - 2 * (n - 1) * context
            assert n * (read - stride) - 2 * (n - 1) * context < padded


def test_tiles_worked_by_hand():
    """2048 px in tiles of at most 1188 with a 32 px context: two tiles of (2048 + 2 x 32) / 2 = 1056,
    the second starting at 2048 - 1056 = 992; the kept regions meet where its context ends, 992 + 32."""
    first, second = plan_spans(2048, 1188, 2, 32)
    assert (first.read_start, first.read_end, second.read_start, second.read_end) == (0, 1056, 992, 2048)
    assert (first.keep_start, first.keep_end, second.keep_start, second.keep_end) == (0, 1024, 1024, 2048)
    # an odd length: (2050 + 64) / 2 = 1057 rounds up to 1058 on the stride; the last tile reads one pixel
    # less, which the stride padding restores
    spans = plan_spans(2049, 1188, 2, 32)
    assert [(s.read_start, s.read_end, s.keep_start, s.keep_end) for s in spans] == [(0, 1058, 0, 1024),
                                                                                   (992, 2049, 1024, 2049)]
    # 3000 px with a 30 px context: (3000 - 60) / (1188 - 60) = 2.6 -> 3 tiles of (3000 + 4 x 30) / 3 = 1040,
    # starting 980 apart; an inner tile keeps 1040 - 2 x 30 = 980
    spans = plan_spans(3000, 1188, 2, 30)
    assert [(s.read_start, s.read_end, s.keep_start, s.keep_end) for s in spans] == [
        (0, 1040, 0, 1010), (980, 2020, 1010, 1990), (1960, 3000, 1990, 3000)]


# --- batched tiles -------------------------------------------------------------------------------------


def test_batched_tiles_equal_single_tiles_and_the_whole_image_with_noise():
    """The same 12 tiles one per pass and 12 in one pass give the whole image's output (strong seeded
    noise included), up to float rounding. By hand: n tiles of R px with a 30 px context keep
    n R - 2 (n - 1) 30 px, so the 485 rows (486 padded) in tiles of at most 200 take (486 - 60) / 140 = 3.04
    -> 4 tiles of (486 + 3 x 60) / 4 = 166.5 -> 168 rows, and the 473 columns (474 padded)
    (474 - 60) / 140 = 2.96 -> 3 tiles of (474 + 2 x 60) / 3 = 198 columns."""
    G = random_generator()
    rgb = np.asarray(smooth_photo(3 * 156 + 17, 3 * 156 + 5))
    whole = translate_tensor(G, rgb_to_tensor(rgb), seed=3)[0].permute(1, 2, 0)
    cost = measure_cost(G)
    one = Translator(G, torch.device("cpu"), tile=200, seed=3, max_memory=int(cost.bytes(200 * 200)) + 1)
    tiles, per_pass, pixels = one.plan(*rgb.shape[:2])
    assert one.context == 30 and (tiles, per_pass, pixels) == (12, 1, 168 * 198)
    many = Translator(G, torch.device("cpu"), tile=200, seed=3, max_memory=int(cost.bytes(12 * pixels)) + 1)
    assert many.plan(*rgb.shape[:2]) == (12, 12, pixels)
    single, batched = one.translate_tiled(rgb), many.translate_tiled(rgb)
    assert (single - whole).abs().max().item() < 1e-4
    assert (batched - whole).abs().max().item() < 1e-4
    assert (batched - single).abs().max().item() < 1e-4
    assert whole.std() > 0.1


def test_budget_chosen_tiles_equal_the_whole_image(tiny_model: Path, tmp_path: Path):
    """The CLI with a budget too small for the whole image tiles it, and gives the whole image's pixels."""
    smooth_photo(230, 410).save(tmp_path / "big.png")
    budget = math.ceil(measure_cost(Generator(ngf=2, crop_size=32)).bytes(200 * 200))
    G = random_generator()
    translator = Translator(G, torch.device("cpu"), max_memory=budget)
    assert translator.tile == 200 and not translator.fits_whole(230, 410) and translator.fits_whole(190, 200)
    assert run("translate", tiny_model, tmp_path / "big.png", "--out", tmp_path / "whole", "--device", "cpu",
               "--max-memory", "1GiB").exit_code == 0
    result = run("translate", tiny_model, tmp_path / "big.png", "--out", tmp_path / "tiled", "--device", "cpu",
                 "--max-memory", f"{budget}B")
    assert result.exit_code == 0, result.output
    whole = np.asarray(Image.open(tmp_path / "whole" / "big.png"), dtype=np.int16)
    tiled = np.asarray(Image.open(tmp_path / "tiled" / "big.png"), dtype=np.int16)
    assert np.abs(tiled - whole).max() <= 1 and np.abs(tiled - whole).mean() < 0.05


def test_fits_whole_counts_the_border_and_stride_padding():
    G = random_generator()
    cost = measure_cost(G)
    translator = Translator(G, torch.device("cpu"), max_memory=math.ceil(cost.bytes(200 * 200)), border=8)
    assert translator.fits_whole(184, 184) and not translator.fits_whole(185, 184)  # 185 + 16 pads to 202
    assert math.isqrt(translator.max_pixels) == 200
