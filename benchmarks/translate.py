"""Seconds per megapixel, GFLOP/s and peak memory of translation at camera resolutions, per engine.

    python benchmarks/translate.py [--sizes 1024x768,2048x1536,4000x3000,6000x4000] [--reference 1024x768]
                                   [--engines torch,onnxruntime] [--max-memory SIZE] [--tile PX]
                                   [--repeats 3] [--device cpu] [--json benchmarks/results/translate.json]

Each (size, engine) runs in a fresh interpreter, so its peak resident memory (VmHWM from
/proc/self/status) is its own: the default ngf=10 generator with random weights (speed and memory do
not depend on them), a `Translator` as `sincut translate` builds it (the tile and the tiles per pass
from the memory budget: --max-memory, else the default), --no-noise for both engines so they compute
the same function, array in and array out (no decode or encode). One warm-up pass on a 256x256 image
first (oneDNN's and onnxruntime's one-off setup), then the image --repeats times (default 3; once above
4 MP, where a pass takes minutes), timed: single passes vary by about 20% on a shared 2-core CPU, so the
table shows the median and the JSON keeps every time. The memory budget (--max-memory, else the
default) and the tile it chose are printed above the table and stored in the JSON.

FLOPs are counted once, on one whole-image pass (benchmarks/flop_count.py), as FLOPs per megapixel of
image: GFLOP/s is that useful work over the time, so what tiles compute twice (their context) shows as a
lower rate. The reference line is the whole-image rate at 0.8 MP (--reference 1024x768, in one pass
whatever the budget) for each engine; "vs whole" is each row's seconds per megapixel over it. 12 and
24 MP take minutes and about 3 GiB on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WHOLE = 10**6  # a --tile this large puts any benchmarked image through in one pass
REPEAT_MAX_MEGAPIXELS = 4.0  # larger images are timed once: one pass of 12 MP takes minutes on a CPU

CHILD = """
import json, statistics, sys, time
sys.path.insert(0, {root!r})
import numpy as np, torch
from PIL import Image
from sincut.nets import Generator
from sincut.inference.device import pick_device
from sincut.inference.translator import Translator

def status_mib(field):  # VmHWM (peak RSS) starts afresh at exec, unlike ru_maxrss which a child inherits
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

width, height, engine, tile, budget, device = {width}, {height}, {engine!r}, {tile}, {budget}, pick_device({device!r})
repeats = {repeats}
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
times = []
for _ in range(repeats):
    t0 = time.perf_counter()
    out = translator.translate(rgb)
    if device.type == "cuda":
        torch.cuda.synchronize()
    times.append(time.perf_counter() - t0)
    assert out.shape == rgb.shape
    del out
result = {{"seconds": statistics.median(times), "times": times, "tile": translator.tile, "tiles": tiles,
          "tiles_per_pass": per_pass, "tile_pixels": tile_pixels, "budget_mib": translator.budget / 2**20,
          "peak_rss_mib": status_mib("VmHWM"), "rss_before_mib": ready, "threads": torch.get_num_threads()}}
if device.type == "cuda":
    result["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
print(json.dumps(result))
"""


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo; platform.processor() says only x86_64 on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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


def repeats_for(width: int, height: int, repeats: int) -> int:
    """Timed passes for one size: `repeats` up to REPEAT_MAX_MEGAPIXELS, one above (minutes each)."""
    return repeats if width * height <= REPEAT_MAX_MEGAPIXELS * 1e6 else 1


def measure(width: int, height: int, engine: str, tile: int | None, budget: int | None, device: str,
            repeats: int) -> dict:
    """One (size, engine) in a fresh interpreter: `repeats` timed passes, their median as "seconds"."""
    code = CHILD.format(root=str(ROOT), width=width, height=height, engine=engine, tile=tile, budget=budget,
                        device=device, repeats=repeats, photo=str(ROOT / "samples" / "photo_montStMichel.jpg"))
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
    parser.add_argument("--repeats", type=int, default=3,
                        help=f"timed passes per image up to {REPEAT_MAX_MEGAPIXELS:g} MP (one above); the median is shown")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "translate.json")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")

    import torch

    from sincut.inference.budget import CPU_BUDGET_CAP, format_memory, parse_memory

    try:
        budget = parse_memory(args.max_memory) if args.max_memory else None
    except ValueError as e:
        parser.error(f"--max-memory: {e}")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    flops = flops_per_megapixel()
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__, "device": args.device,
               "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else None,
               "generator": "ngf=10 (default), random weights, --no-noise", "max_memory": args.max_memory,
               "tile": args.tile, "repeats": args.repeats, "repeat_max_megapixels": REPEAT_MAX_MEGAPIXELS,
               "gflop_per_megapixel": flops / 1e9}
    print(f"sincut translate, {args.device}, torch {machine['torch']}, {flops / 1e9:.1f} GFLOP per megapixel")
    header = (f"{'engine':>11} {'size':>10} {'MP':>5} {'tile':>6} {'tiles':>5} {'/pass':>5} {'runs':>4} {'s/MP':>7} "
              f"{'spread':>6} {'GFLOP/s':>8} {'vs whole':>8} {'peak RSS MiB':>12}")
    print(header)
    rows, reference = [], {}
    ref_width, ref_height = map(int, args.reference.lower().split("x"))
    plan = [("whole", ref_width, ref_height, engine) for engine in engines]
    plan += [("budget", *map(int, size.lower().split("x")), engine)
             for size in args.sizes.split(",") for engine in engines]
    for kind, width, height, engine in plan:
        whole = kind == "whole"
        result = measure(width, height, engine, WHOLE if whole else args.tile, budget, args.device,
                         repeats_for(width, height, args.repeats))
        if not whole and "budget_mib" not in machine:  # what the budget chose (the same for every size)
            machine["budget_mib"], machine["tile_chosen"] = result["budget_mib"], result["tile"]
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
        times = row["times"]
        spread = f"{(max(times) - min(times)) / row['seconds']:.0%}" if len(times) > 1 else "-"
        print(f"{engine:>11} {label:>10} {megapixels:>5.2f} {tile:>6} {row['tiles']:>5} {row['tiles_per_pass']:>5} "
              f"{len(times):>4} {row['seconds_per_megapixel']:>7.2f} {spread:>6} {row['gflops_per_second']:>8.1f} "
              f"{row['vs_whole']:>8.2f} {row['peak_rss_mib']:>12.0f}{gpu}", flush=True)
    print(f"* the reference: {args.reference} in one pass, whatever the budget")
    print(f"s/MP: the median of 'runs' timed passes (--repeats {args.repeats} up to {REPEAT_MAX_MEGAPIXELS:g} MP, "
          f"one above); spread: (slowest - fastest) / median")
    if "budget_mib" in machine:
        which = f"--max-memory {args.max_memory}" if args.max_memory else (
            f"the default: half the available memory, at most {format_memory(CPU_BUDGET_CAP)} on a CPU")
        chose = f"--tile {args.tile}" if args.tile else "the largest tile whose pass fits the budget"
        print(f"memory budget {format_memory(machine['budget_mib'] * 2**20)} ({which}); "
              f"tile {machine['tile_chosen']} px ({chose})")
    machine["threads"] = rows[0]["threads"] if rows else None
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    tmp.replace(args.json)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
