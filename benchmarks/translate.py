"""Images per second and peak memory of `sincut translate` at 1024x768, 4096x3072 and 6000x4000.

    python benchmarks/translate.py [--device cpu] [--sizes 1024x768,4096x3072,6000x4000]
                                   [--tile 896] [--json benchmarks/results/translate.json]

Each size runs in a fresh interpreter, so its peak resident memory (VmHWM from /proc/self/status) is its
own: the whole job of `sincut translate` on a folder of JPEGs (decode, tiled translation, PNG encode,
atomic write) with the default ngf=10 generator; images/s = images / wall time, the first image's
one-off warm-up included. Sizes below 2 megapixels get 4 images (a folder's throughput), larger
ones 1. The weights are random: speed and memory do not depend on them. The input is the bundled
photo resized to each size. Slow on a CPU: minutes for the large sizes.

--onnx also times `sincut translate --engine onnxruntime` (the generator exported to ONNX and run by
onnxruntime's CPU provider) against the torch engine (`Translator`, --no-noise, the same tile) on one
1024x768 image: array in, array out (no decode or encode), the median of --repeats after one warm-up
each.
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


ONNX_CHILD = """
import json, statistics, sys, time
sys.path.insert(0, {root!r})
import numpy as np, torch
import onnxruntime as ort
from dataclasses import asdict
from PIL import Image
from sincut.checkpoint import save_checkpoint
from sincut.config import TrainConfig
from sincut.nets import Generator
from sincut.translate import Translator

work, image, repeats = {work!r}, {image!r}, {repeats}
torch.manual_seed(0)
save_checkpoint(work + "/run", 0, {{"config": asdict(TrainConfig()), "G": Generator().state_dict()}})
rgb = np.asarray(Image.open(image).convert("RGB"))
G = Generator()
G.load_state_dict(torch.load(sorted(__import__("glob").glob(work + "/run/checkpoints/*.pt"))[-1],
                             weights_only=True)["G"])
G = G.to(memory_format=torch.channels_last).eval().requires_grad_(False)
ours = Translator(G, torch.device("cpu"), noise=False)
engine = Translator(G, torch.device("cpu"), noise=False, engine="onnxruntime")  # translate --engine onnxruntime

def timed(fn):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out

t_ours, a = timed(lambda: ours.translate(rgb))
t_ort, b = timed(lambda: engine.translate(rgb))
print(json.dumps({{"size": f"{{rgb.shape[1]}}x{{rgb.shape[0]}}", "ours_seconds": t_ours, "onnxruntime_seconds": t_ort,
                  "speedup": t_ours / t_ort, "max_level_difference": int(np.abs(a.astype(int) - b).max()),
                  "threads": torch.get_num_threads(), "onnxruntime": ort.__version__}}))
"""


def measure_onnx(repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as work:
        image = make_inputs(Path(work), 1024, 768) / "photo_0.jpg"
        code = ONNX_CHILD.format(root=str(ROOT), work=work, image=str(image), repeats=repeats)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"onnxruntime comparison failed:\n{done.stderr}")
        return json.loads(done.stdout.strip().splitlines()[-1])


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
    parser.add_argument("--onnx", action="store_true", help="also time onnxruntime against ours at 1024x768")
    parser.add_argument("--repeats", type=int, default=5, help="timed forward passes per engine with --onnx")
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
    report = {"machine": machine, "results": rows}
    if args.onnx:
        onnx = measure_onnx(args.repeats)
        report["onnxruntime"] = onnx
        print(f"1024x768 forward, --no-noise: ours {onnx['ours_seconds']:.2f} s, onnxruntime "
              f"{onnx['onnxruntime_seconds']:.2f} s ({onnx['speedup']:.2f}x), max difference "
              f"{onnx['max_level_difference']} level(s)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
