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

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from sincut.inference.translator import Translator  # noqa: E402
from sincut.nets import Generator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1024x768,1188x1188,4000x3000")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "tile_profile.json")
    args = parser.parse_args()

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
    photo = Image.open(ROOT / "samples" / "photo_montStMichel.jpg").convert("RGB")
    translator.translate(np.asarray(Image.new("RGB", (256, 256))))  # warm-up
    rows, reference = [], None
    print(f"{'size':>10} {'passes':>6} {'G s/computed MP':>15} {'computed/image':>14} {'outside G s':>11} "
          f"{'s/image MP':>10} {'vs first':>8}")
    for size in args.sizes.split(","):
        width, height = map(int, size.lower().split("x"))
        rgb = np.asarray(photo.resize((width, height), Image.BICUBIC))
        passes.clear()
        start = time.perf_counter()
        translator.translate(rgb)
        total = time.perf_counter() - start
        g_seconds = sum(s for _, s in passes)
        computed = sum(shape[0] * shape[2] * shape[3] for shape, _ in passes)
        per_image_mp = total / (width * height / 1e6)
        reference = reference or per_image_mp
        row = {"size": size, "passes": len(passes), "pass_shapes": sorted({s for s, _ in passes}),
               "pass_seconds": [round(s, 3) for _, s in passes], "total_seconds": round(total, 3),
               "g_seconds_per_computed_megapixel": g_seconds / computed * 1e6,
               "computed_over_image": computed / (width * height), "outside_g_seconds": total - g_seconds,
               "seconds_per_image_megapixel": per_image_mp, "vs_first": per_image_mp / reference}
        rows.append(row)
        print(f"{size:>10} {row['passes']:>6} {row['g_seconds_per_computed_megapixel']:>15.2f} "
              f"{row['computed_over_image']:>14.3f} {row['outside_g_seconds']:>11.2f} {per_image_mp:>10.2f} "
              f"{row['vs_first']:>8.2f}")
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    data = {"machine": {"cpu": cpu, "threads": torch.get_num_threads(), "torch": torch.__version__,
                        "date": time.strftime("%Y-%m-%d")},
            "command": "python benchmarks/tile_profile.py " + " ".join(sys.argv[1:]),
            "budget_mib": translator.budget / 2**20, "tile": translator.tile, "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(args.json)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
