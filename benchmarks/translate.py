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
table shows the median (each row's spread is printed as it is measured) and the JSON keeps every time.
The memory budget (--max-memory, else the default) and the tile it chose are printed under the table
(docs/benchmarks.md's) and stored in the JSON.

FLOPs are counted once, on one whole-image pass (benchmarks/harness/flops.py), as FLOPs per megapixel of
image: GFLOP/s is that useful work over the time, so what tiles compute twice (their context) shows as a
lower rate. The reference line is the whole-image rate at 0.8 MP (--reference 1024x768, in one pass
whatever the budget) for each engine; "vs whole" is each row's seconds per megapixel over it. 12 and
24 MP take minutes and about 3 GiB on a CPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.harness and sincut from this checkout

from benchmarks.harness.args import add_json_option, comma_list, parse_size, parse_sizes, parser  # noqa: E402
from benchmarks.harness.machine import describe  # noqa: E402
from benchmarks.harness.report import markdown_table, save_result  # noqa: E402
from benchmarks.harness.timing import Timings  # noqa: E402
from benchmarks.harness.translation import (  # noqa: E402
    REPEAT_MAX_MEGAPIXELS, WHOLE, flops_per_megapixel, measure, repeats_for)
from sincut.inference.budget import CPU_BUDGET_CAP, format_memory, parse_memory  # noqa: E402
from sincut.inference.device import pick_device  # noqa: E402


def docs_row(row: dict) -> list[str]:
    """One row of docs/benchmarks.md's table."""
    tile = "whole" if row["tiles"] == 1 else f"{row['tile']} px"
    size = row["size"] + (" (reference)" if row["whole_reference"] else "")
    return [row["engine"], size, f"{row['megapixels']:.1f}", tile, str(row["tiles"]),
            f"{row['seconds_per_megapixel']:.2f}", f"{row['vs_whole']:.2f}", f"{row['gflops_per_second']:.0f}",
            f"{row['peak_rss_mib']:.0f} MiB"]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--sizes", default="1024x768,2048x1536,4000x3000,6000x4000",
                    help="WxH list, each translated as sincut translate would (tiled when over the budget)")
    ap.add_argument("--reference", default="1024x768", help="WxH translated in one pass: the reference line")
    ap.add_argument("--engines", default="torch,onnxruntime")
    ap.add_argument("--max-memory", default=None, help="as sincut translate --max-memory (default: its default)")
    ap.add_argument("--tile", type=int, default=None, help="as sincut translate --tile (default: from the budget)")
    ap.add_argument("--repeats", type=int, default=3,
                    help=f"timed passes per image up to {REPEAT_MAX_MEGAPIXELS:g} MP (one above); the median is shown")
    ap.add_argument("--device", default="cpu")
    add_json_option(ap, "translate")
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error(f"--repeats must be at least 1, got {args.repeats}")
    try:
        budget = parse_memory(args.max_memory) if args.max_memory else None
    except ValueError as e:
        ap.error(f"--max-memory: {e}")
    engines = comma_list(args.engines)
    flops = flops_per_megapixel()
    machine = {**describe(pick_device(args.device)), "device": args.device,
               "generator": "ngf=10 (default), random weights, --no-noise", "max_memory": args.max_memory,
               "tile": args.tile, "repeats": args.repeats, "repeat_max_megapixels": REPEAT_MAX_MEGAPIXELS,
               "gflop_per_megapixel": flops / 1e9}
    print(f"sincut translate, {args.device}, torch {machine['torch']}, {flops / 1e9:.1f} GFLOP per megapixel",
          file=sys.stderr)
    rows, reference = [], {}
    plan = [("whole", *parse_size(args.reference, "--reference"), engine) for engine in engines]
    plan += [("budget", width, height, engine) for width, height in parse_sizes(args.sizes, "--sizes")
             for engine in engines]
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
        timings = Timings(row["times"])
        spread = f", spread {timings.relative_range:.0%}" if len(timings.times) > 1 else ""
        gpu = f", GPU peak {row['peak_gpu_mib']:.0f} MiB" if "peak_gpu_mib" in row else ""
        print(f"{engine} {row['size']}{' (reference)' if whole else ''}: {row['seconds_per_megapixel']:.2f} s/MP, "
              f"median of {len(timings.times)}{spread}{gpu}", file=sys.stderr, flush=True)
    print(markdown_table(["engine", "size", "MP", "tile", "tiles", "s/MP", "vs whole", "GFLOP/s", "peak RSS"],
                         [docs_row(row) for row in rows]))
    print(f"(reference): {args.reference} in one pass, whatever the budget; s/MP: the median of the timed passes "
          f"(--repeats {args.repeats} up to {REPEAT_MAX_MEGAPIXELS:g} MP, one above)")
    if "budget_mib" in machine:
        which = f"--max-memory {args.max_memory}" if args.max_memory else (
            f"the default: half the available memory, at most {format_memory(CPU_BUDGET_CAP)} on a CPU")
        chose = f"--tile {args.tile}" if args.tile else "the largest tile whose pass fits the budget"
        print(f"memory budget {format_memory(machine['budget_mib'] * 2**20)} ({which}); "
              f"tile {machine['tile_chosen']} px ({chose})")
    machine["threads"] = rows[0]["threads"] if rows else None
    save_result(args.json, {"machine": machine, "results": rows})


if __name__ == "__main__":
    main()
