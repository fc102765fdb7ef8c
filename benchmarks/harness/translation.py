"""`sincut translate`'s Translator timed on one image size in a fresh interpreter, so that its peak resident
memory is its own: shared by translate.py (per size and engine) and run.py (beside the training steps).

The child is this module itself: `python -m benchmarks.harness.translation '{"width": ...}'` prints one
JSON line. The generator is the default one (ngf=10) with random weights (speed and memory do not depend on
them), --no-noise, array in and array out (no decode or encode); one warm-up pass on 256x256 first."""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
from PIL import Image

from sincut.inference.device import pick_device
from sincut.inference.translator import Translator
from sincut.nets import Generator

from .flops import CountFlops
from .paths import ROOT, SAMPLE_PHOTO
from .timing import json_from_child, memory_mib, sync, time_calls

WHOLE = 10**6  # a tile this large puts any benchmarked image through in one pass
REPEAT_MAX_MEGAPIXELS = 4.0  # larger images are timed once: one pass of 12 MP takes minutes on a CPU


def repeats_for(width: int, height: int, repeats: int) -> int:
    """Timed passes for one size: `repeats` up to REPEAT_MAX_MEGAPIXELS, one above (minutes each)."""
    return repeats if width * height <= REPEAT_MAX_MEGAPIXELS * 1e6 else 1


def flops_per_megapixel() -> float:
    """FLOPs of one whole-image pass of the default generator, per megapixel (convolutions, counted at
    256x256: the count is exactly proportional to the pixels for a fully convolutional net)."""
    G = Generator().eval().requires_grad_(False)
    side = 256
    counter = CountFlops()
    with counter, torch.no_grad():  # under inference_mode the dispatch mode sees no ops
        G(torch.zeros(1, 3, side, side), noise=G.draw_noise(1, side, side))
    return counter.total / (side * side) * 1e6


def measure(width: int, height: int, engine: str, tile: int | None, budget: int | None, device: str,
            repeats: int) -> dict:
    """One (size, engine) in a fresh interpreter: `repeats` timed passes, their median as "seconds", every
    time in "times", the plan (tile, tiles, tiles per pass), peak and starting resident memory."""
    params = {"width": width, "height": height, "engine": engine, "tile": tile, "budget": budget,
              "device": device, "repeats": repeats}
    return json_from_child([sys.executable, "-m", __name__, json.dumps(params)], f"{width}x{height} {engine}",
                           cwd=ROOT)


def measure_here(width: int, height: int, engine: str, tile: int | None, budget: int | None, device: str,
                 repeats: int) -> dict:
    """The child's side of measure(): build, warm up, time."""
    target = pick_device(device)
    torch.manual_seed(0)
    G = Generator().to(target, memory_format=torch.channels_last).eval().requires_grad_(False)
    rgb = np.asarray(Image.open(SAMPLE_PHOTO).convert("RGB").resize((width, height), Image.BICUBIC))
    translator = Translator(G, target, tile=tile, max_memory=budget, noise=False, engine=engine)
    tiles, per_pass, tile_pixels = translator.plan(height, width)
    ready = memory_mib("VmRSS")
    translator.translate(np.asarray(Image.new("RGB", (256, 256), (90, 120, 150))))  # oneDNN's, onnxruntime's setup
    if target.type == "cuda":
        sync(target)
        torch.cuda.reset_peak_memory_stats(target)

    def one_pass(_: int) -> None:
        assert translator.translate(rgb).shape == rgb.shape

    timings = time_calls(one_pass, repeats, warmup=0, device=target)
    result = {"seconds": timings.median, "times": timings.times, "tile": translator.tile, "tiles": tiles,
              "tiles_per_pass": per_pass, "tile_pixels": tile_pixels, "budget_mib": translator.budget / 2**20,
              "peak_rss_mib": memory_mib("VmHWM"), "rss_before_mib": ready, "threads": torch.get_num_threads()}
    if target.type == "cuda":
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated(target) / 2**20
    return result


if __name__ == "__main__":
    print(json.dumps(measure_here(**json.loads(sys.argv[1]))))
