"""How far bf16 translation is from fp32, and how much faster, for one trained model and one photo.

    python benchmarks/precision_translate.py RUN PHOTO [--json PATH] [--repeats 3]

Translates PHOTO with RUN's generator through the real translator (`sincut translate`'s tiling and
border) at fp32 and at bf16 autocast, the per-pixel noise seeded alike, and prints the difference of
the two 8-bit outputs (mean, 99th and 99.9th percentile, largest, share above 2 levels) and each
precision's median seconds per image. Run it alone on the machine: the seconds are a speed figure.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.harness and sincut from this checkout

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.harness.args import add_json_option, parser  # noqa: E402
from benchmarks.harness.machine import describe  # noqa: E402
from benchmarks.harness.report import save_result  # noqa: E402
from benchmarks.harness.timing import time_calls  # noqa: E402
from sincut.data.images import read_image  # noqa: E402
from sincut.inference.device import cpu_has_bf16_kernels  # noqa: E402
from sincut.inference.model import load_generator  # noqa: E402
from sincut.inference.translator import Translator  # noqa: E402


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("run", type=Path)
    ap.add_argument("photo", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    add_json_option(ap, "precision_translate")
    args = ap.parse_args()
    if not cpu_has_bf16_kernels():
        raise SystemExit("this CPU has no bf16 convolution kernels: bf16 translation is refused here")
    device = torch.device("cpu")
    G, config, _ = load_generator(args.run, device)
    rgb = read_image(args.photo).rgb
    outputs, seconds = {}, {}
    for precision in ("fp32", "bf16"):
        translator = Translator(G, device, seed=0, precision=precision, border=config.border)

        def translate(_: int, translator: Translator = translator, precision: str = precision) -> None:
            outputs[precision] = translator.translate(rgb)

        seconds[precision] = time_calls(translate, args.repeats, warmup=0).median
    diff = np.abs(outputs["fp32"].astype(np.int16) - outputs["bf16"].astype(np.int16))
    result = {
        "machine": describe(device), "date": time.strftime("%Y-%m-%d"),
        "run": str(args.run), "photo": args.photo.name, "size": list(rgb.shape[1::-1]), "preset": config.preset,
        "levels": {"mean": round(float(diff.mean()), 3), "p99": float(np.percentile(diff, 99)),
                   "p99_9": float(np.percentile(diff, 99.9)), "max": int(diff.max()),
                   "share_above_2": round(float((diff > 2).mean()), 4)},
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
    levels = result["levels"]
    print(f"{args.photo.name} {rgb.shape[1]}x{rgb.shape[0]}, {config.preset} model: bf16 - fp32 in 8-bit levels: "
          f"mean {levels['mean']}, 99.9% within {levels['p99_9']:g}, max {levels['max']}; seconds fp32 "
          f"{seconds['fp32']:.2f}, bf16 {seconds['bf16']:.2f} ({seconds['fp32'] / seconds['bf16']:.2f}x)")
    save_result(args.json, result)


if __name__ == "__main__":
    main()
