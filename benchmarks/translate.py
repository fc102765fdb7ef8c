"""Images per second and peak memory of `sincut translate` at 1024x768, 4096x3072 and 6000x4000.

    python benchmarks/translate.py [--device cpu] [--sizes 1024x768,4096x3072,6000x4000]
                                   [--tile 896] [--json benchmarks/results/translate.json]

Each size runs in a fresh interpreter, so its peak resident memory (VmHWM from /proc/self/status) is its
own: the whole job of `sincut translate` on a folder of JPEGs (decode, tiled translation, PNG encode,
atomic write) with the default ngf=10 generator; images/s = images / wall time, the first image's
one-off warm-up included. Sizes below 2 megapixels get 4 images (a folder's throughput), larger
ones 1. The weights are random: speed and memory do not depend on them. The input is the bundled
photo resized to each size. Slow on a CPU: minutes for the large sizes.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sincut.tiles import DEFAULT_TILE  # noqa: E402

CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
import torch
from dataclasses import asdict
from sincut.checkpoint import save_checkpoint
from sincut.config import TrainConfig
from sincut.nets import Generator
from sincut.translate import TranslateOptions, pick_device, translate_files

def status_mib(field):  # VmHWM (peak RSS) starts afresh at exec, unlike ru_maxrss which a child inherits
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

work, image, tile, device = {work!r}, {image!r}, {tile}, pick_device({device!r})
torch.manual_seed(0)
save_checkpoint(work + "/run", 0, {{"config": asdict(TrainConfig()), "G": Generator().state_dict()}})
ready = status_mib("VmRSS")
if device.type == "cuda":
    torch.cuda.reset_peak_memory_stats(device)
summary = translate_files(work + "/run", [image], work + "/out", device, TranslateOptions(tile=tile, overwrite=True))
assert not summary.failed, summary.failed
count = len(summary.translated)
result = {{"images": count, "seconds_per_image": summary.seconds / count, "images_per_second": count / summary.seconds,
          "peak_rss_mib": status_mib("VmHWM"), "rss_before_mib": ready, "threads": torch.get_num_threads()}}
if device.type == "cuda":
    result["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
print(json.dumps(result))
"""


def make_inputs(folder: Path, width: int, height: int) -> Path:
    from PIL import Image

    photo = Image.open(ROOT / "samples" / "photo_montStMichel.jpg").convert("RGB").resize((width, height), Image.BICUBIC)
    images = folder / "images"
    images.mkdir()
    for i in range(4 if width * height < 2_000_000 else 1):
        (photo if i % 2 == 0 else photo.transpose(Image.FLIP_LEFT_RIGHT)).save(images / f"photo_{i}.jpg", quality=92)
    return images


def measure(width: int, height: int, tile: int, device: str) -> dict:
    with tempfile.TemporaryDirectory() as work:
        image = make_inputs(Path(work), width, height)
        code = CHILD.format(root=str(ROOT), work=work, image=str(image), tile=tile, device=device)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{width}x{height} failed:\n{done.stderr}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="1024x768,4096x3072,6000x4000")
    parser.add_argument("--tile", type=int, default=DEFAULT_TILE)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "translate.json")
    args = parser.parse_args()

    import torch

    machine = {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__, "device": args.device,
               "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else None,
               "generator": "ngf=10 (default), random weights", "tile": args.tile}
    print(f"sincut translate, {machine['device']}, torch {machine['torch']}, tile {args.tile}")
    print(f"{'size':>10} {'megapixels':>10} {'images':>7} {'s/image':>9} {'images/s':>9} {'peak RSS MiB':>13}")
    rows = []
    for size in args.sizes.split(","):
        width, height = map(int, size.lower().split("x"))
        result = {"size": size, "megapixels": width * height / 1e6, **measure(width, height, args.tile, args.device)}
        rows.append(result)
        gpu = f"  (GPU peak {result['peak_gpu_mib']:.0f} MiB)" if "peak_gpu_mib" in result else ""
        print(f"{size:>10} {result['megapixels']:>10.1f} {result['images']:>7} {result['seconds_per_image']:>9.1f} "
              f"{result['images_per_second']:>9.3f} "
              f"{result['peak_rss_mib']:>13.0f}{gpu}", flush=True)
    machine["threads"] = rows[0]["threads"] if rows else None
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
