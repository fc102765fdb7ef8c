"""The benchmark suite: one table, one JSON file.

    python benchmarks/run.py [--quick] [--device auto] [--presets sincut,cut,fastcut] [--json PATH]

- seconds per training step for each preset at its defaults (sincut: batch 16 x 64 px patches;
  cut/fastcut: batch 1, 256 px crops), split into data, G forward, D step and G step;
- patch-sampler throughput (patches per second, batch 16 x 64 px);
- translate time and peak memory at 1024x768 and 4096x3072 through the real `sincut translate` path
  (tiling included), each size in a fresh process (benchmarks/translate.py does 6000x4000 too).
Each figure is the median of repeated measurements after warm-up. Data: the paper's Etretat/Monet pair
and ../shared/data/unpaired_small when present, else the bundled samples (and folders cut from them).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sincut.config import make_config  # noqa: E402
from sincut.data.images import load_image  # noqa: E402
from sincut.data.patches import PatchSampler  # noqa: E402
from sincut.train import Trainer, make_data, with_concrete_steps  # noqa: E402
from sincut.tiles import DEFAULT_TILE  # noqa: E402
from sincut.translate import pick_device  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from translate import measure as measure_translate  # noqa: E402  (benchmarks/translate.py)

SHARED = ROOT.parent / "shared" / "data"
PAPER_CODE_SECONDS = {"sincut": 29.0, "cut": 16.0, "fastcut": 7.8}  # issue figures, 2-core CPU like CI's


def image_pair() -> tuple[Path, Path]:
    pair = SHARED / "single_image_monet_etretat"
    if (pair / "monet.jpg").is_file():
        return pair / "etretat-normandy-france.jpg", pair / "monet.jpg"
    samples = ROOT / "samples"
    return samples / "photo_montStMichel.jpg", samples / "painting_vincent_van_gogh_village_street_in_auver.jpg"


def folder_pair(scratch: Path) -> tuple[Path, Path]:
    if (SHARED / "unpaired_small" / "trainA").is_dir():
        return SHARED / "unpaired_small" / "trainA", SHARED / "unpaired_small" / "trainB"
    from PIL import Image
    for name, src in zip("AB", image_pair()):
        (scratch / name).mkdir(parents=True, exist_ok=True)
        img = Image.open(src).convert("RGB")
        for i in range(4):
            img.crop((i * 40, 0, i * 40 + 300, 300)).save(scratch / name / f"{i}.jpg")
    return scratch / "A", scratch / "B"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training(preset: str, device: torch.device, steps: int, warmup: int, scratch: Path) -> dict[str, float]:
    config = make_config(preset)
    source, target = image_pair() if preset == "sincut" else folder_pair(scratch)
    data = make_data(config, source, target, device)
    config = with_concrete_steps(config, data)
    trainer = Trainer.build(config, data, device)
    phases: dict[str, list[float]] = {"data": [], "G forward": [], "D step": [], "G step": [], "total": []}
    for i in range(warmup + steps):
        sync(device)
        t0 = time.perf_counter()
        trainer.set_lr(i)
        src, tgt = trainer.sample(i)
        sync(device)
        t1 = time.perf_counter()
        fwd = trainer.forward(src, tgt)
        sync(device)
        t2 = time.perf_counter()
        trainer.discriminator_step(fwd, i)
        sync(device)
        t3 = time.perf_counter()
        trainer.generator_step(fwd)
        sync(device)
        t4 = time.perf_counter()
        if i >= warmup:
            for key, value in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
                phases[key].append(value)
    return {k: statistics.median(v) for k, v in phases.items()}


def sampler_throughput(device: torch.device, repeats: int) -> float:
    sampler = PatchSampler(load_image(image_pair()[0]).to(device), crop_size=64)
    rng = torch.Generator(device=device).manual_seed(0)
    times = []
    for _ in range(repeats + 2):
        sync(device)
        t = time.perf_counter()
        sampler.sample(16, rng)
        sync(device)
        times.append(time.perf_counter() - t)
    return 16 / statistics.median(times[2:])


def translate_cost(device: str, h: int, w: int) -> dict[str, float]:
    """The real `sincut translate` path (tiling included) in a fresh interpreter: see translate.py."""
    r = measure_translate(w, h, DEFAULT_TILE, device)
    return {"seconds": r["seconds_per_image"], "extra_peak_mib": r["peak_rss_mib"] - r["rss_before_mib"],
            "peak_rss_mib": r["peak_rss_mib"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, and 4096x3072 only on a GPU")
    parser.add_argument("--presets", default="sincut,cut,fastcut")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "latest.json")
    args = parser.parse_args()

    device = pick_device(args.device)
    steps, warmup = (2, 1) if args.quick else (5, 2)
    machine = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine()),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "quick": args.quick,
    }
    result: dict = {"machine": machine, "seconds_per_step": {}, "translate": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for preset in args.presets.split(","):
            result["seconds_per_step"][preset] = time_training(preset, device, steps, warmup, Path(scratch))
    result["sampler_patches_per_second"] = sampler_throughput(device, 5 if args.quick else 20)
    sizes = [(768, 1024)] + ([] if args.quick and device.type == "cpu" else [(3072, 4096)])
    for h, w in sizes:
        result["translate"][f"{w}x{h}"] = translate_cost(args.device, h, w)

    print(f"device: {machine['device']}  torch {machine['torch']}  threads {machine['threads']}"
          f"{'  (quick)' if args.quick else ''}")
    print(f"{'preset':<9}{'data':>8}{'G fwd':>8}{'D step':>8}{'G step':>8}{'total':>8}  vs paper's code")
    for preset, t in result["seconds_per_step"].items():
        ratio = PAPER_CODE_SECONDS[preset] / t["total"]
        print(f"{preset:<9}{t['data']:>8.3f}{t['G forward']:>8.3f}{t['D step']:>8.3f}{t['G step']:>8.3f}"
              f"{t['total']:>8.3f}  {ratio:.1f}x faster than {PAPER_CODE_SECONDS[preset]} s (CPU figure)")
    print(f"patch sampler: {result['sampler_patches_per_second']:.0f} patches/s (batch 16 x 64 px)")
    for size, t in result["translate"].items():
        print(f"translate {size}: {t['seconds']:.2f} s per image, peak RSS {t['peak_rss_mib']:.0f} MiB "
                  f"({t['extra_peak_mib']:.0f} MiB above the loaded model)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
