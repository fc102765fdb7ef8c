"""Seconds per megapixel, GFLOP/s and peak memory of translation at camera resolutions, per engine.

    python benchmarks/translate.py [--sizes 1024x768,2048x1536,4000x3000,6000x4000] [--reference 1024x768]
                                   [--engines torch,onnxruntime] [--max-memory SIZE] [--tile PX]
                                   [--device cpu] [--json benchmarks/results/translate.json]

Each (size, engine) runs in a fresh interpreter, so its peak resident memory (VmHWM from
/proc/self/status) is its own: the default ngf=10 generator with random weights (speed and memory do
not depend on them), a `Translator` as `sincut translate` builds it (the tile and the tiles per pass
from the memory budget: --max-memory, else the default), --no-noise for both engines so they compute
the same function, array in and array out (no decode or encode). One warm-up pass on a 256x256 image
first (oneDNN's and onnxruntime's one-off setup), then the image once, timed.

FLOPs are counted once, on one whole-image pass (benchmarks/flop_count.py), as FLOPs per megapixel of
image: GFLOP/s is that useful work over the time, so what tiles compute twice (their context) shows as a
lower rate. The reference line is the whole-image rate at 0.8 MP (--reference 1024x768, in one pass
whatever the budget) for each engine; "vs whole" is each row's seconds per megapixel over it. 12 and
24 MP take minutes and about 3 GiB on a CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WHOLE = 10**6  # a --tile this large puts any benchmarked image through in one pass

CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
import numpy as np, torch
from PIL import Image
from sincut.nets import Generator
from sincut.translate import Translator, pick_device

def status_mib(field):  # VmHWM (peak RSS) starts afresh at exec, unlike ru_maxrss which a child inherits
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

width, height, engine, tile, budget, device = {width}, {height}, {engine!r}, {tile}, {budget}, pick_device({device!r})
torch.manual_seed(0)
G = Generator().to(device, memory_format=torch.channels_last).eval().requires_grad_(False)
photo = Image.open({photo!r}).convert("RGB").resize((width, height), Image.BICUBIC)
rgb = np.asarray(photo)
del photo
translator = Translator(G, device, tile=tile, max_memory=budget, noise=False, engine=engine)
tiles, per_pass, tile_pixels = translator.plan(height, width)
ready = status_mib("VmRSS")
translator.translate(np.asarray(Image.new("RGB", (256, 256), (90, 120, 150))))  # warm-up
if device.type == "cuda":
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(device)
t0 = time.perf_counter()
out = translator.translate(rgb)
seconds = time.perf_counter() - t0
assert out.shape == rgb.shape
result = {{"seconds": seconds, "tile": translator.tile, "tiles": tiles, "tiles_per_pass": per_pass,
          "tile_pixels": tile_pixels, "budget_mib": translator.budget / 2**20, "peak_rss_mib": status_mib("VmHWM"),
          "rss_before_mib": ready,           "threads": torch.get_num_threads()}}
if device.type == "cuda":
    result["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
print(json.dumps(result))
"""


def flops_per_megapixel() -> float:
    """FLOPs of one whole-image pass of the default generator, per megapixel (convolutions, counted
    at 256x256: the count is exactly proportional to the pixels for a fully convolutional net)."""
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from flop_count import CountFlops

    from sincut.nets import Generator

    G = Generator().eval().requires_grad_(False)
    side = 256
    counter = CountFlops()
    with counter, torch.no_grad():  # as benchmarks/run.py counts (under inference_mode it sees no ops)
        G(torch.zeros(1, 3, side, side), noise=G.draw_noise(1, side, side))
    return counter.total / (side * side) * 1e6


def measure(width: int, height: int, engine: str, tile: int | None, budget: int | None, device: str) -> dict:
    code = CHILD.format(root=str(ROOT), width=width, height=height, engine=engine, tile=tile, budget=budget,
                        device=device, photo=str(ROOT / "samples" / "photo_montStMichel.jpg"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{width}x{height} {engine} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1024x768,2048x1536,4000x3000,6000x4000",
                        help="WxH list, each translated as sincut translate would (tiled when over the budget)")
    parser.add_argument("--reference", default="1024x768", help="WxH translated in one pass: the reference line")
    parser.add_argument("--engines", default="torch,onnxruntime")
    parser.add_argument("--max-memory", default=None, help="as sincut translate --max-memory (default: its default)")
    parser.add_argument("--tile", type=int, default=None, help="as sincut translate --tile (default: from the budget)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "translate.json")
    args = parser.parse_args()

    import torch

    from sincut.budget import parse_memory

    budget = parse_memory(args.max_memory) if args.max_memory else None
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    flops = flops_per_megapixel()
    machine = {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__, "device": args.device,
               "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else None,
               "generator": "ngf=10 (default), random weights, --no-noise", "max_memory": args.max_memory,
               "tile": args.tile, "gflop_per_megapixel": flops / 1e9}
    print(f"sincut translate, {args.device}, torch {machine['torch']}, {flops / 1e9:.1f} GFLOP per megapixel")
    header = (f"{'engine':>11} {'size':>10} {'MP':>5} {'tile':>6} {'tiles':>5} {'/pass':>5} {'s/MP':>7} "
              f"{'GFLOP/s':>8} {'vs whole':>8} {'peak RSS MiB':>12}")
    print(header)
    rows, reference = [], {}
    ref_width, ref_height = map(int, args.reference.lower().split("x"))
    plan = [("whole", ref_width, ref_height, engine) for engine in engines]
    plan += [("budget", *map(int, size.lower().split("x")), engine)
             for size in args.sizes.split(",") for engine in engines]
    for kind, width, height, engine in plan:
        whole = kind == "whole"
        result = measure(width, height, engine, WHOLE if whole else args.tile, budget, args.device)
        megapixels = width * height / 1e6
        row = {"engine": engine, "size": f"{width}x{height}", "megapixels": megapixels, "whole_reference": whole,
               **result, "seconds_per_megapixel": result["seconds"] / megapixels,
               "gflops_per_second": flops * megapixels / result["seconds"] / 1e9}
        if whole:
            reference[engine] = row["seconds_per_megapixel"]
        row["vs_whole"] = row["seconds_per_megapixel"] / reference[engine]
        rows.append(row)
        tile = "whole" if row["tiles"] == 1 else str(row["tile"])
        gpu = f"  (GPU peak {row['peak_gpu_mib']:.0f} MiB)" if "peak_gpu_mib" in row else ""
        label = f"{row['size']}{'*' if whole else ''}"
        print(f"{engine:>11} {label:>10} {megapixels:>5.2f} {tile:>6} {row['tiles']:>5} {row['tiles_per_pass']:>5} "
              f"{row['seconds_per_megapixel']:>7.2f} {row['gflops_per_second']:>8.1f} {row['vs_whole']:>8.2f} "
              f"{row['peak_rss_mib']:>12.0f}{gpu}", flush=True)
    print(f"* the reference: {args.reference} in one pass, whatever the budget")
    machine["threads"] = rows[0]["threads"] if rows else None
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    tmp.replace(args.json)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
