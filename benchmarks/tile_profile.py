"""Where tiled translation's time goes: the generator's passes, the pixels they compute, everything else.

    python benchmarks/tile_profile.py [--sizes 1024x768,1188x1188,4000x3000] [--json docs/results/tile_profile.json]

One process, the default generator with random weights, `Translator` with the default memory budget and
--no-noise, one warm-up pass; each size translated once with every forward pass (`Translator._run`) timed.
Per size: G's seconds per megapixel it computed (tiles compute their context twice), computed pixels over
the image's (the context overlap), the seconds outside G (planning, copies, stitching), and the whole job's
seconds per image megapixel against the first size's (a whole-image pass). Because all sizes run in one
process, one after the other, the ratio is not spoiled by the machine's drift between processes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.harness and sincut from this checkout

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.harness.args import add_json_option, parse_sizes, parser  # noqa: E402
from benchmarks.harness.machine import describe  # noqa: E402
from benchmarks.harness.paths import SAMPLE_PHOTO  # noqa: E402
from benchmarks.harness.report import markdown_table, save_result  # noqa: E402
from sincut.inference.translator import Translator  # noqa: E402
from sincut.nets import Generator  # noqa: E402


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--sizes", default="1024x768,1188x1188,4000x3000")
    add_json_option(ap, "tile_profile")
    args = ap.parse_args()
    sizes = parse_sizes(args.sizes, "--sizes")

    torch.manual_seed(0)
    G = Generator().to(memory_format=torch.channels_last).eval().requires_grad_(False)
    translator = Translator(G, torch.device("cpu"), noise=False)
    passes: list[tuple[tuple[int, ...], float]] = []
    run = translator._run  # noqa: SLF001 - timed, not changed

    def timed(x: torch.Tensor, noise: list[torch.Tensor]) -> torch.Tensor:
        start = time.perf_counter()
        out = run(x, noise)
        passes.append((tuple(x.shape), time.perf_counter() - start))
        return out

    translator._run = timed  # noqa: SLF001
    photo = Image.open(SAMPLE_PHOTO).convert("RGB")
    translator.translate(np.asarray(Image.new("RGB", (256, 256))))  # warm-up
    rows, reference = [], None
    for width, height in sizes:
        rgb = np.asarray(photo.resize((width, height), Image.BICUBIC))
        passes.clear()
        start = time.perf_counter()
        translator.translate(rgb)
        total = time.perf_counter() - start
        g_seconds = sum(s for _, s in passes)
        computed = sum(shape[0] * shape[2] * shape[3] for shape, _ in passes)
        per_image_mp = total / (width * height / 1e6)
        reference = reference or per_image_mp
        rows.append({"size": f"{width}x{height}", "passes": len(passes), "pass_shapes": sorted({s for s, _ in passes}),
                     "pass_seconds": [round(s, 3) for _, s in passes], "total_seconds": round(total, 3),
                     "g_seconds_per_computed_megapixel": g_seconds / computed * 1e6,
                     "computed_over_image": computed / (width * height), "outside_g_seconds": total - g_seconds,
                     "seconds_per_image_megapixel": per_image_mp, "vs_first": per_image_mp / reference})
        print(f"{width}x{height}: {total:.2f} s", file=sys.stderr, flush=True)
    head = ["size", "passes", "G s/computed MP", "computed/image", "outside G s", "s/image MP", "vs first"]
    print(markdown_table(head, [[r["size"], r["passes"], f"{r['g_seconds_per_computed_megapixel']:.2f}",
                                 f"{r['computed_over_image']:.3f}", f"{r['outside_g_seconds']:.2f}",
                                 f"{r['seconds_per_image_megapixel']:.2f}", f"{r['vs_first']:.2f}"] for r in rows]))
    save_result(args.json, {"machine": describe(), "budget_mib": translator.budget / 2**20, "tile": translator.tile,
                            "rows": rows})


if __name__ == "__main__":
    main()
