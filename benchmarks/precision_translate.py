"""How far bf16 translation is from fp32, and how much faster, for one trained model and one photo.

    python benchmarks/precision_translate.py RUN PHOTO [--json PATH] [--repeats 3]

Translates PHOTO with RUN's generator through the real translator (`sincut translate`'s tiling and
border) at fp32 and at bf16 autocast, the per-pixel noise seeded alike, and prints the difference of
the two 8-bit outputs (mean, 99th and 99.9th percentile, largest, share above 2 levels) and each
precision's median seconds per image. Run it alone on the machine: the seconds are a speed figure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe  # noqa: E402
from quality import write_json  # noqa: E402
from sincut.data.images import read_image  # noqa: E402
from sincut.inference.device import cpu_has_bf16_kernels  # noqa: E402
from sincut.inference.model import load_generator  # noqa: E402
from sincut.inference.translator import Translator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("photo", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/precision_translate.json"))
    args = ap.parse_args()
    if not cpu_has_bf16_kernels():
        raise SystemExit("this CPU has no bf16 convolution kernels: bf16 translation is refused here")
    device = torch.device("cpu")
    G, config, _ = load_generator(args.run, device)
    rgb = read_image(args.photo).rgb
    outputs, seconds = {}, {}
    for precision in ("fp32", "bf16"):
        translator = Translator(G, device, seed=0, precision=precision, border=config.border)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            outputs[precision] = translator.translate(rgb)
            times.append(time.perf_counter() - t0)
        seconds[precision] = statistics.median(times)
    diff = np.abs(outputs["fp32"].astype(np.int16) - outputs["bf16"].astype(np.int16))
    result = {
        "machine": describe(torch.device("cpu")), "date": time.strftime("%Y-%m-%d"),
        "run": str(args.run), "photo": args.photo.name, "size": list(rgb.shape[1::-1]), "preset": config.preset,
        "levels": {"mean": round(float(diff.mean()), 3), "p99": float(np.percentile(diff, 99)),
                   "p99_9": float(np.percentile(diff, 99.9)), "max": int(diff.max()),
                   "share_above_2": round(float((diff > 2).mean()), 4)},
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
    print(f"{args.photo.name} {rgb.shape[1]}x{rgb.shape[0]}, {config.preset} model: bf16 - fp32 in 8-bit levels: "
          f"mean {result['levels']['mean']}, 99.9% within {result['levels']['p99_9']:g}, max {result['levels']['max']}"
          f"; seconds fp32 {seconds['fp32']:.2f}, bf16 {seconds['bf16']:.2f} ({seconds['fp32'] / seconds['bf16']:.2f}x)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.json, result)


if __name__ == "__main__":
    main()
