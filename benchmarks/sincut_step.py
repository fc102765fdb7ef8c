"""Seconds per SinCUT training step (split into data, G forward, D step, G step) and translate cost.

    python benchmarks/sincut_step.py [--device auto] [--steps 5] [--json benchmarks/results/sincut_step.json]

Uses the paper's own example pair from ../shared when present (the 1024x768 Etretat photo and
Monet's painting), else the bundled samples. Each figure is the median over --steps measured steps
after --warmup steps. Translation runs in a fresh subprocess so its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sincut.config import make_config  # noqa: E402
from sincut.train import Trainer, make_data  # noqa: E402
from sincut.translate import pick_device  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "single_image_monet_etretat"


def image_pair() -> tuple[Path, Path]:
    if (SHARED / "monet.jpg").is_file():
        return SHARED / "etretat-normandy-france.jpg", SHARED / "monet.jpg"
    return ROOT / "samples" / "photo_montStMichel.jpg", ROOT / "samples" / "painting_vincent_van_gogh_village_street_in_auver.jpg"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training(device: torch.device, steps: int, warmup: int) -> dict[str, float]:
    source, target = image_pair()
    config = make_config("sincut")
    trainer = Trainer.build(config, make_data(config, source, target, device), device)
    phases: dict[str, list[float]] = {"data": [], "G forward": [], "D step": [], "G step": [], "total": []}
    for i in range(warmup + steps):
        sync(device)
        t0 = time.perf_counter()
        trainer.set_lr(i)
        src, tgt = trainer.sample(i)
        sync(device)
        t1 = time.perf_counter()
        fwd = trainer.objective.forward(src, tgt)
        sync(device)
        t2 = time.perf_counter()
        trainer.discriminator_step(fwd)
        sync(device)
        t3 = time.perf_counter()
        trainer.generator_step(fwd)
        sync(device)
        t4 = time.perf_counter()
        if i >= warmup:
            for key, value in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
                phases[key].append(value)
    return {k: statistics.median(v) for k, v in phases.items()}


def time_translation(device: str, repeats: int) -> dict[str, float]:
    """Run in a child process: median seconds for a 1024x768 image and the peak RSS it added."""
    code = f"""
import json, statistics, sys, time, torch
sys.path.insert(0, {str(ROOT)!r})
from sincut.nets import Generator
from sincut.translate import pick_device, translate_tensor
device = pick_device({device!r})
G = Generator().to(device, memory_format=torch.channels_last).eval().requires_grad_(False)
x = torch.rand(1, 3, 768, 1024, device=device) * 2 - 1
def status_kib(field):  # VmHWM (peak RSS) starts afresh at exec, unlike ru_maxrss which a child inherits
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
base = status_kib("VmRSS")
times = []
for _ in range({repeats} + 1):
    t = time.perf_counter(); y = translate_tensor(G, x); float(y[0, 0, 0, 0]); times.append(time.perf_counter() - t)
peak = status_kib("VmHWM")
print(json.dumps({{"seconds": statistics.median(times[1:]), "extra_peak_rss_mib": (peak - base) / 1024}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=5, help="measured training steps")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--translate-repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "sincut_step.json")
    args = parser.parse_args()

    device = pick_device(args.device)
    step = time_training(device, args.steps, args.warmup)
    tr = time_translation(args.device, args.translate_repeats)
    info = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "preset": "sincut (batch 16, 64 px patches)", "images": [str(p.name) for p in image_pair()],
    }
    result = {"machine": info, "seconds_per_step": step, "translate_1024x768": tr}

    print(f"device: {info['device']}  torch {info['torch']}  threads {info['threads']}")
    print(f"{'phase':<12}{'seconds':>10}")
    for key, value in step.items():
        print(f"{key:<12}{value:>10.3f}")
    print(f"translate 1024x768: {tr['seconds']:.2f} s, extra peak RSS {tr['extra_peak_rss_mib']:.0f} MiB")
    print(f"projected 100,000-step schedule: {step['total'] * 100_000 / 3600:.1f} h")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
